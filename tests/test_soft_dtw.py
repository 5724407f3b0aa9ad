"""Soft-DTW: values and gradients against tslearn and finite differences, ragged batches."""

import numpy as np
import pytest
import torch

import mmalign

tslearn_metrics = pytest.importorskip("tslearn.metrics")

BACKENDS = ["numba", "torch"]


@pytest.mark.parametrize("gamma", [1e-3, 0.1, 1.0, 10.0, 100.0])
def test_value_and_expected_alignment_equal_tslearn(gamma):
    from tslearn.metrics import SoftDTW, SquaredEuclidean

    rng = np.random.default_rng(int(gamma * 1000))
    for _ in range(5):
        x = rng.standard_normal((int(rng.integers(1, 30)), 3))
        y = rng.standard_normal((int(rng.integers(1, 30)), 3))
        expected = tslearn_metrics.soft_dtw(x, y, gamma=gamma)
        assert mmalign.soft_dtw(x, y, gamma=gamma) == pytest.approx(expected, rel=1e-6)
        reference = SoftDTW(SquaredEuclidean(x, y).compute(), gamma=gamma)
        reference.compute()
        alignment = mmalign.soft_dtw_alignment(x, y, gamma=gamma)
        np.testing.assert_allclose(alignment.matrix(), reference.grad(), rtol=1e-6, atol=1e-9)
        assert alignment.cost == pytest.approx(expected, rel=1e-6)


def test_tends_to_dtw_as_gamma_vanishes():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((25, 2)), rng.standard_normal((31, 2))
    hard = mmalign.dtw(x, y) ** 2
    gaps = [abs(mmalign.soft_dtw(x, y, gamma=g) - hard) for g in (1.0, 0.1, 0.01, 0.001)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-2
    for radius in (0, 3):
        assert mmalign.soft_dtw(x, y, gamma=1e-4, radius=radius) == pytest.approx(
            mmalign.dtw(x, y, radius=radius) ** 2, rel=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("radius", [None, 2])
def test_ragged_batch_equals_pairs_alone(backend, radius):
    torch.manual_seed(0)
    x = torch.randn(5, 14, 3, dtype=torch.float64)
    y = torch.randn(5, 11, 3, dtype=torch.float64)
    lx = torch.tensor([14, 7, 14, 3, 10])
    ly = torch.tensor([11, 11, 4, 2, 6])
    loss = mmalign.SoftDTWLoss(gamma=0.3, radius=radius, reduction="none", backend=backend)
    batch = loss(x, y, lx, ly)
    for b in range(5):
        alone = mmalign.soft_dtw(x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy(), gamma=0.3,
                                 radius=radius)
        assert batch[b].item() == pytest.approx(alone, rel=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalize", [False, True])
def test_gradients_equal_finite_differences(backend, normalize):
    torch.manual_seed(1)
    x = torch.randn(4, 9, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 7, 2, dtype=torch.float64, requires_grad=True)
    lx, ly = torch.tensor([9, 5, 9, 2]), torch.tensor([7, 7, 3, 4])
    for radius in (None, 1):
        loss = mmalign.SoftDTWLoss(gamma=0.5, normalize=normalize, radius=radius,
                                   reduction="sum", backend=backend)
        assert torch.autograd.gradcheck(lambda a, b: loss(a, b, lx, ly), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_zero_at_equality_and_nonnegative(backend):
    torch.manual_seed(2)
    x = torch.randn(6, 20, 2, dtype=torch.float64)
    divergence = mmalign.SoftDTWLoss(gamma=1.0, normalize=True, reduction="none",
                                     backend=backend)
    assert torch.allclose(divergence(x, x), torch.zeros(6, dtype=torch.float64), atol=1e-9)
    y = torch.randn(6, 17, 2, dtype=torch.float64)
    assert (divergence(x, y) >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gamma", [1e-3, 1.0, 100.0])
def test_stable_for_extreme_gamma_and_large_costs(backend, gamma):
    torch.manual_seed(3)
    x = (1e3 * torch.randn(3, 16, 2, dtype=torch.float64)).requires_grad_()  # costs ~1e6
    y = 1e3 * torch.randn(3, 12, 2, dtype=torch.float64)
    value = mmalign.SoftDTWLoss(gamma=gamma, backend=backend)(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_backends_agree_and_float32_works():
    torch.manual_seed(4)
    x = torch.randn(3, 10, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 8, 2, dtype=torch.float64)
    values, grads = [], []
    for backend in BACKENDS:
        x.grad = None
        v = mmalign.SoftDTWLoss(backend=backend, reduction="sum")(x, y)
        v.backward()
        values.append(v.item())
        grads.append(x.grad.clone())
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    x32 = x.detach().float().requires_grad_()
    v32 = mmalign.SoftDTWLoss(reduction="sum")(x32, y.float())
    v32.backward()
    assert v32.dtype == torch.float32 and v32.item() == pytest.approx(values[0], rel=1e-5)
    assert x32.grad.dtype == torch.float32


def test_bad_input_is_named():
    loss = mmalign.SoftDTWLoss()
    x = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        loss(torch.zeros(5, 3), x)
    with pytest.raises(ValueError, match="y contains NaN"):
        loss(x, torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="different numbers of features"):
        loss(x, torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="batch sizes"):
        loss(x, torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="x_lengths"):
        loss(x, x, x_lengths=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="y_lengths"):
        loss(x, x, y_lengths=torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match="x must be float32 or float64"):
        loss(torch.zeros(2, 5, 3, dtype=torch.int64), x)
    with pytest.raises(ValueError, match="gamma"):
        mmalign.SoftDTWLoss(gamma=0.0)
    with pytest.raises(ValueError, match="reduction"):
        mmalign.SoftDTWLoss(reduction="avg")
    with pytest.raises(ValueError, match="gamma"):
        mmalign.soft_dtw(np.zeros(3), np.zeros(3), gamma=-1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        mmalign.soft_dtw(np.array([np.nan]), np.zeros(3))


def test_reductions():
    torch.manual_seed(5)
    x, y = torch.randn(4, 6, 1), torch.randn(4, 5, 1)
    per_pair = mmalign.SoftDTWLoss(reduction="none")(x, y)
    assert per_pair.shape == (4,)
    assert mmalign.SoftDTWLoss(reduction="sum")(x, y).item() == pytest.approx(
        per_pair.sum().item(), rel=1e-6)
    assert mmalign.SoftDTWLoss()(x, y).item() == pytest.approx(per_pair.mean().item(), rel=1e-6)
