"""Audio <-> audio synchronisation against ground truth, and hour-long recordings.

Three experiments (dataset card: ``datasets/synthetic_audio.md``):

(a) **performances**: one random score rendered twice, each with its own
    smoothly varying tempo (:func:`mmalign.datasets.synthesize_performances`,
    tempo factor 0.7-1.4); several seeds.  Ground truth: the exact
    score-to-performance time maps.
(b) **piecewise stretch**: a recording and a copy time-stretched with a known
    piecewise-linear warp (:func:`mmalign.apps.sync.time_stretch_piecewise`, rates
    0.7-1.4, a new rate every 2-6 s), 6 dB quieter and with added white noise
    (about -50 dB): a synthetic music rendition (chroma), speech-like audio
    (:func:`mmalign.datasets.synthesize_speech_like`, MFCC) and, when eSpeak NG
    is installed (``pip install -e ".[speech]"``), a paragraph read by eSpeak
    NG in five voices and rates (:func:`mmalign.features.speech.synthesize_speech`,
    MFCC; skipped with ``--quick``).
    No real recording ships with mmalign and downloads are not allowed, so
    both "recordings" are synthetic.
(c) **long recordings**: (c1) two 1-hour *feature* sequences at 50 Hz
    (180,000 frames each, synthetic chroma-like features with known tempo
    curves, made directly, not from audio) aligned with multiscale DTW in a
    fresh subprocess: wall time, peak-memory increase and error; (c2) two
    1-hour *audio* files (synthesised 30 s at a time and written to WAV
    block by block) synchronised end to end by ``mmalign sync`` in a fresh
    subprocess: wall time and peak resident memory.

Errors are absolute differences, in milliseconds, between where a method
puts each ground-truth event of A in B and where it really is (events: note
onsets for music, phone starts for speech-like audio, word starts for
eSpeak), pooled over seeds; the script prints the median and the 95th
percentile for:

- ``mmalign DTW``         :func:`mmalign.apps.sync.align_features`, exact DTW
  (Euclidean local cost, as in :func:`mmalign.apps.sync.synchronize`);
- ``mmalign multiscale``  the same with ``method="multiscale"``;
- ``librosa DTW``         ``librosa.sequence.dtw`` (its defaults: Euclidean
  cost, the same three steps) on the *same* features, its own path, the same
  metric: the baseline a user would reach for;
- ``librosa defaults``    what a librosa user gets end to end: its own
  features with default settings (``chroma_cqt``, or ``mfcc`` with 20
  coefficients including c0; hop 512, 43 Hz) and ``sequence.dtw``;
- ``linear``              no warping, a straight line from start to end.

Figures go to ``audio_sync.png`` and all numbers to ``audio_sync.json`` in
``--out``.

Usage::

    python recipes/audio_sync.py --out /tmp/sync            # full: about 5-8 min on one core
    python recipes/audio_sync.py --out /tmp/sync --quick    # small version, well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from mmalign import Alignment, metrics
from mmalign.datasets import synthesize_performances, synthesize_speech_like
from mmalign.apps.sync import align_features, feature_hop, sync_features, time_stretch_piecewise

FIGURE = "audio_sync.png"
RESULTS = "audio_sync.json"
SR = 22050
FEATURE_RATE = 50.0
METHODS = ("mmalign DTW", "mmalign multiscale", "librosa DTW", "librosa defaults", "linear")


# --------------------------------------------------------------------------- scoring


def score_methods(fa: np.ndarray, fb: np.ndarray, rate: float, events: np.ndarray, audio_a: np.ndarray,
                  audio_b: np.ndarray, features: str) -> tuple[dict, dict]:
    """Errors in ms of every method at ``events`` ``(K, 2)`` (seconds in A, true seconds in B).

    ``fa``, ``fb`` are mmalign's features at ``rate`` Hz; ``audio_a``,
    ``audio_b`` the signals, for the librosa-defaults pipeline.  Returns
    ``(errors, paths)``: ``{method: (K,) ms}`` and ``{method: (L, 2) path in seconds}``.
    """
    import librosa

    errors, paths = {}, {}

    def score(name: str, al: Alignment, r: float) -> None:
        errors[name] = 1e3 * metrics.deviations(al, events * r) / r
        paths[name] = al.path() / r

    for name, method in (("mmalign DTW", "dtw"), ("mmalign multiscale", "multiscale")):
        score(name, align_features(fa, fb, frame_rate=rate, method=method), rate)
    _, wp = librosa.sequence.dtw(X=fa.T, Y=fb.T, backtrack=True)
    score("librosa DTW", Alignment(np.ascontiguousarray(wp[::-1]), shape=(len(fa), len(fb))), rate)
    # librosa end to end with its defaults: hop 512, chroma_cqt (max-normalised) or 20 MFCCs (with c0)
    extract = librosa.feature.mfcc if features == "mfcc" else librosa.feature.chroma_cqt
    la, lb = extract(y=audio_a, sr=SR), extract(y=audio_b, sr=SR)
    _, wp = librosa.sequence.dtw(X=la, Y=lb, backtrack=True)
    score("librosa defaults", Alignment(np.ascontiguousarray(wp[::-1]), shape=(la.shape[1], lb.shape[1])),
          SR / 512)
    slope = (len(fb) - 1) / (len(fa) - 1)
    errors["linear"] = 1e3 * np.abs(events[:, 0] * rate * slope - events[:, 1] * rate) / rate
    return errors, paths


def summarise(errors: dict) -> dict:
    """``{method: {"median_ms", "p95_ms", "n"}}`` of pooled errors."""
    return {name: {"median_ms": float(np.median(e)), "p95_ms": float(np.percentile(e, 95)), "n": int(len(e))}
            for name, e in errors.items()}


def _pool(acc: dict, errors: dict) -> None:
    for name, e in errors.items():
        acc.setdefault(name, []).append(e)


# --------------------------------------------------------------------------- (a) and (b)


def performances(seeds, n_notes: int, features: str = "chroma") -> tuple[dict, dict]:
    """(a): two renditions with their own tempo curves; events are the note onsets."""
    hop = feature_hop(SR, FEATURE_RATE, features)
    rate = SR / hop
    pooled, example = {}, None
    for seed in seeds:
        pair = synthesize_performances(n_notes, sr=SR, seed=seed)
        fa = sync_features(pair.audio_a, SR, features=features, hop_length=hop)
        fb = sync_features(pair.audio_b, SR, features=features, hop_length=hop)
        events = np.column_stack([pair.onsets_a, pair.onsets_b])
        errors, paths = score_methods(fa, fb, rate, events, pair.audio_a, pair.audio_b, features)
        _pool(pooled, errors)
        if example is None:
            truth = pair.reference_frames(hop) / rate
            example = {"paths": paths, "truth": truth, "onsets": pair.onsets_a,
                       "title": f"(a) performances ({features}), seed {seed}: error along A"}
    return {k: np.concatenate(v) for k, v in pooled.items()}, example


def random_warp(duration: float, rng: np.random.Generator) -> np.ndarray:
    """Knots ``(input_time, output_time)``: a new rate in [0.7, 1.4] every 2-6 s of input."""
    t_in = np.cumsum(rng.uniform(2.0, 6.0, int(duration) + 2))
    t_in = t_in[t_in < duration - 0.5]
    rates = rng.uniform(0.7, 1.4, len(t_in))                   # output seconds per input second
    t_out = np.cumsum(np.diff(np.concatenate([[0.0], t_in])) * rates)
    return np.column_stack([t_in, t_out])


ESPEAK_TEXT = (
    "The ferry left the harbour a little after nine, and by the time the fog lifted the island "
    "was already behind us. Nobody on deck could say exactly when the engines had changed their "
    "note, only that the gulls had stopped following and the water had turned from grey to green. "
    "My sister counted the lighthouses out loud, one, two, three, and then lost track somewhere "
    "near the cliffs where the old radio mast still leans over the sea."
)
ESPEAK_VOICES = (("en-gb", 150), ("en-us", 175), ("en-gb+f3", 190), ("en-us+m3", 160), ("en", 205))


def espeak_available() -> bool:
    """Whether eSpeak NG can be loaded (``pip install -e ".[speech]"``)."""
    try:
        from mmalign.features.speech import espeak_version

        espeak_version()
        return True
    except Exception:  # ImportError, or a library that fails to load
        return False


def stretched(kind: str, seeds, length: float) -> dict:
    """(b): a recording against a copy stretched with a known piecewise warp.

    ``kind``: ``"music"`` (a synthetic rendition, chroma, events = note onsets),
    ``"speech-like"`` (:func:`synthesize_speech_like`, MFCC, phone starts) or
    ``"espeak"`` (eSpeak NG reading :data:`ESPEAK_TEXT` in one voice and rate per
    seed, MFCC, word starts).
    """
    features = "chroma" if kind == "music" else "mfcc"
    hop = feature_hop(SR, FEATURE_RATE, features)
    rate = SR / hop
    pooled = {}
    for seed in seeds:
        rng = np.random.default_rng(1000 + seed)
        if kind == "music":
            pair = synthesize_performances(max(8, int(length / 0.62)), sr=SR, seed=200 + seed)
            audio, events_s = pair.audio_a, pair.onsets_a
        elif kind == "espeak":
            from mmalign.features.speech import synthesize_speech

            voice, wpm = ESPEAK_VOICES[seed % len(ESPEAK_VOICES)]
            audio, _, words = synthesize_speech(ESPEAK_TEXT, voice=voice, rate_wpm=wpm, sr=SR)
            events_s = np.array([w.start for w in words])
        else:
            speech = synthesize_speech_like(length, sr=SR, seed=seed)
            audio, events_s = speech.audio, speech.starts[1:]
        warped, knots = time_stretch_piecewise(audio, SR, random_warp(len(audio) / SR, rng))
        # a different "recording chain": 6 dB quieter, a noise floor at about -50 dB
        warped = (0.5 * warped + 0.003 * rng.standard_normal(len(warped))).astype(np.float32)
        fa = sync_features(audio, SR, features=features, hop_length=hop)
        fb = sync_features(warped, SR, features=features, hop_length=hop)
        events = np.column_stack([events_s, np.interp(events_s, knots[:, 0], knots[:, 1])])
        errors, _ = score_methods(fa, fb, rate, events, audio, warped, features)
        _pool(pooled, errors)
    return {k: np.concatenate(v) for k, v in pooled.items()}


# --------------------------------------------------------------------------- (c1) long feature sequences


def long_feature_pair(n_frames: int, rate: float, seed: int):
    """Two chroma-like sequences of ``n_frames`` frames at ``rate`` Hz with their own tempo curves.

    A random score (notes of 0.2-0.8 s, 30 % with a major triad) is "performed"
    twice with a log-tempo random walk in [0.8, 1.25] (a knot every 4 s of
    score), each stretched to exactly ``n_frames / rate`` seconds.  A frame is
    the pitch-class profile of the sounding note (root 1, fifth 0.35, third
    0.25), decaying after the onset, plus noise, unit norm.  Returns
    ``(fa, fb, events)``: float32 ``(n_frames, 12)`` twice and the note onsets
    as ``(K, 2)`` (frame in A, true frame in B).
    """
    rng = np.random.default_rng(seed)
    total = n_frames / rate
    durations = rng.uniform(0.2, 0.8, int(total / 0.5 * 1.6))
    onsets = np.concatenate([[0.0], np.cumsum(durations)])
    score_end = onsets[-1]
    roots = rng.integers(0, 12, len(durations))
    chords = rng.random(len(durations)) < 0.3
    profile = np.zeros((len(durations), 12))
    profile[np.arange(len(durations)), roots] = 1.0
    profile[np.arange(len(durations)), (roots + 7) % 12] += 0.35
    profile[chords, (roots[chords] + 4) % 12] += 0.6
    profile[~chords, (roots[~chords] + 4) % 12] += 0.25

    grid = np.linspace(0.0, score_end, 200_001)
    maps = []
    for _ in range(2):
        knots = np.arange(0.0, score_end + 4.0, 4.0)
        walk = np.clip(np.cumsum(rng.normal(0, 0.05, len(knots))), np.log(0.8), np.log(1.25))
        rate_curve = np.exp(-np.interp(grid, knots, walk))        # performance s per score s
        perf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * 0.5 * (rate_curve[1:] + rate_curve[:-1]))])
        maps.append(perf * total / perf[-1])                     # exactly `total` seconds
    feats = []
    for perf in maps:
        score_pos = np.interp(np.arange(n_frames) / rate, perf, grid)
        note = np.clip(np.searchsorted(onsets, score_pos, side="right") - 1, 0, len(durations) - 1)
        envelope = 0.4 + 0.6 * np.exp(-3.0 * (score_pos - onsets[note]))
        f = profile[note] * envelope[:, None] + 0.08 * rng.random((n_frames, 12))
        feats.append((f / np.linalg.norm(f, axis=1, keepdims=True)).astype(np.float32))
    inside = onsets[:-1][onsets[:-1] < score_end]
    t_a, t_b = np.interp(inside, grid, maps[0]), np.interp(inside, grid, maps[1])
    keep = t_a * rate < n_frames - 1
    events = np.column_stack([t_a[keep] * rate, t_b[keep] * rate])
    return feats[0], feats[1], events


def _reset_peak_memory() -> float:
    """Reset the process's peak resident memory (Linux ``clear_refs``); return the current RSS in MB.

    Where that is not possible the peak keeps counting from the start, and the
    increase measured is a lower bound.
    """
    import gc

    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def _status_mb(key: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak) resident memory of this process, MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # kB on Linux


def _long_features_worker(folder: str) -> dict:
    """Runs in a fresh interpreter: time and peak-memory increase of multiscale DTW.

    Loads ``fa.npy`` and ``fb.npy`` from ``folder`` (made by the parent, so that
    making them does not count), compiles the kernels on a small problem, resets
    the peak-memory counter, aligns, and writes the path to ``path.npy``.
    """
    fa, fb = np.load(os.path.join(folder, "fa.npy")), np.load(os.path.join(folder, "fb.npy"))
    align_features(fa[:3000], fb[:3000], frame_rate=FEATURE_RATE, method="multiscale")   # JIT warm-up
    before = _reset_peak_memory()
    start = time.perf_counter()
    al = align_features(fa, fb, frame_rate=FEATURE_RATE, method="multiscale")
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    np.save(os.path.join(folder, "path.npy"), al.path())
    return {"seconds": seconds, "rss_before_mb": before, "rss_peak_mb": peak,
            "dtw_peak_increase_mb": peak - before, "levels": al.extras.get("levels")}


# --------------------------------------------------------------------------- (c2) long audio files


def write_long_audio(directory: str, minutes: float, seed: int) -> tuple[str, str, np.ndarray]:
    """Two WAVs of about ``minutes`` each, written 30 s of music at a time; returns paths and events.

    Each piece is a :func:`synthesize_performances` pair (48 notes); A gets its
    rendition A, B its rendition B, so B is A with its own tempo curve piece
    by piece.  Events: every note onset, ``(K, 2)`` seconds in A and in B.
    """
    import soundfile as sf

    path_a, path_b = os.path.join(directory, "long_a.wav"), os.path.join(directory, "long_b.wav")
    events, offset_a, offset_b, k = [], 0.0, 0.0, 0
    with sf.SoundFile(path_a, "w", SR, 1, "PCM_16") as fa, sf.SoundFile(path_b, "w", SR, 1, "PCM_16") as fb:
        while offset_a < minutes * 60:
            pair = synthesize_performances(48, sr=SR, seed=10_000 * seed + k)
            fa.write(pair.audio_a)
            fb.write(pair.audio_b)
            events.append(np.column_stack([offset_a + pair.onsets_a, offset_b + pair.onsets_b]))
            offset_a += len(pair.audio_a) / SR
            offset_b += len(pair.audio_b) / SR
            k += 1
    return path_a, path_b, np.concatenate(events)


def run_cli_measured(path_a: str, path_b: str, out: str) -> dict:
    """``mmalign sync`` in a fresh interpreter: wall time, resident memory after imports and peak."""
    code = (
        "import json, runpy, sys, time\n"
        "import mmalign.cli, mmalign.apps.sync, mmalign.warping, librosa, soundfile\n"
        "mod = runpy.run_path(sys.argv[4])\n"
        "base = mod['_reset_peak_memory']()\n"
        "t = time.perf_counter()\n"
        "mmalign.cli.main(['sync', sys.argv[1], sys.argv[2], '--out', sys.argv[3], '--no-progress'])\n"
        "t = time.perf_counter() - t\n"
        "peak = mod['_status_mb']('VmHWM')\n"
        "print(json.dumps({'seconds': t, 'rss_after_imports_mb': base, 'rss_peak_mb': peak}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, path_a, path_b, out, os.path.abspath(__file__)],
                          capture_output=True, text=True, env=_child_env(), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"mmalign sync failed:\n{proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    result["report"] = lines[:-1]
    return result


def long_audio(minutes: float, out: str) -> dict:
    """(c2): synthesise, synchronise with the CLI, score against the onsets."""
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        start = time.perf_counter()
        path_a, path_b, events = write_long_audio(tmp, minutes, seed=1)
        synth_s = time.perf_counter() - start
        import soundfile as sf

        durations = (sf.info(path_a).duration, sf.info(path_b).duration)
        measured = run_cli_measured(path_a, path_b, os.path.join(tmp, "sync"))
        rows = np.loadtxt(os.path.join(tmp, "sync", "path.csv"), delimiter=",", skiprows=1)
        rate = rows[-1, 0] / rows[-1, 2]            # frames per second, from the last row
        al = Alignment(rows[:, :2].astype(np.int64), frame_rate=rate)
        err = 1e3 * metrics.deviations(al, events * rate) / rate
    return {**measured, "minutes": minutes, "duration_a_s": durations[0], "duration_b_s": durations[1],
            "synthesis_s": synth_s, "median_ms": float(np.median(err)), "p95_ms": float(np.percentile(err, 95)),
            "n_events": int(len(events))}


def _child_env() -> dict:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def long_features(n_frames: int, out: str, seed: int = 0) -> dict:
    """(c1): multiscale DTW of two ``n_frames`` feature sequences in a fresh interpreter; time, memory, error."""
    fa, fb, events = long_feature_pair(n_frames, FEATURE_RATE, seed)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        np.save(os.path.join(tmp, "fa.npy"), fa)
        np.save(os.path.join(tmp, "fb.npy"), fb)
        code = (
            "import json, runpy, sys\n"
            "mod = runpy.run_path(sys.argv[1])\n"
            "print(json.dumps(mod['_long_features_worker'](sys.argv[2])))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code, os.path.abspath(__file__), tmp],
                              capture_output=True, text=True, env=_child_env(), check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"long-feature worker failed:\n{proc.stderr[-2000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        path = np.load(os.path.join(tmp, "path.npy"))
    al = Alignment(path, shape=(len(fa), len(fb)))
    err = 1e3 * metrics.deviations(al, events) / FEATURE_RATE
    step = max(1, len(path) // 2000)
    return {**result, "n_frames": n_frames, "n_events": int(len(events)),
            "feature_mb": (fa.nbytes + fb.nbytes) / 2 ** 20,
            "median_ms": float(np.median(err)), "p95_ms": float(np.percentile(err, 95)),
            "path": path[::step].tolist(), "events": events[:: max(1, len(events) // 2000)].tolist()}


# --------------------------------------------------------------------------- report


def table(rows: dict) -> str:
    """Rows ``{scenario: {method: summary}}`` as a text table."""
    lines = [f"{'scenario':34s} {'method':20s} {'median ms':>10s} {'p95 ms':>9s} {'events':>7s}"]
    for scenario, summary in rows.items():
        for method in METHODS:
            s = summary[method]
            lines.append(f"{scenario:34s} {method:20s} {s['median_ms']:10.1f} {s['p95_ms']:9.1f} {s['n']:7d}")
    return "\n".join(lines)


def _mean_map(path: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A path in seconds as a function of A: mean B time for each distinct A time."""
    a, inverse = np.unique(path[:, 0], return_inverse=True)
    return a, np.bincount(inverse, weights=path[:, 1]) / np.bincount(inverse)


def plot(path: str, example: dict, pooled: dict, long_c1: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 3, 1)
    truth = example["truth"]                       # (seconds in A, true seconds in B), every frame
    for name, color in (("mmalign DTW", "tab:red"), ("librosa defaults", "tab:blue")):
        p = example["paths"][name]
        estimate = np.interp(truth[:, 0], *_mean_map(p))
        ax.plot(truth[:, 0], 1e3 * (estimate - truth[:, 1]), color=color, lw=1.0, alpha=0.8, label=name)
    for onset in example["onsets"]:
        ax.axvline(onset, color="0.85", lw=0.6, zorder=0)
    ax.axhline(0, color="k", lw=0.8)
    ax.set(xlabel="A (s); grey lines: note onsets", ylabel="estimated - true time in B (ms)",
           title=example["title"], ylim=(-250, 250))
    ax.legend(fontsize="small")

    ax = fig.add_subplot(1, 3, 2)
    styles = {"(a) performances: chroma": "-", "(b) music, stretched: chroma": "--",
              "(b) speech-like, stretched: mfcc": ":"}
    for scenario, ls in styles.items():
        errors = pooled[scenario]
        for name, color in (("mmalign DTW", "tab:red"), ("librosa defaults", "tab:blue"), ("linear", "tab:gray")):
            e = np.sort(errors[name])
            ax.plot(e, np.arange(1, len(e) + 1) / len(e), color=color, ls=ls, lw=1.2,
                    label=f"{name}, {scenario.split(':')[0]}")
    ax.set_xscale("log")
    ax.set(xlabel="|error| at events (ms)", ylabel="fraction of events", title="error CDF", xlim=(0.5, 5000))
    ax.legend(fontsize="x-small")

    ax = fig.add_subplot(1, 3, 3)
    p, ev = np.asarray(long_c1["path"], float), np.asarray(long_c1["events"], float)
    ax.plot(ev[:, 0] / FEATURE_RATE / 60, (ev[:, 1] - ev[:, 0]) / FEATURE_RATE, "k.", ms=2, label="ground truth")
    ax.plot(p[:, 0] / FEATURE_RATE / 60, (p[:, 1] - p[:, 0]) / FEATURE_RATE, "tab:red", lw=1, label="multiscale")
    ax.set(xlabel="A (min)", ylabel="B - A (s)",
           title=f"(c1) {long_c1['n_frames']} vs {long_c1['n_frames']} frames: "
                 f"{long_c1['seconds']:.2f} s, +{long_c1['dtw_peak_increase_mb']:.0f} MB")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=".", help="folder for the figure and the JSON (default: .)")
    parser.add_argument("--quick", action="store_true",
                        help="small version: 2 seeds, short signals, 18,000-frame (c1), no (c2)")
    parser.add_argument("--long-minutes", type=float, default=None,
                        help="length of each file in (c2), minutes; 0 skips it (default: 60, quick: 0)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    n_notes, length = (12, 8.0) if args.quick else (48, 30.0)
    long_frames = 18_000 if args.quick else 180_000
    long_minutes = args.long_minutes if args.long_minutes is not None else (0 if args.quick else 60)

    start = time.perf_counter()
    pooled = {}
    pooled["(a) performances: chroma"], example = performances(seeds, n_notes)
    pooled["(a) performances: chroma+onset"], _ = performances(seeds, n_notes, "chroma+onset")
    pooled["(b) music, stretched: chroma"] = stretched("music", seeds, length)
    pooled["(b) speech-like, stretched: mfcc"] = stretched("speech-like", seeds, length)
    if not args.quick and espeak_available():
        pooled["(b) eSpeak speech, stretched: mfcc"] = stretched("espeak", seeds, length)
    elif not args.quick:
        print("eSpeak NG not available (pip install -e \".[speech]\"): the eSpeak speech rows are skipped")
    accuracy = {k: summarise(v) for k, v in pooled.items()}
    print("error at ground-truth events (note onsets / phone starts / word starts), pooled over seeds "
          f"{seeds}; features at {FEATURE_RATE:g} Hz (chroma: {SR / feature_hop(SR, FEATURE_RATE):.2f} Hz)")
    print(table(accuracy))

    c1 = long_features(long_frames, args.out)
    hours = c1["n_frames"] / FEATURE_RATE / 3600
    full_bytes = float(c1["n_frames"]) ** 2
    print(f"\n(c1) synthetic feature sequences, {c1['n_frames']} vs {c1['n_frames']} frames at "
          f"{FEATURE_RATE:g} Hz ({hours:.2f} h each), multiscale DTW in a fresh process:")
    print(f"     {c1['seconds']:.2f} s, peak memory +{c1['dtw_peak_increase_mb']:.0f} MB over the "
          f"{c1['rss_before_mb']:.0f} MB of the process with the features ({c1['feature_mb']:.0f} MB of them) "
          f"loaded, {c1['levels']} levels; error at {c1['n_events']} note onsets: "
          f"median {c1['median_ms']:.1f} ms, p95 {c1['p95_ms']:.1f} ms")
    print(f"     full DTW would need {full_bytes:.3g} cells: {full_bytes / 1e9:.1f} GB at one byte per cell "
          f"(mmalign's exact path), {8 * full_bytes / 1e9:.0f} GB per float64 matrix (librosa.sequence.dtw "
          "keeps two, plus the step matrix)")
    c2 = None
    if long_minutes > 0:
        c2 = long_audio(long_minutes, args.out)
        print(f"\n(c2) two synthetic recordings of {c2['duration_a_s'] / 60:.1f} and {c2['duration_b_s'] / 60:.1f} "
              f"min, written in 30 s pieces ({c2['synthesis_s']:.0f} s), then `mmalign sync` in a fresh process:")
        print(f"     {c2['seconds']:.0f} s wall, peak resident memory {c2['rss_peak_mb']:.0f} MB: "
              f"+{c2['rss_peak_mb'] - c2['rss_after_imports_mb']:.0f} MB over the "
              f"{c2['rss_after_imports_mb']:.0f} MB the process holds after its imports (mmalign, numba, librosa, ...); "
              f"error at {c2['n_events']} note onsets: median {c2['median_ms']:.1f} ms, p95 {c2['p95_ms']:.1f} ms")
        for line in c2["report"]:
            print("     | " + line)

    figure = os.path.join(args.out, FIGURE)
    plot(figure, example, pooled, c1)
    results = {"accuracy": accuracy, "long_features": {k: v for k, v in c1.items() if k not in ("path", "events")},
               "long_audio": c2, "seeds": seeds, "quick": args.quick, "figure": figure,
               "seconds": time.perf_counter() - start}
    with open(os.path.join(args.out, RESULTS), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nfigure: {figure}\nnumbers: {os.path.join(args.out, RESULTS)}  ({results['seconds']:.0f} s in all)")
    return results


if __name__ == "__main__":
    main()
