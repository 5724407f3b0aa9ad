"""Elastic distances (mmalign.distance / distance_path / cdist) against aeon, properties,
bad input; KNeighborsTimeSeries against brute force and aeon's 1-NN."""

import numpy as np
import pytest

import mmalign
from mmalign.warping import elastic as E

A = pytest.importorskip("aeon.distances")
from aeon.distances.elastic._bounding_matrix import create_bounding_matrix  # noqa: E402

# small parameters where the default would swamp short test series
EXTRA = {"shape_dtw": {"reach": 3}}
SHAPES = [((20, 20), 1), ((17, 23), 1), ((20, 20), 3), ((23, 17), 2)]


def _pair(rng, n, m, d):
    return rng.normal(size=(n, d)), rng.normal(size=(m, d))


def _window_options(metric, n, m, w):
    """mmalign's window equal to aeon's window=w (module docstring of elastic.py)."""
    if w is None:
        return {}
    if metric in ("ddtw", "wddtw"):
        n, m = n - 2, m - 2
    if n == m:
        return {"radius": int(w * n)}
    return {"mask": create_bounding_matrix(n, m, w)}


def _aeon(metric, x, y, w, **kw):
    if w is not None:
        kw = dict(kw, window=w)
    return A.distance(np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), method=metric, **kw)


@pytest.mark.parametrize("metric", E.METRICS)
@pytest.mark.parametrize("w", [None, 0.2])
def test_values_equal_aeon(metric, w):
    if metric == "euclidean" and w is not None:
        pytest.skip("euclidean takes no window")
    rng = np.random.default_rng(hash(metric) % 2**32)
    for (n, m), d in SHAPES:
        if metric == "euclidean":
            m = n
        x, y = _pair(rng, n, m, d)
        kw = EXTRA.get(metric, {})
        ours = E.distance(x, y, metric, **kw, **_window_options(metric, n, m, w))
        if metric == "dtw":
            ours = ours**2  # mmalign's dtw is the square root of aeon's
        theirs = _aeon(metric, x, y, w, **kw)
        assert ours == pytest.approx(theirs, rel=1e-8, abs=1e-12), (metric, n, m, d)


@pytest.mark.parametrize("metric,params", [
    ("wdtw", {"g": 0.3}), ("wddtw", {"g": 0.0}), ("adtw", {"warp_penalty": 0.2}),
    ("lcss", {"epsilon": 0.4}), ("edr", {"epsilon": 0.7}), ("erp", {"g": 0.5}),
    ("erp", {"g_arr": np.array([0.1, -0.3])}), ("msm", {"c": 0.3}),
    ("msm", {"independent": False, "c": 0.5}), ("twe", {"nu": 0.05, "lmbda": 0.3}),
    ("shape_dtw", {"reach": 2}),
])
def test_parameters_equal_aeon(metric, params):
    rng = np.random.default_rng(7)
    x, y = _pair(rng, 15, 19, 2)
    ours = E.distance(x, y, metric, **params)
    assert ours == pytest.approx(_aeon(metric, x, y, None, **params), rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("metric", E.PATH_METRICS)
@pytest.mark.parametrize("w", [None, 0.25])
def test_paths_equal_aeon(metric, w):
    rng = np.random.default_rng(3)
    kw = EXTRA.get(metric, {})
    for (n, m), d in SHAPES[:3]:
        x, y = _pair(rng, n, m, d)
        if metric == "lcss":
            kw = {"epsilon": 0.8}
        a = E.distance_path(x, y, metric, **kw, **_window_options(metric, n, m, w))
        path, cost = getattr(A, f"{metric}_alignment_path")(
            np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), window=w, **kw)
        assert [tuple(p) for p in a.path().tolist()] == [tuple(p) for p in path]
        assert a.cost == pytest.approx(E.distance(x, y, metric, **kw,
                                                  **_window_options(metric, n, m, w)))


@pytest.mark.parametrize("metric", [m for m in E.METRICS if m != "euclidean"])
def test_cdist_equals_distance(metric):
    rng = np.random.default_rng(11)
    X = [rng.normal(size=(k, 2)) for k in (9, 12, 10, 14)]
    Y = [rng.normal(size=(k, 2)) for k in (11, 8)]
    kw = EXTRA.get(metric, {})
    for win in ({}, {"window": 0.3}, {"radius": 2}):
        D = mmalign.cdist(X, metric=metric, **kw, **win)
        assert np.allclose(np.diag(D), 0) and np.array_equal(D, D.T)
        for a in range(len(X)):
            for b in range(a + 1, len(X)):
                assert D[a, b] == pytest.approx(E.distance(X[a], X[b], metric, **kw, **win),
                                                rel=1e-12)
        C = mmalign.cdist(X, Y, metric=metric, n_jobs=1, **kw, **win)
        expect = [[E.distance(a, b, metric, **kw, **win) for b in Y] for a in X]
        assert np.allclose(C, expect, rtol=1e-12, atol=0)


def test_cdist_euclidean_itakura_and_dask():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 12, 2))
    assert np.allclose(mmalign.cdist(X, metric="euclidean"),
                       np.sqrt(((X[:, None] - X[None]) ** 2).sum(axis=(2, 3))))
    D = mmalign.cdist(X, metric="msm", itakura_slope=2.0)
    assert D[0, 1] == pytest.approx(E.distance(X[0], X[1], "msm", itakura_slope=2.0))
    with pytest.raises(NotImplementedError, match="metric='dtw' only"):
        mmalign.cdist(X, metric="erp", backend="dask")
    assert np.allclose(mmalign.cdist(X, metric="dtw"), mmalign.cdist_dtw(X))


@pytest.mark.parametrize("metric", E.METRICS)
def test_identity_and_symmetry(metric):
    rng = np.random.default_rng(5)
    n = 16
    x, y = _pair(rng, n, n if metric == "euclidean" else 21, 2)
    kw = EXTRA.get(metric, {})
    assert E.distance(x, x, metric, **kw) == pytest.approx(0.0, abs=1e-12)
    if metric not in ("shape_dtw",):  # aeon's shape_dtw trace is not symmetric
        assert E.distance(x, y, metric, **kw) == pytest.approx(E.distance(y, x, metric, **kw),
                                                               rel=1e-12)


@pytest.mark.parametrize("metric", ["msm", "twe", "erp"])
def test_triangle_inequality(metric):
    rng = np.random.default_rng(8)
    for _ in range(30):
        x, y, z = (rng.normal(size=(int(rng.integers(5, 15)), 1)) for _ in range(3))
        xy, yz, xz = (E.distance(a, b, metric) for a, b in ((x, y), (y, z), (x, z)))
        assert xz <= xy + yz + 1e-9


@pytest.mark.parametrize("metric", ["dtw", "ddtw", "wdtw", "wddtw", "adtw", "shape_dtw"])
def test_window_never_lowers_the_dtw_family(metric):
    rng = np.random.default_rng(9)
    kw = EXTRA.get(metric, {})
    for _ in range(5):
        x, y = _pair(rng, 18, 22, 1)
        free = E.distance(x, y, metric, **kw)
        for r in (0, 1, 3):
            assert E.distance(x, y, metric, radius=r, **kw) >= free - 1e-12


def test_bad_input():
    x = np.arange(6.0)
    with pytest.raises(ValueError, match="metric must be one of"):
        E.distance(x, x, "nope")
    with pytest.raises(ValueError, match="'g' is not a parameter of metric='msm'"):
        E.distance(x, x, "msm", g=1.0)
    with pytest.raises(ValueError, match="itakura_slope"):
        E.distance(x, x, "msm", itakura_max_slope=0.5)
    with pytest.raises(ValueError, match="x contains NaN"):
        E.distance(np.array([0.0, np.nan]), x, "erp")
    with pytest.raises(ValueError, match="different numbers of features"):
        E.distance(np.ones((4, 2)), np.ones((4, 3)), "twe")
    with pytest.raises(ValueError, match="at least 3"):
        E.distance(np.ones(2), x, "ddtw")
    with pytest.raises(ValueError, match="euclidean.*one length"):
        E.distance(x, x[:4], "euclidean")
    with pytest.raises(ValueError, match="euclidean.*no window"):
        E.distance(x, x, "euclidean", radius=1)
    with pytest.raises(ValueError, match="epsilon"):
        E.distance(x, x, "lcss", epsilon=-1.0)
    with pytest.raises(ValueError, match="c must be"):
        E.distance(x, x, "msm", c="a")
    with pytest.raises(ValueError, match="radius"):
        E.distance(x, x, "erp", radius=-1)
    with pytest.raises(ValueError, match="no alignment path"):
        E.distance_path(x, x, "euclidean")
    with pytest.raises(ValueError, match="g_arr has 2 values"):
        E.distance(x, x, "erp", g_arr=[0.0, 1.0])
    with pytest.raises(ValueError, match="X holds no sequences"):
        mmalign.cdist([], metric="msm")
    with pytest.raises(ValueError, match="backend"):
        mmalign.cdist([x], metric="msm", backend="spark")
    kept = x.copy()
    E.distance_path(x, x[::-1].copy(), "twe")
    assert np.array_equal(x, kept)


def test_knn_equals_brute_force_ragged():
    rng = np.random.default_rng(4)
    X = [rng.normal(size=(int(rng.integers(8, 14)), 2)) for _ in range(12)]
    y = rng.integers(0, 3, 12)
    Q = [rng.normal(size=(int(rng.integers(8, 14)), 2)) for _ in range(5)]
    for metric, params in (("msm", {}), ("lcss", {"epsilon": 0.8}), ("dtw", {"radius": 2}),
                           ("twe", {"window": 0.2})):
        clf = mmalign.KNeighborsTimeSeries(3, metric=metric, metric_params=params).fit(X, y)
        dist, ind = clf.kneighbors(Q)
        D = mmalign.cdist(Q, X, metric=metric, **params)
        order = np.argsort(D, axis=1, kind="stable")[:, :3]
        assert np.array_equal(ind, order)
        assert np.allclose(dist, np.take_along_axis(D, order, axis=1))


def test_knn_equals_brute_force_dtw_cascade():
    rng = np.random.default_rng(6)
    X, Q = rng.normal(size=(30, 20)), rng.normal(size=(6, 20))
    y = rng.integers(0, 2, 30)
    clf = mmalign.KNeighborsTimeSeries(metric="dtw", metric_params={"window": 0.1}).fit(X, y)
    D = mmalign.cdist(Q, X, metric="dtw", window=0.1)
    assert np.array_equal(clf.kneighbors(Q, return_distance=False)[:, 0], D.argmin(axis=1))
    assert np.array_equal(clf.predict(Q), y[D.argmin(axis=1)])


def test_knn_equals_aeon_on_gunpoint():
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.datasets import load_gunpoint

    Xtr, ytr = load_gunpoint(split="train")
    Xte, yte = load_gunpoint(split="test")
    Xtr, Xte = Xtr[:30, 0], Xte[:40, 0]
    ytr = ytr[:30]
    for metric in ("msm", "erp", "ddtw"):
        ours = mmalign.KNeighborsTimeSeries(metric=metric).fit(Xtr, ytr).predict(Xte)
        theirs = KNeighborsTimeSeriesClassifier(distance=metric).fit(
            Xtr[:, None], ytr).predict(Xte[:, None])
        assert np.array_equal(ours, theirs), metric


def test_knn_bad_params():
    X = np.zeros((3, 5))
    with pytest.raises(ValueError, match="metric must be one of"):
        mmalign.KNeighborsTimeSeries(metric="foo").fit(X, [0, 1, 1])
    with pytest.raises(ValueError, match="not a parameter"):
        mmalign.KNeighborsTimeSeries(metric="msm", metric_params={"nu": 1}).fit(X, [0, 1, 1])
    with pytest.raises(ValueError, match="metric_params must be a dict"):
        mmalign.KNeighborsTimeSeries(metric="msm", metric_params=3).fit(X, [0, 1, 1])


@pytest.mark.parametrize("metric", [m for m in E.METRICS if m != "euclidean"])
def test_cdist_lanes_equal_pair_by_pair(metric):
    """Pairs of one shape run in SIMD lanes (>= 8 of them): the same values as one by one."""
    rng = np.random.default_rng(12)
    X = [rng.normal(size=(12, 2)) for _ in range(9)] + [rng.normal(size=(k, 2)) for k in (9, 14)]
    Y = [rng.normal(size=(10, 2)) for _ in range(3)]
    kw = EXTRA.get(metric, {})
    if metric == "msm":
        kw = {"independent": True, "c": 0.7}
    for win in ({}, {"window": 0.2}):
        D = mmalign.cdist(X, metric=metric, **kw, **win)
        C = mmalign.cdist(X, Y, metric=metric, **kw, **win)
        for a in range(len(X)):
            for b in range(a + 1, len(X)):
                assert D[a, b] == pytest.approx(E.distance(X[a], X[b], metric, **kw, **win),
                                                rel=1e-12)
            for b in range(len(Y)):
                assert C[a, b] == pytest.approx(E.distance(X[a], Y[b], metric, **kw, **win),
                                                rel=1e-12)


def test_cdist_progress_bar():
    pytest.importorskip("tqdm")
    X = np.random.default_rng(0).normal(size=(6, 10))
    assert np.array_equal(mmalign.cdist(X, metric="twe", progress=True),
                          mmalign.cdist(X, metric="twe"))
