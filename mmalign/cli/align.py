"""``mmalign align A B``: DTW-align two audio files or two feature sequences.

Registered by :mod:`mmalign.cli`: :func:`add_parser` adds the sub-command (and
its handler :func:`run`).  Audio becomes chroma or MFCC frames
(:mod:`mmalign.features`); arrays (``.npy`` / ``.csv``, time first) are aligned
as they are, with :func:`mmalign.dtw_path`.
"""

from __future__ import annotations

import argparse
import os
import textwrap
import time

import numpy as np

from ..features.audio import MIN_AUDIO_SECONDS
from ..utils.files import atomic_write, check_output_file
from ._args import InputError, add_command, non_negative_int, positive_int

__all__ = ["add_parser", "run", "AUDIO_EXTENSIONS", "ARRAY_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".w64")
ARRAY_EXTENSIONS = (".npy", ".csv")
# Above this many cost-matrix cells (~32 MB of float64) --plot draws the path only.
_MAX_PLOT_CELLS = 4_000_000

ALIGN_EPILOG = """\
outputs:
  --out and --plot never replace an existing file unless --force is given,
  and never an input file, even with --force; both paths are checked before
  any audio is decoded.  Each file is written under a temporary name in its
  folder and renamed into place when complete.

exit status: 0 on success; 2 on bad input (missing or unreadable file, audio
shorter than {min_seconds:g} s, malformed .npy/.csv, mixed kinds of input), a bad
output (exists without --force, is an input, unknown plot type, folder not
writable) or a bad option, with a one-line message on stderr.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``align`` sub-command to ``commands`` (the ``add_subparsers`` object of ``mmalign``)."""
    parser = add_command(
        commands, "align",
        help="align two audio files or two feature sequences with DTW",
        description=textwrap.fill(
            "Align two recordings or two sequences with dynamic time warping. "
            "A and B are either both audio files (" + ", ".join(AUDIO_EXTENSIONS) + "; at least "
            f"{MIN_AUDIO_SECONDS:g} s each), turned into frame features, or both arrays: .npy or "
            "comma-separated .csv (an optional header row is skipped), time first, shape (n,) or (n, d). "
            "Prints the DTW cost (square root of the accumulated squared Euclidean cost), the lengths in "
            "frames and the time taken.", width=79),
        epilog=ALIGN_EPILOG.format(min_seconds=MIN_AUDIO_SECONDS),
    )
    parser.add_argument("a", metavar="A", help="first input (side x of the alignment)")
    parser.add_argument("b", metavar="B", help="second input (side y of the alignment)")
    parser.add_argument(
        "--features", choices=["chroma", "mfcc", "raw"], default=None,
        help="features to align: 12-bin chroma or 20 MFCCs per audio frame, or the array values "
             "as they are ('raw', arrays only) (default: chroma for audio, raw for arrays)",
    )
    parser.add_argument("--radius", type=non_negative_int, default=None, metavar="R",
                        help="Sakoe-Chiba band: only match frames at most R frames apart "
                             "(default: no constraint)")
    parser.add_argument("--multiscale", action="store_true",
                        help="multiscale DTW: time and memory linear in the lengths, for very long "
                             "inputs (100,000+ frames); near-optimal path (default: exact DTW)")
    parser.add_argument("--sr", type=positive_int, default=22050,
                        help="audio: resample both files to this rate, in Hz (default: 22050)")
    parser.add_argument("--hop", type=positive_int, default=512,
                        help="audio: hop between feature frames, in samples (default: 512, ~23 ms at 22050 Hz)")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="write a picture of the path (over the cost matrix when it is small "
                             "enough) to this PNG file; .pdf, .svg, .jpg ... work too (default: no plot)")
    parser.add_argument("--out", metavar="CSV", default=None,
                        help="write the path as CSV: columns x_index,y_index (frames), plus "
                             "x_time,y_time (seconds) for audio (default: not written)")
    parser.add_argument("--force", action="store_true",
                        help="replace --out / --plot files that already exist (default: refuse)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``mmalign align`` with parsed ``args``; input errors raise :class:`~mmalign.cli._args.InputError`.

    The kinds of input and the output paths are checked first, then the audio
    files (readable, at least 0.5 s), then features are computed and DTW run.
    """
    kind_a, kind_b = _input_kind(args.a), _input_kind(args.b)
    if kind_a != kind_b:
        raise InputError(
            f"cannot align an {kind_a} file with an {kind_b} file ({args.a}, {args.b}); "
            "give two audio files or two array files"
        )
    features = args.features or ("chroma" if kind_a == "audio" else "raw")
    if kind_a == "audio" and features == "raw":
        raise InputError("--features raw applies to .npy/.csv inputs; use chroma or mfcc for audio")
    if kind_a == "array" and features != "raw":
        raise InputError(f"--features {features} needs audio inputs; .npy/.csv inputs are aligned as they are")
    _check_align_outputs(args)
    if kind_a == "audio":
        from ..features.audio import check_audio_file

        for path in (args.a, args.b):
            check_audio_file(path)

    from ..alignment import Alignment
    from ..warping import dtw_path

    start = time.perf_counter()
    if kind_a == "audio":
        from ..features import chroma, frame_rate, mfcc

        extract = chroma if features == "chroma" else mfcc
        x = extract(_load_audio(args.a, args.sr), args.sr, hop_length=args.hop)
        y = extract(_load_audio(args.b, args.sr), args.sr, hop_length=args.hop)
        rate = frame_rate(args.sr, args.hop)
    else:
        x, y = _load_array(args.a), _load_array(args.b)
        rate = None
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    estimate = dtw_path(x, y, radius=args.radius, method="multiscale" if args.multiscale else "exact")
    dtw_s = time.perf_counter() - start
    alignment = Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape,
                          frame_rate=rate, extras=estimate.extras)

    unit = f" ({features}, {1e3 / rate:.1f} ms per frame)" if rate else ""
    print(f"DTW cost      {alignment.cost:.6g}")
    print(f"lengths       A: {len(x)} frames, B: {len(y)} frames{unit}")
    print(f"path length   {len(alignment.path())} pairs")
    label = "load + features" if kind_a == "audio" else "load"
    print(f"time          {label} {1e3 * load_s:.1f} ms, DTW {1e3 * dtw_s:.1f} ms")
    if args.out:
        with atomic_write(args.out) as tmp:
            alignment.to_csv(tmp)
        print(f"path written  {args.out}")
    if args.plot:
        from ..plot import save_alignment_plot

        cost = None
        if len(x) * len(y) <= _MAX_PLOT_CELLS:
            from scipy.spatial.distance import cdist

            cost = cdist(x.reshape(len(x), -1), y.reshape(len(y), -1), "sqeuclidean")
        with atomic_write(args.plot) as tmp:
            save_alignment_plot(alignment, tmp, cost=cost,
                                title=f"{os.path.basename(args.a)} vs {os.path.basename(args.b)}")
        print(f"plot written  {args.plot}")
    return 0


def _check_align_outputs(args: argparse.Namespace) -> None:
    """Refuse ``--out`` / ``--plot`` paths that cannot or must not be written, before any work."""
    inputs = (args.a, args.b)
    if args.out and args.plot and os.path.realpath(args.out) == os.path.realpath(args.plot):
        raise InputError(f"--out and --plot name the same file: {args.out}")
    if args.out:
        check_output_file(args.out, force=args.force, inputs=inputs, option="--out")
    if args.plot:
        check_output_file(args.plot, force=args.force, inputs=inputs, option="--plot",
                          extensions=_plot_extensions())


def _plot_extensions() -> tuple[str, ...]:
    """File extensions matplotlib can write (``.png``, ``.pdf``, ``.svg``, ...), with the dot.

    ``.pgf`` is left out: it needs a LaTeX installation, which would fail
    only after the work is done.

    Examples
    --------
    >>> ".png" in _plot_extensions() and ".pdf" in _plot_extensions()
    True
    """
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted("." + ext for ext in FigureCanvasBase.get_supported_filetypes() if ext != "pgf"))


def _input_kind(path: str) -> str:
    if not os.path.exists(path):
        raise InputError(f"file not found: {path}")
    if os.path.isdir(path):
        raise InputError(f"expected a file, got a directory: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    if ext in ARRAY_EXTENSIONS:
        return "array"
    raise InputError(
        f"unsupported file type '{ext or '(none)'}' for {path}; expected audio "
        f"({', '.join(AUDIO_EXTENSIONS)}) or arrays ({', '.join(ARRAY_EXTENSIONS)})"
    )


def _load_audio(path: str, sr: int) -> np.ndarray:
    from ..features import load_audio

    y, _ = load_audio(path, sr=sr, mono=True)
    return y


def _load_array(path: str) -> np.ndarray:
    """A time-first float array ``(n, d)`` from ``.npy`` or ``.csv``."""
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise InputError(f"could not read {path} as a .npy array: {err}") from None
    else:
        arr = _load_csv(path)
    if arr.dtype.kind not in "iuf":
        raise InputError(f"{path} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InputError(f"{path} must hold a sequence of shape (n,) or (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{path} holds an empty sequence (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{path} contains NaN or infinite values")
    return arr.astype(np.float64)


def _load_csv(path: str) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"could not read {path}: {err}") from None
    lines = [line for line in lines if line and not line.startswith("#")]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append([float(field) for field in line.split(",")])
        except ValueError:
            if number == 1:  # a header row
                continue
            raise InputError(f"bad CSV {path}: non-numeric value in data row {number}: {line[:60]!r}") from None
    if not rows:
        raise InputError(f"bad CSV {path}: no numeric rows")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise InputError(f"bad CSV {path}: rows have different numbers of columns {sorted(widths)}")
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0] if arr.shape[1] == 1 else arr
