"""Transformer encoder-decoder (Vaswani et al., 2017) whose cross-attention is read as an alignment.

:class:`TransformerSeq2Seq` learns a sequence-to-sequence task over integer
token ids (``fit``), translates greedily or with beam search (``translate``),
and hands back the decoder's **cross-attention** as an
:class:`~mmalign.alignment.Alignment` with the **source** on side x (rows) and
the **target** on side y (columns), the order of ``align(src, tgt)``'s
arguments; each target token's weights are a distribution over the source
(``distribution_over="x"``). It follows the estimator contract of
:class:`~mmalign.attention.Seq2SeqAttention` (same token-id conventions, same
``fit`` / ``translate`` / ``align`` / ``align_batch`` signatures). The network
is :class:`TransformerSeq2SeqModule` (a plain ``torch.nn.Module``, ``module_``
after ``fit``), built from :class:`mmalign.nn.transformer.Transformer`'s
encoder and decoder stacks and :class:`mmalign.nn.positional.PositionalEncoding`.

Model
-----
- Source and target embeddings (``d_model``, scaled by ``sqrt(d_model)``) plus
  sinusoidal or learned positions (``positional``), dropout.
- ``num_encoder_layers`` encoder layers over the source with its padding mask;
  ``num_decoder_layers`` decoder layers with a **causal** self-attention mask
  (step ``i`` sees targets ``<= i``), the target padding mask, and
  cross-attention over the encoder output with the source padding mask
  (weights exactly 0 on padded source positions). Post-norm (the original
  Transformer) by default, ``norm_first=True`` for pre-norm.
- Output: a linear map of the decoder output to the target vocabulary;
  ``pad_id`` and ``bos_id`` get probability 0 (never outputs).
- Loss: label-smoothed cross-entropy (``label_smoothing=ε``, 0.1 by default,
  Szegedy et al. 2016 as used by Vaswani et al.): ``(1 - ε) · (-log p(y)) +
  ε · mean_{v ∈ emittable} (-log p(v))``, the smoothing mass spread uniformly
  over the ``V - 2`` ids the model can emit (pad and BOS excluded: their
  probability is 0). ``alignment_supervision=λ > 0`` adds Garg et al.'s (2019)
  supervised alignment loss on one head (see :meth:`TransformerSeq2Seq.fit`).

Which attention is the alignment
--------------------------------
Every decoder layer has ``nhead`` cross-attention heads; the decoder position
that reads ``y_{i-1}`` and predicts ``y_i`` gives target token ``i``'s row.
``alignment_layer`` picks the layer (an index, negative from the end, or
``"mean"``: the average over layers) and ``alignment_heads`` the head (an index,
or ``"mean"``: the average over heads, the default). The default layer is the
last (``-1``): Garg et al. (2019) found the penultimate layer of 6-layer models
aligns best, but in the small 3-layer decoders of the benchmark the last layer's
head mean aligned best and the penultimate layer worse. Measured by
``benchmarks/transformer_seq2seq.py`` (seed 0; 2 encoder and 3 decoder layers,
4 heads; test AER %, additive attention of ``Seq2SeqAttention`` on the same data
for reference):

==========  ========  ==========  ===========  ====================  ================
task        Bahdanau  last layer  penultimate  mean (layers, heads)  supervised head
==========  ========  ==========  ===========  ====================  ================
reversal    1.10      3.46        8.08         4.38                  0.38
reordering  4.76      8.40        12.08        5.01                  0.03
dates       19.42     17.62       14.63        12.18                 0.07
==========  ========  ==========  ===========  ====================  ================

Raw cross-attention aligns worse than additive attention on reversal and
reordering; averaging layers and heads, or choosing the view on validation
links, narrows the gap; a supervised head (trained on the training pairs' gold
links) closes it. Raw
transformer cross-attention is known to align worse than additive attention
(Garg et al. 2019; Kobayashi et al. 2020): heads specialise, and the last
layer often attends to the next token's source word or to punctuation. The
remedies measured by ``python -m benchmarks transformer_seq2seq``: the layer /
head choice (:meth:`TransformerSeq2Seq.select_alignment_head` picks it by AER
on validation pairs with gold links) and the supervised alignment head.
``align`` always returns the selected view; ``extras["cross_attention"]`` holds
every layer's and head's weights ``(n_layers, nhead, n_target, n_source)``.

Token-id conventions
--------------------
As :class:`~mmalign.attention.Seq2SeqAttention`: 1-d integer ids in
``[0, vocab_size)``, ``pad_id``, ``bos_id``, ``eos_id`` (0, 1, 2 by default)
reserved; give sequences without BOS / EOS; targets must not contain the
reserved ids; sources may contain any id (padding is told by the lengths).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..alignment import Alignment
from ..metrics import corpus_alignment_error_rate
from ..nn.decoding import (MAX_BEAM_SIZE, MAX_DECODE_LEN, Hypothesis, beam_search, greedy_decode,
                           length_normalised_score)
from ..nn.estimator import TorchAligner
from ..nn.functional import lengths_to_padding_mask
from ..nn.positional import PositionalEncoding
from ..nn.transformer import TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, \
    TransformerEncoderLayer
from ..utils.token_ids import as_int_array, is_single_sequence, one_id_sequence
from ..utils.validation import check_bool, check_choice, check_float, check_int
from .seq2seq import _IGNORE, Seq2SeqAttention

__all__ = ["TransformerSeq2Seq", "TransformerSeq2SeqModule", "label_smoothed_nll"]

_POSITIONALS = ("sinusoidal", "learned")
_ACTIVATIONS = ("relu", "gelu")
# training defaults: Adam at 1e-3 with cosine annealing, clipping at 1, seed 0, CPU
_TRAINING = {"max_epochs": 30, "batch_size": 64, "lr": 1e-3, "scheduler": "cosine", "grad_clip": 1.0,
             "seed": 0, "device": "cpu"}


def label_smoothed_nll(logits: torch.Tensor, target: torch.Tensor, epsilon: float,
                       ignore_index: int = _IGNORE) -> torch.Tensor:
    """Mean label-smoothed negative log-likelihood over the non-ignored positions.

    ``(1 - ε) · (-log p(y)) + ε · mean_v (-log p(v))``, the mean over the ids
    with a finite logit (ids a model never emits, at ``-inf``, get no
    smoothing mass; torch's ``cross_entropy(label_smoothing=...)`` would be
    infinite there).

    Parameters
    ----------
    logits : torch.Tensor [shape=(N, V)]
    target : torch.LongTensor [shape=(N,)]
        Ids, ``ignore_index`` where not scored.
    epsilon : float in [0, 1)
    ignore_index : int

    Returns
    -------
    loss : torch.Tensor, scalar (0 when every position is ignored)

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[0.0, float("-inf"), 0.0, 0.0]])
    >>> round(float(label_smoothed_nll(logits, torch.tensor([0]), 0.0)), 4)  # log 3
    1.0986
    """
    logp = torch.log_softmax(logits.float() if logits.dtype == torch.float16 else logits, -1)
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    logp, tgt = logp[valid], target[valid]
    nll = -logp.gather(-1, tgt[:, None])[:, 0]
    finite = torch.isfinite(logp)
    smooth = -(torch.where(finite, logp, torch.zeros_like(logp)).sum(-1) / finite.sum(-1))
    eps = float(epsilon)
    return ((1.0 - eps) * nll + eps * smooth).mean()


# --------------------------------------------------------------------------- network
class TransformerSeq2SeqModule(nn.Module):
    """The network of :class:`TransformerSeq2Seq`: embeddings + positions, a
    :class:`~mmalign.nn.transformer.TransformerEncoder` and a causal
    :class:`~mmalign.nn.transformer.TransformerDecoder`, a linear output layer.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size, d_model, nhead, num_encoder_layers, num_decoder_layers,
    dim_feedforward, dropout, activation, norm_first, positional, max_len, pad_id, bos_id, eos_id
        As in :class:`TransformerSeq2Seq` (checked there).

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import TransformerSeq2SeqModule
    >>> net = TransformerSeq2SeqModule(8, 9, d_model=8, nhead=2, dim_feedforward=16).eval()
    >>> src = torch.tensor([[3, 4, 5], [6, 7, 0]])
    >>> logits, cross = net(src, torch.tensor([3, 2]), torch.tensor([[1, 5, 4], [1, 7, 6]]))
    >>> tuple(logits.shape), tuple(cross.shape)   # (B, T, V), (B, layers, heads, T, S)
    ((2, 3, 9), (2, 2, 2, 3, 3))
    >>> bool((cross[1, :, :, :, 2] == 0).all())   # no weight on the padded source position
    True
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, dim_feedforward: int = 256,
                 dropout: float = 0.1, activation: str = "relu", norm_first: bool = False,
                 positional: str = "sinusoidal", max_len: int = 512, pad_id: int = 0, bos_id: int = 1,
                 eos_id: int = 2) -> None:
        super().__init__()
        check_choice(positional, "positional", _POSITIONALS)
        D = int(d_model)
        if D % int(nhead):
            raise ValueError(f"d_model ({D}) must be divisible by nhead ({nhead})")
        self.d_model, self.nhead = D, int(nhead)
        self.src_embed = nn.Embedding(int(src_vocab_size), D, padding_idx=int(pad_id))
        self.tgt_embed = nn.Embedding(int(tgt_vocab_size), D, padding_idx=int(pad_id))
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=D ** -0.5)
            with torch.no_grad():
                emb.weight[int(pad_id)].zero_()
        self.positions = PositionalEncoding(D, kind=positional, max_len=int(max_len), scale_input=True,
                                            dropout=float(dropout))
        kw = dict(dim_feedforward=int(dim_feedforward), dropout=float(dropout), activation=activation,
                  norm_first=bool(norm_first))
        final = (lambda: nn.LayerNorm(D)) if norm_first else (lambda: None)
        self.encoder = TransformerEncoder(TransformerEncoderLayer(D, int(nhead), **kw),
                                          int(num_encoder_layers), final())
        self.decoder = TransformerDecoder(TransformerDecoderLayer(D, int(nhead), **kw),
                                          int(num_decoder_layers), final())
        for stack in (self.encoder, self.decoder):
            for p in stack.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        self.output = nn.Linear(D, int(tgt_vocab_size))
        self.register_buffer("_never_emitted", torch.tensor([int(pad_id), int(bos_id)]), persistent=False)

    @property
    def num_decoder_layers(self) -> int:
        return self.decoder.num_layers

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder output ``(B, S, d_model)`` and the source padding mask ``(B, S)`` (True = padded)."""
        mask = lengths_to_padding_mask(src_lengths, src.shape[1], device=src.device)
        memory, _ = self.encoder(self.positions(self.src_embed(src)), src_key_padding_mask=mask,
                                 need_weights=False)
        return memory, mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
               tgt_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, T, V)`` and cross-attention ``(B, n_layers, nhead, T, S)`` of decoder inputs
        ``tgt_in`` (BOS first) read causally against ``memory``."""
        T = tgt_in.shape[1]
        tgt_pad = None if tgt_lengths is None else lengths_to_padding_mask(tgt_lengths, T, device=tgt_in.device)
        out, weights = self.decoder(self.positions(self.tgt_embed(tgt_in)), memory,
                                    tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=memory_mask,
                                    causal=True)
        logits = self.output(out).index_fill(-1, self._never_emitted, float("-inf"))
        return logits, torch.stack([w.cross_attn for w in weights], 1)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor,
                tgt_lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits and every layer's and head's cross-attention of a padded batch.

        Parameters
        ----------
        src : torch.LongTensor [shape=(B, S)]
        src_lengths : torch.LongTensor [shape=(B,)]
        tgt_in : torch.LongTensor [shape=(B, T)]
            Decoder inputs: ``bos_id`` followed by the target tokens (padded).
        tgt_lengths : torch.LongTensor [shape=(B,)] or None
            Real decoder inputs per row (target padding mask); None: no target mask
            beyond the causal one (padding only ever sits after the real steps).

        Returns
        -------
        logits : torch.Tensor [shape=(B, T, tgt_vocab_size)]
            ``logits[:, i]`` predicts the token after ``tgt_in[:, i]``.
        cross_attention : torch.Tensor [shape=(B, num_decoder_layers, nhead, T, S)]
            Row ``i`` of each layer / head: a distribution over the real source
            positions, exactly 0 on padding.
        """
        memory, mask = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, mask, tgt_lengths)


def _select(cross: torch.Tensor, layer: int | str, heads: int | str) -> torch.Tensor:
    """The alignment view ``(..., T, S)`` of cross-attention ``(..., L, H, T, S)``."""
    w = cross.mean(-4) if layer == "mean" else cross[..., int(layer), :, :, :]
    return w.mean(-3) if heads == "mean" else w[..., int(heads), :, :]


# --------------------------------------------------------------------------- estimator
class TransformerSeq2Seq(TorchAligner):
    """Transformer encoder-decoder whose cross-attention is an alignment.

    See the module docstring for the architecture, the loss and the choice of
    layer / head. The network is a :class:`TransformerSeq2SeqModule`, built
    (seeded by the training seed) and trained by ``fit`` and held in ``module_``.

    Parameters
    ----------
    src_vocab_size, tgt_vocab_size : int > max(pad_id, bos_id, eos_id), or None
        Vocabulary sizes; None (default): one more than the largest id in the
        first ``fit``'s data (``src_vocab_size_``, ``tgt_vocab_size_``).
    d_model : int >= 1
        Model size (embeddings, attention, layer outputs); divisible by ``nhead``.
    nhead : int >= 1
        Attention heads per layer.
    num_encoder_layers, num_decoder_layers : int >= 1
    dim_feedforward : int >= 1
        Hidden size of the feed-forward blocks.
    dropout : float in [0, 1)
        On embeddings + positions, attention weights, sublayer outputs (training only;
        the read-out weights are before dropout).
    activation : {"relu", "gelu"}
    norm_first : bool
        Pre-norm layers (with a final layer norm on both stacks) instead of post-norm.
    positional : {"sinusoidal", "learned"}
        Position codes; ``"learned"`` holds ``max_len`` rows.
    max_len : int >= 1
        Longest source or decoder input for ``positional="learned"`` (sinusoidal: any length).
    label_smoothing : float in [0, 1)
        ``ε`` of the label-smoothed loss (0.1 by default; 0 is plain cross-entropy).
    alignment_layer : int or "mean"
        Decoder layer whose cross-attention ``align`` returns (negative counts from
        the end, clipped to the first layer for shallow decoders) or the average over layers.
        Default ``-1``: the last layer (see the module docstring).
    alignment_heads : int or "mean"
        Head of that layer, or the average over heads (default).
    alignment_supervision : float >= 0
        Weight ``λ`` of the supervised alignment loss on head ``alignment_heads`` (head 0
        when ``"mean"``) of layer ``alignment_layer`` (Garg et al. 2019); needs
        ``fit(..., links=...)``. 0 (default): none.
    pad_id, bos_id, eos_id : int >= 0
        Reserved ids, distinct.
    train : None, mapping or TrainConfig
        Training settings (:class:`~mmalign.nn.train.TrainConfig`). Defaults:
        ``max_epochs=30``, ``batch_size=64``, ``lr=1e-3``, ``scheduler="cosine"``,
        ``grad_clip=1.0``, ``seed=0``, ``device="cpu"``. ``batch_size`` also sets
        the chunks of decoding and of ``align_batch``.

    Attributes
    ----------
    module_ : TransformerSeq2SeqModule
    src_vocab_size_, tgt_vocab_size_ : int
    history_ : dict
    n_train_ : int
    max_target_len_ : int
    alignment_layer_ : int or "mean"
        The layer ``align`` reads: the hyper-parameter (resolved to a non-negative
        index) after ``fit``, the chosen one after :meth:`select_alignment_head`.
    alignment_heads_ : int or "mean"
    alignment_scores_ : dict
        After :meth:`select_alignment_head`: validation AER per ``"layer/head"`` candidate.

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import TransformerSeq2Seq
    >>> _ = torch.set_num_threads(1)
    >>> src = [[3, 4, 5], [6, 7], [5, 3, 6, 4]] * 20
    >>> tgt = [s[::-1] for s in src]
    >>> model = TransformerSeq2Seq(8, 8, d_model=16, nhead=2, dim_feedforward=32,
    ...                            train={"max_epochs": 2, "batch_size": 20}).fit(src, tgt)
    >>> al = model.align([3, 4, 5], [5, 4, 3, 3])   # source on side x, target on side y
    >>> al.shape, al.distribution_over, al.matrix().sum(axis=0).round(6).tolist()
    ((3, 4), 'x', [1.0, 1.0, 1.0, 1.0])
    >>> al.extras["cross_attention"].shape          # (layers, heads, target, source)
    (2, 2, 4, 3)
    """

    TRAIN_DEFAULTS = _TRAINING

    def __init__(self, src_vocab_size: int | None = None, tgt_vocab_size: int | None = None,
                 d_model: int = 64, nhead: int = 4, num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.1, activation: str = "relu",
                 norm_first: bool = False, positional: str = "sinusoidal", max_len: int = 512,
                 label_smoothing: float = 0.1, alignment_layer: int | str = -1,
                 alignment_heads: int | str = "mean", alignment_supervision: float = 0.0,
                 pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, train: Any = None) -> None:
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.d_model = d_model
        self.nhead = nhead
        self.num_encoder_layers = num_encoder_layers
        self.num_decoder_layers = num_decoder_layers
        self.dim_feedforward = dim_feedforward
        self.dropout = dropout
        self.activation = activation
        self.norm_first = norm_first
        self.positional = positional
        self.max_len = max_len
        self.label_smoothing = label_smoothing
        self.alignment_layer = alignment_layer
        self.alignment_heads = alignment_heads
        self.alignment_supervision = alignment_supervision
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.eos_id = eos_id
        self.train = train

    # ------------------------------------------------------------------ shared with Seq2SeqAttention
    _vocab_sizes = Seq2SeqAttention._vocab_sizes
    _infer_vocab_sizes = Seq2SeqAttention._infer_vocab_sizes
    _chunk = Seq2SeqAttention._chunk
    _targets_io = Seq2SeqAttention._targets_io
    _pairs = Seq2SeqAttention._pairs
    _sources = Seq2SeqAttention._sources
    _default_max_len = Seq2SeqAttention._default_max_len
    _alignment = staticmethod(Seq2SeqAttention._alignment)

    # ------------------------------------------------------------------ estimator hooks
    def _check_view(self, layer: Any, heads: Any, names: tuple[str, str] = ("alignment_layer",
                                                                             "alignment_heads")) -> None:
        L, H = int(self.num_decoder_layers), int(self.nhead)
        if not (isinstance(layer, str) and layer == "mean"):
            if isinstance(layer, str):
                raise ValueError(f"{names[0]} must be an int or 'mean', got {layer!r}")
            check_int(layer, names[0], -(2 ** 31), 2 ** 31)
            if layer >= L:
                raise ValueError(f"{names[0]} must be < num_decoder_layers ({L}) or negative, got {layer}")
        if not (isinstance(heads, str) and heads == "mean"):
            if isinstance(heads, str):
                raise ValueError(f"{names[1]} must be an int or 'mean', got {heads!r}")
            check_int(heads, names[1], -H, H - 1)

    def _check_params(self) -> None:
        for name in ("pad_id", "bos_id", "eos_id"):
            check_int(getattr(self, name), name, 0)
        if len({self.pad_id, self.bos_id, self.eos_id}) != 3:
            raise ValueError(f"pad_id, bos_id and eos_id must be distinct, got "
                             f"{self.pad_id}, {self.bos_id}, {self.eos_id}")
        top = max(self.pad_id, self.bos_id, self.eos_id)
        for name in ("src_vocab_size", "tgt_vocab_size"):
            if getattr(self, name) is None:
                continue
            check_int(getattr(self, name), name, 1)
            if getattr(self, name) <= top:
                raise ValueError(f"{name} must exceed the reserved ids (max {top}), got {getattr(self, name)}")
        for name in ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers", "dim_feedforward",
                     "max_len"):
            check_int(getattr(self, name), name, 1, 1 << 20)
        if self.d_model % self.nhead:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by nhead ({self.nhead})")
        check_float(self.dropout, "dropout", 0.0, 1.0)
        if self.dropout >= 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        check_float(self.label_smoothing, "label_smoothing", 0.0, 1.0)
        if self.label_smoothing >= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {self.label_smoothing}")
        check_choice(self.activation, "activation", _ACTIVATIONS)
        check_choice(self.positional, "positional", _POSITIONALS)
        check_bool(self.norm_first, "norm_first")
        self._check_view(self.alignment_layer, self.alignment_heads)
        check_float(self.alignment_supervision, "alignment_supervision", 0.0)

    def _resolved_view(self, layer: Any, heads: Any) -> tuple[int | str, int | str]:
        """Non-negative layer / head indices (a negative layer is clipped to the first layer)."""
        L, H = int(self.num_decoder_layers), int(self.nhead)
        if layer != "mean":
            layer = max(int(layer) + L, 0) if int(layer) < 0 else int(layer)
        if heads != "mean":
            heads = int(heads) % H
        return layer, heads

    def _view(self) -> tuple[int | str, int | str]:
        """The layer / head ``align`` reads (fitted, else the hyper-parameters)."""
        if getattr(self, "alignment_layer_", None) is not None:
            return self.alignment_layer_, self.alignment_heads_
        return self._resolved_view(self.alignment_layer, self.alignment_heads)

    def _make_module(self) -> TransformerSeq2SeqModule:
        src_vocab, tgt_vocab = self._vocab_sizes()
        return TransformerSeq2SeqModule(
            src_vocab, tgt_vocab, d_model=int(self.d_model), nhead=int(self.nhead),
            num_encoder_layers=int(self.num_encoder_layers), num_decoder_layers=int(self.num_decoder_layers),
            dim_feedforward=int(self.dim_feedforward), dropout=float(self.dropout), activation=self.activation,
            norm_first=bool(self.norm_first), positional=self.positional, max_len=int(self.max_len),
            pad_id=int(self.pad_id), bos_id=int(self.bos_id), eos_id=int(self.eos_id))

    # ------------------------------------------------------------------ loss
    def _loss(self, model: nn.Module, batch: tuple) -> torch.Tensor:
        """Label-smoothed cross-entropy of the teacher-forced batch (+ the supervised alignment loss)."""
        src, src_len, tgt_in, tgt_out = batch[:4]
        S = int(src_len.max())
        n_out = (tgt_out != _IGNORE).sum(1)
        T = int(n_out.max())
        logits, cross = model(src[:, :S], src_len, tgt_in[:, :T], n_out)
        loss = label_smoothed_nll(logits.reshape(-1, logits.shape[-1]), tgt_out[:, :T].reshape(-1),
                                  float(self.label_smoothing))
        lam = float(self.alignment_supervision)
        if lam > 0 and len(batch) > 4:
            gold = batch[4][:, :T, :S].to(cross.dtype)                      # (B, T, S), rows sum to 1 or 0
            layer, heads = self._resolved_view(self.alignment_layer, self.alignment_heads)
            head = 0 if heads == "mean" else heads
            w = cross.mean(1) if layer == "mean" else cross[:, layer]
            att = w[:, head]                                                 # (B, T, S)
            rows = gold.sum(-1) > 0
            if bool(rows.any()):
                ce = -(gold * torch.log(att.clamp_min(1e-9))).sum(-1)
                loss = loss + lam * ce[rows].mean()
        return loss

    def _gold_matrices(self, links: Any, src_len: torch.Tensor, tgt_out: torch.Tensor,
                       name: str) -> torch.Tensor:
        """Per pair, the (T + 1, S) target distribution of the alignment head: each target token's
        gold source positions, uniform; rows of unlinked tokens (and EOS) are zero."""
        n = int(src_len.shape[0])
        if not isinstance(links, (list, tuple)) or len(links) != n:
            raise ValueError(f"{name} must be a list of link sets, one per training pair ({n})")
        n_tgt = (tgt_out != _IGNORE).sum(1) - 1
        out = torch.zeros(n, tgt_out.shape[1], int(src_len.max()))
        for b, pairs in enumerate(links):
            for pair in pairs:
                s, t = (int(v) for v in pair)
                if not (0 <= s < int(src_len[b]) and 0 <= t < int(n_tgt[b])):
                    raise ValueError(f"{name}[{b}] has link {(s, t)} outside the pair "
                                     f"({int(src_len[b])} source, {int(n_tgt[b])} target tokens)")
                out[b, t, s] = 1.0
        total = out.sum(-1, keepdim=True)
        return torch.where(total > 0, out / total.clamp_min(1.0), out)

    # ------------------------------------------------------------------ fit
    def fit(self, sources: Any, targets: Any = None, *, validation: tuple | None = None,
            source_lengths: Any = None, target_lengths: Any = None, links: Any = None
            ) -> "TransformerSeq2Seq":
        """Train on (source, target) pairs with teacher forcing and label-smoothed cross-entropy.

        Builds the network on the first call and trains it with
        :func:`mmalign.nn.train.fit`; with validation data, keeps the weights of
        the epoch with the lowest validation loss (early stopping with
        ``patience``). A second ``fit`` continues from the current weights.
        Resets ``alignment_layer_`` / ``alignment_heads_`` to the hyper-parameters.

        Parameters
        ----------
        sources : list of 1-d int sequences, or int tensor / array [shape=(N, S)]
        targets : same forms [shape=(N, T)]
            Without BOS / EOS / pad ids.
        validation : (sources, targets) or None
        source_lengths, target_lengths : int array [shape=(N,)] or None
            Lengths for padded-array inputs.
        links : list of sets of (s, t) or None
            Gold links per training pair (source position, target position), for
            ``alignment_supervision > 0``: the supervised head is trained towards each
            target token's linked source positions (uniform over them; tokens without
            links are not supervised).

        Returns
        -------
        self : TransformerSeq2Seq
        """
        self._check_params()
        config = self.train_config()
        if targets is None:
            raise ValueError("targets is required: fit(sources, targets)")
        if float(self.alignment_supervision) > 0 and links is None:
            raise ValueError("alignment_supervision > 0 needs links=: gold links per training pair")
        self._infer_vocab_sizes(sources, targets, source_lengths, target_lengths)
        data = self._pairs(sources, targets, source_lengths, target_lengths)
        if links is not None and float(self.alignment_supervision) > 0:
            data = data + (self._gold_matrices(links, data[1], data[3], "links"),)
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise ValueError("validation must be a pair (sources, targets)")
            val = self._pairs(validation[0], validation[1], None, None, ("validation[0]", "validation[1]"))
        if config.patience is not None and val is None:
            raise ValueError("train.patience: early stopping needs validation=(sources, targets)")
        self._ensure_module()
        self._fit_module(self._loss, data, validation=val)
        self.n_train_ = int(data[0].shape[0])
        self.max_target_len_ = int((data[3] != _IGNORE).sum(1).max()) - 1
        self.alignment_layer_, self.alignment_heads_ = self._resolved_view(self.alignment_layer,
                                                                           self.alignment_heads)
        return self

    # ------------------------------------------------------------------ decoding
    def _decoder_step(self, view: tuple) -> Callable:
        """The decoding step: state ``(prefix (n, t), memory (n, S, D), mask (n, S))``; the decoder
        re-reads the whole prefix (causal, so earlier rows are unchanged) and returns the last row."""
        m = self.module_

        def step(prev: torch.Tensor, state: tuple) -> tuple[torch.Tensor, torch.Tensor, tuple]:
            prefix, memory, mask = state
            prefix = torch.cat([prefix, prev[:, None]], 1)
            logits, cross = m.decode(prefix, memory, mask)
            alpha = _select(cross[:, :, :, -1:], *view)[:, 0]
            return torch.log_softmax(logits[:, -1], -1), alpha, (prefix, memory, mask)
        return step

    @torch.no_grad()
    def _greedy(self, src: torch.Tensor, lens: torch.Tensor, max_len: int | None) -> list[Hypothesis]:
        m = self.module_
        dev = self._module_dtype_device()[1]
        src, lens = src.to(dev), lens.to(dev)
        memory, mask = m.encode(src, lens)
        lens_cpu = [int(L) for L in lens.cpu()]
        limits = [self._default_max_len(L) if max_len is None else max_len for L in lens_cpu]
        prefix = torch.zeros((src.shape[0], 0), dtype=torch.long, device=dev)
        return greedy_decode(self._decoder_step(self._view()), (prefix, memory, mask),
                             batch_size=src.shape[0], bos=int(self.bos_id), eos=int(self.eos_id),
                             max_len=limits, device=dev, n_keys=lens_cpu)

    @torch.no_grad()
    def _beam_search(self, src: torch.Tensor, lens: torch.Tensor, beam_size: int, max_len: int | None,
                     length_penalty: float = 0.0) -> list[Hypothesis]:
        m = self.module_
        dev = self._module_dtype_device()[1]
        src, lens = src.to(dev), lens.to(dev)
        memory_all, mask_all = m.encode(src, lens)
        step = self._decoder_step(self._view())
        results = []
        for b in range(src.shape[0]):
            L = int(lens[b])
            state = (torch.zeros((1, 0), dtype=torch.long, device=dev), memory_all[b:b + 1, :L],
                     mask_all[b:b + 1, :L])
            results.append(beam_search(
                step, state, n_keys=L, dtype=memory_all.dtype, device=dev, bos=int(self.bos_id),
                eos=int(self.eos_id), beam_size=beam_size,
                max_len=self._default_max_len(L) if max_len is None else max_len,
                length_penalty=length_penalty))
        return results

    def translate(self, src: Any, beam_size: int = 1, max_len: int | None = None, *,
                  length_penalty: float = 0.0, src_lengths: Any = None) -> Hypothesis | list[Hypothesis]:
        """Decode the output of one source or of a batch, with its cross-attention.

        Parameters
        ----------
        src : 1-d int sequence, list of them, or int tensor [shape=(B, S)]
        beam_size : int in [1, 1024]
            1: greedy decoding (batched); ``k > 1``: beam search, one source at a
            time; the greedy output competes too, so the result's ``score`` is never
            below that of greedy decoding.
        max_len : int in [1, 10000] or None
            Most output tokens (EOS included); default ``max(2 * S, longest training
            target) + 2``.
        length_penalty : float >= 0
            Beam search ranks finished hypotheses by ``log_prob / n ** length_penalty``.
        src_lengths : int array [shape=(B,)] or None
            For a padded ``src`` tensor.

        Returns
        -------
        hypothesis : Hypothesis, or list of Hypothesis for a batch
            Tokens (without BOS / EOS) and ``attention`` ``(len(tokens), S_b)``: the
            selected layer / head view (``alignment_layer_``, ``alignment_heads_``) of
            each emitting step. :meth:`align` with ``tgt=None`` also gives every
            layer's and head's weights.

        Examples
        --------
        >>> from mmalign.attention import TransformerSeq2Seq
        >>> m = TransformerSeq2Seq(6, 6, d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1})
        >>> hyp = m.fit([[3, 4]], [[4, 3]]).translate([3, 4, 5], max_len=4)
        >>> hyp.attention.shape[1], len(hyp.tokens) <= 4
        (3, True)
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        beam_size = check_int(beam_size, "beam_size", 1, MAX_BEAM_SIZE)
        if max_len is not None:
            max_len = check_int(max_len, "max_len", 1, MAX_DECODE_LEN)
        length_penalty = check_float(length_penalty, "length_penalty", 0.0)
        single = is_single_sequence(src)
        if single:
            src = [src]
            if src_lengths is not None:
                src_lengths = as_int_array(src_lengths, "src_lengths").reshape(-1)
        padded, lens = self._sources(src, src_lengths)
        m = self.module_
        was_training = m.training
        m.eval()
        try:
            outs: list[Hypothesis] = []
            step = self._chunk()
            for i in range(0, padded.shape[0], step):
                S = int(lens[i:i + step].max())
                chunk, clen = padded[i:i + step, :S], lens[i:i + step]
                if beam_size == 1:
                    outs += self._greedy(chunk, clen, max_len)
                else:
                    beams = self._beam_search(chunk, clen, beam_size, max_len, length_penalty)
                    for h, g in zip(beams, self._greedy(chunk, clen, max_len)):
                        g.score = length_normalised_score(g.log_prob, len(g.tokens) + g.finished, length_penalty)
                        outs.append(g if g.score > h.score else h)
        finally:
            m.train(was_training)
        return outs[0] if single else outs

    def predict(self, src: Any, beam_size: int = 1, max_len: int | None = None, *,
                src_lengths: Any = None) -> list[int] | list[list[int]]:
        """The decoded token ids (without BOS / EOS) of one source or a batch (:meth:`translate`).

        Examples
        --------
        >>> from mmalign.attention import TransformerSeq2Seq
        >>> m = TransformerSeq2Seq(6, 6, d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1})
        >>> len(m.fit([[3, 4]], [[4, 3]]).predict([[3, 4], [4]], max_len=3))
        2
        """
        out = self.translate(src, beam_size=beam_size, max_len=max_len, src_lengths=src_lengths)
        return out.tokens if isinstance(out, Hypothesis) else [h.tokens for h in out]

    # ------------------------------------------------------------------ alignment
    @torch.no_grad()
    def _teacher_forced(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor,
                        tgt_out: torch.Tensor) -> list[tuple[np.ndarray, float]]:
        """Per pair: cross-attention (L, H, n_tgt + 1, S_b) including the EOS step, and log p(y + EOS | x)."""
        m = self.module_
        dev = self._module_dtype_device()[1]
        out = []
        step = self._chunk()
        for i in range(0, src.shape[0], step):
            sl = src_len[i:i + step]
            to = tgt_out[i:i + step]
            n_out = (to != _IGNORE).sum(1)
            S, T = int(sl.max()), int(n_out.max())
            logits, cross = m(src[i:i + step, :S].to(dev), sl.to(dev), tgt_in[i:i + step, :T].to(dev),
                              n_out.to(dev))
            logp = torch.log_softmax(logits, -1).double()
            to_d = to[:, :T].to(dev)
            valid = to_d != _IGNORE
            picked = logp.gather(-1, to_d.clamp(min=0)[..., None])[..., 0]
            lp = torch.where(valid, picked, torch.zeros_like(picked)).sum(1).cpu().numpy()
            cross_np = cross.double().cpu().numpy()
            for b in range(cross_np.shape[0]):
                n, L = int(valid[b].sum()), int(sl[b])
                out.append((cross_np[b, :, :, :n, :L].copy(), float(lp[b])))
        return out

    def _run_forced(self, src_p: torch.Tensor, src_l: torch.Tensor, tgt_in: torch.Tensor,
                    tgt_out: torch.Tensor) -> list[tuple[np.ndarray, float]]:
        m = self.module_
        was_training = m.training
        m.eval()
        try:
            return self._teacher_forced(src_p, src_l, tgt_in, tgt_out)
        finally:
            m.train(was_training)

    def _from_cross(self, cross: np.ndarray, include_eos: bool, extras: dict) -> Alignment:
        """An Alignment from one pair's (L, H, n + 1, S) cross-attention (EOS row last)."""
        n = cross.shape[2] - 1
        view = _select(torch.from_numpy(cross), *self._view()).numpy()
        w = view if include_eos else view[:n]
        return self._alignment(w, dict(extras, eos_weights=view[n].copy(),
                                       cross_attention=cross if include_eos else cross[:, :, :n].copy(),
                                       alignment_layer=self._view()[0], alignment_heads=self._view()[1]))

    def _forced(self, src: Any, tgt: Any, src_lengths: Any, tgt_lengths: Any, include_eos: bool,
                names: tuple[str, str]) -> list[Alignment]:
        src_p, src_l, tgt_in, tgt_out = self._pairs(src, tgt, src_lengths, tgt_lengths, names)
        out = []
        for b, (cross, lp) in enumerate(self._run_forced(src_p, src_l, tgt_in, tgt_out)):
            n = cross.shape[2] - 1
            out.append(self._from_cross(cross, include_eos, {
                "tokens": tgt_in[b, 1:n + 1].tolist(), "source_tokens": src_p[b, :int(src_l[b])].tolist(),
                "log_prob": lp}))
        return out

    def _decoded(self, padded: torch.Tensor, lens: torch.Tensor, beam_size: int, max_len: int | None,
                 include_eos: bool, names: list[str]) -> list[Alignment]:
        """Alignments of the model's own outputs: decode, then re-read every layer / head of the
        decoded tokens (the decoder is causal: the same weights as the decoding steps)."""
        hyps = self.translate(padded, beam_size=beam_size, max_len=max_len, src_lengths=lens)
        for b, h in enumerate(hyps):
            if not h.tokens and not include_eos:
                raise ValueError(f"the model decoded an empty output for {names[b]}: nothing to align "
                                 "(pass include_eos=True to get the EOS step's attention)")
        tgt = [h.tokens for h in hyps]
        n_tgt = torch.tensor([len(t) for t in tgt], dtype=torch.long)
        T = max(int(n_tgt.max()), 1)
        tgt_pad = torch.full((len(tgt), T), int(self.pad_id), dtype=torch.long)
        for b, t in enumerate(tgt):
            tgt_pad[b, :len(t)] = torch.tensor(t, dtype=torch.long)
        tgt_in, tgt_out = self._targets_io(tgt_pad, n_tgt)
        out = []
        for b, ((cross, _), h) in enumerate(zip(self._run_forced(padded, lens, tgt_in, tgt_out), hyps)):
            al = self._from_cross(cross, include_eos and h.finished, {
                "tokens": list(h.tokens), "source_tokens": padded[b, :int(lens[b])].tolist(),
                "log_prob": h.log_prob, "score": h.score, "finished": h.finished})
            if not h.finished:
                al.extras["eos_weights"] = None
            out.append(al)
        return out

    def align(self, src: Any, tgt: Any = None, *, beam_size: int = 1, max_len: int | None = None,
              include_eos: bool = False) -> Alignment:
        """The cross-attention of the model on one (source, target) pair as an
        :class:`~mmalign.alignment.Alignment`.

        With a target, the teacher-forced cross-attention of the model reading
        that target; with ``tgt=None`` the model decodes the target first
        (:meth:`translate` with ``beam_size``) and returns the cross-attention of
        its own output.

        Parameters
        ----------
        src : 1-d int sequence
            Source ids (side x).
        tgt : 1-d int sequence or None
            Target ids without BOS / EOS (side y); None: the model's own output.
        beam_size, max_len : int
            Decoding options when ``tgt`` is None.
        include_eos : bool
            Append the step that predicts EOS as a last target position.

        Returns
        -------
        alignment : Alignment
            ``weights`` ``(n_source, n_target)``: column ``t`` is the cross-attention
            of the decoder position that predicts target token ``t``, layer
            ``alignment_layer_`` and head ``alignment_heads_`` (or their means), summing
            to one over the source (``distribution_over="x"``), ``monotonic=False``.
            ``extras``: ``"cross_attention"`` (every layer and head,
            ``(n_layers, nhead, n_target, n_source)``, the decoder's order),
            ``"alignment_layer"``, ``"alignment_heads"``, ``"tokens"``,
            ``"source_tokens"``, ``"log_prob"``, ``"eos_weights"`` (None if decoding
            never emitted EOS) and, when decoding, ``"score"`` and ``"finished"``.

        Raises
        ------
        ValueError
            Bad ids, empty sequences, a batch (use :meth:`align_batch`); a decoded
            output with no token unless ``include_eos``.

        Examples
        --------
        >>> from mmalign.attention import TransformerSeq2Seq
        >>> m = TransformerSeq2Seq(6, 6, d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1})
        >>> m = m.fit([[3, 4, 5]], [[5, 4, 3]])
        >>> al = m.align([3, 4, 5], [5, 4])
        >>> al.shape, al.extras["tokens"], al.extras["cross_attention"].shape
        ((3, 2), [5, 4], (2, 2, 2, 3))
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        src_a = one_id_sequence(src, "src")
        if tgt is None:
            padded, lens = self._sources(src_a, None)
            return self._decoded(padded, lens, beam_size, max_len, include_eos, ["src"])[0]
        return self._forced(src_a, one_id_sequence(tgt, "tgt"), None, None, include_eos, ("src", "tgt"))[0]

    def align_batch(self, src: Any, tgt: Any = None, *, src_lengths: Any = None, tgt_lengths: Any = None,
                    beam_size: int = 1, max_len: int | None = None, include_eos: bool = False
                    ) -> list[Alignment]:
        """:meth:`align` over many pairs: one :class:`~mmalign.alignment.Alignment` per pair.

        Equal to ``[align(s, t) for s, t in zip(src, tgt)]`` (to rounding: pairs run in
        padded batches of ``batch_size``).

        Parameters
        ----------
        src : list of 1-d int sequences, or int tensor / array [shape=(B, S)]
        tgt : same forms [shape=(B, T)], or None
        src_lengths, tgt_lengths : int array [shape=(B,)] or None
        beam_size, max_len, include_eos
            As in :meth:`align`.

        Returns
        -------
        alignments : list of Alignment

        Examples
        --------
        >>> from mmalign.attention import TransformerSeq2Seq
        >>> m = TransformerSeq2Seq(6, 6, d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1})
        >>> m = m.fit([[3, 4, 5]], [[5, 4, 3]])
        >>> [al.shape for al in m.align_batch([[3, 4, 5], [4, 5]], [[5, 4], [5, 4, 3]])]
        [(3, 2), (2, 3)]
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        for name, value in (("src", src), ("tgt", tgt)):
            if value is not None and is_single_sequence(value):
                raise ValueError(f"{name} must be a collection of sequences (a list of them or a "
                                 "(batch, steps) array); align aligns one pair")
        if tgt is None:
            padded, lens = self._sources(src, src_lengths)
            return self._decoded(padded, lens, beam_size, max_len, include_eos,
                                 [f"src[{b}]" for b in range(padded.shape[0])])
        return self._forced(src, tgt, src_lengths, tgt_lengths, include_eos, ("src", "tgt"))

    # ------------------------------------------------------------------ layer / head choice
    def alignment_error_rates(self, sources: Any, targets: Any, sure: Any, possible: Any = None, *,
                              ignore_unlinked_targets: bool = False) -> dict[str, float]:
        """Corpus AER of every layer / head view (argmax link per target token, teacher-forced).

        Parameters
        ----------
        sources, targets : lists of 1-d int sequences
            Validation pairs (targets without BOS / EOS).
        sure : list of sets of (s, t)
            Gold sure links per pair, source position first (as
            :class:`~mmalign.datasets.Seq2SeqExample` holds them).
        possible : list of sets of (s, t) or None
            Gold possible links (default: the sure ones).
        ignore_unlinked_targets : bool
            Do not score target tokens without any gold link (the ``-`` of dates).

        Returns
        -------
        aer : dict
            ``"layer/head"`` -> AER in [0, 1], for every layer index and ``"mean"``
            and every head index and ``"mean"`` (e.g. ``"1/mean"``, ``"mean/mean"``).
        """
        self._check_fitted(fit_call="fit(sources, targets)")
        src_p, src_l, tgt_in, tgt_out = self._pairs(sources, targets, None, None, ("sources", "targets"))
        for name, value in (("sure", sure), ("possible", possible)):
            if value is not None and (not isinstance(value, (list, tuple)) or len(value) != src_p.shape[0]):
                raise ValueError(f"{name} must hold one link set per pair ({src_p.shape[0]})")
        crosses = [c for c, _ in self._run_forced(src_p, src_l, tgt_in, tgt_out)]
        L, H = int(self.num_decoder_layers), int(self.nhead)
        scores = {}
        for layer in list(range(L)) + ["mean"]:
            for heads in list(range(H)) + ["mean"]:
                preds = []
                for c in crosses:
                    n = c.shape[2] - 1
                    w = _select(torch.from_numpy(c[:, :, :n]), layer, heads).numpy()
                    preds.append({(int(s), t) for t, s in enumerate(w.argmax(-1))})
                scores[f"{layer}/{heads}"] = float(corpus_alignment_error_rate(
                    preds, list(sure), None if possible is None else list(possible),
                    ignore_unlinked_targets=ignore_unlinked_targets))
        return scores

    def select_alignment_head(self, sources: Any, targets: Any, sure: Any, possible: Any = None, *,
                              ignore_unlinked_targets: bool = False) -> "TransformerSeq2Seq":
        """Choose the layer / head ``align`` reads by AER on validation pairs with gold links.

        Scores every view (:meth:`alignment_error_rates`) and keeps the lowest
        (ties: the first in layer order, heads before ``"mean"``); sets
        ``alignment_layer_``, ``alignment_heads_`` and ``alignment_scores_``. The
        hyper-parameters stay as given (``fit`` resets the choice to them).

        Returns
        -------
        self : TransformerSeq2Seq

        Examples
        --------
        >>> from mmalign.attention import TransformerSeq2Seq
        >>> m = TransformerSeq2Seq(6, 6, d_model=8, nhead=2, dim_feedforward=8, train={"max_epochs": 1})
        >>> m = m.fit([[3, 4, 5]], [[5, 4, 3]])
        >>> m = m.select_alignment_head([[3, 4, 5]], [[5, 4, 3]], [{(2, 0), (1, 1), (0, 2)}])
        >>> len(m.alignment_scores_), m.alignment_layer_ in (0, 1, "mean")
        (9, True)
        """
        scores = self.alignment_error_rates(sources, targets, sure, possible,
                                            ignore_unlinked_targets=ignore_unlinked_targets)
        best = min(scores, key=lambda k: scores[k])
        layer, heads = best.split("/")
        self.alignment_layer_ = layer if layer == "mean" else int(layer)
        self.alignment_heads_ = heads if heads == "mean" else int(heads)
        self.alignment_scores_ = scores
        return self
