"""Positional encodings and modality / segment embeddings.

A :class:`PositionalEncoding` turns step indices into vectors (sinusoidal,
learned, or one-hot followed by a linear map) and combines them with the
input by sum (output size unchanged) or concatenation (output size grows by
``dim``). :class:`ModalityEmbedding` adds a learned vector per modality or
segment, so that joint self-attention over concatenated streams can tell them
apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["sinusoidal_positions", "PositionalEncoding", "ModalityEmbedding"]

KINDS = ("sinusoidal", "learned", "onehot")
COMBINES = ("sum", "concat")


def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Vaswani et al.'s encoding: ``PE[p, 2i] = sin(p / 10000^(2i/dim))``, ``PE[p, 2i+1] = cos(...)``.

    Parameters
    ----------
    positions : torch.Tensor [shape=(...,)]
        Step indices (any real values: fractional positions of a resampled
        stream work too).
    dim : int
        Encoding size; odd sizes drop the last cosine.

    Returns
    -------
    encoding : torch.Tensor [shape=(..., dim)], float32 unless positions is float64

    Examples
    --------
    >>> import torch
    >>> sinusoidal_positions(torch.arange(3), 4)[1]
    tensor([0.8415, 0.5403, 0.0100, 0.9999])
    """
    dtype = positions.dtype if positions.dtype.is_floating_point else torch.float32
    pos = positions.to(dtype)[..., None]
    half = torch.arange(0, dim, 2, device=positions.device, dtype=dtype)
    freq = torch.exp(-math.log(10000.0) * half / dim)
    out = torch.zeros(*positions.shape, dim, dtype=dtype, device=positions.device)
    out[..., 0::2] = torch.sin(pos * freq)
    out[..., 1::2] = torch.cos(pos * freq)[..., : dim // 2]
    return out


class PositionalEncoding(nn.Module):
    """Add or concatenate a position code to ``(B, T, d_model)`` inputs.

    Parameters
    ----------
    d_model : int
        Size of the inputs.
    kind : {"sinusoidal", "learned", "onehot"}
        ``"sinusoidal"``: fixed, any length. ``"learned"``: an embedding table
        of ``max_len`` rows. ``"onehot"``: one-hot position (``max_len``
        wide) through a linear layer.
    combine : {"sum", "concat"}
        Sum keeps ``d_model``; concat returns ``d_model + dim``.
    dim : int or None
        Size of the code; ``d_model`` by default (required to equal it for sum).
    max_len : int
        Longest sequence for the learned and one-hot kinds.
    scale_input : bool
        Multiply inputs by ``sqrt(d_model)`` first (as in the Transformer and MulT).
    dropout : float
        Dropout after combining.

    Examples
    --------
    >>> import torch
    >>> pe = PositionalEncoding(8, kind="onehot", combine="concat", dim=4, max_len=10)
    >>> pe(torch.zeros(2, 5, 8)).shape
    torch.Size([2, 5, 12])
    """

    def __init__(self, d_model: int, kind: str = "sinusoidal", combine: str = "sum",
                 dim: int | None = None, max_len: int = 1024, scale_input: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if combine not in COMBINES:
            raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}")
        dim = int(d_model if dim is None else dim)
        if combine == "sum" and dim != d_model:
            raise ValueError(f"combine='sum' needs dim == d_model, got dim={dim}, d_model={d_model}")
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        self.d_model, self.kind, self.combine, self.dim = int(d_model), kind, combine, dim
        self.max_len, self.scale_input = int(max_len), bool(scale_input)
        self.table = nn.Embedding(max_len, dim) if kind == "learned" else None
        self.onehot = nn.Linear(max_len, dim, bias=False) if kind == "onehot" else None
        if self.table is not None:
            nn.init.normal_(self.table.weight, std=0.02)
        self.drop = nn.Dropout(dropout)

    @property
    def out_dim(self) -> int:
        """Feature size of the output."""
        return self.d_model + (self.dim if self.combine == "concat" else 0)

    def codes(self, n_steps: int, device: torch.device | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``(n_steps, dim)`` position codes."""
        if self.kind != "sinusoidal" and n_steps > self.max_len:
            raise ValueError(f"sequence of {n_steps} steps is longer than max_len={self.max_len}")
        steps = torch.arange(n_steps, device=device)
        if self.kind == "sinusoidal":
            return sinusoidal_positions(steps, self.dim).to(dtype)
        if self.kind == "learned":
            return self.table(steps).to(dtype)
        eye = torch.nn.functional.one_hot(steps, self.max_len).to(self.onehot.weight.dtype)
        return self.onehot(eye).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, d_model)`` → ``(B, T, out_dim)``."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        if self.scale_input:
            x = x * math.sqrt(self.d_model)
        pe = self.codes(x.shape[1], x.device, x.dtype)[None]
        if self.combine == "sum":
            out = x + pe
        else:
            out = torch.cat([x, pe.expand(x.shape[0], -1, -1)], dim=-1)
        return self.drop(out)


class ModalityEmbedding(nn.Module):
    """A learned vector per modality (or segment) added to its features.

    Parameters
    ----------
    n_modalities : int
    d_model : int

    Examples
    --------
    >>> import torch
    >>> emb = ModalityEmbedding(3, 4)
    >>> emb(torch.zeros(2, 5, 4), 1).shape
    torch.Size([2, 5, 4])
    """

    def __init__(self, n_modalities: int, d_model: int) -> None:
        super().__init__()
        if n_modalities < 1:
            raise ValueError(f"n_modalities must be >= 1, got {n_modalities}")
        self.table = nn.Embedding(n_modalities, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x: torch.Tensor, modality: int | torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, T, d_model)`` plus the embedding of ``modality`` (an int for the
        whole tensor, or a ``(B, T)`` / ``(T,)`` tensor of ids per step)."""
        ids = torch.as_tensor(modality, device=x.device)
        if ids.dtype.is_floating_point:
            raise ValueError("modality must be an integer id or tensor of ids")
        n = self.table.num_embeddings
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise ValueError(f"modality ids must lie in [0, {n}), got {ids.min()}..{ids.max()}")
        return x + self.table(ids).to(x.dtype)
