"""Fused Triton kernels for soft-DTW forward and backward on CUDA (private).

Same semantics as :mod:`mmalign.warping._wavefront` (ragged batches, the
Sakoe–Chiba band widened by the length difference, ``R`` 1-indexed with ``+inf``
for unreachable cells, the seed ``E[lx, ly] = 1``, squared-Euclidean costs
recomputed from ``x`` and ``y``), but each direction is **one kernel launch**
instead of a dozen torch ops per anti-diagonal.

Design
------
* **One program per sample** (``grid = (B,)``).  The program sweeps its own
  sample's anti-diagonals ``k = 2 .. lx_b + ly_b`` and only the rows of each
  diagonal inside its lengths and band, so ragged batches cost their valid cells
  (plus a band-free border row), not the padded grid.  A diagonal's rows are
  processed in chunks of ``BLOCK`` (a ``tl.constexpr``): there is no length cap.
* ``tl.debug_barrier()`` (``bar.sync``) after each diagonal: the next diagonal
  reads what every thread of the program wrote.  ``__syncthreads`` semantics make
  prior global writes of the block visible to the whole block; loads of values
  written by other threads also use ``cache_modifier=".cg"`` (L2, bypass L1), a
  belt-and-braces guard against stale L1 lines.  Nothing is ever shared between
  programs, so no grid-wide synchronisation is needed.
* A diagonal is addressed like the wavefront's row-indexed views: a base pointer
  and a row stride.  Entry ``i`` of diagonal ``k`` is ``R[b, i, k - i]``: in the
  full ``R`` (``B x (N + 2) x (M + 2)``, contiguous) that is base ``R_b + k``,
  stride ``M + 1``; in a row buffer (``N + 2`` values) base ``buf``, stride 1.
  One helper (:func:`_soft_diagonal`) therefore serves the full store, the
  rotating buffers of ``store="none"`` and the segment recomputation of the
  checkpointed backward.
* Soft minimum by log-sum-exp with the minimum subtracted; a cell whose three
  predecessors are all ``+inf`` stays ``+inf`` without ever forming
  ``inf - inf`` (as :func:`_wavefront._soft_step`).  Row buffers get ``+inf`` at
  rows ``lo - 1`` and ``hi + 1`` of every diagonal written, which (as in the
  wavefront) covers every stale row a later diagonal reads — with band-restricted
  ``lo``/``hi`` too, since each bound moves by at most one row per diagonal
  (two for ``k - ly``, which the predecessor offsets absorb).
* The backward sweeps the diagonals in reverse, computing ``E`` exactly as
  :func:`_wavefront.soft_backward` / ``_term`` do from ``E`` and costs of the
  diagonals ``k + 1`` and ``k + 2`` (three rotating row buffers each, per sample
  in global memory), and accumulates ``dL/dx_i = 2 sum_j E_ij (x_i - y_j)`` and
  ``dL/dy_j = -2 sum_i E_ij (x_i - y_j)`` by plain load-add-store.
* ``gamma`` is passed as a one-element tensor of the input dtype: Triton would
  turn a Python float argument into float32, and float64 results must match the
  torch path to ~1e-12.  Everything is computed in the input dtype.
* Stores between forward and backward, as the wavefront's: ``"full"`` keeps
  ``R``; ``"checkpoint"`` keeps every ``s``-th pair of diagonals (``(B, C, 2,
  N + 2)``) and the backward recomputes each segment of ``s`` diagonals into a
  per-sample segment buffer (``(B, s + 4, N + 2)``: its checkpoint, the segment and
  the two first diagonals of the segment after it) inside the same program; ``"none"`` keeps
  nothing (three rotating row buffers per sample in the forward).

On CPU tensors the kernels run only under Triton's interpreter
(``TRITON_INTERPRET=1`` set before this module is imported); that is how the
tests check them without a GPU.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from . import _wavefront as W
from ._triton_common import INF, KERNEL_INF, SQEUCLIDEAN, band, check_device, diagonal_rows, \
    local_costs
from ._triton_common import interpreted as _interpreted

STORE_CODES = {"none": 0, "full": 1, "checkpoint": 2}


def interpreted() -> bool:
    """Whether the kernels were built by Triton's CPU interpreter (``TRITON_INTERPRET=1``)."""
    return _interpreted(_forward_kernel)


# --------------------------------------------------------------------------- device helpers

@triton.jit
def _soft_diagonal(xb, yb, D, sxi, sxd, syj, syd, k, lo, hi, gamma,
                   p2, s2, p1, s1, po, so, BLOCK: tl.constexpr):
    """Diagonal k of R (rows lo..hi) into (po, so) from diagonals k - 2 (p2, s2), k - 1 (p1, s1).

    Also writes +inf at rows lo - 1 and hi + 1.  No barrier: the caller syncs.
    """
    for start in range(lo, hi + 1, BLOCK):
        i = start + tl.arange(0, BLOCK)
        mask = i <= hi
        # predecessors (i - 1, j - 1), (i - 1, j), (i, j - 1), written by other threads
        a = tl.load(p2 + (i - 1) * s2, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
        b = tl.load(p1 + (i - 1) * s1, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
        c = tl.load(p1 + i * s1, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
        lowest = tl.minimum(tl.minimum(a, b), c)
        unreachable = lowest == KERNEL_INF
        safe = tl.where(unreachable, 0.0, lowest)
        total = tl.exp((safe - a) / gamma) + tl.exp((safe - b) / gamma)
        total += tl.exp((safe - c) / gamma)
        soft = safe - gamma * tl.log(total)
        cost = local_costs(xb, yb, i, k - i, mask, D, sxi, sxd, syj, syd, SQEUCLIDEAN, BLOCK)
        value = cost + tl.where(unreachable, lowest, soft)
        tl.store(po + i * so, value, mask=mask)
    edge = tl.arange(0, 2)
    border = tl.where(edge == 0, lo - 1, hi + 1)
    tl.store(po + border * so, tl.full([2], KERNEL_INF, po.dtype.element_ty))


@triton.jit
def _this_pair(x_ptr, y_ptr, lx_ptr, ly_ptr, gamma_ptr, sxb, syb, radius):
    """The program's sample b: its lengths n, m, gamma, band offsets and sequence pointers."""
    b = tl.program_id(0).to(tl.int64)
    n = tl.load(lx_ptr + b).to(tl.int64)
    m = tl.load(ly_ptr + b).to(tl.int64)
    below, above = band(n, m, radius)
    return b, n, m, tl.load(gamma_ptr), below, above, x_ptr + b * sxb, y_ptr + b * syb


@triton.jit
def _copy_rows(src, dst, rows, BLOCK: tl.constexpr):
    """dst[0:rows] = src[0:rows] (row buffers)."""
    for start in range(0, rows, BLOCK):
        r = start + tl.arange(0, BLOCK)
        mask = r < rows
        tl.store(dst + r, tl.load(src + r, mask=mask, cache_modifier=".cg"), mask=mask)


# --------------------------------------------------------------------------- forward

@triton.jit
def _forward_kernel(x_ptr, y_ptr, lx_ptr, ly_ptr, gamma_ptr, values_ptr, r_ptr, work_ptr,
                    ckpt_ptr, N, M, D, sxb, sxi, sxd, syb, syj, syd, radius, segment,
                    n_ckpt, STORE: tl.constexpr, BLOCK: tl.constexpr):
    """One program per sample: R swept diagonal by diagonal, values[b] = R[b, lx_b, ly_b].

    STORE 1 (full): diagonals written into R (B, N + 2, M + 2), prefilled with +inf
    and R[b, 0, 0] = 0.  STORE 0 / 2: three rotating row buffers work (B, 3, N + 2),
    prefilled with +inf and work[b, 0, 0] = 0 (diagonal 0); STORE 2 also copies
    diagonals k - 2, k - 1 into ckpt[b, c] (B, n_ckpt, 2, N + 2) at k = 2 + c * segment.
    """
    b, n, m, gamma, below, above, xb, yb = _this_pair(x_ptr, y_ptr, lx_ptr, ly_ptr, gamma_ptr,
                                                      sxb, syb, radius)
    rows = N + 2
    rb = r_ptr + b * rows * (M + 2)
    wb = work_ptr + b * 3 * rows
    for k in range(2, n + m + 1):
        if STORE == 1:
            p2, s2 = rb + (k - 2), M + 1
            p1, s1 = rb + (k - 1), M + 1
            po, so = rb + k, M + 1
        else:
            p2, s2 = wb + ((k - 2) % 3) * rows, 1
            p1, s1 = wb + ((k - 1) % 3) * rows, 1
            po, so = wb + (k % 3) * rows, 1
        if STORE == 2:
            if (k - 2) % segment == 0:  # checkpoint c: diagonals k - 2, k - 1
                cb = ckpt_ptr + (b * n_ckpt + (k - 2) // segment) * 2 * rows
                _copy_rows(p2, cb, n + 2, BLOCK)
                _copy_rows(p1, cb + rows, n + 2, BLOCK)
        lo, hi = diagonal_rows(k, n, m, below, above)
        _soft_diagonal(xb, yb, D, sxi, sxd, syj, syd, k, lo, hi, gamma,
                       p2, s2, p1, s1, po, so, BLOCK)
        tl.debug_barrier()
    k = n + m
    if STORE == 1:
        last = tl.load(rb + n * (M + 1) + k, cache_modifier=".cg")
    else:
        last = tl.load(wb + (k % 3) * rows + n, cache_modifier=".cg")
    tl.store(values_ptr + b, last)


# --------------------------------------------------------------------------- backward

@triton.jit
def _term(e_next, r_next, r, c_next, gamma):
    """E_next * exp((R_next - R - C_next) / gamma), 0 where the successor carries no weight."""
    weighted = e_next > 0
    safe = tl.where(weighted, r_next - r - c_next, 0.0)
    return tl.where(weighted, e_next * tl.exp(safe / gamma), 0.0)


@triton.jit
def _backward_kernel(x_ptr, y_ptr, lx_ptr, ly_ptr, gamma_ptr, r_ptr, ckpt_ptr, seg_ptr,
                     ework_ptr, cwork_ptr, gx_ptr, gy_ptr, N, M, D, sxb, sxi, sxd, syb, syj,
                     syd, sgb, sgi, sgd, shb, shj, shd, radius, segment, n_ckpt,
                     CHECKPOINT: tl.constexpr, BLOCK: tl.constexpr):
    """One program per sample: E swept back from (lx_b, ly_b), gradients accumulated.

    R from the full R (B, N + 2, M + 2) or, with CHECKPOINT, recomputed segment by
    segment from ckpt (B, n_ckpt, 2, N + 2) into seg (B, segment + 4, N + 2): for the
    current segment (diagonals start .. stop - 1), slots 0, 1 hold its checkpoint
    (diagonals start - 2, start - 1), slot t + 2 diagonal start + t, slots
    segment + 2, segment + 3 the diagonals stop, stop + 1 (first two of the segment
    after it).  ework, cwork
    (B, 3, N + 2) zero-filled: E and costs of diagonals k (mod 3).  gx (B, N, D),
    gy (B, M, D) zero-filled, strides (sgb, sgi, sgd), (shb, shj, shd).

    Gradients are accumulated by load-add-store without atomics: one program owns
    sample b's rows of gx and gy; within one diagonal each row i and each column j
    occurs once (one thread, one chunk), and the barrier after each diagonal orders
    the updates of consecutive diagonals to the same row or column.
    """
    b, n, m, gamma, below, above, xb, yb = _this_pair(x_ptr, y_ptr, lx_ptr, ly_ptr, gamma_ptr,
                                                      sxb, syb, radius)
    gxb = gx_ptr + b * sgb
    gyb = gy_ptr + b * shb
    rows = N + 2
    rb = r_ptr + b * rows * (M + 2)
    eb = ework_ptr + b * 3 * rows
    cb = cwork_ptr + b * 3 * rows
    sb = seg_ptr + b * (segment + 4) * rows
    start = n + m + 1  # first diagonal of the segment held in seg (none yet)
    stop = n + m + 1  # one past its last diagonal
    for t in range(0, n + m - 1):
        k = n + m - t
        if CHECKPOINT:
            if k < start:
                if start <= n + m:  # keep diagonals start, start + 1 for the successors
                    _copy_rows(sb + tl.where(start + 1 < stop, 3, segment + 2) * rows,
                               sb + (segment + 3) * rows, n + 2, BLOCK)
                    tl.debug_barrier()
                    _copy_rows(sb + 2 * rows, sb + (segment + 2) * rows, n + 2, BLOCK)
                stop = start
                c = (k - 2) // segment
                start = 2 + c * segment
                _copy_rows(ckpt_ptr + (b * n_ckpt + c) * 2 * rows, sb, 2 * rows, BLOCK)
                tl.debug_barrier()
                for kk in range(start, stop):  # slot kk - start + 2 from the two before
                    lo2, hi2 = diagonal_rows(kk, n, m, below, above)
                    slot = sb + (kk - start) * rows
                    _soft_diagonal(xb, yb, D, sxi, sxd, syj, syd, kk, lo2, hi2, gamma,
                                   slot, 1, slot + rows, 1, slot + 2 * rows, 1, BLOCK)
                    tl.debug_barrier()
            r0 = sb + (k - start + 2) * rows
            r1 = sb + tl.where(k + 1 < stop, k + 1 - start + 2, segment + 2 + k + 1 - stop) * rows
            r2 = sb + tl.where(k + 2 < stop, k + 2 - start + 2, segment + 2 + k + 2 - stop) * rows
            s0, s1, s2 = 1, 1, 1
        else:
            r0, s0 = rb + k, M + 1
            r1, s1 = rb + (k + 1), M + 1
            r2, s2 = rb + (k + 2), M + 1
        e0 = eb + (k % 3) * rows
        e1 = eb + ((k + 1) % 3) * rows
        e2 = eb + ((k + 2) % 3) * rows
        c0 = cb + (k % 3) * rows
        c1 = cb + ((k + 1) % 3) * rows
        c2 = cb + ((k + 2) % 3) * rows
        lo, hi = diagonal_rows(k, n, m, below, above)
        for first in range(lo, hi + 1, BLOCK):
            i = first + tl.arange(0, BLOCK)
            j = k - i
            mask = i <= hi
            r = tl.load(r0 + i * s0, mask=mask, other=KERNEL_INF, cache_modifier=".cg")
            # successors (i + 1, j), (i, j + 1) on diagonal k + 1; (i + 1, j + 1) on k + 2.
            # Rows beyond a diagonal's own carry E = 0 (borders, or zero-filled buffers
            # for diagonals past n + m); their R is then never used.
            e = _term(tl.load(e1 + i + 1, mask=mask, other=0.0, cache_modifier=".cg"),
                      tl.load(r1 + (i + 1) * s1, mask=mask, other=0.0, cache_modifier=".cg"),
                      r, tl.load(c1 + i + 1, mask=mask, other=0.0, cache_modifier=".cg"),
                      gamma)
            e += _term(tl.load(e1 + i, mask=mask, other=0.0, cache_modifier=".cg"),
                       tl.load(r1 + i * s1, mask=mask, other=0.0, cache_modifier=".cg"),
                       r, tl.load(c1 + i, mask=mask, other=0.0, cache_modifier=".cg"), gamma)
            e += _term(tl.load(e2 + i + 1, mask=mask, other=0.0, cache_modifier=".cg"),
                       tl.load(r2 + (i + 1) * s2, mask=mask, other=0.0, cache_modifier=".cg"),
                       r, tl.load(c2 + i + 1, mask=mask, other=0.0, cache_modifier=".cg"),
                       gamma)
            e = tl.where((i == n) & (j == m), 1.0, e)  # the seed: dR[n, m] / dR[n, m] = 1
            e = tl.where(r < KERNEL_INF, e, 0.0)
            tl.store(e0 + i, e, mask=mask)
            cost = tl.zeros([BLOCK], dtype=x_ptr.dtype.element_ty)
            for dd in range(D):
                xi = tl.load(xb + (i - 1) * sxi + dd * sxd, mask=mask, other=0.0)
                yj = tl.load(yb + (j - 1) * syj + dd * syd, mask=mask, other=0.0)
                diff = xi - yj
                cost += diff * diff
                grad = 2.0 * e * diff
                gx = gxb + (i - 1) * sgi + dd * sgd
                gy = gyb + (j - 1) * shj + dd * shd
                tl.store(gx, tl.load(gx, mask=mask, other=0.0, cache_modifier=".cg") + grad,
                         mask=mask)
                tl.store(gy, tl.load(gy, mask=mask, other=0.0, cache_modifier=".cg") - grad,
                         mask=mask)
            tl.store(c0 + i, cost, mask=mask)
        edge = tl.arange(0, 2)
        border = tl.where(edge == 0, lo - 1, hi + 1)
        tl.store(e0 + border, tl.zeros([2], dtype=x_ptr.dtype.element_ty))
        tl.debug_barrier()


# --------------------------------------------------------------------------- launchers

class TritonCheckpoints:
    """Pairs of consecutive R diagonals saved by a checkpointed forward (private).

    ``pairs`` (B, C, 2, N + 2): ``pairs[b, c]`` holds diagonals ``start_c - 2`` and
    ``start_c - 1`` of sample b, ``start_c = 2 + c * segment``.
    """

    def __init__(self, pairs: torch.Tensor, segment: int):
        self.pairs = pairs
        self.segment = segment


def default_block(x: torch.Tensor, y: torch.Tensor, radius: int) -> int:
    """Rows per chunk: the longest diagonal (band included) as a power of two in [16, 1024]."""
    longest = min(x.shape[1], y.shape[1])
    if radius >= 0:
        longest = min(longest, radius + abs(x.shape[1] - y.shape[1]) + 1)
    return max(16, min(1024, triton.next_power_of_2(longest)))


def _launch_options(block: int | None, num_warps: int | None, x, y, radius: int):
    block = block or default_block(x, y, radius)
    if block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    return block, num_warps or max(1, min(8, block // 64))


def check_tensors_device(x: torch.Tensor) -> None:
    """``backend='triton'`` runs on CUDA tensors, CPU ones only in Triton's interpreter."""
    check_device(x, _forward_kernel, "backend='triton'",
                 "; use backend='auto', 'numba' or 'torch' instead")


def _gamma(gamma: float, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor([gamma], dtype=x.dtype, device=x.device)


def soft_forward(x: torch.Tensor, y: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor,
                 gamma: float, radius: int, store: str = "full", segment: int | None = None,
                 block: int | None = None, num_warps: int | None = None):
    """Soft-DTW values (B,) of x (B, N, d) against y (B, M, d) in one kernel launch.

    Parameters
    ----------
    x, y : (B, N, d), (B, M, d) float32 / float64 on CUDA (CPU under the interpreter);
        any strides.
    lx, ly : (B,) int64 lengths (``1 <= lx <= N``), on x's device.
    gamma : float > 0
    radius : int, -1 for no band
    store : {"full", "checkpoint", "none"}
        What to keep for :func:`soft_backward` (module docstring).
    segment : int > 0 or None
        Checkpoint spacing in diagonals; default ``ceil(sqrt(2 K))``, ``K = max(lx +
        ly) - 1`` diagonals (as the wavefront).
    block : power of two or None
        Rows of a diagonal per chunk (default :func:`default_block`); ``num_warps``
        per program (default ``block // 64`` in [1, 8]).

    Returns
    -------
    values : (B,) tensor, ``R[b, lx_b, ly_b]``
    saved : R (B, N + 2, M + 2) for ``"full"``, :class:`TritonCheckpoints` for
        ``"checkpoint"``, None for ``"none"``.
    """
    if store not in STORE_CODES:
        raise ValueError(f"store must be 'full', 'checkpoint' or 'none', got {store!r}")
    check_tensors_device(x)
    block, num_warps = _launch_options(block, num_warps, x, y, radius)
    B, N, D = x.shape
    M = y.shape[1]
    lx = lx.to(device=x.device, dtype=torch.int64).contiguous()
    ly = ly.to(device=x.device, dtype=torch.int64).contiguous()
    values = torch.empty(B, dtype=x.dtype, device=x.device)
    R = work = pairs = None
    n_ckpt = 0
    if store == "full":
        R = torch.full((B, N + 2, M + 2), INF, dtype=x.dtype, device=x.device)
        R[:, 0, 0] = 0.0
    else:
        work = torch.full((B, 3, N + 2), INF, dtype=x.dtype, device=x.device)
        work[:, 0, 0] = 0.0  # diagonal 0: R[0, 0] = 0; diagonal 1 is all +inf
    if store == "checkpoint":
        # the padded bound N + M - 1 avoids a host synchronisation for max(lx + ly)
        K = N + M - 1
        segment = segment or W.default_segment(K)
        n_ckpt = math.ceil(K / segment)
        pairs = torch.empty((B, n_ckpt, 2, N + 2), dtype=x.dtype, device=x.device)
    dummy = values  # never dereferenced for the stores that do not use it
    _forward_kernel[(B,)](
        x, y, lx, ly, _gamma(gamma, x), values, R if R is not None else dummy,
        work if work is not None else dummy, pairs if pairs is not None else dummy,
        N, M, D, x.stride(0), x.stride(1), x.stride(2), y.stride(0), y.stride(1),
        y.stride(2), radius, segment or 1, n_ckpt, STORE=STORE_CODES[store], BLOCK=block,
        num_warps=num_warps, num_stages=1)
    if store == "full":
        return values, R
    if store == "checkpoint":
        return values, TritonCheckpoints(pairs, segment)
    return values, None


def soft_backward(x: torch.Tensor, y: torch.Tensor, saved, lx: torch.Tensor, ly: torch.Tensor,
                  gamma: float, radius: int, block: int | None = None,
                  num_warps: int | None = None):
    """Gradients of the values with respect to x and y, in one kernel launch.

    Parameters
    ----------
    x, y, lx, ly, gamma, radius, block, num_warps : as for :func:`soft_forward`.
    saved : R (B, N + 2, M + 2) or :class:`TritonCheckpoints` from :func:`soft_forward`.

    Returns
    -------
    grad_x : (B, N, d), grad_y : (B, M, d), contiguous, zero beyond each sample's length.
    """
    check_tensors_device(x)
    block, num_warps = _launch_options(block, num_warps, x, y, radius)
    B, N, D = x.shape
    M = y.shape[1]
    lx = lx.to(device=x.device, dtype=torch.int64).contiguous()
    ly = ly.to(device=x.device, dtype=torch.int64).contiguous()
    grad_x = torch.zeros((B, N, D), dtype=x.dtype, device=x.device)
    grad_y = torch.zeros((B, M, D), dtype=x.dtype, device=x.device)
    ework = torch.zeros((B, 3, N + 2), dtype=x.dtype, device=x.device)
    cwork = torch.zeros((B, 3, N + 2), dtype=x.dtype, device=x.device)
    checkpoint = isinstance(saved, TritonCheckpoints)
    if checkpoint:
        R, pairs, segment = grad_x, saved.pairs, saved.segment  # R: never dereferenced
        n_ckpt = pairs.shape[1]
        seg = torch.full((B, segment + 4, N + 2), INF, dtype=x.dtype, device=x.device)
    else:
        R, pairs, seg, segment, n_ckpt = saved, grad_x, grad_x, 1, 0
    _backward_kernel[(B,)](
        x, y, lx, ly, _gamma(gamma, x), R, pairs, seg, ework, cwork, grad_x, grad_y,
        N, M, D, x.stride(0), x.stride(1), x.stride(2), y.stride(0), y.stride(1), y.stride(2),
        grad_x.stride(0), grad_x.stride(1), grad_x.stride(2), grad_y.stride(0),
        grad_y.stride(1), grad_y.stride(2), radius, segment, n_ckpt, CHECKPOINT=checkpoint,
        BLOCK=block, num_warps=num_warps, num_stages=1)
    return grad_x, grad_y
