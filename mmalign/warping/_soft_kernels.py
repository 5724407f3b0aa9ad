"""Numba kernels of soft-DTW (Cuturi & Blondel 2017) by anti-diagonal sweeps (private).

Like the hard ``diagonal_dtw`` kernel, each anti-diagonal is one SIMD loop: its
cells depend only on the two previous diagonals.  The soft minimum uses the
vectorisable ``vexp`` / ``vlog_1_to_3``; the forward stores ``R`` diagonal by
diagonal (one value per window cell) for the backward, which recomputes local
costs instead of storing them and accumulates the gradients with respect to
both sequences directly, so no ``n x m`` cost or alignment matrix is formed
unless asked for.

Buffers are indexed by row + 1 (index 0 is row -1); unreachable cells hold
``+inf`` in ``R`` (forward) and ``-inf`` with zero weight in the backward.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._fastmath import vexp, vlog_1_to_3
from ._kernels import METRIC_SQEUCLIDEAN, _diagonal_costs, diagonal_bounds
from .windows import sakoe_chiba_bounds

INF = np.inf
FASTMATH = {"contract"}  # fused multiply-adds only: no reassociation, inf semantics kept
# error_model="numpy" drops the zero-division checks that would keep the loops scalar


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def soft_forward(xt, yrt, lo, hi, gamma, metric, R):
    """Soft-DTW value of one pair; fills R (one value per window cell, diagonal-major).

    xt : (d, n), yrt : (d, m) as for ``diagonal_dtw``; lo, hi : monotone row bounds.
    R : (cells,) float64 output.  Returns (value, a, offsets).
    """
    n = xt.shape[1]
    m = yrt.shape[1]
    a, b, offsets = diagonal_bounds(lo, hi, m)
    inv_gamma = 1.0 / gamma
    cur = np.full(n + 2, INF)
    d1 = np.full(n + 2, INF)
    d2 = np.full(n + 2, INF)
    d2[0] = 0.0
    cost = np.empty(n)
    for k in range(n + m - 1):
        ak = a[k]
        size = b[k] - ak + 1
        _diagonal_costs(xt, yrt, ak, m - 1 - k + ak, size, metric, cost)
        diag = d2[ak:ak + size]
        up = d1[ak:ak + size]
        left = d1[ak + 1:ak + 1 + size]
        for i in range(size):  # in place over the costs: few pointers, so LLVM vectorises
            lowest = min(diag[i], min(up[i], left[i]))
            finite = lowest < INF
            base = lowest if finite else 0.0
            total = (vexp((base - diag[i]) * inv_gamma) + vexp((base - up[i]) * inv_gamma)
                     + vexp((base - left[i]) * inv_gamma))
            value = cost[i] + base - gamma * vlog_1_to_3(total)
            cost[i] = value if finite else INF
        cur[ak + 1:ak + 1 + size] = cost[:size]
        R[offsets[k]:offsets[k] + size] = cost[:size]
        cur[ak] = INF
        cur[ak + size + 1] = INF
        d2, d1, cur = d1, cur, d2
    return d1[n], a, offsets


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def soft_backward(xt, yrt, lo, hi, gamma, metric, R, a, offsets, E, gxt, gyrt):
    """Expected alignment of one pair from the forward's R, and the gradients.

    E : (cells,) output, the expected alignment diagonal-major (or an empty array).
    gxt : (d, n), gyrt : (d, m) outputs (or (0, 0) arrays): gradients of the value
    with respect to xt and yrt for the squared Euclidean cost.
    """
    n = xt.shape[1]
    m = yrt.shape[1]
    d = xt.shape[0]
    inv_gamma = 1.0 / gamma
    keep_e = E.shape[0] > 0
    grads = gxt.shape[0] > 0
    # successors of diagonal k live on k + 1 (e1, r1, c1) and k + 2 (e2, r2, c2)
    e_cur = np.zeros(n + 2)
    e1 = np.zeros(n + 2)
    e2 = np.zeros(n + 2)
    r_cur = np.full(n + 2, -INF)
    r1 = np.full(n + 2, -INF)
    r2 = np.full(n + 2, -INF)
    c_cur = np.zeros(n + 2)
    c1 = np.zeros(n + 2)
    c2 = np.zeros(n + 2)
    # the virtual end cell (n, m) on diagonal n + m: weight 1, R = R[n-1, m-1], no cost
    last = n + m - 2
    e2[n + 1] = 1.0
    r2[n + 1] = R[offsets[last] + (n - 1) - a[last]]
    cost = np.empty(n)
    for k in range(last, -1, -1):
        ak = a[k]
        size = offsets[k + 1] - offsets[k]
        _diagonal_costs(xt, yrt, ak, m - 1 - k + ak, size, metric, cost)
        stored = R[offsets[k]:offsets[k] + size]
        down = e1[ak + 2:ak + 2 + size]  # (i + 1, j): row i + 1 of diagonal k + 1
        r_down = r1[ak + 2:ak + 2 + size]
        c_down = c1[ak + 2:ak + 2 + size]
        right = e1[ak + 1:ak + 1 + size]  # (i, j + 1): row i of diagonal k + 1
        r_right = r1[ak + 1:ak + 1 + size]
        c_right = c1[ak + 1:ak + 1 + size]
        corner = e2[ak + 2:ak + 2 + size]  # (i + 1, j + 1): row i + 1 of diagonal k + 2
        r_corner = r2[ak + 2:ak + 2 + size]
        c_corner = c2[ak + 2:ak + 2 + size]
        e_out = e_cur[ak + 1:ak + 1 + size]
        for i in range(size):
            r = stored[i]
            w = (down[i] * vexp((r_down[i] - r - c_down[i]) * inv_gamma)
                 + right[i] * vexp((r_right[i] - r - c_right[i]) * inv_gamma)
                 + corner[i] * vexp((r_corner[i] - r - c_corner[i]) * inv_gamma))
            e_out[i] = w if r < INF else 0.0
        r_cur[ak + 1:ak + 1 + size] = stored
        c_cur[ak + 1:ak + 1 + size] = cost[:size]
        e_cur[ak] = 0.0
        e_cur[ak + size + 1] = 0.0
        r_cur[ak] = -INF
        r_cur[ak + size + 1] = -INF
        if keep_e:
            E[offsets[k]:offsets[k + 1]] = e_out
        if grads:
            y0 = m - 1 - k + ak
            for f in range(d):
                x_row = xt[f, ak:ak + size]
                y_row = yrt[f, y0:y0 + size]
                gx = gxt[f, ak:ak + size]
                gy = gyrt[f, y0:y0 + size]
                for i in range(size):
                    g = 2.0 * e_out[i] * (x_row[i] - y_row[i])
                    gx[i] += g
                    gy[i] -= g
        e2, e1, e_cur = e1, e_cur, e2
        r2, r1, r_cur = r1, r_cur, r2
        c2, c1, c_cur = c1, c_cur, c2


@njit(cache=True, nogil=True)
def diagonal_to_matrix(E, a, offsets, n, m):
    """(n, m) matrix from a diagonal-major per-cell array; zeros outside the window."""
    out = np.zeros((n, m))
    for k in range(n + m - 1):
        for t in range(offsets[k + 1] - offsets[k]):
            i = a[k] + t
            out[i, k - i] = E[offsets[k] + t]
    return out


@njit(cache=True, nogil=True)
def _layouts(x, y, n, m):
    """xt (d, n) and y reversed and transposed (d, m) of one padded sample."""
    xt = np.ascontiguousarray(x[:n].T)
    yrt = np.ascontiguousarray(y[:m][::-1].T)
    return xt, yrt


@njit(cache=True, parallel=True)
def soft_forward_batch(x, y, lx, ly, gamma, radius, R, r_start, values):
    """Forward over a padded batch x (B, N, d), y (B, M, d), samples in parallel.

    R : flat storage, sample b at ``R[r_start[b]:]`` (``n_b * m_b`` values reserved).
    """
    for s in prange(x.shape[0]):
        n = lx[s]
        m = ly[s]
        xt, yrt = _layouts(x[s], y[s], n, m)
        lo, hi = sakoe_chiba_bounds(n, m, radius)
        values[s] = soft_forward(xt, yrt, lo, hi, gamma, METRIC_SQEUCLIDEAN,
                                 R[r_start[s]:r_start[s] + n * m])[0]


@njit(cache=True, parallel=True)
def soft_backward_batch(x, y, lx, ly, gamma, radius, R, r_start, weights, gx, gy):
    """Gradients of sum_b weights[b] * value_b into gx (B, N, d) and gy (B, M, d)."""
    d = x.shape[2]
    for s in prange(x.shape[0]):
        n = lx[s]
        m = ly[s]
        xt, yrt = _layouts(x[s], y[s], n, m)
        lo, hi = sakoe_chiba_bounds(n, m, radius)
        a, b, offsets = diagonal_bounds(lo, hi, m)
        stored = R[r_start[s]:r_start[s] + n * m]
        w = weights[s]
        gxt = np.zeros((d, n))
        gyrt = np.zeros((d, m))
        soft_backward(xt, yrt, lo, hi, gamma, METRIC_SQEUCLIDEAN, stored, a, offsets,
                      np.empty(0), gxt, gyrt)
        for i in range(n):
            for f in range(d):
                gx[s, i, f] = w * gxt[f, i]
        for t in range(m):
            for f in range(d):
                gy[s, m - 1 - t, f] = w * gyrt[f, t]
