"""Safe output files: check a path before any work, then write it through a temporary file.

The command line follows one rule for every file it writes (DESIGN.md,
"Files"): never onto an input, never over an existing file without
``--force``, paths checked before anything is computed, and the file written
under a temporary name in the same folder and renamed into place, so an
interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterable, Iterator

__all__ = ["check_output_file", "atomic_write"]


def check_output_file(path: str | os.PathLike, *, force: bool, inputs: Iterable[str | os.PathLike] = (),
                      option: str = "--out", extensions: Iterable[str] | None = None,
                      force_hint: str = "--force") -> str:
    """Check that ``path`` may be written, without creating anything.

    Parameters
    ----------
    path : str or os.PathLike
        The file to be written.
    force : bool
        Whether an existing file may be replaced.
    inputs : iterable of str or os.PathLike
        Files the run reads; ``path`` must not be any of them, however spelt
        (relative, ``..``, symbolic or hard link).
    option : str
        How the user named ``path`` (``"--out"``, ``"--plot"``, ``"out_dir"``),
        for the messages.
    extensions : iterable of str or None
        Allowed extensions with the dot (``".png"``), compared without case;
        ``None`` allows any.
    force_hint : str
        What lets an existing file be replaced (``"--force"``,
        ``"overwrite=True"``), for the message.

    Returns
    -------
    path : str
        ``path`` as a string.

    Raises
    ------
    ValueError
        ``path`` is an input, a folder, has an extension not in
        ``extensions``, or its folder cannot be created or is not writable.
    FileExistsError
        ``path`` exists and ``force`` is False (the message names the file
        and ``force_hint``).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> check_output_file(os.path.join(d, "new", "path.csv"), force=False) == os.path.join(d, "new", "path.csv")
    True
    >>> open(os.path.join(d, "a.csv"), "w").close()
    >>> check_output_file(os.path.join(d, "a.csv"), force=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileExistsError: --out: .../a.csv already exists; pass --force to replace it
    """
    path = os.fspath(path)
    for source in inputs:
        if _same_file(path, os.fspath(source)):
            raise ValueError(f"{option} {path} is the input file {os.fspath(source)}; "
                             "choose another output path (refusing to overwrite an input)")
    if extensions is not None:
        allowed = sorted({e.lower() for e in extensions})
        ext = os.path.splitext(path)[1].lower()
        if ext not in allowed:
            raise ValueError(f"{option} {path}: unknown file type '{ext or '(none)'}'; "
                             f"use one of {', '.join(allowed)}")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path} is a folder; expected a file name")
    if os.path.lexists(path) and not force:
        raise FileExistsError(f"{option}: {path} already exists; pass {force_hint} to replace it")
    folder = _existing_ancestor(os.path.dirname(os.path.abspath(path)), option, path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {option} {path}: folder {folder} is not writable")
    return path


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Write ``path`` through a temporary file in the same folder, renamed into place on success.

    Yields the temporary file's path; it ends in ``path``'s extension, so
    writers that pick the format from the name (matplotlib, soundfile) pick
    the right one.  When the block finishes, the file replaces ``path``
    (``os.replace``: atomic on one file system) with the usual permissions
    (``0o666`` less the umask); when it raises anything, including
    ``KeyboardInterrupt``, the temporary file is removed and ``path`` is left
    as it was.  Missing folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.

    Yields
    ------
    tmp : str
        Where to write.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out.csv")
    >>> with atomic_write(target) as tmp:
    ...     with open(tmp, "w") as f:
    ...         _ = f.write("a,b\\n")
    >>> open(target).read(), os.listdir(os.path.dirname(target))
    ('a,b\\n', ['out.csv'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=os.path.splitext(name)[1])
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)        # hard links
    except OSError:
        return False


def _existing_ancestor(folder: str, option: str, path: str) -> str:
    """The nearest folder of ``folder`` (itself included) that exists; a file on the way is an error."""
    while not os.path.exists(folder):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if not os.path.isdir(folder):
        raise ValueError(f"cannot create the folder for {option} {path}: {folder} is a file")
    return folder


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)   # reading the umask means setting it; put it straight back
        os.umask(_UMASK)
    return _UMASK
