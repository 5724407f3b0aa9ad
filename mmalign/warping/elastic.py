"""Elastic distances behind one API: ``distance``, ``distance_path``, ``cdist``.

Metrics (``METRICS``) and their parameters, with aeon's (``aeon.distances``, 1.6)
names and defaults:

========== ================================= =========================================
metric     parameters (default)              value
========== ================================= =========================================
dtw        --                                :func:`mmalign.dtw`: the **square root** of
                                             the accumulated squared cost (aeon returns
                                             the accumulated squared cost itself)
ddtw       --                                aeon's: DTW's accumulated squared cost on
                                             Keogh & Pazzani's slope derivatives
                                             (``n - 2`` frames; no square root)
wdtw       ``g`` (0.05)                      accumulated ``w(|i-j|) (x_i - y_j)^2``,
                                             ``w(k) = 1 / (1 + exp(-g (k - L / 2)))``,
                                             ``L = max(n, m)``
wddtw      ``g`` (0.05)                      wdtw on the slope derivatives
adtw       ``warp_penalty`` (1.0)            amerced DTW: DTW plus ``warp_penalty`` per
                                             non-diagonal step
lcss       ``epsilon`` (1.0)                 ``1 - L / min(n, m)``, ``L`` the longest
                                             common subsequence of frames within
                                             Euclidean ``epsilon``
edr        ``epsilon`` (None: a quarter of   edit distance on real sequences over
           the larger standard deviation     ``max(n, m)``; frames match when their
           of x and y, all values)           Euclidean distance is below ``epsilon``
erp        ``g`` (0.0), ``g_arr`` (None: g   edit distance with real penalty (Euclidean
           in every channel)                 costs, gaps against the vector ``g_arr``)
msm        ``c`` (1.0), ``independent``      move-split-merge; independent: the sum of
           (True)                            the univariate MSM of every channel
twe        ``nu`` (0.001), ``lmbda`` (1.0)   time warp edit distance
shape_dtw  ``reach`` (15), ``descriptor``    DTW between the ``2 reach + 1`` frame
           ("identity")                      neighbourhoods (edges repeated), valued as
                                             aeon does (below)
euclidean  --                                ``sqrt(sum (x_i - y_i)^2)``; equal lengths
                                             only (aeon truncates to the shorter)
========== ================================= =========================================

Where mmalign differs from aeon
-------------------------------
* **Layout**: sequences are ``(n, d)`` (frames first) as everywhere in mmalign;
  aeon's are ``(d, n)``.  ``(n,)`` is univariate.
* **dtw** returns the square root of aeon's value (``mmalign.dtw``'s convention,
  as tslearn, dtaidistance and the UCR archive report it).  Every other metric
  returns aeon's value.
* **Windows**: every metric takes mmalign's DTW window options, ``radius``
  (Sakoe-Chiba half-width in samples, widened by the length difference),
  ``window`` (a fraction: ``radius = round(window * max(n, m))``, halves up, as the
  UCR archive does), ``itakura_slope`` (tslearn's slope) and ``mask`` (any boolean
  ``(n, m)`` array), intersected; ddtw / wddtw resolve them on the derivatives'
  lengths ``(n - 2, m - 2)``, as aeon does.  aeon's ``window=w`` is
  ``floor(w * min(n, m))`` around an interpolated diagonal: for equal lengths it is
  ``radius=int(w * n)``; for unequal lengths pass aeon's bounding matrix as
  ``mask`` (``aeon.distances.elastic.create_bounding_matrix(n, m, w).``).
  aeon's ``itakura_max_slope`` (a fraction of the length) is not taken: a
  ValueError says to use ``itakura_slope`` or ``mask``.
* **euclidean** refuses unequal lengths (ValueError) and takes no window.
* **shape_dtw** takes ``descriptor="identity"`` only (as aeon); aeon's precomputed
  transformations (``transformation_precomputed``...) are not taken.
* **Quirks kept for agreement** (aeon's definitions, equal to aeon to rounding):
  EDR's boundary lets a prefix of ``x`` be deleted for free (aeon sets the column
  left of the first frame to 0) and leaves the cell above the last column infinite;
  ERP's boundary holds the *whole* gap sum of ``x`` (``y``) in every cell left of
  (above) the grid rather than its running sum; TWE prepends a zero frame to both
  series; MSM's first cell is set whatever the window; shape_dtw's value sums the
  original frames' squared costs along aeon's own trace through the descriptors'
  table (strict comparisons, indices wrapping at the border), not along the path
  ``distance_path`` returns.

Paths (``distance_path``)
-------------------------
Every metric but ``euclidean`` has one.  As aeon's ``*_alignment_path``: from
``(n - 1, m - 1)`` step to the cheapest of the diagonal, upper and left cells of the
accumulated cost matrix (ties in that order) until ``(0, 0)``.  For dtw, ddtw,
wdtw, wddtw and shape_dtw (on its descriptors) that is an optimal warping path; for
adtw, erp, edr, msm and twe, whose step costs differ by direction, it is aeon's
greedy trace (monotone and continuous, but not always the path whose cost is the
distance).  lcss's path holds the matched pairs only (monotone, not continuous); with a
window its trace stops where it would step outside the window (aeon's
``compute_lcss_return_path`` loops forever there).
ddtw / wddtw paths index the derivatives (``n - 2`` by ``m - 2``), as aeon's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..alignment import Alignment
from ..utils.validation import as_sequence, check_bool, check_choice, check_float, check_int
from . import _elastic_kernels as EK
from . import _elastic_lanes as EL
from .windows import resolve_window

METRICS = ("dtw", "ddtw", "wdtw", "wddtw", "adtw", "lcss", "edr", "erp", "msm", "twe",
           "shape_dtw", "euclidean")
MIN_LANE_GROUP = 8  # fewer pairs of one shape than this run pair by pair
PATH_METRICS = tuple(m for m in METRICS if m != "euclidean")
WINDOW_OPTIONS = ("radius", "window", "itakura_slope", "mask")

# the metric's own parameters and their defaults (aeon's)
PARAMETERS: dict[str, dict[str, Any]] = {
    "dtw": {}, "ddtw": {}, "wdtw": {"g": 0.05}, "wddtw": {"g": 0.05},
    "adtw": {"warp_penalty": 1.0}, "lcss": {"epsilon": 1.0}, "edr": {"epsilon": None},
    "erp": {"g": 0.0, "g_arr": None}, "msm": {"c": 1.0, "independent": True},
    "twe": {"nu": 0.001, "lmbda": 1.0}, "shape_dtw": {"reach": 15, "descriptor": "identity"},
    "euclidean": {},
}


# --------------------------------------------------------------------------- public API


def distance(x, y, metric: str = "dtw", **params: Any) -> float:
    """Elastic distance between two sequences.

    Parameters
    ----------
    x : np.ndarray [shape=(n,) or (n, d)]
    y : np.ndarray [shape=(m,) or (m, d)]
        Finite real values; the same number of features ``d``.
    metric : str
        One of :data:`METRICS`; see the module docstring for each definition.
    **params
        The metric's parameters (aeon's names and defaults: ``g``, ``warp_penalty``,
        ``epsilon``, ``g_arr``, ``c``, ``independent``, ``nu``, ``lmbda``, ``reach``,
        ``descriptor``) and the window options ``radius`` / ``window`` /
        ``itakura_slope`` / ``mask`` as in :func:`mmalign.dtw` (not for euclidean).

    Returns
    -------
    value : float
        aeon's value for the metric, except ``dtw``: its square root (as
        :func:`mmalign.dtw`).

    Raises
    ------
    ValueError
        Bad input (named), an unknown metric or parameter, a window admitting no
        path.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> x, y = np.array([0., 1., 2., 1.]), np.array([0., 2., 1.])
    >>> mmalign.distance(x, y, "msm")
    2.0
    >>> mmalign.distance(x, y, "lcss", epsilon=0.5)
    0.0
    """
    metric, own, win = _check_params(metric, params)
    if metric == "dtw":
        from .dtw import dtw

        return dtw(x, y, **win)
    x, y = _pair(x, y)
    if metric == "euclidean":
        return _euclidean(x, y)
    return _solve(metric, x, y, own, win, want_path=False)[0]


def distance_path(x, y, metric: str = "dtw", **params: Any) -> Alignment:
    """aeon's alignment path of an elastic metric, as an :class:`~mmalign.Alignment`.

    Parameters
    ----------
    x, y, metric, **params
        As in :func:`distance`; ``metric`` one of :data:`PATH_METRICS` (all but
        ``"euclidean"``, which has no path).

    Returns
    -------
    alignment : Alignment
        ``alignment.path()`` is ``(K, 2)`` (aeon's rule, module docstring);
        ``alignment.cost`` is :func:`distance`'s value; ``shape`` is ``(n, m)``, or
        ``(n - 2, m - 2)`` for ddtw / wddtw (the derivatives).  ``extras["metric"]``
        names the metric.

    Raises
    ------
    ValueError
        As :func:`distance`; ``"euclidean"``; lcss with no pair of frames within
        ``epsilon`` (an empty path).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> a = mmalign.distance_path(np.array([0., 1., 2.]), np.array([0., 2.]), "erp")
    >>> a.path().tolist(), a.cost
    ([[0, 0], [1, 0], [2, 1]], 1.0)
    """
    metric, own, win = _check_params(metric, params)
    if metric == "euclidean":
        raise ValueError("metric='euclidean' has no alignment path; metrics with one: "
                         + ", ".join(PATH_METRICS))
    if metric == "dtw":
        from .dtw import dtw_path

        return dtw_path(x, y, **win)
    x, y = _pair(x, y)
    value, path, shape = _solve(metric, x, y, own, win, want_path=True)
    if len(path) == 0:
        raise ValueError(f"lcss matched no pair of frames within epsilon={own['epsilon']}: "
                         "the path is empty; raise epsilon")
    return Alignment(path, cost=value, shape=shape, monotonic=True, extras={"metric": metric})


def cdist(X, Y=None, *, metric: str = "dtw", n_jobs: int = -1, backend: str = "local",
          progress: bool = False, **params: Any) -> np.ndarray:
    """Elastic distances between every sequence of ``X`` and every sequence of ``Y``.

    Parameters
    ----------
    X : np.ndarray [shape=(N, n) or (N, n, d)] or list of (n_k,) / (n_k, d) arrays
        A collection of sequences; a list may mix lengths.
    Y : same as X, or None
        With ``None``, distances within ``X``: each pair computed once (``a < b``),
        the diagonal 0.
    metric : str
        One of :data:`METRICS`.
    n_jobs : int
        Threads (numba ``prange`` over the pairs); ``-1`` for all cores.
    backend : {"local", "dask"}
        ``"dask"`` is implemented for ``metric="dtw"`` only (through
        :func:`mmalign.cdist_dtw`, with its ``client`` / ``scheduler`` /
        ``block_size`` options); other metrics raise NotImplementedError.
    progress : bool
        Show a tqdm bar over the blocks of pairs (needs tqdm); metrics other than
        ``"dtw"`` (``cdist_dtw`` has no bar).
    **params
        As in :func:`distance` (``window`` resolved per pair from its lengths;
        ``mask`` needs one common length).

    Returns
    -------
    distances : np.ndarray [shape=(len(X), len(Y))]
        ``distances[a, b] == distance(X[a], Y[b], metric, **params)``.

    Notes
    -----
    The pairs run in parallel in one numba kernel over the concatenated sequences
    (two rows of the dynamic programme per pair).  With ``itakura_slope`` or
    ``mask`` the pairs run one by one through :func:`distance`.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> X = [np.array([0., 1., 2.]), np.array([0., 2.]), np.array([1., 1., 1., 1.])]
    >>> mmalign.cdist(X, metric="msm").round(2)
    array([[0., 2., 3.],
           [2., 0., 4.],
           [3., 4., 0.]])
    """
    metric, own, win = _check_params(metric, params, cdist_only=("client", "scheduler",
                                                                  "block_size", "device"))
    check_choice(backend, "backend", ("local", "dask"))
    progress = check_bool(progress, "progress")
    from .cdist import _resolve_jobs, as_collection, pair_indices

    if metric == "dtw":
        from .cdist import cdist_dtw

        return cdist_dtw(X, Y, n_jobs=n_jobs, backend=backend, **win, **own)
    for name in ("client", "scheduler", "block_size", "device"):
        if name in own:
            raise ValueError(f"{name} is a cdist_dtw option (metric='dtw' only)")
    if backend == "dask":
        raise NotImplementedError(
            f"backend='dask' runs metric='dtw' only (mmalign.cdist_dtw's tiles); "
            f"metric={metric!r} runs with backend='local'")
    n_jobs = _resolve_jobs(n_jobs)
    xs = as_collection(X, "X")
    symmetric = Y is None
    ys = xs if symmetric else as_collection(Y, "Y")
    if xs[0].shape[1] != ys[0].shape[1]:
        raise ValueError(f"X and Y have different numbers of features: {xs[0].shape[1]} "
                         f"and {ys[0].shape[1]}")
    ia, ib = pair_indices(len(xs), len(ys), symmetric)
    out = np.zeros((len(xs), len(ys)))
    values = _pair_values(metric, xs, ys, ia, ib, own, win, n_jobs, progress)
    out[ia, ib] = values
    if symmetric:
        out[ib, ia] = values
    return out


# --------------------------------------------------------------------------- internals


def _check_params(metric, params: dict, cdist_only: tuple = ()):
    """The metric, its own parameters (defaults filled in, validated) and the window options."""
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if "itakura_max_slope" in params:
        raise ValueError("itakura_max_slope is aeon's (a fraction of the length); mmalign "
                         "takes itakura_slope (tslearn's maximum slope) or a boolean mask")
    win = {k: params[k] for k in WINDOW_OPTIONS if k in params}
    own = dict(PARAMETERS[metric])
    extra = {}
    for k, v in params.items():
        if k in WINDOW_OPTIONS:
            continue
        if k in own:
            own[k] = v
        elif k in cdist_only:
            extra[k] = v
        else:
            allowed = sorted(own) + (list(WINDOW_OPTIONS) if metric != "euclidean" else [])
            raise ValueError(f"{k!r} is not a parameter of metric={metric!r}; it takes "
                             f"{', '.join(allowed) or 'none'}")
    if metric == "euclidean" and any(v is not None for v in win.values()):
        raise ValueError("metric='euclidean' takes no window (radius, window, itakura_slope, "
                         "mask)")
    if "g" in own and metric in ("wdtw", "wddtw"):
        own["g"] = check_float(own["g"], "g", -np.inf, np.inf)
    if metric == "adtw":
        own["warp_penalty"] = check_float(own["warp_penalty"], "warp_penalty", 0.0)
    if metric == "lcss":
        own["epsilon"] = check_float(own["epsilon"], "epsilon", 0.0)
    if metric == "edr" and own["epsilon"] is not None:
        own["epsilon"] = check_float(own["epsilon"], "epsilon", 0.0)
    if metric == "erp":
        own["g"] = check_float(own["g"], "g", -np.inf, np.inf)
        if own["g_arr"] is not None:
            g_arr = np.asarray(own["g_arr"], dtype=float)
            if g_arr.ndim != 1 or not np.isfinite(g_arr).all():
                raise ValueError("g_arr must be a 1-d array of finite values, one per feature")
            own["g_arr"] = g_arr
    if metric == "msm":
        own["c"] = check_float(own["c"], "c", 0.0)
        own["independent"] = check_bool(own["independent"], "independent")
    if metric == "twe":
        own["nu"] = check_float(own["nu"], "nu", 0.0)
        own["lmbda"] = check_float(own["lmbda"], "lmbda", 0.0)
    if metric == "shape_dtw":
        own["reach"] = check_int(own["reach"], "reach", 1)
        check_choice(own["descriptor"], "descriptor", ("identity",))
    own.update(extra)
    return metric, own, win


def _pair(x, y):
    x = as_sequence(x, "x")
    y = as_sequence(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y have different numbers of features: {x.shape[1]} and "
                         f"{y.shape[1]}")
    return x, y


def _euclidean(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) != len(y):
        raise ValueError(f"metric='euclidean' needs x and y of one length, got {len(x)} and "
                         f"{len(y)} (aeon truncates to the shorter; an elastic metric aligns "
                         "them)")
    return float(np.sqrt(((x - y) ** 2).sum()))


def derivative(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Keogh & Pazzani's slope derivative (aeon's), ``(n - 2, d)``; n >= 3."""
    if len(x) < 3:
        raise ValueError(f"{name} has {len(x)} frames; ddtw and wddtw need at least 3 "
                         "(the derivative drops the first and last)")
    return ((x[1:-1] - x[:-2]) + (x[2:] - x[:-2]) / 2.0) / 2.0


def descriptors(x: np.ndarray, reach: int) -> np.ndarray:
    """shape_dtw's identity descriptors ``(n, d (2 reach + 1))``: each frame's
    neighbourhood, edges repeated, channel-major (aeon's layout)."""
    n, d = x.shape
    padded = np.concatenate([np.repeat(x[:1], reach, 0), x, np.repeat(x[-1:], reach, 0)])
    width = 2 * reach + 1
    idx = np.arange(n)[:, None] + np.arange(width)[None, :]  # (n, width)
    windows = padded[idx]  # (n, width, d)
    return np.ascontiguousarray(windows.transpose(0, 2, 1).reshape(n, d * width))


def _transformed(metric: str, x: np.ndarray, name: str, own: dict) -> np.ndarray:
    if metric in ("ddtw", "wddtw"):
        return np.ascontiguousarray(derivative(x, name))
    if metric == "shape_dtw":
        return descriptors(x, own["reach"])
    return x


def _g_vector(own: dict, d: int) -> np.ndarray:
    if own.get("g_arr") is not None:
        if len(own["g_arr"]) != d:
            raise ValueError(f"g_arr has {len(own['g_arr'])} values; the sequences have {d} "
                             "features")
        return np.ascontiguousarray(own["g_arr"])
    return np.full(d, float(own.get("g", 0.0)))


def _solve(metric: str, x: np.ndarray, y: np.ndarray, own: dict, win: dict, want_path: bool):
    """(value, path or None, shape) of one pair through the kernels."""
    tx = _transformed(metric, x, "x", own)
    ty = _transformed(metric, y, "y", own)
    n, m = len(tx), len(ty)
    w = resolve_window(n, m, **win)
    if w.is_band:
        lo, hi, mask, use_mask = w.lo, w.hi, np.zeros((1, 1), bool), False
    else:
        lo, hi = np.zeros(n, np.int64), np.full(n, m, np.int64)
        mask, use_mask = np.ascontiguousarray(w.mask), True
    if not use_mask and not w.feasible:
        raise ValueError("the window admits no warping path between x and y; widen it")
    store = np.empty((n, m)) if (want_path or metric == "shape_dtw") else np.empty((0, 0))
    args = (tx, ty, lo, hi, mask, use_mask)
    if metric in ("ddtw", "wdtw", "wddtw", "adtw", "shape_dtw"):
        if metric in ("wdtw", "wddtw"):
            weights = EK.logistic_weights(max(n, m), own["g"])
        else:
            weights = np.ones(max(n, m))
        penalty = own["warp_penalty"] if metric == "adtw" else 0.0
        raw = EK.dtwlike(*args, weights, penalty, store)
        value = EK.shape_trace(x, y, store) if metric == "shape_dtw" else raw
    elif metric == "lcss":
        raw = EK.lcss(*args, own["epsilon"], store)
        value = max(0.0, 1.0 - raw / min(n, m))
    elif metric == "edr":
        eps = own["epsilon"]
        if eps is None:
            eps = max(float(np.std(x)), float(np.std(y))) / 4.0
        allowed = w.to_mask() if not w.is_band else None
        if allowed is None:
            first_row, first_col = EK.edr_boundary(lo, hi, n, m)
        else:
            first_row = np.where(allowed[0] & (np.arange(m) < m - 1), 0.0, np.inf)
            first_col = np.where(allowed[:, 0], 0.0, np.inf)
        raw = EK.edr(*args, eps, first_row, first_col, store)
        value = raw / max(n, m)
    elif metric == "erp":
        value = raw = EK.erp(*args, _g_vector(own, x.shape[1]), store)
    elif metric == "msm":
        value = raw = EK.msm(*args, own["c"], own["independent"], store)
    else:  # twe
        value = raw = EK.twe(*args, own["nu"], own["lmbda"], store)
    if not math.isfinite(value):
        if math.isinf(raw) and metric not in ("lcss",):
            raise ValueError("the window admits no path between x and y; widen it")
        raise ValueError(f"the {metric} distance is beyond float64; rescale x and y")
    path = None
    if want_path:
        if metric == "lcss":
            path = EK.lcss_path(tx, ty, own["epsilon"], lo, hi, mask, use_mask, store)
        else:
            path = EK.min_return_path(store)
    return float(value), path, (n, m)


_CODES = {"ddtw": EK.DTWLIKE, "wdtw": EK.DTWLIKE, "wddtw": EK.DTWLIKE, "adtw": EK.DTWLIKE,
          "lcss": EK.LCSS, "edr": EK.EDR, "erp": EK.ERP, "twe": EK.TWE,
          "shape_dtw": EK.SHAPE}


def _pack(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(seqs) + 1, np.int64)
    off[1:] = np.cumsum([len(s) for s in seqs])
    return np.ascontiguousarray(np.concatenate(seqs)), off


def _pair_values(metric, xs, ys, ia, ib, own, win, n_jobs, progress) -> np.ndarray:
    from ._threads import numba_threads

    if metric == "euclidean":
        lengths = {len(s) for s in xs} | {len(s) for s in ys}
        if len(lengths) > 1:
            a, b = next((a, b) for a, b in zip(ia, ib) if len(xs[a]) != len(ys[b]))
            _euclidean(xs[a], ys[b])  # the ValueError naming the lengths
        from scipy.spatial.distance import cdist as scipy_cdist

        fx = np.stack([s.ravel() for s in xs])
        fy = fx if ys is xs else np.stack([s.ravel() for s in ys])
        return np.sqrt(scipy_cdist(fx, fy, "sqeuclidean")[ia, ib])
    slow = win.get("itakura_slope") is not None or win.get("mask") is not None
    if slow:
        return np.array([_solve(metric, xs[a], ys[b], own, win, False)[0]
                         for a, b in _progress(list(zip(ia, ib)), progress)])
    tx = [_transformed(metric, s, f"X[{k}]", own) for k, s in enumerate(xs)]
    ty = tx if ys is xs else [_transformed(metric, s, f"Y[{k}]", own) for k, s in enumerate(ys)]
    radius = win.get("radius")
    frac = win.get("window")
    if radius is not None and frac is not None:
        raise ValueError("give either radius (in samples) or window (a fraction), not both")
    r = -1 if radius is None else min(check_int(radius, "radius", 0), 2**62)
    f = -1.0 if frac is None else check_float(frac, "window", 0.0, 1.0)
    code = _CODES.get(metric, EK.MSM_IND if own.get("independent", True) else EK.MSM_DEP)
    p0, p1, flag = 0.0, 0.0, 0
    if metric in ("wdtw", "wddtw"):
        p0, flag = own["g"], 1
    elif metric == "adtw":
        p1 = own["warp_penalty"]
    elif metric in ("lcss", "edr"):
        p0 = -1.0 if own["epsilon"] is None else own["epsilon"]
    elif metric == "msm":
        p0 = own["c"]
    elif metric == "twe":
        p0, p1 = own["nu"], own["lmbda"]
    elif metric == "shape_dtw":
        p0 = float(own["reach"])
    d = xs[0].shape[1]
    g = _g_vector(own, d) if metric == "erp" else np.zeros(d)
    std_x = np.array([np.std(s) for s in xs])
    std_y = std_x if ys is xs else np.array([np.std(s) for s in ys])
    data_x, off_x = _pack(tx)
    data_y, off_y = (data_x, off_x) if ty is tx else _pack(ty)
    ia = np.ascontiguousarray(ia, np.int64)
    ib = np.ascontiguousarray(ib, np.int64)
    values = np.empty(len(ia))
    len_x = np.array([len(s) for s in tx], np.int64)
    len_y = len_x if ty is tx else np.array([len(s) for s in ty], np.int64)
    # pairs of one shape run LANES at a time (SIMD lanes); the rest pair by pair
    shapes = len_x[ia] * (int(len_y.max()) + 1) + len_y[ib]
    groups = []
    single = []
    for key in np.unique(shapes):
        members = np.flatnonzero(shapes == key)
        if len(members) >= MIN_LANE_GROUP and code != EK.MSM_DEP:
            groups.append(members)
        else:
            single.append(members)
    work = [("lanes", g_) for g_ in groups]
    if single:
        work.append(("pairs", np.concatenate(single)))
    if progress:  # finer pieces for the bar
        work = [(kind, piece) for kind, members in work
                for piece in np.array_split(members, max(1, len(members) // (8 * EL.LANES)))]
    with numba_threads(n_jobs):
        for kind, members in _progress(work, progress):
            if kind == "pairs":
                values[members] = EK.pairwise(code, data_x, off_x, data_y, off_y, ia[members],
                                              ib[members], r, f, p0, p1, flag, std_x, std_y, g)
                continue
            n, m = int(len_x[ia[members[0]]]), int(len_y[ib[members[0]]])
            rr = int(math.floor(f * max(n, m) + 0.5)) if f >= 0 else r
            if rr >= max(n, m):
                rr = -1
            values[members] = EL.pairwise_lanes(code, data_x, off_x, data_y, off_y,
                                                ia[members], ib[members], n, m, rr, p0, p1,
                                                flag, std_x, std_y, g)
    if metric == "lcss":
        lx = np.array([len(s) for s in tx])[ia]
        ly = np.array([len(s) for s in ty])[ib]
        values = np.maximum(0.0, 1.0 - values / np.minimum(lx, ly))
    elif metric == "edr":
        lx = np.array([len(s) for s in tx])[ia]
        ly = np.array([len(s) for s in ty])[ib]
        values = values / np.maximum(lx, ly)
    if not np.isfinite(values).all():
        raise ValueError(f"the window admits no path for some pairs, or a {metric} distance "
                         "is beyond float64")
    return values


def _progress(items, progress: bool):
    if not progress:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of several peers
        raise ValueError("progress=True needs tqdm (pip install tqdm)") from None
    return tqdm(items)
