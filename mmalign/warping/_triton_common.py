"""Pieces shared by the Triton kernels of soft-DTW and hard DTW (private).

The anti-diagonal geometry of one pair (band offsets, the rows of a diagonal inside
its lengths and band), the local costs of a chunk of a diagonal, the device check of
the launchers, and +inf and the metric codes as values kernels may read: the
compiler reads only constexpr globals (the interpreter reads any).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from . import _kernels as K

INF = float("inf")
KERNEL_INF = tl.constexpr(INF)
SQEUCLIDEAN = tl.constexpr(K.METRIC_SQEUCLIDEAN)
EUCLIDEAN = tl.constexpr(K.METRIC_EUCLIDEAN)
CITYBLOCK = tl.constexpr(K.METRIC_CITYBLOCK)


def interpreted(kernel) -> bool:
    """Whether ``kernel`` was built by Triton's CPU interpreter (``TRITON_INTERPRET=1``
    set before its module was imported)."""
    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:  # pragma: no cover - layout of older triton versions
        return False
    return isinstance(kernel, InterpretedFunction)


def check_device(x: torch.Tensor, kernel, what: str, advice: str = "") -> None:
    """Refuse tensors ``kernel`` cannot run on: CUDA tensors run compiled, CPU tensors
    only in Triton's interpreter; ``what`` names the caller's option in the message,
    ``advice`` (if any) ends it."""
    if x.device.type == "cuda":
        return
    if x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1" and interpreted(kernel):
        return
    raise ValueError(f"{what} needs CUDA tensors, got tensors on {x.device} (CPU tensors run "
                     f"only in Triton's interpreter: TRITON_INTERPRET=1 set before triton and "
                     f"mmalign's Triton kernels are imported){advice}")


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


@triton.jit
def local_costs(xb, yb, i, j, mask, D, sxi, sxd, syj, syd, METRIC: tl.constexpr,
                BLOCK: tl.constexpr):
    """Local costs (BLOCK,) of cells (i, j) (1-indexed), summed feature by feature from 0
    in the inputs' dtype (under ``enable_fp_fusion=False`` as the CPU kernels round)."""
    acc = tl.zeros([BLOCK], dtype=xb.dtype.element_ty)
    for f in range(D):
        a = tl.load(xb + (i - 1) * sxi + f * sxd, mask=mask, other=0.0)
        c = tl.load(yb + (j - 1) * syj + f * syd, mask=mask, other=0.0)
        diff = a - c
        if METRIC == CITYBLOCK:
            acc += tl.abs(diff)
        else:
            acc += diff * diff
    if METRIC == EUCLIDEAN:
        acc = tl.sqrt(acc)  # float64: the IEEE square root (sqrt.rn.f64)
    return acc
