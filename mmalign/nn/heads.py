"""Task heads on a joint encoding (BERT style), their losses and span decoding.

- :class:`SequenceClassificationHead` -- one prediction per sample from the
  ``[CLS]`` vector (or the mean / sum over one block's valid steps) through a
  ``tanh`` pooler: classes or regression scores;
- :class:`TokenClassificationHead` -- one label per step of a block,
  scored by :func:`token_classification_loss` (padding and
  :data:`IGNORE_INDEX` skipped);
- :class:`SpanExtractionHead` -- start and end logits over a block's steps,
  scored by :func:`span_loss` and read by :func:`decode_spans` (inclusive
  ``[start, end]`` step indices of the block).

Each head reads a :class:`~mmalign.nn.packing.JointEncoding`; per-step extra
features (e.g. :func:`~mmalign.nn.packing.attention_pooled_frames`) join the
hidden vectors through :class:`StepFeatures`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..utils.validation import check_choice, check_int
from .packing import JointEncoding

__all__ = [
    "IGNORE_INDEX",
    "POOLINGS",
    "FUSIONS",
    "StepFeatures",
    "SequenceClassificationHead",
    "TokenClassificationHead",
    "SpanExtractionHead",
    "span_loss",
    "decode_spans",
    "token_classification_loss",
]

IGNORE_INDEX = -100
"""Token label that the per-token loss skips (as in torch's ``cross_entropy``)."""

POOLINGS = ("cls", "mean", "sum")
FUSIONS = ("concat", "gated")


def _check_extra(extra: torch.Tensor | None, extra_dim: int) -> None:
    if extra is None:
        if extra_dim:
            raise ValueError(f"extra must be given: this head was built with extra_dim={extra_dim}")
        return
    if not isinstance(extra, torch.Tensor) or extra.ndim != 3 or extra.shape[-1] != extra_dim:
        shape = tuple(extra.shape) if isinstance(extra, torch.Tensor) else type(extra).__name__
        raise ValueError(f"extra must be a (B, T, {extra_dim}) tensor, got {shape}")


class StepFeatures(nn.Module):
    """A block's hidden vectors, fused with per-step ``extra`` features when the head has them.

    ``fusion="concat"``: ``[h; x]``; ``"gated"``: ``[h; x; (W h) * x]`` -- a
    multiplicative interaction (each step's own vector scales each of its
    extra features), which a label that multiplies a word's meaning with its
    frames (e.g. a word's valence with its tone of voice) needs and a
    one-layer ``tanh`` pooler over ``[h; x]`` only approximates.

    Parameters
    ----------
    d_model : int
    extra_dim : int >= 0
        Width of the extra features (0: none; the output is ``h``).
    fusion : {"concat", "gated"}

    Attributes
    ----------
    out_dim : int
        ``d_model``, ``d_model + extra_dim`` or ``d_model + 2 * extra_dim``.
    """

    def __init__(self, d_model: int, extra_dim: int = 0, fusion: str = "concat") -> None:
        super().__init__()
        self.extra_dim = check_int(extra_dim, "extra_dim", 0)
        self.fusion = check_choice(fusion, "fusion", FUSIONS)
        d = int(d_model)
        self.gate = nn.Linear(d, self.extra_dim) if self.extra_dim and fusion == "gated" else None
        self.out_dim = d + self.extra_dim * (2 if self.gate is not None else 1)

    def forward(self, enc: JointEncoding, segment: str, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T_segment, out_dim)``."""
        _check_extra(extra, self.extra_dim)
        h = enc.segment(segment)
        if extra is None:
            return h
        if extra.shape[:2] != h.shape[:2]:
            raise ValueError(f"extra must have shape {tuple(h.shape[:2])} + ({self.extra_dim},), got "
                             f"{tuple(extra.shape)}")
        x = extra.to(h.dtype)
        parts = [h, x] if self.gate is None else [h, x, self.gate(h) * x]
        return torch.cat(parts, dim=-1)


def _pooled_features(enc: JointEncoding, pooler: nn.Module, pooling: str, segment: str,
                     steps: StepFeatures, extra: torch.Tensor | None = None) -> torch.Tensor:
    """``tanh(pooler(.))`` of ``[CLS]``, or of every valid step of ``segment`` then mean / sum."""
    if pooling == "cls":
        _check_extra(extra, 0)
        return torch.tanh(pooler(enc.cls))
    h = torch.tanh(pooler(steps(enc, segment, extra)))
    valid = (~enc.segment_mask(segment)).to(h.dtype)[..., None]
    total = (h * valid).sum(1)
    if pooling == "sum":
        return total
    return total / valid.sum(1).clamp(min=1.0)


class SequenceClassificationHead(nn.Module):
    """Per-sample output from ``[CLS]`` (or a pooled block): ``Linear(Dropout(tanh(Linear(h))))``.

    With ``pooling="cls"`` the ``tanh`` pooler (BERT's) reads the ``[CLS]``
    vector; with ``"mean"`` / ``"sum"`` it is applied to every valid step of
    ``segment`` and the results are averaged / summed (a per-step feature map
    pooled afterwards, which suits labels that add up per-step evidence).

    Parameters
    ----------
    d_model : int
    num_outputs : int
        Classes (logits) or regression outputs.
    pooling : {"cls", "mean", "sum"}
        The ``[CLS]`` vector, or the mean / sum over ``segment``'s valid steps.
    segment : str
        Block pooled by ``"mean"`` / ``"sum"``.
    dropout : float in [0, 1)
    extra_dim : int >= 0
        Width of per-step features fused with ``segment``'s hidden vectors
        before the pooler (``extra`` in ``forward``; e.g.
        :func:`~mmalign.nn.packing.attention_pooled_frames`); needs ``"mean"`` / ``"sum"``.
    fusion : {"concat", "gated"}
        How the extra features join the hidden vectors (:class:`StepFeatures`).

    Examples
    --------
    >>> import torch
    >>> from mmalign.nn import JointEncoding
    >>> enc = JointEncoding(torch.randn(2, 6, 8), torch.zeros(2, 6, dtype=torch.bool),
    ...                     {"text": (1, 4)}, {"text": torch.tensor([3, 3])})
    >>> SequenceClassificationHead(8, 3)(enc).shape
    torch.Size([2, 3])
    """

    def __init__(self, d_model: int, num_outputs: int, pooling: str = "cls", segment: str = "text",
                 dropout: float = 0.1, extra_dim: int = 0, fusion: str = "concat") -> None:
        super().__init__()
        check_choice(pooling, "pooling", POOLINGS)
        extra_dim = check_int(extra_dim, "extra_dim", 0)
        if extra_dim and pooling == "cls":
            raise ValueError("extra_dim > 0 needs pooling='mean' or 'sum', not 'cls'")
        self.pooling, self.segment = pooling, segment
        self.steps = StepFeatures(d_model, extra_dim, fusion)
        self.pooler = nn.Linear(self.steps.out_dim, int(d_model))
        self.drop = nn.Dropout(float(dropout))
        self.out = nn.Linear(int(d_model), check_int(num_outputs, "num_outputs", 1))

    def forward(self, enc: JointEncoding, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, num_outputs)`` logits or scores; ``extra`` ``(B, T_segment, extra_dim)`` or None."""
        return self.out(self.drop(_pooled_features(enc, self.pooler, self.pooling, self.segment,
                                                   self.steps, extra)))


class TokenClassificationHead(nn.Module):
    """Per-step labels of one block: ``Linear(Dropout(h))``.

    Parameters
    ----------
    d_model, num_labels : int
    segment : str
        The block whose steps are labelled (``"text"``: the words).
    dropout : float
    extra_dim : int >= 0
        Width of per-step features fused with the hidden vectors (``extra`` in ``forward``).
    fusion : {"concat", "gated"}
        See :class:`StepFeatures`.

    Examples
    --------
    >>> import torch
    >>> from mmalign.nn import JointEncoding
    >>> enc = JointEncoding(torch.randn(2, 6, 8), torch.zeros(2, 6, dtype=torch.bool),
    ...                     {"text": (1, 4)}, {"text": torch.tensor([3, 2])})
    >>> TokenClassificationHead(8, 5)(enc).shape
    torch.Size([2, 3, 5])
    """

    def __init__(self, d_model: int, num_labels: int, segment: str = "text", dropout: float = 0.1,
                 extra_dim: int = 0, fusion: str = "concat") -> None:
        super().__init__()
        self.segment = segment
        self.steps = StepFeatures(d_model, extra_dim, fusion)
        self.drop = nn.Dropout(float(dropout))
        self.out = nn.Linear(self.steps.out_dim, check_int(num_labels, "num_labels", 1))

    def forward(self, enc: JointEncoding, extra: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, T_segment, num_labels)`` logits; ``extra`` ``(B, T_segment, extra_dim)`` or None."""
        return self.out(self.drop(self.steps(enc, self.segment, extra)))


class SpanExtractionHead(nn.Module):
    """Start and end logits over one block's steps (``Linear(d_model, 2)``); padded steps get ``-inf``.

    Parameters
    ----------
    d_model : int
    segment : str
    extra_dim : int >= 0
        Width of per-step features fused with the hidden vectors (``extra`` in ``forward``).
    fusion : {"concat", "gated"}
        See :class:`StepFeatures`.

    Examples
    --------
    >>> import torch
    >>> from mmalign.nn import JointEncoding
    >>> pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    >>> enc = JointEncoding(torch.randn(2, 6, 8), pad, {"text": (1, 5)}, {"text": torch.tensor([4, 3])})
    >>> start, end = SpanExtractionHead(8)(enc)
    >>> start.shape, bool(torch.isinf(start[1, 3]))
    (torch.Size([2, 4]), True)
    """

    def __init__(self, d_model: int, segment: str = "text", extra_dim: int = 0, fusion: str = "concat") -> None:
        super().__init__()
        self.segment = segment
        self.steps = StepFeatures(d_model, extra_dim, fusion)
        self.out = nn.Linear(self.steps.out_dim, 2)

    def forward(self, enc: JointEncoding, extra: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``start_logits, end_logits``, each ``(B, T_segment)``; ``extra`` as in the other heads."""
        logits = self.out(self.steps(enc, self.segment, extra))
        pad = enc.segment_mask(self.segment)
        logits = logits.masked_fill(pad[..., None], float("-inf"))
        return logits[..., 0], logits[..., 1]


def span_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, starts: torch.Tensor,
              ends: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the true start plus cross-entropy of the true end (means over the batch).

    Parameters
    ----------
    start_logits, end_logits : torch.Tensor [shape=(B, T)]
        ``-inf`` at padded steps is fine.
    starts, ends : torch.LongTensor [shape=(B,)]
        Inclusive span bounds.

    Returns
    -------
    loss : torch.Tensor [shape=()]

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(1, 4)
    >>> round(float(span_loss(z, z, torch.tensor([1]), torch.tensor([2]))), 4)  # 2 log 4
    2.7726
    """
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape:
        raise ValueError(f"start_logits and end_logits must both be (B, T), got "
                         f"{tuple(start_logits.shape)} and {tuple(end_logits.shape)}")
    b = start_logits.shape[0]
    if tuple(starts.shape) != (b,) or tuple(ends.shape) != (b,):
        raise ValueError(f"starts and ends must have shape ({b},)")
    ce = nn.functional.cross_entropy
    return ce(start_logits, starts.long()) + ce(end_logits, ends.long())


def decode_spans(start_logits: torch.Tensor, end_logits: torch.Tensor,
                 lengths: torch.Tensor | None = None, max_length: int = 30) -> torch.Tensor:
    """Best span per sample: ``argmax start[s] + end[e]`` with ``s <= e < s + max_length``.

    Parameters
    ----------
    start_logits, end_logits : torch.Tensor [shape=(B, T)]
    lengths : torch.LongTensor [shape=(B,)] or None
        Valid steps (the span lies inside them); None: all ``T``.
    max_length : int >= 1
        Longest span in steps.

    Returns
    -------
    spans : torch.LongTensor [shape=(B, 2)]
        Inclusive ``(start, end)``.

    Examples
    --------
    >>> import torch
    >>> start = torch.tensor([[0.0, 5.0, 0.0, 0.0, 1.0]])
    >>> end = torch.tensor([[0.0, 0.0, 0.5, 1.0, 0.0]])
    >>> decode_spans(start, end, max_length=4).tolist()   # ends after its start
    [[1, 3]]
    >>> decode_spans(start, end, max_length=2).tolist()   # at most 2 steps long
    [[1, 2]]
    """
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape:
        raise ValueError(f"start_logits and end_logits must both be (B, T), got "
                         f"{tuple(start_logits.shape)} and {tuple(end_logits.shape)}")
    max_length = check_int(max_length, "max_length", 1)
    b, t = start_logits.shape
    dev = start_logits.device
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long, device=dev)
    lengths = torch.as_tensor(lengths, device=dev).long()
    if tuple(lengths.shape) != (b,) or (b and (int(lengths.min()) < 1 or int(lengths.max()) > t)):
        raise ValueError(f"lengths must have shape ({b},) with values in [1, {t}]")
    idx = torch.arange(t, device=dev)
    valid = idx[None] < lengths[:, None]
    neg = torch.finfo(torch.float32).min / 4
    s = start_logits.float().masked_fill(~valid, neg)
    e = end_logits.float().masked_fill(~valid, neg)
    scores = s[:, :, None] + e[:, None, :]                      # (B, T_start, T_end)
    ok = (idx[None, :] >= idx[:, None]) & (idx[None, :] < idx[:, None] + max_length)
    scores = scores.masked_fill(~ok[None], float("-inf"))
    flat = scores.reshape(b, -1).argmax(1)
    return torch.stack([flat // t, flat % t], dim=1)


def token_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over steps whose label is not :data:`IGNORE_INDEX` (padding included).

    Parameters
    ----------
    logits : torch.Tensor [shape=(B, T, C)]
    labels : torch.LongTensor [shape=(B, T)]

    Returns
    -------
    loss : torch.Tensor [shape=()]
        0 (with a gradient path) when every label is ignored.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 2)
    >>> round(float(token_classification_loss(logits, torch.tensor([[0, -100, 1]]))), 4)
    0.6931
    """
    if logits.ndim != 3 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"logits (B, T, C) and labels (B, T) disagree: {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}")
    keep = labels != IGNORE_INDEX
    if not bool(keep.any()):
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits[keep], labels[keep].long())
