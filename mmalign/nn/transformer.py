"""Transformer encoder / decoder layers and stacks that return their attention weights.

The layers compute the same functions as ``torch.nn.TransformerEncoderLayer``,
``torch.nn.TransformerDecoderLayer``, ``torch.nn.TransformerEncoder``,
``torch.nn.TransformerDecoder`` and ``torch.nn.Transformer`` with
``batch_first=True`` (each has a ``load_torch_weights`` method that copies the
weights of its torch counterpart), built on
:class:`~mmalign.nn.layers.MultiHeadAttention` so that every layer can
hand back its per-head attention weights — in mmalign the weights are the
alignment.

Conventions
-----------
- Batch-first: sequences are ``(B, T, d_model)``.
- Masks follow :mod:`mmalign.nn.functional` (and torch): a boolean mask
  is ``True`` where attention is **not** allowed; a float mask is added to the
  scores. ``*_key_padding_mask`` is a bool ``(B, S)`` tensor, ``True`` at padded
  steps (see :func:`~mmalign.nn.functional.lengths_to_padding_mask`).
- ``causal=True`` adds the causal mask (query ``i`` may not see keys ``j > i``)
  to the self-attention, merged with any ``mask`` / ``tgt_mask`` given. Unlike
  torch's ``is_causal`` it is not a hint: it builds the mask.
- Post-norm (``x = norm(x + sublayer(x))``) by default; ``norm_first=True``
  gives pre-norm (``x = x + sublayer(norm(x))``).
- Every ``forward`` returns ``(output, weights)``. Weights are before dropout,
  per head, ``(B, nhead, T, S)``, and exactly 0 on masked keys; a query whose
  keys are all masked gets zero weights (never NaN). With
  ``need_weights=False`` the weights slot is ``None`` (the stacks then keep no
  per-layer tensors alive).

=========================  ====================================================
module                     weights
=========================  ====================================================
TransformerEncoderLayer    tensor ``(B, H, T, T)``
TransformerDecoderLayer    :class:`DecoderWeights` ``(self_attn (B, H, T, T), cross_attn (B, H, T, S))``
TransformerEncoder         list (one per layer) of ``(B, H, T, T)``
TransformerDecoder         list (one per layer) of :class:`DecoderWeights`
Transformer                :class:`TransformerWeights` ``(encoder=list, decoder=list)``
=========================  ====================================================
"""

from __future__ import annotations

import copy
from typing import Callable, NamedTuple

import torch
from torch import nn

from .functional import causal_mask
from .layers import MultiHeadAttention

__all__ = [
    "DecoderWeights",
    "TransformerWeights",
    "TransformerEncoderLayer",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerDecoder",
    "Transformer",
]

Activation = str | Callable[[torch.Tensor], torch.Tensor]


class DecoderWeights(NamedTuple):
    """Attention weights of one decoder layer.

    Attributes
    ----------
    self_attn : torch.Tensor [shape=(B, H, T, T)]
        Masked self-attention of the target over itself.
    cross_attn : torch.Tensor [shape=(B, H, T, S)]
        Cross-attention of the target (queries) over the memory (keys / values):
        the alignment of target to source.
    """

    self_attn: torch.Tensor
    cross_attn: torch.Tensor


class TransformerWeights(NamedTuple):
    """Attention weights of a :class:`Transformer`.

    Attributes
    ----------
    encoder : list of torch.Tensor [shape=(B, H, S, S)]
        One per encoder layer.
    decoder : list of DecoderWeights
        One per decoder layer.
    """

    encoder: list[torch.Tensor]
    decoder: list[DecoderWeights]


def _activation(activation: Activation) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(activation):
        return activation
    if activation == "relu":
        return torch.nn.functional.relu
    if activation == "gelu":
        return torch.nn.functional.gelu
    raise ValueError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")


def _check_seq(x: torch.Tensor, name: str, d: int, batch: int | None = None) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError(f"{name} must have shape (B, steps, {d}), got "
                         f"{tuple(getattr(x, 'shape', ()))}")
    if x.shape[-1] != d:
        raise ValueError(f"{name} must have {d} features, got {x.shape[-1]}")
    if batch is not None and x.shape[0] != batch:
        raise ValueError(f"{name} has batch size {x.shape[0]}, expected {batch}")


def _with_causal(mask: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
    """``mask`` with the ``(n, n)`` causal mask merged in (bool stays bool, float gets -inf)."""
    causal = causal_mask(n, device=device)
    if mask is None:
        return causal
    if mask.dtype == torch.bool:
        return mask | causal
    if not mask.dtype.is_floating_point:
        raise ValueError(f"attention mask must be bool or floating point, got {mask.dtype}")
    return mask.masked_fill(causal, float("-inf"))


def _copy_module(dst: nn.Module, src: nn.Module, name: str) -> None:
    """Copy a Linear / LayerNorm's parameters, with a ValueError on a shape mismatch."""
    theirs, ours = src.state_dict(), dst.state_dict()
    if set(theirs) != set(ours) or any(theirs[k].shape != ours[k].shape for k in ours):
        raise ValueError(f"{name}: cannot copy parameters "
                         f"{ {k: tuple(v.shape) for k, v in theirs.items()} } into "
                         f"{ {k: tuple(v.shape) for k, v in ours.items()} }")
    with torch.no_grad():
        for k, v in ours.items():
            v.copy_(theirs[k])
    if isinstance(dst, nn.LayerNorm):
        dst.eps = src.eps


def _activation_code(act: object) -> int:
    """1 for ReLU, 2 for (exact) GELU, 0 for anything else."""
    if act is torch.nn.functional.relu or isinstance(act, nn.ReLU):
        return 1
    if act is torch.nn.functional.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return 2
    return 0


def _check_torch_layer(ours: nn.Module, theirs: nn.Module) -> None:
    if bool(getattr(theirs, "norm_first", False)) != ours.norm_first:
        raise ValueError(f"norm_first differs: torch layer has {theirs.norm_first}, "
                         f"this layer {ours.norm_first}")
    code, mine = _activation_code(theirs.activation), _activation_code(ours.activation)
    if (code or mine) and code != mine:
        names = {0: "another activation", 1: "relu", 2: "gelu"}
        raise ValueError(f"activation differs: torch layer uses {names[code]}, "
                         f"this layer {names[mine]}")


class TransformerEncoderLayer(nn.Module):
    """Self-attention + feed-forward block, returning the self-attention weights.

    Parameters
    ----------
    d_model : int
        Model size.
    nhead : int
        Number of heads; ``d_model`` must be divisible by it.
    dim_feedforward : int
        Hidden size of the feed-forward network.
    dropout : float
        Dropout on the attention weights, the sublayer outputs and the
        feed-forward hidden layer (training only).
    activation : {"relu", "gelu"} or callable
        Feed-forward non-linearity.
    norm_first : bool
        Pre-norm if True, post-norm (the original Transformer) if False.
    layer_norm_eps : float
    bias : bool
        Biases in the linear layers and layer norms.

    Examples
    --------
    >>> import torch
    >>> layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    >>> x = torch.randn(2, 5, 8)
    >>> pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    >>> out, w = layer(x, src_key_padding_mask=pad)
    >>> out.shape, w.shape, bool((w[1, :, :, 3:] == 0).all())
    (torch.Size([2, 5, 8]), torch.Size([2, 2, 5, 5]), True)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True) -> None:
        super().__init__()
        self.d_model, self.nhead = int(d_model), int(nhead)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = bool(norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None,
                  key_padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out, w = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask)
        return self.dropout1(out), w

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None, *, causal: bool = False,
                need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode ``src``.

        Parameters
        ----------
        src : torch.Tensor [shape=(B, T, d_model)]
        src_mask : tensor [shape=(T, T), (B * nhead, T, T) or (B, nhead, T, T)] or None
            Bool (``True`` = not allowed) or float (added to the scores).
        src_key_padding_mask : bool tensor [shape=(B, T)] or None
            ``True`` at padded steps.
        causal : bool
            Merge the causal mask into ``src_mask``.
        need_weights : bool
            Return the weights (else ``None`` in their place).

        Returns
        -------
        output : torch.Tensor [shape=(B, T, d_model)]
        weights : torch.Tensor [shape=(B, nhead, T, T)] or None
        """
        _check_seq(src, "src", self.d_model)
        if causal:
            src_mask = _with_causal(src_mask, src.shape[1], src.device)
        x = src
        if self.norm_first:
            sa, w = self._sa_block(self.norm1(x), src_mask, src_key_padding_mask)
            x = x + sa
            x = x + self._ff_block(self.norm2(x))
        else:
            sa, w = self._sa_block(x, src_mask, src_key_padding_mask)
            x = self.norm1(x + sa)
            x = self.norm2(x + self._ff_block(x))
        return x, (w if need_weights else None)

    def load_torch_weights(self, layer: nn.TransformerEncoderLayer) -> "TransformerEncoderLayer":
        """Copy the weights of a ``torch.nn.TransformerEncoderLayer`` (same sizes,
        ``norm_first`` and activation) into this layer; returns ``self``.

        Examples
        --------
        >>> import torch
        >>> ref = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        >>> ours = TransformerEncoderLayer(8, 2, 16, dropout=0.0).load_torch_weights(ref)
        >>> x = torch.randn(2, 4, 8)
        >>> torch.allclose(ours(x)[0], ref(x), atol=1e-5)
        True
        """
        _check_torch_layer(self, layer)
        self.self_attn.load_torch_weights(layer.self_attn)
        for name in ("linear1", "linear2", "norm1", "norm2"):
            _copy_module(getattr(self, name), getattr(layer, name), name)
        return self


class TransformerDecoderLayer(nn.Module):
    """Masked self-attention + cross-attention over ``memory`` + feed-forward block.

    The cross-attention takes its queries from the target stream and its keys
    and values from ``memory`` (another stream or an encoder's output): its
    weights ``(B, H, T, S)`` align each target step to the memory steps.

    Parameters
    ----------
    d_model, nhead, dim_feedforward, dropout, activation, norm_first, layer_norm_eps, bias
        As in :class:`TransformerEncoderLayer`.
    memory_dim : int or None
        Feature size of ``memory`` when it differs from ``d_model`` (a
        crossmodal key / value stream); ``d_model`` by default (as in torch).

    Examples
    --------
    >>> import torch
    >>> layer = TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, memory_dim=6)
    >>> tgt, memory = torch.randn(2, 4, 8), torch.randn(2, 7, 6)
    >>> out, w = layer(tgt, memory, causal=True)
    >>> out.shape, w.self_attn.shape, w.cross_attn.shape
    (torch.Size([2, 4, 8]), torch.Size([2, 2, 4, 4]), torch.Size([2, 2, 4, 7]))
    >>> bool((w.self_attn[:, :, 0, 1:] == 0).all())  # step 0 sees only itself
    True
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Activation = "relu",
                 norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True, memory_dim: int | None = None) -> None:
        super().__init__()
        self.d_model, self.nhead = int(d_model), int(nhead)
        self.memory_dim = int(memory_dim or d_model)
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                             kdim=self.memory_dim, vdim=self.memory_dim)
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model, bias=bias)
        self.norm_first = bool(norm_first)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x: torch.Tensor, mask: torch.Tensor | None,
                  key_padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out, w = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask)
        return self.dropout1(out), w

    def _ca_block(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None,
                  key_padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        out, w = self.cross_attn(x, memory, memory, attn_mask=mask,
                                 key_padding_mask=key_padding_mask)
        return self.dropout2(out), w

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor,
                tgt_mask: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None, *,
                causal: bool = False,
                need_weights: bool = True) -> tuple[torch.Tensor, DecoderWeights | None]:
        """Decode ``tgt`` against ``memory``.

        Parameters
        ----------
        tgt : torch.Tensor [shape=(B, T, d_model)]
            Target stream (queries of both attentions).
        memory : torch.Tensor [shape=(B, S, memory_dim)]
            Source stream (keys and values of the cross-attention).
        tgt_mask : tensor [shape=(T, T), (B * nhead, T, T) or (B, nhead, T, T)] or None
            Self-attention mask, bool (``True`` = not allowed) or float (added).
        memory_mask : tensor [shape=(T, S), (B * nhead, T, S) or (B, nhead, T, S)] or None
            Cross-attention mask.
        tgt_key_padding_mask : bool tensor [shape=(B, T)] or None
        memory_key_padding_mask : bool tensor [shape=(B, S)] or None
        causal : bool
            Merge the causal mask into ``tgt_mask`` (step ``t`` sees targets ``<= t``).
        need_weights : bool
            Return the weights (else ``None`` in their place).

        Returns
        -------
        output : torch.Tensor [shape=(B, T, d_model)]
        weights : DecoderWeights or None
            ``(self_attn (B, nhead, T, T), cross_attn (B, nhead, T, S))``.
        """
        _check_seq(tgt, "tgt", self.d_model)
        _check_seq(memory, "memory", self.memory_dim, batch=tgt.shape[0])
        if causal:
            tgt_mask = _with_causal(tgt_mask, tgt.shape[1], tgt.device)
        x = tgt
        if self.norm_first:
            sa, ws = self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask)
            x = x + sa
            ca, wc = self._ca_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask)
            x = x + ca
            x = x + self._ff_block(self.norm3(x))
        else:
            sa, ws = self._sa_block(x, tgt_mask, tgt_key_padding_mask)
            x = self.norm1(x + sa)
            ca, wc = self._ca_block(x, memory, memory_mask, memory_key_padding_mask)
            x = self.norm2(x + ca)
            x = self.norm3(x + self._ff_block(x))
        return x, (DecoderWeights(ws, wc) if need_weights else None)

    def load_torch_weights(self, layer: nn.TransformerDecoderLayer) -> "TransformerDecoderLayer":
        """Copy the weights of a ``torch.nn.TransformerDecoderLayer`` (its
        ``multihead_attn`` becomes :attr:`cross_attn`); returns ``self``.

        Examples
        --------
        >>> import torch
        >>> ref = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        >>> ours = TransformerDecoderLayer(8, 2, 16, dropout=0.0).load_torch_weights(ref)
        >>> tgt, memory = torch.randn(2, 4, 8), torch.randn(2, 6, 8)
        >>> torch.allclose(ours(tgt, memory)[0], ref(tgt, memory), atol=1e-5)
        True
        """
        _check_torch_layer(self, layer)
        self.self_attn.load_torch_weights(layer.self_attn)
        self.cross_attn.load_torch_weights(layer.multihead_attn)
        for name in ("linear1", "linear2", "norm1", "norm2", "norm3"):
            _copy_module(getattr(self, name), getattr(layer, name), name)
        return self


def _clones(layer: nn.Module, n: int) -> nn.ModuleList:
    if int(n) < 1:
        raise ValueError(f"num_layers must be >= 1, got {n}")
    return nn.ModuleList([copy.deepcopy(layer) for _ in range(int(n))])


def _load_norm(ours: nn.LayerNorm | None, theirs: nn.Module | None) -> None:
    if (ours is None) != (theirs is None):
        raise ValueError(f"final norm differs: torch stack has "
                         f"{'one' if theirs is not None else 'none'}, this stack "
                         f"{'one' if ours is not None else 'none'}")
    if ours is not None:
        _copy_module(ours, theirs, "norm")


def _load_stack(stack: nn.Module, torch_stack: nn.Module, kind: str) -> None:
    """Copy a torch encoder / decoder stack into ours: layer by layer, then the final norm."""
    if len(torch_stack.layers) != len(stack.layers):
        raise ValueError(f"torch {kind} has {len(torch_stack.layers)} layers, this one "
                         f"{len(stack.layers)}")
    for ours, theirs in zip(stack.layers, torch_stack.layers):
        ours.load_torch_weights(theirs)
    _load_norm(stack.norm, torch_stack.norm)


class TransformerEncoder(nn.Module):
    """A stack of ``num_layers`` deep copies of a :class:`TransformerEncoderLayer`.

    Parameters
    ----------
    encoder_layer : TransformerEncoderLayer
        Copied ``num_layers`` times (all copies start from its weights, as in torch).
    num_layers : int
    norm : nn.LayerNorm or None
        Applied to the output of the last layer (needed with pre-norm layers).

    Examples
    --------
    >>> import torch
    >>> enc = TransformerEncoder(TransformerEncoderLayer(8, 2, 16, dropout=0.0), num_layers=3)
    >>> out, weights = enc(torch.randn(2, 5, 8), causal=True)
    >>> out.shape, len(weights), weights[0].shape
    (torch.Size([2, 5, 8]), 3, torch.Size([2, 2, 5, 5]))
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: nn.LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers)
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, src: torch.Tensor, mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None, *, causal: bool = False,
                need_weights: bool = True) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """Run every layer; the arguments are those of :meth:`TransformerEncoderLayer.forward`
        (``mask`` is its ``src_mask``).

        Returns
        -------
        output : torch.Tensor [shape=(B, T, d_model)]
        weights : list of torch.Tensor [shape=(B, nhead, T, T)], one per layer, or None
        """
        if causal:
            _check_seq(src, "src", self.layers[0].d_model)
            mask = _with_causal(mask, src.shape[1], src.device)
        x, weights = src, []
        for layer in self.layers:
            x, w = layer(x, mask, src_key_padding_mask, need_weights=need_weights)
            weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return x, (weights if need_weights else None)

    def load_torch_weights(self, encoder: nn.TransformerEncoder) -> "TransformerEncoder":
        """Copy the weights of a ``torch.nn.TransformerEncoder`` (same number of layers,
        a final norm on both or neither); returns ``self``."""
        _load_stack(self, encoder, "encoder")
        return self


class TransformerDecoder(nn.Module):
    """A stack of ``num_layers`` deep copies of a :class:`TransformerDecoderLayer`.

    Parameters
    ----------
    decoder_layer : TransformerDecoderLayer
    num_layers : int
    norm : nn.LayerNorm or None
        Applied to the output of the last layer.

    Examples
    --------
    >>> import torch
    >>> dec = TransformerDecoder(TransformerDecoderLayer(8, 2, 16, dropout=0.0), num_layers=2)
    >>> out, weights = dec(torch.randn(2, 4, 8), torch.randn(2, 6, 8), causal=True)
    >>> out.shape, len(weights), weights[-1].cross_attn.shape
    (torch.Size([2, 4, 8]), 2, torch.Size([2, 2, 4, 6]))
    """

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: nn.LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers)
        self.num_layers = int(num_layers)
        self.norm = norm

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor,
                tgt_mask: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None, *,
                causal: bool = False,
                need_weights: bool = True) -> tuple[torch.Tensor, list[DecoderWeights] | None]:
        """Run every layer; the arguments are those of :meth:`TransformerDecoderLayer.forward`.

        Returns
        -------
        output : torch.Tensor [shape=(B, T, d_model)]
        weights : list of DecoderWeights, one per layer, or None
        """
        if causal:
            _check_seq(tgt, "tgt", self.layers[0].d_model)
            tgt_mask = _with_causal(tgt_mask, tgt.shape[1], tgt.device)
        x, weights = tgt, []
        for layer in self.layers:
            x, w = layer(x, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                         memory_key_padding_mask, need_weights=need_weights)
            weights.append(w)
        if self.norm is not None:
            x = self.norm(x)
        return x, (weights if need_weights else None)

    def load_torch_weights(self, decoder: nn.TransformerDecoder) -> "TransformerDecoder":
        """Copy the weights of a ``torch.nn.TransformerDecoder``; returns ``self``."""
        _load_stack(self, decoder, "decoder")
        return self


class Transformer(nn.Module):
    """Encoder-decoder Transformer (Vaswani et al., 2017), as ``torch.nn.Transformer``
    with ``batch_first=True``, returning every layer's attention weights.

    As in torch, both stacks end with a layer norm, parameters with more than
    one axis get Xavier-uniform initialisation, and no embedding, positional
    encoding or output projection is included (add a
    :class:`~mmalign.nn.positional.PositionalEncoding` to both inputs).

    Parameters
    ----------
    d_model, nhead, dim_feedforward, dropout, activation, norm_first, layer_norm_eps, bias
        As in :class:`TransformerEncoderLayer`.
    num_encoder_layers, num_decoder_layers : int

    Examples
    --------
    >>> import torch
    >>> model = Transformer(8, 2, num_encoder_layers=2, num_decoder_layers=2,
    ...                     dim_feedforward=16, dropout=0.0)
    >>> src, tgt = torch.randn(2, 6, 8), torch.randn(2, 4, 8)
    >>> out, w = model(src, tgt, causal=True)
    >>> out.shape, w.encoder[0].shape, w.decoder[1].cross_attn.shape
    (torch.Size([2, 4, 8]), torch.Size([2, 2, 6, 6]), torch.Size([2, 2, 4, 6]))
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Activation = "relu", norm_first: bool = False,
                 layer_norm_eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.d_model, self.nhead = int(d_model), int(nhead)
        kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                  norm_first=norm_first, layer_norm_eps=layer_norm_eps, bias=bias)
        self.encoder = TransformerEncoder(
            TransformerEncoderLayer(d_model, nhead, **kw), num_encoder_layers,
            nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        self.decoder = TransformerDecoder(
            TransformerDecoderLayer(d_model, nhead, **kw), num_decoder_layers,
            nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias))
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor,
                src_mask: torch.Tensor | None = None, tgt_mask: torch.Tensor | None = None,
                memory_mask: torch.Tensor | None = None,
                src_key_padding_mask: torch.Tensor | None = None,
                tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None, *,
                causal: bool = False,
                need_weights: bool = True) -> tuple[torch.Tensor, TransformerWeights | None]:
        """Encode ``src``, decode ``tgt`` against it.

        Parameters
        ----------
        src : torch.Tensor [shape=(B, S, d_model)]
        tgt : torch.Tensor [shape=(B, T, d_model)]
        src_mask, tgt_mask, memory_mask : tensor or None
            Masks of the encoder self-attention ``(S, S)``, the decoder
            self-attention ``(T, T)`` and the cross-attention ``(T, S)``.
        src_key_padding_mask : bool tensor [shape=(B, S)] or None
        tgt_key_padding_mask : bool tensor [shape=(B, T)] or None
        memory_key_padding_mask : bool tensor [shape=(B, S)] or None
            Usually ``src_key_padding_mask`` (torch does not copy it over either).
        causal : bool
            Causal decoder self-attention (torch's ``tgt_is_causal`` with the mask built).
        need_weights : bool

        Returns
        -------
        output : torch.Tensor [shape=(B, T, d_model)]
        weights : TransformerWeights or None
        """
        _check_seq(src, "src", self.d_model)
        _check_seq(tgt, "tgt", self.d_model, batch=src.shape[0])
        memory, we = self.encoder(src, src_mask, src_key_padding_mask, need_weights=need_weights)
        out, wd = self.decoder(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
                               memory_key_padding_mask, causal=causal, need_weights=need_weights)
        return out, (TransformerWeights(we, wd) if need_weights else None)

    def load_torch_weights(self, model: nn.Transformer) -> "Transformer":
        """Copy the weights of a ``torch.nn.Transformer`` (same sizes); returns ``self``.

        Examples
        --------
        >>> import torch
        >>> ref = torch.nn.Transformer(8, 2, 1, 1, 16, dropout=0.0, batch_first=True)
        >>> ours = Transformer(8, 2, 1, 1, 16, dropout=0.0).load_torch_weights(ref)
        >>> src, tgt = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
        >>> torch.allclose(ours(src, tgt)[0], ref(src, tgt), atol=1e-5)
        True
        """
        self.encoder.load_torch_weights(model.encoder)
        self.decoder.load_torch_weights(model.decoder)
        return self
