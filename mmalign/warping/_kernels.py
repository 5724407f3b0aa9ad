"""Numba kernels of the DTW family (private; shapes and conventions in ``dtw.py``).

Three kernels cover every case:

* ``diagonal_dtw`` -- one pair, symmetric1 steps, a window given as monotone per-row
  column bounds.  It sweeps anti-diagonals, whose cells are independent, so the
  inner loop is a straight SIMD loop; optionally it stores one direction byte per
  window cell (laid out diagonal by diagonal) for backtracking, and it can abandon
  early once every path must exceed a threshold.
* ``lanes_dtw`` -- many equal-length pairs at once, the pair index innermost, so
  the row recursion runs in SIMD lanes (the pairwise-matrix workhorse).
* ``general_accumulate`` -- a precomputed cost matrix, any mask, every step
  pattern, open begin / end; returns the whole accumulated matrix.

Local costs: ``METRIC_SQEUCLIDEAN`` (0), ``METRIC_EUCLIDEAN`` (1),
``METRIC_CITYBLOCK`` (2).  Inputs are float64, features-first (``(d, n)``) for
the diagonal kernel so that the inner loop reads contiguous memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.inf
METRIC_SQEUCLIDEAN = 0
METRIC_EUCLIDEAN = 1
METRIC_CITYBLOCK = 2

STEP_SYMMETRIC1 = 0
STEP_SYMMETRIC2 = 1
STEP_ASYMMETRIC = 2

DIR_DIAGONAL = 0
DIR_UP = 1  # from (i - 1, j)
DIR_LEFT = 2  # from (i, j - 1)
DIR_SKIP = 3  # asymmetric pattern: from (i - 1, j - 2)


@njit(cache=True, nogil=True)
def diagonal_bounds(lo, hi, m):
    """Per anti-diagonal row range [a_k, b_k] of a window with monotone row bounds.

    ``lo[i] <= j < hi[i]`` is row i's window; both must be non-decreasing.  Cell
    (i, k - i) is inside iff ``i + lo[i] <= k <= i + hi[i] - 1``; both sides grow
    with i, so the rows of diagonal k inside the window form one interval.
    Returns ``a, b`` (inclusive; ``a > b`` for an empty diagonal) and the offsets
    of each diagonal in a flat per-cell array.
    """
    n = lo.shape[0]
    n_diag = n + m - 1
    a = np.empty(n_diag, np.int64)
    b = np.empty(n_diag, np.int64)
    offsets = np.empty(n_diag + 1, np.int64)
    p = 0  # first row with i + hi[i] - 1 >= k
    q = -1  # last row with i + lo[i] <= k
    offsets[0] = 0
    for k in range(n_diag):
        while p < n and p + hi[p] - 1 < k:
            p += 1
        while q + 1 < n and q + 1 + lo[q + 1] <= k:
            q += 1
        a[k] = p
        b[k] = q
        size = q - p + 1
        if size < 0:
            size = 0
        offsets[k + 1] = offsets[k] + size
    return a, b, offsets


@njit(cache=True, nogil=True)
def diagonal_dtw(xt, yrt, lo, hi, metric, store_dirs, threshold, step=STEP_SYMMETRIC1):
    """Accumulated DTW cost of one pair by anti-diagonal sweeps (symmetric1 or 2 steps).

    xt : (d, n) float64, x transposed.
    yrt : (d, m) float64, y reversed in time and transposed (``y[::-1].T``).
    lo, hi : (n,) int64 monotone row bounds of the window.
    metric : METRIC_* code.
    store_dirs : keep one direction byte per window cell for backtracking.
    threshold : abandon (return inf) once every path must cost more than this.
    step : STEP_SYMMETRIC1 or STEP_SYMMETRIC2 (the diagonal step costs 2c).

    Returns (accumulated cost, dirs, a, offsets); dirs is empty unless requested.
    """
    d = xt.shape[0]
    n = xt.shape[1]
    m = yrt.shape[1]
    a, b, offsets = diagonal_bounds(lo, hi, m)
    n_diag = n + m - 1
    if store_dirs:
        dirs = np.empty(offsets[n_diag], np.uint8)
    else:
        dirs = np.empty(0, np.uint8)
    # three rotating diagonals, indexed by row i + 1 (index 0 is row -1)
    cur = np.full(n + 2, INF)
    d1 = np.full(n + 2, INF)  # diagonal k - 1
    d2 = np.full(n + 2, INF)  # diagonal k - 2
    d2[0] = 0.0  # the virtual diagonal k = -2 holds D[-1, -1] = 0
    cost = np.empty(n)
    diag_plus = np.empty(n + 2)
    prev_min = INF
    abandon = threshold < INF
    for k in range(n_diag):
        ak = a[k]
        bk = b[k]
        size = bk - ak + 1
        # row i of this diagonal meets column k - i of y, i.e. column m - 1 - k + i of yrt
        _diagonal_costs(xt, yrt, ak, m - 1 - k + ak, size, metric, cost)
        if step == STEP_SYMMETRIC2 and k > 0:  # the start cell (k = 0) costs c, not 2c
            # min(D_diag + 2c, D_up + c, D_left + c) = c + min(D_diag + c, D_up, D_left)
            for i in range(size):
                diag_plus[i] = d2[ak + i] + cost[i]
            diag = diag_plus
        else:
            diag = d2[ak:]
        _diagonal_step(cost, diag, d1[ak:], d1[ak + 1:], cur[ak + 1:], size)
        if store_dirs:
            _diagonal_dirs(diag, d1[ak:], d1[ak + 1:], dirs[offsets[k]:offsets[k + 1]])
        # sentinels so that the next two diagonals read inf outside this one
        cur[ak] = INF
        cur[bk + 2] = INF
        if abandon:
            cur_min = INF
            for i in range(ak + 1, bk + 2):
                if cur[i] < cur_min:
                    cur_min = cur[i]
            if cur_min > threshold and prev_min > threshold:
                return INF, dirs, a, offsets
            prev_min = cur_min
        d2, d1, cur = d1, cur, d2
    return d1[n], dirs, a, offsets


@njit(cache=True, nogil=True, inline="always")
def _diagonal_costs(xt, yrt, x0, y0, size, metric, out):
    """Local costs of consecutive cells: out[i] = cost(xt[:, x0 + i], yrt[:, y0 + i]).

    One pass per feature over fresh 1-d slices: the form LLVM vectorises best
    (several times faster than offset indexing into the 2-d arrays).
    """
    for i in range(size):
        out[i] = 0.0
    for f in range(xt.shape[0]):
        x_row = xt[f, x0:x0 + size]
        y_row = yrt[f, y0:y0 + size]
        if metric == METRIC_CITYBLOCK:
            for i in range(size):
                out[i] += abs(x_row[i] - y_row[i])
        else:
            for i in range(size):
                diff = x_row[i] - y_row[i]
                out[i] += diff * diff
    if metric == METRIC_EUCLIDEAN:
        for i in range(size):
            out[i] = np.sqrt(out[i])


@njit(cache=True, nogil=True, inline="always")
def _diagonal_step(c, diag, up, left, out, size):
    for i in range(size):
        best = diag[i]
        u = up[i]
        le = left[i]
        best = u if u < best else best
        best = le if le < best else best
        out[i] = c[i] + best


@njit(cache=True, nogil=True, inline="always")
def _diagonal_dirs(diag, up, left, out):
    for i in range(out.shape[0]):
        best = diag[i]
        code = DIR_DIAGONAL
        if up[i] < best:
            best = up[i]
            code = DIR_UP
        if left[i] < best:
            code = DIR_LEFT
        out[i] = code




@njit(cache=True, nogil=True)
def backtrack_diagonal(dirs, a, offsets, n, m):
    """Path (K, 2) from the direction bytes of ``diagonal_dtw``, start to end.

    Raises ``ValueError``, like :func:`backtrack_general`, when the codes lead
    outside the stored band or hold an unknown value.
    """
    path = np.empty((n + m - 1, 2), np.int64)
    i = n - 1
    j = m - 1
    K = 0
    while True:
        if i < 0 or j < 0 or K >= n + m - 1:
            raise ValueError("backtracking left the direction matrix: invalid direction codes")
        path[K, 0] = i
        path[K, 1] = j
        K += 1
        if i == 0 and j == 0:
            break
        k = i + j
        cell = offsets[k] + i - a[k]
        if cell < offsets[k] or cell >= offsets[k + 1]:
            raise ValueError("backtracking left the direction matrix: invalid direction codes")
        code = dirs[cell]
        if code == DIR_DIAGONAL:
            i -= 1
            j -= 1
        elif code == DIR_UP:
            i -= 1
        elif code == DIR_LEFT:
            j -= 1
        else:
            raise ValueError("unknown direction code in the direction matrix")
    return path[:K][::-1].copy()


@njit(cache=True, nogil=True)
def lanes_dtw(xl, yl, lo, hi, metric, out):
    """Accumulated symmetric1 DTW cost of L equal-length pairs at once.

    xl : (n, d, L) float64, the first series of each pair in lane layout.
    yl : (m, d, L) float64, the second series of each pair.
    lo, hi : (n,) int64 monotone row bounds of the window shared by all pairs.
    out : (L,) float64, receives the accumulated costs.
    """
    n = xl.shape[0]
    d = xl.shape[1]
    L = xl.shape[2]
    m = yl.shape[0]
    prev = np.full((m + 1, L), INF)
    cur = np.full((m + 1, L), INF)
    c = np.empty(L)
    prev[0, :] = 0.0  # D[-1, -1] = 0, kept in column -1 (index 0) of row -1
    prev_hi = 0  # row i - 1 holds valid values up to this index
    for i in range(n):
        li = lo[i]
        hj = hi[i]
        # columns row i reads from row i - 1 beyond that row's window hold stale values
        for idx in range(prev_hi + 1, hj + 1):
            for s in range(L):
                prev[idx, s] = INF
        for s in range(L):
            cur[li, s] = INF  # column li - 1 of row i
        if d == 1 and metric == METRIC_SQEUCLIDEAN:
            # the common univariate case, fused so that the row stays in registers
            for j in range(li, hj):
                for s in range(L):
                    diff = xl[i, 0, s] - yl[j, 0, s]
                    best = prev[j, s]
                    up = prev[j + 1, s]
                    left = cur[j, s]
                    best = up if up < best else best
                    best = left if left < best else best
                    cur[j + 1, s] = diff * diff + best
        else:
            for j in range(li, hj):
                _lane_costs(xl[i], yl[j], metric, c)
                for s in range(L):
                    best = prev[j, s]
                    up = prev[j + 1, s]
                    left = cur[j, s]
                    best = up if up < best else best
                    best = left if left < best else best
                    cur[j + 1, s] = c[s] + best
        prev_hi = hj
        prev, cur = cur, prev
    for s in range(L):
        out[s] = prev[m, s]


@njit(cache=True, nogil=True, inline="always")
def _lane_costs(xi, yj, metric, out):
    d, L = xi.shape
    out[:] = 0.0
    if metric == METRIC_CITYBLOCK:
        for f in range(d):
            for s in range(L):
                out[s] += abs(xi[f, s] - yj[f, s])
    else:
        for f in range(d):
            for s in range(L):
                diff = xi[f, s] - yj[f, s]
                out[s] += diff * diff
        if metric == METRIC_EUCLIDEAN:
            for s in range(L):
                out[s] = np.sqrt(out[s])


@njit(cache=True, parallel=True)
def lanes_dtw_many(xl, yl, lo, hi, metric, out):
    """``lanes_dtw`` over blocks: xl (B, n, d, L), yl (B, m, d, L), out (B, L)."""
    for blk in prange(xl.shape[0]):
        lanes_dtw(xl[blk], yl[blk], lo, hi, metric, out[blk])


@njit(cache=True, nogil=True)
def general_accumulate(C, step, open_begin):
    """Accumulated cost matrix for any step pattern over a cost matrix.

    C : (n, m) float64 local costs; inf marks cells outside the window.
    step : STEP_* code.
      symmetric1: D = C + min(D[i-1, j-1], D[i-1, j], D[i, j-1])
      symmetric2: D = min(D[i-1, j-1] + 2C, D[i-1, j] + C, D[i, j-1] + C)
      asymmetric: D = C + min(D[i-1, j], D[i-1, j-1], D[i-1, j-2])  (x advances every step)
    open_begin : the path may start at any (0, j).
    Returns D (n, m) and the direction codes (n, m) uint8.
    """
    n, m = C.shape
    D = np.full((n, m), INF)
    dirs = np.zeros((n, m), np.uint8)
    for i in range(n):
        for j in range(m):
            c = C[i, j]
            if c == INF:
                continue
            if i == 0 and (j == 0 or open_begin):
                D[i, j] = c
                dirs[i, j] = DIR_DIAGONAL
                continue
            best = INF
            code = DIR_DIAGONAL
            if step == STEP_ASYMMETRIC:
                if i > 0:
                    if j > 0 and D[i - 1, j - 1] + c < best:
                        best = D[i - 1, j - 1] + c
                        code = DIR_DIAGONAL
                    if D[i - 1, j] + c < best:
                        best = D[i - 1, j] + c
                        code = DIR_UP
                    if j > 1 and D[i - 1, j - 2] + c < best:
                        best = D[i - 1, j - 2] + c
                        code = DIR_SKIP
            else:
                w = 2.0 if step == STEP_SYMMETRIC2 else 1.0
                if i > 0 and j > 0 and D[i - 1, j - 1] + w * c < best:
                    best = D[i - 1, j - 1] + w * c
                    code = DIR_DIAGONAL
                if i > 0 and D[i - 1, j] + c < best:
                    best = D[i - 1, j] + c
                    code = DIR_UP
                if j > 0 and D[i, j - 1] + c < best:
                    best = D[i, j - 1] + c
                    code = DIR_LEFT
            D[i, j] = best
            dirs[i, j] = code
    return D, dirs


@njit(cache=True, nogil=True)
def backtrack_general(dirs, i, j, open_begin):
    """Path (K, 2) ending at (i, j) from ``general_accumulate``'s directions.

    Raises ``ValueError`` when the codes lead outside the matrix or hold an
    unknown value (corrupt or foreign ``dirs``) instead of reading out of bounds.
    """
    n, m = dirs.shape
    path = np.empty((n + m, 2), np.int64)
    K = 0
    while True:
        if i < 0 or j < 0 or i >= n or j >= m or K >= n + m:
            raise ValueError("backtracking left the direction matrix: invalid direction codes")
        path[K, 0] = i
        path[K, 1] = j
        K += 1
        if i == 0 and (j == 0 or open_begin):
            break
        code = dirs[i, j]
        if code == DIR_DIAGONAL:
            i -= 1
            j -= 1
        elif code == DIR_UP:
            i -= 1
        elif code == DIR_LEFT:
            j -= 1
        elif code == DIR_SKIP:
            i -= 1
            j -= 2
        else:
            raise ValueError("unknown direction code in the direction matrix")
    return path[:K][::-1].copy()


@njit(cache=True, nogil=True)
def cost_matrix(x, y, metric):
    """(n, m) local costs between the rows of x (n, d) and y (m, d)."""
    n, d = x.shape
    m = y.shape[0]
    C = np.empty((n, m))
    for i in range(n):
        for j in range(m):
            c = 0.0
            if metric == METRIC_CITYBLOCK:
                for f in range(d):
                    c += abs(x[i, f] - y[j, f])
            else:
                for f in range(d):
                    diff = x[i, f] - y[j, f]
                    c += diff * diff
                if metric == METRIC_EUCLIDEAN:
                    c = np.sqrt(c)
            C[i, j] = c
    return C
