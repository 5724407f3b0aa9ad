"""Multimodal masked pretraining: one joint self-attention encoder, three self-supervised objectives.

:class:`MultimodalPretrainer` is a single-stream (early-fusion) transformer in
the style of UNITER / VL-BERT / VideoBERT. One sample becomes one sequence::

    [CLS] w_1 ... w_n [SEP] | f^1_1 ... f^1_T1 [SEP] | f^2_1 ... f^2_T2 [SEP] | ...
     --------- text --------   ---- modality 1 ----    ---- modality 2 ----

- words through a :class:`~mmalign.nn.embedders.TokenEmbedding`
  (ids ``0 ... vocab_size - 1`` of a :class:`~mmalign.datasets.Vocabulary`;
  three extra ids are reserved after them: ``cls_id = vocab_size``,
  ``sep_id = vocab_size + 1``, ``mask_id = vocab_size + 2``);
- every time-series modality (audio / video / sensor frames) through a
  :class:`~mmalign.nn.embedders.FrameEmbedding`, every image modality
  through a ViT-style :class:`~mmalign.nn.embedders.PatchEmbedding`
  (learned 2-D positions);
- word vectors start at unit variance and projected frames / patches are
  layer-normalised, so that content and position codes have comparable
  scales;
- positions per modality (each stream counts its own steps, or with
  ``positions="relative"`` its relative time, which puts streams of
  different rates on one time axis -- recommended for unaligned streams;
  ``[CLS]`` and ``[SEP]`` get none), plus a learned segment / modality embedding
  (:class:`~mmalign.nn.ModalityEmbedding`; segment 0 is ``[CLS]`` +
  text + its ``[SEP]``, segment ``m + 1`` modality ``m`` + its ``[SEP]``);
- a LayerNorm and dropout, then a pre-norm GELU
  :class:`~mmalign.nn.TransformerEncoder` over the whole sequence
  with a key-padding mask (ragged samples are padded inside their own block,
  so the outputs on a sample's valid steps do not depend on the padding;
  attention weights on padded keys are exactly 0).

The network is :class:`MultimodalPretrainerModule` (a plain ``torch.nn.Module``:
the embedders, the encoder and the three objective heads, usable inside other
networks); the estimator :class:`MultimodalPretrainer` builds it in ``fit`` as
``module_``, trains it and reads it out.

Objectives (each with its own weight; weight 0 switches it off)
----------------------------------------------------------------
*Masked token modelling* (BERT): about ``token_mask_prob`` of the valid words
of each sample (at least one) are selected; 80 % of them become
``[MASK]``, 10 % a random word id (``>= 4``, i.e. not a
:class:`~mmalign.datasets.Vocabulary` special), 10 % stay; cross-entropy of
the original id **on the selected positions only** (:func:`~mmalign.nn.masking.mask_tokens`,
:func:`~mmalign.nn.pretraining_losses.masked_token_loss`).

*Masked frame / region modelling*: time series lose contiguous spans of
``frame_span`` frames (about ``frame_mask_prob`` of the valid frames, at
least one span per sample, :func:`~mmalign.nn.masking.span_mask`); images lose whole patches, or
whole objects (every patch an object's box overlaps) when ``boxes`` are
given (:func:`~mmalign.nn.masking.patch_mask`). Masked frames / patches are zeroed at the input
and marked with a learned per-modality mask vector after the projection; a
linear head reconstructs the original features (pixels for patches), mean
squared error **on the masked frames only**
(:func:`~mmalign.nn.pretraining_losses.masked_frame_loss`),
averaged over the modalities.

*Pair matching*: each sample's non-text modalities are, with probability
``mismatch_prob``, replaced by those of another sample of the mini-batch (a
derangement, :func:`~mmalign.nn.masking.shuffle_pairs`); a binary head on ``[CLS]`` says whether
the pair is aligned (:func:`~mmalign.nn.pretraining_losses.pair_matching_loss`). As in UNITER the masked
losses are computed on the aligned samples only.

``fit`` (or :func:`pretrain`) minimises the weighted sum with
:func:`mmalign.nn.train.fit` (AdamW); no labels are used. Fine-tuning is
:mod:`mmalign.attention.finetuning` (its heads: :mod:`mmalign.nn.heads`).

Alignments
----------
``align(sample, target="text", source="audio")`` reads the joint attention
between two blocks of ONE sample as an :class:`~mmalign.alignment.Alignment`:
**side x is the** ``source`` **block, side y the** ``target`` **block** (as
seq2seq's source on x and target on y), weights ``(layers, heads, T_source,
T_target)`` and ``distribution_over="x"``: each target step's attention over
the source's steps, renormalised to sum to one (default). ``align_batch``
does the same for a batch, one :class:`~mmalign.alignment.Alignment` per sample.

Inputs
------
``X`` is a dict with key ``"text"`` and one key per entry of ``modalities``:

- ``"text"``: a list of 1-d integer arrays (a ragged batch), an
  ``(N, T)`` integer array / tensor (padded; lengths from
  ``lengths["text"]``, default all), or one 1-d array (one sample);
- a time-series modality with ``d`` features: a list of ``(T_i, d)`` arrays,
  an ``(N, T, d)`` array with ``lengths[name]``, or one ``(T, d)`` array;
- an image modality ``(C, H, W)``: ``(N, C, H, W)`` (or ``(N, H, W)`` for
  ``C = 1``), a list of images, or one image.

``lengths`` is a dict with any of those keys (missing keys: every step valid).
:func:`~mmalign.nn.packing.streams_inputs` turns
:func:`~mmalign.datasets.multimodal_streams` data into this form, and
:meth:`MultimodalPretrainerModule.prepare_inputs` into tensors
(:class:`MultimodalInputs`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..alignment import Alignment
from ..nn.embedders import FrameEmbedding, PatchEmbedding, TokenEmbedding
from ..nn.estimator import TorchAligner
from ..nn.functional import lengths_to_padding_mask
from ..nn.masking import mask_tokens, patch_mask, shuffle_pairs, span_mask
from ..nn.packing import JointEncoding
from ..nn.positional import ModalityEmbedding
from ..nn.pretraining_losses import masked_frame_loss, masked_token_loss, pair_matching_loss
from ..nn.transformer import TransformerEncoder, TransformerEncoderLayer
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_choice, check_float, check_int

__all__ = ["MultimodalPretrainer", "MultimodalPretrainerModule", "MultimodalInputs", "modality_specs",
           "pretrain"]

POSITIONS = ("sinusoidal", "learned", "relative")
HEADS = ("token", "frame", "match")
_DEFAULT_MODALITIES = {"audio": 16, "video": 8}


# =========================================================================== inputs

@dataclasses.dataclass
class MultimodalInputs:
    """Checked, padded inputs of the joint encoder (CPU tensors), from
    :meth:`MultimodalPretrainerModule.prepare_inputs`.

    Attributes
    ----------
    words : torch.LongTensor [shape=(N, T)]
        Word ids, 0 after each sample's length.
    text_lengths : torch.LongTensor [shape=(N,)]
    frames : list of torch.Tensor
        Per modality, in sequence order: ``(N, T_m, d_m)`` frames or ``(N, C, H, W)``
        images, float32 (padded frames zeroed).
    lengths : list of torch.LongTensor [shape=(N,)]
        Valid frames per modality (``n_patches`` for images).
    objects : list of torch.BoolTensor [shape=(N, K, P)]
        Patches of each object box per image modality (``(N, 1, 1)`` for time series).
    n_objects : list of torch.LongTensor [shape=(N,)]
    single : bool
        The input was one sample (a batch of one here).
    """

    words: torch.Tensor
    text_lengths: torch.Tensor
    frames: list[torch.Tensor]
    lengths: list[torch.Tensor]
    objects: list[torch.Tensor]
    n_objects: list[torch.Tensor]
    single: bool

    def tensors(self) -> tuple:
        """One flat tuple ``(words, text_lengths, *(frames_m, lengths_m, objects_m, n_objects_m))``
        with the samples on the first axis (the training data of :func:`mmalign.nn.train.fit`);
        :meth:`MultimodalPretrainerModule.unpack` reads it back."""
        out: list = [self.words, self.text_lengths]
        for x, ln, ob, no in zip(self.frames, self.lengths, self.objects, self.n_objects):
            out += [x, ln, ob, no]
        return tuple(out)


def modality_specs(modalities: Mapping[str, Any] | None) -> list[tuple[str, str, Any]]:
    """The non-text modalities as ``[(name, "frames", dim) or (name, "image", (C, H, W))]``.

    Parameters
    ----------
    modalities : dict name -> int or (C, H, W), or None
        None: ``{"audio": 16, "video": 8}``.

    Raises
    ------
    ValueError
        Not a non-empty dict, a name that is empty or ``"text"``, a bad size.

    Examples
    --------
    >>> modality_specs({"audio": 16, "image": (1, 32, 32)})
    [('audio', 'frames', 16), ('image', 'image', (1, 32, 32))]
    """
    mods = _DEFAULT_MODALITIES if modalities is None else modalities
    if not isinstance(mods, Mapping) or not mods:
        raise ValueError(f"modalities must be a non-empty dict name -> int or (C, H, W), "
                         f"got {mods!r}")
    specs = []
    for name, spec in mods.items():
        if not isinstance(name, str) or not name or name == "text":
            raise ValueError(f"modalities: names must be non-empty strings other than 'text', "
                             f"got {name!r}")
        if isinstance(spec, (tuple, list)):
            if len(spec) != 3:
                raise ValueError(f"modalities[{name!r}]: an image modality is (C, H, W), got {spec!r}")
            c, h, w = (check_int(v, f"modalities[{name!r}]", 1) for v in spec)
            specs.append((name, "image", (c, h, w)))
        else:
            specs.append((name, "frames", check_int(spec, f"modalities[{name!r}]", 1)))
    return specs


def _is_id_sequence(value: Any) -> bool:
    """One sample's word ids: a 1-d array / tensor or a flat list of integers."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return value.ndim == 1
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(isinstance(v, (numbers.Integral, np.integer))
                                      and not isinstance(v, bool) for v in value)
    return False


def _check_ids(t: torch.Tensor, name: str, vocab_size: int) -> torch.Tensor:
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integer word ids, got dtype {t.dtype}")
    t = t.long()
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= vocab_size):
        raise ValueError(f"{name} must hold word ids in [0, vocab_size = {vocab_size}), got "
                         f"{int(t.min())}..{int(t.max())}")
    return t


def _pad_list(seqs: list[torch.Tensor]) -> torch.Tensor:
    return nn.utils.rnn.pad_sequence(seqs, batch_first=True)


def _lengths_from(lengths: Any, key: str, n: int, max_len: int, lname: str) -> torch.Tensor | None:
    if lengths is None or key not in lengths or lengths[key] is None:
        return None
    t = as_tensor(lengths[key], f"{lname}[{key!r}]")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{lname}[{key!r}] must hold integers")
    t = t.long().reshape(-1).cpu()
    if t.shape[0] != n:
        raise ValueError(f"{lname}[{key!r}] must have shape ({n},), got {tuple(t.shape)}")
    if n and (int(t.min()) < 1 or int(t.max()) > max_len):
        raise ValueError(f"{lname}[{key!r}] must lie in [1, {max_len}] (the padded length), got "
                         f"{int(t.min())}..{int(t.max())}")
    return t


# =========================================================================== the network

class MultimodalPretrainerModule(nn.Module):
    """The joint encoder over ``[CLS] text [SEP] frames [SEP] ...`` and its three objective heads.

    A plain ``torch.nn.Module`` (what :class:`MultimodalPretrainer` trains as
    ``module_``); see :mod:`mmalign.attention.pretraining` for the layout.
    The arguments are those of :class:`MultimodalPretrainer` of the same names
    (unchecked here beyond ``modalities``: the estimator validates them).

    Parameters
    ----------
    vocab_size : int
    modalities : dict name -> int or (C, H, W), or None
    d_model, num_heads, num_layers, ffn_mult : int
    dropout, attn_dropout : float
    positions : {"sinusoidal", "learned", "relative"}
    position_scale : float
    max_len, conv_kernel, patch_size : int

    Attributes
    ----------
    specs : list of (name, kind, spec)
        :func:`modality_specs` of ``modalities``.
    tokens : TokenEmbedding
        Words and ``[CLS]`` / ``[SEP]`` / ``[MASK]`` (``vocab_size + 3`` ids).
    embedders : nn.ModuleDict
        A :class:`~mmalign.nn.embedders.FrameEmbedding` or
        :class:`~mmalign.nn.embedders.PatchEmbedding` per modality.
    input_norms, segment_embedding, mask_vectors, embed_norm, encoder
        Layer norms of the projected frames, segment embedding, learned mask
        vector per modality, embedding norm, the transformer stack.
    token_head, frame_heads, match_head
        Masked-token logits, masked-frame reconstructions (per modality),
        pair-matching logit from ``[CLS]``.

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import MultimodalPretrainerModule
    >>> net = MultimodalPretrainerModule(37, {"audio": 16}, d_model=8, num_heads=2, num_layers=1)
    >>> inp = net.prepare_inputs({"text": [[4, 5, 6]], "audio": [torch.randn(7, 16)]})
    >>> enc = net(inp.words, inp.text_lengths, inp.frames, inp.lengths, heads=("token",))
    >>> enc.hidden.shape, enc.segments, enc.head_outputs["token"].shape
    (torch.Size([1, 13, 8]), {'text': (1, 4), 'audio': (5, 12)}, torch.Size([1, 3, 37]))
    """

    def __init__(self, vocab_size: int = 37, modalities: Mapping[str, Any] | None = None,
                 d_model: int = 64, num_heads: int = 4, num_layers: int = 2, ffn_mult: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.0, positions: str = "sinusoidal",
                 position_scale: float = 100.0, max_len: int = 1024, conv_kernel: int = 1,
                 patch_size: int = 8) -> None:
        super().__init__()
        self.specs = modality_specs(modalities)
        self.vocab_size = int(vocab_size)
        self.positions = positions
        self.position_scale = float(position_scale)
        self.dropout = float(dropout)
        self.patch_size = int(patch_size)
        d, v = int(d_model), int(vocab_size)
        kind = "sinusoidal" if positions == "relative" else positions
        self.tokens = TokenEmbedding(v + 3, d, padding_idx=0, positions=kind, max_len=int(max_len))
        embedders = {}
        for name, mkind, spec in self.specs:
            if mkind == "image":
                embedders[name] = PatchEmbedding(spec[1:], int(patch_size), spec[0], d)
            else:
                embedders[name] = FrameEmbedding(spec, d, int(conv_kernel), positions=kind,
                                                 max_len=int(max_len))
        self.embedders = nn.ModuleDict(embedders)
        # content on the scale of the position codes (unit variance per feature): word vectors
        # start at unit variance, projected frames / patches are layer-normalised
        nn.init.normal_(self.tokens.table.weight, std=1.0)
        with torch.no_grad():
            self.tokens.table.weight[0].zero_()
        self.input_norms = nn.ModuleDict({name: nn.LayerNorm(d) for name, _, _ in self.specs})
        self.segment_embedding = ModalityEmbedding(1 + len(self.specs), d)
        self.mask_vectors = nn.Parameter(torch.randn(len(self.specs), d) * 0.02)
        self.embed_norm = nn.LayerNorm(d)
        layer = TransformerEncoderLayer(d, int(num_heads), int(ffn_mult) * d,
                                        dropout=float(dropout), activation="gelu", norm_first=True)
        self.encoder = TransformerEncoder(layer, int(num_layers), norm=nn.LayerNorm(d))
        # every copy of the layer starts from the same weights in TransformerEncoder: re-draw them
        for lyr in self.encoder.layers:
            lyr.self_attn.dropout = float(attn_dropout)
            for mod in lyr.modules():
                if isinstance(mod, nn.Linear):
                    nn.init.xavier_uniform_(mod.weight)
                    if mod.bias is not None:
                        nn.init.zeros_(mod.bias)
        self.token_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d), nn.Linear(d, v))
        self.frame_heads = nn.ModuleDict({
            name: nn.Linear(d, spec if mkind == "frames" else self.embedders[name].patch_dim)
            for name, mkind, spec in self.specs})
        self.match_head = nn.Sequential(nn.Linear(d, d), nn.Tanh(), nn.Linear(d, 1))

    # ------------------------------------------------------------------ layout
    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]`` (``vocab_size``)."""
        return self.vocab_size

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]`` (``vocab_size + 1``)."""
        return self.vocab_size + 1

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]`` (``vocab_size + 2``)."""
        return self.vocab_size + 2

    @property
    def modality_names(self) -> tuple[str, ...]:
        """Names of the non-text modalities, in sequence order."""
        return tuple(name for name, _, _ in self.specs)

    @property
    def block_names(self) -> tuple[str, ...]:
        """``("text", *modality_names)``."""
        return ("text",) + self.modality_names

    # ------------------------------------------------------------------ inputs
    def prepare_inputs(self, X: Any, lengths: Any = None, boxes: Any = None, *, name: str = "X",
                       lname: str = "lengths", labels: Mapping[str, str] | None = None) -> MultimodalInputs:
        """Check and pad a dict of modalities into the tensors :meth:`forward` reads.

        Parameters
        ----------
        X : dict with key ``"text"`` and one key per modality
            One sample or a batch (see :mod:`mmalign.attention.pretraining`).
        lengths : dict name -> (N,) ints, or None
            Valid steps of padded arrays (missing keys: every step valid).
        boxes : dict image-modality name -> list of (K_i, 4) pixel boxes, or None
            Objects for whole-object masking (:func:`~mmalign.nn.masking.patch_mask`).
        name, lname : str
            How error messages name ``X`` and ``lengths``.
        labels : dict block name -> str, or None
            How error messages name single blocks (default ``name['block']``).

        Returns
        -------
        MultimodalInputs
            CPU tensors; ``single`` when ``X`` was one sample (a batch of one).

        Raises
        ------
        ValueError
            Missing or unexpected keys, ids outside the vocabulary, wrong shapes, NaN / inf,
            lengths that disagree with the arrays (the message names the entry).
        """
        labels = dict(labels or {})
        if not isinstance(X, Mapping):
            raise ValueError(f"{name} must be a dict with keys {list(self.block_names)}, got "
                             f"{type(X).__name__}")
        missing = [k for k in self.block_names if k not in X]
        extra = [k for k in X if k not in self.block_names]
        if missing or extra:
            raise ValueError(f"{name} must have exactly the keys {list(self.block_names)}; missing "
                             f"{missing}, unexpected {extra}")
        if lengths is not None:
            if not isinstance(lengths, Mapping):
                raise ValueError(f"{lname} must be a dict name -> (N,) lengths or None, got "
                                 f"{type(lengths).__name__}")
            bad = [k for k in lengths if k not in self.block_names]
            if bad:
                raise ValueError(f"{lname} has unknown keys {bad}; expected some of {list(self.block_names)}")
        v = int(self.vocab_size)
        tname = labels.get("text", f"{name}['text']")
        text = X["text"]
        single = _is_id_sequence(text)
        if single:
            ids = _check_ids(as_tensor(text, f"{tname}"), f"{tname}", v)
            if ids.shape[0] == 0:
                raise ValueError(f"{tname} is empty")
            words, tlen = ids[None], torch.tensor([ids.shape[0]])
        elif isinstance(text, (list, tuple)):
            if not text:
                raise ValueError(f"{tname} is an empty list")
            seqs = []
            for i, s in enumerate(text):
                t = as_tensor(s, f"{tname}[{i}]")
                if t.ndim != 1 or t.shape[0] == 0:
                    raise ValueError(f"{tname}[{i}] must be a non-empty 1-d array of ids, got "
                                     f"shape {tuple(t.shape)}")
                seqs.append(_check_ids(t, f"{tname}[{i}]", v).cpu())
            words, tlen = _pad_list(seqs), torch.tensor([len(s) for s in seqs])
            given = _lengths_from(lengths, "text", len(seqs), words.shape[1], lname)
            if given is not None and not torch.equal(given, tlen):
                raise ValueError(f"{lname}['text'] disagrees with the lengths of {tname}")
        else:
            t = as_tensor(text, f"{tname}")
            if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
                raise ValueError(f"{tname} must be (N, T) ids, a list of 1-d id arrays or one "
                                 f"1-d array, got shape {tuple(t.shape)}")
            words = _check_ids(t, f"{tname}", v)
            tlen = _lengths_from(lengths, "text", words.shape[0], words.shape[1], lname)
            if tlen is None:
                tlen = torch.full((words.shape[0],), words.shape[1], dtype=torch.long)
            pad = lengths_to_padding_mask(tlen.to(words.device), words.shape[1])
            words = words.masked_fill(pad, 0)
        n = words.shape[0]
        frames, flens, objects, n_objects = [], [], [], []
        for mname, kind, spec in self.specs:
            where = labels.get(mname, f"{name}[{mname!r}]")
            value = X[mname]
            if kind == "image":
                x = self._prepare_images(value, spec, single, where)
                ln = torch.full((n,), self.embedders[mname].n_patches, dtype=torch.long)
                ob, no = self._prepare_boxes(boxes, mname, n, single)
            else:
                x, ln = self._prepare_frames(value, spec, single, where, lengths, mname, lname)
                ob, no = torch.zeros((x.shape[0], 1, 1), dtype=torch.bool), torch.zeros(x.shape[0], dtype=torch.long)
            if x.shape[0] != n:
                raise ValueError(f"{where} has {x.shape[0]} samples, {tname} has {n}")
            frames.append(x)
            flens.append(ln)
            objects.append(ob)
            n_objects.append(no)
        if boxes is not None:
            if not isinstance(boxes, Mapping):
                raise ValueError("boxes must be a dict image-modality name -> per-sample (K_i, 4) boxes")
            bad = [k for k in boxes if k not in [nm for nm, kd, _ in self.specs if kd == "image"]]
            if bad:
                raise ValueError(f"boxes has keys {bad} that are not image modalities of this model")
        return MultimodalInputs(words.long().cpu(), tlen.long().cpu(), [x.cpu() for x in frames],
                       [ln.cpu() for ln in flens], objects, n_objects, single)

    def _prepare_frames(self, value: Any, dim: int, single: bool, where: str, lengths: Any,
                        mname: str, lname: str) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(value, (list, tuple)) and not single:
            seqs = [as_tensor(s, f"{where}[{i}]") for i, s in enumerate(value)]
            if not seqs:
                raise ValueError(f"{where} is an empty list")
            for i, s in enumerate(seqs):
                if s.ndim != 2 or s.shape[1] != dim or s.shape[0] == 0:
                    raise ValueError(f"{where}[{i}] must have shape (T, {dim}) with T >= 1, got "
                                     f"{tuple(s.shape)}")
            x = _pad_list([as_float(s, torch.float32, f"{where}[{i}]").cpu()
                           for i, s in enumerate(seqs)])
            ln = torch.tensor([s.shape[0] for s in seqs])
            given = _lengths_from(lengths, mname, len(seqs), x.shape[1], lname)
            if given is not None and not torch.equal(given, ln):
                raise ValueError(f"{lname}[{mname!r}] disagrees with the lengths of the arrays in {where}")
            return x, ln
        x = as_tensor(value, where)
        if single:
            if x.ndim != 2:
                raise ValueError(f"{where} must be one sample's (T, {dim}) frames (the text is one "
                                 f"sample), got shape {tuple(x.shape)}")
            x = x[None]
        if x.ndim != 3 or x.shape[-1] != dim or x.shape[1] == 0:
            raise ValueError(f"{where} must have shape (N, T, {dim}) (or be a list of (T_i, {dim}) "
                             f"arrays), got {tuple(x.shape)}")
        ln = _lengths_from(lengths, mname, x.shape[0], x.shape[1], lname)
        if ln is None:
            ln = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        pad = lengths_to_padding_mask(ln.to(x.device), x.shape[1])
        # padded steps are not data: zeroed before the checks
        return as_float(x.masked_fill(pad[..., None], 0), torch.float32, where), ln

    def _prepare_images(self, value: Any, spec: tuple, single: bool, where: str) -> torch.Tensor:
        c, h, w = spec
        shape = f"(N, {c}, {h}, {w})" + (f" or (N, {h}, {w})" if c == 1 else "")
        if isinstance(value, (list, tuple)) and not single:
            if not value:
                raise ValueError(f"{where} is an empty list")
            imgs = []
            for i, im in enumerate(value):
                t = as_float(as_tensor(im, f"{where}[{i}]"), torch.float32, f"{where}[{i}]").cpu()
                if t.ndim == 2 and c == 1:
                    t = t[None]
                if tuple(t.shape) != (c, h, w):
                    raise ValueError(f"{where}[{i}] must have shape ({c}, {h}, {w}), got {tuple(t.shape)}")
                imgs.append(t)
            return torch.stack(imgs)
        x = as_float(as_tensor(value, where), torch.float32, where).cpu()
        if single:
            x = x[None]
        if x.ndim == 3 and c == 1:
            x = x[:, None]
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"{where} must have shape {shape} (one image without N when the text "
                             f"is one sample), got {tuple(as_tensor(value, where).shape)}")
        return x

    def _prepare_boxes(self, boxes: Any, mname: str, n: int, single: bool) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embedders[mname]
        if not isinstance(boxes, Mapping) or boxes.get(mname) is None:
            return (torch.zeros((n, 1, emb.n_patches), dtype=torch.bool),
                    torch.zeros(n, dtype=torch.long))
        per = boxes[mname]
        if single:
            per = [per]
        if not isinstance(per, (list, tuple)) or len(per) != n:
            raise ValueError(f"boxes[{mname!r}] must be a list of {n} (K_i, 4) box arrays (one per sample)")
        masks = []
        for i, b in enumerate(per):
            arr = np.zeros((0, 4)) if b is None else np.asarray(b, dtype=np.float64)
            if arr.size == 0:
                arr = np.zeros((0, 4))
            if arr.ndim == 1 and arr.shape[0] == 4:
                arr = arr[None]
            if arr.ndim != 2 or arr.shape[1] != 4:
                raise ValueError(f"boxes[{mname!r}][{i}] must have shape (K, 4) (x0, y0, x1, y1), "
                                 f"got {arr.shape}")
            if np.isinf(arr).any():
                raise ValueError(f"boxes[{mname!r}][{i}] contains infinite values")
            m = emb.patches_in_boxes(arr) if len(arr) else torch.zeros((0, emb.n_patches), dtype=torch.bool)
            masks.append(m[m.any(1)])  # boxes covering no patch (NaN rows) are dropped
        k = max(1, max(m.shape[0] for m in masks))
        out = torch.zeros((n, k, emb.n_patches), dtype=torch.bool)
        for i, m in enumerate(masks):
            out[i, :m.shape[0]] = m
        return out, torch.tensor([m.shape[0] for m in masks], dtype=torch.long)

    def unpack(self, batch: Sequence[torch.Tensor], crop: bool = True) -> tuple:
        """The flat tuple of :meth:`MultimodalInputs.tensors` (or a mini-batch of it) →
        ``(words, text_lengths, frames, lengths, objects, n_objects)``, per-modality lists;
        with ``crop``, words and time series cut to the batch's longest valid length."""
        words, tlen = batch[0], batch[1]
        if crop:
            words = words[:, :max(int(tlen.max()), 1)]
        frames, lens, objs, nobj = [], [], [], []
        for m, (_, kind, _) in enumerate(self.specs):
            x, ln, ob, no = batch[2 + 4 * m: 6 + 4 * m]
            if crop and kind == "frames":
                x = x[:, :max(int(ln.max()), 1)]
            frames.append(x)
            lens.append(ln)
            objs.append(ob)
            nobj.append(no)
        return words, tlen, frames, lens, objs, nobj

    # ------------------------------------------------------------------ forward
    def _positions(self, n_steps: int, lengths: torch.Tensor) -> torch.Tensor | None:
        if self.positions != "relative":
            return None
        steps = torch.arange(n_steps, device=lengths.device, dtype=torch.float32)[None] + 0.5
        return steps / lengths.clamp(min=1).to(torch.float32)[:, None] * self.position_scale

    def forward(self, words: torch.Tensor, text_lengths: torch.Tensor, frames: Sequence[torch.Tensor],
                lengths: Sequence[torch.Tensor], frame_masks: Sequence[torch.Tensor | None] | None = None,
                need_weights: bool = False, heads: Sequence[str] = ()) -> JointEncoding:
        """Encode a batch into the joint sequence (and apply objective heads).

        Parameters
        ----------
        words : torch.LongTensor [shape=(B, T)]
        text_lengths : torch.LongTensor [shape=(B,)]
        frames : list of torch.Tensor
            Per modality (in ``specs`` order): ``(B, T_m, d_m)`` frames or ``(B, C, H, W)`` images.
        lengths : list of torch.LongTensor [shape=(B,)]
            Valid frames per modality (ignored for images).
        frame_masks : list of (torch.BoolTensor [shape=(B, T_m) or (B, n_patches)] or None), or None
            Frames / patches to mask (zeroed at the input, marked with the modality's mask vector).
        need_weights : bool
            Keep the joint attention of every layer.
        heads : sequence of {"token", "frame", "match"}
            Objective heads to apply: ``head_outputs["token"]`` masked-token logits
            ``(B, T, vocab_size)``, ``["frame/<name>"]`` reconstructed frames (patch
            pixels) per modality, ``["match"]`` the pair-matching logit ``(B,)``.

        Returns
        -------
        JointEncoding
        """
        dev = self.mask_vectors.device
        words, text_lengths = words.to(dev), text_lengths.to(dev)
        b, t = words.shape
        seg = self.segment_embedding
        cls = torch.full((b, 1), self.cls_id, dtype=torch.long, device=dev)
        sep = self.tokens.table(torch.full((b, 1), self.sep_id, dtype=torch.long, device=dev))
        tok = self.tokens(words, self._positions(t, text_lengths))
        parts = [seg(torch.cat([self.tokens.table(cls), tok, sep], dim=1), 0)]
        false = torch.zeros((b, 1), dtype=torch.bool, device=dev)
        pads = [false, lengths_to_padding_mask(text_lengths, t), false]
        segments, seg_lengths = {"text": (1, 1 + t)}, {"text": text_lengths}
        offset = t + 2
        for m, (name, kind, _) in enumerate(self.specs):
            emb = self.embedders[name]
            x, ln = frames[m].to(dev), lengths[m].to(dev)
            fm = None if frame_masks is None or frame_masks[m] is None else frame_masks[m].to(dev)
            if kind == "image":
                patches = emb.patchify(x.float())
                if fm is not None:
                    patches = patches.masked_fill(fm[..., None], 0.0)
                h = self.input_norms[name](emb.proj(patches)) + emb.positions()[None]
                pad = torch.zeros((b, h.shape[1]), dtype=torch.bool, device=dev)
            else:
                x = x.float()
                if fm is not None:
                    x = x.masked_fill(fm[..., None], 0.0)
                h = self.input_norms[name](emb.project(x, ln))
                pos = self._positions(x.shape[1], ln)
                pe = emb.pos(torch.arange(x.shape[1], device=dev) if pos is None else pos, h.dtype)
                if pe is not None:
                    h = h + pe
                pad = lengths_to_padding_mask(ln, x.shape[1])
            if fm is not None:
                h = h + fm[..., None].to(h.dtype) * self.mask_vectors[m]
            parts.append(seg(torch.cat([h, sep], dim=1), m + 1))
            pads += [pad, false]
            segments[name] = (offset, offset + h.shape[1])
            seg_lengths[name] = ln
            offset += h.shape[1] + 1
        z = torch.cat(parts, dim=1)
        z = nn.functional.dropout(self.embed_norm(z), self.dropout, self.training)
        padding = torch.cat(pads, dim=1)
        hidden, weights = self.encoder(z, src_key_padding_mask=padding, need_weights=need_weights)
        enc = JointEncoding(hidden, padding, segments, seg_lengths, weights)
        for head in heads:
            if head == "token":
                enc.head_outputs["token"] = self.token_head(enc.segment("text"))
            elif head == "frame":
                for name, _, _ in self.specs:
                    enc.head_outputs[f"frame/{name}"] = self.frame_heads[name](enc.segment(name))
            elif head == "match":
                enc.head_outputs["match"] = self.match_head(enc.cls)[:, 0]
            else:
                raise ValueError(f"heads must hold names among {list(HEADS)}, got {head!r}")
        return enc


# =========================================================================== the estimator

class MultimodalPretrainer(TorchAligner):
    """Joint self-attention encoder over ``[CLS] text [SEP] frames [SEP] ...`` with masked pretraining.

    See :mod:`mmalign.attention.pretraining` for the layout, the objectives and
    the input forms. The network is a :class:`MultimodalPretrainerModule`,
    built in ``fit`` (``module_``).

    Parameters
    ----------
    vocab_size : int >= 1
        Word ids are ``0 ... vocab_size - 1`` (37 for
        :func:`~mmalign.datasets.multimodal_streams`); ``[CLS]``, ``[SEP]``,
        ``[MASK]`` get the next three ids.
    modalities : dict name -> int or (C, H, W), or None
        The non-text modalities in sequence order: an int is a time series
        with that many features per frame, a triple an image modality (cut
        into ``patch_size`` patches). None: ``{"audio": 16, "video": 8}``
        (:func:`~mmalign.datasets.multimodal_streams`' defaults). ``"text"``
        is reserved.
    d_model, num_heads, num_layers : int
        Encoder width, heads (divide ``d_model``), pre-norm GELU layers.
    ffn_mult : int
        Feed-forward width is ``ffn_mult * d_model``.
    dropout : float in [0, 1)
        Dropout after the embeddings, on the residual branches and inside the feed-forward blocks.
    attn_dropout : float in [0, 1)
        Dropout on the attention weights.
    positions : {"sinusoidal", "learned", "relative"}
        Position codes of words and frames: sinusoidal or learned codes of the
        step index of each stream, or sinusoidal codes of the relative time
        ``(t + 0.5) / length * position_scale`` (every stream of a sample then
        starts and ends at the same positions: a prior of a uniform time
        alignment between streams of different rates).
    position_scale : float > 0
        Range of the relative positions.
    max_len : int
        Longest stream for learned positions.
    conv_kernel : int, odd
        Kernel of the frame embedders' ``Conv1d`` over time (1: a linear projection).
    patch_size : int
        Side of the square patches of image modalities.
    masked_token_weight, masked_frame_weight, pair_matching_weight : float >= 0
        Weights of the three objectives (0 switches one off; one must be > 0 to fit).
    token_mask_prob : float in (0, 1]
        Fraction of words selected for masked token modelling (BERT: 0.15).
    frame_mask_prob : float in (0, 1]
        Fraction of frames (patches, objects) masked for masked frame modelling.
    frame_span : int >= 1
        Length of the contiguous masked spans of time series, in frames.
    mismatch_prob : float in [0, 1]
        Fraction of samples whose other modalities are shuffled for pair matching.
    train : None, dict or TrainConfig
        Training settings (:class:`~mmalign.nn.train.TrainConfig`; see
        :class:`~mmalign.nn.estimator.TorchEstimator`). Defaults
        (:attr:`TRAIN_DEFAULTS`): ``max_epochs=20, batch_size=32, lr=1e-3,
        weight_decay=0.01, optimizer="adamw", grad_clip=1.0, seed=0,
        device="cpu"``. ``seed`` seeds the initial weights, the masks and the
        data order (and the fixed validation masks); ``batch_size`` is also
        the chunk size of the read-outs.

    Attributes
    ----------
    module_ : MultimodalPretrainerModule
    history_ : dict
        :func:`mmalign.nn.train.fit` history plus ``"objectives"``: the mean of
        each objective's loss per epoch.
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.attention import MultimodalPretrainer
    >>> from mmalign.nn import streams_inputs
    >>> from mmalign.datasets import multimodal_streams
    >>> ds = multimodal_streams(16, seed=0, audio_rate=10.0, video_rate=5.0)
    >>> X = streams_inputs(ds)
    >>> model = MultimodalPretrainer(len(ds.vocab), {"audio": 16, "video": 8}, d_model=16,
    ...                              num_heads=2, num_layers=1,
    ...                              train={"max_epochs": 2, "batch_size": 8}).fit(X)
    >>> sorted(model.history_["objectives"])
    ['masked_frame', 'masked_token', 'pair_matching']
    >>> enc = model.encode(X)  # a JointEncoding of the whole (padded) batch
    >>> enc.hidden.shape[0], enc.segment("audio").shape[1] == max(len(a) for a in ds.audio)
    (16, True)
    >>> al = model.align({k: v[0] for k, v in X.items()}, target="text", source="audio")
    >>> al.shape == (len(ds.audio[0]), len(ds.words[0]))  # side x: audio frames, side y: words
    True
    >>> al.weights.shape == (1, 2, len(ds.audio[0]), len(ds.words[0]))
    True
    >>> np.allclose(al.weights.sum(-2), 1.0)  # each word's attention, renormalised over the audio
    True
    >>> len(model.align_batch(X, target="text", source="video"))
    16
    """

    TRAIN_DEFAULTS = {"max_epochs": 20, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01,
                      "optimizer": "adamw", "grad_clip": 1.0, "seed": 0, "device": "cpu"}

    def __init__(self, vocab_size: int = 37, modalities: Mapping[str, Any] | None = None,
                 d_model: int = 64, num_heads: int = 4, num_layers: int = 2, ffn_mult: int = 4,
                 dropout: float = 0.1, attn_dropout: float = 0.0, positions: str = "sinusoidal",
                 position_scale: float = 100.0,
                 max_len: int = 1024, conv_kernel: int = 1, patch_size: int = 8,
                 masked_token_weight: float = 1.0, masked_frame_weight: float = 1.0,
                 pair_matching_weight: float = 1.0, token_mask_prob: float = 0.15,
                 frame_mask_prob: float = 0.15, frame_span: int = 3, mismatch_prob: float = 0.5,
                 train: Any = None) -> None:
        self.vocab_size = vocab_size
        self.modalities = modalities
        self.d_model = d_model
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.ffn_mult = ffn_mult
        self.dropout = dropout
        self.attn_dropout = attn_dropout
        self.positions = positions
        self.position_scale = position_scale
        self.max_len = max_len
        self.conv_kernel = conv_kernel
        self.patch_size = patch_size
        self.masked_token_weight = masked_token_weight
        self.masked_frame_weight = masked_frame_weight
        self.pair_matching_weight = pair_matching_weight
        self.token_mask_prob = token_mask_prob
        self.frame_mask_prob = frame_mask_prob
        self.frame_span = frame_span
        self.mismatch_prob = mismatch_prob
        self.train = train

    # ------------------------------------------------------------------ hyper-parameters
    def _check_params(self) -> None:
        specs = modality_specs(self.modalities)
        check_int(self.vocab_size, "vocab_size", 1)
        d = check_int(self.d_model, "d_model", 1)
        h = check_int(self.num_heads, "num_heads", 1)
        if d % h:
            raise ValueError(f"d_model ({d}) must be a multiple of num_heads ({h})")
        check_int(self.num_layers, "num_layers", 1)
        check_int(self.ffn_mult, "ffn_mult", 1)
        for p in ("dropout", "attn_dropout"):
            check_float(getattr(self, p), p, 0.0, 1.0)
            if getattr(self, p) >= 1.0:
                raise ValueError(f"{p} must be < 1, got {getattr(self, p)}")
        check_choice(self.positions, "positions", POSITIONS)
        check_float(self.position_scale, "position_scale", 0.0, low_open=True)
        check_int(self.max_len, "max_len", 1)
        k = check_int(self.conv_kernel, "conv_kernel", 1)
        if k % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (lengths are kept), got {k}")
        p = check_int(self.patch_size, "patch_size", 1)
        for name, kind, spec in specs:
            if kind == "image" and (spec[1] % p or spec[2] % p):
                raise ValueError(f"modalities[{name!r}]: image size {spec[1:]} must be a multiple "
                                 f"of patch_size {p}")
        for w in ("masked_token_weight", "masked_frame_weight", "pair_matching_weight"):
            check_float(getattr(self, w), w, 0.0)
        check_float(self.token_mask_prob, "token_mask_prob", 0.0, 1.0, low_open=True)
        check_float(self.frame_mask_prob, "frame_mask_prob", 0.0, 1.0, low_open=True)
        check_int(self.frame_span, "frame_span", 1)
        check_float(self.mismatch_prob, "mismatch_prob", 0.0, 1.0)

    def _make_module(self) -> MultimodalPretrainerModule:
        return MultimodalPretrainerModule(
            self.vocab_size, self.modalities, self.d_model, self.num_heads, self.num_layers,
            self.ffn_mult, self.dropout, self.attn_dropout, self.positions, self.position_scale,
            self.max_len, self.conv_kernel, self.patch_size)

    def _new_module(self) -> MultimodalPretrainerModule:
        """A new network with the initial weights of the training seed (``module_`` untouched)."""
        self._check_params()
        self.train_config()
        with self._seeded():
            return self._make_module()

    def initialize(self) -> "MultimodalPretrainer":
        """Build ``module_`` with its initial weights, without training.

        The weights every ``fit`` starts from (drawn from the training seed): an
        untrained baseline to :meth:`evaluate`, :meth:`align` or fine-tune from
        scratch. ``history_`` is not set.

        Returns
        -------
        self
        """
        self.module_ = self._new_module()
        self.device_ = self._module_dtype_device()[1]
        return self

    # ------------------------------------------------------------------ layout
    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]`` (``vocab_size``)."""
        return int(self.vocab_size)

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]`` (``vocab_size + 1``)."""
        return int(self.vocab_size) + 1

    @property
    def mask_id(self) -> int:
        """Id of ``[MASK]`` (``vocab_size + 2``)."""
        return int(self.vocab_size) + 2

    @property
    def modality_names(self) -> tuple[str, ...]:
        """Names of the non-text modalities, in sequence order."""
        return tuple(name for name, _, _ in modality_specs(self.modalities))

    @property
    def block_names(self) -> tuple[str, ...]:
        """``("text", *modality_names)``."""
        return ("text",) + self.modality_names

    # ------------------------------------------------------------------ objectives
    def _losses(self, model: nn.Module, batch: Sequence[torch.Tensor],
                generator: torch.Generator | None = None, stats: bool = False) -> dict:
        """Objective losses of one mini-batch (random masks and shuffles from ``generator``);
        ``model`` is ``module_`` or its DDP wrapper."""
        net = self.module_
        words, tlen, frames, lens, objs, nobj = net.unpack(batch)
        dev = net.mask_vectors.device
        b = words.shape[0]
        w_tok, w_frm, w_match = (float(self.masked_token_weight), float(self.masked_frame_weight),
                                 float(self.pair_matching_weight))
        aligned = torch.ones(b, dtype=torch.bool, device=dev)
        if w_match > 0 and b >= 2:
            donor, aligned = shuffle_pairs(b, mismatch_prob=float(self.mismatch_prob),
                                           generator=generator, device=dev)
            d = donor.to(frames[0].device)
            frames, lens = [x[d] for x in frames], [ln[d] for ln in lens]
            objs, nobj = [o[d] for o in objs], [n[d] for n in nobj]
        tokens_in, selected = words, None
        if w_tok > 0:
            tokens_in, selected = mask_tokens(words, tlen, mask_id=net.mask_id,
                                              vocab_size=int(self.vocab_size),
                                              mask_prob=float(self.token_mask_prob), generator=generator)
        fmasks = None
        if w_frm > 0:
            fmasks = []
            for m, (name, kind, _) in enumerate(net.specs):
                if kind == "image":
                    fmasks.append(patch_mask(b, net.embedders[name].n_patches,
                                             mask_prob=float(self.frame_mask_prob), objects=objs[m],
                                             n_objects=nobj[m], generator=generator,
                                             device=frames[m].device))
                else:
                    fmasks.append(span_mask(lens[m], frames[m].shape[1], mask_prob=float(self.frame_mask_prob),
                                            span_length=int(self.frame_span), generator=generator))
        heads = [h for h, on in (("token", w_tok > 0), ("frame", w_frm > 0),
                                 ("match", w_match > 0 and b >= 2)) if on]
        enc = model(tokens_in, tlen, frames, lens, fmasks, heads=heads)
        out: dict[str, torch.Tensor] = {}
        total = enc.hidden.sum() * 0.0
        if w_tok > 0:
            sel = selected.to(dev) & aligned[:, None]
            logits = enc.head_outputs["token"]
            out["masked_token"] = masked_token_loss(logits, words.to(dev), sel)
            total = total + w_tok * out["masked_token"]
            if stats:
                out["masked_token_accuracy"] = ((logits.argmax(-1) == words.to(dev)) & sel).sum().float()
                out["masked_token_count"] = sel.sum().float()
        if w_frm > 0:
            per = []
            for m, (name, kind, _) in enumerate(net.specs):
                pred = enc.head_outputs[f"frame/{name}"]
                target = (net.embedders[name].patchify(frames[m].to(dev).float()) if kind == "image"
                          else frames[m].to(dev).float())
                loss_m = masked_frame_loss(pred, target, fmasks[m].to(dev) & aligned[:, None])
                out[f"masked_frame/{name}"] = loss_m
                per.append(loss_m)
            out["masked_frame"] = torch.stack(per).mean()
            total = total + w_frm * out["masked_frame"]
        if w_match > 0 and b >= 2:
            logit = enc.head_outputs["match"]
            out["pair_matching"] = pair_matching_loss(logit, aligned)
            total = total + w_match * out["pair_matching"]
            if stats:
                out["pair_matching_accuracy"] = ((logit > 0) == aligned).sum().float()
                out["pair_matching_count"] = torch.tensor(float(b), device=dev)
        out["total"] = total
        return out

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, Y: Any = None, *, lengths: Any = None, boxes: Any = None,
            validation: Any = None) -> "MultimodalPretrainer":
        """Pretrain on unlabelled samples with :func:`mmalign.nn.train.fit`.

        Every call starts again from the initial weights of the training seed
        (:meth:`initialize`), so two fits with the same ``train["seed"]`` give
        the same model (on CPU).

        Parameters
        ----------
        X : dict (see :mod:`mmalign.attention.pretraining`)
            A batch; at least 2 samples when pair matching is on.
        Y : None
            Pretraining uses no labels: anything but None is refused.
        lengths : dict name -> (N,) ints, or None
        boxes : dict image-modality name -> list of (K_i, 4) pixel boxes, or None
            Objects to mask whole in masked region modelling (else random patches).
        validation : tuple ``(X_val, None)``, ``(X_val, None, lengths_val)`` or ``(X_val, None, lengths_val, boxes_val)``, or None
            Keeps the weights of the epoch with the lowest total validation loss
            (fixed masks drawn from the training seed); with ``train["patience"]``
            set, stops early.

        Returns
        -------
        self
        """
        self._check_params()
        cfg = self.train_config()
        weights = (self.masked_token_weight, self.masked_frame_weight, self.pair_matching_weight)
        if all(float(w) == 0 for w in weights):
            raise ValueError("masked_token_weight, masked_frame_weight, pair_matching_weight: at least "
                             "one objective must have a positive weight")
        if Y is not None:
            raise ValueError("Y must be None: pretraining uses no labels")
        module = self._new_module()
        data = module.prepare_inputs(X, lengths, boxes)
        if data.single:
            raise ValueError("X must be a batch (ragged lists or padded arrays), not one sample")
        n = data.words.shape[0]
        if float(self.pair_matching_weight) > 0 and n < 2:
            raise ValueError("X: pair matching needs at least 2 samples")
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or not 2 <= len(validation) <= 4:
                raise ValueError("validation must be a tuple (X_val, None), (X_val, None, lengths_val) "
                                 "or (X_val, None, lengths_val, boxes_val)")
            if validation[1] is not None:
                raise ValueError("validation[1] must be None: pretraining uses no labels")
            vl = validation[2] if len(validation) > 2 else None
            vb = validation[3] if len(validation) > 3 else None
            val = module.prepare_inputs(validation[0], vl, vb, name="validation[0]", lname="validation[2]")
        if cfg.patience is not None and val is None:
            raise ValueError("train.patience needs validation data (fit(X, validation=(X_val, None)))")
        bs = min(int(cfg.batch_size), n)
        steps_per_epoch = math.ceil(n / bs)
        record: dict[str, list[float]] = {}
        val_seed = int(cfg.seed) if cfg.seed is not None else 0

        def loss_fn(model, batch):
            out = self._losses(model, batch)
            for k, v in out.items():
                if k in ("masked_token", "masked_frame", "pair_matching"):
                    record.setdefault(k, []).append(float(v.detach()))
            return out["total"]

        def val_metric(model, batch):
            return self._evaluate_tensors(model, batch, seed=val_seed)["total"]

        self.module_ = module
        self._fit_module(loss_fn, data.tensors(), config=dataclasses.replace(cfg, batch_size=bs),
                         validation=val.tensors() if val is not None else None,
                         val_metric=val_metric if val is not None else None)
        self.history_["objectives"] = {k: [float(np.mean(v[i:i + steps_per_epoch]))
                                           for i in range(0, len(v), steps_per_epoch)]
                                       for k, v in record.items()}
        self.module_.eval()
        return self

    # ------------------------------------------------------------------ inference
    def _step(self) -> int:
        """Read-outs run in chunks of the training batch size."""
        return int(self.train_config().batch_size)

    def _prepare(self, X: Any, lengths: Any = None, boxes: Any = None, *, name: str = "X",
                 lname: str = "lengths", labels: Mapping[str, str] | None = None) -> MultimodalInputs:
        return self.module_.prepare_inputs(X, lengths, boxes, name=name, lname=lname, labels=labels)

    @torch.no_grad()
    def _evaluate_tensors(self, model: nn.Module, tensors: Sequence[torch.Tensor], seed: int = 0) -> dict:
        was = model.training
        model.eval()
        g = torch.Generator().manual_seed(int(seed))
        sums: dict[str, float] = {}
        n_batches = 0
        n = tensors[0].shape[0]
        step = self._step()
        try:
            for i in range(0, n, step):
                batch = [t[i:i + step] for t in tensors]
                out = self._losses(model, batch, generator=g, stats=True)
                m = batch[0].shape[0]
                for k, v in out.items():
                    weight = 1.0 if (k.endswith("_accuracy") or k.endswith("_count")) else m
                    sums[k] = sums.get(k, 0.0) + float(v) * weight
                n_batches += m
        finally:
            model.train(was)
        res = {k: v / n_batches for k, v in sums.items()
               if not (k.endswith("_accuracy") or k.endswith("_count"))}
        for obj in ("masked_token", "pair_matching"):
            if f"{obj}_count" in sums and sums[f"{obj}_count"] > 0:
                res[f"{obj}_accuracy"] = sums[f"{obj}_accuracy"] / sums[f"{obj}_count"]
        return res

    def evaluate(self, X: Any, lengths: Any = None, *, boxes: Any = None, seed: int = 0) -> dict:
        """Pretraining losses and accuracies on data, with masks and shuffles drawn from ``seed``.

        Returns
        -------
        scores : dict
            ``"total"``, ``"masked_token"`` (cross-entropy),
            ``"masked_token_accuracy"``, ``"masked_frame"`` and
            ``"masked_frame/<name>"`` (MSE), ``"pair_matching"`` (BCE),
            ``"pair_matching_accuracy"`` — for the objectives that are on.
        """
        self._check_fitted()
        check_int(seed, "seed", 0)
        data = self._prepare(X, lengths, boxes)
        dev = self.module_.mask_vectors.device
        return self._evaluate_tensors(self.module_, [t.to(dev) for t in data.tensors()], seed=seed)

    @torch.no_grad()
    def encode(self, X: Any, lengths: Any = None, *, frame_masks: Mapping[str, torch.Tensor] | None = None,
               need_weights: bool = False) -> JointEncoding:
        """Encode a batch (or one sample) into the joint sequence, in eval mode, in one pass.

        Parameters
        ----------
        X : dict (see :mod:`mmalign.attention.pretraining`)
        lengths : dict name -> (B,) ints, or None
        frame_masks : dict name -> torch.BoolTensor [shape=(B, T_m) or (B, n_patches)], or None
            Frames / patches to mask (zeroed and marked, as in masked frame modelling).
        need_weights : bool
            Keep the joint attention of every layer.

        Returns
        -------
        JointEncoding
        """
        self._check_fitted()
        net = self.module_
        inp = self._prepare(X, lengths)
        masks = None
        if frame_masks is not None:
            if not isinstance(frame_masks, Mapping) or any(k not in net.modality_names for k in frame_masks):
                raise ValueError(f"frame_masks must be a dict with keys among {list(net.modality_names)}")
            masks = []
            for m, (name, _, _) in enumerate(net.specs):
                fm = frame_masks.get(name)
                if fm is not None:
                    want = (inp.words.shape[0], inp.frames[m].shape[1] if inp.frames[m].ndim == 3
                            else net.embedders[name].n_patches)
                    if not isinstance(fm, torch.Tensor) or fm.dtype != torch.bool or tuple(fm.shape) != want:
                        raise ValueError(f"frame_masks[{name!r}] must be a bool tensor of shape {want}")
                masks.append(fm)
        was = net.training
        net.eval()
        try:
            return net(inp.words, inp.text_lengths, inp.frames, inp.lengths, masks, need_weights)
        finally:
            net.train(was)

    @torch.no_grad()
    def embed(self, X: Any, lengths: Any = None, *, pooling: str = "cls") -> np.ndarray:
        """One vector per sample: the ``[CLS]`` output, or the mean over a block's valid steps.

        Parameters
        ----------
        X, lengths : see :mod:`mmalign.attention.pretraining`
        pooling : {"cls", "mean"} or a block name (``"text"``, a modality)
            ``"mean"``: every valid step of every block.

        Returns
        -------
        vectors : np.ndarray [shape=(N, d_model)] (``(d_model,)`` for one sample)
        """
        self._check_fitted()
        if pooling not in ("cls", "mean") + self.block_names:
            raise ValueError(f"pooling must be 'cls', 'mean' or one of {list(self.block_names)}, "
                             f"got {pooling!r}")
        inp = self._prepare(X, lengths)
        out = []
        for enc in self._encode_chunks(inp):
            out.append(_pool_encoding(enc, pooling).cpu())
        v = torch.cat(out).numpy()
        return v[0] if inp.single else v

    @torch.no_grad()
    def match_proba(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Probability that each sample's modalities belong together (the pair-matching head).

        Returns
        -------
        proba : np.ndarray [shape=(N,)] (a float for one sample)
        """
        self._check_fitted()
        inp = self._prepare(X, lengths)
        out = [torch.sigmoid(self.module_.match_head(enc.cls)[:, 0]).cpu()
               for enc in self._encode_chunks(inp)]
        p = torch.cat(out).numpy()
        return float(p[0]) if inp.single else p

    def _encode_chunks(self, inp: MultimodalInputs, need_weights: bool = False) -> Iterator[JointEncoding]:
        net = self.module_
        was = net.training
        net.eval()
        step = self._step()
        try:
            tensors = inp.tensors()
            for i in range(0, inp.words.shape[0], step):
                batch = [t[i:i + step] for t in tensors]
                words, tlen, frames, lens, _, _ = net.unpack(batch)
                with torch.no_grad():
                    yield net(words, tlen, frames, lens, need_weights=need_weights)
        finally:
            net.train(was)

    def _block_index(self, block: Any, name: str) -> str:
        if block in self.block_names:
            return block
        raise ValueError(f"{name} must be one of {list(self.block_names)}, got {block!r}")

    def _blocks(self, target: Any, source: Any) -> tuple[str, str]:
        t = self._block_index(target, "target")
        s = self._block_index(source if source is not None else
                              (self.modality_names[0] if t == "text" else "text"), "source")
        return t, s

    def attention(self, X: Any, lengths: Any = None, *, target: str = "text",
                  source: str | None = None) -> list[np.ndarray]:
        """Joint attention of ``target``'s steps (rows) over ``source``'s steps (columns).

        Returns
        -------
        weights : list of np.ndarray [shape=(layers, heads, T_target_i, T_source_i)]
            One per sample, cropped to its valid steps; raw weights (each full
            row of the joint attention sums to 1 over all blocks).
        """
        self._check_fitted()
        t, s = self._blocks(target, source)
        return self._attention(self._prepare(X, lengths), t, s)

    @torch.no_grad()
    def _attention(self, inp: MultimodalInputs, t: str, s: str) -> list[np.ndarray]:
        out = []
        for enc in self._encode_chunks(inp, need_weights=True):
            w = torch.stack(enc.weights, dim=1)                     # (B, layers, heads, L, L)
            (ta, tb), (sa, sb) = enc.segments[t], enc.segments[s]
            block = w[..., ta:tb, sa:sb].cpu().numpy()
            lt, ls = enc.lengths[t].cpu().numpy(), enc.lengths[s].cpu().numpy()
            out += [block[i, ..., :int(lt[i]), :int(ls[i])] for i in range(block.shape[0])]
        return out

    def _alignments(self, inp: MultimodalInputs, target: Any, source: Any,
                    renormalize: Any) -> list[Alignment]:
        if not isinstance(renormalize, (bool, np.bool_)):
            raise ValueError(f"renormalize must be a bool, got {type(renormalize).__name__}")
        t, s = self._blocks(target, source)
        extras_base = {"target": t, "source": s, "model": type(self).__name__}
        if s in self.module_.embedders and isinstance(self.module_.embedders[s], PatchEmbedding):
            extras_base["grid"] = self.module_.embedders[s].grid
        out = []
        for w in self._attention(inp, t, s):
            w = w.astype(np.float64)                                 # (layers, heads, T_t, T_s)
            mass = w.sum(-1)
            if renormalize:
                w = w / np.where(mass > 0, mass, 1.0)[..., None]
            out.append(Alignment(weights=np.swapaxes(w, -1, -2), weight_axes=("layer", "head"),
                                 distribution_over="x", monotonic=False,
                                 extras={**extras_base, "target_mass": mass,
                                         "renormalized": bool(renormalize)}))
        return out

    def _pair(self, x: Any, y: Any, t: str, s: str, names: tuple[str, str]) -> tuple[Any, dict | None]:
        """``x`` (and ``y``) as a dict of blocks, with how messages name them: ``x`` alone is
        the dict; with ``y``, ``x`` is the source block and ``y`` the target block of a model
        with one modality beside the text."""
        if y is None:
            return x, None
        if isinstance(x, Mapping):
            raise ValueError(f"{names[1]} must be None when {names[0]} is a dict of the modalities "
                             f"({names[0]} holds every modality already)")
        if len(self.modality_names) != 1:
            raise ValueError(f"{names[1]}: this model has modalities {list(self.modality_names)}; "
                             f"pass a dict of all of them as {names[0]}")
        if t == s:
            raise ValueError(f"{names[1]}: target and source are both {t!r}; give only a dict as "
                             f"{names[0]} for a block's attention over itself")
        return {s: x, t: y}, {s: names[0], t: names[1]}

    def align(self, x: Any, y: Any = None, *, target: str = "text", source: str | None = None,
              renormalize: bool = True) -> Alignment:
        """Joint attention between two blocks of ONE sample as an :class:`~mmalign.alignment.Alignment`.

        Side x is the ``source`` block, side y the ``target`` block: each target
        step's attention over the source's steps (``distribution_over="x"``).

        Parameters
        ----------
        x : dict (one sample: 1-d word ids, ``(T, d)`` frames, ``(C, H, W)`` images), or one block
            The sample's modalities; or, with ``y``, the ``source`` block alone
            (the first modality's ``(T, d)`` frames by default).
        y : array or None
            The ``target`` block (one sample's word ids ``(T_text,)`` by default),
            for a model with one modality beside the text: ``align(frames, ids)``.
            Refused when ``x`` is a dict (it holds every modality).
        target, source : str
            Block names (``"text"`` or a modality); default text over the first
            modality (text over the target when ``target`` is a modality).
        renormalize : bool
            Divide each target step's weights by its mass on ``source`` so that
            they sum to 1; the raw mass is in ``extras["target_mass"]``
            ``(layers, heads, T_target)``.

        Returns
        -------
        alignment : Alignment
            Shape ``(T_source, T_target)``; weights ``(layers, heads, T_source,
            T_target)``; ``distribution_over="x"``; ``monotonic=False``; extras
            ``target``, ``source``, ``model``, ``target_mass``, ``renormalized``
            (and ``grid`` for an image source).

        Raises
        ------
        ValueError
            ``x`` is a batch (use :meth:`align_batch`), bad inputs (the message names them).
        """
        self._check_fitted()
        t, s = self._blocks(target, source)
        sample, labels = self._pair(x, y, t, s, ("x", "y"))
        if isinstance(sample, Mapping) and "text" in sample and not _is_id_sequence(sample["text"]):
            where = (labels or {}).get("text", "x['text']")
            raise ValueError(f"{where} must hold ONE sample's 1-d word ids (align takes one "
                             "sample); use align_batch for a batch")
        inp = self._prepare(sample, name="x", labels=labels)
        return self._alignments(inp, target, source, renormalize)[0]

    def align_batch(self, X: Any, Y: Any = None, *, target: str = "text", source: str | None = None,
                    lengths: Any = None, renormalize: bool = True) -> list[Alignment]:
        """:meth:`align` for every sample of a batch.

        Parameters
        ----------
        X : dict (a batch: lists, or padded arrays with ``lengths``), or the source blocks
            With ``Y`` (a model with one modality beside the text): ``X`` the
            samples' ``source`` blocks, ``Y`` their ``target`` blocks, as in :meth:`align`.
        Y : list or array, or None
        target, source, renormalize : see :meth:`align`
        lengths : dict name -> (N,) ints, or None

        Returns
        -------
        alignments : list of Alignment
            One per sample, equal to :meth:`align` of that sample (to float rounding:
            the samples are encoded padded, in chunks of ``train["batch_size"]``).
        """
        self._check_fitted()
        t, s = self._blocks(target, source)
        X, labels = self._pair(X, Y, t, s, ("X", "Y"))
        if isinstance(X, Mapping) and "text" in X and _is_id_sequence(X["text"]):
            where = (labels or {}).get("text", "X['text']")
            raise ValueError(f"{where} must hold a batch (a list of samples' word ids or padded "
                             "arrays), not one sample's; use align for one sample")
        return self._alignments(self._prepare(X, lengths, labels=labels), target, source, renormalize)


def _pool_encoding(enc: JointEncoding, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return enc.cls
    if pooling == "mean":
        valid = (~enc.padding_mask).to(enc.hidden.dtype)
        return (enc.hidden * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
    h, pad = enc.segment(pooling), enc.segment_mask(pooling)
    valid = (~pad).to(h.dtype)
    return (h * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)


def pretrain(X: Any, lengths: Any = None, *, boxes: Any = None, validation: Any = None,
             **params: Any) -> MultimodalPretrainer:
    """Build a :class:`MultimodalPretrainer` from ``params`` and pretrain it on ``X``.

    Parameters
    ----------
    X, lengths, boxes, validation
        As in :meth:`MultimodalPretrainer.fit`.
    **params
        Hyper-parameters of :class:`MultimodalPretrainer` (``train`` included).

    Returns
    -------
    model : MultimodalPretrainer
        Fitted.

    Examples
    --------
    >>> from mmalign.datasets import multimodal_streams
    >>> from mmalign.nn import streams_inputs
    >>> ds = multimodal_streams(8, seed=0, audio_rate=10.0, video_rate=5.0)
    >>> model = pretrain(streams_inputs(ds), vocab_size=len(ds.vocab), d_model=8, num_heads=2,
    ...                  num_layers=1, train={"max_epochs": 1, "batch_size": 4})
    >>> model.history_["epochs_run"]
    1
    """
    return MultimodalPretrainer(**params).fit(X, lengths=lengths, boxes=boxes, validation=validation)
