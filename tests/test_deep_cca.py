"""Deep CCA: loss values and gradients, the linear case against closed-form CCA,
a nonlinear case, input validation."""

import numpy as np
import pytest
import torch

import mmalign
from mmalign.nn.estimator import TorchEstimator
from mmalign.projection.deep_cca import (DeepCCA, DeepCCAModule, cca_loss, cnn_encoder, gru_encoder,
                                         mlp_encoder)


def _needs_train():
    pytest.importorskip("mmalign.nn.train")


def _exact_views(rho, B=40, seed=0):
    """hx, hy with Σxx = Σyy = I and Σxy = diag(rho) exactly."""
    k = len(rho)
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(B, 2 * k, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(A - A.mean(dim=0))
    Q = Q * np.sqrt(B - 1)
    r = torch.tensor(rho, dtype=torch.float64)
    return Q[:, :k], Q[:, :k] * r + Q[:, k:] * torch.sqrt(1 - r ** 2)


# ----------------------------------------------------------------------- the loss
def test_objectives_on_known_T():
    hx, hy = _exact_views([0.9, 0.5, 0.2])
    loss = lambda **kw: float(cca_loss(hx, hy, reg=0.0, **kw))
    assert loss(objective="trace") == pytest.approx(-1.6, abs=1e-9)
    assert loss(objective="trace", n_components=2) == pytest.approx(-1.4, abs=1e-9)
    assert loss(objective="sum_sq") == pytest.approx(-(0.81 + 0.25 + 0.04), abs=1e-9)
    assert loss(objective="frobenius") == pytest.approx(-np.sqrt(1.1), abs=1e-9)
    assert loss(objective="sum_sq", n_components=1) == pytest.approx(-0.81, abs=1e-9)
    # invariant to invertible linear maps of either view (CCA is)
    M = torch.tensor([[2.0, 0.3, 0.0], [0.0, 1.0, -1.0], [0.5, 0.0, 3.0]], dtype=torch.float64)
    assert float(cca_loss(hx @ M, hy - 5, reg=0.0)) == pytest.approx(-1.6, abs=1e-9)


def test_ridge_is_absolute():
    hx, hy = _exact_views([0.9, 0.5])
    # Σ = (1 + reg) I: every correlation shrinks by 1 / (1 + reg)
    assert float(cca_loss(hx, hy, reg=0.25)) == pytest.approx(-1.4 / 1.25, abs=1e-9)


@pytest.mark.parametrize("objective", ["trace", "sum_sq", "frobenius"])
def test_gradcheck(objective):
    g = torch.Generator().manual_seed(1)
    hx = torch.randn(12, 3, generator=g, dtype=torch.float64, requires_grad=True)
    hy = (hx.detach() @ torch.randn(3, 3, generator=g, dtype=torch.float64)
          + torch.randn(12, 3, generator=g, dtype=torch.float64)).requires_grad_(True)
    f = lambda a, b: cca_loss(a, b, objective=objective, reg=1e-3)
    assert torch.autograd.gradcheck(f, (hx, hy), eps=1e-6, atol=1e-6)
    f2 = lambda a, b: cca_loss(a, b, objective=objective, reg=1e-3, n_components=2)
    assert torch.autograd.gradcheck(f2, (hx, hy), eps=1e-6, atol=1e-6)


def _finite_grads(hx, hy, **kw):
    hx = hx.clone().requires_grad_(True)
    hy = hy.clone().requires_grad_(True)
    loss = cca_loss(hx, hy, **kw)
    loss.backward()
    return (torch.isfinite(loss).item() and torch.isfinite(hx.grad).all().item()
            and torch.isfinite(hy.grad).all().item())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("objective", ["trace", "sum_sq", "frobenius"])
def test_small_batch_and_coinciding_singular_values(dtype, objective):
    g = torch.Generator().manual_seed(2)
    small_x = torch.randn(3, 8, generator=g).to(dtype)
    small_y = torch.randn(3, 8, generator=g).to(dtype)
    assert _finite_grads(small_x, small_y, objective=objective)            # B < k
    assert _finite_grads(small_x[:2], small_y[:2], objective=objective)    # B = 2
    x = torch.randn(50, 4, generator=g).to(dtype)
    assert _finite_grads(x, x, objective=objective)                         # all σ = 1
    # exactly whitened views: Σxx = I, all σ equal
    hx, hy = _exact_views([0.5, 0.5, 0.5])
    assert _finite_grads(hx.to(dtype), hy.to(dtype), objective=objective)
    # reg = 0 with a rank-deficient batch: eigh fallback, still finite
    assert _finite_grads(small_x, small_y, objective=objective, reg=0.0)
    # an output that does not vary (σ = 0)
    assert _finite_grads(x, torch.zeros_like(x), objective=objective)


def test_loss_bad_input():
    h = torch.randn(10, 3)
    with pytest.raises(ValueError, match="hx"):
        cca_loss(h[:, 0], h)
    with pytest.raises(ValueError, match="hy"):
        cca_loss(h, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="rows"):
        cca_loss(h, h[:5])
    with pytest.raises(ValueError, match="objective"):
        cca_loss(h, h, objective="nuclear")
    with pytest.raises(ValueError, match="reg"):
        cca_loss(h, h, reg=-1.0)
    with pytest.raises(ValueError, match="n_components"):
        cca_loss(h, h, n_components=4)
    with pytest.raises(ValueError, match="eps"):
        cca_loss(h, h, eps=0.0)


def test_encoders_shapes():
    assert mlp_encoder(5, 2)(torch.zeros(7, 5)).shape == (7, 2)
    assert cnn_encoder(3, 4, hidden=8)(torch.zeros(2, 11, 3)).shape == (2, 4)
    assert gru_encoder(3, 4, hidden=8)(torch.zeros(2, 11, 3)).shape == (2, 4)
    with pytest.raises(ValueError, match="out_dim"):
        mlp_encoder(5, 0)


# ---------------------------------------------------------------------- the model
def _linear_views(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 2))
    X = z @ rng.standard_normal((2, 5)) + 0.7 * rng.standard_normal((n, 5))
    Y = z @ rng.standard_normal((2, 4)) + 0.7 * rng.standard_normal((n, 4))
    return X, Y


def test_linear_encoders_reach_linear_cca():
    _needs_train()
    X, Y = _linear_views(400, 0)
    _, _, rho, _, _ = mmalign.cca(X, Y, 2)
    torch.manual_seed(0)
    ex = torch.nn.Linear(5, 2, bias=False, dtype=torch.float64)
    ey = torch.nn.Linear(4, 2, bias=False, dtype=torch.float64)
    model = DeepCCA(ex, ey, n_components=2, reg=0.0,
                    train={"max_epochs": 400, "batch_size": 400, "lr": 3e-2}).fit(X, Y)
    assert model.correlations_.sum() == pytest.approx(rho.sum(), abs=1e-3)
    zx, zy = model.transform(X, Y)
    assert isinstance(zx, np.ndarray) and zx.shape == (400, 2)
    # unit variance, decorrelated, correlated as reported
    np.testing.assert_allclose(np.cov(zx.T), np.eye(2), atol=1e-8)
    np.testing.assert_allclose(np.diag(np.corrcoef(zx.T, zy.T)[:2, 2:]),
                               model.correlations_, atol=1e-8)
    zt = model.transform(torch.as_tensor(X))
    assert isinstance(zt, torch.Tensor)
    np.testing.assert_allclose(zt.numpy(), zx)


def test_nonlinear_beats_linear_cca_on_held_out():
    _needs_train()
    rng = np.random.default_rng(1)
    n = 1200
    z = rng.uniform(-1, 1, n)
    noise = rng.standard_normal((n, 2))
    X = np.column_stack([z ** 2, noise[:, 0]]) @ np.array([[1.0, 0.5], [-0.3, 1.0]])
    Y = np.column_stack([np.sin(2 * z), noise[:, 1]]) @ np.array([[1.0, 0.2], [0.4, 1.0]])
    X += 0.02 * rng.standard_normal(X.shape)
    Y += 0.02 * rng.standard_normal(Y.shape)
    tr, te = slice(0, 800), slice(800, None)
    lin = mmalign.CCA(n_components=1).fit(X[tr], Y[tr])
    a, b = lin.transform(X[te], Y[te])
    rho_lin = abs(np.corrcoef(a[:, 0], b[:, 0])[0, 1])
    model = DeepCCA(n_components=1, hidden=(32, 32),
                    train={"max_epochs": 300, "batch_size": 800, "lr": 1e-2, "seed": 0}
                    ).fit(X[tr], Y[tr])
    zx, zy = model.transform(X[te], Y[te])
    rho_deep = abs(np.corrcoef(zx[:, 0], zy[:, 0])[0, 1])
    assert rho_deep > rho_lin + 0.3, (rho_deep, rho_lin)
    assert rho_deep > 0.8


def test_sequence_encoders_fit():
    _needs_train()
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 6, 3)).astype(np.float32)
    Y = X[:, ::-1, :2] * 2 + 0.1 * rng.standard_normal((40, 6, 2)).astype(np.float32)
    torch.manual_seed(0)
    model = DeepCCA(cnn_encoder(3, 2, hidden=8), gru_encoder(2, 2, hidden=8),
                    train={"max_epochs": 3, "batch_size": 16}).fit(X, Y)
    zx, zy = model.transform(X, Y)
    assert zx.shape == zy.shape == (40, 2)
    assert np.isfinite(zx).all() and np.isfinite(zy).all()


def test_model_contract_and_bad_input():
    model = DeepCCA(x_dim=3, y_dim=2, n_components=1, hidden=(4,))
    # an estimator that owns a network, a transformer, not an aligner; __init__ builds nothing
    assert not isinstance(model, torch.nn.Module)
    assert not isinstance(model, mmalign.aligner.Aligner) and not hasattr(model, "align")
    assert isinstance(model, TorchEstimator) and isinstance(model, mmalign.aligner.TransformerMixin)
    assert not hasattr(model, "module_")
    assert model.get_params()["n_components"] == 1
    with pytest.raises(ValueError, match="not fitted"):
        model.transform(np.zeros((5, 3)))
    net = model._build_module()
    assert isinstance(net, DeepCCAModule) and model.module_ is net
    hx, hy = net(torch.zeros(5, 3), torch.zeros(5, 2))
    assert hx.shape == hy.shape == (5, 1)
    with pytest.raises(ValueError, match="no encoder for X"):
        DeepCCA()._build_module()
    X, Y = np.zeros((10, 3)), np.zeros((10, 2))
    _needs_train()
    with pytest.raises(ValueError, match="rows"):
        DeepCCA().fit(X, Y[:5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        DeepCCA().fit(bad, Y)
    with pytest.raises(ValueError, match="Y must have shape"):
        DeepCCA().fit(X, np.zeros((10, 2, 2)))
    with pytest.raises(ValueError, match="x_dim"):
        DeepCCA(x_dim=4).fit(X, Y)
    with pytest.raises(ValueError, match="objective"):
        DeepCCA(objective="nope").fit(X, Y)
    with pytest.raises(ValueError, match="n_components"):
        DeepCCA(n_components=0).fit(X, Y)
    with pytest.raises(ValueError, match="encoder_x"):
        DeepCCA(encoder_x="mlp").fit(X, Y)


def test_save_load_roundtrip(tmp_path):
    _needs_train()
    X, Y = _linear_views(60, 4)
    model = DeepCCA(n_components=2, hidden=(8,), train={"max_epochs": 3}).fit(X, Y)
    path = tmp_path / "dcca.npz"
    model.save(path)
    loaded = DeepCCA.load(path)
    np.testing.assert_allclose(loaded.transform(X), model.transform(X))
    assert loaded.history_["train_loss"] == model.history_["train_loss"]


@pytest.mark.parametrize("make", [lambda **kw: DeepCCA(hidden=(4,), train={"max_epochs": 2, **kw}),
                                  lambda **kw: mmalign.projection.DeepMCCA(
                                      hidden=(4,), train={"max_epochs": 2, **kw})])
def test_batch_size_one_and_divergence_messages(make):
    _needs_train()
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    fit = (lambda m: m.fit(X, Y)) if isinstance(make(), DeepCCA) else (lambda m: m.fit([X, Y]))
    with pytest.raises(ValueError, match=r"^train.batch_size must be >= 2") as info:
        fit(make(batch_size=1))
    assert "hx" not in str(info.value) and "hs[0]" not in str(info.value)
    with pytest.raises(ValueError, match=r"training diverged.*lower lr \(got lr=1") as info:
        fit(make(lr=1e10))
    assert "X contains" not in str(info.value)


def test_save_refuses_user_encoders_it_could_not_rebuild(tmp_path):
    model = DeepCCA(encoder_x=mlp_encoder(3, 2, hidden=(4,)), y_dim=2, hidden=(4,))
    with pytest.raises(ValueError, match="encoder_x.*torch.nn.Module"):
        model.save(tmp_path / "dcca.npz")
    assert not (tmp_path / "dcca.npz").exists()
