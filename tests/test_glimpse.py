"""Recurrent attention model: the retina, the hybrid loss, Monte-Carlo prediction, Alignment."""

import numpy as np
import pytest
import torch

from mmalign import Aligner
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


def test_forward_shapes_and_fixed_first_location():
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=4, glimpse_size=4, n_scales=2)
    logits, info = ram(torch.rand(5, 1, 16, 16), sample=False)
    assert logits.shape == (5, 10)
    assert info["locations"].shape == (5, 4, 2)
    assert torch.all(info["locations"][:, 0] == 0)
    assert info["log_probs"].shape == info["baselines"].shape == (5, 3)


def test_loss_routes_gradients_as_designed():
    torch.manual_seed(0)
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=3, glimpse_size=4)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 10, (8,))
    ram.loss(x, y).backward()
    for name in ("classifier", "location_net", "baseline_net", "what", "core_cell"):
        grads = [p.grad for p in getattr(ram, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name


def test_reinforce_gradient_matches_the_score_function():
    """With the classifier frozen at a known reward, the location gradient is -E[(R-b) d log pi]."""
    torch.manual_seed(0)
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=2, glimpse_size=4)
    x, y = torch.rand(4, 1, 16, 16), torch.randint(0, 10, (4,))
    torch.manual_seed(1)
    ram.zero_grad()
    ram.loss(x, y).backward()
    got = ram.location_net.bias.grad.clone()
    torch.manual_seed(1)
    logits, info = ram(x, sample=True)
    reward = (logits.argmax(1) == y).float()
    adv = (reward[:, None] - info["baselines"]).detach()
    expect = torch.autograd.grad(-(info["log_probs"] * adv).sum(1).mean(), ram.location_net.bias)[0]
    assert torch.allclose(got, expect, atol=1e-6)


def test_fit_learns_and_monte_carlo_is_seeded(tmp_path):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images[:500] / 16.0, dtype=torch.float32)[:, None]
    y = d.target[:500]
    ram = GlimpseAttention(image_size=(8, 8), n_glimpses=2, glimpse_size=4, n_scales=2,
                           glimpse_hidden=32, location_hidden=16, core_hidden=64, core="lstm",
                           max_epochs=10, batch_size=25, lr=3e-3)
    ram.fit(x[:400], y[:400])
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


def test_align_returns_the_trajectory():
    ram = GlimpseAttention(image_size=(20, 20), n_glimpses=4, glimpse_size=4, n_scales=3)
    a = ram.align(torch.rand(20, 20))
    assert a.shape == (4, 400)
    assert a.extras["locations"].shape == (4, 2)
    assert a.extras["patch_sizes_px"] == [4.0, 8.0, 16.0]
    centre = a.extras["centres_px"][0]
    assert np.allclose(centre, [9.5, 9.5])          # first glimpse at the image centre
    assert not a.monotonic
    batch = ram.align(torch.rand(3, 1, 20, 20))
    assert len(batch) == 3


def test_inputs_not_modified():
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=2, glimpse_size=4)
    x = torch.rand(2, 1, 16, 16)
    before = x.clone()
    ram.loss(x, torch.tensor([1, 2]))
    ram.align(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("kwargs, name", [
    ({"n_glimpses": 0}, "n_glimpses"),
    ({"core": "gru"}, "core"),
    ({"location_std": 0.0}, "location_std"),
    ({"image_size": (0, 3)}, "image_size"),
    ({"first_glimpse": "middle"}, "first_glimpse"),
    ({"n_rollouts": 0}, "n_rollouts"),
    ({"n_rollouts": 1.5}, "n_rollouts"),
    ({"reinforce_to_core": "yes"}, "reinforce_to_core"),
    ({"location_lr_scale": 0.0}, "location_lr_scale"),
    ({"location_lr_scale": float("nan")}, "location_lr_scale"),
])
def test_bad_parameters(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GlimpseAttention(**kwargs)


def test_bad_inputs():
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=2, glimpse_size=4)
    with pytest.raises(ValueError, match="shape"):
        ram(torch.rand(2, 1, 15, 16))
    bad = torch.rand(2, 1, 16, 16)
    bad[1, 0, 3, 3] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        ram(bad)
    with pytest.raises(ValueError, match="labels"):
        ram.fit(torch.rand(2, 1, 16, 16), [0, 11])
    with pytest.raises(ValueError, match="n_samples"):
        ram.predict(torch.rand(2, 1, 16, 16), n_samples=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=3, glimpse_size=4, n_scales=2)
    x = torch.rand(4, 1, 16, 16)
    cpu, _ = ram(x, sample=False)
    gpu, _ = ram.to("cuda")(x.cuda(), sample=False)
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


def test_random_policy_control():
    x, y = torch.rand(6, 1, 16, 16), torch.randint(0, 10, (6,))
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=4, glimpse_size=4, policy="random")
    logits, info = ram(x, sample=False)
    locs = info["locations"]
    assert torch.all(locs[:, 0] == 0)                          # first glimpse as for "learned"
    assert locs.shape == (6, 4, 2) and torch.all(locs.abs() <= 1)
    assert not torch.allclose(locs[:, 1], locs[:, 2])          # later ones random, even when not sampling
    assert torch.allclose(info["log_probs"], torch.full((6, 3), -float(np.log(4.0))))
    loss = ram.loss(x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert ram.location_net.weight.grad is None                # no REINFORCE term
    p1 = ram.predict_proba(x, n_samples=1, seed=2)
    assert np.array_equal(p1, ram.predict_proba(x, n_samples=1, seed=2))   # seeded
    assert ram.get_params()["policy"] == "random"
    with pytest.raises(ValueError, match="policy"):
        GlimpseAttention(policy="greedy")


def test_first_glimpse_option():
    x = torch.rand(4, 1, 16, 16)
    centre = GlimpseAttention(image_size=(16, 16), n_glimpses=3, glimpse_size=4, first_glimpse="centre")
    _, info = centre(x, sample=True)
    assert torch.all(info["locations"][:, 0] == 0)              # also when sampling (training)
    assert not torch.all(info["locations"][:, 1] == 0)          # later ones are sampled
    rand = GlimpseAttention(image_size=(16, 16), n_glimpses=3, glimpse_size=4, first_glimpse="random")
    _, info = rand(x, sample=True)
    assert torch.all(info["locations"][:, 0] != 0)
    _, info = rand(x, sample=False)
    assert torch.all(info["locations"][:, 0] == 0)              # the M = 1 test starts at the centre
    assert GlimpseAttention(first_glimpse="centre").get_params()["first_glimpse"] == "centre"


def test_n_rollouts_repeats_each_training_image():
    x, y = torch.rand(12, 1, 16, 16), torch.randint(0, 10, (12,))
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=2, glimpse_size=4, glimpse_hidden=8,
                           location_hidden=8, core_hidden=16, n_rollouts=3, max_epochs=1, batch_size=4)
    sizes = []
    ram.register_forward_hook(lambda m, args, out: sizes.append(out[0].shape[0]))
    ram.fit(x, y)
    assert sizes == [12, 12, 12]                                 # 3 batches of 4 images x 3 rollouts
    assert np.isfinite(ram.history_["train_loss"]).all()


@pytest.mark.parametrize("to_core", [False, True])
def test_reinforce_to_core_routes_only_the_policy_gradient(to_core):
    torch.manual_seed(0)
    ram = GlimpseAttention(image_size=(16, 16), n_glimpses=3, glimpse_size=4, reinforce_to_core=to_core)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(0, 10, (8,))
    logits, info = ram(x, sample=True)
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.autograd.grad(ce, ram.location_net.weight, allow_unused=True)[0] is None
    policy = -(info["log_probs"] * torch.randn(8, 2)).sum()
    g = torch.autograd.grad(policy, list(ram.core_cell.parameters()) + list(ram.what.parameters()),
                            allow_unused=True)
    if to_core:
        assert all(t is not None for t in g) and sum(float(t.abs().sum()) for t in g) > 0
    else:
        assert all(t is None for t in g)


def test_location_lr_scale_slows_only_the_policy():
    x, y = torch.rand(16, 1, 16, 16), torch.randint(0, 10, (16,))
    kw = dict(image_size=(16, 16), n_glimpses=3, glimpse_size=4, glimpse_hidden=8, location_hidden=8,
              core_hidden=16, max_epochs=2, batch_size=8, lr=1e-2)
    moved = {}
    for scale in (1.0, 1e-6):
        ram = GlimpseAttention(location_lr_scale=scale, **kw)
        loc0, cls0 = ram.location_net.weight.clone(), ram.classifier.weight.clone()
        ram.fit(x, y)
        with torch.no_grad():
            moved[scale] = (float((ram.location_net.weight - loc0).abs().max()),
                            float((ram.classifier.weight - cls0).abs().max()))
    assert moved[1.0][0] > 1e-3 and moved[1e-6][0] < 1e-6
    assert moved[1e-6][1] > 1e-3                                 # the classifier still trains at lr
    assert GlimpseAttention(location_lr_scale=0.1).get_params()["location_lr_scale"] == 0.1
