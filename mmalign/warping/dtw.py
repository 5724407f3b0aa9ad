"""Dynamic time warping: distance, path and the functions that share their options.

Conventions (state them when comparing with other libraries):

* Sequences are ``(n,)`` or ``(n, d)``, time first.
* The local cost is the squared Euclidean distance by default and ``dtw``
  returns the **square root of the accumulated squared cost**, the value tslearn,
  dtaidistance and the UCR archive report.  With any other metric the
  accumulated cost itself is returned (no square root).
* ``metric="cosine"`` uses ``1 - cos(x_i, y_j)``; all-zero frames are an error.
* Windows: see :mod:`mmalign.warping.windows` (Sakoe–Chiba radius in samples,
  UCR window fraction, Itakura slope, any boolean mask).
* Step patterns (as in dtw-python / Sakoe & Chiba 1978):
  ``symmetric1`` ``D = c + min(D[i-1,j-1], D[i-1,j], D[i,j-1])`` (the default);
  ``symmetric2`` weights the diagonal step by 2;
  ``asymmetric`` ``D = c + min(D[i-1,j], D[i-1,j-1], D[i-1,j-2])``, every step
  advances ``x`` by one, so each frame of ``x`` is matched exactly once.
* ``open_begin`` / ``open_end``: the path may start at any ``(0, j)`` / end at
  any ``(n-1, j)``; all of ``x`` is matched, a part of ``y``.
* Range: any finite float64 values.  A pair whose largest magnitude lies outside
  ``[2**-400, 2**400]`` is solved multiplied by a power of two (exact) and the
  distance multiplied back (:mod:`mmalign.warping._extremes`), so squared costs
  neither overflow nor underflow; a distance beyond float64 (about 1.8e308) is a
  ``ValueError``, never ``inf``.  A callable metric or a precomputed cost matrix
  is not rescaled: an accumulated cost beyond float64 is a ``ValueError``.
"""

from __future__ import annotations

from typing import Callable, Union

import numpy as np
from scipy.spatial.distance import cdist

from ..alignment import Alignment
from ..utils.validation import as_sequence, check_choice, check_same_features
from . import _extremes as ext
from . import _kernels as K
from .windows import Window, resolve_window

Metric = Union[str, Callable[[np.ndarray, np.ndarray], float]]

METRICS = {
    "sqeuclidean": K.METRIC_SQEUCLIDEAN,
    "euclidean": K.METRIC_EUCLIDEAN,
    "cityblock": K.METRIC_CITYBLOCK,
    "cosine": K.METRIC_SQEUCLIDEAN,  # on unit vectors, 1 - cos = |a - b|^2 / 2
}
STEP_PATTERNS = {
    "symmetric1": K.STEP_SYMMETRIC1,
    "symmetric2": K.STEP_SYMMETRIC2,
    "asymmetric": K.STEP_ASYMMETRIC,
}
# exact paths keep one byte per window cell; beyond this, use method="multiscale"
MAX_PATH_CELLS = 2_000_000_000


def dtw(x, y, *, radius: int | None = None, window: float | None = None,
        itakura_slope: float | None = None, mask=None, metric: Metric = "sqeuclidean",
        step_pattern: str = "symmetric1", open_begin: bool = False,
        open_end: bool = False) -> float:
    """DTW distance between two sequences.

    Parameters
    ----------
    x : np.ndarray [shape=(n,) or (n, d)]
        First sequence, time first.  int or float, any finite values.
    y : np.ndarray [shape=(m,) or (m, d)]
        Second sequence, same number of features ``d``.
    radius : int >= 0 or None
        Sakoe–Chiba radius in samples (``|i - j| <= radius``, widened by the
        length difference).
    window : float in [0, 1] or None
        Sakoe–Chiba radius as a fraction of the length, ``round(window * max(n, m))``
        as the UCR archive does.  Give ``radius`` or ``window``, not both.
    itakura_slope : float >= 1 or None
        Maximum slope of the Itakura parallelogram.
    mask : np.ndarray [shape=(n, m), dtype=bool] or None
        Cells a path may visit.
    metric : str or callable
        ``"sqeuclidean"`` (default), ``"euclidean"``, ``"cityblock"``, ``"cosine"``
        or ``f(x_i, y_j) -> float`` on two frames.
    step_pattern : {"symmetric1", "symmetric2", "asymmetric"}
    open_begin, open_end : bool
        Let the path start / end anywhere along ``y``.

    Returns
    -------
    distance : float
        ``sqrt`` of the accumulated cost for ``"sqeuclidean"``, the accumulated
        cost otherwise; ``inf`` when the window (or the asymmetric step
        pattern) admits no path.

    Raises
    ------
    ValueError
        Bad input, or a distance beyond float64 (about 1.8e308).

    Notes
    -----
    Any finite float64 values work: a pair whose largest magnitude is outside
    ``[2**-400, 2**400]`` (about 3.9e-121 to 2.6e120) is solved multiplied by a
    power of two, exactly, and the distance multiplied back, so ``1e200`` or
    ``1e-300`` give the right distance, not ``inf`` or 0.  A callable metric is
    not rescaled: its accumulated cost beyond float64 is a ``ValueError``.

    ``x`` and ``y`` may be torch tensors.  When both are on one CUDA device, the
    default step pattern without ``itakura_slope`` / ``mask`` / open ends runs
    there (the torch anti-diagonal wavefront, float64, the same value as on the
    CPU); other tensors, and other options, run on the CPU kernels.  For many
    pairs at once see ``mmalign.warping.batch_dtw``.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> x = np.array([0., 1., 2., 3.])
    >>> y = np.array([0., 0., 1., 2., 2., 3.])
    >>> mmalign.dtw(x, y)
    0.0
    >>> float(mmalign.dtw(x, x + 1))
    1.4142135623730951
    """
    acc, _, _ = _solve(x, y, radius=radius, window=window, itakura_slope=itakura_slope,
                       mask=mask, metric=metric, step_pattern=step_pattern,
                       open_begin=open_begin, open_end=open_end, want_path=False)
    return acc


def dtw_path(x, y, *, radius: int | None = None, window: float | None = None,
             itakura_slope: float | None = None, mask=None, metric: Metric = "sqeuclidean",
             step_pattern: str = "symmetric1", open_begin: bool = False,
             open_end: bool = False, method: str = "exact",
             multiscale_radius: int = 16) -> Alignment:
    """Optimal warping path and distance.

    Parameters
    ----------
    x, y, radius, window, itakura_slope, mask, metric, step_pattern, open_begin, open_end
        As in :func:`dtw`.
    method : {"exact", "multiscale"}
        ``"exact"`` stores one byte per window cell (``n * m`` bytes without a
        window).  ``"multiscale"`` solves a coarsened problem and refines the path
        in a band of ``multiscale_radius`` frames around it, level by level:
        memory and time linear in ``n + m``, for sequences of 100,000+ frames.
    multiscale_radius : int >= 1
        Half-width of the refinement band, in frames of each level.

    Returns
    -------
    alignment : Alignment
        ``alignment.path()`` is ``(K, 2)``, monotone and continuous from ``(0, 0)``
        to ``(n - 1, m - 1)`` (open ends excepted); ``alignment.cost`` is the value
        :func:`dtw` returns.

    Raises
    ------
    ValueError
        Bad input, a window (or asymmetric step pattern) that admits no path,
        or a distance beyond float64.

    Notes
    -----
    With ``x`` and ``y`` torch tensors on one CUDA device (and options :func:`dtw`
    runs there), ``method="exact"`` accumulates costs and direction codes on the
    device (``(n + 2) x (m + 2)`` float64 plus ``n x m`` bytes, whatever the
    window) and backtracks on the CPU: the same path as the CPU kernel, ties
    broken towards the diagonal step, then ``(i - 1, j)``, then ``(i, j - 1)``.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> a = mmalign.dtw_path(np.array([0., 1., 2.]), np.array([0., 1., 1., 2.]))
    >>> a.path().tolist()
    [[0, 0], [1, 1], [1, 2], [2, 3]]
    >>> a.cost
    0.0
    """
    check_choice(method, "method", {"exact", "multiscale"})
    options = dict(radius=radius, window=window, itakura_slope=itakura_slope, mask=mask,
                   metric=metric, step_pattern=step_pattern, open_begin=open_begin,
                   open_end=open_end)
    if method == "multiscale":
        from .multiscale import multiscale_dtw_path

        return multiscale_dtw_path(x, y, multiscale_radius=multiscale_radius, **options)
    value, path, shape = _solve(x, y, want_path=True, **options)
    if path is None:
        raise ValueError(no_path_message("between x and y", _constrained(options),
                                         step_pattern))
    return Alignment(path, cost=value, shape=shape, monotonic=True,
                     extras={"metric": metric if isinstance(metric, str) else "callable",
                             "step_pattern": step_pattern})


def dtw_from_cost(cost, *, radius: int | None = None, window: float | None = None,
                  itakura_slope: float | None = None, mask=None,
                  step_pattern: str = "symmetric1", open_begin: bool = False,
                  open_end: bool = False) -> float:
    """Accumulated DTW cost over a precomputed local cost matrix.

    Parameters
    ----------
    cost : np.ndarray [shape=(n, m)]
        Local costs; ``+inf`` marks forbidden cells, NaN and ``-inf`` are errors.
    radius, window, itakura_slope, mask, step_pattern, open_begin, open_end
        As in :func:`dtw`.

    Returns
    -------
    accumulated : float
        The minimal accumulated cost (no square root is taken); ``inf`` when the
        window and the ``+inf`` cells admit no path.

    Raises
    ------
    ValueError
        Bad input, or a minimal accumulated cost beyond float64 (about 1.8e308).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> mmalign.dtw_from_cost(np.array([[0., 5.], [5., 0.]]))
    0.0
    """
    return _solve_cost(cost, radius=radius, window=window, itakura_slope=itakura_slope,
                       mask=mask, step_pattern=step_pattern, open_begin=open_begin,
                       open_end=open_end, want_path=False)[0]


def dtw_path_from_cost(cost, *, radius: int | None = None, window: float | None = None,
                       itakura_slope: float | None = None, mask=None,
                       step_pattern: str = "symmetric1", open_begin: bool = False,
                       open_end: bool = False) -> Alignment:
    """Optimal path over a precomputed local cost matrix (see :func:`dtw_from_cost`).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> mmalign.dtw_path_from_cost(np.array([[0., 5.], [5., 0.]])).path().tolist()
    [[0, 0], [1, 1]]
    """
    value, path, shape = _solve_cost(cost, radius=radius, window=window,
                                     itakura_slope=itakura_slope, mask=mask,
                                     step_pattern=step_pattern, open_begin=open_begin,
                                     open_end=open_end, want_path=True)
    if path is None:
        constrained = _constrained(dict(radius=radius, window=window,
                                        itakura_slope=itakura_slope, mask=mask))
        blocked = bool(np.isinf(_check_cost(cost)).any())
        raise ValueError(no_path_message("through cost", constrained, step_pattern, blocked))
    return Alignment(path, cost=value, shape=shape, monotonic=True,
                     extras={"metric": "precomputed", "step_pattern": step_pattern})


# --------------------------------------------------------------------------- internals


def prepare_pair(x, y, metric: Metric, names: tuple[str, str] = ("x", "y")):
    """Validated float64 ``(n, d)`` copies of x and y, ready for ``metric``."""
    x = as_sequence(x, names[0])
    y = as_sequence(y, names[1])
    check_same_features(x, y, *names)
    if not callable(metric):
        check_choice(metric, "metric", METRICS)
        if metric == "cosine":
            x = unit_rows(x, names[0])
            y = unit_rows(y, names[1])
    return x, y


def unit_rows(x: np.ndarray, name: str) -> np.ndarray:
    """Rows scaled to unit norm; rows beyond the safe range are first brought into it by a
    power of two (the norm's squares would overflow or underflow)."""
    peaks = np.abs(x).max(axis=1)
    if (peaks == 0).any():
        raise ValueError(f"{name} has all-zero frames, where the cosine distance is undefined")
    e = ext.exponents(peaks)
    if e.any():
        first, second = ext.factors(e)
        x = x * first[:, None] * second[:, None]
    norms = np.linalg.norm(x, axis=1)
    return x / norms[:, None]


def finalize(accumulated: float, metric: Metric) -> float:
    """The reported distance from the raw accumulated cost."""
    if metric == "sqeuclidean":
        return float(np.sqrt(accumulated))
    if metric == "cosine":
        return float(0.5 * accumulated)
    return float(accumulated)


def _solve(x, y, *, radius, window, itakura_slope, mask, metric, step_pattern, open_begin,
           open_end, want_path):
    if _on_one_cuda_device(x, y):
        from .batch import solve_on_device

        solved = solve_on_device(x, y, radius=radius, window=window,
                                 itakura_slope=itakura_slope, mask=mask, metric=metric,
                                 step_pattern=step_pattern, open_begin=open_begin,
                                 open_end=open_end, want_path=want_path)
        if solved is not None:
            return solved
    x, y = prepare_pair(x, y, metric)
    check_choice(step_pattern, "step_pattern", STEP_PATTERNS)
    n, m = len(x), len(y)
    win = resolve_window(n, m, radius=radius, window=window, itakura_slope=itakura_slope,
                         mask=mask)
    if callable(metric):
        C = callable_costs(x, y, metric)
        acc, path = accumulate_costs(C, win, step_pattern, open_begin, open_end, want_path,
                                     "the accumulated cost of the metric's costs")
        return acc, path, (n, m)
    e = ext.exponent(max(ext.peak(x), ext.peak(y)))
    x, y = ext.scale(x, e), ext.scale(y, e)
    if (win.is_band and not open_begin and not open_end
            and step_pattern in ("symmetric1", "symmetric2")):
        if not win.feasible:
            return np.inf, None, (n, m)
        acc, path = diagonal_solve(x, y, win, METRICS[metric], want_path,
                                   step=STEP_PATTERNS[step_pattern])
    else:
        C = K.cost_matrix(x, y, METRICS[metric])
        acc, path = general_solve(C, win, step_pattern, open_begin, open_end, want_path)
    return ext.unscale(finalize(acc, metric), e, "the DTW distance"), path, (n, m)


def callable_costs(x: np.ndarray, y: np.ndarray, metric) -> np.ndarray:
    """The ``(n, m)`` local costs of a callable metric, checked finite and non-negative."""
    C = cdist(x, y, metric=metric)
    if not np.isfinite(C).all() or (C < 0).any():
        raise ValueError("metric returned a negative, NaN or infinite cost")
    return C


def accumulate_costs(C: np.ndarray, win: Window, step_pattern: str, open_begin: bool,
                     open_end: bool, want_path: bool, what: str):
    """:func:`general_solve` over costs that are not rescaled (precomputed, callable metric).

    An accumulated cost that float64 holds is computed exactly as it is, whatever
    the size of the costs.  When the result is ``inf`` and the finite costs are
    large enough to overflow a path's sum, the costs are solved again divided by a
    power of two: a finite result there means the true minimum is beyond float64,
    a ``ValueError`` naming ``what``; ``inf`` again means no path.
    """
    acc, path = general_solve(C, win, step_pattern, open_begin, open_end, want_path)
    if acc != np.inf:
        return acc, path
    finite = np.isfinite(C)
    largest = float(C.max(where=finite, initial=0.0))
    if largest == 0 or not ext.accumulated_overflows(np.log2(largest), C.shape[0] + C.shape[1]):
        return acc, path
    e = int(np.frexp(largest)[1])
    scaled, _ = general_solve(ext.scale(C, e), win, step_pattern, open_begin, open_end, False)
    if scaled != np.inf:
        raise ext.too_large(what, np.log10(scaled) + e * np.log10(2.0))
    return acc, path


def _constrained(options: dict) -> bool:
    """Whether a window constraint was given (radius, window, Itakura slope or mask)."""
    return any(options.get(k) is not None for k in ("radius", "window", "itakura_slope", "mask"))


def no_path_message(between: str, constrained: bool, step_pattern: str,
                    blocked: bool = False) -> str:
    """Why no warping path exists, naming only the constraints that were given."""
    causes = ["the window"] if constrained else []
    if blocked:
        causes.append("the +inf cells of cost")
    if step_pattern == "asymmetric":
        causes.append("step_pattern='asymmetric' (each step advances x by one frame and y "
                      "by at most two)")
    verb = "admits" if len(causes) == 1 else "admit"
    message = f"{' and '.join(causes) or 'the options'} {verb} no warping path {between}"
    return message + ("; widen it" if causes == ["the window"] else "")


def _on_one_cuda_device(x, y) -> bool:
    """Both torch tensors on the same CUDA device: run there (the torch wavefront)."""
    return (getattr(getattr(x, "device", None), "type", None) == "cuda"
            and hasattr(x, "detach") and hasattr(y, "detach") and x.device == y.device)


def _solve_cost(cost, *, radius, window, itakura_slope, mask, step_pattern, open_begin,
                open_end, want_path):
    C = _check_cost(cost)
    check_choice(step_pattern, "step_pattern", STEP_PATTERNS)
    n, m = C.shape
    win = resolve_window(n, m, radius=radius, window=window, itakura_slope=itakura_slope,
                         mask=mask)
    acc, path = accumulate_costs(C, win, step_pattern, open_begin, open_end, want_path,
                                 "the minimal accumulated cost")
    return float(acc), path, (n, m)


def _check_cost(cost) -> np.ndarray:
    if hasattr(cost, "detach"):
        cost = cost.detach().cpu().numpy()
    try:
        C = np.asarray(cost)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise ValueError(f"cost cannot be read as an (n, m) matrix of numbers: {err}") from None
    if C.dtype == np.bool_ or not (np.issubdtype(C.dtype, np.floating)
                                   or np.issubdtype(C.dtype, np.integer)):
        raise ValueError(f"cost must hold real numbers, got dtype {C.dtype}")
    if C.ndim != 2:
        raise ValueError(f"cost must be a 2-d (n, m) matrix, got shape {C.shape}")
    if C.size == 0:
        raise ValueError(f"cost is empty: shape {C.shape}")
    C = np.array(C, dtype=np.float64)  # a copy: the window is written into it
    if np.isnan(C).any() or (C == -np.inf).any():
        raise ValueError("cost contains NaN or -inf (use +inf for forbidden cells)")
    return C


def diagonal_solve(x: np.ndarray, y: np.ndarray, win: Window, metric_code: int,
                   want_path: bool, threshold: float = np.inf,
                   step: int = K.STEP_SYMMETRIC1):
    """Raw accumulated cost (and path) with the anti-diagonal kernel over a band."""
    xt = np.ascontiguousarray(x.T)
    yrt = np.ascontiguousarray(y[::-1].T)
    if want_path:
        cells = int((win.hi - win.lo).sum())
        if cells > MAX_PATH_CELLS:
            raise ValueError(
                f"an exact path over {cells} cells needs {cells / 1e9:.1f} GB; "
                "pass method='multiscale' or a window"
            )
    acc, dirs, a, offsets = K.diagonal_dtw(xt, yrt, win.lo, win.hi, metric_code, want_path,
                                           threshold, step)
    path = None
    if want_path and np.isfinite(acc):
        path = K.backtrack_diagonal(dirs, a, offsets, len(x), len(y))
    return float(acc), path


def open_end_column(last_row: np.ndarray, step_pattern: str, n: int) -> int:
    """Where an open-ended path stops: symmetric2 compares costs normalised by the
    path's length ``n + j + 1``, as dtw-python does; the other patterns raw costs."""
    if step_pattern == "symmetric2":
        return int(np.argmin(last_row / (n + np.arange(1, len(last_row) + 1))))
    return int(np.argmin(last_row))


def general_solve(C: np.ndarray, win: Window, step_pattern: str, open_begin: bool,
                  open_end: bool, want_path: bool):
    """Raw accumulated cost (and path) over a cost matrix with any window and steps."""
    allowed = win.to_mask()
    C = np.where(allowed, C, np.inf)
    D, dirs = K.general_accumulate(C, STEP_PATTERNS[step_pattern], open_begin)
    n, m = C.shape
    end = open_end_column(D[-1], step_pattern, n) if open_end else m - 1
    acc = float(D[-1, end])
    path = None
    if want_path and np.isfinite(acc):
        path = K.backtrack_general(dirs, n - 1, end, open_begin)
    return acc, path
