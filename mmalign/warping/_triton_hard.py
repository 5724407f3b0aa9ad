"""Fused Triton kernel for hard DTW (symmetric1) on CUDA (private).

The same results as :func:`mmalign.warping._wavefront.hard_forward` fed with
:func:`mmalign.warping.batch.cost_tensor` and as the CPU numba kernels, bit for
bit: float64 throughout, local costs summed feature by feature from 0 without
fused multiply-adds (the kernel is compiled with ``enable_fp_fusion=False``),
ties in the minimum broken as the CPU kernels do (diagonal, then ``(i - 1, j)``,
then ``(i, j - 1)``), the Sakoe–Chiba band widened by each pair's length
difference.  One kernel launch replaces the wavefront's dozen torch ops per
anti-diagonal and its ``(B, N, M)`` cost tensor.

Design (that of :mod:`mmalign.warping._triton_soft`, which see)
---------------------------------------------------------------
* Pairs ``k = (X[ia[k]], Y[ib[k]])`` are read through the index arrays: no
  gathered copies of ``X`` or ``Y``.  Costs are recomputed from ``X`` and ``Y``.
* A persistent grid of ``G`` programs; program ``g`` solves pairs ``g, g + G,
  ...`` in turn, each by sweeping its anti-diagonals ``2 .. n_k + m_k`` (only the
  rows inside its lengths and band) in chunks of ``BLOCK`` rows, with
  ``tl.debug_barrier()`` after each diagonal and ``.cg`` loads of the values other
  threads wrote.  Each program owns three rotating row buffers (``N + 2`` values
  each, diagonal ``k`` in slot ``k mod 3``), refilled with ``+inf`` before each
  of its pairs, so the memory is ``G x 3 x (N + 2)`` float64 whatever the number
  of pairs.
* Rows ``lo - 1`` and ``hi + 1`` of each diagonal written get ``+inf``, as in the
  soft kernel.  Row ``lo - 1`` is needed: the slot still holds diagonal ``k - 3``'s
  finite values below ``lo`` and the next diagonal reads that row (the bounds move
  by at most one row per diagonal, so no lower row is read).  Rows above ``hi`` only
  ever held ``+inf`` since the refill, ``hi`` never decreasing; the ``hi + 1`` store
  is defensive.
* With ``DIRS``, one direction byte per cell inside the band goes to ``dirs[k,
  i - 1, j - 1]`` (``(K, N, M)`` uint8; cells outside the band are never written
  and never read by the backtracking, which follows finite predecessors only).

On CPU tensors the kernel runs only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before this module is imported); that is how the
tests check it without a GPU.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from . import _kernels as K
from ._triton_common import KERNEL_INF, band, check_device, diagonal_rows, local_costs
from ._triton_common import interpreted as _interpreted

METRIC_CODES = (K.METRIC_SQEUCLIDEAN, K.METRIC_EUCLIDEAN, K.METRIC_CITYBLOCK)
# programs per streaming multiprocessor in the default persistent grid (a guess,
# to be tuned on a GPU); the work buffers never exceed MAX_WORK_BYTES
PROGRAMS_PER_SM = 32
MAX_WORK_BYTES = 2**28


def interpreted() -> bool:
    """Whether the kernels were built by Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return _interpreted(_hard_kernel)


# --------------------------------------------------------------------------- kernel

@triton.jit
def _hard_kernel(x_ptr, y_ptr, ia_ptr, ib_ptr, n_ptr, m_ptr, radius_ptr, values_ptr, dirs_ptr,
                 work_ptr, n_pairs, rows, dn, dm, D, sxb, sxi, sxd, syb, syj, syd,
                 METRIC: tl.constexpr, DIRS: tl.constexpr, BLOCK: tl.constexpr):
    """Persistent programs: pair p's accumulated cost into values[p] for p = g, g + G, ...

    x (P, N, D), y (Q, M, D) float64 with strides (sxb, sxi, sxd), (syb, syj, syd);
    ia, ib, n, m, radius (n_pairs,) int64: pair p is x[ia[p], :n[p]] against
    y[ib[p], :m[p]] with band radius radius[p] (-1: none).  work (G, 3, rows) float64
    row buffers, rows >= max(n) + 2.  With DIRS, dirs (n_pairs, dn, dm) uint8
    (dn >= max(n), dm >= max(m)) receives the direction codes of the band's cells.
    """
    g = tl.program_id(0)
    wb = work_ptr + g.to(tl.int64) * 3 * rows
    for pair in range(g.to(tl.int64), n_pairs, tl.num_programs(0)):  # int64 offsets
        n = tl.load(n_ptr + pair)
        m = tl.load(m_ptr + pair)
        below, above = band(n, m, tl.load(radius_ptr + pair))
        xb = x_ptr + tl.load(ia_ptr + pair) * sxb
        yb = y_ptr + tl.load(ib_ptr + pair) * syb
        db = dirs_ptr + pair * dn * dm
        # diagonal 0 is R[0, 0] = 0 (slot 0, row 0); every other row starts at +inf
        for fill in range(0, 3 * rows, BLOCK):
            r = fill + tl.arange(0, BLOCK)
            tl.store(wb + r, tl.where(r == 0, 0.0, KERNEL_INF), mask=r < 3 * rows)
        tl.debug_barrier()
        for k in range(2, n + m + 1):
            p2 = wb + ((k - 2) % 3) * rows
            p1 = wb + ((k - 1) % 3) * rows
            po = wb + (k % 3) * rows
            lo, hi = diagonal_rows(k, n, m, below, above)
            for first in range(lo, hi + 1, BLOCK):
                i = first + tl.arange(0, BLOCK)
                j = k - i
                mask = i <= hi
                # predecessors (i - 1, j - 1), (i - 1, j), (i, j - 1), written by other threads
                diag = tl.load(p2 + i - 1, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
                up = tl.load(p1 + i - 1, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
                left = tl.load(p1 + i, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
                # strict comparisons: ties keep the earlier of diagonal, up, left
                take_up = up < diag
                best = tl.where(take_up, up, diag)
                take_left = left < best
                best = tl.where(take_left, left, best)
                cost = local_costs(xb, yb, i, j, mask, D, sxi, sxd, syj, syd, METRIC, BLOCK)
                tl.store(po + i, cost + best, mask=mask)
                if DIRS:
                    code = tl.where(take_left, 2, tl.where(take_up, 1, 0)).to(tl.uint8)
                    tl.store(db + (i - 1) * dm + (j - 1), code, mask=mask)
            edge = tl.arange(0, 2)
            tl.store(po + tl.where(edge == 0, lo - 1, hi + 1),
                     tl.full([2], KERNEL_INF, tl.float64))
            tl.debug_barrier()
        last = tl.load(wb + ((n + m) % 3) * rows + n, cache_modifier=".cg")
        tl.store(values_ptr + pair, last)
        tl.debug_barrier()  # every thread has read the result before the next refill


# --------------------------------------------------------------------------- launcher

def default_block(n: np.ndarray, m: np.ndarray, radii: np.ndarray) -> int:
    """Rows per chunk: the longest diagonal (band included) as a power of two in [16, 1024]."""
    longest = np.minimum(n, m)
    banded = radii >= 0
    longest = np.where(banded, np.minimum(longest, radii + np.abs(n - m) + 1), longest)
    return max(16, min(1024, triton.next_power_of_2(int(longest.max()))))


def default_programs(device: torch.device, n_pairs: int, rows: int) -> int:
    """Persistent grid size: PROGRAMS_PER_SM per SM, within MAX_WORK_BYTES of buffers."""
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
    else:  # the interpreter: a few programs, so that each solves several pairs
        sms = 1
    by_memory = max(1, MAX_WORK_BYTES // (3 * rows * 8))
    return max(1, min(n_pairs, sms * PROGRAMS_PER_SM, by_memory))


def hard_dtw(X: torch.Tensor, Y: torch.Tensor, ia: np.ndarray, ib: np.ndarray, n: np.ndarray,
             m: np.ndarray, radii: np.ndarray, metric_code: int, want_dirs: bool = False, *,
             block: int | None = None, num_warps: int | None = None,
             programs: int | None = None):
    """Accumulated DTW costs (symmetric1) of the pairs ``(X[ia[k], :n[k]], Y[ib[k], :m[k]])``.

    Parameters
    ----------
    X : torch.Tensor [shape=(P, N, d), dtype=float64]
        Padded first sequences, on CUDA (CPU under the interpreter); any strides.
    Y : torch.Tensor [shape=(Q, M, d), dtype=float64]
        Padded second sequences, on X's device.
    ia, ib : np.ndarray [shape=(K,), dtype=int]
        Rows of X and Y forming each pair.
    n, m : np.ndarray [shape=(K,), dtype=int]
        Each pair's lengths, ``1 <= n[k] <= N``, ``1 <= m[k] <= M``.
    radii : np.ndarray [shape=(K,), dtype=int]
        Each pair's Sakoe–Chiba radius before widening, -1 for none.
    metric_code : int
        ``METRIC_SQEUCLIDEAN``, ``METRIC_EUCLIDEAN`` or ``METRIC_CITYBLOCK`` of
        :mod:`mmalign.warping._kernels` (no square root of the accumulated cost).
    want_dirs : bool
        Also return the direction codes for backtracking.
    block : power of two or None
        Rows of a diagonal per chunk (default :func:`default_block`); ``num_warps``
        per program (default ``block // 64`` in [1, 8]); ``programs`` the persistent
        grid size (default :func:`default_programs`).

    Returns
    -------
    values : torch.Tensor [shape=(K,), dtype=float64]
        ``R[n_k, m_k]``, on X's device.
    dirs : torch.Tensor [shape=(K, max(n), max(m)), dtype=uint8] or None
        Only with ``want_dirs``: 0 from ``(i - 1, j - 1)``, 1 from ``(i - 1, j)``, 2
        from ``(i, j - 1)`` at the cells inside each pair's band (others undefined),
        as ``_kernels.backtrack_general`` reads them.
    """
    if X.dtype != torch.float64 or Y.dtype != torch.float64:
        raise ValueError(f"X and Y must be float64, got {X.dtype} and {Y.dtype}")
    check_device(X, _hard_kernel, "the Triton DTW kernel")
    if metric_code not in METRIC_CODES:
        raise ValueError(f"metric_code must be one of {METRIC_CODES}, got {metric_code}")
    device = X.device
    n, m, radii = (np.asarray(a, np.int64) for a in (n, m, radii))
    n_pairs = len(n)
    values = torch.empty(n_pairs, dtype=torch.float64, device=device)
    if n_pairs == 0:
        return values, (torch.empty((0, 0, 0), dtype=torch.uint8, device=device)
                        if want_dirs else None)
    block = block or default_block(n, m, radii)
    if block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    num_warps = num_warps or max(1, min(8, block // 64))
    rows = int(n.max()) + 2
    programs = min(programs or default_programs(device, n_pairs, rows), n_pairs)
    dn, dm = int(n.max()), int(m.max())
    dirs = torch.empty((n_pairs, dn, dm) if want_dirs else (1,), dtype=torch.uint8,
                       device=device)
    work = torch.empty((programs, 3, rows), dtype=torch.float64, device=device)

    def on_device(a):
        return torch.as_tensor(np.ascontiguousarray(a, np.int64), device=device)

    _hard_kernel[(programs,)](
        X, Y, on_device(ia), on_device(ib), on_device(n), on_device(m), on_device(radii),
        values, dirs, work, n_pairs, rows, dn, dm, X.shape[2], X.stride(0), X.stride(1),
        X.stride(2), Y.stride(0), Y.stride(1), Y.stride(2), METRIC=metric_code,
        DIRS=bool(want_dirs), BLOCK=block, num_warps=num_warps, num_stages=1,
        enable_fp_fusion=False)
    return values, (dirs if want_dirs else None)
