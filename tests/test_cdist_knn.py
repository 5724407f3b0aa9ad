"""Pairwise matrices and the nearest-neighbour classifier: exactly brute force."""

import numpy as np
import pytest

import mmalign


def brute_cdist(X, Y, **kw):
    return np.array([[mmalign.dtw(a, b, **kw) for b in Y] for a in X])


def test_cdist_routes_agree_with_pairwise_dtw():
    rng = np.random.default_rng(0)
    # 40 equal-length series (the lane kernel) plus a few odd lengths (the one-pair kernel)
    X = list(rng.standard_normal((40, 20, 2))) + [rng.standard_normal((n, 2)) for n in (7, 33)]
    for kw in ({}, {"radius": 2}, {"metric": "cityblock"}, {"metric": "euclidean", "window": 0.2},
               {"metric": "cosine"}):
        expected = brute_cdist(X, X, **kw)
        np.fill_diagonal(expected, 0.0)
        got = mmalign.cdist_dtw(X, **kw)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("chunk_blocks", [1, 3])
def test_lane_groups_in_chunks_give_the_unchunked_matrix(monkeypatch, chunk_blocks):
    from mmalign.warping import cdist as module

    rng = np.random.default_rng(5)
    X = [rng.standard_normal((20, 2)) for _ in range(30)]  # 435 pairs of one length: lane groups
    Y = [rng.standard_normal((17, 2)) for _ in range(11)]
    whole = mmalign.cdist_dtw(X), mmalign.cdist_dtw(X, Y, radius=4)
    per_block = module.LANES * (20 + 20) * 2 * 8 * 2
    monkeypatch.setattr(module, "LANE_CHUNK_BYTES", chunk_blocks * per_block)
    chunked = mmalign.cdist_dtw(X), mmalign.cdist_dtw(X, Y, radius=4)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])
    assert whole[0][3, 7] == pytest.approx(mmalign.dtw(X[3], X[7]), rel=1e-12)


def test_cdist_two_sets_other_step_pattern_and_threads():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((9, 12)), rng.standard_normal((4, 15))
    expected = brute_cdist(X, Y, step_pattern="symmetric2")
    np.testing.assert_allclose(mmalign.cdist_dtw(X, Y, step_pattern="symmetric2"), expected)
    np.testing.assert_array_equal(mmalign.cdist_dtw(X, Y, n_jobs=1), mmalign.cdist_dtw(X, Y))


def test_cdist_bad_input():
    with pytest.raises(ValueError, match="X holds no sequences"):
        mmalign.cdist_dtw([])
    with pytest.raises(ValueError, match=r"X\[1\]"):
        mmalign.cdist_dtw([np.zeros(3), np.array([1.0, np.nan])])
    with pytest.raises(ValueError, match=r"X\[1\] has 3 features"):
        mmalign.cdist_dtw([np.zeros((3, 2)), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="X and Y have different numbers of features"):
        mmalign.cdist_dtw(np.zeros((2, 3, 2)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="n_jobs"):
        mmalign.cdist_dtw(np.zeros((2, 3)), n_jobs=0)
    with pytest.raises(ValueError, match="X must be"):
        mmalign.cdist_dtw(np.zeros(3))
    with pytest.raises(ValueError, match="mask"):
        mmalign.cdist_dtw([np.zeros(3), np.zeros(4)], mask=np.ones((3, 3), bool))


def brute_kneighbors(Xte, Xtr, k, **kw):
    D = mmalign.cdist_dtw(Xte, Xtr, **kw)
    order = np.argsort(D, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(D, order, axis=1), order


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("kw", [{}, {"radius": 3}, {"window": 0.1, "metric": "cityblock"}])
def test_kneighbors_equals_brute_force(k, kw):
    rng = np.random.default_rng(k)
    Xtr = rng.standard_normal((80, 40, 2)).cumsum(axis=1)
    Xtr[10] = Xtr[3]  # exact ties must go to the lower index
    ytr = rng.integers(0, 3, 80)
    Xte = np.concatenate([rng.standard_normal((20, 40, 2)).cumsum(axis=1), Xtr[[3, 50]]])
    clf = mmalign.KNeighborsDTW(k, **kw).fit(Xtr, ytr)
    dist, ind = clf.kneighbors(Xte)
    bd, bi = brute_kneighbors(Xte, Xtr, k, **kw)
    np.testing.assert_array_equal(ind, bi)
    np.testing.assert_array_equal(dist, bd)
    assert clf.n_dtw_computed_ < Xte.shape[0] * Xtr.shape[0]  # the cascade pruned something
    plain = mmalign.KNeighborsDTW(k, lower_bounds=False, **kw).fit(Xtr, ytr)
    np.testing.assert_array_equal(plain.predict(Xte), clf.predict(Xte))


def test_kneighbors_ragged_falls_back_to_brute_force():
    rng = np.random.default_rng(3)
    Xtr = [rng.standard_normal(int(n)) for n in rng.integers(10, 30, 25)]
    ytr = np.arange(25) % 2
    Xte = [rng.standard_normal(int(n)) for n in rng.integers(10, 30, 6)]
    clf = mmalign.KNeighborsDTW(3).fit(Xtr, ytr)
    dist, ind = clf.kneighbors(Xte)
    bd, bi = brute_kneighbors(Xte, Xtr, 3)
    np.testing.assert_array_equal(ind, bi)
    np.testing.assert_array_equal(dist, bd)


def test_knn_predict_vote_and_errors():
    X = np.array([[0.0, 0, 0], [0.1, 0, 0], [5.0, 5, 5], [5.1, 5, 5]])
    clf = mmalign.KNeighborsDTW(1).fit(X, ["a", "a", "b", "b"])
    assert clf.predict(np.array([[4.9, 5, 5], [0.0, 0.1, 0]])).tolist() == ["b", "a"]
    np.testing.assert_array_equal(clf.predict_proba(np.array([[4.9, 5, 5]])), [[0.0, 1.0]])
    # a 2-2 vote goes to the smaller class
    assert mmalign.KNeighborsDTW(4).fit(X, [1, 1, 0, 0]).predict(X[:1]).tolist() == [0]
    with pytest.raises(ValueError, match="not fitted"):
        mmalign.KNeighborsDTW().predict(X)
    with pytest.raises(ValueError, match="n_neighbors"):
        mmalign.KNeighborsDTW(0).fit(X, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="exceeds"):
        mmalign.KNeighborsDTW(5).fit(X, [0, 0, 1, 1]).kneighbors(X)
    with pytest.raises(ValueError, match="y must have one label"):
        mmalign.KNeighborsDTW().fit(X, [0, 1])


def test_knn_is_a_scikit_learn_estimator():
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 1, (15, 20)), rng.normal(3, 1, (15, 20))])
    y = np.r_[np.zeros(15), np.ones(15)]
    clf = mmalign.KNeighborsDTW(1, radius=2)
    assert clone(clf).get_params()["radius"] == 2
    assert cross_val_score(clf, X, y, cv=3).mean() > 0.9


def test_inputs_are_never_modified():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((12, 10, 2)).astype(np.float32)
    ragged = [rng.standard_normal(n) for n in (5, 8, 8)]
    X_before, ragged_before = X.copy(), [r.copy() for r in ragged]
    mmalign.cdist_dtw(X, metric="cosine")
    mmalign.cdist_dtw(ragged)
    clf = mmalign.KNeighborsDTW(2, radius=1).fit(X, np.arange(12) % 2)
    clf.predict(X)
    np.testing.assert_array_equal(X, X_before)
    for r, b in zip(ragged, ragged_before):
        np.testing.assert_array_equal(r, b)
    np.testing.assert_allclose(  # float32 input, float64 results
        mmalign.cdist_dtw(X), mmalign.cdist_dtw(X.astype(np.float64)), rtol=1e-12)
