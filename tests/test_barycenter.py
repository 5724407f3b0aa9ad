"""DBA and soft-DTW barycenters: against tslearn, finite differences and exact cases."""

import numpy as np
import pytest

import mmalign
from mmalign.warping.barycenter import _soft_objective

tslearn_barycenters = pytest.importorskip("tslearn.barycenters")


def _bumps(rng, n_series=6, lengths=(40,), d=1, noise=0.05):
    """Gaussian bumps at random times (a feature DTW can align), plus noise."""
    out = []
    for _ in range(n_series):
        n = int(rng.choice(lengths))
        t = np.linspace(0, 1, n)[:, None]
        centre = rng.uniform(0.3, 0.7)
        x = np.exp(-((t - centre) / 0.1) ** 2) * rng.uniform(0.8, 1.2, size=d)
        out.append(x + noise * rng.standard_normal((n, d)))
    return out


def _dba_cost(z, X, weights=None, radius=None):
    weights = np.ones(len(X)) if weights is None else weights
    return sum(w * mmalign.dtw(z, x, radius=radius) ** 2 for w, x in zip(weights, X))


def _soft_cost(z, X, gamma, weights=None):
    weights = np.ones(len(X)) if weights is None else weights
    return sum(w * mmalign.soft_dtw(z, x, gamma=gamma) for w, x in zip(weights, X))


def _padded(X):
    """tslearn's ragged form: NaN-padded (N, max_n, d)."""
    from tslearn.utils import to_time_series_dataset

    return to_time_series_dataset(X)


@pytest.mark.parametrize("lengths,d", [((40,), 1), ((40,), 3), ((30, 37, 45), 2)])
def test_dba_equals_tslearn_from_the_same_init(lengths, d):
    rng = np.random.default_rng(len(lengths) + d)
    X = _bumps(rng, lengths=lengths, d=d)
    init = X[2]
    weights = rng.uniform(0.5, 2.0, len(X))
    for w in (None, weights):
        ours, history = mmalign.dba(X, init=init, n_iter=10, tol=0.0, weights=w,
                                    return_history=True)
        theirs = tslearn_barycenters.dtw_barycenter_averaging(
            _padded(X), init_barycenter=init, max_iter=len(history) - 1, tol=0.0, weights=w)
        assert ours.shape == theirs.shape == init.shape
        # same alignments, same means: equal barycenters, the same cost
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
        assert history[-1] == pytest.approx(_dba_cost(theirs, X, w), rel=1e-9)


def test_dba_radius_equals_tslearn():
    rng = np.random.default_rng(7)
    X = _bumps(rng, lengths=(40,), d=2)
    ours = mmalign.dba(X, init=X[0], n_iter=5, tol=0.0, radius=4)
    theirs = tslearn_barycenters.dtw_barycenter_averaging(
        np.stack(X), init_barycenter=X[0], max_iter=5, tol=0.0,
        # tslearn's DBA hands metric_params to its numba kernel: the constraint by code
        metric_params={"global_constraint": 2, "sakoe_chiba_radius": 4})
    assert _dba_cost(ours, X, radius=4) <= _dba_cost(theirs, X, radius=4) * (1 + 1e-9)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_soft_barycenter_reaches_tslearns_objective(gamma):
    rng = np.random.default_rng(int(10 * gamma))
    X = _bumps(rng, n_series=5, lengths=(30, 34, 38), d=2)
    init = mmalign.dba(X, n_iter=0)                     # the medoid, for both
    weights = rng.uniform(0.5, 2.0, len(X))
    for w in (None, weights):
        ours, history = mmalign.soft_dtw_barycenter(X, gamma=gamma, init=init, weights=w,
                                                    max_iter=100, tol=1e-6,
                                                    return_history=True)
        theirs = tslearn_barycenters.softdtw_barycenter(_padded(X), gamma=gamma, init=init,
                                                        weights=w, max_iter=100, tol=1e-6)
        mine, ref = _soft_cost(ours, X, gamma, w), _soft_cost(theirs, X, gamma, w)
        assert history[-1] == pytest.approx(mine, rel=1e-9, abs=1e-9)
        assert mine <= ref + 1e-3 * abs(ref)
        assert history[-1] < history[0]


def test_soft_barycenter_gradient_equals_finite_differences():
    rng = np.random.default_rng(3)
    X = [rng.standard_normal((n, 2)) for n in (9, 12, 7)]
    w = np.array([0.5, 2.0, 1.0])
    z = rng.standard_normal((10, 2))
    for radius in (None, 3):
        value, grad = _soft_objective(z, X, w, 0.7, radius)
        numeric = np.zeros_like(z)
        h = 1e-6
        for idx in np.ndindex(*z.shape):
            step = np.zeros_like(z)
            step[idx] = h
            numeric[idx] = (_soft_objective(z + step, X, w, 0.7, radius)[0]
                            - _soft_objective(z - step, X, w, 0.7, radius)[0]) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)
        assert value == pytest.approx(
            sum(wk * mmalign.soft_dtw(z, x, gamma=0.7, radius=radius) for wk, x in zip(w, X)))


@pytest.mark.parametrize("seed", range(4))
def test_dba_cost_history_is_non_increasing(seed):
    rng = np.random.default_rng(seed)
    X = _bumps(rng, n_series=8, lengths=(25, 30, 35), d=2, noise=0.2)
    w = rng.uniform(0, 2, len(X)) if seed % 2 else None
    for init in (None, "random"):
        z, history = mmalign.dba(X, init=init, random_state=seed, weights=w, tol=0.0,
                                 radius=5 if seed == 3 else None, return_history=True)
        assert np.all(np.diff(history) <= 0)
        assert history[-1] == pytest.approx(
            _dba_cost(z, X, w, radius=5 if seed == 3 else None), rel=1e-12)
        assert history[-1] < history[0]


def test_tol_stops_early():
    X = _bumps(np.random.default_rng(5), n_series=8, noise=0.2)
    _, loose = mmalign.dba(X, tol=0.5, return_history=True)
    _, tight = mmalign.dba(X, tol=0.0, n_iter=30, return_history=True)
    assert len(loose) == 2 < len(tight)


def test_barycenter_of_copies_is_the_series():
    x = np.sin(np.linspace(0, 5, 33))[:, None] * np.array([1.0, -2.0])
    X = [x] * 4
    z, history = mmalign.dba(X, return_history=True)
    np.testing.assert_array_equal(z, x)
    assert history.tolist() == [0.0]
    np.testing.assert_allclose(mmalign.dba(X, init=x + 0.1 * np.cos(np.arange(33))[:, None]),
                               x, atol=1e-12)
    # soft-DTW's minimiser is not exactly x for gamma > 0, but tends to it as gamma -> 0
    gaps = [np.abs(mmalign.soft_dtw_barycenter(X, gamma=g) - x).max() for g in (1.0, 0.01)]
    assert gaps[1] < 0.05 and gaps[1] < gaps[0]


def test_ragged_lists_and_arrays():
    rng = np.random.default_rng(11)
    X = _bumps(rng, n_series=5, lengths=(20, 26, 31), d=1)
    medoid = int(np.argmin((mmalign.cdist_dtw(X) ** 2).sum(1)))
    z = mmalign.dba(X)
    assert z.shape == (len(X[medoid]), 1)
    np.testing.assert_array_equal(mmalign.dba(X, n_iter=0), X[medoid])
    assert mmalign.soft_dtw_barycenter(X, max_iter=5).shape == (len(X[medoid]), 1)
    assert mmalign.dba(X, init=np.zeros(17)).shape == (17, 1)
    # univariate lists, (N, n) and (N, n, 1) arrays are the same collection
    same = [x[:20, 0] for x in X]
    a = mmalign.dba(same)
    np.testing.assert_array_equal(a, mmalign.dba(np.stack(same)))
    np.testing.assert_array_equal(a, mmalign.dba(np.stack(same)[:, :, None]))
    np.testing.assert_array_equal(mmalign.soft_dtw_barycenter(same, max_iter=3),
                                  mmalign.soft_dtw_barycenter(np.stack(same), max_iter=3))


def test_default_soft_init_is_the_resampled_mean():
    X = [np.linspace(0, 1, 5), np.linspace(0, 1, 9), np.linspace(0, 1, 9)]
    z = mmalign.soft_dtw_barycenter(X, max_iter=0)
    np.testing.assert_allclose(z[:, 0], np.linspace(0, 1, 9))
    z = mmalign.soft_dtw_barycenter(X, weights=[1, 0, 3], max_iter=0)
    np.testing.assert_allclose(z[:, 0], np.linspace(0, 1, 9))


def test_weights():
    rng = np.random.default_rng(2)
    X = _bumps(rng, n_series=3, lengths=(30,), noise=0.2)
    repeated = [X[0], X[1], X[1], X[2], X[2], X[2]]
    np.testing.assert_allclose(mmalign.dba(X, init=X[0], weights=[1, 2, 3]),
                               mmalign.dba(repeated, init=X[0]), atol=1e-12)
    np.testing.assert_allclose(
        mmalign.soft_dtw_barycenter(X, init=X[0], weights=[1, 2, 3], max_iter=20),
        mmalign.soft_dtw_barycenter(repeated, init=X[0], max_iter=20), atol=1e-6)
    # a zero weight drops a series; scaling all weights changes nothing
    np.testing.assert_array_equal(mmalign.dba(X, init=X[1], weights=[0, 1, 0]), X[1])
    np.testing.assert_allclose(mmalign.dba(X, weights=[1, 2, 3]),
                               mmalign.dba(X, weights=[10, 20, 30]), atol=1e-12)


def test_inputs_are_not_modified_and_float32_works():
    rng = np.random.default_rng(4)
    X = [x.astype(np.float32) for x in _bumps(rng, n_series=3)]
    init = X[0].copy()
    copies = [x.copy() for x in X]
    assert mmalign.dba(X, init=init).dtype == np.float64
    assert mmalign.soft_dtw_barycenter(X, init=init, max_iter=3).dtype == np.float64
    for x, c in zip(X, copies):
        np.testing.assert_array_equal(x, c)
    np.testing.assert_array_equal(init, X[0])


GOOD = [np.zeros((5, 2)), np.ones((6, 2))]


@pytest.mark.parametrize("func", ["dba", "soft_dtw_barycenter"])
@pytest.mark.parametrize("kwargs,match", [
    (dict(X=[]), "X is empty"),
    (dict(X=np.zeros((0, 5, 1))), "X is empty"),
    (dict(X=[np.zeros((5, 2)), np.zeros((0, 2))]), r"X\[1\] is empty"),
    (dict(X=[np.zeros((5, 2)), np.array([[0.0, np.nan]] * 4)]), r"X\[1\] contains NaN"),
    (dict(X=[np.zeros((5, 2)), np.zeros((5, 3))]), r"X\[1\] has 3 features"),
    (dict(X=np.zeros(5)), "X must be"),
    (dict(X=5), "X must be"),
    (dict(X=GOOD, weights=[1, -1]), "weights must be non-negative"),
    (dict(X=GOOD, weights=[1, 1, 1]), "weights must have shape"),
    (dict(X=GOOD, weights=[0, 0]), "weights are all zero"),
    (dict(X=GOOD, weights=[1, np.nan]), "weights contains NaN"),
    (dict(X=GOOD, init=np.zeros((4, 3))), "init has 3 features"),
    (dict(X=GOOD, init=np.array([[np.inf, 0.0]])), "init contains NaN"),
    (dict(X=GOOD, init="mean"), "init must be"),
    (dict(X=GOOD, tol=-1.0), "tol"),
    (dict(X=GOOD, radius=-1), "radius"),
])
def test_bad_input_raises_value_error_naming_it(func, kwargs, match):
    with pytest.raises(ValueError, match=match):
        getattr(mmalign, func)(**kwargs)


@pytest.mark.parametrize("gamma", [0.0, -1.0, np.nan, "1"])
def test_bad_gamma(gamma):
    with pytest.raises(ValueError, match="gamma"):
        mmalign.soft_dtw_barycenter(GOOD, gamma=gamma)


def test_bad_iteration_counts():
    with pytest.raises(ValueError, match="n_iter"):
        mmalign.dba(GOOD, n_iter=-1)
    with pytest.raises(ValueError, match="max_iter"):
        mmalign.soft_dtw_barycenter(GOOD, max_iter=1.5)
