"""numba's thread pool next to torch's.

numba's OpenMP threading layer shares the OpenMP runtime with torch when torch
was imported first, and starting that layer (lazily, at the process's first
parallel kernel or ``numba.get_num_threads()``) sets the runtime's thread count
to numba's, i.e. every core: a caller that had set ``torch.set_num_threads(1)``
found torch on all cores after its first ``cdist_dtw`` or CPU ``SoftDTWLoss``.
:func:`start_numba_threads`, run when mmalign is imported, starts the layer
once with torch's count kept; later ``numba.set_num_threads`` calls leave
torch's count alone.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import numba


def start_numba_threads() -> None:
    """Start numba's threading layer now, keeping torch's thread count if torch is imported."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    numba.get_num_threads()                 # starts the layer (once per process)
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the block with ``numba.set_num_threads(n)``, then restore numba's count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
