"""Generalised time warping (GTW): monotone basis warps, Gauss–Newton with multi-set CCA."""

import numpy as np
import pytest

import mmalign
from mmalign.datasets import warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad
from mmalign.projection.ctw import uniform_path
from mmalign.projection.gtw import _fit_weights, warp_basis


@pytest.mark.parametrize("kind", ["all", "splines", "parametric"])
def test_basis_functions_rise_from_0_to_1_and_hold_the_identity(kind):
    Q = warp_basis(60, kind, n_splines=8)
    assert np.allclose(Q[0], 0) and np.allclose(Q[-1], 1)
    assert np.all(np.diff(Q, axis=0) >= -1e-12)
    t = np.linspace(0, 1, 60)
    a = _fit_weights(Q, t)
    assert a.min() >= 0 and a.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(Q @ a, t, atol=1e-3)


def test_basis_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        warp_basis(10, "fourier")
    with pytest.raises(ValueError, match="length"):
        warp_basis(1)
    with pytest.raises(ValueError, match="n_splines"):
        warp_basis(10, "splines", n_splines=1)


@pytest.fixture(scope="module")
def three_views():
    return [warped_multimodal(3, lengths=(80, 64, 96), dims=(3, 5, 2), noise=0.05, warp_strength=1.0,
                              seed=seed) for seed in (0, 1)]


def test_gtw_recovers_planted_warps_better_than_uniform(three_views):
    errors = {"GTW": [], "uniform": []}
    for data in three_views:
        result = mmalign.GTW(max_iter=15).align_all(data.sequences)
        assert len(result.warps) == 3 and result.length == 96
        for a, b in ((0, 1), (0, 2), (1, 2)):
            ref = data.reference(a, b)
            n_a, n_b = len(data.sequences[a]), len(data.sequences[b])
            errors["GTW"].append(mad(result.pair(a, b), ref))
            errors["uniform"].append(mad(uniform_path(n_a, n_b), ref))
        history = np.array(result.objective)
        assert np.all(np.diff(history) <= 1e-12)          # never increases
    assert np.mean(errors["GTW"]) < 0.4 * np.mean(errors["uniform"])


def test_gtw_warps_are_monotone_from_first_to_last_frame(three_views):
    result = mmalign.GTW(max_iter=10).align_all(three_views[0].sequences)
    for warp, seq in zip(result.warps, three_views[0].sequences):
        path = warp.path()
        assert path[0].tolist() == [0, 0] and path[-1].tolist() == [result.length - 1, len(seq) - 1]
        assert np.all(np.diff(path, axis=0) >= 0)


def test_gtw_pair_and_uniform_start():
    data = warped_multimodal(2, lengths=(100, 80), dims=(3, 3), noise=0.05, seed=6)     # a strong warp
    x, y = data.sequences
    ref = data.reference(0, 1)
    pair = mmalign.GTW().align(x, y)
    assert pair.shape == (100, 80)
    assert mad(pair, ref) < 0.5 * mad(uniform_path(100, 80), ref)
    plain = mmalign.GTW(init="uniform", max_iter=5).align_all([x, y])
    assert plain.pair(0, 1).shape == (100, 80) and np.all(np.diff(plain.objective) <= 1e-12)


def test_gtw_refuses_bad_input():
    x = np.random.default_rng(0).standard_normal((20, 2))
    with pytest.raises(ValueError, match="at least 2"):
        mmalign.GTW().align_all([x])
    with pytest.raises(ValueError, match="constant"):
        mmalign.GTW().align_all([x, np.zeros((10, 2))])
    with pytest.raises(ValueError, match="basis"):
        mmalign.GTW(basis="fourier").align(x, x)
    with pytest.raises(ValueError, match="NaN|finite"):
        mmalign.GTW().align(x, np.full((10, 2), np.nan))
