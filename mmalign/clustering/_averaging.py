"""Cluster centres: DBA rounds with the alignments spread over threads, the soft-DTW
barycenter, the Euclidean mean and the medoid.

The DBA step is :func:`mmalign.dba`'s (align every member to the centre with the
exact DTW path, replace each frame of the centre by the mean of the frames aligned
to it); the alignments run on the anti-diagonal kernel of :mod:`mmalign.warping`
in ``n_jobs`` threads (the kernel releases the GIL).  The rounds stop as tslearn's
``dtw_barycenter_averaging_petitjean`` stops, so that k-means matches tslearn's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..warping import _extremes as ext
from ..warping.barycenter import soft_dtw_barycenter
from ..warping.dtw import METRICS, diagonal_solve, dtw_path
from ..warping.windows import resolve_window


def _paths_sums(z: np.ndarray, xs: list[np.ndarray], options: dict):
    """Sum of squared DTW distances of ``xs`` to ``z``, and per frame of ``z`` the sum and
    number of the frames aligned to it."""
    L, d = z.shape
    sums = np.zeros((L, d))
    counts = np.zeros(L)
    cost = 0.0
    for x in xs:
        win = resolve_window(L, len(x), **options)
        if win.is_band:
            acc, path = diagonal_solve(z, x, win, METRICS["sqeuclidean"], True)
            if path is None:
                raise ValueError("the DTW window leaves no path between a centre and a series")
        else:
            alignment = dtw_path(z, x, **options)
            acc, path = alignment.cost ** 2, alignment.path()
        cost += acc
        np.add.at(sums, path[:, 0], x[path[:, 1]])
        counts += np.bincount(path[:, 0], minlength=L)
    return cost, sums, counts


def dba_rounds(xs: list[np.ndarray], z: np.ndarray, *, max_iter: int, tol: float,
               options: dict, pool: ThreadPoolExecutor | None, n_threads: int) -> np.ndarray:
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
    chunks = [xs[k::n_threads] for k in range(n_threads)] if pool is not None else [xs]
    chunks = [c for c in chunks if c]
    previous = np.inf
    for _ in range(max_iter):
        if pool is not None and len(chunks) > 1:
            parts = list(pool.map(lambda c: _paths_sums(z, c, options), chunks))
        else:
            parts = [_paths_sums(z, c, options) for c in chunks]
        cost = sum(p[0] for p in parts) / len(xs)
        sums = sum(p[1] for p in parts)
        counts = sum(p[2] for p in parts)
        z = sums / counts[:, None]
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
