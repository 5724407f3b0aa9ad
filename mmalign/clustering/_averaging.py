"""Cluster centres: DBA rounds, the soft-DTW barycenter, the Euclidean mean and the medoid.

The DBA step is :func:`mmalign.dba`'s (align every member to the centre with the
exact DTW path, replace each frame of the centre by the mean of the frames aligned
to it); the alignments of a cluster's members run in numba, 32 series at a time in
SIMD lanes (``mmalign.warping._dba_kernels``: the same costs and paths as
:func:`mmalign.dtw_path`), on one core: one round takes milliseconds, and threads
cost more than they save on calls that short whenever the cores are shared.  The
rounds stop as tslearn's ``dtw_barycenter_averaging_petitjean`` stops, so that
k-means matches tslearn's.
"""

from __future__ import annotations

import numpy as np

from ..warping import _extremes as ext
from ..warping._dba_kernels import LANES, dba_sums, dba_sums_lanes
from ..warping._kernels import STEP_SYMMETRIC1
from ..warping.barycenter import soft_dtw_barycenter
from ..warping.dtw import METRICS, dtw_path
from ..warping.windows import resolve_window

MAX_LANE_DIRS = 64 << 20  # bytes of direction codes one block of lanes may hold


def _paths_sums(z: np.ndarray, xs: list[np.ndarray], options: dict):
    """Sum of squared DTW distances of ``xs`` to ``z``, and per frame of ``z`` the sum and
    number of the frames aligned to it (in the order of ``xs``)."""
    L, d = z.shape
    zt = np.ascontiguousarray(z.T)
    by_length: dict[int, list[int]] = {}
    for k, x in enumerate(xs):
        by_length.setdefault(len(x), []).append(k)
    costs = np.empty(len(xs))
    sums = np.empty((len(xs), L, d))
    counts = np.empty((len(xs), L))
    for m, members in by_length.items():
        win = resolve_window(L, m, **options)
        group = np.stack([xs[k] for k in members])
        if win.is_band:
            if not win.feasible:
                raise ValueError("the DTW window leaves no path between a centre and a series")
            if L * m * LANES <= MAX_LANE_DIRS:
                c, s, n = _lane_sums(z, group, win)
            else:  # long series: one at a time, less memory for the directions
                yrts = np.ascontiguousarray(group[:, ::-1, :].transpose(0, 2, 1))
                c, s, n = dba_sums(zt, yrts, group, win.lo, win.hi, METRICS["sqeuclidean"],
                                   STEP_SYMMETRIC1)
        else:  # a dense window (Itakura and a band together): one pair at a time
            c, s, n = np.empty(len(members)), np.zeros((len(members), L, d)), \
                np.zeros((len(members), L))
            for r, x in enumerate(group):
                alignment = dtw_path(z, x, **options)
                path = alignment.path()
                c[r] = alignment.cost ** 2
                np.add.at(s[r], path[:, 0], x[path[:, 1]])
                n[r] = np.bincount(path[:, 0], minlength=L)
        costs[members], sums[members], counts[members] = c, s, n
    return costs, sums, counts


def _lane_sums(z: np.ndarray, group: np.ndarray, win):
    """:func:`dba_sums_lanes` over blocks of ``LANES`` series (the last one padded)."""
    N, m, d = group.shape
    L = len(z)
    pad = -N % LANES
    if pad:
        group = np.concatenate([group, np.repeat(group[:1], pad, axis=0)])
    blocks = len(group) // LANES
    yl = np.ascontiguousarray(group.reshape(blocks, LANES, m, d).transpose(0, 2, 3, 1))
    costs = np.empty((blocks, LANES))
    sums = np.zeros((blocks, LANES, L, d))
    counts = np.zeros((blocks, LANES, L))
    for b in range(blocks):
        dba_sums_lanes(z, yl[b], win.lo, win.hi, costs[b], sums[b], counts[b])
    return (costs.reshape(-1)[:N], sums.reshape(-1, L, d)[:N], counts.reshape(-1, L)[:N])


def dba_rounds(xs: list[np.ndarray], z: np.ndarray, *, max_iter: int, tol: float,
               options: dict) -> np.ndarray:
    """DBA from the centre ``z (L, d)``, stopping as tslearn does.

    Each round aligns every series to the centre (cost: the mean of the squared
    DTW distances) and replaces the centre by the update; it stops after
    ``max_iter`` rounds, or after the round whose cost differs from the previous
    round's by less than ``tol`` (absolute), or rises.  The centre returned is
    the last update.
    """
    e = ext.exponent(max(ext.peak(z), *(ext.peak(x) for x in xs)))
    if e:
        xs = [ext.scale(x, e) for x in xs]
        z = ext.scale(z, e)
    previous = np.inf
    for _ in range(max_iter):
        costs, sums, counts = _paths_sums(z, xs, options)
        cost = costs.sum() / len(xs)
        z = sums.sum(axis=0) / counts.sum(axis=0)[:, None]
        if abs(previous - cost) < tol or previous < cost:
            break
        previous = cost
    return ext.scale(z, -e) if e else z


def softdtw_centre(xs: list[np.ndarray], z: np.ndarray, params: dict) -> np.ndarray:
    """:func:`mmalign.soft_dtw_barycenter` of ``xs`` from ``z``."""
    return soft_dtw_barycenter(xs, init=z, **params)


def mean_centre(xs: list[np.ndarray]) -> np.ndarray:
    """The frame-wise Euclidean mean of equal-length series."""
    return np.mean(np.stack(xs), axis=0)


def medoid_index(distances: np.ndarray) -> int:
    """The member with the least sum of squared distances to the members."""
    return int(np.argmin((distances ** 2).sum(axis=1)))
