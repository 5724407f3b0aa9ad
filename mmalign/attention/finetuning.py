"""Fine-tuning a (pre)trained :class:`~mmalign.attention.MultimodalPretrainer` on labels.

:class:`MultimodalFineTuner` is the entry point (an
:class:`~mmalign.aligner.Aligner` and ``torch.nn.Module``): it copies the
weights of a backbone ``MultimodalPretrainer`` (the backbone itself is never
modified; an *unfitted* backbone gives training from scratch with the same
architecture), adds the head of its ``task`` and trains both with
:func:`mmalign.nn.train.fit`. :func:`finetune` builds and fits one in a call.
Inputs ``X`` / ``lengths`` are those of
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
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..aligner import Aligner
from ..alignment import Alignment
from ..nn.heads import (FUSIONS, IGNORE_INDEX, POOLINGS, SequenceClassificationHead, SpanExtractionHead,
                        TokenClassificationHead, decode_spans, span_loss, token_classification_loss)
from ..nn.packing import attention_pooled_frames
from ..nn.train import check_fit_params
from ..utils.tensors import as_float, as_tensor
from ..utils.validation import check_bool, check_choice, check_fitted, check_float, check_int
from .pretraining import MultimodalPretrainer, _Inputs

__all__ = ["MultimodalFineTuner", "finetune"]

TASKS = ("classification", "regression", "token", "span")
LOSSES = ("ce", "l1", "mse")


# =========================================================================== fine-tuner

class MultimodalFineTuner(Aligner, nn.Module):
    """A :class:`~mmalign.attention.MultimodalPretrainer`'s encoder plus a task head, trained on labels.

    ``fit`` copies the backbone's current weights into this model's own
    encoder (the backbone is left untouched), initialises the head from
    ``seed`` and trains both (or the head alone with ``freeze_backbone``).
    Fine-tuning an unfitted backbone is training the same architecture from
    scratch.

    Parameters
    ----------
    backbone : MultimodalPretrainer
        Architecture and starting weights.
    task : {"classification", "regression", "token", "span"}
        ``y`` in ``fit``: class ids ``(N,)``; scores ``(N,)`` or
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
    max_epochs, batch_size, lr, weight_decay, grad_clip, patience :
        Passed to :class:`mmalign.nn.train.TrainConfig` (AdamW); ``patience``
        needs ``validation`` (lowest validation loss kept).
    seed : int
    device : str

    Attributes
    ----------
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
    ...                                 max_epochs=1, batch_size=8).fit(X)
    >>> clf = MultimodalFineTuner(backbone, task="classification", num_labels=2, max_epochs=2,
    ...                           batch_size=8).fit(X, (ds.labels > 0).astype(int))
    >>> clf.predict(X).shape, clf.predict_proba(X).shape
    ((16,), (16, 2))
    >>> tagger = MultimodalFineTuner(backbone, task="token", num_labels=3, max_epochs=1,
    ...                              batch_size=8).fit(X, [p + 1 for p in ds.polarity])
    >>> [len(t) for t in tagger.predict(X)[:3]] == [len(w) for w in ds.words[:3]]
    True
    >>> spans = MultimodalFineTuner(backbone, task="span", segment="audio", max_span_length=20,
    ...                             max_epochs=1, batch_size=8).fit(X, [s[0] - [0, 1] for s in ds.audio_spans])
    >>> spans.predict(X).shape
    (16, 2)
    """

    def __init__(self, backbone: MultimodalPretrainer | None = None, task: str = "classification",
                 num_labels: int = 2, segment: str = "text", pooling: str = "cls",
                 max_span_length: int = 30, loss: str | None = None, head_dropout: float = 0.1,
                 freeze_backbone: bool = False, freeze_attention: bool = False, aligned_inputs: bool = False,
                 align_layer: int | None = None, fusion: str = "concat", max_epochs: int = 20, batch_size: int = 32,
                 lr: float = 1e-3, weight_decay: float = 0.01, grad_clip: float | None = 1.0,
                 patience: int | None = None, seed: int = 0, device: str = "cpu") -> None:
        nn.Module.__init__(self)
        # the backbone is a hyper-parameter, not a submodule: its weights are copied, never trained
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
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.grad_clip = grad_clip
        self.patience = patience
        self.seed = seed
        self.device = device
        self._init_model()

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "backbone":  # never registered as a submodule (set_params goes through here)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # ------------------------------------------------------------------ construction
    def _loss_name(self) -> str:
        if self.loss is not None:
            return self.loss
        return "l1" if self.task == "regression" else "ce"

    def _check_params(self) -> None:
        if not isinstance(self.backbone, MultimodalPretrainer):
            raise ValueError(f"backbone must be a MultimodalPretrainer, got {type(self.backbone).__name__}")
        check_choice(self.task, "task", TASKS)
        check_int(self.num_labels, "num_labels", 1)
        if self.task == "classification" and self.num_labels < 2:
            raise ValueError(f"num_labels must be >= 2 for classification, got {self.num_labels}")
        if self.segment not in self.backbone.block_names:
            raise ValueError(f"segment must be one of {list(self.backbone.block_names)}, got {self.segment!r}")
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
        n_layers = int(self.backbone.num_layers)
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
            if not self._pooled_modalities():
                raise ValueError(f"aligned_inputs: no modality other than segment={self.segment!r} to pool")
        check_fit_params(self)

    def _pooled_modalities(self) -> list[tuple[int, str, int]]:
        """(index, name, width) of the modalities ``aligned_inputs`` pools."""
        out = []
        for m, (name, kind, spec) in enumerate(self.backbone._specs):
            if name != self.segment:
                width = int(spec) if kind == "frames" else int(spec[0]) * int(self.backbone.patch_size) ** 2
                out.append((m, name, width))
        return out

    def _init_model(self) -> None:
        self._check_params()
        bb = self.backbone
        self.encoder = type(bb)(**bb.get_params(deep=False))
        d = int(bb.d_model)
        extra = sum(w for _, _, w in self._pooled_modalities()) if self.aligned_inputs else 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            if self.task in ("classification", "regression"):
                self.head: nn.Module = SequenceClassificationHead(d, int(self.num_labels), self.pooling,
                                                                  self.segment, float(self.head_dropout),
                                                                  extra_dim=extra, fusion=self.fusion)
            elif self.task == "token":
                self.head = TokenClassificationHead(d, int(self.num_labels), self.segment,
                                                    float(self.head_dropout), extra_dim=extra,
                                                    fusion=self.fusion)
            else:
                self.head = SpanExtractionHead(d, self.segment, extra_dim=extra, fusion=self.fusion)

    def _model_device(self) -> torch.device:
        return self.encoder._model_device()

    # ------------------------------------------------------------------ targets
    def _targets(self, y: Any, inp: _Inputs, name: str) -> torch.Tensor:
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

    def _segment_lengths(self, inp: _Inputs) -> torch.Tensor:
        if self.segment == "text":
            return inp.text_lengths
        return inp.lengths[list(self.backbone.modality_names).index(self.segment)]

    # ------------------------------------------------------------------ forward
    def _head_outputs(self, words: torch.Tensor, tlen: torch.Tensor, frames: list, lens: list) -> tuple:
        """Encode one batch and apply the head (with the attention-pooled frames when asked for)."""
        enc = self.encoder._encode(words, tlen, frames, lens, need_weights=bool(self.aligned_inputs))
        if not self.aligned_inputs:
            return self.head(enc), enc
        pooled = {}
        dev = enc.hidden.device
        for m, name, _ in self._pooled_modalities():
            x = frames[m].to(dev).float()
            if x.ndim == 4:   # an image modality: its patch vectors
                x = self.encoder.embedders[name].patchify(x)
            pooled[name] = x
        extra = attention_pooled_frames(enc, pooled, target=self.segment,
                                        layer=None if self.align_layer is None else int(self.align_layer))
        return self.head(enc, extra), enc

    def _batch_loss(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        words, tlen, frames, lens, _, _ = self.encoder._unpack(batch[:-1])
        target = batch[-1]
        out, _ = self._head_outputs(words, tlen, frames, lens)
        loss = self._loss_name()
        if self.task == "classification":
            return nn.functional.cross_entropy(out, target)
        if self.task == "regression":
            return (nn.functional.l1_loss if loss == "l1" else nn.functional.mse_loss)(out, target)
        if self.task == "token":
            return token_classification_loss(out, target[:, :out.shape[1]])
        return span_loss(out[0], out[1], target[:, 0], target[:, 1])

    def forward(self, X: Any, lengths: Any = None) -> Any:
        """Head output of a batch: logits / scores ``(B, k)``; per-step logits ``(B, T, k)``;
        or ``(start_logits, end_logits)`` ``(B, T)`` each."""
        inp = self.encoder._prepare(X, lengths)
        words, tlen, frames, lens, _, _ = self.encoder._unpack(inp.tensors())
        return self._head_outputs(words, tlen, frames, lens)[0]

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any = None, lengths: Any = None, *,
            validation: tuple | None = None) -> "MultimodalFineTuner":
        """Copy the backbone's weights, add a fresh head, train on labels.

        Parameters
        ----------
        X : dict (see :class:`~mmalign.attention.MultimodalPretrainer`)
        y : labels of ``task`` (see the class docstring)
        lengths : dict or None
        validation : tuple ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``, or None
            The weights of the epoch with the lowest validation loss are kept.

        Returns
        -------
        self
        """
        from ..nn.train import TrainConfig, fit as train_fit

        self._init_model()
        self.encoder.load_state_dict(self.backbone.state_dict())
        if y is None:
            raise ValueError("y must be given: fine-tuning trains on labels")
        inp = self.encoder._prepare(X, lengths)
        if inp.single:
            raise ValueError("X must be a batch (ragged lists or padded arrays), not one sample")
        data = (*inp.tensors(), self._targets(y, inp, "y"))
        val = None
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
                raise ValueError("validation must be a tuple (X_val, y_val) or (X_val, y_val, lengths_val)")
            vin = self.encoder._prepare(validation[0], validation[2] if len(validation) == 3 else None,
                                        name="validation[0]", lname="validation[2]")
            val = (*vin.tensors(), self._targets(validation[1], vin, "validation[1]"))
        if self.patience is not None and val is None:
            raise ValueError("patience needs validation data (fit(..., validation=(X_val, y_val)))")
        for p in self.encoder.parameters():
            p.requires_grad_(not bool(self.freeze_backbone))
        if self.freeze_attention:
            for layer in self.encoder.encoder.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                    for p in proj.parameters():
                        p.requires_grad_(False)
        n = inp.words.shape[0]
        config = TrainConfig(max_epochs=int(self.max_epochs), batch_size=min(int(self.batch_size), n),
                             lr=float(self.lr), weight_decay=float(self.weight_decay), optimizer="adamw",
                             grad_clip=self.grad_clip, seed=int(self.seed), device=str(self.device),
                             progress=False, patience=self.patience)
        history = train_fit(self, lambda model, batch: model._batch_loss(batch), data, config=config,
                            val_data=val)
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        self.history_ = history.as_dict()
        self.device_ = self._model_device()
        self.eval()
        return self

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _outputs(self, X: Any, lengths: Any) -> tuple[list, _Inputs, list]:
        inp = self.encoder._prepare(X, lengths)
        outs, seg_lens = [], []
        was = self.training
        self.eval()
        try:
            tensors, step = inp.tensors(), int(self.encoder.batch_size)
            for i in range(0, inp.words.shape[0], step):
                words, tlen, frames, lens, _, _ = self.encoder._unpack([t[i:i + step] for t in tensors])
                out, enc = self._head_outputs(words, tlen, frames, lens)
                outs.append(out)
                seg_lens.append(enc.lengths[self.segment])
        finally:
            self.train(was)
        return outs, inp, seg_lens

    def decision_function(self, X: Any, lengths: Any = None) -> np.ndarray | list:
        """Raw head outputs: logits / scores ``(N, k)``, a list of per-sample ``(T_i, k)`` logits
        (token task), or ``(N, 2, T)`` start / end logits padded with ``-inf`` (span task)."""
        check_fitted(self, "history_")
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
        check_fitted(self, "history_")
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

    def align(self, x: Any, y: Any = None, *, target: str = "text", source: str | None = None,
              lengths: Any = None, renormalize: bool = True) -> Alignment | list[Alignment]:
        """Joint attention of the fine-tuned encoder (see :meth:`MultimodalPretrainer.align`)."""
        return self.encoder.align(x, y, target=target, source=source, lengths=lengths,
                                  renormalize=renormalize)


def finetune(backbone: MultimodalPretrainer, X: Any, y: Any, *, lengths: Any = None,
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
    ...                  max_epochs=1, batch_size=4)
    >>> model.predict(streams_inputs(ds)).shape
    (8,)
    """
    return MultimodalFineTuner(backbone, **params).fit(X, y, lengths=lengths, validation=validation)

