"""``mmalign sync A B --out DIR``: synchronise two recordings of the same music or speech.

Registered by :mod:`mmalign.cli`: :func:`add_parser` adds the sub-command
(and its handler :func:`run`).  The work is done by
:func:`mmalign.apps.sync.synchronize_files`.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..apps.sync.core import METHODS
from ..apps.sync.features import FEATURES
from ._args import add_command, non_negative_int, positive_float, positive_int

__all__ = ["add_parser", "run"]

DESCRIPTION = """\
Synchronise two recordings of the same piece or the same text: two
performances of a song, two takes of a line, a film's dialogue and its dub.
For every moment of A, find the moment of B that sounds the same.

Both files are mixed down to mono and cut into frames (50 per second by
default); each frame becomes a feature vector, and dynamic time warping (DTW)
finds the monotone path through the two sequences that matches them best.
Audio is read in chunks of 60 s, so two recordings of an hour each take a
few hundred MB and a few minutes.

Outputs, in DIR (created if missing):
  path.csv       the warping path, one row per step:
                 x_index,y_index (frames of A and B), x_time,y_time (seconds)
  preview.wav    stereo, 16 bit: A on the left, B re-timed onto A on the
                 right (time-varying phase vocoder).  Where the
                 synchronisation holds, both ears hear the same thing at the
                 same time.
  alignment.png  the path (seconds of A across, seconds of B up), over the
                 matrix of frame distances when it is small enough to draw
Existing files are not replaced unless --force is given; each file is
written under a temporary name and renamed into place when complete.
"""

EPILOG = """\
features:
  chroma+dlnco  harmony plus note onsets per pitch class (decaying locally
                adaptive normalised chroma onsets, as in MrMsDTW); music,
                also across instruments: piano against strings or organ
                (default)
  chroma        harmony alone (12 pitch classes), robust to instrumentation
                and loudness; blurs note starts of slow attacks
  mfcc          timbre (20 MFCCs minus their mean per recording); speech
  onset         spectral flux in 8 bands; percussive material
  chroma+onset  chroma plus spectral flux in 8 bands

method:
  dtw           exact DTW; memory n_A * n_B bytes (1 min vs 1 min at 50 Hz:
                9 MB; 1 h vs 1 h: 32 GB)
  multiscale    coarse-to-fine DTW, exact inside a band around a coarser
                path; memory and time linear in the length
  auto          dtw up to 40 M cells (about 2 min vs 2 min), multiscale above
                (default)

sample rates:
  Without --sr the files are analysed at their own rate, which must then be
  the same for both; if they differ, mmalign stops and asks for --sr.  With
  --sr both are resampled on the fly (soxr).

examples:
  mmalign sync take1.wav take2.flac --out sync/
  mmalign sync speech.wav dub.wav --out sync/ --features mfcc
  mmalign sync concert.flac studio.flac --out sync/ --sr 22050 --method multiscale

exit status: 0 on success; 2 on bad input (missing or unreadable file,
mismatched sample rates without --sr, audio shorter than 0.5 s) or a bad
output (an output that exists without --force, that is an input, or whose
folder cannot be written; checked before any work), with a one-line message
on stderr.
"""


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``sync`` sub-command to ``commands`` (the ``add_subparsers`` object of ``mmalign``)."""
    parser = add_command(
        commands, "sync",
        help="synchronise two recordings of the same music or speech; write the path, a preview and a plot",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("a", metavar="A", help="first recording: the reference timeline (side x)")
    parser.add_argument("b", metavar="B", help="second recording: re-timed onto A in the preview (side y)")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="folder for path.csv, preview.wav and alignment.png (created if missing)")
    parser.add_argument("--features", choices=FEATURES, default="chroma+dlnco",
                        help="frame features, see below (default: chroma+dlnco)")
    parser.add_argument("--feature-rate", type=positive_float, default=50.0, metavar="HZ",
                        help="frames per second (default: 50; with chroma the hop is rounded to a "
                             "multiple of 64 samples at 22050 Hz, which gives 49.2)")
    parser.add_argument("--method", choices=METHODS, default="auto",
                        help="alignment algorithm, see below (default: auto)")
    parser.add_argument("--radius", type=non_negative_int, default=None, metavar="N",
                        help="only match frames at most N frames apart, plus the difference in "
                             "length: a Sakoe-Chiba band (default: no band)")
    parser.add_argument("--multiscale-radius", type=positive_int, default=16, metavar="N",
                        help="multiscale: half-width in frames of the band refined at each level "
                             "(default: 16)")
    parser.add_argument("--sr", type=positive_int, default=None, metavar="HZ",
                        help="resample both files to this rate before the analysis (default: the "
                             "files' own rate, which must be the same)")
    parser.add_argument("--no-preview", action="store_true", help="do not write preview.wav")
    parser.add_argument("--no-plot", action="store_true", help="do not write alignment.png")
    parser.add_argument("--force", action="store_true",
                        help="replace outputs that already exist in DIR (default: refuse)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show progress bars (default: when stderr is a terminal)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``mmalign sync`` with parsed ``args``.

    Input and output errors raise ``FileNotFoundError``, ``FileExistsError``
    or ``ValueError`` with a one-line message naming the file;
    :func:`mmalign.cli.main` prints it and exits with 2.  Outputs are checked
    first, then the audio files (readable, at least 0.5 s), then the work starts.
    """
    from ..apps.sync.core import MIN_SECONDS, check_outputs, synchronize_files
    from ..features.audio import check_audio_file

    for path in (args.a, args.b):
        if not os.path.exists(path):
            raise FileNotFoundError(f"audio file not found: {path}")
        if os.path.isdir(path):
            raise ValueError(f"expected an audio file, got a folder: {path}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out must be a folder, but {args.out} is a file")
    check_outputs(args.out, (args.a, args.b), preview=not args.no_preview, plot=not args.no_plot,
                  overwrite=args.force, option="--out", force_hint="--force")
    info_a, info_b = (check_audio_file(p, min_seconds=MIN_SECONDS) for p in (args.a, args.b))
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    result = synchronize_files(
        args.a, args.b, args.out, sr=args.sr, features=args.features, feature_rate=args.feature_rate,
        method=args.method, radius=args.radius, multiscale_radius=args.multiscale_radius,
        preview=not args.no_preview, plot=not args.no_plot, progress=progress, overwrite=args.force,
    )
    print(_report(result, info_a, info_b))
    return 0


def _report(result, info_a, info_b) -> str:
    al = result.alignment
    t = al.times()
    note = f" (resampled from {info_a.sr} / {info_b.sr} Hz)" if result.resampled else ""
    lines = [
        f"A          {info_a.path}: {result.duration_a:.2f} s, {al.n_x} frames",
        f"B          {info_b.path}: {result.duration_b:.2f} s, {al.n_y} frames",
        f"features   {al.extras['features']}, {al.frame_rate:.2f} frames/s, analysed at {result.sr} Hz{note}",
        f"method     {al.extras['method']}: path of {len(t)} steps, B/A duration ratio "
        f"{t[-1, 1] / max(t[-1, 0], 1e-9):.3f}",
        "time       " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.seconds.items()),
    ]
    for kind in ("path", "preview", "plot"):
        if kind in result.outputs:
            lines.append(f"wrote      {result.outputs[kind]}")
    return "\n".join(lines)

