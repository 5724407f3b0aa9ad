"""What every sub-command of ``mmalign`` shares: argument types, the input-error class and
the one place that turns errors into ``mmalign: error: ...`` and exit status 2.

Only the standard library is imported here, so that ``mmalign --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["InputError", "add_command", "integer", "positive_int", "non_negative_int", "positive_float", "run_handler"]


class InputError(ValueError):
    """A problem with the user's input: reported in one line, no traceback."""


def add_command(commands: argparse._SubParsersAction, name: str, *, help: str, description: str,
                epilog: str) -> argparse.ArgumentParser:
    """The parser of sub-command ``name``: ``help`` is its line in ``mmalign --help``;
    ``description`` and ``epilog`` are printed as written (line breaks kept)."""
    return commands.add_parser(name, help=help, description=description, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def integer(text: str) -> int:
    """An ``int`` argument; anything else is an argparse error naming the option.

    >>> integer("12")
    12
    """
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer argument > 0.

    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a positive integer, got 0
    """
    value = integer(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer argument >= 0.

    >>> non_negative_int("0")
    0
    """
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number argument > 0.

    >>> positive_float("49.5")
    49.5
    >>> positive_float("inf")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a positive number, got inf
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def run_handler(args: argparse.Namespace) -> int:
    """Run ``args.handler(args)`` (set by each sub-command's ``add_parser``).

    Input and output errors (``ValueError``, :class:`InputError` among them,
    and ``OSError``: missing file, existing output, folder not writable) print
    ``mmalign: error: MESSAGE`` on stderr and raise ``SystemExit(2)``.
    """
    try:
        return args.handler(args)
    except (ValueError, OSError) as err:
        print(f"mmalign: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
