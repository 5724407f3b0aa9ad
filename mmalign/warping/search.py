"""Many-query subsequence search under DTW: the UCR suite (Rakthanmanon et al. 2012).

Where in one long univariate series do many short queries occur, each under a
Sakoe–Chiba band, each window z-normalised?  Exact: the matches are those of
brute force (every window normalised, :func:`mmalign.dtw` on each, the greedy
top-k below); the lower-bound cascade only skips work (kernels in
``_search_kernels.py``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from ..alignment import Alignment
from ..utils.validation import as_real_array, as_sequence, check_bool, check_choice, check_int
from . import _extremes as ext
from . import _search_kernels as SK
from .cdist import _resolve_jobs
from .dtw import dtw_path
from .subsequence import SubsequenceMatch
from .windows import resolve_radius

__all__ = ["subsequence_search", "SearchStatistics", "z_normalize_window"]

SEARCH_METRICS = {"sqeuclidean": SK.SQUARED, "euclidean": SK.ABSOLUTE, "cityblock": SK.ABSOLUTE}
STAT_NAMES = ("lb_kim", "lb_keogh_eq", "lb_keogh_ec", "abandoned", "completed")


class SearchStatistics(dict):
    """How many windows each stage stopped, summed over the queries of the last call.

    Keys ``"windows"`` (candidates in all), ``"lb_kim"``, ``"lb_keogh_eq"`` (the
    window against the query's envelope), ``"lb_keogh_ec"`` (the query against
    the window's envelope), ``"abandoned"`` (DTW stopped early) and
    ``"completed"`` (DTW computed to the end).
    """


def z_normalize_window(x) -> np.ndarray:
    """``(x - mean) / std`` as the search normalises (a constant window gives zeros).

    A window counts as constant when its standard deviation is 0 or at most
    ``1e-8`` times the magnitude of its mean (below that, the spread is rounding).

    Examples
    --------
    >>> from mmalign.warping.search import z_normalize_window
    >>> z_normalize_window([1.0, 2.0, 3.0]).round(4).tolist()
    [-1.2247, 0.0, 1.2247]
    >>> z_normalize_window([5.0, 5.0]).tolist()
    [0.0, 0.0]
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    mu = float(np.mean(x))
    sd = float(np.std(x))
    if sd == 0.0 or sd <= SK.CONSTANT_RTOL * abs(mu):
        return np.zeros_like(x)
    return (x - mu) / sd


def subsequence_search(queries, series, k: int = 1, *, radius: int | None = None,
                       window: float | None = None, z_normalize: bool = True,
                       exclusion_zone: int | None = None, n_jobs: int = -1,
                       metric: str = "sqeuclidean", return_statistics: bool = False):
    """The ``k`` best windows of ``series`` under DTW for each of many queries (UCR suite).

    Every window ``series[s:s + n]`` (``n = len(query)``) is compared with the
    query by DTW in a Sakoe–Chiba band; with ``z_normalize`` both the query and
    each window are z-normalised first.  The windows are pruned by the UCR-suite
    cascade (running mean / std, LB_Kim hierarchy, LB_Keogh with the query's
    envelope, then with the window's envelope, the query reordered by ``|z|``,
    early-abandoning DTW with the cumulative LB_Keogh of the rows still to come),
    which changes nothing in the result: it is exactly brute force.

    The top ``k`` are chosen greedily: windows by increasing cost (ties: the
    smaller start first), each skipped if its start lies within
    ``exclusion_zone`` samples (``|s - s'| <= exclusion_zone``) of an earlier
    pick's start, so that the matches are not trivial shifts of one another.

    Parameters
    ----------
    queries : np.ndarray [shape=(n,)], or [shape=(n_queries, n)], or list of (n_q,) arrays
        One query (1-d), several of one length (2-d, one per row), or a list
        of queries of any lengths (each ``(n_q,)`` or ``(n_q, 1)``).  Each at
        least 1 sample and at most ``len(series)``.
    series : np.ndarray [shape=(N,) or (N, 1)]
        The univariate series searched.  Multivariate ``(N, d > 1)`` series are
        refused: the UCR bounds are univariate (use :func:`mmalign.subsequence_dtw`
        per query, or :func:`mmalign.cdist_dtw` on the windows).
    k : int >= 1
        Matches wanted per query; fewer when the series has no more windows
        outside the exclusion zones.
    radius : int >= 0 or None
        Sakoe–Chiba radius in samples (``|i - j| <= radius``; None: no band).
    window : float in [0, 1] or None
        The radius as a fraction of each query's length, ``round(window * n)``
        with halves up (the UCR convention).  Not with ``radius``.
    z_normalize : bool
        Normalise the query and each window to zero mean and unit standard
        deviation (a constant window to zeros, see :func:`z_normalize_window`).
        ``False`` compares raw values.
    exclusion_zone : int >= 0 or None
        See above; None (default): ``n // 2``, half the query's length.  0 lets
        matches overlap (every window is then a candidate of its own).
    n_jobs : int
        Threads over the queries; ``-1`` for all cores.
    metric : {"sqeuclidean", "euclidean", "cityblock"}
        Local cost as in :func:`mmalign.dtw`: ``"sqeuclidean"`` reports the
        square root of the summed squares; ``"euclidean"`` and ``"cityblock"``
        (the same on one feature) the summed absolute differences.
    return_statistics : bool
        Also return a :class:`SearchStatistics` (what each bound pruned).

    Returns
    -------
    matches : list of SubsequenceMatch (one query given as 1-d) or list of lists of them
        Per query, best first: ``start``, ``stop = start + n``, ``cost`` (in the
        units of :func:`mmalign.dtw` on the normalised query and window) and
        ``alignment`` (the warping path, query index against **series** index,
        of the normalised pair).
    statistics : SearchStatistics
        Only with ``return_statistics=True``.

    Raises
    ------
    ValueError
        Naming the argument: NaN / inf or non-numeric values, a multivariate
        ``series``, an empty query or one longer than ``series``, ``k < 1``,
        a negative ``radius`` or ``exclusion_zone``, both ``radius`` and
        ``window``, an unknown ``metric``.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> rng = np.random.default_rng(0)
    >>> series = np.cumsum(rng.normal(size=2000))
    >>> query = 3 * series[700:764] + 5          # z-normalisation ignores scale and offset
    >>> best = mmalign.subsequence_search(query, series, radius=3)[0]
    >>> best.start, best.stop, round(best.cost, 6)
    (700, 764, 0.0)
    """
    single = _is_single(queries)
    qs = _as_queries(queries, single)
    x = _as_series(series)
    k = check_int(k, "k", 1)
    z_normalize = check_bool(z_normalize, "z_normalize")
    return_statistics = check_bool(return_statistics, "return_statistics")
    kind = SEARCH_METRICS[check_choice(metric, "metric", tuple(SEARCH_METRICS))]
    n_jobs = _resolve_jobs(n_jobs)
    if radius is not None and window is not None:
        raise ValueError("give either radius (in samples) or window (a fraction), not both")
    if exclusion_zone is not None:
        exclusion_zone = check_int(exclusion_zone, "exclusion_zone", 0)
    N = len(x)
    for j, q in enumerate(qs):
        if len(q) > N:
            name = "queries" if single else f"queries[{j}]"
            raise ValueError(f"{name} has {len(q)} samples, more than the series' {N}")
    radii = [_radius(radius, window, len(q)) for q in qs]
    # huge / tiny values are scaled by powers of two into range, as mmalign.dtw does: raw
    # values by one common factor (undone on the costs), z-normalised ones each by its own
    # (normalisation does not see it)
    e = 0
    if z_normalize:
        x = ext.scale(x, ext.exponent(ext.peak(x)))
        qs = [ext.scale(q, ext.exponent(ext.peak(q))) for q in qs]
    else:
        e = ext.exponent(max(ext.peak(x), max(ext.peak(q) for q in qs)))
        x = ext.scale(x, e)
        qs = [ext.scale(q, e) for q in qs]
    normed = [z_normalize_window(q) if z_normalize else q for q in qs]

    stats_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for q in qs:
        n = len(q)
        if n not in stats_cache:
            mean = np.empty(N - n + 1)
            inv = np.empty(N - n + 1)
            SK.window_stats(x, n, z_normalize, mean, inv)
            stats_cache[n] = (mean, inv)
    env_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for r in radii:
        if r not in env_cache:
            env_cache[r] = _envelope(x, r)

    def one(j: int):
        q = normed[j]
        n = len(q)
        r = radii[j]
        ex = n // 2 if exclusion_zone is None else exclusion_zone
        upper_q, lower_q = _envelope(q, r)
        order = np.argsort(-np.abs(q), kind="stable")
        mean, inv = stats_cache[n]
        upper, lower = env_cache[r]
        costs = np.empty(N - n + 1)
        counts = np.zeros(SK.N_STATS, np.int64)
        threshold = SK.search_query(q, order, q[order], upper_q[order], lower_q[order], x,
                                    upper, lower, mean, inv, r, ex, k, kind, costs, counts)
        picks = SK.greedy_top_k(costs, threshold, ex, k)
        return [(int(s), float(costs[s])) for s in picks], counts

    if n_jobs == 1 or len(qs) == 1:
        results = [one(j) for j in range(len(qs))]
    else:
        with ThreadPoolExecutor(max_workers=min(n_jobs, len(qs))) as pool:
            results = list(pool.map(one, range(len(qs))))

    out = []
    totals = np.zeros(SK.N_STATS, np.int64)
    windows = 0
    for j, (picks, counts) in enumerate(results):
        totals += counts
        windows += N - len(qs[j]) + 1
        out.append([_match(normed[j], x, s, raw, radii[j], kind, e, z_normalize, N)
                    for s, raw in picks])
    result = out[0] if single else out
    if not return_statistics:
        return result
    stats = SearchStatistics(windows=windows, **dict(zip(STAT_NAMES, map(int, totals))))
    return result, stats


# ----------------------------------------------------------------- helpers


def _is_single(queries) -> bool:
    if isinstance(queries, (list, tuple)):
        return False
    arr = queries.detach().cpu().numpy() if hasattr(queries, "detach") else queries
    return getattr(np.asarray(arr), "ndim", 0) == 1


def _as_queries(queries, single: bool) -> list[np.ndarray]:
    if single:
        return [_univariate(queries, "queries")]
    if isinstance(queries, (list, tuple)):
        if len(queries) == 0:
            raise ValueError("queries is empty: give at least one query")
        return [_univariate(q, f"queries[{j}]") for j, q in enumerate(queries)]
    arr = as_real_array(queries, "queries")
    if arr.ndim != 2:
        raise ValueError(f"queries must be one query (n,), an array (n_queries, n) or a list "
                         f"of queries, got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("queries is empty: give at least one query")
    return [_univariate(arr[j], f"queries[{j}]") for j in range(arr.shape[0])]


def _univariate(q, name: str) -> np.ndarray:
    seq = as_sequence(q, name)
    if seq.shape[1] != 1:
        raise ValueError(f"{name} must be univariate ((n,) or (n, 1)), got shape {seq.shape}; "
                         "the search's lower bounds are univariate")
    return np.ascontiguousarray(seq[:, 0])


def _as_series(series) -> np.ndarray:
    seq = as_sequence(series, "series")
    if seq.shape[1] != 1:
        raise ValueError(f"series must be univariate ((N,) or (N, 1)), got shape {seq.shape}; "
                         "the UCR-suite bounds are univariate: use mmalign.subsequence_dtw per "
                         "query, or mmalign.cdist_dtw on the windows, for multivariate series")
    return np.ascontiguousarray(seq[:, 0])


def _radius(radius, window, n: int) -> int:
    """The band radius for a query of length n, at most n - 1 (the whole grid)."""
    r = resolve_radius(radius, window, n, n)
    return n - 1 if r is None else min(r, n - 1)


def _envelope(x: np.ndarray, r: int):
    size = 2 * r + 1
    upper = maximum_filter1d(x, size=size, mode="nearest")
    lower = minimum_filter1d(x, size=size, mode="nearest")
    return np.ascontiguousarray(upper), np.ascontiguousarray(lower)


def _match(qn: np.ndarray, x: np.ndarray, start: int, raw: float, r: int, kind: int, e: int,
           z_normalize: bool, N: int) -> SubsequenceMatch:
    n = len(qn)
    w = z_normalize_window(x[start:start + n]) if z_normalize else x[start:start + n]
    cost = float(np.sqrt(raw)) if kind == SK.SQUARED else float(raw)
    cost = ext.unscale(cost, e, "the match cost")
    metric = "sqeuclidean" if kind == SK.SQUARED else "cityblock"
    path = dtw_path(qn, w, radius=r, metric=metric).path().copy()
    path[:, 1] += start
    alignment = Alignment(path, cost=cost, shape=(n, N), monotonic=True,
                          extras={"start": start, "stop": start + n})
    return SubsequenceMatch(start, start + n, cost, alignment)
