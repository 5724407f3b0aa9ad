"""Show-attend-tell: shapes, the regulariser, REINFORCE, decoding, learning, save/load, inputs."""

import numpy as np
import pytest
import torch

from ddp_spy import needs_gloo, run_two_ranks, spy_on_training
from mmalign import Aligner, Alignment
from mmalign.attention.show_attend_tell import (ShowAttendTell, ShowAttendTellModule, cell_positions,
                                                grid_cell_masks, torchvision_encoder, word_box_masks)
from mmalign.datasets.digit_scenes import digit_scenes
from mmalign.metrics import attention_mass_inside, pointing_accuracy

torch.set_num_threads(1)
SMALL = dict(embed_dim=16, hidden_dim=32, attention_dim=16)


TRAIN_KEYS = ("max_epochs", "batch_size", "lr", "seed", "device")


def _tiny(attention="soft", **kw):
    """A tiny ShowAttendTell; training settings may be given flat (the tests' shorthand)."""
    params = dict(SMALL, max_epochs=1, batch_size=8)
    params.update(kw)
    train = {k: params.pop(k) for k in TRAIN_KEYS if k in params}
    return ShowAttendTell(10, attention=attention, **params, train=train)


def _net(attention="soft", **kw):
    """The network of a tiny ShowAttendTell, built (seeded) without training."""
    return _tiny(attention, **kw)._build_module()


def _data(n=8, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, size, size, generator=g)
    caps = [[4 + (i % 5), 5 + (i % 3)][: 1 + i % 2] for i in range(n)]
    return images, caps


def _glyph_scenes(n, seed, size=32):
    """Scenes of 1-2 of ten fixed random 8 x 8 glyphs (a fast stand-in for MNIST digits)."""
    rng = np.random.default_rng(123)
    glyphs = (rng.random((10, 8, 8)) < 0.45).astype(np.float32)
    return digit_scenes(glyphs, np.arange(10), n, size=size, n_digits=(1, 2), seed=seed,
                        scale=(1.0, 1.4), max_tries=1000)


def _captions(scenes):
    return [scenes.vocabulary.encode(c) for c in scenes.captions]


# --------------------------------------------------------------------------- network
def test_forward_shapes_and_rows_sum_to_one():
    model = _net().eval()
    images, _ = _data(3)
    cap_in = torch.tensor([[1, 4, 5, 6], [1, 7, 0, 0], [1, 8, 9, 0]])
    lengths = torch.tensor([4, 2, 3])
    logits, alphas = model(images, cap_in, lengths)
    assert logits.shape == (3, 4, 10)
    assert alphas.shape == (3, 4, 16)                       # 32 x 32 -> 4 x 4 grid
    valid = torch.arange(4)[None] < lengths[:, None]
    sums = alphas.sum(-1)
    assert torch.allclose(sums[valid], torch.ones(int(valid.sum())), atol=1e-6)
    assert torch.all(sums[~valid] == 0)
    assert torch.all(alphas >= 0)


def test_grid_follows_the_image_size_and_cells_are_row_major():
    model = _net().eval()
    ann, grid = model.encode(torch.rand(2, 1, 48, 64))
    assert grid == (6, 8) and ann.shape == (2, 48, 64 + 18)
    pos = cell_positions((6, 8))
    assert torch.allclose(ann[0, :, -18:], pos)
    assert torch.allclose(pos[9, :2], torch.tensor([3 / 8 - 1, 3 / 6 - 1]))   # row 1, column 1


def test_doubly_stochastic_term_matches_hand_computation():
    est = _tiny(alpha_c=0.7)
    model = est._build_module().eval()
    images, caps = _data(4)
    x, cap_in, targets = est._dataset(images, caps)
    loss, terms = model.loss(x, cap_in, targets, return_terms=True)
    valid = targets != -100
    logits, alphas = model(x, cap_in, valid.sum(1))
    expected_ds = 0.0
    for b in range(4):
        coverage = alphas[b, : int(valid[b].sum())].sum(0)          # Σ_t α_ti over the caption's steps
        expected_ds += float(((1.0 - coverage) ** 2).sum().detach())
    assert terms["doubly_stochastic"].item() == pytest.approx(expected_ds, rel=1e-5)
    logp = torch.log_softmax(logits, -1)
    nll = -float(sum(logp[b, t, targets[b, t]].detach()
                     for b in range(4) for t in range(targets.shape[1]) if valid[b, t]))
    assert loss.item() == pytest.approx((nll + 0.7 * expected_ds) / int(valid.sum()), rel=1e-5)


def test_reinforce_gradient_is_the_score_function_formula():
    """With every caption sampled (hard_mix=0) the attention layer's gradient is exactly
    -(1/N) Σ_b [(R_b - b) Σ_t log α_{t,s_t} + λ_e Σ_t H(α_t)]."""
    est = _tiny("hard", hard_mix=0.0, alpha_c=0.0, entropy_weight=0.05)
    model = est._build_module().train()
    images, caps = _data(6)
    x, cap_in, targets = est._dataset(images, caps)
    model.baseline_.fill_(-6.0)
    model.baseline_set_.fill_(True)
    torch.manual_seed(3)
    model.zero_grad()
    model.loss(x, cap_in, targets).backward()
    got = [p.grad.clone() for p in model.attend.parameters()]
    assert model.baseline_.item() != -6.0                     # the moving average moved
    model.baseline_.fill_(-6.0)

    torch.manual_seed(3)
    _, terms = model.loss(x, cap_in, targets, return_terms=True)
    info = terms["info"]
    valid = targets != -100
    alpha, idx = info["alpha"], info["index"]
    safe = torch.where(valid[..., None], alpha, torch.ones_like(alpha))   # rows past the end are 0
    log_pi = torch.log(safe.gather(-1, idx[..., None]).squeeze(-1)) * valid        # log α_{t, s_t}
    entropy = -torch.special.xlogy(safe, safe).sum(-1) * valid
    logits = info["logits"]
    reward = (torch.log_softmax(logits, -1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)
              * valid).sum(1).detach()
    assert torch.allclose(terms["reward"], reward)
    assert terms["baseline"].item() == -6.0
    surrogate = -(((reward + 6.0)[:, None] * log_pi).sum() + 0.05 * entropy.sum()) / int(valid.sum())
    expect = torch.autograd.grad(surrogate, list(model.attend.parameters()))
    for g, e in zip(got, expect):
        assert torch.allclose(g, e, atol=1e-6, rtol=1e-5)
    decay = model.baseline_decay
    assert model.baseline_.item() == pytest.approx(decay * -6.0 + (1 - decay) * reward.mean().item(), rel=1e-5)


def test_hard_mix_one_is_the_soft_model():
    soft = _net("soft", alpha_c=0.0).train()
    hard = _net("hard", alpha_c=0.0, hard_mix=1.0).train()
    hard.load_state_dict(soft.state_dict())
    images, caps = _data(4)
    x, cap_in, targets = _tiny()._dataset(images, caps)
    _, terms = hard.loss(x, cap_in, targets, return_terms=True)
    assert not bool(terms["sampled"].any())
    assert soft.loss(x, cap_in, targets).item() == pytest.approx(hard.loss(x, cap_in, targets).item(), rel=1e-6)


# --------------------------------------------------------------------------- decoding
def test_hard_mix_warmup_schedule():
    model = _tiny("hard", hard_mix=0.2, hard_mix_warmup=4)
    assert [model.hard_mix_at(e) for e in (0, 1, 2, 4, 9)] == pytest.approx([1.0, 0.8, 0.6, 0.2, 0.2])
    assert _tiny("hard", hard_mix=0.3).hard_mix_at(0) == 0.3          # warm-up 0: the paper's constant mix
    with pytest.raises(ValueError, match="epoch"):
        model.hard_mix_at(-1)


@pytest.mark.parametrize("regenerate", [False, True])
def test_fit_anneals_hard_mix_per_batch(regenerate, monkeypatch):
    """fit advances the warm-up after every mini-batch, also across regenerated epochs;
    outside fit the model mixes with the constant hard_mix."""
    images, caps = _data(8)
    model = _tiny("hard", hard_mix=0.0, hard_mix_warmup=2, max_epochs=3, batch_size=4)
    seen, current = [], ShowAttendTellModule._current_hard_mix
    monkeypatch.setattr(ShowAttendTellModule, "_current_hard_mix",
                        lambda self: seen.append(current(self)) or seen[-1])
    model.fit(images, caps, regenerate=(lambda epoch: (images, caps)) if regenerate else None)
    assert seen == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0, 0.0])
    assert model.history_["hard_mix"] == pytest.approx([1.0, 0.5, 0.0])
    assert current(model.module_) == 0.0
    model.module_.train()
    x, cap_in, targets = model._dataset(images, caps)
    _, terms = model.module_.loss(x, cap_in, targets, return_terms=True)
    assert terms["sampled"].all()                                     # hard_mix 0 after fit


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_beam_size_one_equals_greedy(attention):
    images, caps = _data(8)
    model = _tiny(attention, hard_inference="argmax", max_epochs=2).fit(images, caps)
    greedy = model.caption(images, beam_size=1, max_len=5)
    model.module_.eval()
    beam = model._beam_search(images.to(torch.float32), 1, 5, 0.0)
    for g, b in zip(greedy, beam):
        assert g.tokens == b.tokens
        assert g.finished == b.finished
        np.testing.assert_allclose(g.attention, b.attention, atol=1e-6)
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-5)
    wide = model.caption(images[:3], beam_size=3, max_len=5)
    for h in wide:
        assert h.attention.shape == (len(h.tokens), 16)
        np.testing.assert_allclose(h.attention.sum(1), 1.0, atol=1e-6)


def test_align_teacher_forced_and_generated():
    images, caps = _data(8)
    model = _tiny(max_epochs=1).fit(images, caps)
    al = model.align(images[0, 0], [4, 5, 6])
    assert isinstance(al, Alignment)
    # the image's grid cells on side x (the first argument), the words on side y
    assert al.shape == (16, 3) and al.extras["grid_shape"] == (4, 4) and al.extras["tokens"] == [4, 5, 6]
    assert al.distribution_over == "x"
    np.testing.assert_allclose(al.matrix().sum(0), 1.0, atol=1e-6)
    assert al.extras["eos_weights"].shape == (16,) and al.extras["betas"].shape == (3,)
    assert not al.monotonic and al.path().shape == (3, 2) and al.path()[:, 1].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(al.path()[:, 0], al.matrix().argmax(0))
    assert model.align(images[0], [4, 5, 6]).shape == (16, 3)       # (1, h, w): one image too
    batch = model.align_batch(images[:2], [[4], [5, 6]])
    assert [a.shape for a in batch] == [(16, 1), (16, 2)]
    np.testing.assert_allclose(batch[1].matrix(), model.align(images[1, 0], [5, 6]).matrix(), atol=1e-6)
    hyps = model.caption(images)
    for b, h in enumerate(hyps):
        assert h.attention.shape == (len(h.tokens), 16)
        if h.tokens:                                   # align() without a caption: the model's own
            al = model.align(images[b, 0])
            assert al.extras["tokens"] == h.tokens
            np.testing.assert_allclose(al.matrix(), h.attention.T, atol=1e-6)
            teacher = model.align(images[b, 0], h.tokens)  # teacher-forcing its own words: same attention
            np.testing.assert_allclose(teacher.matrix(), h.attention.T, atol=1e-6)
            break


def test_align_batch_equals_align_image_by_image():
    images, caps = _data(8)
    model = _tiny("hard", hard_inference="argmax", max_epochs=2, batch_size=4).fit(images, caps)
    batch = model.align_batch(images[:5], caps[:5])
    assert len(batch) == 5
    for image, cap, al in zip(images[:5], caps[:5], batch):
        one = model.align(image, cap)
        assert al.shape == one.shape == (16, len(cap)) and al.distribution_over == one.distribution_over == "x"
        np.testing.assert_allclose(al.matrix(), one.matrix(), atol=1e-6)
        assert al.extras["tokens"] == one.extras["tokens"] == cap
        np.testing.assert_allclose(al.extras["betas"], one.extras["betas"], atol=1e-6)
        assert al.extras["log_prob"] == pytest.approx(one.extras["log_prob"], abs=1e-5)
    with torch.no_grad():                    # the tiny model says EOS first: make it speak
        model.module_.out.bias[5] += 10.0
    decoded = model.align_batch(images[:3, 0], max_len=4)      # (B, h, w) with one channel
    for image, al in zip(images[:3], decoded):
        one = model.align(image[0], max_len=4)
        assert one.extras["tokens"] and one.shape == (16, len(one.extras["tokens"]))
        assert al.extras["tokens"] == one.extras["tokens"]
        np.testing.assert_allclose(al.matrix(), one.matrix(), atol=1e-6)
    # one pair to align, a batch to align_batch: no guessing from the input's shape
    with pytest.raises(ValueError, match="image must be one image.*align_batch"):
        model.align(images[:2], [4])
    with pytest.raises(ValueError, match="caption must be one 1-d sequence.*align_batch"):
        model.align(images[0], [[4], [5]])
    with pytest.raises(ValueError, match="images must be a batch.*align aligns one image"):
        model.align_batch(images[0, 0], [[4]])
    with pytest.raises(ValueError, match="captions must be a list of sequences"):
        model.align_batch(images[:1], [4, 5])
    with pytest.raises(ValueError, match="images and captions must hold the same number"):
        model.align_batch(images[:2], [[4]])


# --------------------------------------------------------------------------- learning
def _token_error_and_pointing(model, test):
    x, cap_in, targets = model._dataset(test.images, _captions(test))
    error = model._token_error(model.module_.eval(), (x, cap_in, targets), 32)
    weights, masks = [], []
    for al, boxes in zip(model.align_batch(test.images, _captions(test)), test.word_boxes):
        weights.append(al.matrix().T)                  # one row per word
        masks.append(grid_cell_masks(np.array(boxes), al.extras["grid_shape"], (32, 32)))
    weights, masks = np.concatenate(weights), np.concatenate(masks)
    return error, pointing_accuracy(weights, masks), attention_mass_inside(weights, masks), masks.mean()


def test_soft_then_hard_attention_learn_to_caption_and_point():
    """Soft attention from scratch, then hard attention (REINFORCE) on the soft model's encoder.

    Per-token error counts words and EOS (a word guessed at chance is wrong 9 times in 10);
    a random cell overlaps the word's glyph with probability ``chance``.
    """
    import copy

    regenerate = lambda e: (lambda s: (s.images, _captions(s)))(_glyph_scenes(600, seed=e))  # noqa: E731
    train, test = _glyph_scenes(600, seed=0), _glyph_scenes(150, seed=99)
    params = dict(embed_dim=32, hidden_dim=64, attention_dim=32, alpha_c=0.0,
                  train={"max_epochs": 15, "batch_size": 16, "lr": 3e-3, "seed": 0})
    soft = ShowAttendTell(len(train.vocabulary), **params)
    soft.fit(train.images, _captions(train), regenerate=regenerate)
    error, hit, mass, chance = _token_error_and_pointing(soft, test)
    assert error < 0.1, error
    assert hit > min(0.9, chance + 0.4), (hit, chance)
    assert mass > chance + 0.3, (mass, chance)

    hard = ShowAttendTell(len(train.vocabulary), attention="hard", encoder=copy.deepcopy(soft.module_.cnn),
                          encoder_dim=64, **params)
    hard.fit(train.images, _captions(train), regenerate=regenerate)
    assert hard.module_.baseline_set_ and hard.module_.baseline_.item() < 0
    error, hit, mass, chance = _token_error_and_pointing(hard, test)
    assert error < 0.25, error
    assert hit > chance + 0.3, (hit, chance)


# --------------------------------------------------------------------------- persistence, encoders, devices
def test_save_load_round_trip(tmp_path):
    images, caps = _data(8)
    model = _tiny("hard", max_epochs=1).fit(images, caps)
    path = tmp_path / "sat.npz"
    model.save(path)
    loaded = Aligner.load(path)
    assert isinstance(loaded, ShowAttendTell)
    assert loaded.get_params() == model.get_params()
    assert isinstance(loaded.module_, ShowAttendTellModule) and loaded.annotation_dim_ == 64 + 18
    assert loaded.module_.baseline_.item() == model.module_.baseline_.item()
    model.module_.eval(), loaded.module_.eval()
    cap_in = torch.tensor([[1, 4, 5]] * 8)
    for a, b in zip(model.module_(images, cap_in), loaded.module_(images, cap_in)):
        assert torch.allclose(a, b)
    np.testing.assert_allclose(loaded.align(images[0, 0], [4, 5]).matrix(),
                               model.align(images[0, 0], [4, 5]).matrix())
    assert loaded.caption(images[0, 0]).tokens == model.caption(images[0, 0]).tokens


def test_torchvision_backbone_gives_a_grid():
    pytest.importorskip("torchvision")
    model = ShowAttendTell(10, encoder="resnet18", in_channels=1, **SMALL)
    assert not hasattr(model, "annotation_dim_")                  # construction does no work
    net = model._build_module().eval()
    assert net.annotation_dim == 512 + 18
    logits, alphas = net(torch.rand(2, 1, 64, 64), torch.tensor([[1, 4], [1, 5]]))
    assert alphas.shape == (2, 2, 4)                              # stride 32: a 2 x 2 grid
    trunk = torchvision_encoder("resnet18", weights=None, in_channels=3, truncate_after="layer3")
    assert trunk(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 4, 4)
    custom = ShowAttendTell(10, encoder=trunk, in_channels=3, **SMALL, train={"max_epochs": 1})
    custom.fit(torch.rand(2, 3, 32, 32), [[4], [5, 6]])
    assert custom.module_.cnn is trunk and custom.annotation_dim_ == 256 + 18
    assert custom.align(torch.rand(3, 32, 32), [4]).shape == (4, 1)   # (C, h, w): one image
    with pytest.raises(ValueError, match="name"):
        torchvision_encoder("no_such_net")
    with pytest.raises(ValueError, match="truncate_after"):
        torchvision_encoder("resnet18", truncate_after="layer9")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_caption_align():
    images, caps = _data(8)
    model = _tiny("hard", max_epochs=1, device="cuda").fit(images, caps)
    assert model.module_.out.weight.device.type == "cuda"
    al = model.align(images[0, 0], [4, 5])
    np.testing.assert_allclose(al.matrix().sum(0), 1.0, atol=1e-5)
    assert [a.shape for a in model.align_batch(images[:2], [[4], [5, 6]])] == [(16, 1), (16, 2)]
    assert len(model.caption(images[:2], beam_size=2, max_len=4)) == 2


# --------------------------------------------------------------------------- inputs
def test_bad_arguments_raise_value_errors_naming_them():
    images, caps = _data(4)

    def refused(match, **params):
        model = ShowAttendTell(**{"vocab_size": 10, **params})    # stored as given: fit refuses them
        with pytest.raises(ValueError, match=match):
            model.fit(images, caps)

    refused("attention", attention="medium")
    refused("vocab_size", vocab_size=3)
    refused("hard_mix", hard_mix=1.5)
    refused("hard_inference", hard_inference="sample")
    for bad_warmup in (-1, float("inf"), "4", True):
        refused("hard_mix_warmup", hard_mix_warmup=bad_warmup)
    refused("baseline_decay", baseline_decay=1.0)
    refused("encoder", encoder=3)
    refused("train.scheduler", train={"scheduler": "plateau"})
    refused("train.lr", train={"lr": -1.0})
    refused("train.patience", train={"patience": 1})                 # without validation data
    model = _tiny()
    with pytest.raises(ValueError, match="not fitted"):
        model.align(images[0, 0], [4])
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="images"):
        model.fit(bad, caps[:4])
    with pytest.raises(ValueError, match="channel"):
        model.fit(torch.rand(4, 3, 32, 32), caps[:4])
    with pytest.raises(ValueError, match="captions"):
        model.fit(images, [[4], [2], [5], [6]])                 # EOS id inside a caption
    with pytest.raises(ValueError, match="captions"):
        model.fit(images, [[4], [10], [5], [6]])                # outside the vocabulary
    with pytest.raises(ValueError, match="same number"):
        model.fit(images, caps[:3])
    with pytest.raises(ValueError, match="images"):
        model.fit(torch.rand(4, 1, 4, 4), caps[:4])
    model.fit(images, caps[:4])
    with pytest.raises(ValueError, match="beam_size"):
        model.caption(images[0, 0], beam_size=0)
    with pytest.raises(ValueError, match="max_len"):
        model.caption(images[0, 0], max_len=0)
    with pytest.raises(ValueError, match="caption"):
        model.align(images[0, 0], [[4], [5]])
    with pytest.raises(ValueError, match="boxes"):
        grid_cell_masks([0, 0, 1, 1], (2, 2), (8, 8))


def test_grid_cell_masks_by_hand():
    masks = grid_cell_masks([[8, 0, 9, 16], [np.nan] * 4], (2, 4), (16, 32))
    assert masks.shape == (2, 8)
    assert masks[0].reshape(2, 4).tolist() == [[False, True, False, False], [False, True, False, False]]
    assert not masks[1].any()


def test_attention_overlay_writes_a_png(tmp_path):
    from mmalign.plot import attention_overlay, save_attention_overlay

    images, caps = _data(8)
    model = _tiny(max_epochs=1).fit(images, caps)
    al = model.align(images[0, 0], [4, 5])
    out = tmp_path / "overlay.png"
    save_attention_overlay(images[0, 0], al, out, tokens=["four", "five"], boxes=[(0, 0, 8, 8), None])
    assert out.stat().st_size > 0
    from matplotlib.figure import Figure

    axes = attention_overlay(images[0, 0], al, axes=Figure().subplots(1, 3))   # one panel per word
    assert [ax.get_title() for ax in axes] == ["", "4", "5"]
    with pytest.raises(ValueError, match="grid_shape"):
        attention_overlay(np.zeros((8, 8)), np.ones((1, 5)) / 5, (2, 2))


# --------------------------------------------------------------------------- DDP
@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_fit_loss_goes_through_the_wrapped_forward(monkeypatch, attention):
    """Under DDP, gradients are only synchronised for what runs inside the wrapper's forward:
    every submodule call of the training loss must happen there."""
    spies = spy_on_training(monkeypatch)
    images, caps = _data(8)
    model = _tiny(attention, max_epochs=1, batch_size=4).fit(images, caps)
    assert spies and spies[0].calls == 2                       # two batches, each through the spy
    if attention == "hard":
        assert model.module_.baseline_set_                       # the loss still updated the baseline


def test_loss_equals_loss_from_outputs_of_the_forward():
    est = _tiny("hard", hard_mix=0.5)
    model = est._build_module().train()
    images, caps = _data(6)
    x, cap_in, targets = est._dataset(images, caps)
    model.baseline_.fill_(-3.0)
    model.baseline_set_.fill_(True)
    torch.manual_seed(5)
    a = model.loss(x, cap_in, targets)
    model.baseline_.fill_(-3.0)
    torch.manual_seed(5)
    info = model(x, cap_in, (targets != -100).sum(1), return_info=True)
    b = model.loss_from_outputs(info, targets)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    assert {"logits", "alpha", "mix", "log_prob", "entropy", "index"} <= set(info)


def _train_one_rank():
    images, caps = _data(16)
    model = _tiny("hard", max_epochs=2, batch_size=4, seed=0).fit(images, caps)  # half the data per rank
    return dict(model.module_.named_parameters())


@needs_gloo
def test_ddp_keeps_the_processes_in_step(tmp_path):
    a, b = run_two_ranks(_train_one_rank, tmp_path)
    init = dict(_net("hard", seed=0).named_parameters())
    assert not torch.equal(a["out.weight"], init["out.weight"])               # it trained
    for k in a:                                          # gradients were averaged: identical weights
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


def test_word_box_masks_keeps_words_with_a_box_in_order():
    extras = {"grid_shape": (2, 2), "image_size": (16, 16)}
    # ShowAttendTell's order: grid cells on side x, words on side y
    al = [Alignment(weights=np.eye(4)[[0, 3, 1]].T, distribution_over="x", extras=extras),
          Alignment(weights=np.full((4, 1), 0.25), distribution_over="x", extras=extras)]
    boxes = [[np.array([0, 0, 8, 8]), None, np.array([8, 0, 16, 8])], [np.array([8, 8, 16, 16])]]
    w, m = word_box_masks(al, boxes)
    np.testing.assert_array_equal(w, [[1, 0, 0, 0], [0, 1, 0, 0], [0.25] * 4])
    np.testing.assert_array_equal(m, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    assert pointing_accuracy(w, m) == pytest.approx(2 / 3)
    # the metrics also read the alignments themselves, one row per word
    assert pointing_accuracy(al[0], [[True] + [False] * 3, [False] * 4, [False, True, False, False]]) == 1.0
    # an alignment that records the words as its rows is read that way
    rows = [Alignment(weights=a.matrix().T, distribution_over="y", extras=extras) for a in al]
    np.testing.assert_array_equal(word_box_masks(rows, boxes)[0], w)
    with pytest.raises(ValueError, match="same length"):
        word_box_masks(al, boxes[:1])
    with pytest.raises(ValueError, match="grid_shape"):
        word_box_masks([Alignment(weights=np.full((3, 1), 1 / 3), distribution_over="x", extras=extras)],
                       boxes[1:])
    with pytest.raises(ValueError, match="word_boxes"):
        word_box_masks(al[1:], [boxes[0]])
