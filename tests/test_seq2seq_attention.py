"""Seq2SeqAttention (Bahdanau attention seq2seq): task accuracy and attention as an alignment,
ragged batches, greedy / beam decoding, save/load, seeding, input validation, CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mmalign
from mmalign.alignment import Alignment
from mmalign.attention import Seq2SeqAttention, Seq2SeqAttentionModule
from mmalign.datasets import build_vocabularies, reversal_task
from mmalign.metrics import corpus_alignment_error_rate

TINY = dict(embed_dim=8, hidden_dim=8, attention_dim=8)


def _s2s(*args, max_epochs=30, batch_size=16, seed=0, **kw):
    """A Seq2SeqAttention whose training settings are given flat (the tests' shorthand)."""
    train = {"max_epochs": max_epochs, "batch_size": batch_size, "seed": seed}
    for name in ("lr", "patience", "scheduler"):
        if name in kw:
            train[name] = kw.pop(name)
    return Seq2SeqAttention(*args, train=train, **kw)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _ids(examples, vocab, side):
    return [vocab.encode(getattr(ex, side)) for ex in examples]


@pytest.fixture(scope="module")
def reversal():
    """A model trained on reversal of length 3-8 sequences over 10 symbols, and a test set."""
    torch.set_num_threads(1)
    train = reversal_task(1500, min_len=3, max_len=8, vocab_size=10, seed=0)
    test = reversal_task(200, min_len=3, max_len=8, vocab_size=10, seed=1)
    sv, tv = build_vocabularies(train, test)
    model = Seq2SeqAttention(len(sv), len(tv), embed_dim=32, hidden_dim=64, attention_dim=64,
                             train={"max_epochs": 6, "batch_size": 64, "lr": 3e-3, "seed": 0})
    model.fit(_ids(train, sv, "source"), _ids(train, tv, "target"))
    return model, _ids(test, sv, "source"), _ids(test, tv, "target"), test


@pytest.fixture(scope="module")
def weak():
    """A barely trained tiny model: decoding is uncertain, outputs vary in length."""
    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 6)).tolist() for _ in range(64)]
    return _s2s(9, 9, max_epochs=1, seed=0, **TINY).fit(src, [s[::-1] for s in src])


OPTIONS = dict(attention_state="current", input_feeding=True, coverage=True, coverage_penalty=1.0)


@pytest.fixture(scope="module")
def weak_options():
    """Like ``weak``, with every attention option on (current state, input feeding, coverage, penalty)."""
    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 6)).tolist() for _ in range(64)]
    return _s2s(9, 9, max_epochs=1, seed=0, **TINY, **OPTIONS).fit(src, [s[::-1] for s in src])


# ----------------------------------------------------------------------- the task and the alignment
def test_reversal_exact_match_and_aer(reversal):
    model, src, tgt, test = reversal
    hyps = model.translate(src)
    exact = np.mean([h.tokens == t for h, t in zip(hyps, tgt)])
    assert exact >= 0.9
    alignments = model.align_batch(src, tgt)
    aer = corpus_alignment_error_rate(alignments, [ex.sure for ex in test], [ex.possible for ex in test])
    assert aer <= 0.05, aer
    # the argmax is the anti-diagonal: (source, target) pairs, one per target token
    al = alignments[0]
    n = len(src[0])
    assert al.path().tolist() == [[n - 1 - t, t] for t in range(n)]


def test_alignment_form(reversal):
    model, src, tgt, _ = reversal
    al = model.align(src[0], tgt[0])
    assert isinstance(al, Alignment)
    # source on side x (the first argument), target on side y; each target token's attention
    # is a distribution over the source
    assert al.shape == (len(src[0]), len(tgt[0])) and not al.monotonic
    assert al.distribution_over == "x"
    np.testing.assert_allclose(al.matrix().sum(0), 1.0, atol=1e-6)
    assert al.path().shape == (len(tgt[0]), 2) and al.path()[:, 1].tolist() == list(range(len(tgt[0])))
    assert al.extras["tokens"] == tgt[0] and al.extras["source_tokens"] == src[0]
    assert al.extras["eos_weights"].shape == (len(src[0]),)
    assert np.isfinite(al.extras["log_prob"]) and al.extras["log_prob"] <= 0
    with_eos = model.align(src[0], tgt[0], include_eos=True)
    assert with_eos.shape == (len(src[0]), len(tgt[0]) + 1)
    np.testing.assert_allclose(with_eos.matrix()[:, :-1], al.matrix())
    np.testing.assert_allclose(with_eos.matrix()[:, -1], al.extras["eos_weights"])
    # decoded output's attention (tgt=None) equals the teacher-forced attention on that output
    dec = model.align(src[0])
    assert dec.extras["tokens"] == model.translate(src[0]).tokens
    np.testing.assert_allclose(dec.matrix(), model.translate(src[0]).attention.T)
    tf = model.align(src[0], dec.extras["tokens"])
    np.testing.assert_allclose(dec.matrix(), tf.matrix(), atol=1e-5)
    # padded tensors + lengths give the same as lists
    batch = model.align_batch(src[:5], tgt[:5])
    S, T = max(map(len, src[:5])), max(map(len, tgt[:5]))
    ps = torch.zeros(5, S, dtype=torch.long)
    pt = torch.zeros(5, T, dtype=torch.long)
    for k in range(5):
        ps[k, :len(src[k])] = torch.tensor(src[k])
        pt[k, :len(tgt[k])] = torch.tensor(tgt[k])
    padded = model.align_batch(ps, pt, src_lengths=[len(s) for s in src[:5]],
                               tgt_lengths=[len(t) for t in tgt[:5]])
    for k, (a, b) in enumerate(zip(batch, padded)):
        np.testing.assert_allclose(a.matrix(), b.matrix(), atol=1e-6)
        alone = model.align(src[k], tgt[k])
        assert a.extras["log_prob"] == pytest.approx(alone.extras["log_prob"], abs=1e-4)
        assert np.isfinite(b.extras["log_prob"])


def test_attention_on_padding_is_zero(reversal):
    model, src, tgt, _ = reversal
    idx = sorted(range(40), key=lambda k: len(src[k]))[::4]  # lengths 3 .. 8 in one batch
    s_b, t_b = [src[k] for k in idx], [tgt[k] for k in idx]
    assert len({len(s) for s in s_b}) > 2
    src_p, src_len, tgt_in, _ = model._pairs(s_b, t_b, None, None)
    net = model.module_
    net.eval()
    with torch.no_grad():
        logits, att = net(src_p, src_len, tgt_in)
    assert att.shape == (len(idx), tgt_in.shape[1], src_p.shape[1])
    pad = torch.arange(src_p.shape[1])[None, :] >= src_len[:, None]
    assert float(att.masked_select(pad[:, None, :].expand_as(att)).abs().sum()) == 0.0
    torch.testing.assert_close(att.sum(-1), torch.ones(att.shape[:2]), atol=1e-5, rtol=0)
    # batching does not change the result: each sequence alone gives the same attention
    for k in range(len(idx)):
        alone = model.align(s_b[k], t_b[k], include_eos=True).matrix()   # (source, target + EOS)
        n = len(t_b[k]) + 1
        np.testing.assert_allclose(att[k, :n, :len(s_b[k])].numpy(), alone.T, atol=1e-5)
    # padding content is irrelevant
    src_noise = src_p.clone()
    src_noise[pad] = 5
    with torch.no_grad():
        _, att2 = net(src_noise, src_len, tgt_in)
    torch.testing.assert_close(att, att2)
    # decoded attention is trimmed to each source's own length
    for h, s in zip(model.translate(s_b), s_b):
        assert h.attention.shape == (len(h.tokens), len(s))


# ----------------------------------------------------------------------- decoding
@pytest.mark.parametrize("which", ["reversal", "weak", "weak_options"])
def test_beam_size_one_equals_greedy(which, request):
    model = request.getfixturevalue(which)
    model = model[0] if isinstance(model, tuple) else model
    rng = np.random.default_rng(1)
    srcs = [rng.integers(3, 9, size=rng.integers(2, 7)).tolist() for _ in range(12)]
    src, lens = model._sources(srcs, None)
    greedy = model._greedy(src, lens, 10)
    beam = model._beam_search(src, lens, 1, 10)
    assert model.translate(srcs, max_len=10)[0].tokens == greedy[0].tokens  # translate(beam_size=1) is greedy
    for g, b in zip(greedy, beam):
        assert g.tokens == b.tokens and g.finished == b.finished
        np.testing.assert_allclose(g.attention, b.attention, atol=1e-5)
        assert g.log_prob == pytest.approx(b.log_prob, abs=1e-4)
    # the default decoding limit is per sequence, in the batch as alone
    for g, b in zip(model._greedy(src, lens, None), model._beam_search(src, lens, 1, None)):
        assert g.tokens == b.tokens and g.finished == b.finished
        assert len(g.tokens) <= model._default_max_len(g.attention.shape[1])


@pytest.mark.parametrize("which", ["reversal", "weak", "weak_options"])
def test_beam_search_at_least_as_likely_as_greedy(which, request):
    model = request.getfixturevalue(which)
    model = model[0] if isinstance(model, tuple) else model
    rng = np.random.default_rng(2)
    srcs = [rng.integers(3, 9, size=rng.integers(2, 7)).tolist() for _ in range(12)]
    greedy = model.translate(srcs, max_len=10)
    beam = model.translate(srcs, beam_size=4, max_len=10)
    for g, b in zip(greedy, beam):
        assert b.log_prob >= g.log_prob - 1e-9
    if which == "weak":  # an uncertain model: the search finds strictly more likely outputs
        assert sum(b.log_prob > g.log_prob + 1e-3 for g, b in zip(greedy, beam)) >= 3
    elif which == "reversal":  # a confident model: the same outputs
        assert [b.tokens for b in beam] == [g.tokens for g in greedy]
    # the raw beam search (without the greedy fallback) is not worse either on these
    src, lens = model._sources(srcs, None)
    for g, b in zip(greedy, model._beam_search(src, lens, 4, 10)):
        assert b.log_prob >= g.log_prob - 1e-5
    # the kept hypothesis carries its own attention and score: equal to re-scoring its tokens
    for s, b in zip(srcs, beam):
        if b.finished and b.tokens:
            tf = model.align(s, b.tokens, include_eos=True)
            np.testing.assert_allclose(tf.matrix()[:, :-1], b.attention.T, atol=1e-5)
            np.testing.assert_allclose(tf.matrix()[:, -1], b.eos_attention, atol=1e-5)
            assert tf.extras["log_prob"] == pytest.approx(b.log_prob, abs=1e-4)


def test_length_penalty_and_max_len(weak):
    hyp = weak.translate([3, 4, 5], beam_size=3, max_len=2, length_penalty=1.0)
    assert len(hyp.tokens) <= 2
    n = len(hyp.tokens) + hyp.finished
    assert hyp.score == pytest.approx(hyp.log_prob / n)
    with pytest.raises(ValueError, match="beam_size"):
        weak.translate([3, 4], beam_size=0)
    with pytest.raises(ValueError, match="length_penalty"):
        weak.translate([3, 4], beam_size=2, length_penalty=-1.0)


# ----------------------------------------------------------------------- persistence, seeding, contract
def test_save_load_round_trip(reversal, tmp_path):
    model, src, tgt, _ = reversal
    path = tmp_path / "s2s.npz"
    model.save(path)
    loaded = mmalign.Aligner.load(path)
    assert isinstance(loaded, Seq2SeqAttention)
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_ and loaded.max_target_len_ == model.max_target_len_
    assert isinstance(loaded.module_, Seq2SeqAttentionModule)
    for a, b in zip(model.translate(src[:10], beam_size=3), loaded.translate(src[:10], beam_size=3)):
        assert a.tokens == b.tokens
        np.testing.assert_array_equal(a.attention, b.attention)
    np.testing.assert_array_equal(model.align(src[0], tgt[0]).matrix(), loaded.align(src[0], tgt[0]).matrix())


def test_seeded_reproducibility():
    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 6)).tolist() for _ in range(48)]
    tgt = [s[::-1] for s in src]
    fit = lambda seed, **kw: _s2s(9, 9, max_epochs=2, seed=seed, dropout=0.1,  # noqa: E731
                                  teacher_forcing=0.5, **TINY, **kw).fit(src, tgt)
    a, b, c = fit(0), fit(0), fit(1)
    state = lambda m: m.module_.state_dict()  # noqa: E731
    for (k, va), vb in zip(state(a).items(), state(b).values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(state(a).values(), state(c).values()))
    assert a.history_["train_loss"] == b.history_["train_loss"]
    # a clone starts afresh: fitting it gives the same weights again
    from sklearn.base import clone

    fresh = clone(a)
    assert not hasattr(fresh, "module_")
    fresh.fit(src, tgt)
    assert all(torch.equal(va, vb) for va, vb in zip(state(fresh).values(), state(b).values()))
    # a second fit continues from the current weights
    a.fit(src, tgt)
    assert any(not torch.equal(va, vb) for va, vb in zip(state(a).values(), state(b).values()))
    # validation data with early stopping
    d = _s2s(9, 9, max_epochs=3, patience=1, **TINY)
    d.fit(src, tgt, validation=(src[:8], tgt[:8]))
    assert len(d.history_["val_metric"]) == d.history_["epochs_run"]
    with pytest.raises(ValueError, match="patience"):
        _s2s(9, 9, max_epochs=3, patience=1, **TINY).fit(src, tgt)
    with pytest.raises(ValueError, match="validation"):
        _s2s(9, 9, max_epochs=1, **TINY).fit(src, tgt, validation=src[:8])


def test_sklearn_contract():
    m = Seq2SeqAttention(12, 14, hidden_dim=16, train={"max_epochs": 3})
    params = m.get_params()
    assert params["src_vocab_size"] == 12 and params["tgt_vocab_size"] == 14 and params["hidden_dim"] == 16
    assert params["train__max_epochs"] == 3
    assert "hidden_dim=16" in repr(m)
    assert m.set_params(teacher_forcing=0.5).teacher_forcing == 0.5
    assert m.set_params(train__lr=0.01).train == {"max_epochs": 3, "lr": 0.01}
    assert not [k for k in vars(m) if k.endswith("_") and not k.startswith("_")]
    # the defaults of the flat training arguments the model took before
    cfg = Seq2SeqAttention(12, 14).train_config()
    assert (cfg.max_epochs, cfg.batch_size, cfg.lr, cfg.scheduler, cfg.grad_clip, cfg.seed, cfg.device) == \
        (30, 64, 3e-3, "cosine", 1.0, 0, "cpu")
    # construction does no work: bad values are refused by fit
    Seq2SeqAttention(12, 14, hidden_dim=-1, train={"lr": -1})


def test_plot_heatmap(weak, tmp_path):
    from mmalign.plot import attention_heatmap, save_attention_heatmap
    from matplotlib.figure import Figure

    al = weak.align([3, 4, 5], [5, 4])      # source (3 tokens) on side x: the rows
    ax = attention_heatmap(al, x_labels=["3", "4", "5"], y_labels=["5", "4"], ax=Figure().add_subplot(),
                           sure=np.eye(3, 2, dtype=bool))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["3", "4", "5"]
    # transposed, the target runs down the rows, as in Bahdanau et al.'s figures
    ax = attention_heatmap(al.transpose(), x_labels=["5", "4"], y_labels=["3", "4", "5"],
                           ax=Figure().add_subplot())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["5", "4"]
    out = tmp_path / "att.png"
    save_attention_heatmap(al, out, title="t")
    assert out.stat().st_size > 0
    with pytest.raises(ValueError, match="x_labels"):
        attention_heatmap(al, x_labels=["a"], ax=Figure().add_subplot())


# ----------------------------------------------------------------------- bad input
@pytest.mark.parametrize("sources, targets, kwargs, match", [
    ([[3, 4], []], [[4, 3], [5]], {}, r"sources\[1\] is an empty sequence"),
    ([[3, 4]], [[]], {}, r"targets\[0\] is an empty sequence"),
    ([[3, 40]], [[4, 3]], {}, r"sources\[0\] contains token id 40, outside the vocabulary of size 9"),
    ([[3, 4]], [[4, 9]], {}, r"targets\[0\] contains token id 9"),
    ([[3, -1]], [[4, 3]], {}, r"sources\[0\] contains a negative token id"),
    ([[3.0, 4.0]], [[4, 3]], {}, r"sources\[0\] must hold integer token ids"),
    (torch.tensor([[3.0, 4.0]]), [[4, 3]], {}, r"sources must hold integer token ids, got dtype torch.float32"),
    ([[3, 4]], [[4, 3], [3, 4]], {}, r"sources and targets must hold the same number"),
    (torch.tensor([[3, 4]]), [[4, 3]], {"source_lengths": [3]}, r"source_lengths contains 3, more than"),
    (torch.tensor([[3, 4]]), [[4, 3]], {"source_lengths": [1, 2]}, r"source_lengths must have shape \(1,\)"),
    (torch.tensor([[3, 4]]), [[4, 3]], {"source_lengths": [0]}, r"sources has an empty sequence"),
    ([[3, 4]], [[4, 3]], {"source_lengths": [3]}, r"source_lengths does not match"),
    ([[3, 4]], [[4, 2]], {}, r"targets\[0\] contains the reserved id"),
    ([], [], {}, r"sources is empty"),
])
def test_fit_rejects_bad_input(sources, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _s2s(9, 9, max_epochs=1, **TINY).fit(sources, targets, **kwargs)


def test_inputs_are_not_modified(weak):
    src = np.array([[3, 4, 5], [6, 7, 0]])
    lens = np.array([3, 2])
    tgt = torch.tensor([[5, 4, 3], [7, 6, -7]])  # junk in the padding is ignored
    before, tgt_before = src.copy(), tgt.clone()
    weak.align_batch(src, tgt, src_lengths=lens, tgt_lengths=torch.tensor([3, 2]))
    weak.align(src[0], tgt[0])
    weak.translate(src, src_lengths=lens)
    _s2s(9, 9, max_epochs=1, **TINY).fit(src, tgt, source_lengths=lens, target_lengths=[3, 2])
    np.testing.assert_array_equal(src, before)
    assert torch.equal(tgt, tgt_before)


def test_align_and_translate_reject_bad_input(weak):
    with pytest.raises(ValueError, match=r"src contains token id 99"):
        weak.align([3, 99], [4])
    with pytest.raises(ValueError, match=r"src\[1\] contains token id 99"):
        weak.align_batch([[3], [3, 99]], [[4], [4]])
    with pytest.raises(ValueError, match="tgt"):
        weak.align([3, 4], [4, 1])  # BOS inside a target
    with pytest.raises(ValueError, match="src.*integer"):
        weak.translate(torch.tensor([3.0, 4.0]))
    # align takes one pair, align_batch many: no guessing from the input's shape
    with pytest.raises(ValueError, match="tgt must be one 1-d sequence.*align_batch"):
        weak.align([3, 4], [[4, 3]])
    with pytest.raises(ValueError, match="src must be one 1-d sequence.*align_batch"):
        weak.align(np.array([[3, 4], [5, 6]]))
    with pytest.raises(ValueError, match="src must be a collection.*align aligns one pair"):
        weak.align_batch([3, 4], [[4, 3]])
    with pytest.raises(ValueError, match="tgt must be a collection"):
        weak.align_batch([[3, 4]], [4, 3])
    with pytest.raises(ValueError, match="src is an empty sequence"):
        weak.align([], [4])
    with pytest.raises(ValueError, match="not fitted"):
        Seq2SeqAttention(9, 9, **TINY).align([3, 4], [4, 3])
    with pytest.raises(ValueError, match="not fitted"):
        Seq2SeqAttention(9, 9, **TINY).align_batch([[3, 4]], [[4, 3]])


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_dim": 0}, "hidden_dim"),
    ({"pad_id": 1}, "distinct"),
    ({"tgt_vocab_size": 2}, "tgt_vocab_size"),
    ({"teacher_forcing": 1.5}, "teacher_forcing"),
    ({"dropout": 1.0}, "dropout"),
    ({"init_state": "last"}, "init_state"),
    ({"train": {"scheduler": "step"}}, "train.scheduler"),
    ({"train": {"lr": 0.0}}, "train.lr"),
    ({"train": {"max_epochs": 0}}, "train.max_epochs"),
    ({"attention_state": "next"}, "attention_state"),
    ({"input_feeding": "yes"}, "input_feeding"),
    ({"coverage": 1}, "coverage"),
    ({"coverage_penalty": -0.5}, "coverage_penalty"),
])
def test_bad_hyper_parameters(kwargs, match):
    params = dict(src_vocab_size=9, tgt_vocab_size=9)
    params.update(kwargs)
    model = Seq2SeqAttention(**params)  # stores them as given
    with pytest.raises(ValueError, match=match):
        model.fit([[3, 4]], [[4, 3]])


def test_init_state_mean_trains():
    src = [[3, 4, 5], [6, 7], [5, 3, 6, 4]] * 8
    m = _s2s(9, 9, init_state="mean", max_epochs=2, **TINY).fit(src, [s[::-1] for s in src])
    assert m.align([3, 4, 5], [5, 4, 3, 3]).shape == (3, 4)


# ----------------------------------------------------------------------- attention options
def test_current_state_attention_with_penalty_aligns_reversal():
    """The benchmark's configuration (attention from s_i, doubly stochastic penalty) learns the task
    and its attention is the alignment."""
    train = reversal_task(1500, min_len=3, max_len=8, vocab_size=10, seed=0)
    test = reversal_task(200, min_len=3, max_len=8, vocab_size=10, seed=1)
    sv, tv = build_vocabularies(train, test)
    model = Seq2SeqAttention(len(sv), len(tv), embed_dim=32, hidden_dim=64, attention_dim=64,
                             attention_state="current", coverage_penalty=3.0,
                             train={"max_epochs": 6, "batch_size": 64, "lr": 3e-3, "seed": 0})
    model.fit(_ids(train, sv, "source"), _ids(train, tv, "target"))
    src, tgt = _ids(test, sv, "source"), _ids(test, tv, "target")
    assert np.mean([h.tokens == t for h, t in zip(model.translate(src), tgt)]) >= 0.9
    aer = corpus_alignment_error_rate(model.align_batch(src, tgt), [ex.sure for ex in test],
                                      [ex.possible for ex in test])
    assert aer <= 0.05, aer


@pytest.mark.parametrize("options", [
    dict(attention_state="current"),
    dict(input_feeding=True),
    dict(coverage=True),
    dict(attention_state="current", input_feeding=True, coverage=True),
])
def test_attention_options_structure(options):
    """Every option combination: row-stochastic, zero on padding, batch-invariant, decoded attention
    equal to the teacher-forced one."""
    rng = np.random.default_rng(3)
    src = [rng.integers(3, 9, size=rng.integers(2, 7)).tolist() for _ in range(32)]
    tgt = [s[::-1] for s in src]
    m = _s2s(9, 9, max_epochs=1, seed=0, **TINY, **options).fit(src, tgt)
    batch = m.align_batch(src[:6], tgt[:6], include_eos=True)
    for k, al in enumerate(batch):
        np.testing.assert_allclose(al.matrix().sum(0), 1.0, atol=1e-6)
        np.testing.assert_allclose(al.matrix(), m.align(src[k], tgt[k], include_eos=True).matrix(), atol=1e-5)
    src_p, src_len, tgt_in, _ = m._pairs(src[:6], tgt[:6], None, None)
    m.module_.eval()
    with torch.no_grad():
        _, att = m.module_(src_p, src_len, tgt_in)
    pad = torch.arange(src_p.shape[1])[None, :] >= src_len[:, None]
    assert float(att.masked_select(pad[:, None, :].expand_as(att)).abs().sum()) == 0.0
    dec = m.align(src[0], include_eos=True)
    if dec.extras["tokens"] and dec.extras["finished"]:
        np.testing.assert_allclose(dec.matrix(), m.align(src[0], dec.extras["tokens"], include_eos=True).matrix(),
                                   atol=1e-5)


def test_coverage_penalty_is_the_doubly_stochastic_term():
    rng = np.random.default_rng(4)
    src = [rng.integers(3, 9, size=rng.integers(2, 7)).tolist() for _ in range(8)]
    tgt = [s[::-1] for s in src]
    plain = _s2s(9, 9, seed=0, **TINY, attention_state="current")
    pen = _s2s(9, 9, seed=0, **TINY, attention_state="current", coverage_penalty=2.0)
    net = plain._build_module()
    batch = plain._pairs(src, tgt, None, None)
    src_p, src_len, tgt_in, tgt_out = batch
    with torch.no_grad():
        ce, total = plain._loss(net, batch), pen._loss(net, batch)
        _, att = net(src_p, src_len, tgt_in)
    expected = 0.0
    for b in range(len(src)):
        n_steps, n_src = len(tgt[b]) + 1, len(src[b])
        cover = att[b, :n_steps, :n_src].sum(0)
        expected += float(((1 - cover) ** 2).sum())
    expected /= sum(map(len, src))
    assert float(total - ce) == pytest.approx(2.0 * expected, rel=1e-5)


def test_save_load_round_trip_with_options(weak_options, tmp_path):
    path = tmp_path / "s2s_options.npz"
    weak_options.save(path)
    loaded = mmalign.Aligner.load(path)
    assert loaded.get_params() == weak_options.get_params()
    assert all(loaded.get_params()[k] == v for k, v in OPTIONS.items())
    assert hasattr(loaded.module_, "coverage_proj")
    srcs = [[3, 4, 5], [6, 7], [8, 3, 4, 5, 6]]
    for a, b in zip(weak_options.translate(srcs, beam_size=3), loaded.translate(srcs, beam_size=3)):
        assert a.tokens == b.tokens
        np.testing.assert_array_equal(a.attention, b.attention)
    np.testing.assert_array_equal(weak_options.align([3, 4, 5], [5, 4, 3]).matrix(),
                                  loaded.align([3, 4, 5], [5, 4, 3]).matrix())


def test_files_of_the_flat_training_arguments_still_load(tmp_path):
    """A file written when Seq2SeqAttention was itself a torch module with flat training arguments
    (max_epochs, lr, seed, device, ... and the state_dict keys of its submodules) loads."""
    import json

    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 6)).tolist() for _ in range(16)]
    model = _s2s(9, 9, max_epochs=1, seed=0, **TINY, coverage=True).fit(src, [s[::-1] for s in src])
    path = tmp_path / "new.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__meta__"][()]))
    params = meta["params"]
    train = params.pop("train")["__dict__"]
    params.update(train, device="cpu", patience=None, progress=False, scheduler="cosine", grad_clip=1.0,
                  lr=3e-3)
    meta.pop("state_attribute")  # the estimator was the module: its own state_dict keys
    arrays["__meta__"] = np.array(json.dumps(meta))
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    loaded = mmalign.Aligner.load(old)
    assert loaded.train == {"batch_size": 16, "device": "cpu", "grad_clip": 1.0, "lr": 3e-3, "max_epochs": 1,
                            "patience": None, "progress": False, "scheduler": "cosine", "seed": 0}
    np.testing.assert_array_equal(loaded.align([3, 4, 5], [5, 4, 3]).matrix(),
                                  model.align([3, 4, 5], [5, 4, 3]).matrix())


def test_align_batch_equals_align_pair_by_pair(weak_options):
    rng = np.random.default_rng(5)
    src = [rng.integers(3, 9, size=rng.integers(1, 7)).tolist() for _ in range(9)]
    tgt = [rng.integers(3, 9, size=rng.integers(1, 7)).tolist() for _ in range(9)]
    for include_eos in (False, True):
        batch = weak_options.align_batch(src, tgt, include_eos=include_eos)
        assert len(batch) == len(src)
        for s, t, al in zip(src, tgt, batch):
            one = weak_options.align(s, t, include_eos=include_eos)
            assert al.shape == one.shape == (len(s), len(t) + include_eos)
            assert al.distribution_over == one.distribution_over == "x"
            np.testing.assert_allclose(al.matrix(), one.matrix(), atol=1e-6)
            assert al.extras["tokens"] == one.extras["tokens"] == t
            assert al.extras["log_prob"] == pytest.approx(one.extras["log_prob"], abs=1e-5)
    decoded = weak_options.align_batch(src, include_eos=True, beam_size=2, max_len=6)
    for s, al in zip(src, decoded):
        one = weak_options.align(s, include_eos=True, beam_size=2, max_len=6)
        assert al.extras["tokens"] == one.extras["tokens"] and al.shape == one.shape
        np.testing.assert_allclose(al.matrix(), one.matrix(), atol=1e-6)


# ----------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_same_code_path(weak):
    import copy

    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 6)).tolist() for _ in range(32)]
    m = Seq2SeqAttention(9, 9, train={"max_epochs": 1, "batch_size": 16, "device": "cuda"},
                         **TINY).fit(src, [s[::-1] for s in src])
    assert m.module_.output.weight.is_cuda
    hyps = m.translate(src[:4], beam_size=2)
    assert all(h.attention.shape[1] == len(s) for h, s in zip(hyps, src))
    assert m.align(src[0], src[0][::-1]).shape == (len(src[0]), len(src[0]))
    on_gpu = copy.deepcopy(weak).to("cuda")
    assert on_gpu.device_.type == "cuda"
    a = weak.align_batch(src[:6], [s[::-1] for s in src[:6]])
    b = on_gpu.align_batch(src[:6], [s[::-1] for s in src[:6]])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.matrix(), y.matrix(), atol=1e-4)
