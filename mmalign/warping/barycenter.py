"""Averages of sequences under DTW: DBA and the soft-DTW barycenter.

Both look for one sequence ``z`` of shape ``(L, d)`` that is close to every
sequence of a collection ``X = [X_1, ..., X_N]`` (lengths ``n_k`` may differ)
under (soft-)DTW, where the Euclidean mean would blur features that happen at
different times in different series.

- :func:`dba` (Petitjean, Ketterlin & Gançarski 2011) minimises
  ``sum_k w_k dtw(z, X_k) ** 2`` (the accumulated squared-Euclidean cost) by
  alternating two exact steps: align every series to ``z``, then replace each
  frame of ``z`` by the (weighted) mean of the frames aligned to it.  The cost
  never increases.
- :func:`soft_dtw_barycenter` (Cuturi & Blondel 2017) minimises the smooth
  ``sum_k w_k soft_dtw(z, X_k, gamma)`` with L-BFGS-B and the analytic gradient
  ``2 sum_k w_k (E_k 1 * z - E_k X_k)``, ``E_k`` the expected alignment.

Conventions: sequences are ``(n_timesteps, n_features)``; a 2-d array
``(N, n)`` is ``N`` univariate series, as in :func:`mmalign.cdist_dtw`.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.optimize import minimize

from ..utils.validation import as_sequence, check_int
from . import _extremes as ext
from .cdist import cdist_dtw
from .dtw import dtw_path
from .soft import soft_dtw_alignment

__all__ = ["dba", "soft_dtw_barycenter"]


def dba(X, *, n_iter: int = 30, init=None, radius: int | None = None, tol: float = 1e-5,
        weights=None, random_state=None, return_history: bool = False):
    """DTW barycenter averaging (DBA).

    Parameters
    ----------
    X : list of np.ndarray [shape=(n_k,) or (n_k, d)], or np.ndarray [shape=(N, n) or (N, n, d)]
        The sequences to average; a list may mix lengths, not feature counts.
    n_iter : int >= 0
        Most alignment/update rounds; ``0`` returns the initial barycenter.
    init : None, "medoid", "random" or np.ndarray [shape=(L,) or (L, d)]
        Starting barycenter; its length is the barycenter's length.  ``None`` and
        ``"medoid"``: the series with the least sum of squared DTW distances to
        the others (computed with :func:`mmalign.cdist_dtw`); ``"random"``: one
        series of ``X`` drawn with ``random_state``.
    radius : int >= 0 or None
        Sakoe–Chiba band for every alignment, in samples, widened by the length
        difference (as in :func:`mmalign.dtw`).
    tol : float >= 0
        Stop when the relative decrease of the cost over one round is below ``tol``.
    weights : np.ndarray [shape=(N,)] or None
        Non-negative weight of each series (not all zero); ``None``: all 1.
    random_state : int, np.random.Generator or None
        Only used by ``init="random"``.
    return_history : bool
        Also return the cost of every barycenter visited.

    Returns
    -------
    barycenter : np.ndarray [shape=(L, d)], float64
    history : np.ndarray [shape=(n_rounds + 1,)], only with ``return_history=True``
        ``sum_k w_k dtw(z_t, X_k) ** 2`` (accumulated squared-Euclidean cost, in
        squared units of ``X``) for the initial and every updated barycenter;
        non-increasing, its last entry is the returned barycenter's cost.

    Raises
    ------
    ValueError
        Bad input; with ``return_history=True``, a cost beyond float64 (the costs
        are squared: values beyond about 1e154).

    Notes
    -----
    Values of any finite size work: when the largest magnitude of ``X`` (and
    ``init``) is outside ``[2**-400, 2**400]``, everything is multiplied by a power
    of two (exact), averaged, and the barycenter multiplied back.

    Each round can only lower the cost: the update is the exact minimiser for the
    current alignments, and re-aligning can only find cheaper ones.  An update
    that rounding makes costlier (by ~1e-16 relative, at convergence) is
    discarded.  The result is a local optimum that depends on ``init``.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> X = [np.array([0., 1., 3., 1., 0., 0., 0.]),      # one bump, three timings
    ...      np.array([0., 0., 1., 4., 1., 0., 0.]),
    ...      np.array([0., 0., 0., 1., 5., 1., 0.])]
    >>> z, history = mmalign.dba(X, return_history=True)
    >>> z.ravel()                                   # the Euclidean mean's peak is 2
    array([0., 0., 1., 4., 1., 0., 0.])
    >>> history
    array([2., 2.])
    """
    xs = _as_collection(X)
    w = _check_weights(weights, len(xs))
    n_iter = check_int(n_iter, "n_iter", 0)
    tol = _check_tol(tol)
    radius = None if radius is None else check_int(radius, "radius", 0)
    peaks = [ext.peak(x) for x in xs]
    if init is not None and not isinstance(init, str):
        peaks.append(ext.peak(as_sequence(init, "init")))
    e = ext.exponent(max(peaks))
    if e:  # DBA commutes with a power of two: run it in range, multiply back
        xs = [ext.scale(x, e) for x in xs]
        if init is not None and not isinstance(init, str):
            init = ext.scale(as_sequence(init, "init"), e)
    z, history = _dba(xs, w, n_iter, tol, radius, init, random_state)
    z = ext.scale(z, -e)
    if return_history:
        return z, ext.unscale_many(history, 2 * e, "a DBA cost (accumulated squared costs; "
                                   "return_history=False returns the barycenter alone)")
    return z


def _dba(xs: list[np.ndarray], w: np.ndarray, n_iter: int, tol: float, radius, init,
         random_state) -> tuple[np.ndarray, np.ndarray]:
    """DBA's rounds over validated sequences: the barycenter and the cost history."""
    z = _initial(init, xs, radius, random_state, allow_random=True)

    def align(z):
        L, d = z.shape
        sums = np.zeros((L, d))
        counts = np.zeros(L)
        cost = 0.0
        for x, wk in zip(xs, w):
            alignment = dtw_path(z, x, radius=radius)
            path = alignment.path()
            cost += wk * alignment.cost ** 2
            if wk:
                np.add.at(sums, path[:, 0], wk * x[path[:, 1]])
                counts += wk * np.bincount(path[:, 0], minlength=L)
        # every path visits every frame of z and some weight is positive: counts > 0
        return cost, sums / counts[:, None]

    cost, update = align(z)
    history = [cost]
    for _ in range(n_iter):
        if cost == 0.0:  # already exact: z aligns with every series at no cost
            break
        new_cost, new_update = align(update)
        if new_cost > cost:
            break
        z, cost, update = update, new_cost, new_update
        history.append(cost)
        if (history[-2] - cost) / history[-2] < tol:
            break
    return z, np.asarray(history)


def soft_dtw_barycenter(X, gamma: float = 1.0, *, weights=None, init=None, max_iter: int = 100,
                        tol: float = 1e-5, radius: int | None = None,
                        return_history: bool = False):
    """Soft-DTW barycenter: the sequence minimising the weighted sum of soft-DTW values.

    Parameters
    ----------
    X : list of np.ndarray [shape=(n_k,) or (n_k, d)], or np.ndarray [shape=(N, n) or (N, n, d)]
        The sequences to average; a list may mix lengths, not feature counts.
    gamma : float > 0
        Soft-DTW smoothing; small values approach DTW (and DBA's objective),
        large values give smoother barycenters.
    weights : np.ndarray [shape=(N,)] or None
        Non-negative weight of each series (not all zero); ``None``: all 1.
    init : None or np.ndarray [shape=(L,) or (L, d)]
        Starting point; its length is the barycenter's length.  ``None``: the
        (weighted) Euclidean mean of the series linearly resampled to the length
        of the DTW medoid (the series with the least sum of squared DTW distances
        to the others).
    max_iter : int >= 0
        Most L-BFGS-B iterations; ``0`` returns the initial point.
    tol : float >= 0
        L-BFGS-B's ``ftol`` and ``gtol``: stop when the relative decrease of the
        objective or the largest gradient entry falls below it.
    radius : int >= 0 or None
        Sakoe–Chiba band of every soft-DTW, in samples.
    return_history : bool
        Also return the objective at the start and after every iteration.

    Returns
    -------
    barycenter : np.ndarray [shape=(L, d)], float64
    history : np.ndarray [shape=(n_iterations + 1,)], only with ``return_history=True``
        ``sum_k w_k soft_dtw(z, X_k, gamma)`` (soft accumulated squared cost; may
        be negative), the last entry being the returned barycenter's.

    Raises
    ------
    ValueError
        Bad input, or values too large for soft-DTW (see :func:`mmalign.soft_dtw`).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 40)
    >>> X = [np.exp(-((t - c) / 0.1) ** 2) for c in (0.4, 0.5, 0.6)]
    >>> z, history = mmalign.soft_dtw_barycenter(X, gamma=0.1, return_history=True)
    >>> z.shape, bool(history[-1] < history[0])
    ((40, 1), True)
    >>> round(float(z.max()), 2), round(float(np.mean(X, axis=0).max()), 2)  # peaks: 1 in X
    (0.92, 0.58)
    """
    xs = _as_collection(X)
    w = _check_weights(weights, len(xs))
    gamma = _check_gamma(gamma)
    max_iter = check_int(max_iter, "max_iter", 0)
    tol = _check_tol(tol)
    radius = None if radius is None else check_int(radius, "radius", 0)
    z0 = _initial(init, xs, radius, None, allow_random=False, resampled_mean=w)
    for k, x in enumerate(xs):
        error = ext.soft_range_error(ext.peak(z0), ext.peak(x), len(z0) + len(x) - 1,
                                     x.shape[1], names=("the barycenter", f"X[{k}]"))
        if error is not None:
            raise error
    shape = z0.shape
    last: dict = {}

    def fun(flat):
        value, grad = _soft_objective(flat.reshape(shape), xs, w, gamma, radius)
        last["x"], last["f"] = flat.copy(), value
        return value, grad.ravel()

    history = [fun(z0.ravel())[0]]
    visited = [z0.ravel()]

    def record(xk):
        if not np.array_equal(xk, last["x"]):
            fun(xk)
        history.append(last["f"])
        visited.append(xk.copy())

    z = z0
    if max_iter > 0:
        result = minimize(fun, z0.ravel(), jac=True, method="L-BFGS-B", callback=record,
                          options={"maxiter": max_iter, "ftol": tol, "gtol": tol})
        if not np.array_equal(result.x, visited[-1]):
            record(result.x)
        z = result.x.reshape(shape)
    if return_history:
        return z, np.asarray(history)
    return z


def _soft_objective(z: np.ndarray, xs: list[np.ndarray], w: np.ndarray, gamma: float,
                    radius: int | None) -> tuple[float, np.ndarray]:
    """``sum_k w_k soft_dtw(z, X_k)`` and its gradient with respect to ``z`` (L, d)."""
    value = 0.0
    grad = np.zeros_like(z)
    for x, wk in zip(xs, w):
        if not wk:
            continue
        alignment = soft_dtw_alignment(z, x, gamma=gamma, radius=radius)
        E = alignment.matrix()
        value += wk * alignment.cost
        grad += wk * 2.0 * (E.sum(axis=1)[:, None] * z - E @ x)
    return value, grad


def _initial(init, xs: list[np.ndarray], radius, random_state, *, allow_random: bool,
             resampled_mean: np.ndarray | None = None) -> np.ndarray:
    d = xs[0].shape[1]
    if isinstance(init, str):
        choices = ("medoid", "random") if allow_random else ()
        if init not in choices:
            raise ValueError(
                f"init must be None, {' or '.join(repr(c) for c in choices) + ' or ' if choices else ''}"
                f"an array of shape (L,) or (L, d), got {init!r}")
        if init == "random":
            k = int(np.random.default_rng(random_state).integers(len(xs)))
            return xs[k].copy()
        init = None
    if init is not None:
        z = as_sequence(init, "init")
        if z.shape[1] != d:
            raise ValueError(f"init has {z.shape[1]} features, X has {d}")
        return z.copy()
    medoid = xs[_medoid(xs, radius)]
    if resampled_mean is None:
        return medoid.copy()
    L = len(medoid)
    grid = np.linspace(0.0, 1.0, L)
    total = np.zeros((L, d))
    for x, wk in zip(xs, resampled_mean):
        source = np.linspace(0.0, 1.0, len(x))
        total += wk * np.column_stack([np.interp(grid, source, x[:, j]) for j in range(d)])
    return total / resampled_mean.sum()


def _medoid(xs: list[np.ndarray], radius) -> int:
    if len(xs) == 1:
        return 0
    distances = cdist_dtw(xs, radius=radius)
    # squares of distances beyond about 1e154 overflow: compare them divided by a power of 2
    distances = ext.scale(distances, ext.exponent(ext.peak(distances)))
    return int(np.argmin((distances ** 2).sum(axis=1)))


def _as_collection(X) -> list[np.ndarray]:
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray):
        if X.ndim not in (2, 3):
            raise ValueError(f"X must be a (N, n) or (N, n, d) array or a list of sequences, "
                             f"got shape {X.shape}")
        items = list(X[:, :, None] if X.ndim == 2 else X)
    else:
        try:
            items = list(X)
        except TypeError:
            raise ValueError(f"X must be an array or a list of sequences, got {type(X)}") from None
    if not items:
        raise ValueError("X is empty: it holds no sequences")
    xs = [as_sequence(x, f"X[{k}]") for k, x in enumerate(items)]
    d = xs[0].shape[1]
    for k, x in enumerate(xs):
        if x.shape[1] != d:
            raise ValueError(f"X[{k}] has {x.shape[1]} features, X[0] has {d}")
    return xs


def _check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"weights must be {n} non-negative numbers, got {weights!r}") from None
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), one per series of X, got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weights contains NaN or infinite values")
    if (w < 0).any():
        raise ValueError(f"weights must be non-negative, got {w.min()} at index {int(w.argmin())}")
    if not w.any():
        raise ValueError("weights are all zero")
    return w


def _check_gamma(gamma) -> float:
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"gamma must be a positive real number, got {gamma!r}")
    gamma = float(gamma)
    if not np.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"gamma must be a positive finite number, got {gamma}")
    return gamma


def _check_tol(tol) -> float:
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real) \
            or not np.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    return float(tol)
