"""Video / motion <-> sensor: CTW, GCTW and DCTW against a known warp, DTW as the baseline.

The canonical time warping setting (Zhou & De la Torre 2009; GCTW 2012; DCTW,
Trigeorgis et al. 2016): two views of the same motion in different feature
spaces, one of them on a warped clock, so that the true correspondence is known
at every frame.  Two settings:

(a) **BasicMotions, accelerometer <-> gyroscope.**  20 recordings of the UEA
    archive's BasicMotions (bundled with aeon; 10 s at 10 Hz, 4 activities, 5
    recordings each): the gyroscope of a recording resampled at a random
    monotone warp (:func:`mmalign.datasets.basic_motions_warped`, strength 0.5,
    80-130 frames) is aligned with the same recording's accelerometer (100
    frames).  The two sensors measure different quantities of one motion.

(b) **Rendered video <-> 3-D motion** (10 clips; card:
    ``datasets/motion_video.md``).  A 3-D "gesture", a Lissajous curve
    (three frequencies drawn in [1.5, 4] cycles per clip, random phases, a
    slowly varying amplitude) sampled as 180 frames of motion capture at
    30 Hz (6 s), is filmed by a pinhole camera: each 64 x 64 grey frame shows an
    arm (a line from a fixed shoulder) ending in a hand (a disc whose radius
    shrinks with depth), drawn with numpy only (anti-aliased distance fields),
    plus Gaussian pixel noise (sd 0.05).  The video's clock is warped: its
    140-220 frames show the motion at the latent positions of a random monotone
    warp (:func:`mmalign.datasets.random_monotone_warp`, strength 0.5).  Frame
    features, two kinds:

    - ``pixels``: 4 x 4 block means (16 x 16 = 256 values), each z-scored over
      the clip, PCA to 10 components;
    - ``resnet18``: ``torchvision.models.resnet18(weights=None)`` (random
      weights, ``torch.manual_seed(0)``: nothing can be downloaded) truncated
      before its ``fc`` layer (after the global average pool, 512 values; the
      grey frame repeated on 3 channels, no ImageNet normalisation), z-scored
      and PCA to 10 components.  Random conv features are not semantic, but
      with zero padding they still respond to where the arm is.  Without
      torchvision these features are skipped (with a printed note).

    The video features are aligned with the 3-D trajectory (3 features).

Methods, each given only the two (three for GCTW) sequences:

- ``uniform``   the linear stretch (no alignment at all);
- ``DTW``       :func:`mmalign.dtw_path` on z-normalised features; DTW needs one
  feature space, so in (b) the video features are reduced by PCA to 3 (the
  trajectory's dimension) before z-normalisation.  In (a) both sensors are 3-d.
  This is what a user would otherwise run;
- ``CTW``       :class:`mmalign.CTW` with its defaults;
- ``GCTW``      :class:`mmalign.GCTW`: in (a) the two sensors; in (b) three views,
  the video, the trajectory and its velocity (``np.gradient``, on the
  trajectory's clock), and the video <-> trajectory pair of the result; in
  (b) also ``GCTW, 2 views`` (the video and the trajectory only), to show what
  the third view changes;
- ``DCTW``      :class:`mmalign.DCTW` (MLP encoders, deep CCA), fitted on the
  pair itself (``n_outer=3, epochs_per_step=30``), then ``align``.

Error: for every frame of the warped sequence, the absolute difference between
the aligned frame of the other sequence (read off the path as
:func:`mmalign.metrics.deviations` does) and the true one, pooled over all
recordings / clips; median and 95th percentile in frames of the unwarped
sequence and in seconds (BasicMotions 10 Hz, motion capture 30 Hz).

Outputs in ``--out``: ``motion_sensor.png`` (paths against the truth for one
BasicMotions recording and one clip, a strip of video frames),
``motion_sensor.json`` (the table and per-recording medians).  CPU, about a
minute; ``--quick`` (4 recordings, 2 clips, shorter DCTW) about 10 s.

Usage::

    python recipes/motion_sensor.py --out /tmp/x            # full run
    python recipes/motion_sensor.py --out /tmp/x --quick    # small version (tests)
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import numpy as np
import torch

import mmalign
from mmalign.datasets import basic_motions_warped, random_monotone_warp
from mmalign.metrics import deviations
from mmalign.projection.ctw import uniform_path

FIGURE = "motion_sensor.png"
RESULTS = "motion_sensor.json"
METHODS = ("uniform", "DTW", "CTW", "GCTW", "DCTW")
BASIC_MOTIONS_RATE = 10.0   # Hz, BasicMotions
MOCAP_RATE = 30.0           # Hz, the rendered clips' motion capture
FRAME_SIZE = 64
N_MOTION = 180              # motion-capture frames per clip (6 s at 30 Hz)
N_PCA = 10                  # video feature dimension after PCA


# --------------------------------------------------------------------------- features


def zscore(a: np.ndarray) -> np.ndarray:
    """Each column of ``a`` (n, d) to zero mean and unit standard deviation (constant columns: 0)."""
    a = np.asarray(a, dtype=np.float64)
    std = a.std(axis=0)
    return (a - a.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)


def pca_scores(features: np.ndarray, k: int) -> np.ndarray:
    """Scores ``(n, k)`` of the z-scored ``features`` (n, d) on their first ``k`` principal axes."""
    centred = zscore(features)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T


def pixel_features(frames: np.ndarray) -> np.ndarray:
    """``(n, 256)`` 4 x 4 block means of ``(n, 64, 64)`` frames."""
    n, h, w = frames.shape
    return frames.reshape(n, h // 4, 4, w // 4, 4).mean(axis=(2, 4)).reshape(n, -1).astype(np.float64)


def resnet18_backbone() -> torch.nn.Module | None:
    """``torchvision.models.resnet18(weights=None)`` (seed 0) without its ``fc``; None without torchvision."""
    try:
        import torchvision
    except ImportError:
        return None
    with torch.random.fork_rng():           # leaves the caller's torch RNG untouched
        torch.manual_seed(0)
        net = torchvision.models.resnet18(weights=None)
    return torch.nn.Sequential(*list(net.children())[:-1]).eval()   # ... avgpool -> (n, 512, 1, 1)


def resnet_features(backbone: torch.nn.Module, frames: np.ndarray) -> np.ndarray:
    """``(n, 512)`` pooled features of ``(n, H, W)`` grey frames (repeated on 3 channels)."""
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))[:, None].expand(-1, 3, -1, -1)
    with torch.no_grad():
        return backbone(x).flatten(1).numpy().astype(np.float64)


# --------------------------------------------------------------------------- the rendered clips


def lissajous_gesture(n: int, rng: np.random.Generator) -> np.ndarray:
    """A 3-D Lissajous curve ``(n, 3)`` with a slowly varying amplitude, in ``[-1, 1]``.

    Coordinate ``c`` is ``A(t) sin(2 pi f_c t + phi_c)`` for ``t`` in ``[0, 1]``
    with ``f_c`` drawn in ``[1.5, 4]`` cycles per clip; ``A(t)`` varies by
    +-30 % at a lower frequency, so the curve does not repeat itself exactly.
    """
    t = np.linspace(0.0, 1.0, n)
    freq = rng.uniform(1.5, 4.0, 3)
    phase = rng.uniform(0.0, 2 * np.pi, 3)
    envelope = 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 2 * np.pi))
    z = np.sin(2 * np.pi * freq * t[:, None] + phase) * envelope[:, None]
    z -= z.mean(axis=0)
    return z / np.abs(z).max()


def render_frames(points: np.ndarray, *, size: int = FRAME_SIZE, noise: float = 0.05,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """Film 3-D hand positions ``(n, 3)`` in ``[-1, 1]`` as ``(n, size, size)`` float32 grey frames.

    Pinhole camera on the z axis at distance 3: the hand at ``(x, y, z)`` is
    drawn at image offset ``0.28 * size * (x, -y) * s`` from the centre with
    ``s = 3 / (3 + z)`` and radius ``2.5 + 2.5 s`` pixels (near is big); an arm
    of intensity 0.6 joins it to a fixed shoulder at the top centre.  Edges are
    anti-aliased over one pixel.  ``noise`` is the standard deviation of
    Gaussian pixel noise (drawn from ``rng``; none without one).
    """
    points = np.asarray(points, dtype=np.float64)
    scale = 3.0 / (3.0 + points[:, 2])
    u = size / 2 + 0.28 * size * points[:, 0] * scale                 # column of the hand
    v = size / 2 - 0.28 * size * points[:, 1] * scale                 # row of the hand (y up)
    radius = 2.5 + 2.5 * scale
    rows, cols = np.mgrid[0:size, 0:size] + 0.5                       # pixel centres
    rows, cols = rows[None], cols[None]
    u, v, radius = u[:, None, None], v[:, None, None], radius[:, None, None]
    hand = np.clip(radius - np.hypot(cols - u, rows - v) + 0.5, 0.0, 1.0)
    su, sv = size / 2, 0.12 * size                                     # shoulder
    du, dv = u - su, v - sv
    along = np.clip(((cols - su) * du + (rows - sv) * dv) / (du ** 2 + dv ** 2), 0.0, 1.0)
    arm = 0.6 * np.clip(1.2 - np.hypot(cols - su - along * du, rows - sv - along * dv) + 0.5, 0.0, 1.0)
    frames = np.maximum(hand, arm)
    if rng is not None and noise > 0:
        frames = frames + noise * rng.standard_normal(frames.shape)
    return frames.astype(np.float32)


def make_clip(seed: int) -> dict:
    """One clip: the motion (N_MOTION, 3), the video frames on a warped clock, the warp."""
    rng = np.random.default_rng(seed)
    motion = lissajous_gesture(N_MOTION, rng)
    n_video = int(rng.integers(140, 221))
    warp = random_monotone_warp(n_video, N_MOTION, rng=rng, strength=0.5)  # motion frame of each video frame
    grid = np.arange(N_MOTION, dtype=np.float64)
    hand = np.column_stack([np.interp(warp, grid, motion[:, c]) for c in range(3)])
    return {"motion": motion, "frames": render_frames(hand, rng=rng), "warp": warp}


# --------------------------------------------------------------------------- alignment


def align_all_methods(x: np.ndarray, y: np.ndarray, *, dtw_x: np.ndarray, dtw_y: np.ndarray,
                      gctw_views: list, dctw: dict) -> dict:
    """Hard paths ``{method: (K, 2)}`` aligning ``x`` (side x) with ``y`` (side y).

    ``dtw_x`` / ``dtw_y``: the features DTW gets (one feature space);
    ``gctw_views``: the sequences GCTW warps (``x`` and ``y`` first).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "uniform": uniform_path(len(x), len(y)),
            "DTW": mmalign.dtw_path(zscore(dtw_x), zscore(dtw_y)).path(),
            "CTW": mmalign.CTW().align(x, y).path(),
            "GCTW": mmalign.GCTW().align_all(gctw_views).pair(0, 1).path(),
            "DCTW": mmalign.DCTW(**dctw).fit([(x, y)]).align(x, y).path(),
        }


def summarise(errors: dict, rate: float) -> dict:
    """Pooled deviations as ``{method: {median, p95, median_s, p95_s, mean, per_sequence_median}}``.

    ``median``, ``p95`` and ``mean`` are in frames, ``*_s`` in seconds at ``rate`` Hz.
    """
    out = {}
    for method, per_sequence in errors.items():
        d = np.concatenate(per_sequence)
        median, p95 = float(np.median(d)), float(np.percentile(d, 95))
        out[method] = {"median": median, "p95": p95, "median_s": median / rate, "p95_s": p95 / rate,
                       "mean": float(d.mean()),
                       "per_sequence_median": [float(np.median(e)) for e in per_sequence]}
    return out


def basic_motions_setting(indices, dctw: dict, plot_index: int = 20) -> tuple[dict, dict]:
    """Setting (a): per method, the deviations of every recording; the paths of recording
    ``plot_index`` (a walking one) if it is among ``indices``, else of the first."""
    errors = {m: [] for m in METHODS}
    example = None
    for index in indices:
        pair = basic_motions_warped(split="train", index=index, seed=index)
        gyro, accel = pair.y, pair.x            # gyroscope on the warped clock, accelerometer at 10 Hz
        truth = np.column_stack([np.arange(len(gyro)), pair.warp])   # (gyro frame, accel frame)
        paths = align_all_methods(gyro, accel, dtw_x=gyro, dtw_y=accel,
                                  gctw_views=[gyro, accel], dctw=dctw)
        for method, path in paths.items():
            errors[method].append(deviations(path, truth))
        if example is None or index == plot_index:
            example = {"paths": paths, "truth": truth, "label": pair.label, "index": index,
                       "shape": (len(gyro), len(accel))}
    return errors, example


def video_setting(seeds, backbone, dctw: dict) -> tuple[dict, dict]:
    """Setting (b): ``{feature kind: {method: deviations per clip}}``; the first clip and its paths."""
    kinds = ["pixels"] + (["resnet18"] if backbone is not None else [])
    errors = {kind: {m: [] for m in METHODS} for kind in kinds}
    example = None
    for seed in seeds:
        clip = make_clip(seed)
        motion, frames, warp = clip["motion"], clip["frames"], clip["warp"]
        velocity = np.gradient(motion, axis=0)
        truth = np.column_stack([np.arange(len(frames)), warp])       # (video frame, motion frame)
        raw = {"pixels": pixel_features(frames)}
        if backbone is not None:
            raw["resnet18"] = resnet_features(backbone, frames)
        clip_paths = {}
        for kind, features in raw.items():
            video = pca_scores(features, N_PCA)
            paths = align_all_methods(video, motion, dtw_x=pca_scores(features, motion.shape[1]),
                                      dtw_y=motion, gctw_views=[video, motion, velocity], dctw=dctw)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                paths["GCTW, 2 views"] = mmalign.GCTW().align_all([video, motion]).pair(0, 1).path()
            for method, path in paths.items():
                errors[kind].setdefault(method, []).append(deviations(path, truth))
            clip_paths[kind] = paths
        if example is None:
            example = {"paths": clip_paths, "truth": truth, "frames": frames, "warp": warp,
                       "motion": motion, "seed": seed}
    return errors, example


# --------------------------------------------------------------------------- report


def table_rows(results: dict) -> list[tuple]:
    """``(setting, method, median, p95, median_s, p95_s)`` rows of every setting."""
    rows = []
    for setting, per_method in results.items():
        for method, s in per_method.items():
            rows.append((setting, method, s["median"], s["p95"], s["median_s"], s["p95_s"]))
    return rows


def save_figure(path: str, bm_example: dict, video_example: dict) -> None:
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    styles = {"uniform": dict(color="0.6", lw=1), "DTW": dict(color="tab:orange", lw=1.5),
              "CTW": dict(color="tab:blue", lw=1.5), "GCTW": dict(color="tab:green", lw=1.2),
              "DCTW": dict(color="tab:red", lw=1.2, ls="--"),
              "GCTW, 2 views": dict(color="tab:olive", lw=1, ls="-.")}
    panels = [(bm_example["paths"], bm_example["truth"],
               f"BasicMotions train #{bm_example['index']} ({bm_example['label']})",
               "gyroscope frame (warped clock)", "accelerometer frame (10 Hz)")]
    for kind, paths in video_example["paths"].items():
        panels.append((paths, video_example["truth"],
                       f"video ({kind} features) <-> 3-D motion, clip {video_example['seed']}",
                       "video frame (warped clock)", "motion frame (30 Hz)"))
    fig = Figure(figsize=(4.6 * len(panels), 7.4), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[3, 1.3])
    for ax, (paths, truth, title, xlabel, ylabel) in zip(top.subplots(1, len(panels)), panels):
        for method, p in paths.items():
            ax.plot(p[:, 0], p[:, 1], label=method, **styles[method])
        ax.plot(truth[:, 0], truth[:, 1], color="black", lw=2.2, ls=":", label="truth")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize=7)
    frames, warp = video_example["frames"], video_example["warp"]
    picks = np.linspace(0, len(frames) - 1, 8).round().astype(int)
    for ax, k in zip(bottom.subplots(1, len(picks)), picks):
        ax.imshow(frames[k], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"video {k}\nmotion {warp[k]:.1f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=".", help="folder for the figure and the results (default: .)")
    parser.add_argument("--quick", action="store_true",
                        help="4 recordings, 2 clips, shorter DCTW (for tests)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.quick:
        indices, seeds = (0, 10, 20, 30), range(2)
        dctw = dict(n_outer=2, epochs_per_step=15, train={"seed": 0})
    else:   # 5 recordings of each activity: standing, running, walking, badminton
        indices, seeds = tuple(c * 10 + k for c in range(4) for k in range(5)), range(10)
        dctw = dict(n_outer=3, epochs_per_step=30, train={"seed": 0})
    bm_errors, bm_example = basic_motions_setting(indices, dctw)
    backbone = resnet18_backbone()
    video_errors, video_example = video_setting(seeds, backbone, dctw)
    seconds = time.perf_counter() - start

    results = {"BasicMotions accelerometer <-> gyroscope": summarise(bm_errors, BASIC_MOTIONS_RATE)}
    for kind, errors in video_errors.items():
        results[f"video ({kind}) <-> 3-D motion"] = summarise(errors, MOCAP_RATE)

    print(f"motion <-> sensor alignment against a known warp{' (quick)' if args.quick else ''}: "
          f"{len(indices)} BasicMotions recordings (10 Hz), {len(seeds)} rendered clips "
          f"({N_MOTION} motion frames at 30 Hz, {FRAME_SIZE}x{FRAME_SIZE} video)")
    if backbone is None:
        print("  torchvision is not installed: resnet18 features skipped")
    print("absolute error of the aligned frame, pooled over all frames of the warped sequences")
    print(f"  {'setting':<42}{'method':<15}{'median':>8}{'p95':>8}  frames {'median':>8}{'p95':>8}  s")
    for setting, method, med, p95, med_s, p95_s in table_rows(results):
        print(f"  {setting:<42}{method:<15}{med:>8.2f}{p95:>8.2f}         {med_s:>8.3f}{p95_s:>8.3f}")
    print(f"total {seconds:.1f} s")

    os.makedirs(args.out, exist_ok=True)
    figure = os.path.join(args.out, FIGURE)
    save_figure(figure, bm_example, video_example)
    results_path = os.path.join(args.out, RESULTS)
    with open(results_path, "w") as f:
        json.dump({"quick": args.quick, "seconds": seconds, "basic_motions_indices": list(indices),
                   "clip_seeds": list(seeds), "dctw": dctw, "results": results}, f, indent=1)
    print(f"figure: {figure}\nresults: {results_path}")
    return {"results": results, "figure": figure, "json": results_path, "seconds": seconds}


if __name__ == "__main__":
    main()
