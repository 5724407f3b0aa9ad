"""Audio-to-audio alignment demo with a known ground truth.

Two renditions of one random score are synthesised, each with its own smoothly
varying tempo (:func:`mmalign.datasets.synthesize_performances`).  Their
chroma (or MFCC) features are aligned with :func:`mmalign.dtw_path`, and the
path is scored against the exact correspondence in milliseconds.  A picture of
the cost matrix, the path and the ground truth is written to
``mmalign_demo.png``; an existing one is replaced only with ``--force``
(``overwrite=True`` in :func:`run_demo`), so a second run in the same folder
stops with a message that says so.

Run it with ``python -m mmalign demo`` or ``mmalign demo`` (the command line
is :mod:`mmalign.cli.demo`);
``--help`` lists the options.
"""

from __future__ import annotations

import os
import time

import numpy as np

from ..utils.files import atomic_write, check_output_file

__all__ = ["run_demo", "format_report", "PLOT_NAME"]

PLOT_NAME = "mmalign_demo.png"


def run_demo(
    *,
    seed: int = 0,
    n_notes: int = 48,
    features: str = "chroma",
    sr: int = 22050,
    hop_length: int = 512,
    out: str | os.PathLike | None = ".",
    overwrite: bool = False,
) -> dict:
    """Synthesise, extract features, align and score; return the numbers.

    Parameters
    ----------
    seed : int
        Seed of the synthetic score and tempo curves.
    n_notes : int > 0
        Notes in the score (48 gives about 30 s per rendition).
    features : {"chroma", "mfcc"}
        Frame features to align.
    sr : int > 0
        Sampling rate in Hz.
    hop_length : int > 0
        Hop between frames in samples (512 at 22050 Hz is about 23 ms).
    out : str, os.PathLike or None
        Directory for ``mmalign_demo.png`` (created if missing); ``None``
        writes no plot.
    overwrite : bool
        Replace an existing ``mmalign_demo.png``.  Without it an existing
        plot raises ``FileExistsError`` before any work.  The plot is written
        under a temporary name and renamed into place.

    Returns
    -------
    results : dict
        ``n_frames_a``, ``n_frames_b``, ``duration_a``, ``duration_b``
        (seconds), ``features_ms``, ``dtw_ms``, ``warmup_ms`` (one-off JIT
        compilation), ``mean_error_ms``, ``median_error_ms``,
        ``baseline_median_error_ms`` (a linear stretch, for comparison),
        ``within_50ms``, ``within_100ms`` (fractions in [0, 1]),
        ``n_reference`` (ground-truth frames scored), ``alignment``
        (the :class:`mmalign.Alignment`, with ``frame_rate`` set) and
        ``plot`` (path of the PNG or None).

    Raises
    ------
    ValueError
        Unknown ``features``, or ``out`` cannot hold the plot.
    FileExistsError
        ``out/mmalign_demo.png`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> r = run_demo(n_notes=8, out=None)
    >>> r["median_error_ms"] < 100
    True
    """
    from ..alignment import Alignment
    from ..datasets import synthesize_performances
    from ..features import chroma, frame_rate, mfcc
    from ..metrics import fraction_within, mean_absolute_deviation, median_absolute_deviation
    from ..warping import dtw_path

    extractors = {"chroma": chroma, "mfcc": mfcc}
    if features not in extractors:
        raise ValueError(f"features must be one of {sorted(extractors)}, got {features!r}")
    extract = extractors[features]
    plot_path = None
    if out is not None:
        plot_path = check_output_file(os.path.join(os.fspath(out), PLOT_NAME), force=overwrite,
                                      option="out", force_hint="overwrite=True")

    pair = synthesize_performances(n_notes, sr=sr, seed=seed)
    rate = frame_rate(sr, hop_length)

    # Pay librosa's lazy imports and filter construction outside the timing.
    extract(pair.audio_a[: 2 * hop_length], sr, hop_length=hop_length)
    start = time.perf_counter()
    feats_a = extract(pair.audio_a, sr, hop_length=hop_length)
    feats_b = extract(pair.audio_b, sr, hop_length=hop_length)
    features_ms = 1e3 * (time.perf_counter() - start)

    # The first call in a process compiles (or loads) the numba kernels.
    start = time.perf_counter()
    dtw_path(feats_a[:4], feats_b[:5])
    warmup_ms = 1e3 * (time.perf_counter() - start)
    start = time.perf_counter()
    estimate = dtw_path(feats_a, feats_b)
    dtw_ms = 1e3 * (time.perf_counter() - start)
    alignment = Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape,
                          frame_rate=rate, extras=estimate.extras)

    reference = pair.reference_frames(hop_length)
    reference = reference[reference[:, 0] < alignment.n_x]
    n_a, n_b = alignment.shape
    linear = reference[:, 0] * (n_b - 1) / (n_a - 1)
    results = {
        "n_frames_a": n_a,
        "n_frames_b": n_b,
        "duration_a": pair.duration_a,
        "duration_b": pair.duration_b,
        "features": features,
        "hop_length": hop_length,
        "sr": sr,
        "features_ms": features_ms,
        "dtw_ms": dtw_ms,
        "warmup_ms": warmup_ms,
        "mean_error_ms": 1e3 * mean_absolute_deviation(alignment, reference, frame_rate=rate),
        "median_error_ms": 1e3 * median_absolute_deviation(alignment, reference, frame_rate=rate),
        "baseline_median_error_ms": 1e3 * float(np.median(np.abs(linear - reference[:, 1]))) / rate,
        "within_50ms": fraction_within(alignment, reference, 0.05, frame_rate=rate),
        "within_100ms": fraction_within(alignment, reference, 0.10, frame_rate=rate),
        "n_reference": len(reference),
        "alignment": alignment,
        "plot": None,
    }

    if plot_path is not None:
        from scipy.spatial.distance import cdist

        from ..plot import save_alignment_plot

        cost = cdist(feats_a, feats_b, "sqeuclidean")
        with atomic_write(plot_path) as tmp:
            save_alignment_plot(alignment, tmp, cost=cost, reference=reference,
                                title=f"{features} DTW vs ground truth (seed {seed})")
        results["plot"] = plot_path
    return results


def format_report(r: dict) -> str:
    """The demo's printed report for the ``results`` of :func:`run_demo`."""
    hop_ms = 1e3 * r["hop_length"] / r["sr"]
    lines = [
        "mmalign demo: one synthetic score played twice with different, varying tempi",
        f"  rendition A  {r['duration_a']:6.2f} s  {r['n_frames_a']:6d} frames",
        f"  rendition B  {r['duration_b']:6.2f} s  {r['n_frames_b']:6d} frames"
        f"   ({r['features']}, hop {r['hop_length']} at {r['sr']} Hz = {hop_ms:.1f} ms)",
        "time",
        f"  features (A and B)  {r['features_ms']:8.1f} ms",
        f"  DTW                 {r['dtw_ms']:8.1f} ms   (+ {r['warmup_ms']:.0f} ms one-off JIT warm-up)",
        f"error against the ground truth ({r['n_reference']} frames of A)",
        f"  mean                {r['mean_error_ms']:8.1f} ms",
        f"  median              {r['median_error_ms']:8.1f} ms"
        f"   (linear stretch, no DTW: {r['baseline_median_error_ms']:.0f} ms)",
        f"  within  50 ms       {100 * r['within_50ms']:8.1f} %",
        f"  within 100 ms       {100 * r['within_100ms']:8.1f} %",
    ]
    if r["plot"] is not None:
        lines.append(f"plot: {r['plot']}")
    return "\n".join(lines)
