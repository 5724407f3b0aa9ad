"""CTW and GCTW on the synthetic protocol of the CTW/GCTW papers and on BasicMotions."""

import warnings

import numpy as np
import pytest

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad
from mmalign.projection.ctw import uniform_path


def test_ctw_beats_dtw_and_tslearn_ctw_over_20_seeds():
    tslearn_metrics = pytest.importorskip("tslearn.metrics")
    errors = {"dtw": [], "ctw": [], "tslearn": []}
    for seed in range(20):
        data = warped_multimodal(2, lengths=(150, 120), dims=(3, 3), noise=0.1, seed=seed)
        x, y = data.sequences
        reference = data.reference(0, 1)
        alignment = mmalign.CTW().align(x, y)
        history = alignment.extras["objective"]
        assert history == sorted(history, reverse=True)
        errors["ctw"].append(mad(alignment, reference))
        errors["dtw"].append(mad(mmalign.dtw_path(x, y), reference))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = np.array(tslearn_metrics.ctw_path(x, y)[0])
        errors["tslearn"].append(mad(path, reference))
    mean = {k: np.mean(v) for k, v in errors.items()}
    assert mean["ctw"] < 0.75 * mean["dtw"] and mean["ctw"] < 0.75 * mean["tslearn"], mean


def test_ctw_aligns_different_dimensions_and_reports_its_projections():
    ctw, uniform = [], []
    for seed in range(6):
        data = warped_multimodal(2, lengths=(140, 110), dims=(2, 6), noise=0.05,
                                 warp_strength=1.0, seed=seed)
        x, y = data.sequences
        alignment = mmalign.CTW(n_components=2).align(x, y)
        ctw.append(mad(alignment, data.reference(0, 1)))
        uniform.append(mad(mmalign.Alignment(uniform_path(140, 110)), data.reference(0, 1)))
    assert np.mean(ctw) < 0.5 * np.mean(uniform)
    extras = alignment.extras
    assert extras["x_weights"].shape == (2, 2) and extras["y_weights"].shape == (6, 2)
    assert (np.diff(extras["correlations"]) <= 1e-12).all()
    path = alignment.path()
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [139, 109]
    assert alignment.cost == extras["objective"][-1]


def test_ctw_recovers_a_known_warp_between_accelerometer_and_gyroscope():
    ctw, dtw = [], []
    for index in range(8):
        pair = basic_motions_warped(index=index, seed=index)
        reference = pair.reference()
        ctw.append(mad(mmalign.CTW().align(pair.x, pair.y), reference))
        dtw.append(mad(mmalign.dtw_path(pair.x, pair.y), reference))
    assert np.mean(ctw) < 0.6 * np.mean(dtw)


def test_gctw_warps_three_sequences_of_different_dimensions():
    errors_gctw, errors_uniform = [], []
    for seed in range(4):
        data = warped_multimodal(3, lengths=(150, 120, 170), dims=(3, 5, 2), noise=0.05,
                                 warp_strength=1.0, seed=seed)
        result = mmalign.GCTW().align_all(data.sequences)
        assert result.objective == sorted(result.objective, reverse=True)
        assert len(result.warps) == 3 and all(w.n_x == result.length for w in result.warps)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            pair = result.pair(a, b)
            path = pair.path()
            steps = np.diff(path, axis=0)
            assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()
            errors_gctw.append(mad(pair, data.reference(a, b)))
            n_a, n_b = data.lengths[a], data.lengths[b]
            errors_uniform.append(mad(mmalign.Alignment(uniform_path(n_a, n_b)),
                                      data.reference(a, b)))
    assert np.mean(errors_gctw) < 0.5 * np.mean(errors_uniform)


def test_degenerate_input_gets_clear_errors_or_results():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3))
    with pytest.raises(ValueError, match="y is constant"):
        mmalign.CTW().align(x, np.ones((30, 2)))
    with pytest.raises(ValueError, match="at least 2 frames"):
        mmalign.CTW().align(x, np.ones((1, 2)))
    with pytest.raises(ValueError, match="x contains NaN"):
        mmalign.CTW().align(np.full((5, 2), np.nan), x)
    with pytest.raises(ValueError, match="n_components"):
        mmalign.CTW(n_components=5).align(x, rng.standard_normal((30, 2)))
    with pytest.raises(ValueError, match="init"):
        mmalign.CTW(init="random").align(x, x)
    # more dimensions than frames: the ridge keeps it finite
    wide = mmalign.CTW(reg=1e-2).align(rng.standard_normal((20, 60)), rng.standard_normal((25, 3)))
    assert np.isfinite(wide.cost)
    with pytest.raises(ValueError, match="at least 2 sequences"):
        mmalign.GCTW().align_all([x])
    with pytest.raises(ValueError, match=r"sequences\[1\]"):
        mmalign.GCTW().align_all([x, np.zeros((10, 2))])


@pytest.mark.parametrize("scale", [2.0 ** 996, 1e300, 1e-300])
def test_values_at_the_extremes_give_the_same_warping(scale):
    """Without a ridge CTW and GCTW are scale-invariant: same path and objective, weights
    scaled by 1 / s.  (``reg`` is in the units of the data, so a ridge is not.)"""
    data = warped_multimodal(2, lengths=(60, 45), dims=(3, 2), noise=0.05, seed=3)
    x, y = data.sequences
    want = mmalign.CTW(reg=0.0).align(x, y)
    got = mmalign.CTW(reg=0.0).align(x * scale, y)
    np.testing.assert_array_equal(got.path(), want.path())
    assert got.cost == pytest.approx(want.cost, rel=1e-9)
    np.testing.assert_allclose(got.extras["x_weights"] * scale, want.extras["x_weights"],
                               rtol=1e-7)
    both = mmalign.CTW(reg=0.0).align(x * scale, y * scale)
    np.testing.assert_array_equal(both.path(), want.path())
    multi = mmalign.GCTW(reg=0.0).align_all([x * scale, y, x[::2] * scale])
    plain = mmalign.GCTW(reg=0.0).align_all([x, y, x[::2]])
    for a, b in zip(multi.warps, plain.warps):
        np.testing.assert_array_equal(a.path(), b.path())
    np.testing.assert_allclose(multi.objective, plain.objective, rtol=1e-9)
