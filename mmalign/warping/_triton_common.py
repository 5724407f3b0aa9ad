"""Pieces shared by the Triton kernels of soft-DTW and hard DTW (private).

The anti-diagonal geometry of one pair (band offsets, the rows of a diagonal inside
its lengths and band) and +inf as a value kernels may read: the compiler reads
only constexpr globals (the interpreter reads any).
"""

from __future__ import annotations

import triton
import triton.language as tl

INF = float("inf")
KERNEL_INF = tl.constexpr(INF)


def interpreted(kernel) -> bool:
    """Whether ``kernel`` was built by Triton's CPU interpreter (``TRITON_INTERPRET=1``
    set before its module was imported)."""
    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:  # pragma: no cover - layout of older triton versions
        return False
    return isinstance(kernel, InterpretedFunction)


@triton.jit
def band(n, m, radius):
    """Band offsets (below, above) >= 0: cells with -below <= j - i <= above (no band: n + m)."""
    banded = radius >= 0
    below = tl.where(banded, radius + tl.maximum(n - m, 0), n + m)
    above = tl.where(banded, radius + tl.maximum(m - n, 0), n + m)
    return below, above


@triton.jit
def diagonal_rows(k, n, m, below, above):
    """Rows lo, hi (1-indexed) of anti-diagonal k inside the pair's lengths and band."""
    lo = tl.maximum(tl.maximum(k - m, 1), tl.maximum(k - above + 1, 0) // 2)
    hi = tl.minimum(tl.minimum(k - 1, n), (k + below) // 2)
    return lo, hi
