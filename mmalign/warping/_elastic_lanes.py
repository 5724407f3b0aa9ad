"""SIMD-lane kernels of the elastic distances (private): ``L`` pairs of one shape at a
time, the pair index innermost, so that every cell of the dynamic programme is one
vector operation over the lanes.  The same recurrences, boundaries and window as
:mod:`._elastic_kernels` (aeon's), equal to them to rounding (the same operations
in the same order per pair).

Buffers hold a row with one extra leading cell (column -1, the boundary); cells a
row does not compute but the next reads are set to the value outside the window.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._elastic_kernels import (DTWLIKE, EDR, ERP, LCSS, MSM_IND, SHAPE, _band, edr_boundary,
                               logistic_weights, shape_trace_descriptors)

INF = np.inf
LANES = 32


@njit(cache=True, nogil=True, inline="always")
def _sqdist(X, i, Y, j, c):
    """Squared Euclidean distances of frame i of X and frame j of Y, lane by lane (on the
    1-d rows of the lanes, which vectorise)."""
    xi = X[i]
    yj = Y[j]
    L = c.shape[0]
    x0 = xi[0]
    y0 = yj[0]
    for l in range(L):
        t = x0[l] - y0[l]
        c[l] = t * t
    for k in range(1, xi.shape[0]):
        xk = xi[k]
        yk = yj[k]
        for l in range(L):
            t = xk[l] - yk[l]
            c[l] += t * t


@njit(cache=True, nogil=True, inline="always")
def _dist(X, i, Y, j, c):
    """Euclidean distances, the square roots in their own loop (which vectorises)."""
    _sqdist(X, i, Y, j, c)
    for l in range(c.shape[0]):
        c[l] = math.sqrt(c[l])


@njit(cache=True, nogil=True)
def _finish_row(cur, i, n, hi, b, out_value):
    """Cells ``[b, hi[i + 1])`` of row i, read by row i + 1, lie outside the window."""
    if i + 1 < n:
        for jj in range(b, hi[i + 1]):
            for l in range(cur.shape[1]):
                cur[jj + 1, l] = out_value


@njit(cache=True, nogil=True)
def lanes_dtwlike(X, Y, lo, hi, weights, penalty, out, store=np.empty((0, 0, 0))):
    n, L = X.shape[0], X.shape[2]
    m = Y.shape[0]
    prev = np.full((m + 1, L), INF)
    cur = np.full((m + 1, L), INF)
    prev[0, :] = 0.0
    c = np.empty(L)
    keep = store.shape[0] > 0
    for i in range(n):
        a, b = lo[i], hi[i]
        cur[a, :] = INF
        for j in range(a, b):
            w = weights[i - j if i >= j else j - i]
            _sqdist(X, i, Y, j, c)
            p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
            for l in range(L):
                c1[l] = w * c[l] + min(p0[l], p1[l] + penalty, c0[l] + penalty)
            if keep:
                store[i, j, :] = c1
        _finish_row(cur, i, n, hi, b, INF)
        prev, cur = cur, prev
    out[:] = prev[m, :]


@njit(cache=True, nogil=True)
def lanes_lcss(X, Y, lo, hi, epsilon, out):
    n, L = X.shape[0], X.shape[2]
    m = Y.shape[0]
    prev = np.zeros((m + 1, L))
    cur = np.zeros((m + 1, L))
    c = np.empty(L)
    for i in range(n):
        a, b = lo[i], hi[i]
        cur[a, :] = 0.0
        for j in range(a, b):
            _dist(X, i, Y, j, c)
            p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
            for l in range(L):
                c1[l] = p0[l] + 1.0 if c[l] <= epsilon else max(c0[l], p1[l])
        _finish_row(cur, i, n, hi, b, 0.0)
        prev, cur = cur, prev
    out[:] = prev[m, :]


@njit(cache=True, nogil=True)
def lanes_edr(X, Y, lo, hi, eps, first_row, first_col, out):
    n, L = X.shape[0], X.shape[2]
    m = Y.shape[0]
    prev = np.full((m + 1, L), INF)
    cur = np.full((m + 1, L), INF)
    prev[0, :] = 0.0
    for j in range(m):
        prev[j + 1, :] = first_row[j]
    c = np.empty(L)
    for i in range(n):
        a, b = lo[i], hi[i]
        cur[a, :] = first_col[i] if a == 0 else INF
        for j in range(a, b):
            _dist(X, i, Y, j, c)
            p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
            for l in range(L):
                cost = 0.0 if c[l] < eps[l] else 1.0
                c1[l] = min(p0[l] + cost, p1[l] + 1.0, c0[l] + 1.0)
        _finish_row(cur, i, n, hi, b, INF)
        prev, cur = cur, prev
    out[:] = prev[m, :]


@njit(cache=True, nogil=True)
def _gaps(X, g):
    n, d, L = X.shape
    gx = np.empty((n, L))
    total = np.zeros(L)
    for i in range(n):
        for l in range(L):
            s = 0.0
            for k in range(d):
                t = X[i, k, l] - g[k]
                s += t * t
            gx[i, l] = math.sqrt(s)
            total[l] += gx[i, l]
    return gx, total


@njit(cache=True, nogil=True)
def lanes_erp(X, Y, lo, hi, g, out):
    n, L = X.shape[0], X.shape[2]
    m = Y.shape[0]
    gx, x_sum = _gaps(X, g)
    gy, y_sum = _gaps(Y, g)
    prev = np.full((m + 1, L), INF)
    cur = np.full((m + 1, L), INF)
    prev[0, :] = 0.0
    for j in range(m):
        prev[j + 1, :] = y_sum
    c = np.empty(L)
    for i in range(n):
        a, b = lo[i], hi[i]
        if a == 0:
            cur[0, :] = x_sum
        else:
            cur[a, :] = INF
        for j in range(a, b):
            _dist(X, i, Y, j, c)
            p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
            gxi, gyj = gx[i], gy[j]
            for l in range(L):
                c1[l] = min(p0[l] + c[l], p1[l] + gxi[l], c0[l] + gyj[l])
        _finish_row(cur, i, n, hi, b, INF)
        prev, cur = cur, prev
    out[:] = prev[m, :]


@njit(cache=True, nogil=True, inline="always")
def _move(v, u, w, c):
    if (u <= v and v <= w) or (u >= v and v >= w):
        return c
    p = abs(v - u)
    q = abs(v - w)
    return c + (p if p < q else q)


@njit(cache=True, nogil=True)
def lanes_msm(X, Y, lo, hi, c_, out):
    """Independent MSM: the sum over channels of univariate MSM."""
    n, d, L = X.shape
    m = Y.shape[0]
    prev = np.empty((m + 1, L))
    cur = np.empty((m + 1, L))
    out[:] = 0.0
    for k in range(d):
        prev[:, :] = INF
        cur[:, :] = INF
        prev[0, :] = 0.0
        for i in range(n):
            a, b = lo[i], hi[i]
            ip = i - 1 if i > 0 else 0
            cur[a, :] = INF
            for j in range(a, b):
                jp = j - 1 if j > 0 else 0
                p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
                xs, xps, ys, yps = X[i, k], X[ip, k], Y[j, k], Y[jp, k]
                for l in range(L):
                    xi = xs[l]
                    yj = ys[l]
                    c1[l] = min(p0[l] + abs(xi - yj), p1[l] + _move(xi, xps[l], yj, c_),
                                c0[l] + _move(yj, xi, yps[l], c_))
            _finish_row(cur, i, n, hi, b, INF)
            prev, cur = cur, prev
        for l in range(L):
            out[l] += prev[m, l]


@njit(cache=True, nogil=True)
def lanes_twe(X, Y, lo, hi, nu, lmbda, out):
    n, d, L = X.shape
    m = Y.shape[0]
    # the distance of each frame to the one before (a zero frame before the first)
    dx = np.empty((n, L))
    dy = np.empty((m, L))
    for i in range(n):
        for l in range(L):
            s = 0.0
            for k in range(d):
                t = (X[i - 1, k, l] if i > 0 else 0.0) - X[i, k, l]
                s += t * t
            dx[i, l] = math.sqrt(s)
    for j in range(m):
        for l in range(L):
            s = 0.0
            for k in range(d):
                t = (Y[j - 1, k, l] if j > 0 else 0.0) - Y[j, k, l]
                s += t * t
            dy[j, l] = math.sqrt(s)
    XP = np.zeros((n + 1, d, L))
    XP[1:] = X
    YP = np.zeros((m + 1, d, L))
    YP[1:] = Y
    prev = np.full((m + 1, L), INF)
    cur = np.full((m + 1, L), INF)
    prev[0, :] = 0.0
    c = np.empty(L)
    cp = np.empty(L)
    del_add = nu + lmbda
    for i in range(n):
        a, b = lo[i], hi[i]
        cur[a, :] = INF
        for j in range(a, b):
            _sqdist(XP, i + 1, YP, j + 1, c)
            _sqdist(XP, i, YP, j, cp)  # the previous frames (zero frames before the first)
            for l in range(L):
                c[l] = math.sqrt(c[l])
            for l in range(L):
                cp[l] = math.sqrt(cp[l])
            gap = nu * (2 * (i - j if i >= j else j - i))
            p0, p1, c0, c1 = prev[j], prev[j + 1], cur[j], cur[j + 1]
            dxi, dyj = dx[i], dy[j]
            for l in range(L):
                c1[l] = min(p0[l] + c[l] + cp[l] + gap, p1[l] + dxi[l] + del_add,
                            c0[l] + dyj[l] + del_add)
        _finish_row(cur, i, n, hi, b, INF)
        prev, cur = cur, prev
    out[:] = prev[m, :]


@njit(cache=True, parallel=True)
def pairwise_lanes(code, data_x, off_x, data_y, off_y, ia, ib, n, m, r, p0, p1, flag,
                   std_x, std_y, g):
    """Raw values of the pairs ``(ia[k], ib[k])``, every x of length ``n`` and every y of
    length ``m``, ``LANES`` at a time (the last block repeats its last pair)."""
    P = len(ia)
    d = data_x.shape[1]
    blocks = (P + LANES - 1) // LANES
    out = np.empty(P)
    lo, hi = _band(n, m, r)
    if code == DTWLIKE or code == SHAPE:
        weights = logistic_weights(max(n, m), p0) if flag == 1 else np.ones(max(n, m))
    else:
        weights = np.ones(1)
    first_row, first_col = edr_boundary(lo, hi, n, m)
    for blk in prange(blocks):
        X = np.empty((n, d, LANES))
        Y = np.empty((m, d, LANES))
        eps = np.empty(LANES)
        for l in range(LANES):
            p = min(blk * LANES + l, P - 1)
            a, b = ia[p], ib[p]
            X[:, :, l] = data_x[off_x[a]:off_x[a + 1]]
            Y[:, :, l] = data_y[off_y[b]:off_y[b + 1]]
            eps[l] = p0 if p0 >= 0 else max(std_x[a], std_y[b]) / 4.0
        res = np.empty(LANES)
        if code == DTWLIKE:
            lanes_dtwlike(X, Y, lo, hi, weights, p1, res)
        elif code == LCSS:
            lanes_lcss(X, Y, lo, hi, p0, res)
        elif code == EDR:
            lanes_edr(X, Y, lo, hi, eps, first_row, first_col, res)
        elif code == ERP:
            lanes_erp(X, Y, lo, hi, g, res)
        elif code == MSM_IND:
            lanes_msm(X, Y, lo, hi, p0, res)
        elif code == SHAPE:
            # the whole table (outside the window: inf), then aeon's trace lane by lane
            store = np.full((n, m, LANES), INF)
            lanes_dtwlike(X, Y, lo, hi, weights, 0.0, res, store)
            for l in range(LANES):
                res[l] = shape_trace_descriptors(X[:, :, l], Y[:, :, l],
                                                 np.ascontiguousarray(store[:, :, l]),
                                                 np.int64(p0))
        else:
            lanes_twe(X, Y, lo, hi, p0, p1, res)
        for l in range(LANES):
            p = blk * LANES + l
            if p < P:
                out[p] = res[l]
    return out
