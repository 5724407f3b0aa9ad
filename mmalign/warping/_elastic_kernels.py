"""numba kernels of the elastic distances (private; see :mod:`mmalign.warping.elastic`).

Every kernel takes two C-contiguous float64 sequences ``x (n, d)`` and ``y (m, d)``,
a window as per-row column bounds ``lo[i] <= j < hi[i]`` (non-decreasing, as
:func:`mmalign.warping.windows.resolve_window` gives them) plus an optional dense
boolean mask (``use_mask``), the metric's parameters, and ``store``: an ``(n, m)``
float64 array that receives the accumulated cost matrix (aeon's ``*_cost_matrix``
cells; for a path), or a ``(0, 0)`` array when only the value is needed.  Two rows
are kept while running, so the value alone needs ``O(m)`` memory.

The recurrences, boundaries and cells outside the window are aeon 1.6's
(``aeon.distances``), including their quirks (documented in ``elastic.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

INF = np.inf

# metric codes of the pairwise driver
DTWLIKE, LCSS, EDR, ERP, MSM_IND, MSM_DEP, TWE, SHAPE = 0, 1, 2, 3, 4, 5, 6, 7


@njit(cache=True, nogil=True, inline="always")
def _sq(x, i, y, j):
    s = 0.0
    for k in range(x.shape[1]):
        t = x[i, k] - y[j, k]
        s += t * t
    return s


@njit(cache=True, nogil=True, inline="always")
def _read(row, j, lo, hi, out):
    """Cell ``j`` of a finished row whose window is ``[lo, hi)``; ``out`` outside it."""
    if j >= lo and j < hi:
        return row[j]
    return out


@njit(cache=True, nogil=True)
def dtwlike(x, y, lo, hi, mask, use_mask, weights, penalty, store):
    """DTW with a weight per ``|i - j|`` on the squared local cost and a penalty on
    non-diagonal steps: dtw / ddtw (weights 1, penalty 0), wdtw / wddtw (logistic
    weights), adtw (penalty), shape_dtw (on descriptors)."""
    n, m = x.shape[0], y.shape[0]
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        for j in range(a, b):
            if use_mask and not mask[i, j]:
                cur[j] = INF
                continue
            if i == 0 and j == 0:
                best = 0.0
            else:
                if i > 0:
                    diag = _read(prev, j - 1, plo, phi, INF) if j > 0 else INF
                    up = _read(prev, j, plo, phi, INF) + penalty
                else:
                    diag = INF
                    up = INF
                left = cur[j - 1] + penalty if j > a else INF
                best = diag
                if up < best:
                    best = up
                if left < best:
                    best = left
            d = i - j if i >= j else j - i
            cur[j] = weights[d] * _sq(x, i, y, j) + best
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else INF
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, INF)


@njit(cache=True, nogil=True)
def lcss(x, y, lo, hi, mask, use_mask, epsilon, store):
    """aeon's LCSS table (cells outside the window hold 0): the length of the longest
    common subsequence whose matched frames lie within Euclidean ``epsilon``."""
    n, m = x.shape[0], y.shape[0]
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        for j in range(a, b):
            if use_mask and not mask[i, j]:
                cur[j] = 0.0
                continue
            if math.sqrt(_sq(x, i, y, j)) <= epsilon:
                diag = _read(prev, j - 1, plo, phi, 0.0) if (i > 0 and j > 0) else 0.0
                cur[j] = 1.0 + diag
            else:
                left = cur[j - 1] if j > a else 0.0
                up = _read(prev, j, plo, phi, 0.0) if i > 0 else 0.0
                cur[j] = left if left > up else up
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else 0.0
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, 0.0)


@njit(cache=True, nogil=True)
def edr(x, y, lo, hi, mask, use_mask, epsilon, first_row, first_col, store):
    """aeon's EDR table: a substitution costs 0 within Euclidean ``epsilon`` (strictly
    below), else 1; an insertion or deletion 1.  ``first_row[j]`` / ``first_col[i]``
    are aeon's boundary cells above row 0 / left of column 0 (0 or inf)."""
    n, m = x.shape[0], y.shape[0]
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        for j in range(a, b):
            if use_mask and not mask[i, j]:
                cur[j] = INF
                continue
            cost = 0.0 if math.sqrt(_sq(x, i, y, j)) < epsilon else 1.0
            if i == 0:
                diag = (0.0 if j == 0 else first_row[j - 1])
                up = first_row[j]
            else:
                diag = _read(prev, j - 1, plo, phi, INF) if j > 0 else first_col[i - 1]
                up = _read(prev, j, plo, phi, INF)
            left = cur[j - 1] if j > a else (first_col[i] if j == 0 else INF)
            best = diag + cost
            if up + 1.0 < best:
                best = up + 1.0
            if left + 1.0 < best:
                best = left + 1.0
            cur[j] = best
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else INF
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, INF)


@njit(cache=True, nogil=True)
def _gap_costs(x, g):
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        s = 0.0
        for k in range(x.shape[1]):
            t = x[i, k] - g[k]
            s += t * t
        out[i] = math.sqrt(s)
    return out


@njit(cache=True, nogil=True)
def erp(x, y, lo, hi, mask, use_mask, g, store):
    """aeon's ERP table: matches cost the Euclidean distance, gaps the distance to
    the vector ``g``; aeon's boundary: every cell left of column 0 holds the whole
    sum of x's gap costs, every cell above row 0 the whole sum of y's."""
    n, m = x.shape[0], y.shape[0]
    gx = _gap_costs(x, g)
    gy = _gap_costs(y, g)
    x_sum = 0.0
    for i in range(n):
        x_sum += gx[i]
    y_sum = 0.0
    for j in range(m):
        y_sum += gy[j]
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        for j in range(a, b):
            if use_mask and not mask[i, j]:
                cur[j] = INF
                continue
            if i == 0:
                diag = 0.0 if j == 0 else y_sum
                up = y_sum
            else:
                diag = _read(prev, j - 1, plo, phi, INF) if j > 0 else x_sum
                up = _read(prev, j, plo, phi, INF)
            left = cur[j - 1] if j > a else (x_sum if j == 0 else INF)
            best = diag + math.sqrt(_sq(x, i, y, j))
            t = up + gx[i]
            if t < best:
                best = t
            t = left + gy[j]
            if t < best:
                best = t
            cur[j] = best
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else INF
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, INF)


@njit(cache=True, nogil=True, inline="always")
def _msm_cost_1d(v, u, w, c):
    if (u <= v and v <= w) or (u >= v and v >= w):
        return c
    a = abs(v - u)
    b = abs(v - w)
    return c + (a if a < b else b)


@njit(cache=True, nogil=True)
def _msm_cost_dep(v, u, w, c):
    """aeon's dependent MSM move cost of frame ``v`` between ``u`` and ``w`` (rows)."""
    diameter = 0.0
    to_mid = 0.0
    to_u = 0.0
    to_w = 0.0
    for k in range(v.shape[0]):
        t = u[k] - w[k]
        diameter += t * t
        t = (u[k] + w[k]) / 2.0 - v[k]
        to_mid += t * t
        t = u[k] - v[k]
        to_u += t * t
        t = w[k] - v[k]
        to_w += t * t
    if to_mid <= diameter / 4.0:
        return c
    return c + (to_u if to_u < to_w else to_w)


@njit(cache=True, nogil=True)
def msm(x, y, lo, hi, mask, use_mask, c, independent, store):
    """aeon's MSM: independent (the sum over channels of univariate MSM tables, each
    with absolute differences) or dependent (squared Euclidean costs on frames)."""
    n, m = x.shape[0], y.shape[0]
    keep = store.shape[0] > 0
    if keep:
        store[:, :] = 0.0
    channels = x.shape[1] if independent else 1
    tmp = np.empty((n, m)) if keep else np.empty((0, 0))
    total = 0.0
    for k in range(channels):
        total += _msm_one(x, y, lo, hi, mask, use_mask, c, independent, k, tmp)
        if keep:
            for i in range(n):
                for j in range(m):
                    store[i, j] += tmp[i, j]
    return total


@njit(cache=True, nogil=True)
def _msm_one(x, y, lo, hi, mask, use_mask, c, independent, k, store):
    n, m = x.shape[0], y.shape[0]
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        for j in range(a, b):
            if i == 0 and j == 0:  # aeon sets the first cell whatever the window
                cur[0] = abs(x[0, k] - y[0, k]) if independent else _sq(x, 0, y, 0)
                continue
            if use_mask and not mask[i, j]:
                cur[j] = INF
                continue
            best = INF
            if i > 0 and j > 0:
                d = abs(x[i, k] - y[j, k]) if independent else _sq(x, i, y, j)
                best = _read(prev, j - 1, plo, phi, INF) + d
            if i > 0:
                if independent:
                    mv = _msm_cost_1d(x[i, k], x[i - 1, k], y[j, k], c)
                else:
                    mv = _msm_cost_dep(x[i], x[i - 1], y[j], c)
                t = _read(prev, j, plo, phi, INF) + mv
                if t < best:
                    best = t
            if j > 0:
                left = cur[j - 1] if j > a else INF
                if independent:
                    mv = _msm_cost_1d(y[j, k], x[i, k], y[j - 1, k], c)
                else:
                    mv = _msm_cost_dep(y[j], x[i], y[j - 1], c)
                t = left + mv
                if t < best:
                    best = t
            cur[j] = best
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else INF
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, INF)


@njit(cache=True, nogil=True)
def twe(x, y, lo, hi, mask, use_mask, nu, lmbda, store):
    """aeon's TWE table over the series with a zero frame prepended (aeon's padding):
    cell ``(i, j)`` here is aeon's padded cell ``(i + 1, j + 1)``."""
    n, m = x.shape[0], y.shape[0]
    d = x.shape[1]
    zero = np.zeros((1, d))
    prev = np.empty(m)
    cur = np.empty(m)
    keep = store.shape[0] > 0
    del_add = nu + lmbda
    plo, phi = 0, 0
    for i in range(n):
        a, b = lo[i], hi[i]
        if i > 0:
            dx = math.sqrt(_sq(x, i - 1, x, i))
        else:
            dx = math.sqrt(_sq(zero, 0, x, 0))
        for j in range(a, b):
            if use_mask and not mask[i, j]:
                cur[j] = INF
                continue
            if j > 0:
                dy = math.sqrt(_sq(y, j - 1, y, j))
            else:
                dy = math.sqrt(_sq(zero, 0, y, 0))
            if i > 0:
                up = _read(prev, j, plo, phi, INF)
                diag = _read(prev, j - 1, plo, phi, INF) if j > 0 else INF
            else:
                up = INF
                diag = 0.0 if j == 0 else INF
            left = cur[j - 1] if j > a else INF
            # the previous frames (the zero pad before the first)
            if i > 0 and j > 0:
                dprev = math.sqrt(_sq(x, i - 1, y, j - 1))
            elif i > 0:
                dprev = math.sqrt(_sq(x, i - 1, zero, 0))
            elif j > 0:
                dprev = math.sqrt(_sq(zero, 0, y, j - 1))
            else:
                dprev = 0.0
            gap = i - j if i >= j else j - i
            best = diag + math.sqrt(_sq(x, i, y, j)) + dprev + nu * (2 * gap)
            t = up + dx + del_add
            if t < best:
                best = t
            t = left + dy + del_add
            if t < best:
                best = t
            cur[j] = best
        if keep:
            for j in range(m):
                store[i, j] = cur[j] if (j >= a and j < b) else INF
        prev, cur = cur, prev
        plo, phi = a, b
    return _read(prev, m - 1, plo, phi, INF)


@njit(cache=True, nogil=True)
def logistic_weights(size, g):
    """aeon's WDTW weights ``1 / (1 + exp(-g (k - size / 2)))`` for ``k < size``."""
    w = np.empty(size)
    for k in range(size):
        w[k] = 1.0 / (1.0 + np.exp(-g * (k - size / 2)))
    return w


@njit(cache=True, nogil=True)
def min_return_path(D):
    """aeon's ``compute_min_return_path``: from the last cell, step to the cheapest of
    the diagonal, upper and left cells (ties in that order) until ``(0, 0)``."""
    n, m = D.shape
    i, j = n - 1, m - 1
    out = np.empty((n + m, 2), np.int64)
    k = 0
    while i > 0 or j > 0:
        out[k, 0] = i
        out[k, 1] = j
        k += 1
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            a, b, c = D[i - 1, j - 1], D[i - 1, j], D[i, j - 1]
            if a <= b and a <= c:
                i -= 1
                j -= 1
            elif b <= c:
                i -= 1
            else:
                j -= 1
    out[k, 0] = 0
    out[k, 1] = 0
    k += 1
    return out[:k][::-1].copy()


@njit(cache=True, nogil=True)
def lcss_path(x, y, epsilon, lo, hi, mask, use_mask, L):
    """aeon's ``compute_lcss_return_path`` over the table ``L`` (cells outside 0):
    the matched pairs only."""
    n, m = x.shape[0], y.shape[0]
    i, j = n, m
    out = np.empty((min(n, m), 2), np.int64)
    k = 0
    while i > 0 and j > 0:
        ii, jj = i - 1, j - 1
        inside = jj >= lo[ii] and jj < hi[ii] and (not use_mask or mask[ii, jj])
        if not inside:  # aeon loops forever here; the window never lets the trace out
            break
        if math.sqrt(_sq(x, ii, y, jj)) <= epsilon:
            out[k, 0] = ii
            out[k, 1] = jj
            k += 1
            i, j = ii, jj
        else:
            up = L[ii - 1, jj] if ii > 0 else 0.0
            left = L[ii, jj - 1] if jj > 0 else 0.0
            if up > left:
                i = ii
            else:
                j = jj
    return out[:k][::-1].copy()


@njit(cache=True, nogil=True)
def shape_trace(x, y, D):
    """aeon's shape-DTW value: the squared costs of the original frames summed along
    aeon's trace through the descriptors' table ``D`` (its negative indices wrap)."""
    n, m = D.shape
    i, j = n - 1, m - 1
    total = 0.0
    while i >= 0 and j >= 0:
        total += _sq(x, i, y, j)
        a = D[(i - 1) % n, (j - 1) % m]
        b = D[i, (j - 1) % m]
        c = D[(i - 1) % n, j]
        if a < b and a < c:
            i -= 1
            j -= 1
        elif b < c:
            j -= 1
        else:
            i -= 1
    return total


@njit(cache=True, nogil=True)
def shape_trace_descriptors(xd, yd, D, reach):
    """:func:`shape_trace` with the original frames read from the identity descriptors
    (channel-major, ``2 reach + 1`` columns per channel, the frame at the centre)."""
    n, m = D.shape
    width = 2 * reach + 1
    d = xd.shape[1] // width
    i, j = n - 1, m - 1
    total = 0.0
    while i >= 0 and j >= 0:
        for k in range(d):
            t = xd[i, k * width + reach] - yd[j, k * width + reach]
            total += t * t
        a = D[(i - 1) % n, (j - 1) % m]
        b = D[i, (j - 1) % m]
        c = D[(i - 1) % n, j]
        if a < b and a < c:
            i -= 1
            j -= 1
        elif b < c:
            j -= 1
        else:
            i -= 1
    return total


# --------------------------------------------------------------------------- pairwise driver


@njit(cache=True, nogil=True)
def _band(n, m, r):
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    if r < 0:
        lo[:] = 0
        hi[:] = m
        return lo, hi
    below = r + max(0, n - m)
    above = r + max(0, m - n)
    for i in range(n):
        lo[i] = max(0, i - below)
        hi[i] = min(m, i + above + 1)
    return lo, hi


@njit(cache=True, nogil=True)
def pair_value(code, x, y, r, p0, p1, flag, sx, sy, g):
    """The raw value of one pair for the pairwise driver (band of radius ``r``, -1: none)."""
    n, m = x.shape[0], y.shape[0]
    lo, hi = _band(n, m, r)
    nomask = np.zeros((1, 1), np.bool_)
    nostore = np.empty((0, 0))
    if code == DTWLIKE:
        if flag == 1:
            w = logistic_weights(max(n, m), p0)
        else:
            w = np.ones(max(n, m))
        return dtwlike(x, y, lo, hi, nomask, False, w, p1, nostore)
    if code == LCSS:
        return lcss(x, y, lo, hi, nomask, False, p0, nostore)
    if code == EDR:
        eps = p0 if p0 >= 0 else max(sx, sy) / 4.0
        fr, fc = edr_boundary(lo, hi, n, m)
        return edr(x, y, lo, hi, nomask, False, eps, fr, fc, nostore)
    if code == ERP:
        return erp(x, y, lo, hi, nomask, False, g, nostore)
    if code == SHAPE:
        store = np.empty((n, m))
        dtwlike(x, y, lo, hi, nomask, False, np.ones(max(n, m)), 0.0, store)
        return shape_trace_descriptors(x, y, store, np.int64(p0))
    if code == MSM_IND or code == MSM_DEP:
        return msm(x, y, lo, hi, nomask, False, p0, code == MSM_IND, nostore)
    return twe(x, y, lo, hi, nomask, False, p0, p1, nostore)


@njit(cache=True, nogil=True)
def edr_boundary(lo, hi, n, m):
    """aeon's EDR boundary: above row 0, cell j is 0 where row 0 admits j (and
    j < m - 1); left of column 0, cell i is 0 where row i admits column 0."""
    fr = np.full(m, INF)
    fc = np.full(n, INF)
    for j in range(m - 1):
        if j >= lo[0] and j < hi[0]:
            fr[j] = 0.0
    for i in range(n):
        if lo[i] == 0 and hi[i] > 0:
            fc[i] = 0.0
    return fr, fc


@njit(cache=True, parallel=True)
def pairwise(code, data_x, off_x, data_y, off_y, ia, ib, radius, frac, p0, p1, flag,
             std_x, std_y, g):
    """Raw values of the pairs ``(ia[k], ib[k])`` of two ragged collections stored as
    concatenated rows ``data[off[s]:off[s + 1]]``; the radius per pair is ``radius``
    (>= 0), or ``round(frac * max(n, m))`` halves up (``frac >= 0``), or none."""
    out = np.empty(len(ia))
    for k in prange(len(ia)):
        a, b = ia[k], ib[k]
        x = data_x[off_x[a]:off_x[a + 1]]
        y = data_y[off_y[b]:off_y[b + 1]]
        n, m = x.shape[0], y.shape[0]
        if frac >= 0:
            r = np.int64(math.floor(frac * max(n, m) + 0.5))
        else:
            r = radius
        if r >= max(n, m):
            r = -1
        out[k] = pair_value(code, x, y, r, p0, p1, flag, std_x[a], std_y[b], g)
    return out
