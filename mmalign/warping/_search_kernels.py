"""Numba kernels of the many-query subsequence search (private; conventions in ``search.py``).

The UCR-suite cascade (Rakthanmanon et al., KDD 2012) for one query over every
window of one long univariate series:

1. the window's mean and standard deviation come from running sums
   (``window_stats``, O(1) per window);
2. LB_Kim, hierarchical (first / last cells, then the two L-shaped frontiers
   next to each end);
3. LB_Keogh of the window against the query's envelope (the query visited in
   decreasing ``|z|``, so the bound grows fastest and abandons soonest);
4. LB_Keogh of the query against the window's envelope (the series' running
   max / min, normalised with the window's statistics);
5. DTW in the Sakoe–Chiba band, abandoned once the cheapest cell of a row plus
   the cumulative LB_Keogh of the rows still to come exceeds the threshold.

Everything is in accumulated local-cost units (squares for ``sqeuclidean``);
``search.py`` takes the square root.  Every comparison against the threshold is
strict, so a window whose cost equals it is never dropped (ties stay exact).
"""

from __future__ import annotations

import numpy as np
from numba import njit

INF = np.inf
SQUARED = 0  # local cost (a - b) ** 2
ABSOLUTE = 1  # local cost |a - b| (euclidean and cityblock agree on one feature)

# counters of what happened to each window (``stats`` of ``search_query``)
KIM, KEOGH_EQ, KEOGH_EC, ABANDONED, COMPLETED = 0, 1, 2, 3, 4
N_STATS = 5

# a bound may exceed the exact cost by rounding where the two are equal in exact
# arithmetic (radius 0: LB_Keogh is the cost); pruning only beyond this relative slack
# keeps ties exact (as KNeighborsDTW does)
SLACK = 1e-12

BLOCK = 64  # windows per exact re-centring of the running sums
# a window whose standard deviation is at most this times its mean magnitude is constant
CONSTANT_RTOL = 1e-8


@njit(cache=True, nogil=True)
def window_stats(x, m, znorm, mean, inv):
    """Mean and 1 / std of every length-``m`` window of ``x`` (``inv = 0``: constant window).

    Running sums of the deviations from a centre ``mu0``, the exact mean of the
    first window of each block of ``BLOCK`` windows, so that the sums hold the
    window's spread rather than its offset (no cancellation for series far from
    zero).  Without ``znorm``: mean 0 and ``inv`` 1 everywhere.
    """
    nw = mean.shape[0]
    if not znorm:
        for i in range(nw):
            mean[i] = 0.0
            inv[i] = 1.0
        return
    for b0 in range(0, nw, BLOCK):
        mu0 = 0.0
        for p in range(m):
            mu0 += x[b0 + p]
        mu0 /= m
        s = 0.0
        q = 0.0
        for p in range(m):
            d = x[b0 + p] - mu0
            s += d
            q += d * d
        b1 = min(nw, b0 + BLOCK)
        for i in range(b0, b1):
            if i > b0:
                d_in = x[i + m - 1] - mu0
                d_out = x[i - 1] - mu0
                s += d_in - d_out
                q += d_in * d_in - d_out * d_out
            ms = s / m
            var = q / m - ms * ms
            mu = mu0 + ms
            std = np.sqrt(var) if var > 0.0 else 0.0
            mean[i] = mu
            scale = max(abs(mu), abs(mu0))
            if std == 0.0 or std <= CONSTANT_RTOL * scale:
                inv[i] = 0.0
            else:
                inv[i] = 1.0 / std


@njit(cache=True, nogil=True, inline="always")
def _cost(diff, kind):
    if kind == SQUARED:
        return diff * diff
    return abs(diff)


@njit(cache=True, nogil=True)
def lb_kim_hierarchy(q, x, i, mu, iv, threshold, kind):
    """LB_Kim on the window ``x[i:i + m]`` normalised by ``(mu, iv)``; stops above ``threshold``.

    Every path visits (0, 0) and (m-1, m-1), and crosses each L-shaped frontier
    ``max(a, b) = t`` next to the start and ``max(m-1-a, m-1-b) = t`` next to the
    end; for ``m >= 6`` the frontiers t = 1, 2 at both ends are disjoint.
    """
    m = q.shape[0]
    t0 = (x[i] - mu) * iv
    if m == 1:
        return _cost(t0 - q[0], kind)
    tl = (x[i + m - 1] - mu) * iv
    lb = _cost(t0 - q[0], kind) + _cost(tl - q[m - 1], kind)
    if m < 6 or lb > threshold:
        return lb
    t1 = (x[i + 1] - mu) * iv
    d = min(_cost(t1 - q[0], kind), _cost(t0 - q[1], kind), _cost(t1 - q[1], kind))
    tl1 = (x[i + m - 2] - mu) * iv
    d += min(_cost(tl1 - q[m - 1], kind), _cost(tl - q[m - 2], kind),
             _cost(tl1 - q[m - 2], kind))
    lb += d
    if lb > threshold:
        return lb
    t2 = (x[i + 2] - mu) * iv
    d = min(_cost(t0 - q[2], kind), _cost(t1 - q[2], kind), _cost(t2 - q[2], kind),
            _cost(t2 - q[1], kind), _cost(t2 - q[0], kind))
    tl2 = (x[i + m - 3] - mu) * iv
    d += min(_cost(tl - q[m - 3], kind), _cost(tl1 - q[m - 3], kind),
             _cost(tl2 - q[m - 3], kind), _cost(tl2 - q[m - 2], kind),
             _cost(tl2 - q[m - 1], kind))
    return lb + d


@njit(cache=True, nogil=True)
def banded_dtw(q, t, r, cumulative, threshold, kind, prev, cur):
    """Accumulated DTW cost of equal-length ``q`` and ``t`` in the band ``|a - b| <= r``.

    Abandons (returns inf) once the cheapest cell of row ``a`` plus
    ``cumulative[a + r + 1]`` (a lower bound of the cost the path still has to
    pay in the columns / rows it has not reached) exceeds ``threshold``.
    """
    m = q.shape[0]
    for j in range(m):
        prev[j] = INF
    for a in range(m):
        jlo = max(0, a - r)
        jhi = min(m - 1, a + r)
        qa = q[a]
        row_min = INF
        for j in range(jlo, jhi + 1):
            if a == 0 and j == 0:
                best = 0.0
            else:
                best = prev[j]
                if j > 0 and prev[j - 1] < best:
                    best = prev[j - 1]
                if j > jlo and cur[j - 1] < best:
                    best = cur[j - 1]
            v = best + _cost(qa - t[j], kind)
            cur[j] = v
            if v < row_min:
                row_min = v
        if jhi + 1 < m:
            cur[jhi + 1] = INF  # the next row reads it as "up": outside this row's band
        rest = cumulative[a + r + 1] if a + r + 1 < m else 0.0
        if row_min + rest > threshold:
            return INF
        prev, cur = cur, prev
    return prev[m - 1]


@njit(cache=True, nogil=True)
def _kth_smallest(final, n_final, last_cost, k):
    """k-th smallest of ``final[:n_final]`` (sorted ascending) and ``last_cost``; inf if fewer."""
    total = min(n_final, k) + (1 if last_cost < INF else 0)
    if total < k:
        return INF
    # merge position k - 1 of the sorted final list with one extra value
    if n_final >= k:
        kth = final[k - 1]
        below = final[k - 2] if k >= 2 else -INF
        return min(kth, max(below, last_cost))
    # n_final == k - 1 and last_cost is finite
    below = final[k - 2] if k >= 2 else -INF
    return max(below, last_cost)


@njit(cache=True, nogil=True)
def _insert_sorted(final, n_final, value, k):
    """Insert ``value`` into the ascending ``final[:n_final]``, keeping at most ``k``."""
    if n_final >= k and value >= final[k - 1]:
        return n_final
    pos = min(n_final, k - 1)
    while pos > 0 and final[pos - 1] > value:
        final[pos] = final[pos - 1]
        pos -= 1
    final[pos] = value
    return min(n_final + 1, k)


@njit(cache=True, nogil=True)
def search_query(q, order, qo, uo, lo, x, upper, lower, mean, inv, r, exclusion, k, kind,
                 costs, stats):
    """Exact costs of every window that may be among the query's top ``k``.

    q : (m,) the normalised query; order : its indices by decreasing ``|q|``;
    qo, uo, lo : q and its envelope (radius r) in that order.
    x : (N,) the series; upper, lower : its running max / min (radius r).
    mean, inv : per-window statistics (``window_stats``).
    costs : (N - m + 1,) filled with the accumulated cost of every window not
    pruned, inf elsewhere.  stats : (N_STATS,) int64 counters, incremented.

    Pruning threshold: the k-th smallest cost of a set T of computed windows whose
    starts are pairwise more than ``2 * exclusion`` apart.  No window can be
    within ``exclusion`` of two members of T, so the greedy top-k with that
    exclusion rule over all windows has its k-th pick at most that cost: a window
    costing more can be neither a pick nor push one out.  The scan goes by start,
    so only T's latest member can conflict with a new window: a cheaper window
    replaces it, a distant one joins T (its earlier members are final).
    Returns the last threshold (inf while T has fewer than k members).
    """
    m = q.shape[0]
    nw = costs.shape[0]
    cb1 = np.empty(m)
    cb2 = np.empty(m)
    cumulative = np.empty(m + 1)
    t = np.empty(m)
    prev = np.empty(m)
    cur = np.empty(m)
    final = np.full(k, INF)
    n_final = 0
    last_pos = -1
    last_cost = INF
    threshold = INF
    gap = 2 * exclusion
    limit = INF  # threshold widened by SLACK: what the bounds are compared with
    for i in range(nw):
        costs[i] = INF
        mu = mean[i]
        iv = inv[i]
        if lb_kim_hierarchy(q, x, i, mu, iv, limit, kind) > limit:
            stats[KIM] += 1
            continue
        lb1 = 0.0
        for a in range(m):
            p = order[a]
            v = (x[i + p] - mu) * iv
            d = 0.0
            if v > uo[a]:
                d = _cost(v - uo[a], kind)
            elif v < lo[a]:
                d = _cost(lo[a] - v, kind)
            cb1[p] = d
            lb1 += d
            if lb1 > limit:
                break
        if lb1 > limit:
            stats[KEOGH_EQ] += 1
            continue
        lb2 = 0.0
        for a in range(m):
            p = order[a]
            u = (upper[i + p] - mu) * iv
            w = (lower[i + p] - mu) * iv
            v = qo[a]
            d = 0.0
            if v > u:
                d = _cost(v - u, kind)
            elif v < w:
                d = _cost(w - v, kind)
            cb2[p] = d
            lb2 += d
            if lb2 > limit:
                break
        if lb2 > limit:
            stats[KEOGH_EC] += 1
            continue
        src = cb1 if lb1 > lb2 else cb2
        cumulative[m] = 0.0
        for p in range(m - 1, -1, -1):
            cumulative[p] = cumulative[p + 1] + src[p]
        for p in range(m):
            t[p] = (x[i + p] - mu) * iv
        cost = banded_dtw(q, t, r, cumulative, limit, kind, prev, cur)
        if cost == INF:
            stats[ABANDONED] += 1
            continue
        stats[COMPLETED] += 1
        costs[i] = cost
        # update T and the threshold
        if last_pos >= 0 and i - last_pos <= gap:
            if cost < last_cost:
                last_pos = i
                last_cost = cost
        else:
            if last_pos >= 0:
                n_final = _insert_sorted(final, n_final, last_cost, k)
            last_pos = i
            last_cost = cost
        threshold = _kth_smallest(final, n_final, last_cost, k)
        limit = threshold + SLACK * threshold
    return threshold


@njit(cache=True, nogil=True)
def greedy_top_k(costs, threshold, exclusion, k):
    """Starts of the greedy top-``k``: by increasing (cost, start), skipping any window
    whose start is within ``exclusion`` of an earlier pick.  Only windows costing at
    most ``threshold`` are candidates (all the finite ones when it is inf)."""
    idx = np.flatnonzero(costs <= threshold)
    keys = costs[idx]
    # stable sort by cost keeps the starts ascending among ties
    sorted_idx = idx[np.argsort(keys, kind="mergesort")]
    picks = np.empty(k, np.int64)
    n = 0
    for s in sorted_idx:
        ok = True
        for p in range(n):
            if abs(s - picks[p]) <= exclusion:
                ok = False
                break
        if ok:
            picks[n] = s
            n += 1
            if n == k:
                break
    return picks[:n]
