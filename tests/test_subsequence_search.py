"""mmalign.subsequence_search: exactly brute force (and dtaidistance where it agrees)."""

from __future__ import annotations

import numpy as np
import pytest

import mmalign
from mmalign.warping.search import z_normalize_window


def _series(seed: int, n: int = 1200, queries=(32,), warp: bool = True):
    """A random walk with each query planted (noisy, optionally time-warped) twice."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(size=n))
    qs = []
    for j, m in enumerate(queries):
        q = np.cumsum(rng.normal(size=m))
        qs.append(q)
        for start in rng.choice(np.arange(0, n - 2 * m, 2 * m), size=2, replace=False):
            t = np.linspace(0, 1, m) ** (1.2 if warp else 1.0)
            copy = np.interp(t * (m - 1), np.arange(m), q)
            x[start:start + m] = 2.0 * copy + 7.0 + 0.05 * rng.normal(size=m) + x[start]
    return x, qs


def _brute(q, x, k, radius=None, window=None, z=True, exclusion=None, metric="sqeuclidean"):
    """Every window normalised, mmalign's DTW on each, greedy top-k by (cost, start)."""
    m = len(q)
    starts = np.arange(len(x) - m + 1)
    norm = z_normalize_window if z else (lambda v: np.asarray(v, float))
    windows = np.stack([norm(x[s:s + m]) for s in starts])
    costs = mmalign.cdist_dtw([norm(q)], windows, radius=radius, window=window,
                              metric=metric)[0]
    ex = m // 2 if exclusion is None else exclusion
    picks = []
    for s in np.lexsort((starts, costs)):
        if all(abs(s - p) > ex for p in picks):
            picks.append(int(s))
            if len(picks) == k:
                break
    return picks, costs[picks]


def _check(found, picks, costs, m):
    assert [f.start for f in found] == picks
    assert [f.stop for f in found] == [p + m for p in picks]
    np.testing.assert_allclose([f.cost for f in found], costs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("radius", [0, 3, 8, None])
@pytest.mark.parametrize("z", [True, False])
def test_equals_brute_force(radius, z):
    x, (q,) = _series(radius or 11, queries=(32,))
    for k, exclusion in [(1, None), (3, None), (4, 0), (3, 40)]:
        found = mmalign.subsequence_search(q, x, k, radius=radius, z_normalize=z,
                                           exclusion_zone=exclusion)
        picks, costs = _brute(q, x, k, radius=radius, z=z, exclusion=exclusion)
        _check(found, picks, costs, len(q))


def test_planted_match_found_and_window_fraction():
    x, qs = _series(5, n=1500, queries=(24, 40, 17))
    found = mmalign.subsequence_search(qs, x, 2, window=0.1)
    assert len(found) == 3
    for q, matches in zip(qs, found):
        picks, costs = _brute(q, x, 2, window=0.1)
        _check(matches, picks, costs, len(q))


@pytest.mark.parametrize("metric", ["euclidean", "cityblock"])
def test_absolute_metrics_equal_brute_force(metric):
    x, (q,) = _series(7, n=800, queries=(20,))
    found = mmalign.subsequence_search(q, x, 3, radius=2, metric=metric)
    picks, costs = _brute(q, x, 3, radius=2, metric=metric)
    _check(found, picks, costs, len(q))


def test_exact_ties_go_to_the_earlier_start():
    # an integer pattern repeated exactly: many windows of identical cost (raw values)
    rng = np.random.default_rng(3)
    pattern = rng.integers(-5, 6, size=25).astype(float)
    x = np.concatenate([pattern] * 12 + [rng.integers(-5, 6, size=30).astype(float)])
    q = pattern[:20] + 1.0
    for exclusion in (0, 10, None):
        found = mmalign.subsequence_search(q, x, 5, radius=2, z_normalize=False,
                                           exclusion_zone=exclusion)
        picks, costs = _brute(q, x, 5, radius=2, z=False, exclusion=exclusion)
        _check(found, picks, costs, len(q))


def test_constant_windows_normalise_to_zeros():
    rng = np.random.default_rng(4)
    x = np.concatenate([np.cumsum(rng.normal(size=300)), np.full(80, 0.3), np.zeros(60),
                        np.cumsum(rng.normal(size=300))])
    q = np.cumsum(rng.normal(size=30))
    found = mmalign.subsequence_search(q, x, 4, radius=3)
    picks, costs = _brute(q, x, 4, radius=3)
    _check(found, picks, costs, len(q))
    # a constant query matched against the flat stretch costs 0 there
    flat = mmalign.subsequence_search(np.full(30, 2.0), x, 1, radius=3)[0]
    assert flat.cost == 0.0 and 300 <= flat.start <= 440 - 30


def test_ragged_queries_threads_statistics_and_inputs_untouched():
    x, qs = _series(8, n=1000, queries=(16, 30, 45, 22))
    x0, q0 = x.copy(), [q.copy() for q in qs]
    one, stats = mmalign.subsequence_search(qs, x, 2, radius=4, n_jobs=1,
                                            return_statistics=True)
    many = mmalign.subsequence_search(qs, x, 2, radius=4, n_jobs=2)
    assert [[(m.start, m.cost) for m in ms] for ms in one] == \
           [[(m.start, m.cost) for m in ms] for ms in many]
    np.testing.assert_array_equal(x, x0)
    for q, q_before in zip(qs, q0):
        np.testing.assert_array_equal(q, q_before)
    assert stats["windows"] == sum(len(x) - len(q) + 1 for q in qs)
    assert sum(v for key, v in stats.items() if key != "windows") == stats["windows"]
    assert stats["completed"] < stats["windows"] // 2  # the bounds prune most windows
    # a 2-d array is one query per row
    rows = mmalign.subsequence_search(np.stack([qs[0], qs[0] * 2]), x, 1, radius=4)
    assert rows[0][0].start == rows[1][0].start == one[0][0].start


@pytest.mark.parametrize("factor", [1e-200, 1e200])
def test_extreme_magnitudes(factor):
    x, (q,) = _series(13, n=500, queries=(20,))
    ref = mmalign.subsequence_search(q, x, 2, radius=2)
    z = mmalign.subsequence_search(q * factor, x * factor, 2, radius=2)
    assert [m.start for m in z] == [m.start for m in ref]
    np.testing.assert_allclose([m.cost for m in z], [m.cost for m in ref], rtol=1e-9)
    raw_ref = mmalign.subsequence_search(q, x, 2, radius=2, z_normalize=False)
    raw = mmalign.subsequence_search(q * factor, x * factor, 2, radius=2, z_normalize=False)
    assert [m.start for m in raw] == [m.start for m in raw_ref]
    np.testing.assert_allclose([m.cost for m in raw], [factor * m.cost for m in raw_ref],
                               rtol=1e-9)


def test_match_alignment_indexes_the_series():
    x, (q,) = _series(9, n=600, queries=(20,))
    best = mmalign.subsequence_search(q, x, radius=2)[0]
    path = best.alignment.path()
    assert path[0].tolist() == [0, best.start] and path[-1].tolist() == [19, best.stop - 1]
    assert abs(best.alignment.cost - best.cost) <= 1e-9 * max(1.0, best.cost)


def test_short_queries_and_whole_series():
    x, _ = _series(10, n=200, queries=(5,))
    for m in (1, 2, 5, 6, 7):  # z-normalised windows of 2 samples are all +-1: ties
        q = np.random.default_rng(m).normal(size=m)
        found = mmalign.subsequence_search(q, x, 3, radius=1, z_normalize=m >= 5)
        picks, costs = _brute(q, x, 3, radius=1, z=m >= 5)
        _check(found, picks, costs, m)
    whole = mmalign.subsequence_search(x[::-1], x, 3, radius=5)
    assert len(whole) == 1 and whole[0].start == 0


def test_agrees_with_dtaidistance():
    dtai = pytest.importorskip("dtaidistance.subsequence.subsequencesearch")
    # dtaidistance searches the windows it is given (no normalisation, no exclusion
    # zone, overlapping windows all allowed); its window=w allows |i - j| < w, so
    # mmalign's radius r is window=r + 1; its distance is sqrt of summed squares
    x, (q,) = _series(12, n=900, queries=(30,))
    r, k = 3, 3
    qz = z_normalize_window(q)
    windows = [z_normalize_window(x[s:s + 30]) for s in range(len(x) - 29)]
    ss = dtai.SubsequenceSearch(qz, windows, dists_options={"window": r + 1}, use_c=True)
    theirs = ss.kbest_matches_fast(k=k)
    found = mmalign.subsequence_search(q, x, k, radius=r, exclusion_zone=0)
    assert [m.idx for m in theirs] == [f.start for f in found]
    np.testing.assert_allclose([m.distance for m in theirs], [f.cost for f in found],
                               rtol=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(queries=np.ones(5), series=np.r_[1.0, np.nan, 2.0, 3, 4, 5]), "series contains NaN"),
    (dict(queries=np.r_[1.0, np.inf], series=np.arange(9.0)), "queries contains NaN"),
    (dict(queries=np.arange(10.0), series=np.arange(9.0)), "queries has 10 samples"),
    (dict(queries=[np.arange(3.0), np.arange(12.0)], series=np.arange(9.0)),
     r"queries\[1\] has 12 samples"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), k=0), "k must"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), radius=-1), "radius"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), radius=1, window=0.1), "either radius"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), window=2.0), "window"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), exclusion_zone=-2), "exclusion_zone"),
    (dict(queries=np.arange(3.0), series=np.ones((9, 2))), "series must be univariate"),
    (dict(queries=[np.ones((3, 2))], series=np.arange(9.0)), r"queries\[0\] must be univariate"),
    (dict(queries=[], series=np.arange(9.0)), "queries is empty"),
    (dict(queries=np.array([]), series=np.arange(9.0)), "queries is empty"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), metric="cosine"), "metric"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), n_jobs=0), "n_jobs"),
    (dict(queries=np.arange(3.0), series=np.arange(9.0), z_normalize="yes"), "z_normalize"),
    (dict(queries=np.ones((2, 2, 2)), series=np.arange(9.0)), "queries must be"),
])
def test_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mmalign.subsequence_search(**kwargs)
