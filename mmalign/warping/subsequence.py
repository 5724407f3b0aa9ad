"""Subsequence DTW: where in a long series does a short query occur?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..alignment import Alignment
from ..utils.validation import check_int
from . import _extremes as ext
from . import _kernels as K
from .dtw import METRICS, Metric, callable_costs, finalize, prepare_pair


@dataclass(frozen=True)
class SubsequenceMatch:
    """One occurrence of the query: ``series[start:stop]`` and its alignment.

    ``alignment.path()`` pairs query indices with **series** indices (not offset
    by ``start``); ``cost`` is in the units of :func:`mmalign.dtw`.
    """

    start: int
    stop: int
    cost: float
    alignment: Alignment


def subsequence_dtw(query, series, k: int = 1, *, metric: Metric = "sqeuclidean",
                    exclusion: int | None = None) -> list[SubsequenceMatch]:
    """The ``k`` best non-overlapping matches of ``query`` inside ``series``.

    The whole query is aligned to a free span of the series (open begin and open
    end along the series, symmetric1 steps).  After each match, spans ending
    within the found span widened by ``exclusion`` frames are excluded.

    Parameters
    ----------
    query : np.ndarray [shape=(n,) or (n, d)]
    series : np.ndarray [shape=(m,) or (m, d)]
    k : int >= 1
        Number of matches wanted; fewer are returned when the series runs out.
    metric : str or callable
        As in :func:`mmalign.dtw`.
    exclusion : int >= 0 or None
        Extra frames around a match that no other match may touch; default
        ``len(query) // 2``.

    Returns
    -------
    matches : list of SubsequenceMatch, best first
        At least one for finite input.

    Raises
    ------
    ValueError
        Bad input, or a match cost beyond float64 (about 1.8e308).  Values of any
        finite size work with the built-in metrics (see :func:`mmalign.dtw`).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> series = np.r_[np.zeros(20), np.sin(np.linspace(0, np.pi, 15)), np.zeros(20)]
    >>> query = np.sin(np.linspace(0, np.pi, 10))
    >>> best = mmalign.subsequence_dtw(query, series)[0]
    >>> best.start, best.stop
    (20, 35)
    """
    k = check_int(k, "k", 1)
    q, s = prepare_pair(query, series, metric, ("query", "series"))
    n, m = len(q), len(s)
    exclusion = n // 2 if exclusion is None else check_int(exclusion, "exclusion", 0)
    e = 0
    if callable(metric):
        C = callable_costs(q, s, metric)
    else:
        e = ext.exponent(max(ext.peak(q), ext.peak(s)))
        C = K.cost_matrix(ext.scale(q, e), ext.scale(s, e), METRICS[metric])
    D, dirs = K.general_accumulate(C, K.STEP_SYMMETRIC1, True)
    ends = D[-1].copy()
    # every end is reachable (open begin, no window): inf is a sum beyond float64, only
    # possible with a callable metric (the built-in ones are scaled into range)
    overflowed = ~np.isfinite(ends)
    matches: list[SubsequenceMatch] = []
    taken = np.zeros(m, bool)  # series frames inside an earlier match or its exclusion zone
    while len(matches) < k and np.isfinite(ends).any():
        end = int(np.argmin(ends))
        ends[end] = np.inf
        path = K.backtrack_general(dirs, n - 1, end, True)
        start = int(path[0, 1])
        if taken[start:end + 1].any():
            continue  # this span overlaps an earlier match
        cost = ext.unscale(finalize(D[-1, end], metric), e, "the match cost")
        alignment = Alignment(path, cost=cost, shape=(n, m), monotonic=True,
                              extras={"start": start, "stop": end + 1})
        matches.append(SubsequenceMatch(start, end + 1, cost, alignment))
        taken[max(0, start - exclusion): min(m, end + 1 + exclusion)] = True
        ends[taken] = np.inf
    if len(matches) < k and (overflowed & ~taken).any():
        raise ValueError("the metric's costs summed along a match exceed the float64 range "
                         f"(largest finite value {ext.FLOAT64_MAX:.4g}); rescale the metric")
    return matches
