"""Soft-DTW (Cuturi & Blondel 2017): a differentiable alignment cost and its expected alignment.

``soft_dtw(x, y, gamma)`` replaces DTW's ``min`` by the soft minimum
``-gamma log sum exp(-a / gamma)``; its gradient with respect to the local cost
matrix is the expected alignment, a soft ``(n, m)`` warping matrix.  As
``gamma -> 0`` it tends to the accumulated DTW cost (squared Euclidean local
cost, **no** square root: soft-DTW values are accumulated costs, as in tslearn).

The soft-DTW divergence (Blondel, Mensch & Vert 2021)
``soft_dtw(x, y) - (soft_dtw(x, x) + soft_dtw(y, y)) / 2`` is 0 at ``x = y``
and non-negative; ``SoftDTWLoss(normalize=True)`` computes it.

Range: soft-DTW is not scale-free (``gamma`` is in the units of the local
cost), so unlike :func:`mmalign.dtw` it is not rescaled internally.  Inputs
whose costs could overflow are refused with a ``ValueError``: for the squared
Euclidean cost, ``(n + m - 1) * d * (max|x| + max|y|)**2`` must stay below
``2**1023`` (about 9e307; values up to about 1e150 for moderate sizes).  The
value is then finite; the expected alignment (and gradients) further need the
accumulated costs divided by ``gamma`` to stay within what float64 resolves
(an alignment that is not finite is a ``ValueError``, never returned).
"""

from __future__ import annotations

import numpy as np

from ..alignment import Alignment
from ..utils.validation import check_choice, check_float
from . import _extremes as ext
from . import _soft_kernels as S
from .dtw import METRICS, prepare_pair
from .windows import resolve_radius, sakoe_chiba_bounds

GAMMA_RANGE = (1e-8, 1e8)


def soft_dtw(x, y, *, gamma: float = 1.0, radius: int | None = None,
             window: float | None = None, metric: str = "sqeuclidean") -> float:
    """Soft-DTW value between two sequences.

    Parameters
    ----------
    x : np.ndarray [shape=(n,) or (n, d)]
    y : np.ndarray [shape=(m,) or (m, d)]
    gamma : float > 0
        Smoothing; ``gamma -> 0`` recovers the accumulated DTW cost.
    radius, window : Sakoe–Chiba band, as in :func:`mmalign.dtw`.
    metric : {"sqeuclidean", "euclidean", "cityblock"}
        Local cost; the value is the soft accumulated cost (no square root).

    Returns
    -------
    value : float
        May be negative (the soft minimum is below the minimum).

    Raises
    ------
    ValueError
        Bad input, or values too large for float64 soft-DTW: with the squared
        Euclidean cost ``(n + m - 1) * d * (max|x| + max|y|)**2`` must be below
        ``2**1023`` (about 9e307).  Divide ``x`` and ``y`` by ``c`` and ``gamma``
        by ``c**2`` (the value is divided by ``c**2``).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> x, y = np.array([0., 1., 2.]), np.array([0., 2.])
    >>> round(mmalign.soft_dtw(x, y, gamma=0.01), 4)   # two equal paths: 1 - 0.01 log 2
    0.9931
    >>> mmalign.soft_dtw(x, y, gamma=1.0) < 1.0
    True
    """
    value, _, _, _ = _solve(x, y, gamma, radius, window, metric, want_alignment=False)
    return value


def soft_dtw_alignment(x, y, *, gamma: float = 1.0, radius: int | None = None,
                       window: float | None = None, metric: str = "sqeuclidean") -> Alignment:
    """Soft-DTW value and expected alignment matrix as an :class:`~mmalign.Alignment`.

    Returns
    -------
    alignment : Alignment
        ``weights`` is the ``(n, m)`` expected alignment (the gradient of the value
        with respect to the local cost matrix: each entry in ``[0, 1]``, 1 at the
        corners); ``cost`` is the soft-DTW value; ``path()`` is the best monotone
        path through the weights.

    Raises
    ------
    ValueError
        As :func:`soft_dtw`; also when the costs are so large relative to
        ``gamma`` that float64 cannot resolve the expected alignment.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> a = mmalign.soft_dtw_alignment(np.array([0., 1., 2.]), np.array([0., 2.]), gamma=0.01)
    >>> a.matrix().round(2)
    array([[1. , 0. ],
           [0.5, 0.5],
           [0. , 1. ]])
    """
    value, E, shape, metric = _solve(x, y, gamma, radius, window, metric, want_alignment=True)
    return Alignment(weights=E, cost=value, shape=shape, monotonic=True,
                     extras={"gamma": float(gamma), "metric": metric})


def check_gamma(gamma) -> float:
    return check_float(gamma, "gamma", GAMMA_RANGE[0], GAMMA_RANGE[1])


def _solve(x, y, gamma, radius, window, metric, want_alignment):
    gamma = check_gamma(gamma)
    check_choice(metric, "metric", {"sqeuclidean", "euclidean", "cityblock"})
    x, y = prepare_pair(x, y, metric)
    n, m = len(x), len(y)
    error = ext.soft_range_error(ext.peak(x), ext.peak(y), n + m - 1, x.shape[1], metric=metric)
    if error is not None:
        raise error
    r = resolve_radius(radius, window, n, m)
    lo, hi = sakoe_chiba_bounds(n, m, -1 if r is None else r)
    xt = np.ascontiguousarray(x.T)
    yrt = np.ascontiguousarray(y[::-1].T)
    code = METRICS[metric]
    R = np.empty(int((hi - lo).sum()))
    value, a, offsets = S.soft_forward(xt, yrt, lo, hi, gamma, code, R)
    E = None
    if want_alignment:
        flat = np.empty_like(R)
        none = np.zeros((0, 0))
        S.soft_backward(xt, yrt, lo, hi, gamma, code, R, a, offsets, flat, none, none)
        E = S.diagonal_to_matrix(flat, a, offsets, n, m)
        if not np.isfinite(E).all():
            raise ext.soft_precision_error("expected alignment", gamma)
    return float(value), E, (n, m), metric
