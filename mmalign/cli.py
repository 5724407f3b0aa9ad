"""The ``mmalign`` command.

Sub-commands
------------
``mmalign align A B``
    DTW-align two audio files (through chroma or MFCC features) or two
    sequences stored as ``.npy`` / ``.csv`` (time first); print the cost, the
    lengths and the time taken; optionally write the path as CSV and a plot.
``mmalign demo``
    The synthetic audio-to-audio demo with ground truth (:mod:`mmalign.demo`).
``mmalign subtitle AUDIO TEXT --out DIR``
    Time a text against its recording and write SRT / WebVTT / CSV
    (:mod:`mmalign.cli_subtitle`, :mod:`mmalign.forced_alignment`).
``mmalign sync A B --out DIR``
    Synchronise two recordings of the same music or speech; write the path
    (CSV), a stereo preview (A left, B re-timed right) and a plot
    (:mod:`mmalign.cli_sync`, :mod:`mmalign.sync`).

Each sub-command beyond ``align`` and ``demo`` lives in its own module
``mmalign/cli_NAME.py`` with ``add_parser(commands)`` (adds the parser and
sets ``handler``) and ``run(args)``; :func:`_build_parser` registers it.

Errors in the input (missing file, unreadable or too short audio, malformed
CSV, mixed kinds of input) and in the outputs print ``mmalign: error: ...`` on
stderr and exit with status 2; errors in the arguments print the usage line
and ``error: argument --OPTION: ...`` (argparse) and exit with 2 as well.

Every file the commands write follows one rule (:mod:`mmalign.utils.files`):
never onto an input, never over an existing file without ``--force``, the
paths checked before any audio is decoded or DTW computed, and each file
written under a temporary name in its folder and renamed into place.  ``python
-m mmalign`` is the same as ``mmalign``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
import time
from typing import Sequence

import numpy as np

from .utils import atomic_write, check_output_file

__all__ = ["main"]

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


class _InputError(ValueError):
    """A problem with the user's input: reported in one line, no traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mmalign`` command; ``argv`` defaults to ``sys.argv[1:]``.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name.

    Returns
    -------
    status : int
        0 on success.  Input errors raise ``SystemExit(2)`` after printing
        ``mmalign: error: ...`` on stderr.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "a.npy"), np.arange(5.0))
    >>> np.save(os.path.join(d, "b.npy"), np.arange(7.0))
    >>> main(["align", os.path.join(d, "a.npy"), os.path.join(d, "b.npy")])  # doctest: +ELLIPSIS
    DTW cost ...
    0
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (_InputError, ValueError, OSError) as err:
        print(f"mmalign: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _build_parser() -> argparse.ArgumentParser:
    from . import demo

    parser = argparse.ArgumentParser(
        prog="mmalign",
        description="Multimodal alignment from the command line.",
        epilog="Run 'mmalign COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")

    from .features.audio import MIN_AUDIO_SECONDS

    align = commands.add_parser(
        "align",
        help="align two audio files or two feature sequences with DTW",
        description=textwrap.fill(
            "Align two recordings or two sequences with dynamic time warping. "
            "A and B are either both audio files (" + ", ".join(AUDIO_EXTENSIONS) + "; at least "
            f"{MIN_AUDIO_SECONDS:g} s each), turned into frame features, or both arrays: .npy or "
            "comma-separated .csv (an optional header row is skipped), time first, shape (n,) or (n, d). "
            "Prints the DTW cost (square root of the accumulated squared Euclidean cost), the lengths in "
            "frames and the time taken.", width=79),
        epilog=ALIGN_EPILOG.format(min_seconds=MIN_AUDIO_SECONDS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    align.add_argument("a", metavar="A", help="first input (side x of the alignment)")
    align.add_argument("b", metavar="B", help="second input (side y of the alignment)")
    align.add_argument(
        "--features", choices=["chroma", "mfcc", "raw"], default=None,
        help="features to align: 12-bin chroma or 20 MFCCs per audio frame, or the array values "
             "as they are ('raw', arrays only) (default: chroma for audio, raw for arrays)",
    )
    align.add_argument("--radius", type=_non_negative_int, default=None, metavar="R",
                       help="Sakoe-Chiba band: only match frames at most R frames apart "
                            "(default: no constraint)")
    align.add_argument("--multiscale", action="store_true",
                       help="multiscale DTW: time and memory linear in the lengths, for very long "
                            "inputs (100,000+ frames); near-optimal path (default: exact DTW)")
    align.add_argument("--sr", type=_positive_int, default=22050,
                       help="audio: resample both files to this rate, in Hz (default: 22050)")
    align.add_argument("--hop", type=_positive_int, default=512,
                       help="audio: hop between feature frames, in samples (default: 512, ~23 ms at 22050 Hz)")
    align.add_argument("--plot", metavar="PNG", default=None,
                       help="write a picture of the path (over the cost matrix when it is small "
                            "enough) to this PNG file; .pdf, .svg, .jpg ... work too (default: no plot)")
    align.add_argument("--out", metavar="CSV", default=None,
                       help="write the path as CSV: columns x_index,y_index (frames), plus "
                            "x_time,y_time (seconds) for audio (default: not written)")
    align.add_argument("--force", action="store_true",
                       help="replace --out / --plot files that already exist (default: refuse)")
    align.set_defaults(handler=_align)

    demo_parser = commands.add_parser(
        "demo",
        help="align two synthetic performances and report the error against the ground truth",
        description=demo.DESCRIPTION + " Same as 'python -m mmalign.demo'.",
        epilog=demo.EPILOG,
    )
    demo._add_arguments(demo_parser)
    demo_parser.set_defaults(handler=demo._run)
    from . import cli_subtitle
    cli_subtitle.add_parser(commands)
    from . import cli_sync
    cli_sync.add_parser(commands)
    return parser


def _align(args: argparse.Namespace) -> int:
    import mmalign

    kind_a, kind_b = _input_kind(args.a), _input_kind(args.b)
    if kind_a != kind_b:
        raise _InputError(
            f"cannot align an {kind_a} file with an {kind_b} file ({args.a}, {args.b}); "
            "give two audio files or two array files"
        )
    features = args.features or ("chroma" if kind_a == "audio" else "raw")
    if kind_a == "audio" and features == "raw":
        raise _InputError("--features raw applies to .npy/.csv inputs; use chroma or mfcc for audio")
    if kind_a == "array" and features != "raw":
        raise _InputError(f"--features {features} needs audio inputs; .npy/.csv inputs are aligned as they are")
    _check_align_outputs(args)
    if kind_a == "audio":
        from .features.audio import check_audio_file

        for path in (args.a, args.b):
            check_audio_file(path)

    start = time.perf_counter()
    if kind_a == "audio":
        from .features import chroma, frame_rate, mfcc

        extract = chroma if features == "chroma" else mfcc
        x = extract(_load_audio(args.a, args.sr), args.sr, hop_length=args.hop)
        y = extract(_load_audio(args.b, args.sr), args.sr, hop_length=args.hop)
        rate = frame_rate(args.sr, args.hop)
    else:
        x, y = _load_array(args.a), _load_array(args.b)
        rate = None
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    estimate = mmalign.dtw_path(x, y, radius=args.radius,
                                method="multiscale" if args.multiscale else "exact")
    dtw_s = time.perf_counter() - start
    alignment = mmalign.Alignment(estimate.path(), cost=estimate.cost, shape=estimate.shape,
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
        from .plot import save_alignment_plot

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
        raise _InputError(f"--out and --plot name the same file: {args.out}")
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
        raise _InputError(f"file not found: {path}")
    if os.path.isdir(path):
        raise _InputError(f"expected a file, got a directory: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    if ext in ARRAY_EXTENSIONS:
        return "array"
    raise _InputError(
        f"unsupported file type '{ext or '(none)'}' for {path}; expected audio "
        f"({', '.join(AUDIO_EXTENSIONS)}) or arrays ({', '.join(ARRAY_EXTENSIONS)})"
    )


def _load_audio(path: str, sr: int) -> np.ndarray:
    from .features import load_audio

    y, _ = load_audio(path, sr=sr, mono=True)
    return y


def _load_array(path: str) -> np.ndarray:
    """A time-first float array ``(n, d)`` from ``.npy`` or ``.csv``."""
    if path.lower().endswith(".npy"):
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as err:
            raise _InputError(f"could not read {path} as a .npy array: {err}") from None
    else:
        arr = _load_csv(path)
    if arr.dtype.kind not in "iuf":
        raise _InputError(f"{path} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise _InputError(f"{path} must hold a sequence of shape (n,) or (n, d), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise _InputError(f"{path} holds an empty sequence (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise _InputError(f"{path} contains NaN or infinite values")
    return arr.astype(np.float64)


def _load_csv(path: str) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, UnicodeDecodeError) as err:
        raise _InputError(f"could not read {path}: {err}") from None
    lines = [line for line in lines if line and not line.startswith("#")]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append([float(field) for field in line.split(",")])
        except ValueError:
            if number == 1:  # a header row
                continue
            raise _InputError(f"bad CSV {path}: non-numeric value in data row {number}: {line[:60]!r}") from None
    if not rows:
        raise _InputError(f"bad CSV {path}: no numeric rows")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise _InputError(f"bad CSV {path}: rows have different numbers of columns {sorted(widths)}")
    arr = np.array(rows, dtype=np.float64)
    return arr[:, 0] if arr.shape[1] == 1 else arr


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


if __name__ == "__main__":
    raise SystemExit(main())
