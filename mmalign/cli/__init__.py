"""The ``mmalign`` command (also ``python -m mmalign``).

Sub-commands
------------
``mmalign align A B``
    DTW-align two audio files (through chroma or MFCC features) or two
    sequences stored as ``.npy`` / ``.csv`` (time first); print the cost, the
    lengths and the time taken; optionally write the path as CSV and a plot
    (:mod:`mmalign.cli.align`).
``mmalign demo``
    The synthetic audio-to-audio demo with ground truth
    (:mod:`mmalign.cli.demo`, :mod:`mmalign.apps.demo`).
``mmalign score SCORE AUDIO --out DIR``
    Align a MIDI / MusicXML score with a recording; write per-note times
    (CSV), a re-timed MIDI and a plot (:mod:`mmalign.cli.score`,
    :func:`mmalign.apps.sync.align_score`).
``mmalign subtitle AUDIO TEXT --out DIR``
    Time a text against its recording and write SRT / WebVTT / CSV
    (:mod:`mmalign.cli.subtitle`, :mod:`mmalign.apps.forced_alignment`).
``mmalign sync A B --out DIR``
    Synchronise two recordings of the same music or speech; write the path
    (CSV), a stereo preview (A left, B re-timed right) and a plot
    (:mod:`mmalign.cli.sync`, :mod:`mmalign.apps.sync`).

Each sub-command is one module ``mmalign/cli/NAME.py`` with
``add_parser(commands)`` (adds the parser and sets ``handler``) and
``run(args)``; the argument types they share are in :mod:`mmalign.cli._args`.
Building the parser imports no heavy module (no torch, scikit-learn or
librosa): each ``run`` imports what its work needs.

Errors in the input (missing file, unreadable or too short audio, malformed
CSV, mixed kinds of input) and in the outputs print ``mmalign: error: ...`` on
stderr and exit with status 2; errors in the arguments print the usage line
and ``error: argument --OPTION: ...`` (argparse) and exit with 2 as well.

Every file the commands write follows one rule (:mod:`mmalign.utils.files`):
never onto an input, never over an existing file without ``--force``, the
paths checked before any audio is decoded or DTW computed, and each file
written under a temporary name in its folder and renamed into place.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from . import align, demo, score, subtitle, sync
from ._args import run_handler

__all__ = ["main"]

# In the order of their registration (``mmalign --help`` lists them so).
_COMMANDS = (align, demo, score, subtitle, sync)


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
    args = _build_parser().parse_args(argv)
    return run_handler(args)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmalign",
        description="Multimodal alignment from the command line.",
        epilog="Run 'mmalign COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(title="commands", dest="command", required=True, metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(commands)
    return parser
