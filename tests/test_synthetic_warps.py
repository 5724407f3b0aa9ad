import numpy as np
import pytest

import mmalign
from mmalign.datasets import (
    LatentMap,
    WarpedPair,
    WarpedSet,
    basic_motions_warped,
    random_monotone_warp,
    warped_multimodal,
)
from mmalign.metrics import deviations, median_absolute_deviation


def _check_warping_path(p, n_a, n_b):
    assert p.dtype == np.int64 and p.ndim == 2 and p.shape[1] == 2
    assert tuple(p[0]) == (0, 0) and tuple(p[-1]) == (n_a - 1, n_b - 1)
    steps = np.diff(p, axis=0)
    assert np.all((steps == 0) | (steps == 1)) and np.all(steps.sum(axis=1) > 0)


# --------------------------------------------------------------------------- warps


@pytest.mark.parametrize("n_out, n_latent", [(2, 2), (7, 200), (150, 200), (400, 50)])
@pytest.mark.parametrize("strength", [0.0, 0.5, 2.0, 3.0])
def test_warp_monotone_with_exact_endpoints(n_out, n_latent, strength):
    for seed in range(5):
        w = random_monotone_warp(n_out, n_latent, rng=seed, strength=strength)
        assert w.shape == (n_out,) and w.dtype == np.float64
        assert w[0] == 0.0 and w[-1] == n_latent - 1
        assert np.all(np.diff(w) > 0)


def test_warp_strength_zero_is_linear_and_strength_scales_one_profile():
    np.testing.assert_array_equal(random_monotone_warp(50, 200, rng=3, strength=0.0),
                                  np.linspace(0, 199, 50))
    linear = np.linspace(0, 199, 120)
    gaps = [np.abs(random_monotone_warp(120, 200, rng=3, strength=s) - linear).max()
            for s in (0.1, 0.5, 1.0)]
    assert 0 < gaps[0] < gaps[1] < gaps[2]
    assert gaps[1] > 5  # clearly non-linear at the default strength


def test_warp_smoothness_and_rng_handling():
    jittery = random_monotone_warp(300, 300, rng=0, smoothness=0.01, strength=0.5)
    smooth = random_monotone_warp(300, 300, rng=0, smoothness=0.3, strength=0.5)
    # Speed changes from frame to frame are larger for a short correlation length.
    assert np.abs(np.diff(np.log(np.diff(jittery)))).mean() > 3 * np.abs(
        np.diff(np.log(np.diff(smooth)))).mean()
    gen = np.random.default_rng(4)
    first, second = (random_monotone_warp(80, 100, rng=gen) for _ in range(2))
    assert not np.array_equal(first, second)  # the generator advances
    np.testing.assert_array_equal(random_monotone_warp(80, 100, rng=np.random.default_rng(4)), first)
    np.testing.assert_array_equal(random_monotone_warp(80, 100, rng=4), first)


# --------------------------------------------------------------------------- warped_multimodal


@pytest.fixture(scope="module")
def three():
    return warped_multimodal(3, lengths=(150, 210, 90), dims=(3, 5, 2), seed=1)


def test_shapes_and_fields(three):
    assert isinstance(three, WarpedSet)
    assert three.lengths == (150, 210, 90)
    assert [s.shape for s in three.sequences] == [(150, 3), (210, 5), (90, 2)]
    assert three.latent.shape == (200, 2)
    for seq, warp, f, d in zip(three.sequences, three.warps, three.maps, (3, 5, 2)):
        assert seq.dtype == np.float64 and np.isfinite(seq).all()
        assert warp.shape == (len(seq),) and warp[0] == 0 and warp[-1] == 199
        assert np.all(np.diff(warp) > 0)
        assert isinstance(f, LatentMap) and f.kind == "linear"
        assert f.weight.shape == (2, d) and f.n_features == d
        # Observed = map of the warped latent + noise of standard deviation 0.05.
        resid = seq - f(three.latent_at(warp))
        assert 0.03 < resid.std() < 0.07


def test_defaults_and_distractors():
    ws = warped_multimodal(seed=0)
    assert ws.lengths == (180, 220) and [s.shape[1] for s in ws.sequences] == [3, 4]
    ws = warped_multimodal(lengths=120, dims=4, distractors=2, noise=0.0, latent_dim=3, seed=0)
    for seq, warp, f in zip(ws.sequences, ws.warps, ws.maps):
        assert seq.shape == (120, 6)
        np.testing.assert_allclose(seq[:, :4], f(ws.latent_at(warp)), atol=1e-12)
        distract = seq[:, 4:]
        np.testing.assert_allclose(distract.std(axis=0), 1.0, rtol=1e-6)
        # Smooth, and unrelated to the informative features.
        assert np.abs(np.diff(distract, axis=0)).mean() < 0.3
        corr = np.corrcoef(np.hstack([seq[:, :4], distract]).T)[:4, 4:]
        assert np.abs(corr).max() < 0.9


@pytest.mark.parametrize("latent", ["spiral", "curve", "sine"])
@pytest.mark.parametrize("latent_dim", [1, 2, 3, 5])
@pytest.mark.parametrize("kind", ["linear", "nonlinear"])
def test_every_latent_and_map(latent, latent_dim, kind):
    ws = warped_multimodal(lengths=(60, 80), dims=(2, 7), latent=latent, latent_length=100,
                           latent_dim=latent_dim, map=kind, noise=0.0, seed=3)
    z = ws.latent
    assert z.shape == (100, latent_dim) and np.isfinite(z).all()
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.mean(z**2), 1.0)
    for seq, warp, f in zip(ws.sequences, ws.warps, ws.maps):
        assert f.kind == kind
        np.testing.assert_allclose(seq, f(ws.latent_at(warp)), atol=1e-12)
        full = f(z)  # unit standard deviation per feature over the latent
        np.testing.assert_allclose(full.std(axis=0), 1.0, rtol=1e-9)
        np.testing.assert_allclose(full.mean(axis=0), 0.0, atol=1e-9)


def test_nonlinear_map_is_not_linear():
    ws = warped_multimodal(map="nonlinear", latent_dim=2, dims=(6, 6), noise=0.0, seed=0)
    f = ws.maps[0]
    assert f.weight.shape == (2, 16) and f.weight_out.shape == (16, 6)
    z1 = np.c_[ws.latent, np.ones(len(ws.latent))]
    out = f(ws.latent)
    coef, *_ = np.linalg.lstsq(z1, out, rcond=None)
    assert np.abs(z1 @ coef - out).max() > 0.2


def test_deterministic_per_seed():
    kwargs = dict(lengths=(70, 90), dims=(3, 4), latent="curve", map="nonlinear", distractors=1)
    a, b = warped_multimodal(seed=5, **kwargs), warped_multimodal(seed=5, **kwargs)
    for x, y in zip(a.sequences + a.warps + [a.latent], b.sequences + b.warps + [b.latent]):
        np.testing.assert_array_equal(x, y)
    c = warped_multimodal(seed=6, **kwargs)
    assert not np.array_equal(a.sequences[0], c.sequences[0])


# --------------------------------------------------------------------------- references


def test_reference_with_itself_is_identity(three):
    for k, n in enumerate(three.lengths):
        ref = three.reference(k, k)
        np.testing.assert_allclose(ref, np.c_[np.arange(n), np.arange(n)], atol=1e-9)
        np.testing.assert_array_equal(three.true_path(k, k), np.c_[np.arange(n), np.arange(n)])


def test_reference_endpoints_inverse_and_composition(three):
    rab, rba = three.reference(0, 1), three.reference(1, 0)
    assert rab.shape == (150, 2) and rba.shape == (210, 2)
    np.testing.assert_array_equal(rab[:, 0], np.arange(150))
    assert rab[0, 1] == 0 and rab[-1, 1] == 209 and np.all(np.diff(rab[:, 1]) > 0)
    # b -> a undoes a -> b ...
    back = np.interp(rab[:, 1], rba[:, 0], rba[:, 1])
    np.testing.assert_allclose(back, np.arange(150), atol=0.2)
    # ... and a -> b -> c is a -> c (exact up to the linear interpolations).
    rbc, rac = three.reference(1, 2), three.reference(0, 2)
    np.testing.assert_allclose(np.interp(rab[:, 1], rbc[:, 0], rbc[:, 1]), rac[:, 1], atol=0.2)
    # The reference pairs frames at the same latent position.
    np.testing.assert_allclose(np.interp(rab[:, 1], np.arange(210), three.warps[1]),
                               three.warps[0], atol=1e-9)
    # Negative indices count from the end, like lists.
    np.testing.assert_array_equal(three.reference(-3, -1), three.reference(0, 2))


def test_strength_zero_gives_linear_reference():
    ws = warped_multimodal(lengths=(100, 150), warp_strength=0.0, seed=2)
    ref = ws.reference(0, 1)
    np.testing.assert_allclose(ref[:, 1], np.arange(100) * 149 / 99, atol=1e-9)
    same = warped_multimodal(lengths=(120, 120), warp_strength=0.0, seed=2)
    np.testing.assert_array_equal(same.true_path(0, 1), np.c_[np.arange(120), np.arange(120)])


@pytest.mark.parametrize("seed", range(8))
def test_true_path_is_a_warping_path_near_the_reference(seed):
    ws = warped_multimodal(2, lengths=(140 + 10 * seed, 210 - 5 * seed), seed=seed)
    for a, b in ((0, 1), (1, 0)):
        ref, inverse = ws.reference(a, b), ws.reference(b, a)
        p = ws.true_path(a, b)
        _check_warping_path(p, ws.lengths[a], ws.lengths[b])
        # Every row and column is visited.
        assert set(p[:, 0]) == set(range(ws.lengths[a])) and set(p[:, 1]) == set(range(ws.lengths[b]))
        # Each cell lies within half a frame of the reference curve along one axis.
        off_j = np.abs(p[:, 1] - np.interp(p[:, 0], ref[:, 0], ref[:, 1]))
        off_i = np.abs(p[:, 0] - np.interp(p[:, 1], inverse[:, 0], inverse[:, 1]))
        assert np.minimum(off_i, off_j).max() <= 0.5 + 1e-9
        # Read as an alignment, it is within one frame where the reference is
        # not steep (steep stretches map one frame to many, whose mean may drift).
        dev = deviations(p, ref)
        slope = np.gradient(ref[:, 1])
        gentle = np.convolve(slope <= 2, np.ones(3), mode="same") == 3
        assert gentle.mean() > 0.5 and dev[gentle].max() <= 1.0
        assert np.median(dev) <= 0.5


def test_dtw_recovers_the_reference_with_a_shared_map():
    ws = warped_multimodal(lengths=(180, 230), dims=3, map="linear", shared_map=True,
                           noise=0.0, warp_strength=0.7, seed=4)
    assert ws.maps[0] is ws.maps[1]
    x, y = ws.sequences
    alignment = mmalign.dtw_path(x, y)
    ref = ws.reference(0, 1)
    assert median_absolute_deviation(alignment, ref) <= 1.0
    assert mmalign.metrics.mean_absolute_deviation(ws.true_path(0, 1), ref) < 0.5
    # Without warping knowledge, a linear stretch is far off: the test is not trivial.
    linear = np.c_[np.arange(180), np.round(np.arange(180) * 229 / 179)].astype(int)
    assert median_absolute_deviation(linear, ref) > 3


# --------------------------------------------------------------------------- BasicMotions


def test_basic_motions_pair():
    pair = basic_motions_warped(index=2, length=120, seed=1)
    assert isinstance(pair, WarpedPair)
    assert pair.x.shape == (100, 3) and pair.y.shape == (120, 3)
    assert pair.label in {"standing", "running", "walking", "badminton"}
    from aeon.datasets import load_basic_motions

    X, labels = load_basic_motions(split="train")
    np.testing.assert_array_equal(pair.x, X[2, :3].T)
    assert pair.label == labels[2]
    w = pair.warp
    assert w[0] == 0 and w[-1] == 99 and np.all(np.diff(w) > 0)
    # y is the gyroscope at the warp, and the reference undoes the warp.
    grid = np.arange(100)
    for c in range(3):
        np.testing.assert_allclose(pair.y[:, c], np.interp(w, grid, X[2, 3 + c]))
    ref = pair.reference()
    assert ref.shape == (100, 2)
    np.testing.assert_allclose(np.interp(ref[:, 1], np.arange(120), w), grid, atol=1e-9)
    assert np.abs(ref[:, 1] - grid * 119 / 99).max() > 2  # really warped
    _check_warping_path(pair.true_path(), 100, 120)


def test_basic_motions_options():
    default = basic_motions_warped(split="test", index=10, seed=3)
    assert 80 <= len(default.y) <= 130 and default.split == "test"
    again = basic_motions_warped(split="TEST", index=10, seed=3)
    np.testing.assert_array_equal(default.y, again.y)
    up = basic_motions_warped(index=0, resample=2, seed=0)
    assert up.x.shape == (199, 3) and 159 <= len(up.y) <= 258
    np.testing.assert_array_equal(up.x[::2], basic_motions_warped(index=0, seed=0).x)
    flat = basic_motions_warped(index=0, length=100, warp_strength=0.0)
    np.testing.assert_allclose(flat.reference()[:, 1], np.arange(100), atol=1e-9)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_out=1, n_latent=10), "n_out"),
    (dict(n_out=2.5, n_latent=10), "n_out"),
    (dict(n_out=10, n_latent=1), "n_latent"),
    (dict(n_out=10, n_latent=10, strength=-0.1), "strength"),
    (dict(n_out=10, n_latent=10, strength=3.5), "strength"),
    (dict(n_out=10, n_latent=10, strength=np.nan), "strength"),
    (dict(n_out=10, n_latent=10, smoothness=0), "smoothness"),
    (dict(n_out=10, n_latent=10, rng=-1), "rng"),
    (dict(n_out=10, n_latent=10, rng="seed"), "rng"),
])
def test_warp_errors(kwargs, name):
    kwargs.setdefault("rng", 0)
    with pytest.raises(ValueError, match=name):
        random_monotone_warp(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n_sequences=0), "n_sequences"),
    (dict(lengths=(100,)), "lengths"),
    (dict(lengths=(100, 1)), "lengths"),
    (dict(lengths="ab"), "lengths"),
    (dict(dims=(3, 0)), "dims"),
    (dict(dims=(3, 4, 5)), "dims"),
    (dict(latent="helix"), "latent"),
    (dict(latent_length=1), "latent_length"),
    (dict(latent_dim=0), "latent_dim"),
    (dict(map="cubic"), "map"),
    (dict(noise=-1.0), "noise"),
    (dict(noise=np.inf), "noise"),
    (dict(distractors=-1), "distractors"),
    (dict(warp_strength=-1.0), "warp_strength"),
    (dict(dims=(3, 4), shared_map=True), "shared_map"),
    (dict(seed=1.5), "seed"),
])
def test_warped_multimodal_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        warped_multimodal(**kwargs)


def test_sequence_index_errors(three):
    with pytest.raises(ValueError, match="^b must index one of the 3"):
        three.reference(0, 3)
    with pytest.raises(ValueError, match="^a must be an integer"):
        three.true_path(1.0, 0)


@pytest.mark.parametrize("kwargs, name", [
    (dict(split="validation"), "split"),
    (dict(index=40), "index"),
    (dict(index=-1), "index"),
    (dict(warp_strength=5.0), "warp_strength"),
    (dict(length=1), "length"),
    (dict(resample=0), "resample"),
    (dict(seed=-2), "seed"),
])
def test_basic_motions_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        basic_motions_warped(**kwargs)
