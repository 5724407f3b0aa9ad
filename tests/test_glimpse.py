"""Recurrent attention model: the retina, the network and its hybrid loss
(GlimpseAttentionModule), Monte-Carlo prediction, the estimator contract and the Alignment
(side x the image, side y the glimpse sequence)."""


import numpy as np
import pytest
import torch
from sklearn.base import clone

from test_aligner_roundtrip import write_as_earlier_file
from mmalign import Aligner
from mmalign.attention import GlimpseAttentionModule
from mmalign.attention.glimpse import GlimpseAttention, retina


def test_retina_reads_pixel_aligned_crops():
    img = torch.arange(64.0).view(1, 1, 8, 8)
    # centre between pixels 3 and 4 (x) and 1 and 2 (y) -> the 4x4 crop rows 0..3, cols 2..5
    loc = torch.tensor([[(2 * 4) / 8 - 1, (2 * 2) / 8 - 1]])
    patch = retina(img, loc, glimpse_size=4)[0, 0, 0]
    assert torch.equal(patch, img[0, 0, 0:4, 2:6])


def test_retina_coarse_scales_are_box_averages_and_zero_outside():
    img = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    loc = torch.zeros(2, 2)
    p = retina(img, loc, glimpse_size=2, n_scales=3)
    assert p.shape == (2, 3, 1, 2, 2)
    assert torch.allclose(p[:, 2], torch.nn.functional.avg_pool2d(img, 4), atol=1e-6)
    assert torch.allclose(p[:, 1], torch.nn.functional.avg_pool2d(img[..., 2:6, 2:6], 2), atol=1e-6)
    corner = retina(img, torch.tensor([[-1.0, -1.0]] * 2), glimpse_size=2)[:, 0, 0]
    assert torch.all(corner[:, 0, 0] == 0)          # above and left of the image


def test_retina_is_batched_per_sample_locations():
    img = torch.rand(3, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    locs = torch.tensor([[0.0, 0.0], [0.3, -0.2], [-0.5, 0.6]])
    together = retina(img, locs, 4, 2)
    alone = torch.cat([retina(img[i:i + 1], locs[i:i + 1], 4, 2) for i in range(3)])
    assert torch.allclose(together, alone)


def _fitted(image_size=(20, 20), n=8, **kwargs):
    kwargs = {"n_glimpses": 4, "glimpse_size": 4, "glimpse_hidden": 8, "location_hidden": 8,
              "core_hidden": 16, **kwargs}
    ram = GlimpseAttention(image_size=image_size, train={"max_epochs": 1, "batch_size": 4}, **kwargs)
    x = torch.rand(n, 1, *image_size, generator=torch.Generator().manual_seed(0))
    return ram.fit(x, np.arange(n) % 10), x


def _digits(n=500):
    from sklearn.datasets import load_digits
    d = load_digits()
    return torch.tensor(d.images[:n] / 16.0, dtype=torch.float32)[:, None], d.target[:n]


def test_forward_shapes_and_fixed_first_location():
    net = GlimpseAttentionModule(n_glimpses=4, glimpse_size=4, n_scales=2)
    logits, info = net(torch.rand(5, 1, 16, 16), sample=False)
    assert logits.shape == (5, 10)
    assert info["locations"].shape == (5, 4, 2)
    assert torch.all(info["locations"][:, 0] == 0)
    assert info["log_probs"].shape == info["baselines"].shape == (5, 3)


def test_loss_routes_gradients_as_designed():
    torch.manual_seed(0)
    net = GlimpseAttentionModule(n_glimpses=3, glimpse_size=4)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 10, (8,))
    net.loss(x, y).backward()
    for name in ("classifier", "location_net", "baseline_net", "what", "core_cell"):
        grads = [p.grad for p in getattr(net, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_reinforce_gradient_matches_the_score_function():
    """With the classifier frozen at a known reward, the location gradient is -E[(R-b) d log pi]."""
    torch.manual_seed(0)
    net = GlimpseAttentionModule(n_glimpses=2, glimpse_size=4)
    x, y = torch.rand(4, 1, 16, 16), torch.randint(0, 10, (4,))
    torch.manual_seed(1)
    net.zero_grad()
    net.loss(x, y).backward()
    got = net.location_net.bias.grad.clone()
    torch.manual_seed(1)
    logits, info = net(x, sample=True)
    reward = (logits.argmax(1) == y).float()
    adv = (reward[:, None] - info["baselines"]).detach()
    expect = torch.autograd.grad(-(info["log_probs"] * adv).sum(1).mean(), net.location_net.bias)[0]
    assert torch.allclose(got, expect, atol=1e-6)


def test_fit_learns_and_monte_carlo_is_seeded(tmp_path):
    x, y = _digits()
    ram = GlimpseAttention(image_size=(8, 8), n_glimpses=2, glimpse_size=4, n_scales=2,
                           glimpse_hidden=32, location_hidden=16, core_hidden=64, core="lstm",
                           train={"max_epochs": 10, "batch_size": 25, "lr": 3e-3})
    ram.fit(x[:400], y[:400], validation=(x[400:], y[400:]))
    assert isinstance(ram.module_, GlimpseAttentionModule)
    assert len(ram.history_["val_metric"]) == 10
    acc = (ram.predict(x[400:]) == y[400:]).mean()
    assert acc > 0.4                         # chance is 0.1; a broken model stays near it
    p1 = ram.predict_proba(x[400:], n_samples=5, seed=3)
    p2 = ram.predict_proba(x[400:], n_samples=5, seed=3)
    assert np.array_equal(p1, p2)
    assert np.allclose(p1.sum(1), 1)
    path = tmp_path / "ram.npz"
    ram.save(path)
    again = Aligner.load(path)
    assert np.array_equal(again.predict(x[400:]), ram.predict(x[400:]))
    assert np.array_equal(again.predict_proba(x[400:], n_samples=5, seed=3), p1)


def test_files_written_when_the_estimator_was_a_torch_module_still_load(tmp_path):
    """The earlier form: flat training settings, the same state_dict keys, no state_attribute."""
    x, y = _digits(n=60)
    flat = {"max_epochs": 1, "batch_size": 30, "lr": 1e-3, "seed": 0, "device": "cpu"}
    ram = GlimpseAttention(image_size=(8, 8), n_glimpses=3, glimpse_size=4, glimpse_hidden=8,
                           location_hidden=8, core_hidden=16, train=dict(flat)).fit(x, y)
    ram.save(tmp_path / "ram.npz")
    write_as_earlier_file(tmp_path / "ram.npz", tmp_path / "old.npz", flat)
    loaded = GlimpseAttention.load(tmp_path / "old.npz")
    assert loaded.train == flat and loaded.image_size == (8, 8)
    np.testing.assert_array_equal(loaded.predict_proba(x, n_samples=3, seed=1),
                                  ram.predict_proba(x, n_samples=3, seed=1))


def test_construction_stores_the_arguments_and_does_nothing():
    ram = GlimpseAttention(image_size=[16, 12], n_glimpses=0, location_std=-1.0)   # not checked yet
    assert ram.image_size == [16, 12] and not hasattr(ram, "module_")
    copy = clone(ram)
    assert copy.image_size == [16, 12] and copy.get_params(deep=False) == ram.get_params(deep=False)
    with pytest.raises(ValueError, match="n_glimpses"):
        ram.fit(torch.rand(2, 1, 16, 12), [0, 1])
    with pytest.raises(ValueError, match="not fitted"):
        GlimpseAttention().align(torch.rand(28, 28))


def test_align_returns_the_trajectory_image_on_side_x():
    ram, _ = _fitted(n_scales=3)
    image = torch.rand(20, 20)
    a = ram.align(image)
    assert a.shape == (400, 4)                       # (H * W pixels, n_glimpses)
    assert np.array_equal(a.path()[:, 1], np.arange(4))
    assert a.extras["locations"].shape == (4, 2)
    assert a.extras["patch_sizes_px"] == [4.0, 8.0, 16.0]
    centre = a.extras["centres_px"][0]
    assert np.allclose(centre, [9.5, 9.5])          # first glimpse at the image centre
    assert a.path()[0, 0] == 10 * 20 + 10           # the pixel under it (9.5 rounds to 10)
    cx, cy = a.extras["centres_px"].T
    assert np.array_equal(a.path()[:, 0], np.clip(np.round(cy), 0, 19) * 20 + np.clip(np.round(cx), 0, 19))
    assert not a.monotonic and a.extras["image_size"] == (20, 20)
    assert ram.align(image[None]).shape == (400, 4)   # (C, H, W) as well


def test_align_takes_one_image_and_refuses_a_second_argument():
    ram, x = _fitted()
    with pytest.raises(TypeError, match=r"glimpse sequence.*\by\b"):
        ram.align(x[0], x[1])
    with pytest.raises(TypeError, match=r"\bY\b"):
        ram.align_batch(x, x)
    with pytest.raises(ValueError, match="one image.*align_batch"):
        ram.align(x)
    with pytest.raises(ValueError, match="sample"):
        ram.align(x[0], sample="yes")


def test_align_batch_equals_align_image_by_image():
    ram, x = _fitted(core="lstm")
    batch = ram.align_batch(x[:5])
    as_list = ram.align_batch([x[i] for i in range(5)])
    assert len(batch) == len(as_list) == 5
    for i in range(5):
        single = ram.align(x[i])
        for other in (batch[i], as_list[i]):
            assert other.shape == single.shape
            np.testing.assert_array_equal(other.path(), single.path())
            np.testing.assert_allclose(other.extras["locations"], single.extras["locations"],
                                       rtol=1e-5, atol=1e-6)
            assert other.extras["predicted_class"] == single.extras["predicted_class"]
    with pytest.raises(ValueError, match="images"):
        ram.align_batch(x[:0])


def test_inputs_not_modified():
    net = GlimpseAttentionModule(n_glimpses=2, glimpse_size=4)
    x = torch.rand(2, 1, 16, 16)
    before = x.clone()
    net.loss(x, torch.tensor([1, 2]))
    assert torch.equal(x, before)
    ram, x = _fitted()
    before = x.clone()
    ram.align(x[0])
    ram.align_batch(x)
    ram.predict_proba(x, n_samples=2)
    assert torch.equal(x, before)


@pytest.mark.parametrize("kwargs, name", [
    ({"n_glimpses": 0}, "n_glimpses"),
    ({"core": "gru"}, "core"),
    ({"location_std": 0.0}, "location_std"),
    ({"image_size": (0, 3)}, "image_size"),
    ({"image_size": 28}, "image_size"),
    ({"first_glimpse": "middle"}, "first_glimpse"),
    ({"n_rollouts": 0}, "n_rollouts"),
    ({"n_rollouts": 1.5}, "n_rollouts"),
    ({"reinforce_to_core": "yes"}, "reinforce_to_core"),
    ({"location_lr_scale": 0.0}, "location_lr_scale"),
    ({"location_lr_scale": float("nan")}, "location_lr_scale"),
    ({"policy": "greedy"}, "policy"),
    ({"train": {"batch_size": 0}}, "train.batch_size"),
])
def test_bad_parameters_are_refused_by_fit(kwargs, name):
    ram = GlimpseAttention(**kwargs)
    with pytest.raises(ValueError, match=name):
        ram.fit(torch.rand(2, 1, 28, 28), [0, 1])
    module_args = {k: v for k, v in kwargs.items()
                   if k not in ("image_size", "n_rollouts", "location_lr_scale", "train")}
    if module_args:
        with pytest.raises(ValueError, match=name):
            GlimpseAttentionModule(**module_args)


def test_bad_inputs():
    ram, _ = _fitted(image_size=(16, 16))
    with pytest.raises(ValueError, match="shape"):
        ram.predict(torch.rand(2, 1, 15, 16))
    bad = torch.rand(2, 1, 16, 16)
    bad[1, 0, 3, 3] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        ram.predict(bad)
    with pytest.raises(ValueError, match="labels"):
        GlimpseAttention(image_size=(16, 16)).fit(torch.rand(2, 1, 16, 16), [0, 11])
    with pytest.raises(ValueError, match="validation"):
        GlimpseAttention(image_size=(16, 16)).fit(torch.rand(2, 1, 16, 16), [0, 1],
                                                  validation=torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match="n_samples"):
        ram.predict(torch.rand(2, 1, 16, 16), n_samples=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    net = GlimpseAttentionModule(n_glimpses=3, glimpse_size=4, n_scales=2)
    x = torch.rand(4, 1, 16, 16)
    cpu, _ = net(x, sample=False)
    gpu, _ = net.to("cuda")(x.cuda(), sample=False)
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_and_readout():
    x, y = _digits(n=64)
    ram = GlimpseAttention(image_size=(8, 8), n_glimpses=3, glimpse_size=4,
                           train={"max_epochs": 1, "batch_size": 32, "device": "cuda"}).fit(x, y)
    assert next(ram.module_.parameters()).is_cuda
    on_gpu = ram.predict_proba(x), ram.align(x[0]).extras["locations"]
    ram.to("cpu")
    np.testing.assert_allclose(ram.predict_proba(x), on_gpu[0], atol=1e-5)
    np.testing.assert_allclose(ram.align(x[0]).extras["locations"], on_gpu[1], atol=1e-5)


def test_random_policy_control():
    x, y = torch.rand(6, 1, 16, 16), torch.randint(0, 10, (6,))
    net = GlimpseAttentionModule(n_glimpses=4, glimpse_size=4, policy="random")
    logits, info = net(x, sample=False)
    locs = info["locations"]
    assert torch.all(locs[:, 0] == 0)                          # first glimpse as for "learned"
    assert locs.shape == (6, 4, 2) and torch.all(locs.abs() <= 1)
    assert not torch.allclose(locs[:, 1], locs[:, 2])          # later ones random, even when not sampling
    assert torch.allclose(info["log_probs"], torch.full((6, 3), -float(np.log(4.0))))
    loss = net.loss(x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert net.location_net.weight.grad is None                # no REINFORCE term
    ram, _ = _fitted(image_size=(16, 16), policy="random")
    p1 = ram.predict_proba(x, n_samples=1, seed=2)
    assert np.array_equal(p1, ram.predict_proba(x, n_samples=1, seed=2))   # seeded
    assert ram.get_params()["policy"] == "random"


def test_first_glimpse_option():
    x = torch.rand(4, 1, 16, 16)
    centre = GlimpseAttentionModule(n_glimpses=3, glimpse_size=4, first_glimpse="centre")
    _, info = centre(x, sample=True)
    assert torch.all(info["locations"][:, 0] == 0)              # also when sampling (training)
    assert not torch.all(info["locations"][:, 1] == 0)          # later ones are sampled
    rand = GlimpseAttentionModule(n_glimpses=3, glimpse_size=4, first_glimpse="random")
    _, info = rand(x, sample=True)
    assert torch.all(info["locations"][:, 0] != 0)
    _, info = rand(x, sample=False)
    assert torch.all(info["locations"][:, 0] == 0)              # the M = 1 test starts at the centre
    assert GlimpseAttention(first_glimpse="centre").get_params()["first_glimpse"] == "centre"


def test_n_rollouts_repeats_each_training_image():
    x, y = torch.rand(12, 1, 16, 16), torch.randint(0, 10, (12,))
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=2, glimpse_size=4, glimpse_hidden=8,
                           location_hidden=8, core_hidden=16, n_rollouts=3,
                           train={"max_epochs": 1, "batch_size": 4})
    sizes = []
    ram._ensure_module().register_forward_hook(lambda m, args, out: sizes.append(out[0].shape[0]))
    ram.fit(x, y)                                                # trains the module just built
    assert sizes == [12, 12, 12]                                 # 3 batches of 4 images x 3 rollouts
    assert np.isfinite(ram.history_["train_loss"]).all()


@pytest.mark.parametrize("to_core", [False, True])
def test_reinforce_to_core_routes_only_the_policy_gradient(to_core):
    torch.manual_seed(0)
    net = GlimpseAttentionModule(n_glimpses=3, glimpse_size=4, reinforce_to_core=to_core)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 10, (8,))
    logits, info = net(x, sample=True)
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.autograd.grad(ce, net.location_net.weight, allow_unused=True)[0] is None
    policy = -(info["log_probs"] * torch.randn(8, 2)).sum()
    g = torch.autograd.grad(policy, list(net.core_cell.parameters()) + list(net.what.parameters()),
                            allow_unused=True)
    if to_core:
        assert all(t is not None for t in g) and sum(float(t.abs().sum()) for t in g) > 0
    else:
        assert all(t is None for t in g)


def test_location_lr_scale_slows_only_the_policy():
    x, y = torch.rand(16, 1, 16, 16), torch.randint(0, 10, (16,))
    kw = dict(image_size=(16, 16), n_glimpses=3, glimpse_size=4, glimpse_hidden=8, location_hidden=8,
              core_hidden=16, train={"max_epochs": 2, "batch_size": 8, "lr": 1e-2})
    moved = {}
    for scale in (1.0, 1e-6):
        ram = GlimpseAttention(location_lr_scale=scale, **kw)
        module = ram._ensure_module()
        loc0, cls0 = module.location_net.weight.clone(), module.classifier.weight.clone()
        ram.fit(x, y)
        with torch.no_grad():
            moved[scale] = (float((module.location_net.weight - loc0).abs().max()),
                            float((module.classifier.weight - cls0).abs().max()))
    assert moved[1.0][0] > 1e-3 and moved[1e-6][0] < 1e-6
    assert moved[1e-6][1] > 1e-3                                 # the classifier still trains at lr
    assert GlimpseAttention(location_lr_scale=0.1).get_params()["location_lr_scale"] == 0.1
