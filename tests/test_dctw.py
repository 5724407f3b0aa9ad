"""Deep canonical time warping on the nonlinear synthetic protocol."""

import numpy as np
import pytest

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad


def test_dctw_beats_ctw_which_beats_dtw_on_nonlinear_maps_over_10_seeds():
    errors = {"dtw": [], "ctw": [], "dctw": []}
    for seed in range(10):
        data = warped_multimodal(2, lengths=(150, 120), dims=(3, 3), noise=0.05,
                                 map="nonlinear", seed=seed)
        x, y = data.sequences
        reference = data.reference(0, 1)
        errors["dtw"].append(mad(mmalign.dtw_path(x, y), reference))
        errors["ctw"].append(mad(mmalign.CTW().align(x, y), reference))
        model = mmalign.DCTW(n_outer=4, epochs_per_step=30, seed=seed).fit([(x, y)])
        errors["dctw"].append(mad(model.align(x, y), reference))
    mean = {k: np.mean(v) for k, v in errors.items()}
    assert mean["dctw"] < mean["ctw"] < mean["dtw"], mean


def test_dctw_on_a_real_pair_with_a_known_warp():
    dctw, ctw = [], []
    for index in range(8):
        pair = basic_motions_warped(index=index, seed=index)
        reference = pair.reference()
        ctw.append(mad(mmalign.CTW().align(pair.x, pair.y), reference))
        model = mmalign.DCTW(n_outer=3, epochs_per_step=30, seed=index).fit(pair.x, pair.y)
        dctw.append(mad(model.align(pair.x, pair.y), reference))
    assert np.mean(dctw) <= np.mean(ctw), (dctw, ctw)


def test_seeded_dctw_is_reproducible_on_cpu():
    data = warped_multimodal(2, lengths=(50, 40), dims=(2, 3), map="nonlinear", seed=2)
    paths = [mmalign.DCTW(n_outer=2, epochs_per_step=3, seed=5).fit([data.sequences])
             .align(*data.sequences).path() for _ in range(2)]
    np.testing.assert_array_equal(paths[0], paths[1])


def test_dctw_api_and_errors():
    data = warped_multimodal(2, lengths=(60, 50), dims=(2, 4), map="nonlinear", seed=1)
    x, y = data.sequences
    model = mmalign.DCTW(n_outer=2, epochs_per_step=3).fit([(x, y), (x[::2], y[::2])])
    alignment = model.align(x, y)
    assert alignment.extras["x_features"].shape == (60, 2)  # min(d_x, d_y) components
    assert alignment.extras["y_features"].shape == (50, 2)
    assert 1 <= len(model.history_) <= 2 and np.isfinite(model.history_).all()
    path = alignment.path()
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [59, 49]
    with pytest.raises(ValueError, match="not fitted"):
        mmalign.DCTW().align(x, y)
    with pytest.raises(ValueError, match="same number of features"):
        mmalign.DCTW(n_outer=1, epochs_per_step=1).fit([(x, y), (x[:, :1], y)])
    with pytest.raises(ValueError, match="init"):
        mmalign.DCTW(init="random").fit([(x, y)])
    with pytest.raises(ValueError, match="no sequence pairs"):
        mmalign.DCTW().fit([])
