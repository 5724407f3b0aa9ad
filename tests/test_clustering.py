"""mmalign.clustering: k-means, k-medoids and k-shape for time series."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import mmalign
from mmalign.clustering import TimeSeriesKMeans


def _three_shapes(N=24, n=40, seed=0):
    """Noisy series of three shapes (sine, ramp, bump) with random shifts; labels 0, 1, 2."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    labels = np.arange(N) % 3
    X = []
    for c in labels:
        s = rng.uniform(-0.08, 0.08)
        base = [np.sin(2 * np.pi * (t - s)), 2 * (t - s) - 1,
                2 * np.exp(-((t - 0.5 - s) / 0.1) ** 2) - 0.5][c]
        X.append(base + 0.1 * rng.standard_normal(n))
    return np.array(X), labels


def _ari(a, b):
    from sklearn.metrics import adjusted_rand_score

    return adjusted_rand_score(a, b)


def _tslearn_kmeans():
    pytest.importorskip("tslearn")
    warnings.filterwarnings("ignore", module="tslearn")
    from tslearn.clustering import TimeSeriesKMeans as TSK

    return TSK


# ----------------------------------------------------------------------------- k-means
def test_kmeans_equals_tslearn_from_the_same_centres(metric="dtw"):
    # (euclidean against scikit-learn below; KShape against tslearn in benchmarks/clustering.py:
    # tslearn compiles for ~40 s on first use)
    TSK = _tslearn_kmeans()
    X, _ = _three_shapes(N=18, n=25, seed=1)
    init = X[[0, 1, 5]][:, :, None] + 0.3  # not members: DBA has work to do
    ours = TimeSeriesKMeans(3, metric=metric, init=init).fit(X)
    theirs = TSK(3, metric=metric, init=init.copy()).fit(X)
    assert ours.labels_.tolist() == theirs.labels_.tolist()
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10,
                               atol=1e-12)
    # tslearn's inertia: the mean squared distance (of the assignment before its last update)
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-9)
    assert ours.n_iter_ == theirs.n_iter_


def test_kmeans_inertia_is_the_mean_squared_distance_to_the_centres():
    X, _ = _three_shapes()
    km = TimeSeriesKMeans(3, metric="dtw", random_state=0).fit(X)
    d = np.array([mmalign.dtw(x, km.cluster_centers_[c]) for x, c in zip(X, km.labels_)])
    assert km.inertia_ == pytest.approx(np.mean(d ** 2), rel=1e-12)
    assert km.predict(X).tolist() == km.labels_.tolist()
    assert km.transform(X).shape == (len(X), 3)


def test_euclidean_kmeans_equals_scikit_learn_from_the_same_centres():
    from sklearn.cluster import KMeans

    X, _ = _three_shapes(N=30, n=20, seed=3)
    init = X[[0, 1, 2]]
    ours = TimeSeriesKMeans(3, metric="euclidean", init=init, tol=0).fit(X)
    theirs = KMeans(3, init=init, n_init=1, tol=0, algorithm="lloyd").fit(X)
    assert ours.labels_.tolist() == theirs.labels_.tolist()
    np.testing.assert_allclose(ours.cluster_centers_[:, :, 0], theirs.cluster_centers_,
                               atol=1e-12)
    # scikit-learn's inertia is the sum, tslearn's and mmalign's the mean
    assert ours.inertia_ * len(X) == pytest.approx(theirs.inertia_, rel=1e-10)


@pytest.mark.parametrize("metric,averaging", [("dtw", None), ("dtw", "medoid"),
                                              ("euclidean", None), ("softdtw", None),
                                              ("dtw", "softdtw")])
def test_kmeans_finds_the_three_shapes(metric, averaging):
    X, y = _three_shapes()
    params = {"gamma": 0.01} if metric == "softdtw" else None
    km = TimeSeriesKMeans(3, metric=metric, averaging=averaging, n_init=2, random_state=0,
                          metric_params=params, max_iter=10).fit(X)
    assert _ari(km.labels_, y) == 1.0
    assert km.fit_predict(X).tolist() == km.labels_.tolist()


def test_kmeans_is_deterministic_for_a_seed_and_leaves_input_alone():
    X, _ = _three_shapes(seed=4)
    before = X.copy()
    a = TimeSeriesKMeans(3, random_state=7, n_init=2).fit(X)
    b = TimeSeriesKMeans(3, random_state=7, n_init=2).fit(X)
    assert a.labels_.tolist() == b.labels_.tolist()
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_
    np.testing.assert_array_equal(X, before)


def test_kmeans_on_ragged_input_has_centres_of_the_longest_length():
    X, y = _three_shapes(N=12, n=40, seed=5)
    ragged = [x[: 40 - (k % 4) * 3] for k, x in enumerate(X)]
    km = TimeSeriesKMeans(3, random_state=0, n_init=2).fit(ragged)
    assert km.cluster_centers_.shape == (3, 40, 1)
    assert _ari(km.labels_, y) == 1.0
    medoids = TimeSeriesKMeans(3, averaging="medoid", random_state=0, n_init=2).fit(ragged)
    assert _ari(medoids.labels_, y) == 1.0
    assert all(any(np.array_equal(c, r[:, None]) for r in ragged)
               for c in medoids.cluster_centers_)
    with pytest.raises(ValueError, match="averaging='mean'"):
        TimeSeriesKMeans(3, metric="euclidean").fit(ragged)


def test_kmeans_multivariate():
    X, y = _three_shapes(N=12, seed=6)
    X3 = np.stack([X, -X], axis=2)
    km = TimeSeriesKMeans(3, random_state=0, n_init=2).fit(X3)
    assert km.cluster_centers_.shape == (3, 40, 2)
    assert _ari(km.labels_, y) == 1.0


def test_kmeans_refills_an_empty_cluster():
    X, _ = _three_shapes(N=9, seed=7)
    init = np.stack([X[0], X[1], np.full(40, 1e3)])  # nothing is near the third centre
    km = TimeSeriesKMeans(3, init=init, max_iter=5).fit(X)
    assert sorted(set(km.labels_.tolist())) == [0, 1, 2]


def test_kmeans_clone_and_params():
    from sklearn.base import clone, is_classifier

    km = TimeSeriesKMeans(4, metric="softdtw", metric_params={"gamma": 0.5}, random_state=3)
    copy = clone(km)
    assert copy.get_params() == km.get_params()
    assert copy.set_params(n_clusters=2).n_clusters == 2
    assert getattr(km, "_estimator_type", "clusterer") == "clusterer" and not is_classifier(km)


@pytest.mark.parametrize("kwargs,match", [
    ({"n_clusters": 0}, "n_clusters"), ({"metric": "manhattan"}, "metric"),
    ({"averaging": "median"}, "averaging"), ({"n_init": 0}, "n_init"),
    ({"max_iter": 0}, "max_iter"), ({"tol": -1.0}, "tol"), ({"init": "pam"}, "init"),
    ({"metric_params": {"gamma": 1.0}}, "metric_params"),
    ({"averaging_params": {"foo": 1}}, "averaging_params"), ({"n_jobs": 0}, "n_jobs"),
    ({"init": np.zeros((2, 40))}, "init"), ({"progress": 1}, "progress"),
    ({"n_clusters": 30}, "n_clusters"),
])
def test_kmeans_refuses_bad_input_by_name(kwargs, match):
    X, _ = _three_shapes()
    with pytest.raises(ValueError, match=match):
        TimeSeriesKMeans(**{"n_clusters": 3, **kwargs}).fit(X)


def test_kmeans_refuses_bad_data_by_name():
    X, _ = _three_shapes(N=6)
    bad = X.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"X\[2\]"):
        TimeSeriesKMeans(2).fit(bad)
    with pytest.raises(ValueError, match="X"):
        TimeSeriesKMeans(2).fit([])
    km = TimeSeriesKMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        km.predict(np.zeros((2, 40, 2)))
    with pytest.raises(ValueError, match="fit"):
        TimeSeriesKMeans(2).predict(X)


def test_kmeans_under_an_elastic_metric():
    elastic = pytest.importorskip("mmalign.warping.elastic")
    X, y = _three_shapes(N=12, seed=8)
    metric = next(m for m in ("msm", "erp", "twe") if m in elastic.METRICS)
    km = TimeSeriesKMeans(3, metric=metric, random_state=0, n_init=2).fit(X)
    assert _ari(km.labels_, y) == 1.0
    expected = elastic.cdist(list(X), list(km.cluster_centers_), metric=metric)
    np.testing.assert_allclose(km.transform(X), expected)


# ----------------------------------------------------------------------------- k-medoids
def _naive_pam(D, medoids):
    """PAM's SWAP written plainly: try every (medoid, non-medoid) swap on the full objective,
    take the best while it lowers the objective."""
    total = lambda m: D[:, list(m)].min(axis=1).sum()  # noqa: E731
    medoids = list(medoids)
    while True:
        swaps = [medoids[:s] + [h] + medoids[s + 1:] for s in range(len(medoids))
                 for h in range(len(D)) if h not in medoids]
        best = min(swaps, key=total)
        if total(best) >= total(medoids) - 1e-12 * total(medoids):
            return medoids, total(medoids)
        medoids = best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pam_equals_a_naive_pam_and_is_swap_optimal(seed):
    from mmalign.clustering import TimeSeriesKMedoids

    rng = np.random.default_rng(seed)
    X, _ = _three_shapes(N=10, n=20, seed=seed)
    X = X + 0.5 * rng.standard_normal(X.shape)  # blur the clusters: local optima exist
    D = mmalign.cdist_dtw(X)
    for init in (rng.choice(10, 3, replace=False), [0, 1, 2], [7, 8, 9]):
        km = TimeSeriesKMedoids(3, init=np.asarray(init)).fit(X)
        medoids, objective = _naive_pam(D, list(init))
        assert km.medoid_indices_.tolist() == medoids
        assert km.inertia_ == pytest.approx(objective, rel=1e-12)
        assert km.labels_.tolist() == np.argmin(D[:, medoids], axis=1).tolist()
    best = min(itertools.combinations(range(10), 3), key=lambda m: D[:, list(m)].min(1).sum())
    build = TimeSeriesKMedoids(3, init="build").fit(X)
    assert build.inertia_ >= D[:, list(best)].min(axis=1).sum() * (1 - 1e-12)


def test_kmedoids_alternate_and_pam_on_clear_clusters_and_ragged_input():
    from mmalign.clustering import TimeSeriesKMedoids

    X, y = _three_shapes(N=15, seed=9)
    ragged = [x[: 40 - (k % 3) * 4] for k, x in enumerate(X)]
    for method in ("pam", "alternate"):
        km = TimeSeriesKMedoids(3, method=method, random_state=0).fit(ragged)
        assert _ari(km.labels_, y) == 1.0
        assert km.predict(ragged).tolist() == km.labels_.tolist()
        assert [len(c) for c in km.cluster_centers_] == [len(ragged[i])
                                                          for i in km.medoid_indices_]
    pam = TimeSeriesKMedoids(3, random_state=0).fit(ragged)
    alt = TimeSeriesKMedoids(3, method="alternate", random_state=0).fit(ragged)
    assert pam.inertia_ <= alt.inertia_ + 1e-12


def test_kmedoids_under_an_elastic_metric_uses_its_matrix():
    elastic = pytest.importorskip("mmalign.warping.elastic")
    from mmalign.clustering import TimeSeriesKMedoids

    X, _ = _three_shapes(N=9, n=20, seed=10)
    metric = next(m for m in ("msm", "erp", "twe") if m in elastic.METRICS)
    D = elastic.cdist(list(X), metric=metric)
    km = TimeSeriesKMedoids(3, metric=metric, init="build").fit(X)
    assert km.inertia_ == pytest.approx(D[:, km.medoid_indices_].min(axis=1).sum())


@pytest.mark.parametrize("kwargs,match", [
    ({"method": "clara"}, "method"), ({"init": "heuristic"}, "init"),
    ({"init": [0, 0, 1]}, "init"), ({"max_iter": 0}, "max_iter"), ({"metric": "l1"}, "metric"),
    ({"metric_params": {"radius": -1}}, "radius"), ({"n_clusters": 0}, "n_clusters"),
])
def test_kmedoids_refuses_bad_input_by_name(kwargs, match):
    from mmalign.clustering import TimeSeriesKMedoids

    X, _ = _three_shapes(N=9)
    with pytest.raises(ValueError, match=match):
        TimeSeriesKMedoids(**{"n_clusters": 3, **kwargs}).fit(X)


# ----------------------------------------------------------------------------- k-shape
def _sbd_by_shifts(x, y):
    """1 - max over every shift of sum(x[t] * y[t - s]) / (|x| |y|), without FFT."""
    n = len(x)
    best = max(np.sum(x[max(s, 0):n + min(s, 0)] * y[max(-s, 0):n - max(s, 0)])
               for s in range(-(n - 1), n))
    return 1 - best / (np.linalg.norm(x) * np.linalg.norm(y))


def test_sbd_equals_the_definition_and_kshape_centres_are_shape_extraction():
    from mmalign.clustering.kshape import sbd, shape_extraction, z_normalize

    X, _ = _three_shapes(N=6, n=30, seed=11)
    Z = z_normalize(np.stack([X, np.roll(X, 3, axis=1)], axis=2))
    expected = np.array([[_sbd_by_shifts(a, b) for b in Z] for a in Z])
    np.testing.assert_allclose(sbd(Z), expected, atol=1e-12)
    ks = mmalign.TimeSeriesKShape(2, random_state=0).fit(Z)
    centres = ks.cluster_centers_
    np.testing.assert_allclose(centres.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(centres.std(axis=1), 1, atol=1e-12)
    D = sbd(Z, centres)
    assert ks.labels_.tolist() == np.argmin(D, axis=1).tolist()
    assert ks.inertia_ == pytest.approx(np.mean(D[np.arange(6), ks.labels_] ** 2), rel=1e-12)
    # one more shape extraction from the converged centres changes the inertia by < tol
    # or k-shape would have gone on
    assert all(shape_extraction(Z[ks.labels_ == c], centres[c]).shape == (30, 2)
               for c in range(2))


def test_kshape_is_shift_invariant_and_deterministic():
    X, y = _three_shapes(N=18, n=60, seed=12)
    shifted = np.array([np.roll(x, 5 * (k % 3)) for k, x in enumerate(X)])
    a = mmalign.TimeSeriesKShape(3, n_init=3, random_state=0).fit(shifted)
    b = mmalign.TimeSeriesKShape(3, n_init=3, random_state=0).fit(shifted)
    assert a.labels_.tolist() == b.labels_.tolist() and a.inertia_ == b.inertia_
    assert _ari(a.labels_, y) == 1.0
    assert a.predict(shifted).tolist() == a.labels_.tolist()
    with pytest.raises(ValueError, match="one length"):
        mmalign.TimeSeriesKShape(2).fit([X[0], X[1][:30], X[2]])
    with pytest.raises(ValueError, match="init"):
        mmalign.TimeSeriesKShape(3, init=np.zeros((3, 10))).fit(X)


# ----------------------------------------------------------------------------- DBA kernels
@pytest.mark.parametrize("N,L,m,d,radius", [(40, 30, 25, 1, None), (33, 20, 20, 3, 3),
                                            (5, 12, 17, 2, 2)])
def test_lane_dba_sums_equal_the_one_pair_kernel(N, L, m, d, radius):
    from mmalign.warping._dba_kernels import LANES, dba_sums, dba_sums_lanes
    from mmalign.warping.windows import resolve_window

    rng = np.random.default_rng(N)
    Y = np.round(np.cumsum(rng.standard_normal((N, m, d)), axis=1), 1)  # ties in the DP
    z = np.round(np.cumsum(rng.standard_normal((L, d)), axis=0), 1)
    win = resolve_window(L, m, radius=radius)
    yrts = np.ascontiguousarray(Y[:, ::-1, :].transpose(0, 2, 1))
    costs, sums, counts = dba_sums(np.ascontiguousarray(z.T), yrts, Y, win.lo, win.hi, 0, 0)
    P = np.concatenate([Y, np.repeat(Y[:1], -N % LANES, axis=0)])
    yl = np.ascontiguousarray(P.reshape(-1, LANES, m, d).transpose(0, 2, 3, 1))
    c2, s2, n2 = (np.empty((len(yl), LANES)), np.zeros((len(yl), LANES, L, d)),
                  np.zeros((len(yl), LANES, L)))
    for b in range(len(yl)):
        dba_sums_lanes(z, yl[b], win.lo, win.hi, c2[b], s2[b], n2[b])
    np.testing.assert_array_equal(c2.ravel()[:N], costs)  # bit-identical accumulated costs
    np.testing.assert_array_equal(n2.reshape(-1, L)[:N], counts)  # the same paths
    np.testing.assert_allclose(s2.reshape(-1, L, d)[:N], sums, rtol=1e-13, atol=1e-12)
    expected = [mmalign.dtw(z, y, radius=radius) ** 2 for y in Y]
    np.testing.assert_allclose(costs, expected, rtol=1e-12)
