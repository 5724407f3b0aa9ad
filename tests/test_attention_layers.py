"""Attention layers: masked softmax, attention modules, positional encodings and the
transformer layers / stacks, with parity against torch.nn given the same weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mmalign.nn import (
    AdditiveAttention,
    DecoderWeights,
    ModalityEmbedding,
    MultiHeadAttention,
    MultiplicativeAttention,
    PositionalEncoding,
    ScaledDotProductAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    TransformerWeights,
    causal_mask,
    lengths_to_padding_mask,
    masked_softmax,
    sinusoidal_positions,
)
from mmalign.nn import functional as AF

D, H, FF = 8, 2, 16
TOL = dict(atol=1e-10, rtol=1e-10)
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=torch.float64)


def jitter_(module: nn.Module, seed: int = 0, scale: float = 0.2) -> nn.Module:
    """Perturb every parameter so deep-copied layers differ and biases / norms are non-trivial."""
    g = gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def float_mask(bool_mask: torch.Tensor) -> torch.Tensor:
    return torch.zeros(bool_mask.shape, dtype=torch.float64).masked_fill(bool_mask, float("-inf"))


LENGTHS = [5, 3, 1]


# ---------------------------------------------------------------- masked softmax

def test_masked_softmax_fully_masked_rows_are_zero_with_finite_grads():
    scores = randn(3, 4, 5).requires_grad_()
    mask = torch.zeros(3, 4, 5, dtype=torch.bool)
    mask[0, 1] = True                      # a fully-masked row
    mask[1, :, 2:] = True                  # partly masked rows
    w = masked_softmax(scores, mask)
    assert torch.isfinite(w).all()
    assert (w[0, 1] == 0).all()
    assert (w[1, :, 2:] == 0).all()
    full = ~mask.all(-1)
    torch.testing.assert_close(w.sum(-1)[full], torch.ones_like(w.sum(-1)[full]))
    (w * randn(3, 4, 5, seed=1)).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert (scores.grad[mask] == 0).all()


def test_masked_softmax_minus_inf_scores_count_as_masked():
    scores = torch.tensor([[0.0, 1.0], [float("-inf"), float("-inf")]], requires_grad=True)
    w = masked_softmax(scores)
    assert torch.isfinite(w).all() and (w[1] == 0).all()
    w.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_masked_softmax_equals_softmax_when_nothing_masked():
    scores = randn(2, 3, 7)
    ref = torch.softmax(scores, -1)
    torch.testing.assert_close(masked_softmax(scores), ref, atol=1e-15, rtol=1e-14)
    none = torch.zeros(2, 3, 7, dtype=torch.bool)
    torch.testing.assert_close(masked_softmax(scores, none), ref, atol=1e-15, rtol=1e-14)
    torch.testing.assert_close(masked_softmax(scores, none, dim=1), torch.softmax(scores, 1),
                               atol=1e-15, rtol=1e-14)


def test_masked_softmax_rejects_non_bool_mask():
    with pytest.raises(ValueError, match="mask"):
        masked_softmax(torch.zeros(2, 3), torch.zeros(2, 3))


def test_sdpa_fully_masked_query_gives_zero_output_and_finite_grads():
    q, k, v = (randn(2, 3, 4, seed=s).requires_grad_() for s in range(3))
    kpm = torch.tensor([[True] * 3, [False, False, True]])
    out, w = AF.scaled_dot_product_attention(q, k, v, key_padding_mask=kpm)
    assert (out[0] == 0).all() and (w[0] == 0).all()
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()


def test_sdpa_matches_torch_functional():
    q, k, v = randn(2, 2, 4, 3, seed=0), randn(2, 2, 6, 3, seed=1), randn(2, 2, 6, 5, seed=2)
    am = causal_mask(4, 6)
    out, w = AF.scaled_dot_product_attention(q, k, v, attn_mask=am)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=~am)
    torch.testing.assert_close(out, ref, **TOL)
    manual = masked_softmax(q @ k.transpose(-1, -2) / math.sqrt(3), am)
    torch.testing.assert_close(w, manual, **TOL)


def test_mask_helpers():
    assert lengths_to_padding_mask([2, 0, 3], max_len=4).tolist() == [
        [False, False, True, True], [True] * 4, [False, False, False, True]]
    assert causal_mask(2, 3).tolist() == [[False, True, True], [False, False, True]]
    bool_mask, bias = AF.merge_masks(float_mask(causal_mask(3)), torch.tensor([[False, False, True]]))
    assert bias is not None and bool_mask.shape == (1, 1, 3)
    with pytest.raises(ValueError, match="lengths"):
        lengths_to_padding_mask(torch.tensor([1.5]))
    with pytest.raises(ValueError, match="lengths"):
        lengths_to_padding_mask([-1])
    with pytest.raises(ValueError, match="max_len"):
        lengths_to_padding_mask([5], max_len=3)
    with pytest.raises(ValueError, match="attn_mask"):
        AF.merge_masks(torch.zeros(3, 3, dtype=torch.int64), None)


# ------------------------------------------------------- padding mass, every layer

def _ragged():
    b, s = len(LENGTHS), max(LENGTHS)
    kpm = lengths_to_padding_mask(LENGTHS)
    return randn(b, 4, D, seed=1), randn(b, s, D, seed=2), kpm


def _additive_2d(q, k, kpm):
    return [AdditiveAttention(D, D, 6).double()(q[:, 0], k, key_padding_mask=kpm)[1][:, None]]


def _additive_3d(q, k, kpm):
    return [AdditiveAttention(D, D, 6).double()(q, k, key_padding_mask=kpm)[1]]


def _mult(score):
    def f(q, k, kpm):
        return [MultiplicativeAttention(D, D, score=score).double()(q, k, key_padding_mask=kpm)[1]]
    return f


def _sdpa(q, k, kpm):
    return [ScaledDotProductAttention()(q, k, k, key_padding_mask=kpm)[1]]


def _mha(q, k, kpm):
    return [MultiHeadAttention(D, H).double()(q, k, k, key_padding_mask=kpm)[1]]


def _enc_layer(q, k, kpm):
    return [TransformerEncoderLayer(D, H, FF, dropout=0.0).double()(
        k, src_key_padding_mask=kpm)[1]]


def _dec_layer(q, k, kpm):
    w = TransformerDecoderLayer(D, H, FF, dropout=0.0).double()(
        q, k, memory_key_padding_mask=kpm, causal=True)[1]
    return [w.cross_attn]


def _enc_stack(q, k, kpm):
    enc = TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0), 2).double()
    return enc(k, src_key_padding_mask=kpm)[1]


def _transformer(q, k, kpm):
    model = Transformer(D, H, 2, 2, FF, dropout=0.0).double()
    w = model(k, q, src_key_padding_mask=kpm, memory_key_padding_mask=kpm, causal=True)[1]
    return list(w.encoder) + [d.cross_attn for d in w.decoder]


@pytest.mark.parametrize("layer", [
    _additive_2d, _additive_3d, _mult("dot"), _mult("general"), _sdpa, _mha, _enc_layer,
    _dec_layer, _enc_stack, _transformer])
def test_attention_mass_on_padding_is_exactly_zero(layer):
    torch.manual_seed(0)
    q, k, kpm = _ragged()
    for w in layer(q, k, kpm):
        assert w.shape[0] == len(LENGTHS) and w.shape[-1] == max(LENGTHS)
        for i, n in enumerate(LENGTHS):
            assert (w[i, ..., n:] == 0).all()
            torch.testing.assert_close(w[i, ..., :n].sum(-1), torch.ones_like(w[i, ..., 0]))


def test_decoder_self_attention_mass_on_padded_targets_is_zero():
    torch.manual_seed(0)
    tgt, mem = randn(3, 5, D), randn(3, 4, D, seed=1)
    tkpm = lengths_to_padding_mask(LENGTHS)
    dec = TransformerDecoder(TransformerDecoderLayer(D, H, FF, dropout=0.0), 2).double()
    _, ws = dec(tgt, mem, tgt_key_padding_mask=tkpm, causal=True)
    for w in ws:
        for i, n in enumerate(LENGTHS):
            assert (w.self_attn[i, ..., n:] == 0).all()
        assert torch.isfinite(w.self_attn).all() and torch.isfinite(w.cross_attn).all()


# ------------------------------------------------------------ MultiHeadAttention

MHA_CASES = ["plain", "key_padding", "bool_mask", "float_mask", "float_mask+padding",
             "3d_mask", "kdim_vdim", "no_bias"]


@pytest.mark.parametrize("case", MHA_CASES)
def test_multihead_attention_matches_torch(case):
    torch.manual_seed(0)
    b, t, s = 3, 4, 5
    kdim, vdim = (6, 3) if case == "kdim_vdim" else (None, None)
    bias = case != "no_bias"
    ref = nn.MultiheadAttention(D, H, batch_first=True, kdim=kdim, vdim=vdim, bias=bias).double()
    jitter_(ref)
    ours = MultiHeadAttention(D, H, kdim=kdim, vdim=vdim, bias=bias).double().load_torch_weights(ref)
    q, k, v = randn(b, t, D), randn(b, s, kdim or D, seed=1), randn(b, s, vdim or D, seed=2)
    kw_ours, kw_ref = {}, {}
    kpm = lengths_to_padding_mask([5, 3, 2])
    am = causal_mask(t, s)
    if "padding" in case:
        kw_ours["key_padding_mask"] = kpm
        kw_ref["key_padding_mask"] = float_mask(kpm) if "float" in case else kpm
    if case == "bool_mask":
        kw_ours["attn_mask"] = kw_ref["attn_mask"] = am
    if case.startswith("float_mask"):
        fm = randn(t, s, seed=3).masked_fill(am, float("-inf"))
        kw_ours["attn_mask"] = kw_ref["attn_mask"] = fm
    if case == "3d_mask":
        m3 = torch.rand(b * H, t, s, generator=gen(4)) < 0.3
        m3[..., 0] = False
        kw_ours["attn_mask"] = kw_ref["attn_mask"] = m3
    out, w = ours(q, k, v, **kw_ours)
    ref_out, ref_w = ref(q, k, v, **kw_ref)
    _, ref_heads = ref(q, k, v, average_attn_weights=False, **kw_ref)
    assert w.shape == (b, H, t, s)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(w.mean(1), ref_w, **TOL)
    torch.testing.assert_close(w, ref_heads, **TOL)


def test_multihead_attention_load_rejects_mismatch():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(D, 2).load_torch_weights(nn.MultiheadAttention(D, 4))
    with pytest.raises(ValueError, match="kdim"):
        MultiHeadAttention(D, 2).load_torch_weights(nn.MultiheadAttention(D, 2, kdim=3, vdim=3))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention(D, 2).load_torch_weights(nn.MultiheadAttention(D, 2, add_bias_kv=True))


def test_multihead_attention_training_dropout_returns_predropout_weights():
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, H, dropout=0.5).double().train()
    x = randn(2, 6, D)
    out, w = mha(x, x, x)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, H, 6, dtype=torch.float64))
    assert not torch.allclose(out, mha.eval()(x, x, x)[0])


# ------------------------------------------------- transformer layers and stacks

def _torch_layer(cls, norm_first, activation):
    return jitter_(cls(D, H, FF, dropout=0.0, activation=activation, batch_first=True,
                       norm_first=norm_first).double().eval())


def _valid(x: torch.Tensor, lengths: list[int]) -> list[torch.Tensor]:
    return [x[i, :n] for i, n in enumerate(lengths)]


def assert_close_valid(a, b, lengths):
    for x, y in zip(_valid(a, lengths), _valid(b, lengths)):
        torch.testing.assert_close(x, y, **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    ref = _torch_layer(nn.TransformerEncoderLayer, norm_first, activation)
    ours = TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation,
                                   norm_first=norm_first).double().eval().load_torch_weights(ref)
    x, kpm = randn(3, 5, D), lengths_to_padding_mask(LENGTHS)
    out, w = ours(x, src_key_padding_mask=kpm)
    assert w.shape == (3, H, 5, 5)
    assert_close_valid(out, ref(x, src_key_padding_mask=kpm), LENGTHS)
    cm = causal_mask(5)
    out, _ = ours(x, src_key_padding_mask=kpm, causal=True)
    assert_close_valid(out, ref(x, src_mask=cm, src_key_padding_mask=kpm, is_causal=True), LENGTHS)
    torch.testing.assert_close(ours(x, src_mask=cm)[0], ref(x, src_mask=float_mask(cm)), **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    ref = _torch_layer(nn.TransformerDecoderLayer, norm_first, "relu")
    ours = TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first)
    ours.double().eval().load_torch_weights(ref)
    tgt, mem = randn(3, 5, D), randn(3, 4, D, seed=1)
    tkpm, mkpm = lengths_to_padding_mask(LENGTHS), lengths_to_padding_mask([4, 2, 3])
    cm = causal_mask(5)
    out, w = ours(tgt, mem, tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm, causal=True)
    expect = ref(tgt, mem, tgt_mask=cm, tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm,
                 tgt_is_causal=True)
    assert isinstance(w, DecoderWeights)
    assert w.self_attn.shape == (3, H, 5, 5) and w.cross_attn.shape == (3, H, 5, 4)
    assert_close_valid(out, expect, LENGTHS)
    # the cross-attention weights are torch's for the same (normalised) queries
    x = tgt
    sa = ours.self_attn(ours.norm1(x) if norm_first else x, ours.norm1(x) if norm_first else x,
                        ours.norm1(x) if norm_first else x, attn_mask=causal_mask(5),
                        key_padding_mask=tkpm)[0]
    x = x + sa if norm_first else ours.norm1(x + sa)
    qx = ours.norm2(x) if norm_first else x
    _, ref_w = ref.multihead_attn(qx, mem, mem, key_padding_mask=mkpm, average_attn_weights=False)
    torch.testing.assert_close(w.cross_attn, ref_w, **TOL)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_matches_torch(norm_first):
    layer = nn.TransformerEncoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    ref = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(D), enable_nested_tensor=False)
    jitter_(ref.double().eval())
    ours = TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first),
                              3, norm=nn.LayerNorm(D)).double().eval().load_torch_weights(ref)
    x, kpm = randn(3, 5, D), lengths_to_padding_mask(LENGTHS)
    out, ws = ours(x, src_key_padding_mask=kpm)
    assert len(ws) == 3 and all(w.shape == (3, H, 5, 5) for w in ws)
    assert not torch.allclose(ws[0], ws[1])        # layers hold their own (copied) weights
    assert_close_valid(out, ref(x, src_key_padding_mask=kpm), LENGTHS)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_stack_matches_torch(norm_first):
    layer = nn.TransformerDecoderLayer(D, H, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    ref = jitter_(nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(D)).double().eval())
    ours = TransformerDecoder(TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first),
                              2, norm=nn.LayerNorm(D)).double().eval().load_torch_weights(ref)
    tgt, mem = randn(3, 5, D), randn(3, 4, D, seed=1)
    tkpm, mkpm = lengths_to_padding_mask(LENGTHS), lengths_to_padding_mask([4, 2, 3])
    cm = causal_mask(5)
    out, ws = ours(tgt, mem, tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm, causal=True)
    expect = ref(tgt, mem, tgt_mask=cm, tgt_key_padding_mask=tkpm, memory_key_padding_mask=mkpm,
                 tgt_is_causal=True)
    assert len(ws) == 2 and all(isinstance(w, DecoderWeights) for w in ws)
    assert_close_valid(out, expect, LENGTHS)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(norm_first):
    ref = nn.Transformer(D, H, 2, 2, FF, dropout=0.0, batch_first=True, norm_first=norm_first)
    jitter_(ref.double().eval())
    ours = Transformer(D, H, 2, 2, FF, dropout=0.0, norm_first=norm_first)
    ours.double().eval().load_torch_weights(ref)
    src, tgt = randn(3, 4, D), randn(3, 5, D, seed=1)
    skpm, tkpm = lengths_to_padding_mask([4, 2, 3]), lengths_to_padding_mask(LENGTHS)
    out, w = ours(src, tgt, src_key_padding_mask=skpm, tgt_key_padding_mask=tkpm,
                  memory_key_padding_mask=skpm, causal=True)
    expect = ref(src, tgt, tgt_mask=causal_mask(5),
                 src_key_padding_mask=skpm, tgt_key_padding_mask=tkpm,
                 memory_key_padding_mask=skpm, tgt_is_causal=True)
    assert isinstance(w, TransformerWeights) and len(w.encoder) == 2 and len(w.decoder) == 2
    assert w.decoder[0].cross_attn.shape == (3, H, 5, 4)
    assert_close_valid(out, expect, LENGTHS)
    # unpadded, default arguments
    torch.testing.assert_close(ours(src, tgt)[0], ref(src, tgt), **TOL)


def test_load_torch_weights_rejects_mismatches():
    with pytest.raises(ValueError, match="norm_first"):
        TransformerEncoderLayer(D, H, FF).load_torch_weights(
            nn.TransformerEncoderLayer(D, H, FF, norm_first=True))
    with pytest.raises(ValueError, match="activation"):
        TransformerDecoderLayer(D, H, FF).load_torch_weights(
            nn.TransformerDecoderLayer(D, H, FF, activation="gelu"))
    with pytest.raises(ValueError, match="linear1"):
        TransformerEncoderLayer(D, H, 2 * FF).load_torch_weights(nn.TransformerEncoderLayer(D, H, FF))
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(D, H, FF).load_torch_weights(
            nn.TransformerEncoderLayer(D, H, FF, activation=nn.GELU()))
    TransformerEncoderLayer(D, H, FF, activation="gelu").load_torch_weights(
        nn.TransformerEncoderLayer(D, H, FF, activation=nn.GELU()))
    layer = nn.TransformerEncoderLayer(D, H, FF)
    with pytest.raises(ValueError, match="layers"):
        TransformerEncoder(TransformerEncoderLayer(D, H, FF), 2).load_torch_weights(
            nn.TransformerEncoder(layer, 3, enable_nested_tensor=False))
    with pytest.raises(ValueError, match="norm"):
        TransformerEncoder(TransformerEncoderLayer(D, H, FF), 2).load_torch_weights(
            nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(D), enable_nested_tensor=False))


def test_need_weights_false_and_memory_dim():
    torch.manual_seed(0)
    enc = TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0), 2).double()
    x = randn(2, 5, D)
    out, w = enc(x, need_weights=False)
    assert w is None
    torch.testing.assert_close(out, enc(x)[0], **TOL)
    dec = TransformerDecoderLayer(D, H, FF, dropout=0.0, memory_dim=3).double()
    out, w = dec(randn(2, 4, D), randn(2, 6, 3, seed=1))
    assert out.shape == (2, 4, D) and w.cross_attn.shape == (2, H, 4, 6)
    assert dec(randn(2, 4, D), randn(2, 6, 3, seed=1), need_weights=False)[1] is None


# --------------------------------------------------------------------- causality

def _encoder_stack():
    return TransformerEncoder(TransformerEncoderLayer(D, H, FF, dropout=0.0), 2,
                              norm=nn.LayerNorm(D)).double().eval()


def _decoder_stack():
    return TransformerDecoder(TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=True), 2,
                              norm=nn.LayerNorm(D)).double().eval()


@pytest.mark.parametrize("kind", ["encoder_layer", "encoder", "decoder_layer", "decoder",
                                  "transformer", "float_mask_and_causal"])
def test_causal_mask_future_inputs_do_not_change_past_outputs(kind):
    torch.manual_seed(0)
    mem = randn(2, 4, D, seed=5)
    if kind == "encoder_layer":
        m = TransformerEncoderLayer(D, H, FF, dropout=0.0).double().eval()
        run = lambda x, causal: m(x, causal=causal)[0]  # noqa: E731
    elif kind == "encoder":
        m = _encoder_stack()
        run = lambda x, causal: m(x, causal=causal)[0]  # noqa: E731
    elif kind == "decoder_layer":
        m = TransformerDecoderLayer(D, H, FF, dropout=0.0).double().eval()
        run = lambda x, causal: m(x, mem, causal=causal)[0]  # noqa: E731
    elif kind == "decoder":
        m = _decoder_stack()
        run = lambda x, causal: m(x, mem, causal=causal)[0]  # noqa: E731
    elif kind == "transformer":
        m = Transformer(D, H, 1, 2, FF, dropout=0.0).double().eval()
        run = lambda x, causal: m(mem, x, causal=causal)[0]  # noqa: E731
    else:  # an explicit float mask merged with the causal flag
        m = _decoder_stack()
        bias = randn(6, 6, seed=7)
        run = lambda x, causal: m(x, mem, tgt_mask=bias, causal=causal)[0]  # noqa: E731
    x = randn(2, 6, D)
    for t in (0, 2, 4):
        y = x.clone()
        y[:, t + 1:] += randn(2, 5 - t, D, seed=t + 10)
        a, b = run(x, True), run(y, True)
        torch.testing.assert_close(a[:, :t + 1], b[:, :t + 1], atol=1e-12, rtol=0)
        assert not torch.allclose(a[:, t + 1:], b[:, t + 1:])
        a, b = run(x, False), run(y, False)
        assert (a[:, :t + 1] - b[:, :t + 1]).abs().max() > 1e-6


def test_causal_flag_merges_with_bool_mask():
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(D, H, FF, dropout=0.0).double()
    extra = torch.zeros(5, 5, dtype=torch.bool)
    extra[:, 0] = True
    extra[0, 0] = False
    _, w = layer(randn(2, 5, D), src_mask=extra, causal=True)
    assert (w[..., 1:, 0] == 0).all()
    assert (w.masked_select(causal_mask(5)) == 0).all()


# ------------------------------------------------------------------- permutation

def _perm_check(pe: PositionalEncoding | None):
    torch.manual_seed(0)
    enc = _encoder_stack()
    x = randn(3, 7, D)
    kpm = lengths_to_padding_mask([7, 7, 7])
    kpm[1, 2] = kpm[2, 5] = True
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])

    def run(x, kpm):
        return enc(x if pe is None else pe(x), src_key_padding_mask=kpm)

    out, ws = run(x, kpm)
    pout, pws = run(x[:, perm], kpm[:, perm])
    return out[:, perm], pout, ws[-1][:, :, perm][..., perm], pws[-1]


def test_encoder_without_positions_is_permutation_equivariant():
    out, pout, w, pw = _perm_check(None)
    torch.testing.assert_close(pout, out, atol=1e-6, rtol=0)
    torch.testing.assert_close(pw, w, atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["sinusoidal", "learned", "onehot"])
@pytest.mark.parametrize("combine", ["sum", "concat"])
def test_encoder_with_positions_is_not_permutation_equivariant(kind, combine):
    torch.manual_seed(0)
    if combine == "sum":
        pe = PositionalEncoding(D, kind=kind, max_len=16).double()
        out, pout, _, _ = _perm_check(pe)
    else:  # concat codes, then project back to d_model
        pe = PositionalEncoding(D - 4, kind=kind, combine="concat", dim=4, max_len=16).double()
        proj = nn.Linear(D, D).double()
        wrap = lambda x: pe(proj(x)[..., :D - 4])  # noqa: E731
        out, pout, _, _ = _perm_check(wrap)  # type: ignore[arg-type]
    assert (pout - out).abs().max() > 1e-3


# ------------------------------------------------------- additive / multiplicative

def test_additive_attention_matches_formula():
    torch.manual_seed(0)
    att = AdditiveAttention(4, 6, 5).double()
    s, h = randn(2, 3, 4), randn(2, 7, 6, seed=1)
    kpm = lengths_to_padding_mask([7, 4])
    ctx, w = att(s, h, key_padding_mask=kpm)
    W, U, b, v = att.query_proj.weight, att.key_proj.weight, att.key_proj.bias, att.v
    e = torch.empty(2, 3, 7, dtype=torch.float64)
    for n in range(2):
        for i in range(3):
            for j in range(7):
                e[n, i, j] = v @ torch.tanh(W @ s[n, i] + U @ h[n, j] + b)
    e = e.masked_fill(kpm[:, None], float("-inf"))
    ref_w = torch.softmax(e, -1)
    torch.testing.assert_close(w, ref_w, **TOL)
    torch.testing.assert_close(ctx, ref_w @ h, **TOL)
    # cached key projection and single-step (2-d) queries give the same thing
    ctx1, w1 = att(s[:, 1], h, key_padding_mask=kpm, projected_keys=att.project_keys(h))
    torch.testing.assert_close(w1, w[:, 1], **TOL)
    torch.testing.assert_close(ctx1, ctx[:, 1], **TOL)
    vals = randn(2, 7, 3, seed=2)
    torch.testing.assert_close(att(s, h, vals, key_padding_mask=kpm)[0], ref_w @ vals, **TOL)


@pytest.mark.parametrize("score", ["dot", "general"])
def test_multiplicative_attention_matches_formula(score):
    torch.manual_seed(0)
    att = MultiplicativeAttention(5, 5, score=score).double()
    s, h = randn(2, 3, 5), randn(2, 6, 5, seed=1)
    ctx, w = att(s, h)
    e = s @ h.transpose(1, 2) if score == "dot" else s @ att.weight.weight @ h.transpose(1, 2)
    torch.testing.assert_close(w, torch.softmax(e, -1), **TOL)
    torch.testing.assert_close(ctx, torch.softmax(e, -1) @ h, **TOL)
    ctx2, w2 = att(s[:, 0], h)
    assert ctx2.shape == (2, 5) and w2.shape == (2, 6)


def test_multiplicative_general_allows_different_sizes():
    att = MultiplicativeAttention(4, 7, score="general")
    _, w = att(torch.randn(2, 3, 4), torch.randn(2, 5, 7))
    assert w.shape == (2, 3, 5)


# ----------------------------------------------------------------------- positions

def test_sinusoidal_positions_match_formula():
    for dim in (6, 7):
        pe = sinusoidal_positions(torch.arange(5, dtype=torch.float64), dim)
        for p in range(5):
            for i in range(dim):
                angle = p / 10000 ** (2 * (i // 2) / dim)
                ref = math.sin(angle) if i % 2 == 0 else math.cos(angle)
                assert abs(float(pe[p, i]) - ref) < 1e-12
    assert sinusoidal_positions(torch.arange(3), 4).dtype == torch.float32


@pytest.mark.parametrize("kind", ["sinusoidal", "learned", "onehot"])
def test_positional_encoding_shapes_and_max_len(kind):
    x = torch.randn(2, 5, D)
    pe_sum = PositionalEncoding(D, kind=kind, max_len=6)
    assert pe_sum(x).shape == (2, 5, D) and pe_sum.out_dim == D
    pe_cat = PositionalEncoding(D, kind=kind, combine="concat", dim=3, max_len=6)
    out = pe_cat(x)
    assert out.shape == (2, 5, D + 3) and pe_cat.out_dim == D + 3
    torch.testing.assert_close(out[..., :D], x)
    torch.testing.assert_close(out[0, :, D:], out[1, :, D:])
    long = torch.randn(1, 9, D)
    if kind == "sinusoidal":
        assert pe_sum(long).shape == (1, 9, D)
        torch.testing.assert_close(pe_sum(torch.zeros(1, 5, D))[0],
                                   sinusoidal_positions(torch.arange(5), D))
    else:
        with pytest.raises(ValueError, match="max_len"):
            pe_sum(long)


def test_positional_encoding_options_and_errors():
    x = torch.ones(1, 3, 4)
    pe = PositionalEncoding(4, scale_input=True)
    torch.testing.assert_close(pe(x) - pe.codes(3)[None], 2 * x)
    pe64 = PositionalEncoding(4, kind="learned", max_len=4).double()
    assert pe64(x.double()).dtype == torch.float64
    with pytest.raises(ValueError, match="kind"):
        PositionalEncoding(4, kind="rotary")
    with pytest.raises(ValueError, match="combine"):
        PositionalEncoding(4, combine="mul")
    with pytest.raises(ValueError, match="dim"):
        PositionalEncoding(4, dim=3)
    with pytest.raises(ValueError, match="max_len"):
        PositionalEncoding(4, max_len=0)
    with pytest.raises(ValueError, match="x"):
        pe(torch.ones(3, 4))


def test_modality_embedding():
    emb = ModalityEmbedding(3, 4)
    x = torch.zeros(2, 5, 4)
    torch.testing.assert_close(emb(x, 2), emb.table.weight[2].expand(2, 5, 4))
    ids = torch.tensor([0, 0, 1, 1, 2])
    torch.testing.assert_close(emb(x, ids)[1], emb.table.weight[ids])
    with pytest.raises(ValueError, match="modality"):
        emb(x, 3)
    with pytest.raises(ValueError, match="modality"):
        emb(x, torch.tensor([0.5]))
    with pytest.raises(ValueError, match="n_modalities"):
        ModalityEmbedding(0, 4)


# ----------------------------------------------------------------------- bad inputs

def test_bad_inputs_raise_value_error_naming_the_argument():
    mha = MultiHeadAttention(D, H)
    x = torch.randn(2, 5, D)
    with pytest.raises(ValueError, match="embed_dim"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match="query"):
        mha(torch.randn(5, D), x, x)
    with pytest.raises(ValueError, match="batch"):
        mha(x, torch.randn(3, 5, D), torch.randn(3, 5, D))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(x, x, x, key_padding_mask=torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="key"):
        mha(x, torch.randn(2, 5, 3), x)
    with pytest.raises(ValueError, match="attn_mask"):
        mha(x, x, x, attn_mask=torch.zeros(3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="attn_mask"):
        mha(x, x, x, attn_mask=torch.zeros(5, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="keys"):
        AdditiveAttention(D, D, 4)(x, torch.randn(5, D))
    with pytest.raises(ValueError, match="key_padding_mask"):
        AdditiveAttention(D, D, 4)(x, x, key_padding_mask=torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(ValueError, match="query"):
        MultiplicativeAttention(D, D)(torch.randn(1, 2, 3, D), x)
    with pytest.raises(ValueError, match="score"):
        MultiplicativeAttention(D, D, score="concat")
    with pytest.raises(ValueError, match="score"):
        MultiplicativeAttention(D, 3, score="dot")
    with pytest.raises(ValueError, match="query"):
        AF.scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4))
    with pytest.raises(ValueError, match="src"):
        TransformerEncoderLayer(D, H, FF)(torch.randn(5, D))
    with pytest.raises(ValueError, match="src"):
        TransformerEncoderLayer(D, H, FF)(torch.randn(2, 5, D + 1))
    with pytest.raises(ValueError, match="memory"):
        TransformerDecoderLayer(D, H, FF)(x, torch.randn(3, 4, D))
    with pytest.raises(ValueError, match="tgt"):
        Transformer(D, H, 1, 1, FF)(x, torch.randn(3, 4, D))
    with pytest.raises(ValueError, match="key_padding_mask"):
        TransformerEncoderLayer(D, H, FF)(x, src_key_padding_mask=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(D, H, FF, activation="swish")
    with pytest.raises(ValueError, match="num_layers"):
        TransformerEncoder(TransformerEncoderLayer(D, H, FF), 0)


# ----------------------------------------------------------------------------- CUDA

@CUDA
@pytest.mark.parametrize("kind", ["mha", "encoder", "transformer"])
def test_cuda_matches_cpu(kind):
    torch.manual_seed(0)
    if kind == "mha":
        m = MultiHeadAttention(D, H)
        args = (randn(2, 5, D),) * 3
        kw = dict(key_padding_mask=lengths_to_padding_mask([5, 3]))
    elif kind == "encoder":
        m = _encoder_stack()
        args = (randn(2, 5, D),)
        kw = dict(src_key_padding_mask=lengths_to_padding_mask([5, 3]), causal=True)
    else:
        m = Transformer(D, H, 2, 2, FF, dropout=0.0)
        args = (randn(2, 5, D), randn(2, 4, D, seed=1))
        kw = dict(src_key_padding_mask=lengths_to_padding_mask([5, 3]), causal=True)
    m = m.double().eval()
    out_cpu = m(*args, **kw)[0]
    cuda = torch.device("cuda")
    m = m.to(cuda)
    out_gpu = m(*(a.to(cuda) for a in args), **{k: v.to(cuda) if torch.is_tensor(v) else v
                                                  for k, v in kw.items()})[0]
    assert out_gpu.device.type == "cuda"
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, atol=1e-9, rtol=1e-9)
