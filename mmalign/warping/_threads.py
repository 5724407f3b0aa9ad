"""numba's thread pool next to torch's.

numba's OpenMP threading layer shares the OpenMP runtime with torch when torch
was imported first, and starting that layer (lazily, at the process's first
parallel kernel) sets the runtime's thread count to numba's, i.e. every core:
a caller that had set ``torch.set_num_threads(1)`` found torch on all cores
after its first ``cdist_dtw``, ``KNeighborsDTW`` or CPU ``SoftDTWLoss``. The
calls into numba's parallel kernels go through :func:`keep_torch_threads`.
(Starting the layer once at import instead would break ``fork``-based
multiprocessing, which GNU OpenMP does not survive once started.)
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

import numba


@contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore torch's thread count after the block (if torch is imported and it changed)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        if before is not None and torch.get_num_threads() != before:
            torch.set_num_threads(before)


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """Run the block with ``numba.set_num_threads(n)``; afterwards numba's and torch's
    thread counts are what they were before."""
    with keep_torch_threads():
        previous = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            yield
        finally:
            numba.set_num_threads(previous)
