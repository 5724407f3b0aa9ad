"""TransformerSeq2Seq: learning, masks, label smoothing, decoding, cross-attention read-out, errors."""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import pytest
import torch

from mmalign.attention import TransformerSeq2Seq, TransformerSeq2SeqModule
from mmalign.attention.transformer_seq2seq import label_smoothed_nll


@pytest.fixture(autouse=True)
def _one_thread():
    """Small models train fastest, and reproducibly, on one thread (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _reversal(n: int, seed: int, length: int = 6) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    src = [rng.integers(3, 11, size=length).tolist() for _ in range(n)]
    return src, [s[::-1] for s in src]


@functools.lru_cache(maxsize=None)
def _trained() -> TransformerSeq2Seq:
    """A small model trained on reversal of length-6 sequences (a few seconds, one thread)."""
    src, tgt = _reversal(800, 0)
    return TransformerSeq2Seq(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
                              dim_feedforward=64, dropout=0.0, alignment_layer=-2,
                              train={"max_epochs": 8, "batch_size": 32, "lr": 3e-3}).fit(src, tgt)


def _tiny(**kw) -> TransformerSeq2Seq:
    src, tgt = _reversal(8, 1, length=4)
    params = dict(d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1, "batch_size": 4})
    params.update(kw)
    return TransformerSeq2Seq(11, 11, **params).fit(src, tgt)


def test_reversal_is_learned_and_its_cross_attention_aligns():
    model = _trained()
    src, tgt = _reversal(60, 7)
    assert np.mean([p == t for p, t in zip(model.predict(src), tgt)]) >= 0.9
    gold = [{(5 - t, t) for t in range(6)} for _ in src]
    scores = model.alignment_error_rates(src, tgt, gold)
    assert min(scores.values()) < 0.15  # some layer / head reads the reversal diagonal
    best = min(scores, key=scores.get)
    model_sel = copy.deepcopy(model)
    model_sel.select_alignment_head(src, tgt, gold)
    assert f"{model_sel.alignment_layer_}/{model_sel.alignment_heads_}" == best
    assert model_sel.alignment_layer == -2  # the hyper-parameter is untouched


def test_causal_mask_blocks_the_future_and_padding_changes_nothing():
    torch.manual_seed(0)
    net = TransformerSeq2SeqModule(12, 12, d_model=16, nhead=2, dim_feedforward=16, dropout=0.0).eval()
    src = torch.tensor([[3, 4, 5, 6]])
    tgt = torch.tensor([[1, 5, 4, 7]])
    logits, cross = net(src, torch.tensor([4]), tgt)
    changed = tgt.clone()
    changed[0, 3] = 9  # a later decoder input: earlier outputs must not move
    logits2, cross2 = net(src, torch.tensor([4]), changed)
    torch.testing.assert_close(logits[:, :3], logits2[:, :3])
    torch.testing.assert_close(cross[..., :3, :], cross2[..., :3, :])
    assert not torch.allclose(logits[:, 3], logits2[:, 3])
    # padding the source (with any id) and the target leaves the real outputs unchanged
    src_pad = torch.tensor([[3, 4, 5, 6, 8, 9]])
    tgt_pad = torch.tensor([[1, 5, 4, 7, 0, 0]])
    logits3, cross3 = net(src_pad, torch.tensor([4]), tgt_pad, torch.tensor([4]))
    torch.testing.assert_close(logits3[:, :4], logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cross3[..., :4, :4], cross, atol=1e-5, rtol=1e-5)
    assert bool((cross3[..., 4:] == 0).all())


def test_label_smoothing_loss_on_a_hand_case():
    # 4 ids, id 1 never emitted (-inf): smoothing goes to ids 0, 2, 3 only
    logits = torch.tensor([[math.log(2.0), float("-inf"), 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    target = torch.tensor([0, -100])
    logp = [math.log(0.5), math.log(0.25), math.log(0.25)]
    eps = 0.1
    want = (1 - eps) * -logp[0] + eps * -sum(logp) / 3
    assert float(label_smoothed_nll(logits, target, eps)) == pytest.approx(want, rel=1e-6)
    assert float(label_smoothed_nll(logits, target, 0.0)) == pytest.approx(math.log(2.0), rel=1e-6)
    assert math.isfinite(float(label_smoothed_nll(logits, target, 0.5)))


def test_beam_width_one_equals_greedy_and_beam_keeps_the_cross_attention():
    model = _trained()
    src, _ = _reversal(5, 3)
    greedy = model.translate(src)
    beam1 = [model._beam_search(torch.tensor([s]), torch.tensor([6]), 1, None)[0] for s in src]
    for g, b in zip(greedy, beam1):
        assert g.tokens == b.tokens
        np.testing.assert_allclose(g.attention, b.attention, atol=1e-6)
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-5)
    beam = model.translate(src, beam_size=3)
    assert all(h.score >= g.score - 1e-6 for h, g in zip(beam, greedy))
    al = model.align(src[0], beam_size=3)
    # every layer and head of the decoded output; the selected view is what decoding returned
    assert al.extras["cross_attention"].shape == (2, 2, len(beam[0].tokens), 6)
    np.testing.assert_allclose(al.matrix().T, beam[0].attention, atol=1e-6)


def test_cross_attention_rows_are_distributions_over_the_source():
    model = _tiny()
    al = model.align([3, 4, 5, 6, 7], [5, 4, 3], include_eos=True)
    assert al.shape == (5, 4) and al.distribution_over == "x"
    np.testing.assert_allclose(al.matrix().sum(axis=0), 1.0, atol=1e-6)
    cross = al.extras["cross_attention"]
    assert cross.shape == (2, 2, 4, 5)
    np.testing.assert_allclose(cross.sum(-1), 1.0, atol=1e-6)
    # the view: mean over heads of the chosen layer (default -1: the last layer)
    np.testing.assert_allclose(al.matrix().T, cross[1].mean(0), atol=1e-9)
    head = copy.deepcopy(model)
    head.alignment_layer_, head.alignment_heads_ = "mean", 1
    np.testing.assert_allclose(head.align([3, 4, 5, 6, 7], [5, 4, 3]).matrix().T,
                               cross[:, 1, :3].mean(0), atol=1e-9)


def test_learned_positions_pre_norm_and_save_load(tmp_path):
    model = _tiny(positional="learned", max_len=16, norm_first=True, label_smoothing=0.0)
    model.select_alignment_head([[3, 4, 5]], [[5, 4, 3]], [{(2, 0), (1, 1), (0, 2)}])
    path = tmp_path / "m.npz"
    model.save(path)
    back = TransformerSeq2Seq.load(path)
    assert (back.alignment_layer_, back.alignment_heads_) == (model.alignment_layer_, model.alignment_heads_)
    np.testing.assert_allclose(back.align([3, 4, 5], [5, 4]).matrix(), model.align([3, 4, 5], [5, 4]).matrix())
    with pytest.raises(ValueError, match="max_len"):
        model.align(list(range(3, 11)) * 3, [4])   # 24 source steps, 16 learned positions


def test_supervised_alignment_head_trains_towards_gold_links():
    src, tgt = _reversal(600, 2, length=5)
    links = [{(4 - t, t) for t in range(5)} for _ in src]
    kw = dict(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
              dropout=0.0, alignment_heads=0, train={"max_epochs": 6, "batch_size": 32, "lr": 3e-3})
    sup = TransformerSeq2Seq(11, 11, alignment_supervision=1.0, **kw).fit(src, tgt, links=links)
    test_src, test_tgt = _reversal(40, 9, length=5)
    gold = [{(4 - t, t) for t in range(5)} for _ in test_src]
    # the same model without supervision: ~0.7 AER on this head after 4 epochs (0.8 by chance)
    assert sup.alignment_error_rates(test_src, test_tgt, gold)["0/0"] < 0.3
    with pytest.raises(ValueError, match="links"):
        TransformerSeq2Seq(11, 11, alignment_supervision=1.0, **kw).fit(src, tgt)
    with pytest.raises(ValueError, match=r"links\[0\]"):
        TransformerSeq2Seq(11, 11, alignment_supervision=1.0, **kw).fit(src, tgt, links=[{(9, 0)}] * 600)


@pytest.mark.parametrize("param, value, match", [
    ("d_model", 7, "divisible"), ("nhead", 0, "nhead"), ("label_smoothing", 1.0, "label_smoothing"),
    ("label_smoothing", -0.1, "label_smoothing"), ("positional", "rope", "positional"),
    ("alignment_layer", 2, "alignment_layer"), ("alignment_layer", "last", "alignment_layer"),
    ("alignment_heads", 2, "alignment_heads"), ("alignment_heads", "max", "alignment_heads"),
    ("alignment_supervision", -1.0, "alignment_supervision"), ("activation", "tanh", "activation"),
    ("dropout", 1.0, "dropout"), ("num_decoder_layers", 0, "num_decoder_layers"),
])
def test_bad_hyper_parameters_are_named_at_fit(param, value, match):
    model = TransformerSeq2Seq(11, 11, **{"d_model": 8, "nhead": 2, "dim_feedforward": 8, param: value})
    with pytest.raises(ValueError, match=match):
        model.fit([[3, 4]], [[4, 3]])


def test_bad_inputs_are_named():
    model = _tiny()
    with pytest.raises(ValueError, match="src"):
        model.align([], [4])
    with pytest.raises(ValueError, match="tgt"):
        model.align([3, 4], [2, 4])  # the EOS id in a target
    with pytest.raises(ValueError, match="tgt"):
        model.align_batch([[3, 4]], [4, 3])
    with pytest.raises(ValueError, match="sure"):
        model.select_alignment_head([[3, 4]], [[4, 3]], [])
    with pytest.raises(ValueError, match="not fitted"):
        TransformerSeq2Seq().align([3], [4])
