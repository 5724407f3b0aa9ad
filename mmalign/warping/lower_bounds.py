"""Cheap lower bounds of the DTW distance, for pruning nearest-neighbour search.

Both bounds are in the units of :func:`mmalign.dtw` (the square root is taken
for ``"sqeuclidean"``) and hold for equal-length sequences under a Sakoe–Chiba
radius (``radius=None``, or one of the length or more, means no window, where
LB_Keogh degrades to the range of the candidate).  Values of any finite size
work: a pair outside ``[2**-400, 2**400]`` is bounded multiplied by a power of
two, as :func:`mmalign.dtw` does.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from ..utils.validation import as_sequence, check_int, check_same_features
from . import _extremes as ext
from . import _kernels as K
from .dtw import METRICS, finalize


def envelope(x, radius: int | None = None):
    """Running max and min of ``x`` over ``[i - radius, i + radius]``.

    Parameters
    ----------
    x : np.ndarray [shape=(n,) or (n, d)]
    radius : int >= 0 or None (the whole series)

    Returns
    -------
    upper, lower : np.ndarray [shape=(n, d)]

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> up, low = mmalign.warping.envelope(np.array([0., 3., 1., 2.]), radius=1)
    >>> up.ravel().tolist(), low.ravel().tolist()
    ([3.0, 3.0, 3.0, 2.0], [0.0, 0.0, 1.0, 1.0])
    """
    x = as_sequence(x, "x")
    return _envelope(x, _radius(radius, len(x)))


def lb_keogh(x, y, radius: int | None = None, *, metric: str = "sqeuclidean") -> float:
    """LB_Keogh: the cost of ``x`` to the envelope of ``y`` (Keogh & Ratanamahatana 2005).

    Parameters
    ----------
    x, y : np.ndarray [shape=(n,) or (n, d)], equal lengths
    radius : int >= 0 or None
        The Sakoe–Chiba radius the DTW distance is computed with.
    metric : {"sqeuclidean", "euclidean", "cityblock"}

    Returns
    -------
    bound : float
        ``<= mmalign.dtw(x, y, radius=radius, metric=metric)``.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> x, y = np.array([0., 0., 5., 0.]), np.array([0., 1., 1., 0.])
    >>> mmalign.warping.lb_keogh(x, y, radius=1) <= mmalign.dtw(x, y, radius=1)
    True
    """
    x, y, code = _pair(x, y, metric)
    e = ext.exponent(max(ext.peak(x), ext.peak(y)))
    x, y = ext.scale(x, e), ext.scale(y, e)
    upper, lower = _envelope(y, _radius(radius, len(y)))
    return ext.unscale(finalize(lb_keogh_raw(x, upper, lower, code, np.inf), metric), e,
                       "the bound")


def lb_kim(x, y, *, metric: str = "sqeuclidean") -> float:
    """LB_Kim (first and last frames): both end cells lie on every warping path.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> mmalign.warping.lb_kim(np.array([0., 5., 1.]), np.array([1., 1.]))
    1.0
    """
    x = as_sequence(x, "x")
    y = as_sequence(y, "y")
    check_same_features(x, y)
    code = _metric_code(metric)
    e = ext.exponent(max(ext.peak(x), ext.peak(y)))
    x, y = ext.scale(x, e), ext.scale(y, e)
    return ext.unscale(finalize(lb_kim_raw(x, y, code), metric), e, "the bound")


# ----------------------------------------------------------------- raw kernels


@njit(cache=True, nogil=True)
def cell_cost(a, b, metric):
    c = 0.0
    if metric == K.METRIC_CITYBLOCK:
        for f in range(a.shape[0]):
            c += abs(a[f] - b[f])
        return c
    for f in range(a.shape[0]):
        diff = a[f] - b[f]
        c += diff * diff
    if metric == K.METRIC_EUCLIDEAN:
        c = np.sqrt(c)
    return c


@njit(cache=True, nogil=True)
def lb_kim_raw(x, y, metric):
    first = cell_cost(x[0], y[0], metric)
    if x.shape[0] == 1 and y.shape[0] == 1:
        return first
    return first + cell_cost(x[x.shape[0] - 1], y[y.shape[0] - 1], metric)


@njit(cache=True, nogil=True)
def lb_keogh_raw(x, upper, lower, metric, threshold):
    """Accumulated LB_Keogh; stops early once it exceeds ``threshold``."""
    total = 0.0
    for i in range(x.shape[0]):
        c = 0.0
        for f in range(x.shape[1]):
            v = x[i, f]
            if v > upper[i, f]:
                gap = v - upper[i, f]
            elif v < lower[i, f]:
                gap = lower[i, f] - v
            else:
                continue
            if metric == K.METRIC_CITYBLOCK:
                c += gap
            else:
                c += gap * gap
        if metric == K.METRIC_EUCLIDEAN:
            c = np.sqrt(c)
        total += c
        if total > threshold:
            return total
    return total


def _envelope(x: np.ndarray, r: int):
    size = 2 * r + 1
    upper = maximum_filter1d(x, size=size, axis=0, mode="nearest")
    lower = minimum_filter1d(x, size=size, axis=0, mode="nearest")
    return np.ascontiguousarray(upper), np.ascontiguousarray(lower)


def _radius(radius, n: int) -> int:
    """The envelope's half-width: ``n`` (the whole series) for None or any radius beyond."""
    return n if radius is None else min(check_int(radius, "radius", 0), n)


def _metric_code(metric) -> int:
    if metric not in ("sqeuclidean", "euclidean", "cityblock"):
        raise ValueError(
            f"metric must be one of ['cityblock', 'euclidean', 'sqeuclidean'], got {metric!r}"
        )
    return METRICS[metric]


def _pair(x, y, metric):
    x = as_sequence(x, "x")
    y = as_sequence(y, "y")
    check_same_features(x, y)
    if len(x) != len(y):
        raise ValueError(f"LB_Keogh needs x and y of equal length, got {len(x)} and {len(y)}")
    return x, y, _metric_code(metric)
