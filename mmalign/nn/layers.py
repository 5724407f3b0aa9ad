"""Attention layers that return their weights: additive (Bahdanau),
multiplicative (Luong), scaled dot-product and multi-head attention.

Shapes are batch-first. Masks follow :mod:`mmalign.nn.functional`:
``True`` marks what may **not** be attended to. Each layer returns
``(output, weights)``; the weights ``(..., n_queries, n_keys)`` are what
:meth:`~mmalign.alignment.Alignment` stores, with queries (the target) as
side x and keys (the source) as side y.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import functional as F

__all__ = [
    "AdditiveAttention",
    "MultiplicativeAttention",
    "ScaledDotProductAttention",
    "MultiHeadAttention",
]


def _queries_3d(query: torch.Tensor, name: str = "query") -> tuple[torch.Tensor, bool]:
    if query.ndim == 2:
        return query[:, None, :], True
    if query.ndim != 3:
        raise ValueError(f"{name} must have shape (B, d) or (B, T, d), got {tuple(query.shape)}")
    return query, False


def _check_keys(keys: torch.Tensor, values: torch.Tensor | None, batch: int) -> torch.Tensor:
    if keys.ndim != 3:
        raise ValueError(f"keys must have shape (B, S, d), got {tuple(keys.shape)}")
    if keys.shape[0] != batch:
        raise ValueError(f"keys has batch {keys.shape[0]}, query has {batch}")
    values = keys if values is None else values
    if values.ndim != 3 or values.shape[:2] != keys.shape[:2]:
        raise ValueError(f"values must have shape (B, S, d_v) with (B, S) = "
                         f"{tuple(keys.shape[:2])}, got {tuple(values.shape)}")
    return values


class AdditiveAttention(nn.Module):
    """Bahdanau attention: ``e_ij = vᵀ tanh(W s_i + U h_j)``, ``α = softmax_j(e)``.

    Parameters
    ----------
    query_dim : int
        Size of the query (decoder state ``s``).
    key_dim : int
        Size of the keys (encoder annotations ``h``).
    hidden_dim : int
        Size ``a`` of the alignment model's hidden layer.

    Examples
    --------
    >>> import torch
    >>> att = AdditiveAttention(query_dim=4, key_dim=6, hidden_dim=8)
    >>> s, h = torch.randn(2, 4), torch.randn(2, 5, 6)
    >>> pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    >>> context, weights = att(s, h, key_padding_mask=pad)
    >>> context.shape, weights.shape, bool((weights[1, 3:] == 0).all())
    (torch.Size([2, 6]), torch.Size([2, 5]), True)
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=True)
        self.v = nn.Parameter(torch.empty(hidden_dim))
        nn.init.uniform_(self.v, -1.0 / math.sqrt(hidden_dim), 1.0 / math.sqrt(hidden_dim))

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """``U h`` for all keys, ``(B, S, hidden_dim)``: compute once per source, pass as
        ``projected_keys`` at every decoder step."""
        return self.key_proj(keys)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
                *, key_padding_mask: torch.Tensor | None = None,
                projected_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` over ``keys``.

        Parameters
        ----------
        query : torch.Tensor [shape=(B, query_dim) or (B, T, query_dim)]
        keys : torch.Tensor [shape=(B, S, key_dim)]
        values : torch.Tensor [shape=(B, S, d_v)] or None
            Defaults to ``keys``.
        key_padding_mask : bool tensor [shape=(B, S)] or None
        projected_keys : torch.Tensor [shape=(B, S, hidden_dim)] or None
            Cached :meth:`project_keys` output.

        Returns
        -------
        context : torch.Tensor [shape=(B, d_v) or (B, T, d_v)]
        weights : torch.Tensor [shape=(B, S) or (B, T, S)]
        """
        q, squeeze = _queries_3d(query)
        values = _check_keys(keys, values, q.shape[0])
        F._check_key_padding_mask(key_padding_mask, keys.shape[0], keys.shape[1])
        uk = self.project_keys(keys) if projected_keys is None else projected_keys
        scores = F.additive_scores(self.query_proj(q), uk, self.v)
        bool_mask, _ = F.merge_masks(None, key_padding_mask, n_batch_dims=1)
        weights = F.masked_softmax(scores, bool_mask)
        context = weights @ values
        if squeeze:
            return context[:, 0], weights[:, 0]
        return context, weights


class MultiplicativeAttention(nn.Module):
    """Luong attention: ``score(s, h) = sᵀ h`` (``"dot"``) or ``sᵀ W h`` (``"general"``).

    Parameters
    ----------
    query_dim, key_dim : int
        Must be equal for ``score="dot"``.
    score : {"general", "dot"}

    Examples
    --------
    >>> import torch
    >>> att = MultiplicativeAttention(4, 4, score="dot")
    >>> context, weights = att(torch.randn(2, 3, 4), torch.randn(2, 5, 4))
    >>> weights.shape
    torch.Size([2, 3, 5])
    """

    def __init__(self, query_dim: int, key_dim: int, score: str = "general") -> None:
        super().__init__()
        if score not in ("general", "dot"):
            raise ValueError(f"score must be 'general' or 'dot', got {score!r}")
        if score == "dot" and query_dim != key_dim:
            raise ValueError(f"score='dot' needs query_dim == key_dim, got {query_dim} and {key_dim}")
        self.score = score
        self.weight = nn.Linear(key_dim, query_dim, bias=False) if score == "general" else None

    def forward(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor | None = None,
                *, key_padding_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Same shapes as :meth:`AdditiveAttention.forward`."""
        q, squeeze = _queries_3d(query)
        values = _check_keys(keys, values, q.shape[0])
        k = keys if self.weight is None else self.weight(keys)
        out, weights = F.scaled_dot_product_attention(q, k, values, key_padding_mask=key_padding_mask,
                                                      scale=1.0)
        if squeeze:
            return out[:, 0], weights[:, 0]
        return out, weights


class ScaledDotProductAttention(nn.Module):
    """Module form of :func:`~mmalign.nn.functional.scaled_dot_product_attention`.

    Parameters
    ----------
    dropout : float
        Dropout on the weights in training mode.
    """

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = float(dropout)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return F.scaled_dot_product_attention(query, key, value, key_padding_mask=key_padding_mask,
                                              attn_mask=attn_mask, dropout_p=self.dropout,
                                              training=self.training)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with separate ``W_Q``, ``W_K``, ``W_V``, ``W_O``.

    Computes the same function as ``torch.nn.MultiheadAttention(batch_first=True)``
    (see :meth:`load_torch_weights`) but always can return per-head weights.

    Parameters
    ----------
    embed_dim : int
        Model size ``E`` (query size and output size).
    num_heads : int
        ``E`` must be divisible by it.
    dropout : float
        Dropout on the attention weights (training only).
    bias : bool
        Biases in the four projections.
    kdim, vdim : int or None
        Key and value sizes when they differ from ``embed_dim`` (crossmodal attention).

    Examples
    --------
    >>> import torch
    >>> mha = MultiHeadAttention(8, 2)
    >>> x, y = torch.randn(3, 5, 8), torch.randn(3, 7, 8)
    >>> out, w = mha(x, y, y)
    >>> out.shape, w.shape
    (torch.Size([3, 5, 8]), torch.Size([3, 2, 5, 7]))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 kdim: int | None = None, vdim: int | None = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        self.embed_dim, self.num_heads = int(embed_dim), int(num_heads)
        self.kdim, self.vdim = int(kdim or embed_dim), int(vdim or embed_dim)
        self.head_dim = embed_dim // num_heads
        self.dropout = float(dropout)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        for lin in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(lin.weight)
            if bias:
                nn.init.zeros_(lin.bias)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *,
                key_padding_mask: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend from ``query`` over ``key`` / ``value``.

        Parameters
        ----------
        query : torch.Tensor [shape=(B, T, embed_dim)]
        key : torch.Tensor [shape=(B, S, kdim)]
        value : torch.Tensor [shape=(B, S, vdim)]
        key_padding_mask : bool tensor [shape=(B, S)] or None
            ``True`` at padded keys.
        attn_mask : tensor [shape=(T, S), (B * num_heads, T, S) or (B, num_heads, T, S)] or None
            Bool (``True`` = not allowed) or float (added to the scores). The
            3-d form is ``torch.nn.MultiheadAttention``'s.

        Returns
        -------
        output : torch.Tensor [shape=(B, T, embed_dim)]
        weights : torch.Tensor [shape=(B, num_heads, T, S)]
            Per-head weights (before dropout); average over axis 1 for the
            head-averaged map ``torch.nn.MultiheadAttention`` returns.
        """
        if query.ndim != 3 or key.ndim != 3 or value.ndim != 3:
            raise ValueError("query, key and value must have shape (B, steps, features), got "
                             f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
        if not (query.shape[0] == key.shape[0] == value.shape[0]):
            raise ValueError(f"query, key and value must have the same batch size, got "
                             f"{query.shape[0]}, {key.shape[0]}, {value.shape[0]}")
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key and value must have the same number of steps, got "
                             f"{key.shape[1]} and {value.shape[1]}")
        for name, x, d in (("query", query, self.embed_dim), ("key", key, self.kdim),
                           ("value", value, self.vdim)):
            if x.shape[-1] != d:
                raise ValueError(f"{name} must have {d} features, got {x.shape[-1]}")
        b, t, s = query.shape[0], query.shape[1], key.shape[1]
        if attn_mask is not None and attn_mask.ndim == 3:
            if tuple(attn_mask.shape) != (b * self.num_heads, t, s):
                raise ValueError(f"a 3-d attn_mask must have shape (B * num_heads, T, S) = "
                                 f"({b * self.num_heads}, {t}, {s}), got {tuple(attn_mask.shape)}")
            attn_mask = attn_mask.view(b, self.num_heads, t, s)
        elif attn_mask is not None and attn_mask.ndim not in (2, 4):
            raise ValueError("attn_mask must have shape (T, S), (B * num_heads, T, S) or "
                             f"(B, num_heads, T, S), got {tuple(attn_mask.shape)}")
        q = self._split(self.q_proj(query))
        k = self._split(self.k_proj(key))
        v = self._split(self.v_proj(value))
        out, weights = F.scaled_dot_product_attention(
            q, k, v, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
            dropout_p=self.dropout, training=self.training)
        b, _, t, _ = out.shape
        out = out.transpose(1, 2).reshape(b, t, self.embed_dim)
        return self.out_proj(out), weights

    @torch.no_grad()
    def load_torch_weights(self, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the projections of a ``torch.nn.MultiheadAttention`` into this layer.

        After this, ``self(q, k, v)`` equals ``mha(q, k, v)`` (with
        ``batch_first=True``; the weights are the same either way) up to
        rounding, and ``self(...)[1].mean(1)`` equals its head-averaged weights.

        Examples
        --------
        >>> import torch
        >>> ref = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> mha = MultiHeadAttention(8, 2).load_torch_weights(ref)
        >>> x = torch.randn(2, 5, 8)
        >>> torch.allclose(mha(x, x, x)[0], ref(x, x, x)[0], atol=1e-6)
        True
        """
        e = self.embed_dim
        if mha.embed_dim != e or mha.num_heads != self.num_heads:
            raise ValueError(f"mha must have embed_dim={e} and num_heads={self.num_heads}, got "
                             f"{mha.embed_dim} and {mha.num_heads}")
        if (mha.kdim, mha.vdim) != (self.kdim, self.vdim):
            raise ValueError(f"mha must have kdim={self.kdim} and vdim={self.vdim}, got "
                             f"{mha.kdim} and {mha.vdim}")
        if mha.bias_k is not None or mha.bias_v is not None or mha.add_zero_attn:
            raise ValueError("mha uses add_bias_kv or add_zero_attn, which this layer does not have")
        if (mha.in_proj_bias is None) != (self.q_proj.bias is None):
            raise ValueError("mha and this layer must both have biases or both not")
        if mha.in_proj_weight is not None:
            w = mha.in_proj_weight
            ws = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            ws = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
        bs = (None, None, None) if mha.in_proj_bias is None else mha.in_proj_bias.split(e)
        for lin, w, b in zip((self.q_proj, self.k_proj, self.v_proj), ws, bs):
            lin.weight.copy_(w)
            if b is not None and lin.bias is not None:
                lin.bias.copy_(b)
        self.out_proj.weight.copy_(mha.out_proj.weight)
        if mha.out_proj.bias is not None and self.out_proj.bias is not None:
            self.out_proj.bias.copy_(mha.out_proj.bias)
        return self
