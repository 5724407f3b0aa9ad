"""Single-stream (early-fusion) packing of multimodal samples for a joint encoder.

One sample becomes one sequence ``[CLS] text [SEP] | modality 1 [SEP] | ...``
(:class:`~mmalign.attention.MultimodalPretrainer` builds it):

- :func:`streams_inputs` -- the input dict ``{"text": ..., "audio": ...,
  "video": ...}`` of :func:`~mmalign.datasets.multimodal_streams` data;
- :class:`JointEncoding` -- the encoded sequence with the columns of each
  block (its *segments*), their padding and the joint attention;
- :func:`attention_pooled_frames` -- each word's input frames averaged under
  the joint attention it pays them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import torch

__all__ = ["JointEncoding", "streams_inputs", "attention_pooled_frames"]


@dataclasses.dataclass
class JointEncoding:
    """Output of :meth:`~mmalign.attention.MultimodalPretrainerModule.forward`
    (and :meth:`~mmalign.attention.MultimodalPretrainer.encode`).

    Attributes
    ----------
    hidden : torch.Tensor [shape=(B, L, d_model)]
        Encoder output over the whole sequence (``[CLS]`` at column 0).
    padding_mask : torch.BoolTensor [shape=(B, L)]
        ``True`` at padded columns.
    segments : dict name -> (start, stop)
        Columns of each block's steps (``"text"`` first; ``[CLS]`` / ``[SEP]`` excluded).
    lengths : dict name -> torch.LongTensor [shape=(B,)]
        Valid steps per block.
    weights : list of torch.Tensor [shape=(B, heads, L, L)] or None
        Joint attention per layer (when asked for).
    head_outputs : dict name -> torch.Tensor
        Outputs of the objective heads the encoder was asked to apply
        (:meth:`~mmalign.attention.MultimodalPretrainerModule.forward`'s ``heads``).
    """

    hidden: torch.Tensor
    padding_mask: torch.Tensor
    segments: dict
    lengths: dict
    weights: list | None = None
    head_outputs: dict = dataclasses.field(default_factory=dict)

    @property
    def cls(self) -> torch.Tensor:
        """``[CLS]`` vectors ``(B, d_model)``."""
        return self.hidden[:, 0]

    def segment(self, name: str) -> torch.Tensor:
        """Hidden vectors of one block's steps, ``(B, T_name, d_model)``."""
        if name not in self.segments:
            raise ValueError(f"name must be one of {list(self.segments)}, got {name!r}")
        a, b = self.segments[name]
        return self.hidden[:, a:b]

    def segment_mask(self, name: str) -> torch.Tensor:
        """Padding mask of one block's steps, ``(B, T_name)`` (``True`` = padded)."""
        a, b = self.segments[name]
        return self.padding_mask[:, a:b]


def streams_inputs(ds: Any, indices: Sequence[int] | None = None) -> dict:
    """The ``X`` dict of :func:`~mmalign.datasets.multimodal_streams` data (ragged lists).

    Parameters
    ----------
    ds : MultimodalStreams
    indices : sequence of int or None
        A subset of the samples (all when None).

    Returns
    -------
    X : dict with ``"text"`` (word ids), ``"audio"``, ``"video"`` lists (views, not copies)

    Examples
    --------
    >>> from mmalign.datasets import multimodal_streams
    >>> X = streams_inputs(multimodal_streams(3, seed=0), [0, 2])
    >>> sorted(X), len(X["text"])
    (['audio', 'text', 'video'], 2)
    """
    for attr in ("words", "audio", "video"):
        if not hasattr(ds, attr):
            raise ValueError(f"ds must be a MultimodalStreams (no attribute {attr!r})")
    idx = range(len(ds.words)) if indices is None else [int(i) for i in indices]
    return {"text": [ds.words[i] for i in idx], "audio": [ds.audio[i] for i in idx],
            "video": [ds.video[i] for i in idx]}


def attention_pooled_frames(enc: JointEncoding, frames: Mapping[str, torch.Tensor], *,
                            target: str = "text", layer: int | None = None) -> torch.Tensor:
    """Each step of ``target`` gets every modality's input frames averaged under its joint attention.

    The attention of ``layer`` (or the mean over layers), averaged over heads,
    from ``target``'s steps (rows) over one modality's steps (columns) is
    renormalised over that modality's valid steps and applied to the
    modality's *input* frames: the frames each word attends to, averaged. With
    the word-to-frame alignment a pretrained encoder learned, these are the
    word-aligned features of the "aligned" protocol of multimodal sentiment
    data (frames averaged over each word's forced-aligned span), with the
    encoder's attention as the aligner.

    Parameters
    ----------
    enc : JointEncoding
        Encoded with ``need_weights=True``.
    frames : dict name -> torch.Tensor [shape=(B, T_m, d_m)]
        Input frames (or patch vectors) of each modality to pool, in any order;
        each name must be a block of ``enc`` other than ``target``.
    target : str
        The block whose steps pool (``"text"``: the words).
    layer : int or None
        Layer whose attention is used (negative counts from the last); None:
        the mean over layers (as :meth:`~mmalign.attention.MultimodalPretrainer.align`).

    Returns
    -------
    pooled : torch.Tensor [shape=(B, T_target, sum of d_m)]
        The modalities' pooled frames side by side, in the order of ``frames``.

    Examples
    --------
    >>> import torch
    >>> from mmalign.nn import JointEncoding
    >>> w = torch.zeros(1, 1, 6, 6); w[0, 0, 1, 4] = 0.5; w[0, 0, 1, 3] = 0.5  # word 0 -> frames 0, 1
    >>> w[0, 0, 2, 5] = 1.0                                                    # word 1 -> frame 2
    >>> enc = JointEncoding(torch.zeros(1, 6, 4), torch.zeros(1, 6, dtype=torch.bool),
    ...                     {"text": (1, 3), "audio": (3, 6)},
    ...                     {"text": torch.tensor([2]), "audio": torch.tensor([3])}, [w])
    >>> attention_pooled_frames(enc, {"audio": torch.tensor([[[1.0], [3.0], [7.0]]])})
    tensor([[[2.],
             [7.]]])
    """
    if not enc.weights:
        raise ValueError("enc must hold attention weights (encode with need_weights=True)")
    if target not in enc.segments:
        raise ValueError(f"target must be one of {list(enc.segments)}, got {target!r}")
    n_layers = len(enc.weights)
    if layer is not None:
        if isinstance(layer, bool) or not isinstance(layer, int) or not -n_layers <= layer < n_layers:
            raise ValueError(f"layer must be None or an int in [{-n_layers}, {n_layers}), got {layer!r}")
        w = enc.weights[layer]
    else:
        w = torch.stack(list(enc.weights)).mean(0)
    w = w.mean(1)                                                   # (B, L, L), heads averaged
    ta, tb = enc.segments[target]
    pooled = []
    for name, x in frames.items():
        if name not in enc.segments or name == target:
            raise ValueError(f"frames: {name!r} is not a modality block of enc other than {target!r}")
        sa, sb = enc.segments[name]
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[:2] != (w.shape[0], sb - sa):
            raise ValueError(f"frames[{name!r}] must have shape ({w.shape[0]}, {sb - sa}, d), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        block = w[:, ta:tb, sa:sb].masked_fill(enc.segment_mask(name)[:, None, :], 0.0)
        block = block / block.sum(-1, keepdim=True).clamp(min=torch.finfo(block.dtype).tiny)
        pooled.append(block @ x.to(block.dtype))
    if not pooled:
        raise ValueError("frames must name at least one modality")
    return torch.cat(pooled, dim=-1)
