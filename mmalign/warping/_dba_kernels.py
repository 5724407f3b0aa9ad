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
