"""Closed-form CCA and multi-set CCA against scikit-learn and known structure."""

import numpy as np
import pytest
import torch

import mmalign
from mmalign.projection import cca, mcca


def two_views(seed, n=400, k=3, dx=6, dy=4, noise=0.5):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    X = z @ rng.standard_normal((k, dx)) + noise * rng.standard_normal((n, dx))
    Y = z @ rng.standard_normal((k, dy)) + noise * rng.standard_normal((n, dy))
    return X, Y


def test_correlations_equal_scikit_learn_where_nipals_converges():
    from sklearn.cross_decomposition import CCA as SklearnCCA

    X, Y = two_views(0)
    wx, wy, rho, mx, my = cca(X, Y, 3)
    reference = SklearnCCA(3, max_iter=5000, tol=1e-12).fit(X, Y)
    u, v = reference.transform(X, Y)
    theirs = np.array([np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(3)])
    np.testing.assert_allclose(rho, np.sort(theirs)[::-1], rtol=1e-6)


def test_variates_have_unit_variance_are_uncorrelated_and_ordered():
    X, Y = two_views(1)
    wx, wy, rho, mx, my = cca(X, Y)
    u, v = (X - mx) @ wx, (Y - my) @ wy
    np.testing.assert_allclose(np.cov(u.T), np.eye(u.shape[1]), atol=1e-10)
    np.testing.assert_allclose(np.cov(v.T), np.eye(v.shape[1]), atol=1e-10)
    cross = (u.T @ v) / (len(u) - 1)
    np.testing.assert_allclose(cross, np.diag(rho), atol=1e-10)
    assert (np.diff(rho) <= 1e-12).all() and rho[0] <= 1.0


def test_rank_deficient_views_with_more_features_than_rows():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((30, 2))
    X = z @ rng.standard_normal((2, 80))  # d = 80 > n = 30, rank 2
    Y = np.c_[z[:, ::-1], rng.standard_normal((30, 1))]
    wx, wy, rho, mx, my = cca(X, Y)
    assert len(rho) == 2 and np.allclose(rho, 1.0, atol=1e-8)
    u, v = (X - mx) @ wx, (Y - my) @ wy
    np.testing.assert_allclose(np.cov(u.T), np.eye(2), atol=1e-8)
    assert np.isfinite(u).all() and np.isfinite(v).all()


def test_ridge_keeps_full_rank_views_finite():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((20, 50)), rng.standard_normal((20, 40))
    wx, wy, rho, _, _ = cca(X, Y, 5, reg=1.0)
    assert np.isfinite(wx).all() and (rho < 1.0).all()


def test_estimator_and_torch_tensors(tmp_path):
    X, Y = two_views(4)
    model = mmalign.CCA(n_components=2).fit(X, Y)
    u, v = model.transform(X, Y)
    np.testing.assert_allclose(np.corrcoef(u[:, 0], v[:, 0])[0, 1], model.correlations_[0],
                               rtol=1e-10)
    model.save(tmp_path / "cca.npz")
    loaded = mmalign.CCA.load(tmp_path / "cca.npz")
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    with pytest.raises(ValueError, match="not a subclass of Aligner"):  # a transformer, not an aligner
        mmalign.Aligner.load(tmp_path / "cca.npz")
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    wx, wy, rho, mx, my = cca(Xt, Yt, 2)
    assert isinstance(rho, torch.Tensor)
    np.testing.assert_allclose(rho.numpy(), model.correlations_, rtol=1e-10)
    # a scikit-learn transformer, not an aligner
    assert not isinstance(model, mmalign.Aligner) and not hasattr(model, "align")
    u2, v2 = mmalign.CCA(n_components=2).fit_transform(X, Y)
    np.testing.assert_array_equal(u2, u)
    np.testing.assert_array_equal(v2, v)


def test_mcca_reduces_to_cca_for_two_views_and_finds_shared_directions():
    X, Y = two_views(5)
    weights, scores, means = mcca([X, Y], 3)
    _, _, rho, _, _ = cca(X, Y, 3)
    np.testing.assert_allclose(scores, 1.0 + rho, rtol=1e-8)  # eigenvalues of P_x + P_y
    rng = np.random.default_rng(6)
    z = rng.standard_normal((300, 1))
    views = [np.c_[z * s, rng.standard_normal((300, 3))] for s in (1.0, -2.0, 0.5, 4.0)]
    weights, scores, means = mcca(views, 1)
    variates = [(V - m) @ w for V, w, m in zip(views, weights, means)]
    for v in variates:
        assert abs(np.var(v, ddof=1) - 1.0) < 1e-10
        assert abs(abs(np.corrcoef(v[:, 0], z[:, 0])[0, 1]) - 1.0) < 1e-8
    assert scores[0] == pytest.approx(4.0, rel=1e-8)


def test_bad_input():
    X, Y = two_views(7)
    with pytest.raises(ValueError, match="same number of rows"):
        cca(X, Y[:-1])
    with pytest.raises(ValueError, match="X contains NaN"):
        cca(np.where(X > 2, np.nan, X), Y)
    with pytest.raises(ValueError, match="Y has no variance"):
        cca(X, np.ones_like(Y))
    with pytest.raises(ValueError, match="n_components"):
        cca(X, Y, 10)
    with pytest.raises(ValueError, match="reg"):
        cca(X, Y, reg=-1.0)
    with pytest.raises(ValueError, match="at least 2 observations"):
        cca(X[:1], Y[:1])
    with pytest.raises(ValueError, match="views"):
        mcca([X])
    with pytest.raises(ValueError, match="not fitted"):
        mmalign.CCA().transform(X)


def test_big_endian_views_give_the_native_answer():
    X, Y = two_views(8, n=60)
    big_x, big_y = X.astype(">f8"), Y.astype(">f8")
    for got, want in zip(cca(big_x, big_y, 2), cca(X, Y, 2)):
        np.testing.assert_array_equal(got, want)
    model = mmalign.CCA(n_components=2).fit(big_x, big_y)
    np.testing.assert_array_equal(model.transform(big_x), model.transform(X))
    _, scores, _ = mcca([big_x, Y.astype(">i8")], 1)
    np.testing.assert_array_equal(scores, mcca([X, Y.astype(np.int64)], 1)[1])
    deep = mmalign.DeepCCA(n_components=1, hidden=(4,), train={"max_epochs": 1, "batch_size": 60})
    assert deep.fit(big_x, big_y).transform(big_x).shape == (60, 1)


@pytest.mark.parametrize("scale", [2.0 ** 996, 2.0 ** -996, 1e300, 1e-300])
def test_values_at_the_extremes_give_the_scaled_answer(scale):
    """CCA is scale-invariant: the correlations stay, weights scale by 1 / s, means by s."""
    X, Y = two_views(9, n=80)
    wx, wy, rho, mx, my = cca(X, Y, 2)
    got = cca(X * scale, Y, 2)
    np.testing.assert_allclose(got[2], rho, rtol=1e-12)
    np.testing.assert_allclose(got[0] * scale, wx, rtol=1e-9)
    np.testing.assert_allclose(got[1], wy, rtol=1e-9)
    np.testing.assert_allclose(got[3] / scale, mx, rtol=1e-9, atol=1e-14)
    fitted = mmalign.CCA(n_components=2).fit(X * scale, Y * scale)
    np.testing.assert_allclose(fitted.correlations_, rho, rtol=1e-12)
    np.testing.assert_allclose(fitted.transform(X * scale), (X - mx) @ wx, rtol=1e-9, atol=1e-9)
    _, scores, _ = mcca([X * scale, Y, X[:, ::-1] * scale], 2)
    np.testing.assert_allclose(scores, mcca([X, Y, X[:, ::-1]], 2)[1], rtol=1e-12)


def test_ridge_is_in_the_units_of_the_data_at_any_scale():
    X, Y = two_views(10, n=50)
    scale = 2.0 ** 400  # reg * scale**2 must stay a float64
    _, _, rho, _, _ = cca(X, Y, 2, reg=0.5)
    np.testing.assert_allclose(cca(X * scale, Y * scale, 2, reg=0.5 * scale ** 2)[2], rho,
                               rtol=1e-12)
    # a ridge that dwarfs the covariance: the weights are those of reg * I
    wx, _, rho, _, _ = cca(X * 1e-300, Y, 1, reg=1e-6)
    assert np.isfinite(wx).all() and rho[0] < 1e-200
    np.testing.assert_allclose(np.linalg.norm(wx), 1e3, rtol=1e-6)


def test_weights_beyond_float64_are_refused_saying_why():
    X, Y = two_views(11, n=40)
    with pytest.raises(ValueError, match="X.*too small"):
        cca(X * 1e-320, Y)


def test_mcca_needs_a_sequence_of_views():
    X, Y = two_views(12, n=30)
    with pytest.raises(ValueError, match="views must be a sequence"):
        mcca(v for v in (X, Y))
    with pytest.raises(ValueError, match="views must be a sequence"):
        mcca(X)
