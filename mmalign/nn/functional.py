"""Attention as plain functions on tensors (the ``torch.nn.functional`` of
:mod:`mmalign.nn`).

Mask convention (the one ``torch.nn.MultiheadAttention`` uses): a boolean mask
is ``True`` where attention is **not allowed** — padded keys in a
``key_padding_mask``, future positions in a causal ``attn_mask``. A float
``attn_mask`` is added to the scores. Every function returns the attention
weights next to its output, because in mmalign the weights are the alignment.

Rows whose keys are all masked get all-zero weights and a zero output, never
NaN (:func:`masked_softmax`).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "masked_softmax",
    "lengths_to_padding_mask",
    "causal_mask",
    "merge_masks",
    "scaled_dot_product_attention",
    "additive_scores",
]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None,
                   dim: int = -1) -> torch.Tensor:
    """Softmax that gives zeros, not NaN, where every entry along ``dim`` is masked.

    Parameters
    ----------
    scores : torch.Tensor [shape=(..., n, ...)]
        Real scores (logits).
    mask : torch.Tensor of bool or None
        Broadcastable to ``scores``; ``True`` marks entries to exclude.
    dim : int
        Axis to normalise over.

    Returns
    -------
    weights : torch.Tensor [shape=scores.shape]
        Non-negative; sums to 1 along ``dim`` except on fully-masked slices,
        which are 0. Scores of ``-inf`` count as masked too, so a float mask
        that rules out a whole row also gives zeros (``torch.softmax`` gives
        NaN). Gradients are finite everywhere.

    Examples
    --------
    >>> import torch
    >>> s = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    >>> m = torch.tensor([[False, False, True], [True, True, True]])
    >>> masked_softmax(s, m)
    tensor([[0.2689, 0.7311, 0.0000],
            [0.0000, 0.0000, 0.0000]])
    """
    if mask is None:
        filled = scores  # a score of -inf (e.g. from a float attn_mask) counts as masked
    elif mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor (True = excluded), got {mask.dtype}")
    else:
        filled = scores.masked_fill(mask, float("-inf"))
    top = filled.amax(dim=dim, keepdim=True)
    # fully-masked slices have top = -inf: shift by 0 instead so exp gives exact zeros
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top)).detach()
    e = torch.exp(filled - top)
    total = e.sum(dim=dim, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def lengths_to_padding_mask(lengths: torch.Tensor | list[int], max_len: int | None = None,
                            device: torch.device | str | None = None) -> torch.Tensor:
    """Key-padding mask ``(batch, max_len)``, ``True`` at padded positions.

    Examples
    --------
    >>> lengths_to_padding_mask([2, 3])
    tensor([[False, False,  True],
            [False, False, False]])
    """
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.ndim != 1 or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be a 1-d integer tensor, got {tuple(lengths.shape)} "
                         f"{lengths.dtype}")
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError("lengths must be non-negative")
    top = int(lengths.max()) if lengths.numel() else 0
    max_len = top if max_len is None else int(max_len)
    if top > max_len:
        raise ValueError(f"lengths has a value {top} larger than max_len={max_len}")
    steps = torch.arange(max_len, device=lengths.device)
    return steps[None, :] >= lengths[:, None]


def causal_mask(n_queries: int, n_keys: int | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean ``(n_queries, n_keys)`` mask, ``True`` where key ``j`` lies after query ``i``.

    Examples
    --------
    >>> causal_mask(3).int()
    tensor([[0, 1, 1],
            [0, 0, 1],
            [0, 0, 0]], dtype=torch.int32)
    """
    n_keys = n_queries if n_keys is None else n_keys
    return torch.ones(n_queries, n_keys, dtype=torch.bool, device=device).triu(1)


def merge_masks(attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None,
                n_batch_dims: int = 1) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Combine an ``attn_mask`` and a ``key_padding_mask`` into (bool mask, additive bias).

    ``key_padding_mask`` ``(B, S)`` is broadcast over the ``n_batch_dims - 1``
    axes after the batch (e.g. heads) and over queries. A float ``attn_mask``
    becomes the additive bias, a bool one joins the boolean mask.
    """
    bool_mask, bias = None, None
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            bool_mask = attn_mask
        elif attn_mask.dtype.is_floating_point:
            bias = attn_mask
        else:
            raise ValueError(f"attn_mask must be bool or floating point, got {attn_mask.dtype}")
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool:
            raise ValueError("key_padding_mask must be a bool tensor (True = padding), "
                             f"got {key_padding_mask.dtype}")
        if key_padding_mask.ndim != 2:
            raise ValueError("key_padding_mask must have shape (batch, n_keys), got "
                             f"{tuple(key_padding_mask.shape)}")
        b, s = key_padding_mask.shape
        kpm = key_padding_mask.view(b, *([1] * n_batch_dims), s)
        bool_mask = kpm if bool_mask is None else (bool_mask | kpm)
    return bool_mask, bias


def _check_key_padding_mask(key_padding_mask: torch.Tensor | None, batch: int,
                            n_keys: int) -> None:
    """ValueError unless ``key_padding_mask`` is None or a bool ``(batch, n_keys)`` tensor."""
    if key_padding_mask is None:
        return
    if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool:
        raise ValueError("key_padding_mask must be a bool tensor (True = padding), got "
                         f"{getattr(key_padding_mask, 'dtype', type(key_padding_mask))}")
    if tuple(key_padding_mask.shape) != (batch, n_keys):
        raise ValueError(f"key_padding_mask must have shape (batch, n_keys) = ({batch}, {n_keys}), "
                         f"got {tuple(key_padding_mask.shape)}")


def scaled_dot_product_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    *,
    key_padding_mask: torch.Tensor | None = None,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / √d + mask) V, returning the weights.

    Parameters
    ----------
    query : torch.Tensor [shape=(B, ..., T, d)]
    key : torch.Tensor [shape=(B, ..., S, d)]
    value : torch.Tensor [shape=(B, ..., S, d_v)]
    key_padding_mask : bool tensor [shape=(B, S)] or None
        ``True`` at padded keys.
    attn_mask : tensor [shape broadcastable to (B, ..., T, S)] or None
        Bool (``True`` = not allowed, e.g. :func:`causal_mask`) or float (added).
    dropout_p : float
        Dropout on the weights, applied only when ``training``.
    scale : float or None
        Score scale; ``1 / sqrt(d)`` by default.

    Returns
    -------
    output : torch.Tensor [shape=(B, ..., T, d_v)]
    weights : torch.Tensor [shape=(B, ..., T, S)]
        Before dropout; rows are zero where every key is masked.

    Examples
    --------
    >>> import torch
    >>> q = k = v = torch.eye(3)[None]
    >>> out, w = scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(3))
    >>> w[0, 0]
    tensor([1., 0., 0.])
    """
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must share the last axis, got {query.shape[-1]} "
                         f"and {key.shape[-1]}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same number of steps, got "
                         f"{key.shape[-2]} and {value.shape[-2]}")
    if query.ndim < 3 or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError("query, key and value must have shape (B, ..., steps, features) with the "
                         f"same ndim >= 3, got {tuple(query.shape)}, {tuple(key.shape)}, "
                         f"{tuple(value.shape)}")
    if not (query.shape[0] == key.shape[0] == value.shape[0]):
        raise ValueError(f"query, key and value must have the same batch size, got "
                         f"{query.shape[0]}, {key.shape[0]}, {value.shape[0]}")
    _check_key_padding_mask(key_padding_mask, query.shape[0], key.shape[-2])
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = torch.matmul(query, key.transpose(-2, -1)) * scale
    bool_mask, bias = merge_masks(attn_mask, key_padding_mask, n_batch_dims=query.ndim - 2)
    if bias is not None:
        scores = scores + bias
    weights = masked_softmax(scores, bool_mask)
    dropped = torch.nn.functional.dropout(weights, dropout_p, training) if dropout_p else weights
    return torch.matmul(dropped, value), weights


def additive_scores(query_proj: torch.Tensor, keys_proj: torch.Tensor,
                    v: torch.Tensor) -> torch.Tensor:
    """Bahdanau scores ``e = vᵀ tanh(W s + U h)`` from already projected terms.

    Parameters
    ----------
    query_proj : torch.Tensor [shape=(B, T, a)]
        ``W s`` for each of ``T`` queries.
    keys_proj : torch.Tensor [shape=(B, S, a)]
        ``U h`` for each of ``S`` keys.
    v : torch.Tensor [shape=(a,)]

    Returns
    -------
    scores : torch.Tensor [shape=(B, T, S)]
    """
    return torch.tanh(query_proj[:, :, None, :] + keys_proj[:, None, :, :]) @ v
