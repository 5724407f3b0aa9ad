"""Audio-to-audio alignment demo with a known ground truth.

Two renditions of one random score are synthesised, each with its own smoothly
varying tempo (:func:`mmalign.datasets.synthesize_performances`).  Their
chroma (or MFCC) features are aligned with :func:`mmalign.dtw_path`, and the
path is scored against the exact correspondence in milliseconds.  A picture of
the cost matrix, the path and the ground truth is written to
``mmalign_demo.png``.

Run it with ``python -m mmalign.demo`` or ``mmalign demo``; ``--help`` lists
the options.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Sequence

import numpy as np

__all__ = ["run_demo", "main"]

PLOT_NAME = "mmalign_demo.png"


def run_demo(
    *,
    seed: int = 0,
    n_notes: int = 48,
    features: str = "chroma",
    sr: int = 22050,
    hop_length: int = 512,
    out: str | os.PathLike | None = ".",
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

    Examples
    --------
    >>> r = run_demo(n_notes=8, out=None)
    >>> r["median_error_ms"] < 100
    True
    """
    import mmalign
    from mmalign import metrics
    from mmalign.datasets import synthesize_performances
    from mmalign.features import chroma, frame_rate, mfcc

    extractors = {"chroma": chroma, "mfcc": mfcc}
    if features not in extractors:
        raise ValueError(f"features must be one of {sorted(extractors)}, got {features!r}")
    extract = extractors[features]

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
    mmalign.dtw_path(feats_a[:4], feats_b[:5])
    warmup_ms = 1e3 * (time.perf_counter() - start)
    start = time.perf_counter()
    estimate = mmalign.dtw_path(feats_a, feats_b)
    dtw_ms = 1e3 * (time.perf_counter() - start)
    alignment = mmalign.Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape,
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
        "mean_error_ms": 1e3 * metrics.mean_absolute_deviation(alignment, reference, frame_rate=rate),
        "median_error_ms": 1e3 * metrics.median_absolute_deviation(alignment, reference, frame_rate=rate),
        "baseline_median_error_ms": 1e3 * float(np.median(np.abs(linear - reference[:, 1]))) / rate,
        "within_50ms": metrics.fraction_within(alignment, reference, 0.05, frame_rate=rate),
        "within_100ms": metrics.fraction_within(alignment, reference, 0.10, frame_rate=rate),
        "n_reference": len(reference),
        "alignment": alignment,
        "plot": None,
    }

    if out is not None:
        from scipy.spatial.distance import cdist

        from mmalign.plot import save_alignment_plot

        os.makedirs(out, exist_ok=True)
        plot_path = os.path.join(os.fspath(out), PLOT_NAME)
        cost = cdist(feats_a, feats_b, "sqeuclidean")
        save_alignment_plot(alignment, plot_path, cost=cost, reference=reference,
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic score and tempo curves (default: 0)")
    parser.add_argument("--n-notes", type=_positive_int, default=48, metavar="N",
                        help="notes in the score; 48 gives about 30 s of audio per rendition (default: 48)")
    parser.add_argument("--features", choices=["chroma", "mfcc"], default="chroma",
                        help="frame features to align: 12-bin constant-Q chroma or 20 MFCCs (default: chroma)")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help=f"directory for {PLOT_NAME}, created if missing (default: current directory)")


def _run(args: argparse.Namespace) -> int:
    results = run_demo(seed=args.seed, n_notes=args.n_notes, features=args.features, out=args.out)
    print(format_report(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo from the command line; ``argv`` defaults to ``sys.argv[1:]``.

    Prints a short report (frame counts, timings in ms, alignment error in ms
    against the ground truth) and writes ``mmalign_demo.png``.

    Examples
    --------
    >>> main(["--n-notes", "8", "--out", __import__("tempfile").mkdtemp()])  # doctest: +SKIP
    0
    """
    parser = argparse.ArgumentParser(
        prog="python -m mmalign.demo",
        description="Align two synthetic renditions of one score (each with its own time-varying "
                    "tempo) with DTW on audio features, and report the error against the exact "
                    f"ground truth in milliseconds. Writes {PLOT_NAME}.",
    )
    _add_arguments(parser)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
