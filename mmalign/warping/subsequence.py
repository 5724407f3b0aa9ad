"""Subsequence DTW: where in a long series does a short query occur?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from ..alignment import Alignment
from . import _kernels as K
from ._validation import check_int
from .dtw import METRICS, Metric, finalize, prepare_pair


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
    if callable(metric):
        C = cdist(q, s, metric=metric)
    else:
        C = K.cost_matrix(q, s, METRICS[metric])
    D, dirs = K.general_accumulate(C, K.STEP_SYMMETRIC1, True)
    ends = D[-1].copy()
    matches: list[SubsequenceMatch] = []
    taken = np.zeros(m, bool)  # series frames inside an earlier match or its exclusion zone
    while len(matches) < k and np.isfinite(ends).any():
        end = int(np.argmin(ends))
        ends[end] = np.inf
        path = K.backtrack_general(dirs, n - 1, end, True)
        start = int(path[0, 1])
        if taken[start:end + 1].any():
            continue  # this span overlaps an earlier match
        cost = finalize(D[-1, end], metric)
        alignment = Alignment(path, cost=cost, shape=(n, m), monotonic=True,
                              extras={"start": start, "stop": end + 1})
        matches.append(SubsequenceMatch(start, end + 1, cost, alignment))
        taken[max(0, start - exclusion): min(m, end + 1 + exclusion)] = True
        ends[taken] = np.inf
    return matches
