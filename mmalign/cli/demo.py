"""``mmalign demo``: align two synthetic performances and score the path against the ground truth.

Registered by :mod:`mmalign.cli`: :func:`add_parser` adds the sub-command (and
its handler :func:`run`).  The work is :func:`mmalign.apps.demo.run_demo`.
:func:`main` is the same command on its own (``argv`` without the word ``demo``).
"""

from __future__ import annotations

import argparse
import os
from typing import Sequence

from ..apps.demo import PLOT_NAME
from ._args import non_negative_int, positive_int, run_handler

__all__ = ["add_parser", "run", "main"]

DESCRIPTION = ("Align two synthetic renditions of one score (each with its own time-varying tempo) "
               "with DTW on audio features, and report the error against the exact ground truth in "
               f"milliseconds. Writes {PLOT_NAME} into --out.")
EPILOG = (f"An existing {PLOT_NAME} is not replaced unless --force is given; the plot is written "
          "under a temporary name and renamed into place. "
          "exit status: 0 on success; 2 on a bad option or when the plot cannot be written "
          f"({PLOT_NAME} exists without --force, folder not writable), with a one-line message on stderr.")


def add_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``demo`` sub-command to ``commands`` (the ``add_subparsers`` object of ``mmalign``)."""
    parser = commands.add_parser(
        "demo",
        help="align two synthetic performances and report the error against the ground truth",
        description=DESCRIPTION + " Same as 'python -m mmalign demo'.",
        epilog=EPILOG,
    )
    _add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``mmalign demo`` with parsed ``args``: print the report, write the plot.

    The plot's path is checked first (here too, so that the message names
    ``--force`` rather than ``overwrite=True``), then the demo runs.
    """
    from ..apps.demo import format_report, run_demo
    from ..utils.files import check_output_file

    check_output_file(os.path.join(args.out, PLOT_NAME), force=args.force, option="--out")
    results = run_demo(seed=args.seed, n_notes=args.n_notes, features=args.features, out=args.out,
                       overwrite=args.force)
    print(format_report(results))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmalign demo`` with ``argv`` (without the word ``demo``; default ``sys.argv[1:]``).

    The same options and outputs as ``mmalign demo``: prints a short report
    (frame counts, timings in ms, alignment error in ms against the ground
    truth) and writes ``mmalign_demo.png``.  Errors print ``mmalign: error:
    ...`` on stderr and exit with status 2 (an existing plot without
    ``--force`` among them).

    Examples
    --------
    >>> main(["--n-notes", "8", "--out", __import__("tempfile").mkdtemp()])  # doctest: +SKIP
    0
    """
    parser = argparse.ArgumentParser(prog="mmalign demo", description=DESCRIPTION, epilog=EPILOG)
    _add_arguments(parser)
    return run_handler(parser.parse_args(argv))


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the synthetic score and tempo curves (default: 0)")
    parser.add_argument("--n-notes", type=positive_int, default=48, metavar="N",
                        help="notes in the score; 48 gives about 30 s of audio per rendition (default: 48)")
    parser.add_argument("--features", choices=["chroma", "mfcc"], default="chroma",
                        help="frame features to align: 12-bin constant-Q chroma or 20 MFCCs (default: chroma)")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help=f"directory for {PLOT_NAME}, created if missing (default: current directory)")
    parser.add_argument("--force", action="store_true",
                        help=f"replace an existing {PLOT_NAME} (default: refuse)")
    parser.set_defaults(handler=run)
