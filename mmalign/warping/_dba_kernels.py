"""DBA's alignment step for many series at once (numba, no GIL).

Private to mmalign (used by :mod:`mmalign.clustering`'s k-means): the paths are
those of :func:`mmalign.dtw_path` (the same anti-diagonal kernel and backtrack),
the sums those of :func:`mmalign.dba`'s update.  The kernel releases the GIL: callers
run slices of the series in threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import _kernels as K


@njit(cache=True, nogil=True)
def dba_sums(zt, yrts, ys, lo, hi, metric, step):
    """Align every series to the centre and sum what each frame of the centre meets.

    zt : (d, L) float64, the centre transposed.
    yrts : (N, d, m) float64, each series reversed in time and transposed.
    ys : (N, m, d) float64, the series.
    lo, hi : (L,) int64 window bounds of an (L, m) grid.
    metric, step : codes of :mod:`mmalign.warping._kernels`.

    Returns (costs (N,) accumulated costs, sums (N, L, d), counts (N, L)); a
    series with no path in the window has cost inf and no sums.
    """
    n_series = ys.shape[0]
    d = zt.shape[0]
    L = zt.shape[1]
    m = ys.shape[1]
    costs = np.empty(n_series)
    sums = np.zeros((n_series, L, d))
    counts = np.zeros((n_series, L))
    for s in range(n_series):
        acc, dirs, a, offsets = K.diagonal_dtw(zt, yrts[s], lo, hi, metric, True, np.inf, step)
        costs[s] = acc
        if acc < np.inf:
            path = K.backtrack_diagonal(dirs, a, offsets, L, m)
            for p in range(path.shape[0]):
                i = path[p, 0]
                j = path[p, 1]
                counts[s, i] += 1.0
                for f in range(d):
                    sums[s, i, f] += ys[s, j, f]
    return costs, sums, counts


LANES = 32  # series per SIMD block, as the lanes of mmalign.cdist_dtw


@njit(cache=True, nogil=True)
def dba_sums_lanes(z, yl, lo, hi, costs, sums, counts):
    """:func:`dba_sums` for one block of equal-length series in lane layout.

    z : (L, d) float64, the centre.
    yl : (m, d, S) float64, S series in lane layout (``yl[j, f, s] = y_s[j, f]``).
    lo, hi : (L,) int64 window bounds of an (L, m) grid.
    costs : (S,) receives the accumulated squared costs; sums (S, L, d) and
    counts (S, L) receive (are added) what each frame of ``z`` meets.

    The recursion, local costs and tie-breaking (diagonal, then up, then left, on
    strict improvement) are those of ``_kernels.diagonal_dtw`` and ``lanes_dtw``:
    the costs are bit-identical and the paths the same.
    """
    n, d = z.shape
    m = yl.shape[0]
    S = yl.shape[2]
    dirs = np.empty((n, m, S), np.uint8)
    prev = np.full((m + 1, S), K.INF)
    cur = np.full((m + 1, S), K.INF)
    c = np.empty(S)
    prev[0, :] = 0.0
    prev_hi = 0
    for i in range(n):
        li = lo[i]
        hj = hi[i]
        for idx in range(prev_hi + 1, hj + 1):
            for s in range(S):
                prev[idx, s] = K.INF
        for s in range(S):
            cur[li, s] = K.INF
        for j in range(li, hj):
            if d == 1:
                zf = z[i, 0]
                for s in range(S):
                    diff = zf - yl[j, 0, s]
                    c[s] = diff * diff
            else:
                for s in range(S):
                    c[s] = 0.0
                for f in range(d):
                    zf = z[i, f]
                    for s in range(S):
                        diff = zf - yl[j, f, s]
                        c[s] += diff * diff
            for s in range(S):  # branch-free, so that LLVM vectorises across the lanes
                dg = prev[j, s]
                u = prev[j + 1, s]
                le = cur[j, s]
                take_up = u < dg
                best = u if take_up else dg
                take_left = le < best
                best = le if take_left else best
                dirs[i, j, s] = 2 if take_left else (1 if take_up else 0)
                cur[j + 1, s] = c[s] + best
        prev_hi = hj
        prev, cur = cur, prev
    for s in range(S):
        costs[s] = prev[m, s]
        if not costs[s] < K.INF:
            continue
        i = n - 1
        j = m - 1
        while True:
            counts[s, i] += 1.0
            for f in range(d):
                sums[s, i, f] += yl[j, f, s]
            if i == 0 and j == 0:
                break
            code = dirs[i, j, s]
            if code == K.DIR_DIAGONAL:
                i -= 1
                j -= 1
            elif code == K.DIR_UP:
                i -= 1
            else:
                j -= 1
