"""What the clustering estimators share: input checks, pairwise distances under a metric,
resampling to one length, k-means++ seeding."""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_choice
from ..warping.cdist import as_collection, cdist_dtw

# metrics every estimator knows without the elastic module
BUILTIN_METRICS = ("dtw", "softdtw", "euclidean")
# DTW parameters the built-in "dtw" metric takes (as mmalign.cdist_dtw)
DTW_PARAMS = ("radius", "window", "itakura_slope")
SOFTDTW_PARAMS = ("gamma", "radius", "window")


def elastic_metrics() -> tuple[str, ...]:
    """The names of ``mmalign.warping.elastic.METRICS`` (empty where that module is missing)."""
    try:
        from ..warping import elastic
    except ImportError:
        return ()
    return tuple(elastic.METRICS)


def check_metric(metric) -> str:
    """``metric`` if mmalign knows it, else a ValueError listing the known names."""
    if isinstance(metric, str) and metric in BUILTIN_METRICS:
        return metric
    return check_choice(metric, "metric", set(BUILTIN_METRICS) | set(elastic_metrics()))


def check_params(params, name: str) -> dict:
    """A copy of a ``*_params`` dict (``None``: empty)."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise ValueError(f"{name} must be a dict of keyword arguments or None, got {params!r}")
    return dict(params)


def check_metric_params(metric: str, params: dict) -> dict:
    """Refuse keyword arguments the built-in metric does not take (the elastic ones are
    checked by ``mmalign.warping.elastic.cdist``)."""
    allowed = {"dtw": DTW_PARAMS, "softdtw": SOFTDTW_PARAMS, "euclidean": ()}.get(metric)
    if allowed is not None:
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"metric_params {unknown} not accepted by metric={metric!r}; "
                             f"it takes {list(allowed)}")
    return params


def collection(X, name: str = "X") -> list[np.ndarray]:
    """Validated float64 ``(n_k, d)`` sequences from ``(N, n)``, ``(N, n, d)`` or a list."""
    return as_collection(X, name)


def pairwise(xs: list[np.ndarray], ys: list[np.ndarray] | None, metric: str, params: dict,
             n_jobs: int) -> np.ndarray:
    """``(len(xs), len(ys))`` distances under ``metric`` (``ys=None``: within ``xs``).

    ``"dtw"``: :func:`mmalign.cdist_dtw` (square root of the accumulated squared
    cost); ``"softdtw"``: :func:`mmalign.soft_dtw` values (may be negative);
    ``"euclidean"``: the Euclidean norm of the difference (equal lengths); any
    other name: ``mmalign.warping.elastic.cdist``.
    """
    if metric == "dtw":
        return cdist_dtw(xs, ys, n_jobs=n_jobs, **params)
    if metric == "euclidean":
        b = xs if ys is None else ys
        _check_equal_lengths(xs + ([] if ys is None else ys), "metric='euclidean'")
        A = np.stack([x.ravel() for x in xs])
        B = np.stack([y.ravel() for y in b])
        sq = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2.0 * A @ B.T
        out = np.sqrt(np.maximum(sq, 0.0))
        if ys is None:
            np.fill_diagonal(out, 0.0)
        return out
    if metric == "softdtw":
        from ..warping.soft import soft_dtw

        b = xs if ys is None else ys
        return np.array([[soft_dtw(x, y, **params) for y in b] for x in xs])
    from ..warping import elastic  # written beside this module; imported where it is used

    return np.asarray(elastic.cdist(xs, ys, metric=metric, n_jobs=n_jobs, **params))


def _check_equal_lengths(xs: list[np.ndarray], why: str) -> None:
    lengths = {len(x) for x in xs}
    if len(lengths) > 1:
        raise ValueError(f"{why} needs series of one length, got lengths "
                         f"{sorted(lengths)[:2]}...; use an elastic metric for ragged input")


def resample(x: np.ndarray, length: int) -> np.ndarray:
    """``x (n, d)`` linearly interpolated to ``(length, d)`` on ``[0, 1]`` (tslearn's
    ``TimeSeriesResampler``)."""
    if len(x) == length:
        return x.copy()
    grid = np.linspace(0.0, 1.0, length)
    source = np.linspace(0.0, 1.0, len(x))
    return np.column_stack([np.interp(grid, source, x[:, j]) for j in range(x.shape[1])])


def kmeans_plusplus(xs: list[np.ndarray], n_clusters: int, distances, rng: np.random.Generator,
                    n_local_trials: int | None = None) -> np.ndarray:
    """Indices of ``n_clusters`` seeds by greedy k-means++ (Arthur & Vassilvitskii 2007, as
    scikit-learn and tslearn): each new seed is the best of ``2 + int(log k)`` candidates
    drawn with probability proportional to the squared distance to the nearest seed.

    ``distances(rows)`` returns the ``(len(rows), len(xs))`` distances from those series.
    """
    n = len(xs)
    trials = 2 + int(np.log(n_clusters)) if n_local_trials is None else n_local_trials
    seeds = [int(rng.integers(n))]
    closest = distances([seeds[0]])[0] ** 2
    potential = closest.sum()
    for _ in range(1, n_clusters):
        if potential <= 0:  # every series sits on a seed: take unused ones in order
            rest = [i for i in range(n) if i not in seeds]
            seeds.append(rest[0])
            continue
        draws = rng.random(trials) * potential
        candidates = np.searchsorted(np.cumsum(closest), draws)
        candidates = np.minimum(candidates, n - 1)
        to_candidates = np.minimum(closest, distances(list(candidates)) ** 2)
        pots = to_candidates.sum(axis=1)
        best = int(np.argmin(pots))
        seeds.append(int(candidates[best]))
        closest, potential = to_candidates[best], pots[best]
    return np.asarray(seeds)


def as_rng(random_state) -> np.random.Generator:
    """A numpy Generator from ``None``, an int, a Generator or a RandomState."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError):
        raise ValueError(f"random_state must be None, an int or a numpy Generator, "
                         f"got {random_state!r}") from None


def labels_from(distances: np.ndarray) -> np.ndarray:
    """Nearest centre of each row (ties to the lower index)."""
    return np.argmin(distances, axis=1)
