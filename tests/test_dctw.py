"""Deep canonical time warping on the nonlinear synthetic protocol: two sequences, and
N >= 2 sequences (multi-set DCTW) with its MAXVAR deep-CCA loss."""

import numpy as np
import pytest
import torch

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad
from mmalign.projection import DeepMCCA, MultiAlignment, cca_loss, mcca, mcca_loss


def test_dctw_beats_ctw_which_beats_dtw_on_nonlinear_maps_over_10_seeds():
    errors = {"dtw": [], "ctw": [], "dctw": []}
    for seed in range(10):
        data = warped_multimodal(2, lengths=(150, 120), dims=(3, 3), noise=0.05,
                                 map="nonlinear", seed=seed)
        x, y = data.sequences
        reference = data.reference(0, 1)
        errors["dtw"].append(mad(mmalign.dtw_path(x, y), reference))
        errors["ctw"].append(mad(mmalign.CTW().align(x, y), reference))
        model = mmalign.DCTW(n_outer=4, epochs_per_step=30, train={"seed": seed}).fit([(x, y)])
        errors["dctw"].append(mad(model.align(x, y), reference))
    mean = {k: np.mean(v) for k, v in errors.items()}
    assert mean["dctw"] < mean["ctw"] < mean["dtw"], mean


def test_dctw_on_a_real_pair_with_a_known_warp():
    dctw, ctw = [], []
    for index in range(8):
        pair = basic_motions_warped(index=index, seed=index)
        reference = pair.reference()
        ctw.append(mad(mmalign.CTW().align(pair.x, pair.y), reference))
        model = mmalign.DCTW(n_outer=3, epochs_per_step=30, train={"seed": index}).fit(pair.x, pair.y)
        dctw.append(mad(model.align(pair.x, pair.y), reference))
    assert np.mean(dctw) <= np.mean(ctw), (dctw, ctw)


def test_seeded_dctw_is_reproducible_on_cpu():
    data = warped_multimodal(2, lengths=(50, 40), dims=(2, 3), map="nonlinear", seed=2)
    paths = [mmalign.DCTW(n_outer=2, epochs_per_step=3, train={"seed": 5}).fit([data.sequences])
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


def test_dctw_fit_takes_paired_collections_or_pairs():
    """fit(X, Y) with X, Y paired lists is fit([(x, y), ...]) (and fit(x, y) one pair)."""
    data = warped_multimodal(2, lengths=(30, 25), dims=(2, 3), map="nonlinear", seed=2)
    x, y = data.sequences
    kw = dict(n_outer=1, epochs_per_step=1, hidden=(4,), init="uniform")
    by_lists = mmalign.DCTW(**kw).fit([x, x[::2]], [y, y[::2]]).align(x, y)
    by_pairs = mmalign.DCTW(**kw).fit([(x, y), (x[::2], y[::2])]).align(x, y)
    np.testing.assert_array_equal(by_lists.path(), by_pairs.path())
    assert by_lists.cost == by_pairs.cost
    one = mmalign.DCTW(**kw).fit(x, y).align(x, y)
    np.testing.assert_array_equal(one.path(), mmalign.DCTW(**kw).fit([(x, y)]).align(x, y).path())


# ------------------------------------------------------------ multi-set deep CCA loss
def _views(seed=0, B=60, dims=(3, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, 2, generator=g, dtype=torch.float64)
    out = []
    for d in dims:
        out.append(torch.tanh(z @ torch.randn(2, d, generator=g, dtype=torch.float64))
                   + 0.3 * torch.randn(B, d, generator=g, dtype=torch.float64))
    return out


def test_mcca_loss_with_two_views_is_the_trace_objective_minus_m():
    hx, hy = _views(dims=(3, 4))
    for m in (1, 2, 3):
        two = float(cca_loss(hx, hy, n_components=m, objective="trace", reg=0.0))
        assert float(mcca_loss([hx, hy], n_components=m, reg=0.0)) == pytest.approx(two - m,
                                                                                 abs=1e-10)
        # with a ridge the two differ by O(reg / smallest covariance eigenvalue)
        ridge = float(mcca_loss([hx, hy], n_components=m, reg=1e-5))
        assert ridge == pytest.approx(float(cca_loss(hx, hy, n_components=m, reg=1e-5)) - m,
                                      abs=1e-3)


def test_mcca_loss_matches_closed_form_mcca_and_is_invariant():
    views = _views()
    _, scores, _ = mcca([v.numpy() for v in views], 2)
    assert float(mcca_loss(views, n_components=2, reg=0.0)) == pytest.approx(-scores.sum(),
                                                                              abs=1e-9)
    # invariant to invertible linear maps and shifts of each view
    M = torch.tensor([[2.0, 0.3, 0.0], [0.0, 1.0, -1.0], [0.5, 0.0, 3.0]], dtype=torch.float64)
    moved = [views[0] @ M, views[1] - 5, -2 * views[2]]
    assert float(mcca_loss(moved, reg=0.0)) == pytest.approx(float(mcca_loss(views, reg=0.0)),
                                                             abs=1e-9)
    # a direction shared exactly by N views scores N
    h = views[0][:, :2]
    assert float(mcca_loss([h, 3 * h, h @ M[:2, :2] + 1], reg=0.0)) == pytest.approx(-6.0,
                                                                                       abs=1e-9)


def test_mcca_loss_gradcheck_float64():
    views = [v[:12].clone().requires_grad_(True) for v in _views(seed=1)]
    assert torch.autograd.gradcheck(lambda *v: mcca_loss(list(v), reg=1e-3), views,
                                    eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda *v: mcca_loss(list(v), n_components=1, reg=1e-3),
                                    views, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mcca_loss_finite_gradients_small_batch_and_identical_views(dtype):
    g = torch.Generator().manual_seed(3)
    cases = [[torch.randn(3, 8, generator=g) for _ in range(3)],     # B < k
             [torch.randn(2, 5, generator=g) for _ in range(3)]]     # B = 2
    x = torch.randn(30, 4, generator=g)
    cases.append([x, x.clone(), x.clone()])                          # all eigenvalues tied
    for views in cases:
        views = [v.to(dtype).requires_grad_(True) for v in views]
        loss = mcca_loss(views)
        loss.backward()
        assert torch.isfinite(loss)
        assert all(torch.isfinite(v.grad).all() for v in views)


def test_mcca_loss_errors_name_the_argument():
    views = _views()
    with pytest.raises(ValueError, match="at least 2 views"):
        mcca_loss(views[:1])
    with pytest.raises(ValueError, match=r"hs\[2\].*same number of rows"):
        mcca_loss([views[0], views[1], views[2][:10]])
    with pytest.raises(ValueError, match=r"hs\[1\] must be a torch.Tensor"):
        mcca_loss([views[0], views[1].numpy()])
    with pytest.raises(ValueError, match="n_components"):
        mcca_loss(views, n_components=3)  # smallest view has 2 features
    with pytest.raises(ValueError, match="reg"):
        mcca_loss(views, reg=-1.0)


def test_deep_mcca_fit_transform_save_load(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((150, 2))
    views = [z @ rng.standard_normal((2, 4)), np.tanh(z) @ rng.standard_normal((2, 3)), z ** 3]
    model = DeepMCCA(n_components=2, hidden=(16,), train={"max_epochs": 15}).fit(views)
    out = model.transform(views)
    assert [v.shape for v in out] == [(150, 2)] * 3
    np.testing.assert_allclose([v.std(axis=0, ddof=1) for v in out], 1.0, atol=1e-6)
    assert model.scores_.shape == (2,) and np.all(model.scores_ <= 3 + 1e-9)
    model.save(tmp_path / "m.npz")
    loaded = DeepMCCA.load(tmp_path / "m.npz")
    for a, b in zip(out, loaded.transform(views)):
        np.testing.assert_allclose(a, b, atol=1e-10)
    with pytest.raises(ValueError, match="views holds 2 views"):
        model.transform(views[:2])
    with pytest.raises(ValueError, match=r"views\[1\] has 4 features"):
        model.transform([views[0], views[0], views[2]])
    with pytest.raises(ValueError, match="not fitted"):
        DeepMCCA().transform(views)


# ------------------------------------------------------------ multi-set DCTW
_PAIRS = ((0, 1), (0, 2), (1, 2))


def _small_dctw(**kw):
    return mmalign.DCTW(**{"n_outer": 3, "epochs_per_step": 20, "hidden": (32, 32), **kw})


def test_multiset_dctw_beats_pairwise_dtw_on_nonlinear_maps():
    dctw, dtw = [], []
    for seed in range(4):
        data = warped_multimodal(3, lengths=(100, 80, 120), dims=3, noise=0.05,
                                 map="nonlinear", seed=seed)
        seqs = data.sequences
        result = _small_dctw(train={"seed": seed}).align_all(seqs)
        for a, b in _PAIRS:
            reference = data.reference(a, b)
            dctw.append(mad(result.pair(a, b), reference))
            dtw.append(mad(mmalign.dtw_path(seqs[a], seqs[b]), reference))
    assert np.mean(dctw) < 0.6 * np.mean(dtw), (np.mean(dctw), np.mean(dtw))


def test_multiset_dctw_result_contract():
    data = warped_multimodal(3, lengths=(60, 50, 70), dims=(2, 4, 3), map="nonlinear", seed=1)
    seqs = data.sequences
    model = _small_dctw(n_outer=2, epochs_per_step=3)
    result = model.align_all(seqs)
    assert isinstance(result, MultiAlignment)
    assert result.length == 70 and len(result.warps) == 3
    for warp, s in zip(result.warps, seqs):
        assert warp.shape == (70, len(s))
        path = warp.path()
        assert path[0].tolist() == [0, 0] and path[-1].tolist() == [69, len(s) - 1]
        assert np.all(np.diff(path, axis=0) >= 0)
    assert result.pair(0, 2).shape == (60, 70)
    # weights / means act on the encoder outputs (n_components = smallest dim = 2)
    assert [w.shape for w in result.weights] == [(2, 2)] * 3
    assert [m.shape for m in result.means] == [(2,)] * 3
    assert result.scores.shape == (2,)
    assert 1 <= len(result.objective) <= 2 and np.isfinite(result.objective).all()
    assert model.multi_history_ == result.objective
    assert [v.shape for v in model.multi_model_.transform(seqs)] == [(60, 2), (50, 2), (70, 2)]
    # the encoders can be reused to warp without training
    again = model.align_all(seqs, fit=False)
    assert again.length == 70 and [w.shape for w in again.warps] == [w.shape for w in result.warps]
    # two sequences work too, and the two-sequence API is untouched
    two = _small_dctw(n_outer=1, epochs_per_step=2).align_all(seqs[:2])
    assert two.pair(0, 1).shape == (60, 50)
    # fit_all on several groups of the same views
    groups = [seqs, [s[::2] for s in seqs]]
    fitted = _small_dctw(n_outer=2, epochs_per_step=2).fit_all(groups)
    assert fitted.multi_model_.n_features_ == (2, 4, 3)
    assert fitted.align_all([s[1::2] for s in seqs], fit=False).length == 35


def test_multiset_dctw_errors_name_the_argument():
    data = warped_multimodal(3, lengths=(40, 30, 50), dims=(2, 3, 2), map="nonlinear", seed=0)
    seqs = data.sequences
    model = _small_dctw(n_outer=1, epochs_per_step=1)
    with pytest.raises(ValueError, match="sequences must hold at least 2 sequences"):
        model.align_all(seqs[:1])
    bad = seqs[1].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"sequences\[1\] contains NaN"):
        model.align_all([seqs[0], bad, seqs[2]])
    with pytest.raises(ValueError, match=r"groups\[1\] holds 2 sequences"):
        model.fit_all([seqs, seqs[:2]])
    with pytest.raises(ValueError, match="same number of features"):
        model.fit_all([seqs, [seqs[0], seqs[0], seqs[2]]])
    with pytest.raises(ValueError, match="groups holds no groups"):
        model.fit_all([])
    with pytest.raises(ValueError, match="no multi-set encoders"):
        mmalign.DCTW().align_all(seqs, fit=False)
    model.align_all(seqs)
    with pytest.raises(ValueError, match="sequences holds 2 sequences"):
        model.align_all(seqs[:2], fit=False)
    with pytest.raises(ValueError, match=r"sequences\[1\] has 2 features"):
        model.align_all([seqs[0], seqs[2], seqs[2]], fit=False)
    with pytest.raises(ValueError, match=r"sequences\[2\] is constant"):
        model.align_all([seqs[0], seqs[1], np.ones((20, 2))])
    with pytest.raises(ValueError, match="init"):
        _small_dctw(init="random").align_all(seqs)


def test_multiset_dctw_is_seeded_and_leaves_inputs_alone():
    data = warped_multimodal(3, lengths=(50, 40, 45), dims=(2, 3, 3), map="nonlinear", seed=4)
    seqs = data.sequences
    copies = [s.copy() for s in seqs]
    runs = [_small_dctw(n_outer=2, epochs_per_step=3, train={"seed": 7}).align_all(seqs) for _ in range(2)]
    for a, b in zip(runs[0].warps, runs[1].warps):
        np.testing.assert_array_equal(a.path(), b.path())
    assert runs[0].objective == runs[1].objective
    for s, c in zip(seqs, copies):
        np.testing.assert_array_equal(s, c)
    # lists and float32 input are accepted
    result = _small_dctw(n_outer=1, epochs_per_step=1).align_all(
        [seqs[0].tolist(), seqs[1].astype(np.float32), seqs[2]])
    assert result.length == 50


def test_dctw_fit_errors_name_the_argument():
    x, y = np.ones((5, 2)), np.ones((6, 3))
    for bad in (None, 5, "xy"):
        with pytest.raises(ValueError, match=r"^X must be a list of \(x, y\) pairs"):
            mmalign.DCTW().fit(bad)
    with pytest.raises(ValueError, match=r"X\[0\] must be an \(x, y\) pair"):
        mmalign.DCTW().fit([x])
    with pytest.raises(ValueError, match=r"X\[1\] must be an \(x, y\) pair"):
        mmalign.DCTW().fit([(x, y), (x, y, y)])
    with pytest.raises(ValueError, match="X and Y must hold the same number of sequences, got 2 and 1"):
        mmalign.DCTW().fit([x, x], [y])
    with pytest.raises(ValueError, match=r"Y\[1\]"):
        mmalign.DCTW().fit([x, x], [y, np.full((4, 3), np.nan)])
    with pytest.raises(ValueError, match="pass fit\\(x, y\\)"):
        mmalign.DCTW().fit(x)  # one sequence without its partner
    with pytest.raises(ValueError, match=r"^Y must be"):
        mmalign.DCTW().fit(x, "y")
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        mmalign.DCTW(train={"batch_size": 1}).fit(x, y)
    with pytest.raises(ValueError, match="training diverged.*lower lr"):
        data = warped_multimodal(2, lengths=(30, 25), dims=(2, 3), map="nonlinear", seed=1)
        mmalign.DCTW(train={"lr": 1e10}, n_outer=1, epochs_per_step=3, init="uniform").fit(*data.sequences)


def test_dctw_round_trips_both_encoders(tmp_path):
    data = warped_multimodal(3, lengths=(30, 25, 20), dims=(2, 3, 2), map="nonlinear", seed=3)
    x, y, z = data.sequences
    model = mmalign.DCTW(n_outer=1, epochs_per_step=2, hidden=(4,), init="uniform").fit(x, y)
    model.align_all([x, y, z])
    model.save(tmp_path / "dctw.npz")
    loaded = mmalign.DCTW.load(tmp_path / "dctw.npz")
    np.testing.assert_array_equal(loaded.align(x, y).path(), model.align(x, y).path())
    assert loaded.history_ == model.history_ and loaded.multi_history_ == model.multi_history_
    for a, b in zip(loaded.align_all([x, y, z], fit=False).warps,
                    model.align_all([x, y, z], fit=False).warps):
        np.testing.assert_array_equal(a.path(), b.path())
    with pytest.raises(ValueError, match="n_outer"):
        mmalign.DCTW(n_outer=0).fit(x, y)


def test_dctw_training_settings_are_one_train_parameter():
    """DCTW's deep CCA steps take one ``train`` (as every neural estimator): defaults, nested
    set_params, and the epochs set by epochs_per_step alone."""
    from sklearn.base import clone

    model = mmalign.DCTW(epochs_per_step=4)
    config = model.train_config()
    assert (config.batch_size, config.lr, config.seed, config.device) == (512, 1e-3, 0, "cpu")
    model.set_params(train__lr=0.01, train__seed=3)
    assert model.train == {"lr": 0.01, "seed": 3}
    assert model.get_params()["train__lr"] == 0.01 and clone(model).train == model.train
    assert model._deep_cca_training() == {"batch_size": 512, "lr": 0.01, "seed": 3, "device": "cpu",
                                          "max_epochs": 4}
    x, y = np.ones((5, 2)), np.ones((6, 3))
    with pytest.raises(ValueError, match="train.max_epochs: DCTW trains epochs_per_step"):
        mmalign.DCTW(train={"max_epochs": 3}).fit(x, y)
    with pytest.raises(ValueError, match="train.lr"):
        mmalign.DCTW(train={"lr": -1.0}).fit(x, y)
