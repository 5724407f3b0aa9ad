"""Fine-tuning a (pre)trained :class:`~mmalign.attention.MultimodalPretrainer` on labels.

:class:`MultimodalFineTuner` is the entry point (a
:class:`~mmalign.nn.estimator.TorchAligner`): its network
(:class:`MultimodalFineTunerModule`, ``module_``) is a copy of the joint encoder
of a backbone ``MultimodalPretrainer`` plus the head of its ``task``; ``fit``
copies the backbone's weights into it (the backbone itself is never modified;
an *unfitted* backbone gives training from scratch with the same
architecture, from the backbone's initial weights; no backbone at all, the
default, is an unfitted ``MultimodalPretrainer()``) and trains encoder and
head with :func:`mmalign.nn.train.fit`. :func:`finetune` builds and fits one in
a call. Inputs ``X`` / ``lengths`` are those of
:class:`~mmalign.attention.MultimodalPretrainer`.

The heads, BERT style, read the joint encoder's output
(:class:`~mmalign.nn.packing.JointEncoding`) and live in :mod:`mmalign.nn.heads`:

- :class:`~mmalign.nn.heads.SequenceClassificationHead` (``task="classification"``
  / ``"regression"``) — one prediction per sample from the ``[CLS]`` vector
  (or the mean / sum over one block's valid steps) through a ``tanh`` pooler:
  classes (cross-entropy) or a regression score (L1 / MSE);
- :class:`~mmalign.nn.heads.TokenClassificationHead` (``task="token"``) — one
  label per step of a block (words by default; frames of a modality work the
  same way), cross-entropy ignoring padding and positions labelled ``-100``;
- :class:`~mmalign.nn.heads.SpanExtractionHead` (``task="span"``) — start and
  end logits over a block's steps; the loss is the cross-entropy of the true
  start plus that of the true end (:func:`~mmalign.nn.heads.span_loss`);
  decoding takes the span ``(s, e)`` with ``s <= e < s + max_span_length`` of
  largest ``start[s] + end[e]`` (:func:`~mmalign.nn.heads.decode_spans`).
  Spans are inclusive ``[start, end]`` step indices of the block.

``align`` / ``align_batch`` read the fine-tuned encoder's joint attention as
:meth:`MultimodalPretrainer.align <mmalign.attention.MultimodalPretrainer.align>`
does (side x the ``source`` block, side y the ``target`` block).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..alignment import Alignment
from ..nn.estimator import TorchAligner
from ..nn.heads import (FUSIONS, IGNORE_INDEX, POOLINGS, SequenceClassificationHead, SpanExtractionHead,
                        TokenClassificationHead, decode_spans, span_loss, token_classification_loss)
from ..nn.packing import JointEncoding, attention_pooled_frames
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_bool, check_choice, check_float, check_int
from .pretraining import MultimodalInputs, MultimodalPretrainer, MultimodalPretrainerModule

__all__ = ["MultimodalFineTuner", "MultimodalFineTunerModule", "finetune"]

TASKS = ("classification", "regression", "token", "span")
LOSSES = ("ce", "l1", "mse")


def _pooled_modalities(encoder: MultimodalPretrainerModule, segment: str) -> list[tuple[int, str, int]]:
    """(index, name, width) of the modalities other than ``segment`` (``aligned_inputs`` pools them)."""
    out = []
    for m, (name, kind, spec) in enumerate(encoder.specs):
        if name != segment:
            width = int(spec) if kind == "frames" else int(spec[0]) * encoder.patch_size ** 2
            out.append((m, name, width))
    return out


# =========================================================================== the network

class MultimodalFineTunerModule(nn.Module):
    """A joint encoder (:class:`~mmalign.attention.MultimodalPretrainerModule`) plus a task head.

    A plain ``torch.nn.Module`` (what :class:`MultimodalFineTuner` trains as ``module_``).

    Parameters
    ----------
    encoder : MultimodalPretrainerModule
        Trained in place.
    head : torch.nn.Module
        Reads the :class:`~mmalign.nn.packing.JointEncoding` (and, with
        ``aligned_inputs``, the attention-pooled frames): a head of
        :mod:`mmalign.nn.heads`.
    segment : str
        The block whose steps pool the other modalities' frames (``aligned_inputs``).
    aligned_inputs : bool
        Give the head, beside each step of ``segment``, the input frames (patch
        vectors) of every other modality averaged under the encoder's attention
        from that step (:func:`~mmalign.nn.packing.attention_pooled_frames`).
    align_layer : int or None
        Layer whose attention ``aligned_inputs`` uses (None: mean over layers).

    Examples
    --------
    >>> import torch
    >>> from mmalign.attention import MultimodalFineTunerModule, MultimodalPretrainerModule
    >>> from mmalign.nn import SequenceClassificationHead
    >>> enc = MultimodalPretrainerModule(37, {"audio": 4}, d_model=8, num_heads=2, num_layers=1)
    >>> net = MultimodalFineTunerModule(enc, SequenceClassificationHead(8, 3))
    >>> inp = enc.prepare_inputs({"text": [[4, 5], [6, 7, 8]], "audio": [torch.randn(5, 4), torch.randn(3, 4)]})
    >>> logits, joint = net(inp.words, inp.text_lengths, inp.frames, inp.lengths)
    >>> logits.shape
    torch.Size([2, 3])
    """

    def __init__(self, encoder: MultimodalPretrainerModule, head: nn.Module, *, segment: str = "text",
                 aligned_inputs: bool = False, align_layer: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.segment = segment
        self.aligned_inputs = bool(aligned_inputs)
        self.align_layer = None if align_layer is None else int(align_layer)

    def forward(self, words: torch.Tensor, text_lengths: torch.Tensor, frames: Sequence[torch.Tensor],
                lengths: Sequence[torch.Tensor]) -> tuple[Any, JointEncoding]:
        """Encode one batch and apply the head.

        Parameters
        ----------
        words, text_lengths, frames, lengths
            As :meth:`MultimodalPretrainerModule.forward
            <mmalign.attention.MultimodalPretrainerModule.forward>`.

        Returns
        -------
        output : torch.Tensor or (torch.Tensor, torch.Tensor)
            Logits / scores ``(B, k)``; per-step logits ``(B, T, k)``; or
            ``(start_logits, end_logits)`` ``(B, T)`` each.
        encoding : JointEncoding
        """
        enc = self.encoder(words, text_lengths, frames, lengths, need_weights=self.aligned_inputs)
        if not self.aligned_inputs:
            return self.head(enc), enc
        pooled = {}
        dev = enc.hidden.device
        for m, name, _ in _pooled_modalities(self.encoder, self.segment):
            x = frames[m].to(dev).float()
            if x.ndim == 4:   # an image modality: its patch vectors
                x = self.encoder.embedders[name].patchify(x)
            pooled[name] = x
        extra = attention_pooled_frames(enc, pooled, target=self.segment, layer=self.align_layer)
        return self.head(enc, extra), enc


# =========================================================================== the estimator

class MultimodalFineTuner(TorchAligner):
    """A :class:`~mmalign.attention.MultimodalPretrainer`'s encoder plus a task head, trained on labels.

    ``fit`` builds ``module_`` (a :class:`MultimodalFineTunerModule`: the
    backbone's architecture and a fresh head, initialised from the training
    seed), copies the backbone's current weights into its encoder (the backbone
    object is left untouched: ``module_`` holds its own copy) and trains both
    (or the head alone with ``freeze_backbone``). Every ``fit`` starts again
    from the backbone's weights and a fresh head. Fine-tuning an unfitted
    backbone is training the same architecture from scratch, from the
    backbone's initial weights (:meth:`MultimodalPretrainer.initialize
    <mmalign.attention.MultimodalPretrainer.initialize>`).

    Parameters
    ----------
    backbone : MultimodalPretrainer or None
        Architecture and starting weights (a hyper-parameter, never trained).
        None: an unfitted ``MultimodalPretrainer()`` with its defaults (37 word
        ids, ``{"audio": 16, "video": 8}``), built in ``fit``: training from scratch.
    task : {"classification", "regression", "token", "span"}
        ``Y`` in ``fit``: class ids ``(N,)``; scores ``(N,)`` or
        ``(N, num_labels)``; per-step class ids of ``segment`` (a list of
        ``(T_i,)`` arrays, or ``(N, T)`` with :data:`~mmalign.nn.heads.IGNORE_INDEX` where
        there is no label); inclusive ``(start, end)`` step indices of
        ``segment`` ``(N, 2)``.
    num_labels : int
        Classes (classification, token) or outputs (regression); unused for spans.
    segment : str
        Block labelled by the token and span tasks and pooled by
        ``pooling="mean"`` / ``"sum"`` (``"text"`` or a modality name).
    pooling : {"cls", "mean", "sum"}
        Input of the sequence head: ``[CLS]`` (BERT), or the mean / sum of
        ``segment``'s valid steps.
    max_span_length : int
        Longest span :meth:`predict` returns (span task).
    loss : {"ce", "l1", "mse"} or None
        None: cross-entropy for classification / token / span, L1 for regression.
    head_dropout : float in [0, 1)
    freeze_backbone : bool
        Train the head only (a probe of the pretrained features).
    freeze_attention : bool
        Keep the query and key projections of every encoder layer fixed, so
        the attention maps (the word-to-frame alignment learned in
        pretraining) change only through their inputs; the rest trains.
    aligned_inputs : bool
        Give the head, beside each step of ``segment``, the *input* frames
        (patch vectors) of every other modality averaged under the encoder's
        attention from that step (:func:`~mmalign.nn.packing.attention_pooled_frames`): the
        frames each word attends to, as the "aligned" protocol averages each
        word's forced-aligned span. The head then reads a word's frames
        directly through the alignment the encoder learned, instead of only
        through what the encoder's values carry (pretraining objectives that
        cannot predict a cue, e.g. a tone of voice independent of everything
        else, leave it out of the word's vector). Needs ``pooling="mean"`` /
        ``"sum"`` for the sequence tasks.
    align_layer : int or None
        Layer whose attention ``aligned_inputs`` uses (None: mean over layers).
    fusion : {"concat", "gated"}
        How the head joins the aligned frames to each step's vector
        (:class:`~mmalign.nn.heads.StepFeatures`); only with ``aligned_inputs``.
    train : None, dict or TrainConfig
        Training settings (:class:`~mmalign.nn.train.TrainConfig`; see
        :class:`~mmalign.nn.estimator.TorchEstimator`). Defaults
        (:attr:`TRAIN_DEFAULTS`): ``max_epochs=20, batch_size=32, lr=1e-3,
        weight_decay=0.01, optimizer="adamw", grad_clip=1.0, seed=0,
        device="cpu"``; ``seed`` seeds the head and the data order, ``patience``
        needs ``validation`` (lowest validation loss kept). The read-outs run in
        chunks of the backbone's batch size.

    Attributes
    ----------
    module_ : MultimodalFineTunerModule
    history_ : dict
        :func:`mmalign.nn.train.fit` history.
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.attention import MultimodalPretrainer, MultimodalFineTuner
    >>> from mmalign.nn import streams_inputs
    >>> from mmalign.datasets import multimodal_streams
    >>> ds = multimodal_streams(16, seed=0, audio_rate=10.0, video_rate=5.0)
    >>> X = streams_inputs(ds)
    >>> backbone = MultimodalPretrainer(len(ds.vocab), d_model=16, num_heads=2, num_layers=1,
    ...                                 train={"max_epochs": 1, "batch_size": 8}).fit(X)
    >>> clf = MultimodalFineTuner(backbone, task="classification", num_labels=2,
    ...                           train={"max_epochs": 2, "batch_size": 8}).fit(X, (ds.labels > 0).astype(int))
    >>> clf.predict(X).shape, clf.predict_proba(X).shape
    ((16,), (16, 2))
    >>> tagger = MultimodalFineTuner(backbone, task="token", num_labels=3,
    ...                              train={"max_epochs": 1, "batch_size": 8}).fit(X, [p + 1 for p in ds.polarity])
    >>> [len(t) for t in tagger.predict(X)[:3]] == [len(w) for w in ds.words[:3]]
    True
    >>> spans = MultimodalFineTuner(backbone, task="span", segment="audio", max_span_length=20,
    ...                             train={"max_epochs": 1, "batch_size": 8}).fit(
    ...     X, [s[0] - [0, 1] for s in ds.audio_spans])
    >>> spans.predict(X).shape
    (16, 2)
    >>> spans.align({k: v[0] for k, v in X.items()}).shape == (len(ds.audio[0]), len(ds.words[0]))
    True
    """

    TRAIN_DEFAULTS = {"max_epochs": 20, "batch_size": 32, "lr": 1e-3, "weight_decay": 0.01,
                      "optimizer": "adamw", "grad_clip": 1.0, "seed": 0, "device": "cpu"}

    def __init__(self, backbone: MultimodalPretrainer | None = None, task: str = "classification",
                 num_labels: int = 2, segment: str = "text", pooling: str = "cls",
                 max_span_length: int = 30, loss: str | None = None, head_dropout: float = 0.1,
                 freeze_backbone: bool = False, freeze_attention: bool = False, aligned_inputs: bool = False,
                 align_layer: int | None = None, fusion: str = "concat", train: Any = None) -> None:
        self.backbone = backbone
        self.task = task
        self.num_labels = num_labels
        self.segment = segment
        self.pooling = pooling
        self.max_span_length = max_span_length
        self.loss = loss
        self.head_dropout = head_dropout
        self.freeze_backbone = freeze_backbone
        self.freeze_attention = freeze_attention
        self.aligned_inputs = aligned_inputs
        self.align_layer = align_layer
        self.fusion = fusion
        self.train = train

    # ------------------------------------------------------------------ hyper-parameters
    def _backbone(self) -> MultimodalPretrainer:
        """The backbone, or the default one (``MultimodalPretrainer()``) when it is None."""
        return MultimodalPretrainer() if self.backbone is None else self.backbone

    def _loss_name(self) -> str:
        if self.loss is not None:
            return self.loss
        return "l1" if self.task == "regression" else "ce"

    def _check_params(self) -> None:
        if self.backbone is not None and not isinstance(self.backbone, MultimodalPretrainer):
            raise ValueError(f"backbone must be a MultimodalPretrainer or None, got "
                             f"{type(self.backbone).__name__}")
        bb = self._backbone()
        try:
            bb._validate_params()
        except ValueError as err:
            raise ValueError(f"backbone: {err}") from None
        check_choice(self.task, "task", TASKS)
        check_int(self.num_labels, "num_labels", 1)
        if self.task == "classification" and self.num_labels < 2:
            raise ValueError(f"num_labels must be >= 2 for classification, got {self.num_labels}")
        blocks = bb.block_names
        if self.segment not in blocks:
            raise ValueError(f"segment must be one of {list(blocks)}, got {self.segment!r}")
        check_choice(self.pooling, "pooling", POOLINGS)
        check_int(self.max_span_length, "max_span_length", 1)
        if self.loss is not None:
            check_choice(self.loss, "loss", LOSSES)
            want = ("l1", "mse") if self.task == "regression" else ("ce",)
            if self.loss not in want:
                raise ValueError(f"loss {self.loss!r} does not suit task={self.task!r}; use one of {want}")
        check_float(self.head_dropout, "head_dropout", 0.0, 1.0)
        if self.head_dropout >= 1.0:
            raise ValueError(f"head_dropout must be < 1, got {self.head_dropout}")
        for p in ("freeze_backbone", "freeze_attention", "aligned_inputs"):
            check_bool(getattr(self, p), p)
        n_layers = int(bb.num_layers)
        if self.align_layer is not None and (
                isinstance(self.align_layer, (bool, np.bool_)) or not isinstance(self.align_layer, (int, np.integer))
                or not -n_layers <= int(self.align_layer) < n_layers):
            raise ValueError(f"align_layer must be None or an int in [{-n_layers}, {n_layers}), "
                             f"got {self.align_layer!r}")
        check_choice(self.fusion, "fusion", FUSIONS)
        if self.fusion != "concat" and not self.aligned_inputs:
            raise ValueError(f"fusion={self.fusion!r} joins the aligned frames: it needs aligned_inputs=True")
        if self.aligned_inputs:
            if self.task in ("classification", "regression") and self.pooling == "cls":
                raise ValueError("aligned_inputs needs pooling='mean' or 'sum' (per-step features), not 'cls'")
            if not [name for name in bb.modality_names if name != self.segment]:
                raise ValueError(f"aligned_inputs: no modality other than segment={self.segment!r} to pool")

    def _make_module(self) -> MultimodalFineTunerModule:
        bb = self._backbone()
        # the backbone's architecture with its initial weights (built under its own seed on a
        # copy: the backbone object is not touched); fit copies a fitted backbone's weights in
        encoder = type(bb)(**bb.get_params(deep=False)).initialize().module_
        d = int(bb.d_model)
        extra = (sum(w for _, _, w in _pooled_modalities(encoder, self.segment))
                 if self.aligned_inputs else 0)
        with self._seeded():  # the head from the training seed, whatever the encoder drew
            if self.task in ("classification", "regression"):
                head: nn.Module = SequenceClassificationHead(d, int(self.num_labels), self.pooling,
                                                             self.segment, float(self.head_dropout),
                                                             extra_dim=extra, fusion=self.fusion)
            elif self.task == "token":
                head = TokenClassificationHead(d, int(self.num_labels), self.segment,
                                               float(self.head_dropout), extra_dim=extra,
                                               fusion=self.fusion)
            else:
                head = SpanExtractionHead(d, self.segment, extra_dim=extra, fusion=self.fusion)
        return MultimodalFineTunerModule(encoder, head, segment=self.segment,
                                         aligned_inputs=bool(self.aligned_inputs),
                                         align_layer=self.align_layer)

    # ------------------------------------------------------------------ targets
    def _targets(self, y: Any, inp: MultimodalInputs, name: str) -> torch.Tensor:
        n = inp.words.shape[0]
        seg_len = self._segment_lengths(inp)
        if self.task == "classification":
            t = as_tensor(y, name).reshape(-1)
            if t.shape[0] != n:
                raise ValueError(f"{name} must have shape ({n},), got {tuple(as_tensor(y, name).shape)}")
            if t.is_floating_point() and not torch.equal(t, t.round()):
                raise ValueError(f"{name} must hold integer class ids")
            t = t.long()
            if int(t.min()) < 0 or int(t.max()) >= int(self.num_labels):
                raise ValueError(f"{name} must hold class ids in [0, {self.num_labels}), got "
                                 f"{int(t.min())}..{int(t.max())}")
            return t
        if self.task == "regression":
            t = as_float(as_tensor(y, name), torch.float32, name)
            if t.ndim == 1:
                t = t[:, None]
            if t.ndim != 2 or tuple(t.shape) != (n, int(self.num_labels)):
                raise ValueError(f"{name} must have shape ({n},) or ({n}, {self.num_labels}), got "
                                 f"{tuple(as_tensor(y, name).shape)}")
            return t
        if self.task == "token":
            width = int(seg_len.max())
            out = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
            if isinstance(y, (list, tuple)):
                if len(y) != n:
                    raise ValueError(f"{name} must hold {n} label arrays, got {len(y)}")
                for i, row in enumerate(y):
                    r = as_tensor(row, f"{name}[{i}]").reshape(-1)
                    if r.shape[0] != int(seg_len[i]):
                        raise ValueError(f"{name}[{i}] has {r.shape[0]} labels, the {self.segment!r} "
                                         f"block of sample {i} has {int(seg_len[i])} steps")
                    out[i, :r.shape[0]] = r.long()
            else:
                r = as_tensor(y, name)
                if r.ndim != 2 or r.shape[0] != n or r.shape[1] < width:
                    raise ValueError(f"{name} must be a list of per-sample label arrays or ({n}, T >= "
                                     f"{width}) labels, got {tuple(r.shape)}")
                out = r[:, :width].long().clone()
                valid = torch.arange(width)[None] < seg_len[:, None]
                out[~valid] = IGNORE_INDEX
            bad = (out != IGNORE_INDEX) & ((out < 0) | (out >= int(self.num_labels)))
            if bool(bad.any()):
                raise ValueError(f"{name} must hold labels in [0, {self.num_labels}) or {IGNORE_INDEX}")
            return out
        t = as_tensor(np.asarray([np.asarray(v) for v in y]) if isinstance(y, (list, tuple)) else y, name)
        if t.ndim != 2 or tuple(t.shape) != (n, 2):
            raise ValueError(f"{name} must have shape ({n}, 2) (inclusive start, end), got {tuple(t.shape)}")
        t = t.long()
        if bool(((t[:, 0] < 0) | (t[:, 1] < t[:, 0]) | (t[:, 1] >= seg_len)).any()):
            raise ValueError(f"{name}: spans must satisfy 0 <= start <= end < the length of the "
                             f"{self.segment!r} block")
        return t

    def _segment_lengths(self, inp: MultimodalInputs) -> torch.Tensor:
        if self.segment == "text":
            return inp.text_lengths
        return inp.lengths[list(self._backbone().modality_names).index(self.segment)]

    # ------------------------------------------------------------------ training
    def _batch_loss(self, model: nn.Module, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Loss of one mini-batch; ``model`` is ``module_`` or its DDP wrapper."""
        words, tlen, frames, lens, _, _ = self.module_.encoder.unpack(batch[:-1])
        target = batch[-1]
        out, _ = model(words, tlen, frames, lens)
        loss = self._loss_name()
        if self.task == "classification":
            return nn.functional.cross_entropy(out, target)
        if self.task == "regression":
            return (nn.functional.l1_loss if loss == "l1" else nn.functional.mse_loss)(out, target)
        if self.task == "token":
            return token_classification_loss(out, target[:, :out.shape[1]])
        return span_loss(out[0], out[1], target[:, 0], target[:, 1])

    def fit(self, X: Any, Y: Any = None, *, lengths: Any = None,
            validation: tuple | None = None) -> "MultimodalFineTuner":
        """Copy the backbone's weights, add a fresh head, train on labels.

        Parameters
        ----------
        X : dict (see :mod:`mmalign.attention.pretraining`)
            A batch of samples.
        Y : labels of ``task`` (see the class docstring)
            Required.
        lengths : dict or None
        validation : tuple ``(X_val, Y_val)`` or ``(X_val, Y_val, lengths_val)``, or None
            The weights of the epoch with the lowest validation loss are kept.

        Returns
        -------
        self
        """
        self._check_params()
        cfg = self.train_config()
        if Y is None:
            raise ValueError("Y must be given: fine-tuning trains on labels")
        with self._seeded():
            module = self._make_module()
        bb = self._backbone()
        source = getattr(bb, "module_", None)
        if source is not None:  # a fitted (or initialised) backbone: its current weights
            module.encoder.load_state_dict(source.state_dict())
        enc = module.encoder
        inp = enc.prepare_inputs(X, lengths)
        if inp.single:
            raise ValueError("X must be a batch (ragged lists or padded arrays), not one sample")
        data = (*inp.tensors(), self._targets(Y, inp, "Y"))
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise ValueError("validation must be a tuple (X_val, Y_val) or (X_val, Y_val, lengths_val)")
            vin = enc.prepare_inputs(validation[0], validation[2] if len(validation) == 3 else None,
                                     name="validation[0]", lname="validation[2]")
            val = (*vin.tensors(), self._targets(validation[1], vin, "validation[1]"))
        if cfg.patience is not None and val is None:
            raise ValueError("train.patience needs validation data (fit(..., validation=(X_val, Y_val)))")
        self.module_ = module
        for p in enc.parameters():
            p.requires_grad_(not bool(self.freeze_backbone))
        if self.freeze_attention:
            for layer in enc.encoder.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                    for p in proj.parameters():
                        p.requires_grad_(False)
        n = inp.words.shape[0]
        try:
            self._fit_module(self._batch_loss, data, validation=val,
                             config=dataclasses.replace(cfg, batch_size=min(int(cfg.batch_size), n)))
        finally:
            for p in enc.parameters():
                p.requires_grad_(True)
        module.eval()
        return self

    # ------------------------------------------------------------------ inference
    def _step(self) -> int:
        """Read-outs run in chunks of the backbone's batch size."""
        return int(self._backbone().train_config().batch_size)

    @torch.no_grad()
    def _outputs(self, X: Any, lengths: Any) -> tuple[list, MultimodalInputs, list]:
        net = self.module_
        inp = net.encoder.prepare_inputs(X, lengths)
        outs, seg_lens = [], []
        was = net.training
        net.eval()
        try:
            tensors, step = inp.tensors(), self._step()
            for i in range(0, inp.words.shape[0], step):
                words, tlen, frames, lens, _, _ = net.encoder.unpack([t[i:i + step] for t in tensors])
                out, enc = net(words, tlen, frames, lens)
                outs.append(out)
                seg_lens.append(enc.lengths[self.segment])
        finally:
            net.train(was)
        return outs, inp, seg_lens

    def decision_function(self, X: Any, lengths: Any = None) -> np.ndarray | list:
        """Raw head outputs: logits / scores ``(N, k)``, a list of per-sample ``(T_i, k)`` logits
        (token task), or ``(N, 2, T)`` start / end logits padded with ``-inf`` (span task)."""
        self._check_fitted()
        outs, inp, seg_lens = self._outputs(X, lengths)
        if self.task in ("classification", "regression"):
            v = torch.cat(outs).cpu().numpy()
        elif self.task == "token":
            v = [o[i, :int(ln[i])].cpu().numpy() for o, ln in zip(outs, seg_lens) for i in range(o.shape[0])]
        else:
            width = max(o[0].shape[1] for o in outs)
            pad = lambda t: nn.functional.pad(t, (0, width - t.shape[1]), value=float("-inf"))  # noqa: E731
            v = torch.cat([torch.stack([pad(o[0]), pad(o[1])], dim=1) for o in outs]).cpu().numpy()
        return v[0] if inp.single else v

    def predict(self, X: Any, lengths: Any = None) -> Any:
        """Task output.

        Returns
        -------
        classification : np.ndarray [shape=(N,)] int class ids
        regression : np.ndarray [shape=(N,) or (N, num_labels)]
        token : list of np.ndarray [shape=(T_i,)] int labels of ``segment``'s steps
        span : np.ndarray [shape=(N, 2)] int, inclusive ``(start, end)``
        (one sample: the first entry alone)
        """
        self._check_fitted()
        outs, inp, seg_lens = self._outputs(X, lengths)
        if self.task == "classification":
            v = torch.cat(outs).argmax(1).cpu().numpy()
        elif self.task == "regression":
            v = torch.cat(outs).cpu().numpy()
            if int(self.num_labels) == 1:
                v = v[:, 0]
        elif self.task == "token":
            v = [o[i, :int(ln[i])].argmax(-1).cpu().numpy() for o, ln in zip(outs, seg_lens)
                 for i in range(o.shape[0])]
        else:
            v = torch.cat([decode_spans(o[0], o[1], ln, int(self.max_span_length))
                           for o, ln in zip(outs, seg_lens)]).cpu().numpy()
        return v[0] if inp.single else v

    def predict_proba(self, X: Any, lengths: Any = None) -> np.ndarray:
        """Class probabilities ``(N, num_labels)`` (classification only)."""
        if self.task != "classification":
            raise ValueError(f"predict_proba needs task='classification', this model has task={self.task!r}")
        logits = np.asarray(self.decision_function(X, lengths), dtype=np.float64)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def _encoder_view(self) -> MultimodalPretrainer:
        """A MultimodalPretrainer (the backbone's hyper-parameters) whose ``module_`` IS the
        fine-tuned encoder (shared, not copied): its read-outs are this model's."""
        self._check_fitted()
        bb = self._backbone()
        view = type(bb)(**bb.get_params(deep=False))
        view.module_ = self.module_.encoder
        return view

    def align(self, x: Any, y: Any = None, *, target: str = "text", source: str | None = None,
              renormalize: bool = True) -> Alignment:
        """Joint attention of the fine-tuned encoder between two blocks of ONE sample.

        As :meth:`MultimodalPretrainer.align <mmalign.attention.MultimodalPretrainer.align>`:
        side x is the ``source`` block, side y the ``target`` block, weights
        ``(layers, heads, T_source, T_target)``, ``distribution_over="x"``.
        """
        return self._encoder_view().align(x, y, target=target, source=source, renormalize=renormalize)

    def align_batch(self, X: Any, Y: Any = None, *, target: str = "text", source: str | None = None,
                    lengths: Any = None, renormalize: bool = True) -> list[Alignment]:
        """:meth:`align` for every sample of a batch (see
        :meth:`MultimodalPretrainer.align_batch <mmalign.attention.MultimodalPretrainer.align_batch>`)."""
        return self._encoder_view().align_batch(X, Y, target=target, source=source, lengths=lengths,
                                                renormalize=renormalize)


def finetune(backbone: MultimodalPretrainer | None, X: Any, Y: Any, *, lengths: Any = None,
             validation: tuple | None = None, **params: Any) -> MultimodalFineTuner:
    """Fine-tune a copy of ``backbone`` on labels: ``MultimodalFineTuner(backbone, **params).fit(...)``.

    Examples
    --------
    >>> from mmalign.attention import MultimodalPretrainer
    >>> from mmalign.nn import streams_inputs
    >>> from mmalign.datasets import multimodal_streams
    >>> ds = multimodal_streams(8, seed=0, audio_rate=10.0, video_rate=5.0)
    >>> backbone = MultimodalPretrainer(len(ds.vocab), d_model=8, num_heads=2, num_layers=1)
    >>> model = finetune(backbone, streams_inputs(ds), ds.labels, task="regression", num_labels=1,
    ...                  train={"max_epochs": 1, "batch_size": 4})
    >>> model.predict(streams_inputs(ds)).shape
    (8,)
    """
    return MultimodalFineTuner(backbone, **params).fit(X, Y, lengths=lengths, validation=validation)
