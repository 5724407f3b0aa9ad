"""Multimodal masked pretraining (MultimodalPretrainer, its objectives) and the fine-tuning heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmalign.aligner import Aligner
from mmalign.alignment import Alignment
from mmalign.attention import (MultimodalFineTuner, MultimodalFineTunerModule, MultimodalPretrainer,
                               MultimodalPretrainerModule, finetune, pretrain)
from mmalign.nn import (JointEncoding, SequenceClassificationHead, StepFeatures, TokenClassificationHead,
                        attention_pooled_frames, decode_spans, mask_tokens, masked_frame_loss, masked_token_loss,
                        pair_matching_loss, patch_mask, shuffle_pairs, span_loss, span_mask, streams_inputs,
                        token_classification_loss)
from mmalign.datasets import digit_scenes, multimodal_streams

torch.set_num_threads(1)

TINY = dict(d_model=16, num_heads=2, num_layers=1, train={"max_epochs": 1, "batch_size": 8})
TRAIN_FIELDS = ("max_epochs", "batch_size", "lr", "weight_decay", "grad_clip", "patience", "seed", "device")


def _kw(**kw):
    """Hyper-parameters with the training fields among them moved into ``train``."""
    train = dict(kw.pop("train", None) or {})
    train.update({k: kw.pop(k) for k in list(kw) if k in TRAIN_FIELDS})
    return {**kw, "train": train}


def _streams(n=12, seed=0, **kw):
    ds = multimodal_streams(n, seed=seed, audio_rate=10.0, video_rate=5.0, **kw)
    return ds, streams_inputs(ds)


def _tiny(**kw):
    """An unfitted tiny pretrainer (TINY's training settings, overridden by ``kw``)."""
    train = {**TINY["train"], **kw.pop("train", {})}
    return MultimodalPretrainer(37, {"audio": 16, "video": 8}, **_kw(**{**TINY, **kw, "train": train}))


# ================================================================== masked token modelling
def test_mask_tokens_80_10_10_and_never_padding():
    g = torch.Generator().manual_seed(0)
    b, t, vocab, mask_id = 400, 50, 40, 99
    words = torch.randint(4, vocab, (b, t), generator=g)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    pad = torch.arange(t)[None] >= lengths[:, None]
    words[pad] = 0
    before = words.clone()
    out, sel = mask_tokens(words, lengths, mask_id=mask_id, vocab_size=vocab, mask_prob=0.15, generator=g)
    assert torch.equal(words, before)                                  # input untouched
    assert not (sel & pad).any() and bool((sel.sum(1) >= 1).all())
    assert torch.equal(out[~sel], words[~sel])
    n_valid = int((~pad).sum())
    assert abs(int(sel.sum()) / n_valid - 0.15) < 0.01
    masked = out[sel] == mask_id
    kept = out[sel] == words[sel]
    replaced = ~masked & ~kept
    n = int(sel.sum())
    assert abs(int(masked.sum()) / n - 0.8) < 0.03
    # a random replacement may draw the same id (kept then): 10 % * (1 - 1/36) replaced
    assert abs(int(replaced.sum()) / n - 0.1 * (1 - 1 / 36)) < 0.02
    assert abs(int(kept.sum()) / n - (0.1 + 0.1 / 36)) < 0.02
    assert int(out[sel][replaced].min()) >= 4 and int(out[sel][replaced].max()) < vocab


def test_masked_token_loss_ignores_unmasked_positions():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 5, 7, generator=g)
    targets = torch.randint(0, 7, (3, 5), generator=g)
    sel = torch.zeros(3, 5, dtype=torch.bool)
    sel[0, 1] = sel[2, 4] = True
    loss = masked_token_loss(logits, targets, sel)
    by_hand = -(torch.log_softmax(logits[0, 1], -1)[targets[0, 1]]
                + torch.log_softmax(logits[2, 4], -1)[targets[2, 4]]) / 2
    assert torch.allclose(loss, by_hand)
    changed = logits.clone()
    changed[~sel] = torch.randn(int((~sel).sum()), 7, generator=g) * 100
    assert torch.equal(masked_token_loss(changed, targets, sel), loss)
    leaf = logits.clone().requires_grad_(True)
    masked_token_loss(leaf, targets, sel).backward()
    assert leaf.grad[~sel].abs().sum() == 0 and leaf.grad[sel].abs().sum() > 0
    assert float(masked_token_loss(logits, targets, torch.zeros_like(sel))) == 0.0


def test_model_token_loss_reaches_only_selected_positions():
    """In the model, the masked-token loss has a gradient only at the positions mask_tokens selected."""
    ds, X = _streams(6)
    model = _tiny(masked_frame_weight=0.0, pair_matching_weight=0.0, dropout=0.0).initialize()
    net = model.module_.eval()
    inp = net.prepare_inputs(X)
    batch = inp.tensors()
    kept = {}
    hook = net.token_head.register_forward_hook(
        lambda mod, args, out: kept.setdefault("logits", out) if out.requires_grad else None)
    out = model._losses(net, batch, generator=torch.Generator().manual_seed(3))
    hook.remove()
    logits = kept["logits"]
    logits.retain_grad()
    out["masked_token"].backward()
    _, sel = mask_tokens(inp.words, inp.text_lengths, mask_id=net.mask_id, vocab_size=37,
                         generator=torch.Generator().manual_seed(3))
    has_grad = logits.grad.abs().sum(-1) > 0
    assert torch.equal(has_grad, sel)


# ================================================================== masked frame / region modelling
def test_span_mask_is_contiguous_spans_inside_valid_frames():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([200, 40, 2, 9])
    m = span_mask(lengths, 200, mask_prob=0.15, span_length=5, generator=g)
    assert m.shape == (4, 200)
    for i, n in enumerate(lengths.tolist()):
        row = m[i].int().tolist()
        assert not any(row[n:]) and any(row[:n])
        runs = [len(r) for r in "".join(map(str, row[:n])).split("0") if r]
        assert all(r >= min(5, n) for r in runs)                      # unions of whole spans
    assert m[2, :2].all()                                              # shorter than a span: all of it
    long = span_mask(torch.full((50,), 400), 400, mask_prob=0.15, span_length=5, generator=g)
    assert 0.11 < float(long.float().mean()) < 0.15                    # overlaps lose a little


def test_patch_mask_whole_objects_or_random_patches():
    g = torch.Generator().manual_seed(0)
    objects = torch.zeros(3, 2, 16, dtype=torch.bool)
    objects[0, 0, [0, 1, 4, 5]] = True
    objects[0, 1, [10, 11]] = True
    objects[1, 0, [15]] = True
    m = patch_mask(3, 16, mask_prob=0.15, objects=objects, n_objects=torch.tensor([2, 1, 0]), generator=g)
    first = set(m[0].nonzero()[:, 0].tolist())
    assert first in ({0, 1, 4, 5}, {10, 11}, {0, 1, 4, 5, 10, 11})
    assert m[1].nonzero()[:, 0].tolist() == [15]
    assert m[2].any()                                                  # no object: random patches
    rnd = patch_mask(200, 64, mask_prob=0.25, generator=g)
    assert bool(rnd.any(1).all()) and abs(float(rnd.float().mean()) - 0.25) < 0.02


def test_masked_frame_loss_only_on_masked_frames():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 3, generator=g)
    masked = torch.tensor([[True, False, False, True, False, False], [False] * 5 + [True]])
    loss = masked_frame_loss(pred, target, masked)
    assert torch.allclose(loss, ((pred - target) ** 2)[masked].mean())
    other = pred.clone()
    other[~masked] = 1e3
    assert torch.equal(masked_frame_loss(other, target, masked), loss)


def test_masked_frames_are_zeroed_and_marked():
    """The encoder sees nothing of a masked frame's values, and a masked frame differs from a zero frame."""
    ds, X = _streams(3)
    model = _tiny(dropout=0.0).initialize()
    fm = {"audio": torch.zeros(3, max(len(a) for a in ds.audio), dtype=torch.bool)}
    fm["audio"][:, 2:5] = True
    enc = model.encode(X, frame_masks=fm)
    noisy = {**X, "audio": [a.copy() for a in ds.audio]}
    for a in noisy["audio"]:
        a[2:5] = 50.0
    assert torch.allclose(model.encode(noisy, frame_masks=fm).hidden, enc.hidden, atol=1e-5)
    zeroed = {**X, "audio": [a.copy() for a in ds.audio]}
    for a in zeroed["audio"]:
        a[2:5] = 0.0
    assert not torch.allclose(model.encode(zeroed).hidden, enc.hidden, atol=1e-4)


# ================================================================== pair matching
def test_shuffle_pairs_is_a_derangement_on_mismatched_samples():
    g = torch.Generator().manual_seed(0)
    donor, aligned = shuffle_pairs(1000, mismatch_prob=0.3, generator=g)
    assert torch.equal(aligned, donor == torch.arange(1000))
    assert abs(1 - float(aligned.float().mean()) - 0.3) < 0.05
    donor, aligned = shuffle_pairs(2, mismatch_prob=1.0, generator=g)
    assert donor.tolist() == [1, 0] and not aligned.any()
    donor, aligned = shuffle_pairs(5, mismatch_prob=0.0, generator=g)
    assert donor.tolist() == list(range(5)) and aligned.all()
    with pytest.raises(ValueError, match="batch"):
        shuffle_pairs(1)


def test_pair_matching_loss_by_hand():
    logits = torch.tensor([2.0, -1.0, 0.5])
    aligned = torch.tensor([True, False, False])
    expected = -(np.log(1 / (1 + np.exp(-2.0))) + np.log(1 - 1 / (1 + np.exp(1.0)))
                 + np.log(1 - 1 / (1 + np.exp(-0.5)))) / 3
    assert abs(float(pair_matching_loss(logits, aligned)) - expected) < 1e-6


# ================================================================== the model
def test_layout_special_ids_and_segments():
    ds, X = _streams(4)
    model = _tiny()
    assert (model.cls_id, model.sep_id, model.mask_id) == (37, 38, 39)
    assert model.block_names == ("text", "audio", "video")
    enc = model.initialize().encode(X)
    net = model.module_
    assert (net.cls_id, net.sep_id, net.mask_id, net.block_names) == (37, 38, 39, model.block_names)
    t = max(len(w) for w in ds.words)
    ta, tv = max(len(a) for a in ds.audio), max(len(v) for v in ds.video)
    assert enc.segments == {"text": (1, 1 + t), "audio": (t + 2, t + 2 + ta),
                            "video": (t + 3 + ta, t + 3 + ta + tv)}
    assert enc.hidden.shape == (4, t + ta + tv + 4, 16)
    # [CLS] and the three [SEP]s are never padding; padded steps are
    seps = [0, t + 1, t + 2 + ta, t + 3 + ta + tv]
    assert not enc.padding_mask[:, seps].any()
    for i in range(4):
        assert int((~enc.segment_mask("audio")[i]).sum()) == len(ds.audio[i])


def test_outputs_on_valid_steps_do_not_depend_on_padding():
    ds, X = _streams(5)
    model = _tiny(conv_kernel=3).initialize()
    enc = model.encode(X, need_weights=True)
    one = model.encode({k: v[2] for k, v in X.items()})
    for name in ("text", "audio", "video"):
        n = int(enc.lengths[name][2])
        assert torch.allclose(enc.segment(name)[2, :n], one.segment(name)[0, :n], atol=1e-5)
    assert torch.allclose(enc.cls[2], one.cls[0], atol=1e-5)
    w = enc.weights[0]
    assert float(w.detach().masked_select(enc.padding_mask[:, None, None, :].expand_as(w)).abs().sum()) == 0.0


@pytest.mark.parametrize("positions", ["sinusoidal", "learned", "relative"])
def test_align_returns_renormalised_joint_attention_blocks(positions):
    """Side x is the source block, side y the target block; each target step's weights are a
    distribution over the source (distribution_over="x")."""
    ds, X = _streams(3)
    model = _tiny(positions=positions, num_layers=2).initialize()
    als = model.align_batch(X, target="text", source="video")
    assert len(als) == 3 and all(isinstance(a, Alignment) for a in als)
    raw_blocks = model.attention(X, target="text", source="video")      # (layers, heads, T_t, T_s)
    for a, w, v, block in zip(als, ds.words, ds.video, raw_blocks):
        assert a.shape == (len(v), len(w)) and a.weights.shape == (2, 2, len(v), len(w))
        assert a.distribution_over == "x" and not a.monotonic
        assert np.allclose(a.weights.sum(-2), 1.0)
        assert a.extras["target"] == "text" and a.extras["source"] == "video"
        mass = a.extras["target_mass"]
        assert mass.shape == (2, 2, len(w)) and np.all((mass > 0) & (mass < 1))
        np.testing.assert_allclose(np.swapaxes(a.weights, -1, -2) * mass[..., None], block, rtol=1e-6)
        # the argmax path: one source frame per word, the most attended one
        assert a.path().tolist() == [[int(j), i] for i, j in enumerate(a.matrix().argmax(0))]
    raw = model.align({k: v[0] for k, v in X.items()}, target="audio", renormalize=False)
    assert raw.extras["source"] == "text" and raw.shape == (len(ds.words[0]), len(ds.audio[0]))
    assert np.allclose(raw.weights.sum(-2), raw.extras["target_mass"])
    assert raw.path().shape == (len(ds.audio[0]), 2)


def test_align_batch_equals_align_sample_by_sample():
    ds, X = _streams(5)
    model = _tiny(train={"batch_size": 2}).fit(X)                      # read out in chunks of 2
    for kw in (dict(), dict(target="video", source="text"), dict(source="video", renormalize=False)):
        batch = model.align_batch(X, **kw)
        for i, a in enumerate(batch):
            one = model.align({k: v[i] for k, v in X.items()}, **kw)
            assert one.shape == a.shape and one.extras.keys() == a.extras.keys()
            np.testing.assert_allclose(one.weights, a.weights, rtol=1e-5, atol=1e-7)
            np.testing.assert_array_equal(one.path(), a.path())


def test_align_takes_one_sample_and_align_batch_a_batch():
    ds, X = _streams(3)
    model = _tiny().initialize()
    one = {k: v[0] for k, v in X.items()}
    with pytest.raises(ValueError, match="align_batch"):
        model.align(X)
    with pytest.raises(ValueError, match="use align for one sample"):
        model.align_batch(one)
    with pytest.raises(ValueError, match="y must be None"):
        model.align(one, X["audio"][0])                                # the dict holds every modality
    with pytest.raises(ValueError, match="not fitted"):
        _tiny().align(one)


def test_align_with_y_for_a_two_modality_model():
    model = MultimodalPretrainer(20, {"audio": 3}, **TINY).initialize()
    ids, frames = np.array([4, 5, 6, 7]), np.random.default_rng(0).standard_normal((9, 3))
    a = model.align(frames, ids)                       # x: the source (audio), y: the target (text)
    assert a.shape == (9, 4) and a.weights.shape == (1, 2, 9, 4)
    np.testing.assert_array_equal(a.weights, model.align({"text": ids, "audio": frames}).weights)
    b = model.align(ids, frames, target="audio", source="text")
    assert b.shape == (4, 9)
    np.testing.assert_array_equal(b.weights, model.align({"text": ids, "audio": frames}, target="audio").weights)
    both = model.align_batch([frames, frames[:5]], [ids, ids[:2]])
    np.testing.assert_array_equal(both[0].weights, a.weights)
    with pytest.raises(ValueError, match=r"\bx\b"):
        model.align(frames[:, :2], ids)                                 # the message names x
    with pytest.raises(ValueError, match=r"^y must hold ONE sample"):
        model.align(frames, [ids])                                      # not one sample's ids
    with pytest.raises(ValueError, match="both 'text'"):
        model.align(frames, ids, source="text")
    with pytest.raises(ValueError, match="y"):
        _tiny().initialize().align(np.zeros((3, 16)), np.array([4, 5]))


def test_fit_is_deterministic_and_leaves_inputs_alone():
    ds, X = _streams(10)
    copies = {k: [np.array(v, copy=True) for v in vals] for k, vals in X.items()}
    a = _tiny(max_epochs=2).fit(X)
    b = _tiny(max_epochs=2).fit(X)
    for (ka, va), (kb, vb) in zip(a.module_.state_dict().items(), b.module_.state_dict().items()):
        assert torch.equal(va, vb), ka
    again = {k: v.clone() for k, v in a.fit(X).module_.state_dict().items()}  # a second fit starts over
    assert all(torch.equal(v, again[k]) for k, v in b.module_.state_dict().items())
    for k in X:
        assert all(np.array_equal(u, v) for u, v in zip(X[k], copies[k]))
    assert len(a.history_["objectives"]["masked_token"]) == 2
    assert a.history_["epochs_run"] == 2


def test_objectives_switch_off_and_weights_are_checked():
    ds, X = _streams(8)
    only_frames = _tiny(masked_token_weight=0.0, pair_matching_weight=0.0).fit(X)
    assert list(only_frames.history_["objectives"]) == ["masked_frame"]
    assert set(only_frames.evaluate(X)) == {"masked_frame", "masked_frame/audio", "masked_frame/video",
                                            "total"}
    with pytest.raises(ValueError, match="at least one objective"):
        _tiny(masked_token_weight=0.0, masked_frame_weight=0.0, pair_matching_weight=0.0).fit(X)


def _matching_data(n, seed):
    """Text of 3 ids from 8 words; one frame stream holding the one-hot ids, word by word."""
    rng = np.random.default_rng(seed)
    words = [rng.choice(np.arange(4, 12), 3, replace=False) for _ in range(n)]
    frames = [np.repeat(np.eye(12, dtype=np.float32)[w], 2, axis=0)
              + 0.05 * rng.standard_normal((6, 12)).astype(np.float32) for w in words]
    return {"text": words, "frames": frames}


def test_pretraining_learns_the_crossmodal_objectives():
    """Masked words are recoverable only from the frames, pair matching only by comparing
    text and frames; pretraining must get far above chance on held-out data."""
    X, Xte = _matching_data(384, 0), _matching_data(200, 1)
    model = MultimodalPretrainer(12, {"frames": 12}, d_model=32, num_heads=4, num_layers=2,
                                 positions="relative", token_mask_prob=0.34, frame_span=2,
                                 masked_frame_weight=10.0, dropout=0.0,
                                 train={"max_epochs": 25, "batch_size": 32, "lr": 3e-3, "seed": 0})
    before = model.initialize().evaluate(Xte)
    model.fit(X)
    after = model.evaluate(Xte)
    assert after["masked_token_accuracy"] > 0.6                 # chance: 1/8
    assert after["pair_matching_accuracy"] > 0.6                # chance: 1/2
    assert after["masked_frame"] < 0.6 * before["masked_frame"]
    p = model.match_proba(Xte)
    shuffled = {"text": Xte["text"], "frames": Xte["frames"][1:] + Xte["frames"][:1]}
    assert np.mean(p) > np.mean(model.match_proba(shuffled)) + 0.1


def test_embed_and_match_proba_shapes():
    ds, X = _streams(5)
    model = _tiny().initialize()
    assert model.embed(X).shape == (5, 16)
    assert model.embed(X, pooling="audio").shape == (5, 16)
    assert model.embed({k: v[0] for k, v in X.items()}, pooling="mean").shape == (16,)
    p = model.match_proba(X)
    assert p.shape == (5,) and np.all((p > 0) & (p < 1))
    with pytest.raises(ValueError, match="pooling"):
        model.embed(X, pooling="max")


def test_padded_array_inputs_equal_ragged_lists():
    ds, X = _streams(4)
    model = _tiny().initialize()
    b = ds.batch()
    Xp = {"text": b.words, "audio": b.audio.numpy(), "video": b.video}
    L = {"text": b.text_lengths, "audio": b.audio_lengths.numpy(), "video": b.video_lengths}
    assert torch.allclose(model.encode(Xp, L).hidden, model.encode(X).hidden, atol=1e-6)


# ------------------------------------------------------------------ images
def _glyph_scenes(n, seed):
    glyphs = np.random.default_rng(7).uniform(0.3, 1.0, (10, 6, 6)).astype(np.float32)
    return digit_scenes(glyphs, np.arange(10), n, size=32, n_digits=(1, 2), seed=seed, scale=(1.0, 1.5))


def test_image_patch_path_with_object_masking():
    scenes = _glyph_scenes(12, 0)
    ids, lengths = scenes.encode(bos=False, eos=False)
    X = {"text": [i[:n] for i, n in zip(ids, lengths)], "image": scenes.images}
    boxes = {"image": scenes.boxes}
    model = MultimodalPretrainer(len(scenes.vocabulary), {"image": (1, 32, 32)}, patch_size=8, **TINY)
    net = MultimodalPretrainerModule(len(scenes.vocabulary), {"image": (1, 32, 32)}, patch_size=8, d_model=16,
                                     num_heads=2, num_layers=1)
    inp = net.prepare_inputs(X, boxes=boxes)
    obj, n_obj = inp.objects[0], inp.n_objects[0]
    assert n_obj.tolist() == [len(b) for b in scenes.boxes]
    emb = net.embedders["image"]
    for i in range(12):
        for k in range(int(n_obj[i])):
            assert torch.equal(obj[i, k], emb.patches_in_boxes(scenes.boxes[i][k:k + 1])[0])
    m = patch_mask(12, 16, mask_prob=0.15, objects=obj, n_objects=n_obj, generator=torch.Generator().manual_seed(0))
    for i in range(12):                                            # the union of whole objects
        k = int(n_obj[i])
        unions = [torch.stack([obj[i, j] for j in range(k) if pick >> j & 1]).any(0)
                  for pick in range(1, 2 ** k)]
        assert any(torch.equal(m[i], u) for u in unions)
    model.fit(X, boxes=boxes)
    assert np.isfinite(model.history_["objectives"]["masked_frame"][0])
    a = model.align({"text": X["text"][0], "image": scenes.images[0]}, target="text", source="image")
    assert a.weights.shape == (1, 2, 16, int(lengths[0])) and a.extras["grid"] == (4, 4)


# ================================================================== save / load, devices
def test_save_load_round_trip(tmp_path):
    ds, X = _streams(8)
    model = _tiny(positions="learned").fit(X)
    path = tmp_path / "pre.npz"
    model.save(path)
    back = Aligner.load(path)
    assert isinstance(back, MultimodalPretrainer) and back.get_params() == model.get_params()
    assert torch.equal(back.encode(X).hidden, model.encode(X).hidden)
    clf = MultimodalFineTuner(model, task="regression", num_labels=1,
                              train={"max_epochs": 1, "batch_size": 4}).fit(X, ds.labels)
    clf.save(tmp_path / "ft.npz")
    clf2 = Aligner.load(tmp_path / "ft.npz")
    np.testing.assert_array_equal(clf2.predict(X), clf.predict(X))
    assert clf2.backbone.get_params() == model.get_params()
    assert isinstance(clf2.module_, MultimodalFineTunerModule)


def _as_earlier_file(path) -> None:
    """Rewrite a file as mmalign wrote it when these estimators were torch modules themselves:
    the training settings as flat hyper-parameters, no ``state_attribute`` (the state_dict keys
    of ``module_`` are those the modules had)."""
    import json

    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays.pop("__meta__")[()]))

    def rewrite(spec):
        params = spec["params"]
        train = params.pop("train")["__dict__"]
        params.update(train)
        spec.pop("state_attribute", None)
        backbone = params.get("backbone")
        if isinstance(backbone, dict) and "__aligner__" in backbone:
            rewrite(backbone["__aligner__"])

    rewrite(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def test_files_written_when_the_models_were_torch_modules_still_load(tmp_path):
    ds, X = _streams(6)
    model = _tiny(seed=2).fit(X)
    clf = MultimodalFineTuner(model, task="classification", train={"max_epochs": 1, "batch_size": 4})
    clf.fit(X, (ds.labels > 0).astype(int))
    for name, est in (("pre", model), ("ft", clf)):
        est.save(tmp_path / f"{name}.npz")
        _as_earlier_file(tmp_path / f"{name}.npz")
    back = Aligner.load(tmp_path / "pre.npz")
    assert back.train == {"max_epochs": 1, "batch_size": 8, "seed": 2}
    assert torch.equal(back.encode(X).hidden, model.encode(X).hidden)
    clf2 = Aligner.load(tmp_path / "ft.npz")
    assert clf2.train == {"max_epochs": 1, "batch_size": 4}
    np.testing.assert_array_equal(clf2.decision_function(X), clf.decision_function(X))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_same_code_path():
    ds, X = _streams(8)
    cpu = _tiny(max_epochs=2).fit(X)
    gpu = _tiny(max_epochs=2, device="cuda").fit(X)
    assert gpu.device_.type == "cuda"
    ev_c, ev_g = cpu.evaluate(X), gpu.evaluate(X)
    assert abs(ev_c["total"] - ev_g["total"]) < 0.05
    clf = MultimodalFineTuner(gpu, task="classification",
                              train={"max_epochs": 1, "batch_size": 4, "device": "cuda"}).fit(
        X, (ds.labels > 0).astype(int))
    assert next(clf.module_.parameters()).is_cuda and clf.predict(X).shape == (8,)
    assert next(gpu.module_.parameters()).is_cuda                        # the backbone stays where it was
    scratch = MultimodalFineTuner(_tiny(), task="classification",
                                  train={"max_epochs": 1, "batch_size": 4, "device": "cuda"})
    assert scratch.fit(X, (ds.labels > 0).astype(int)).device_.type == "cuda"
    assert cpu.to("cuda").align({k: v[0] for k, v in X.items()}).weights.ndim == 4
    assert len(clf.align_batch(X)) == 8


# ================================================================== heads
def test_span_loss_is_start_plus_end_cross_entropy():
    g = torch.Generator().manual_seed(0)
    s, e = torch.randn(3, 6, generator=g), torch.randn(3, 6, generator=g)
    s[2, 4:] = e[2, 4:] = float("-inf")                               # padding
    starts, ends = torch.tensor([0, 2, 1]), torch.tensor([3, 2, 3])
    by_hand = -(torch.log_softmax(s, -1)[torch.arange(3), starts].mean()
                + torch.log_softmax(e, -1)[torch.arange(3), ends].mean())
    assert torch.allclose(span_loss(s, e, starts, ends), by_hand)


def test_decode_spans_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    s, e = torch.randn(50, 9, generator=g), torch.randn(50, 9, generator=g)
    lengths = torch.randint(1, 10, (50,), generator=g)
    got = decode_spans(s, e, lengths, max_length=3)
    for i in range(50):
        n = int(lengths[i])
        best = max(((a, b) for a in range(n) for b in range(a, min(n, a + 3))),
                   key=lambda p: float(s[i, p[0]] + e[i, p[1]]))
        assert tuple(got[i].tolist()) == best
    with pytest.raises(ValueError, match="max_length"):
        decode_spans(s, e, max_length=0)


def test_token_loss_and_sequence_head_pooling():
    logits = torch.randn(2, 3, 4)
    labels = torch.tensor([[1, -100, 2], [-100, -100, -100]])
    assert torch.allclose(token_classification_loss(logits, labels),
                          torch.nn.functional.cross_entropy(logits[labels != -100], labels[labels != -100]))
    hidden = torch.randn(2, 5, 6)
    pad = torch.tensor([[False] * 5, [False, False, True, True, False]])
    enc = JointEncoding(hidden, pad, {"text": (1, 4)}, {"text": torch.tensor([3, 1])})
    head = SequenceClassificationHead(6, 2, pooling="sum").eval()
    f = torch.tanh(head.pooler(hidden))
    assert torch.allclose(head(enc), head.out(torch.stack([f[0, 1:4].sum(0), f[1, 1]])), atol=1e-6)
    head = SequenceClassificationHead(6, 2, pooling="mean").eval()
    f = torch.tanh(head.pooler(hidden))
    assert torch.allclose(head(enc), head.out(torch.stack([f[0, 1:4].mean(0), f[1, 1]])), atol=1e-6)
    head = SequenceClassificationHead(6, 2, pooling="cls").eval()
    assert torch.allclose(head(enc), head.out(torch.tanh(head.pooler(hidden[:, 0]))), atol=1e-6)


# ================================================================== fine-tuning
def test_finetuner_copies_the_backbone_and_never_trains_it():
    ds, X = _streams(16)
    y = (ds.labels > 0).astype(int)
    backbone = _tiny().fit(X)
    before = {k: v.clone() for k, v in backbone.module_.state_dict().items()}
    probe = MultimodalFineTuner(backbone, task="classification", freeze_backbone=True,
                                train={"max_epochs": 2, "batch_size": 8}).fit(X, y)
    full = MultimodalFineTuner(backbone, task="classification",
                               train={"max_epochs": 2, "batch_size": 8, "lr": 1e-2}).fit(X, y)
    assert isinstance(full.module_, MultimodalFineTunerModule)
    assert isinstance(full.module_.encoder, MultimodalPretrainerModule)
    assert full.module_.encoder is not backbone.module_                  # a copy, not the backbone's
    for k, v in backbone.module_.state_dict().items():
        assert torch.equal(v, before[k])                               # the backbone is untouched
        assert torch.equal(probe.module_.encoder.state_dict()[k], v)   # frozen: still its weights
    changed = [k for k, v in full.module_.encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert changed                                                      # fine-tuned: moved
    assert all(p.requires_grad for p in probe.module_.parameters())
    assert sorted({k.split(".")[0] for k in full.module_.state_dict()}) == ["encoder", "head"]
    att = MultimodalFineTuner(backbone, task="classification", freeze_attention=True,
                              train={"max_epochs": 1, "batch_size": 8, "lr": 1e-2}).fit(X, y)
    for k, v in att.module_.encoder.state_dict().items():
        if ".q_proj." in k or ".k_proj." in k:
            assert torch.equal(v, before[k])
    assert not torch.equal(att.module_.encoder.state_dict()["encoder.layers.0.self_attn.v_proj.weight"],
                           before["encoder.layers.0.self_attn.v_proj.weight"])
    # the fine-tuned encoder's attention, read out like the backbone's
    one = {k: v[0] for k, v in X.items()}
    a = full.align(one, target="text", source="video")
    assert a.shape == (len(ds.video[0]), len(ds.words[0])) and a.distribution_over == "x"
    np.testing.assert_array_equal(full.align_batch(X, target="text", source="video")[0].weights, a.weights)
    assert not np.allclose(a.weights, backbone.align(one, target="text", source="video").weights)


def test_unfitted_or_no_backbone_trains_from_scratch_and_is_left_alone():
    ds, X = _streams(8)
    y = (ds.labels > 0).astype(int)
    unfitted = _tiny(seed=4)
    clf = MultimodalFineTuner(unfitted, train={"max_epochs": 1, "batch_size": 4}).fit(X, y)
    assert not hasattr(unfitted, "module_")                            # nothing set on the backbone
    # the start is the backbone's initial weights (those initialize() builds)
    initialised = _tiny(seed=4).initialize()
    same = MultimodalFineTuner(initialised, train={"max_epochs": 1, "batch_size": 4}).fit(X, y)
    for k, v in clf.module_.state_dict().items():
        assert torch.equal(v, same.module_.state_dict()[k]), k
    # no backbone: a default MultimodalPretrainer() (vocabulary 37, audio 16 + video 8)
    default = MultimodalFineTuner(train={"max_epochs": 1, "batch_size": 4})
    assert default.backbone is None and not hasattr(default, "module_")
    default.fit(X, y)
    explicit = MultimodalFineTuner(MultimodalPretrainer(), train={"max_epochs": 1, "batch_size": 4}).fit(X, y)
    np.testing.assert_array_equal(default.decision_function(X), explicit.decision_function(X))


def _spy_on_training(monkeypatch):
    """DDP's rule: the training loss runs the network only through the wrapper's forward."""
    from ddp_spy import spy_on_training

    return spy_on_training(monkeypatch)


def test_fit_losses_go_through_the_wrapped_forward(monkeypatch):
    ds, X = _streams(8)
    spies = _spy_on_training(monkeypatch)
    backbone = _tiny(train={"batch_size": 4}).fit(X)
    MultimodalFineTuner(backbone, pooling="mean", aligned_inputs=True,
                        train={"max_epochs": 1, "batch_size": 4}).fit(X, (ds.labels > 0).astype(int))
    assert len(spies) == 2 and all(s.calls == 2 for s in spies)           # two batches each


def _keyword_task(n, seed):
    """Text-only labels: class = whether word 7 occurs; tokens: 1 at word 7; span: the run of 9s."""
    rng = np.random.default_rng(seed)
    X, y_cls, y_tok, y_span = {"text": [], "audio": []}, [], [], []
    for _ in range(n):
        t = int(rng.integers(5, 9))
        w = rng.choice([4, 5, 6, 8, 10, 11], t)
        start = int(rng.integers(0, t - 2))
        run = int(rng.integers(1, 3))
        w[start:start + run] = 9
        if rng.random() < 0.5:
            w[int(rng.choice([i for i in range(t) if not start <= i < start + run]))] = 7
        X["text"].append(w)
        X["audio"].append(rng.standard_normal((t, 2)).astype(np.float32))
        y_cls.append(int((w == 7).any()))
        y_tok.append((w == 7).astype(int))
        y_span.append([start, start + run - 1])
    return X, np.array(y_cls), y_tok, np.array(y_span)


def test_finetuning_heads_learn_text_tasks():
    X, y_cls, y_tok, y_span = _keyword_task(96, 0)
    Xt, t_cls, t_tok, t_span = _keyword_task(100, 1)
    backbone = MultimodalPretrainer(12, {"audio": 2}, d_model=32, num_heads=4, num_layers=2, dropout=0.0)
    common = dict(train={"max_epochs": 20, "batch_size": 16, "lr": 3e-3}, head_dropout=0.0)
    clf = finetune(backbone, X, y_cls, task="classification", **common)
    assert np.mean(clf.predict(Xt) == t_cls) > 0.9
    assert np.allclose(clf.predict_proba(Xt).sum(1), 1.0)
    tagger = finetune(backbone, X, y_tok, task="token", **common)
    pred = tagger.predict(Xt)
    assert np.mean(np.concatenate(pred) == np.concatenate(t_tok)) > 0.95
    spans = finetune(backbone, X, y_span, task="span", max_span_length=4, **common)
    got = spans.predict(Xt)
    assert np.all(got[:, 0] <= got[:, 1]) and np.all(got[:, 1] - got[:, 0] < 4)
    assert np.mean(np.all(got == t_span, axis=1)) > 0.8
    one = spans.predict({"text": Xt["text"][0], "audio": Xt["audio"][0]})
    assert one.shape == (2,)
    assert isinstance(spans.align({"text": Xt["text"][0], "audio": Xt["audio"][0]}), Alignment)
    assert not hasattr(backbone, "module_")                            # finetune left it unfitted


# ================================================================== errors
@pytest.mark.parametrize("kw, match", [
    (dict(d_model=10, num_heads=4), "d_model"),
    (dict(positions="rope"), "positions"),
    (dict(conv_kernel=2), "conv_kernel"),
    (dict(modalities={"text": 3}), "modalities"),
    (dict(modalities={"img": (1, 30, 30)}, patch_size=8), "patch_size"),
    (dict(modalities={"img": (1, 30)}), "modalities"),
    (dict(modalities=[("a", 3)]), "modalities"),
    (dict(token_mask_prob=0.0), "token_mask_prob"),
    (dict(mismatch_prob=1.5), "mismatch_prob"),
    (dict(masked_frame_weight=-1.0), "masked_frame_weight"),
    (dict(dropout=1.0), "dropout"),
    (dict(vocab_size=0), "vocab_size"),
])
def test_bad_hyper_parameters(kw, match):
    ds, X = _streams(4)
    model = MultimodalPretrainer(**kw)                                 # construction checks nothing
    for call in (lambda: model.fit(X), model.initialize):
        with pytest.raises(ValueError, match=match):
            call()


def test_bad_inputs_name_the_argument():
    ds, X = _streams(4)
    model = _tiny().initialize()
    with pytest.raises(ValueError, match="missing"):
        model.encode(X | {"extra": 1})
    with pytest.raises(ValueError, match="word ids"):
        model.encode({**X, "text": [w + 40 for w in X["text"]]})
    with pytest.raises(ValueError, match=r"X\['audio'\]\[0\]"):
        model.encode({**X, "audio": [a[:, :3] for a in X["audio"]]})
    bad = [a.copy() for a in X["audio"]]
    bad[0][0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.encode({**X, "audio": bad})
    with pytest.raises(ValueError, match="samples"):
        model.encode({**X, "video": X["video"][:3]})
    with pytest.raises(ValueError, match="lengths"):
        model.encode(X, {"audio": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match="one sample"):
        model.fit({k: v[0] for k, v in X.items()})
    with pytest.raises(ValueError, match="pair matching"):
        model.fit({k: v[:1] for k, v in X.items()})
    with pytest.raises(ValueError, match="target"):
        model.align_batch(X, target="image")
    with pytest.raises(ValueError, match="frame_masks"):
        model.encode(X, frame_masks={"audio": torch.zeros(4, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="patience"):
        _tiny(patience=2).fit(X)
    with pytest.raises(ValueError, match="Y must be None"):
        _tiny().fit(X, ds.labels)
    with pytest.raises(ValueError, match=r"validation\[1\]"):
        _tiny().fit(X, validation=(X, ds.labels))
    with pytest.raises(ValueError, match="validation must be a tuple"):
        _tiny().fit(X, validation=X)
    first = {k: v.clone() for k, v in model.module_.state_dict().items()}
    with pytest.raises(ValueError, match="word ids"):                  # a failed fit keeps module_
        model.fit({**X, "text": [w + 40 for w in X["text"]]})
    assert all(torch.equal(v, first[k]) for k, v in model.module_.state_dict().items())


# ================================================================== aligned inputs
def _encoding_with_weights():
    """2 samples; text block columns 1-2, audio columns 4-6 (sample 1: third frame padded)."""
    l = 8
    w0 = torch.zeros(2, 2, l, l)
    w0[:, :, 1, 4], w0[:, :, 1, 5] = 0.25, 0.25      # word 0: half its mass on frames 0, 1 (half elsewhere)
    w0[:, :, 2, 6] = 0.5                              # word 1: frame 2 (padded in sample 1)
    w0[1, :, 2, 4] = 0.5                              # ... and frame 0 in sample 1
    w1 = torch.zeros(2, 2, l, l)
    w1[:, :, 1:3, 5] = 1.0                            # layer 1: every word on frame 1
    pad = torch.zeros(2, l, dtype=torch.bool)
    pad[1, 6] = True
    enc = JointEncoding(torch.zeros(2, l, 4), pad, {"text": (1, 3), "audio": (4, 7)},
                        {"text": torch.tensor([2, 2]), "audio": torch.tensor([3, 2])}, [w0, w1])
    frames = torch.tensor([[[1.0, 0.0], [3.0, 1.0], [5.0, 2.0]],
                           [[2.0, 4.0], [6.0, 8.0], [100.0, 100.0]]])
    return enc, frames


def test_attention_pooled_frames_averages_the_attended_frames():
    enc, frames = _encoding_with_weights()
    before = frames.clone()
    out = attention_pooled_frames(enc, {"audio": frames}, layer=0)
    assert torch.equal(frames, before)
    want = torch.tensor([[[2.0, 0.5], [5.0, 2.0]],       # renormalised over the audio block
                         [[4.0, 6.0], [2.0, 4.0]]])      # the padded frame's weight is dropped
    assert torch.allclose(out, want)
    assert torch.allclose(attention_pooled_frames(enc, {"audio": frames}, layer=-1), frames[:, 1:2].expand(2, 2, 2))
    mean = attention_pooled_frames(enc, {"audio": frames})   # layers averaged, then renormalised
    assert torch.allclose(mean[0, 1], (0.5 * frames[0, 2] + 1.0 * frames[0, 1]) / 1.5)
    with pytest.raises(ValueError, match="need_weights"):
        attention_pooled_frames(JointEncoding(enc.hidden, enc.padding_mask, enc.segments, enc.lengths),
                                {"audio": frames})
    with pytest.raises(ValueError, match="layer"):
        attention_pooled_frames(enc, {"audio": frames}, layer=2)
    with pytest.raises(ValueError, match="target"):
        attention_pooled_frames(enc, {"audio": frames}, target="video")
    with pytest.raises(ValueError, match=r"frames\['audio'\]"):
        attention_pooled_frames(enc, {"audio": frames[:, :2]})
    with pytest.raises(ValueError, match="video"):
        attention_pooled_frames(enc, {"video": frames})
    with pytest.raises(ValueError, match="at least one"):
        attention_pooled_frames(enc, {})


def test_step_features_concat_and_gated():
    enc, frames = _encoding_with_weights()
    x = torch.randn(2, 2, 3)
    h = enc.segment("text")
    assert torch.equal(StepFeatures(4)(enc, "text"), h)
    assert torch.equal(StepFeatures(4, 3)(enc, "text", x), torch.cat([h, x], -1))
    gated = StepFeatures(4, 3, "gated")
    assert gated.out_dim == 10
    assert torch.allclose(gated(enc, "text", x), torch.cat([h, x, gated.gate(h) * x], -1))
    with pytest.raises(ValueError, match="extra must be given"):
        gated(enc, "text")
    with pytest.raises(ValueError, match="extra must be"):
        gated(enc, "text", torch.randn(2, 2, 5))
    with pytest.raises(ValueError, match="fusion"):
        StepFeatures(4, 3, "sum")
    with pytest.raises(ValueError, match="cls"):
        SequenceClassificationHead(4, 1, pooling="cls", extra_dim=3)
    assert TokenClassificationHead(4, 2, extra_dim=3, fusion="gated")(enc, x).shape == (2, 2, 2)


def _frame_sum_task(n, seed):
    """One audio frame per word; the label is the sum of the frames' first feature (text says nothing)."""
    rng = np.random.default_rng(seed)
    X, y = {"text": [], "audio": []}, []
    for _ in range(n):
        t = int(rng.integers(3, 7))
        a = rng.standard_normal((t, 2)).astype(np.float32)
        X["text"].append(rng.integers(4, 12, t))
        X["audio"].append(a)
        y.append(float(a[:, 0].sum()))
    return X, np.array(y)


@pytest.mark.parametrize("fusion", ["concat", "gated"])
def test_aligned_inputs_bring_the_frames_to_the_head(fusion):
    X, y = _frame_sum_task(160, 0)
    Xt, yt = _frame_sum_task(80, 1)
    backbone = MultimodalPretrainer(37, {"audio": 2}, d_model=16, num_heads=2, num_layers=1,
                                    positions="relative", train={"seed": 0})
    kw = dict(task="regression", num_labels=1, pooling="sum", loss="mse", freeze_backbone=True,
              head_dropout=0.0, train={"max_epochs": 60, "batch_size": 16, "lr": 1e-2, "seed": 0})
    trivial = np.abs(yt - y.mean()).mean()
    aligned = MultimodalFineTuner(backbone, aligned_inputs=True, fusion=fusion, **kw).fit(X, y)
    err = np.abs(aligned.predict(Xt) - yt).mean()
    # the frozen untrained encoder attends almost uniformly, so each word gets about the mean
    # frame; summed over the words that is the label
    assert err < 0.35 * trivial
    plain = MultimodalFineTuner(backbone, **kw).fit(X, y)
    assert np.abs(plain.predict(Xt) - yt).mean() > 2 * err
    # the training path (forward) and the inference path (decision_function) agree
    net = aligned.module_.eval()
    inp = net.encoder.prepare_inputs({k: v[:5] for k, v in Xt.items()})
    with torch.no_grad():
        fwd = net(inp.words, inp.text_lengths, inp.frames, inp.lengths)[0][:, 0].numpy()
    assert np.allclose(fwd, aligned.decision_function({k: v[:5] for k, v in Xt.items()})[:, 0], atol=1e-5)
    one = {"train": {"max_epochs": 1, "batch_size": 16}}
    tok = MultimodalFineTuner(backbone, task="token", num_labels=2, aligned_inputs=True, fusion=fusion,
                              **one).fit(X, [(a[:, 0] > 0).astype(int) for a in X["audio"]])
    assert [len(p) for p in tok.predict(Xt)] == [len(w) for w in Xt["text"]]
    span = MultimodalFineTuner(backbone, task="span", aligned_inputs=True, align_layer=0,
                               **one).fit(X, np.zeros((160, 2), int))
    assert span.predict(Xt).shape == (80, 2)


def test_bad_finetuning_arguments():
    ds, X = _streams(6)
    y = (ds.labels > 0).astype(int)
    backbone = _tiny()
    one = {"train": {"max_epochs": 1}}

    def refused(match, model, labels=y):
        with pytest.raises(ValueError, match=match):
            model.fit(X, labels)

    assert repr(MultimodalFineTuner()) == "MultimodalFineTuner()"      # construction does no work
    refused("backbone", MultimodalFineTuner(backbone=backbone.get_params()))
    refused("backbone: .*d_model", MultimodalFineTuner(MultimodalPretrainer(d_model=10, num_heads=4)))
    refused("task", MultimodalFineTuner(backbone, task="ranking"))
    refused("segment", MultimodalFineTuner(backbone, segment="image"))
    refused("loss", MultimodalFineTuner(backbone, task="classification", loss="l1"))
    refused("num_labels", MultimodalFineTuner(backbone, task="classification", num_labels=1))
    refused("train.lr", MultimodalFineTuner(backbone, train={"lr": -1.0}))
    refused("Y must be given", MultimodalFineTuner(backbone, **one), None)
    refused("class ids", MultimodalFineTuner(backbone, **one), np.full(6, 2))
    refused("Y must have shape", MultimodalFineTuner(backbone, task="regression", num_labels=1, **one),
            ds.labels[:5])
    refused("spans", MultimodalFineTuner(backbone, task="span", **one), np.array([[2, 1]] * 6))
    refused(r"Y\[0\]", MultimodalFineTuner(backbone, task="token", **one), [np.zeros(1, int)] * 6)
    refused("patience", MultimodalFineTuner(backbone, train={"patience": 1}))
    with pytest.raises(ValueError, match="validation must be a tuple"):
        MultimodalFineTuner(backbone, **one).fit(X, y, validation=X)
    with pytest.raises(ValueError, match="not fitted"):
        MultimodalFineTuner(backbone).predict(X)
    with pytest.raises(ValueError, match="not fitted"):
        MultimodalFineTuner(backbone).align({k: v[0] for k, v in X.items()})
    with pytest.raises(ValueError, match="predict_proba"):
        MultimodalFineTuner(backbone, task="regression", num_labels=1, **one).fit(
            X, ds.labels).predict_proba(X)
    refused("aligned_inputs needs pooling",
            MultimodalFineTuner(backbone, task="regression", aligned_inputs=True, pooling="cls"))
    refused("aligned_inputs must be a bool", MultimodalFineTuner(backbone, aligned_inputs="yes"))
    refused("align_layer", MultimodalFineTuner(backbone, pooling="sum", aligned_inputs=True, align_layer=1))
    refused("fusion", MultimodalFineTuner(backbone, pooling="sum", aligned_inputs=True, fusion="outer"))
    refused("needs aligned_inputs", MultimodalFineTuner(backbone, pooling="sum", fusion="gated"))
    refused("no modality other than",
            MultimodalFineTuner(MultimodalPretrainer(37, {"audio": 16}, **TINY), task="token",
                                segment="audio", aligned_inputs=True))


def test_pretrain_entry_point():
    ds, X = _streams(8)
    model = pretrain(X, **{**TINY, "vocab_size": 37})
    assert isinstance(model, MultimodalPretrainer) and model.history_["epochs_run"] == 1
    val = pretrain(X, validation=(X, None), **_kw(**TINY, vocab_size=37, max_epochs=2, patience=1))
    assert len(val.history_["val_metric"]) >= 1
