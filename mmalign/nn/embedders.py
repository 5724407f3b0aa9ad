"""Input embedders for joint multimodal transformers: tokens, frames, image patches.

Each embedder maps one modality to ``(B, steps, d_model)`` vectors that a
self-attention encoder can take, position codes included:

- :class:`TokenEmbedding` — word ids through an embedding table, plus
  positions of the token index;
- :class:`FrameEmbedding` — feature frames of a time series (audio features
  such as MFCCs from :func:`audio_frames`, sensor windows from
  :func:`frame_signal`, video descriptors) through a linear projection or a
  ``Conv1d`` over time, plus positions of the frame index;
- :class:`PatchEmbedding` — ViT style: an image is cut into non-overlapping
  ``patch_size x patch_size`` patches (row-major), each flattened and linearly
  projected, plus *learned 2-D positions* (a learned row vector plus a learned
  column vector per patch).

Conventions
-----------
- Time series are ``(B, T, n_features)`` with a ``lengths`` tensor ``(B,)``
  for ragged batches; padded frames are zeroed before a ``Conv1d`` so that the
  output on a sample's valid frames does not depend on how much padding
  follows (the convolution sees the zeros its own padding would give).
- Images are ``(B, C, H, W)`` (or ``(B, H, W)`` when ``in_channels == 1``);
  ``H`` and ``W`` must be multiples of ``patch_size``. Patches are numbered
  row-major: patch ``k`` covers rows ``(k // grid_w) * p ...`` and columns
  ``(k % grid_w) * p ...``. Pixel boxes are ``(x0, y0, x1, y1)`` with ``x``
  along columns and edges at pixel boundaries (as in
  :mod:`mmalign.datasets.digit_scenes`).
- ``positions`` is ``"sinusoidal"`` (fixed, any length), ``"learned"`` (a
  table of ``max_len`` rows) or ``None`` (no position code) for tokens and
  frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..utils.validation import check_int
from .functional import lengths_to_padding_mask
from .positional import sinusoidal_positions

__all__ = ["TokenEmbedding", "FrameEmbedding", "PatchEmbedding", "audio_frames", "frame_signal"]

POSITION_KINDS = ("sinusoidal", "learned", None)


def _check_positions(positions: Any) -> None:
    if positions not in POSITION_KINDS:
        raise ValueError(f"positions must be one of {POSITION_KINDS}, got {positions!r}")


class _Positions(nn.Module):
    """Position codes ``(..., d_model)`` for integer (or real, sinusoidal only) positions."""

    def __init__(self, d_model: int, kind: str | None, max_len: int) -> None:
        super().__init__()
        _check_positions(kind)
        self.d_model, self.kind, self.max_len = int(d_model), kind, int(max_len)
        self.table = nn.Embedding(self.max_len, self.d_model) if kind == "learned" else None
        if self.table is not None:
            nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        if self.kind is None:
            return None
        if self.kind == "sinusoidal":
            return sinusoidal_positions(positions.to(torch.float32), self.d_model).to(dtype)
        if positions.numel() and int(positions.max()) >= self.max_len:
            raise ValueError(f"sequence of {int(positions.max()) + 1} steps is longer than "
                             f"max_len={self.max_len} of the learned positions")
        return self.table(positions.long()).to(dtype)


class TokenEmbedding(nn.Module):
    """Token ids → vectors, plus position codes of the token index.

    Parameters
    ----------
    num_embeddings : int >= 1
        Size of the id table (vocabulary plus any special ids).
    d_model : int >= 1
    padding_idx : int or None
        Id whose vector is 0 and gets no gradient (``<pad>`` = 0 in
        :class:`~mmalign.datasets.Vocabulary`).
    positions : {"sinusoidal", "learned", None}
    max_len : int
        Longest sequence for learned positions.

    Examples
    --------
    >>> import torch
    >>> emb = TokenEmbedding(10, 8)
    >>> emb(torch.tensor([[4, 5, 6], [7, 8, 0]])).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, num_embeddings: int, d_model: int, padding_idx: int | None = 0,
                 positions: str | None = "sinusoidal", max_len: int = 1024) -> None:
        super().__init__()
        n = check_int(num_embeddings, "num_embeddings", 1)
        d = check_int(d_model, "d_model", 1)
        check_int(max_len, "max_len", 1)
        if padding_idx is not None and not 0 <= check_int(padding_idx, "padding_idx", 0) < n:
            raise ValueError(f"padding_idx must lie in [0, {n}), got {padding_idx}")
        self.d_model = d
        self.table = nn.Embedding(n, d, padding_idx=padding_idx)
        nn.init.normal_(self.table.weight, std=0.02)
        if padding_idx is not None:
            with torch.no_grad():
                self.table.weight[padding_idx].zero_()
        self.pos = _Positions(d, positions, max_len)

    def forward(self, ids: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Embed ``ids``.

        Parameters
        ----------
        ids : torch.LongTensor [shape=(B, T)]
        positions : torch.Tensor [shape=(B, T) or (T,)] or None
            Position of each token; default ``0, 1, ..., T - 1``.

        Returns
        -------
        vectors : torch.Tensor [shape=(B, T, d_model)]
        """
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.is_floating_point():
            raise ValueError(f"ids must be an integer tensor of shape (B, T), got "
                             f"{getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}")
        n = self.table.num_embeddings
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise ValueError(f"ids must lie in [0, {n}), got {int(ids.min())}..{int(ids.max())}")
        x = self.table(ids)
        if positions is None:
            positions = torch.arange(ids.shape[1], device=ids.device)
        pe = self.pos(positions, x.dtype)
        return x if pe is None else x + pe


class FrameEmbedding(nn.Module):
    """Feature frames ``(B, T, input_dim)`` → ``(B, T, d_model)``, plus position codes.

    A linear projection of every frame (``conv_kernel == 1``) or a ``Conv1d``
    over time with an odd kernel (length kept, ``padding = kernel // 2``), so
    that each output sees ``conv_kernel`` neighbouring frames. Padded frames
    are zeroed first (see the module docstring).

    Parameters
    ----------
    input_dim : int >= 1
        Features per frame (e.g. MFCCs from :func:`audio_frames`, or
        ``channels * frame_length`` for :func:`frame_signal` windows).
    d_model : int >= 1
    conv_kernel : int >= 1, odd
    positions : {"sinusoidal", "learned", None}
    max_len : int
        Longest stream for learned positions.

    Examples
    --------
    >>> import torch
    >>> emb = FrameEmbedding(13, 8, conv_kernel=3)
    >>> x = torch.randn(2, 50, 13)
    >>> out = emb(x, lengths=torch.tensor([50, 30]))
    >>> out.shape
    torch.Size([2, 50, 8])
    >>> torch.allclose(out[1, :30], emb(x[1:2, :30])[0], atol=1e-6)  # padding does not leak
    True
    """

    def __init__(self, input_dim: int, d_model: int, conv_kernel: int = 1,
                 positions: str | None = "sinusoidal", max_len: int = 4096) -> None:
        super().__init__()
        self.input_dim = check_int(input_dim, "input_dim", 1)
        self.d_model = check_int(d_model, "d_model", 1)
        k = check_int(conv_kernel, "conv_kernel", 1)
        if k % 2 == 0:
            raise ValueError(f"conv_kernel must be odd (lengths are kept), got {k}")
        check_int(max_len, "max_len", 1)
        self.conv_kernel = k
        if k == 1:
            self.proj: nn.Module = nn.Linear(self.input_dim, self.d_model)
        else:
            self.proj = nn.Conv1d(self.input_dim, self.d_model, k, padding=k // 2)
        self.pos = _Positions(self.d_model, positions, max_len)

    def project(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The projection alone (no positions); padded frames zeroed first."""
        if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[-1] != self.input_dim:
            raise ValueError(f"x must have shape (B, T, {self.input_dim}), got "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if lengths is not None:
            pad = lengths_to_padding_mask(lengths.to(x.device), x.shape[1])
            x = x.masked_fill(pad[..., None], 0.0)
        if self.conv_kernel == 1:
            return self.proj(x)
        return self.proj(x.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                positions: torch.Tensor | None = None) -> torch.Tensor:
        """Embed frames.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, T, input_dim)]
        lengths : torch.LongTensor [shape=(B,)] or None
            Valid frames per sample (None: all).
        positions : torch.Tensor [shape=(B, T) or (T,)] or None
            Default ``0, 1, ..., T - 1`` (real values allowed with sinusoidal codes).

        Returns
        -------
        vectors : torch.Tensor [shape=(B, T, d_model)]
        """
        h = self.project(x, lengths)
        if positions is None:
            positions = torch.arange(x.shape[1], device=x.device)
        pe = self.pos(positions, h.dtype)
        return h if pe is None else h + pe


def _as_pair(value: Any, name: str) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
        return check_int(value[0], name, 1), check_int(value[1], name, 1)
    v = check_int(value, name, 1)
    return v, v


class PatchEmbedding(nn.Module):
    """ViT-style patch embedding with learned 2-D positions.

    ``(B, C, H, W)`` images are cut into ``grid_h x grid_w`` non-overlapping
    patches of ``patch_size x patch_size`` pixels (row-major order), each
    flattened to ``C * p * p`` values (channel-major, then rows, then
    columns: :meth:`patchify`), projected by one linear layer, and given the
    sum of a learned row vector and a learned column vector (2-D positions
    that generalise over rows and columns separately).

    Parameters
    ----------
    image_size : int or (int, int)
        ``H`` (and ``W``); multiples of ``patch_size``.
    patch_size : int or (int, int)
    in_channels : int
    d_model : int

    Attributes
    ----------
    grid : (int, int)
        Patches per column and per row, ``(H // p_h, W // p_w)``.
    n_patches : int
    patch_dim : int
        ``in_channels * p_h * p_w``, the size of a flattened patch.

    Examples
    --------
    >>> import torch
    >>> emb = PatchEmbedding(64, 16, in_channels=1, d_model=8)
    >>> emb.grid, emb.n_patches, emb.patch_dim
    ((4, 4), 16, 256)
    >>> images = torch.rand(2, 64, 64)
    >>> emb(images).shape
    torch.Size([2, 16, 8])
    >>> torch.equal(emb.unpatchify(emb.patchify(images))[:, 0], images)
    True
    >>> emb.patches_in_boxes([[0.0, 0.0, 20.0, 10.0]]).nonzero()[:, 1].tolist()  # boxes -> patches
    [0, 1]
    """

    def __init__(self, image_size: int | tuple[int, int] = 64, patch_size: int | tuple[int, int] = 8,
                 in_channels: int = 1, d_model: int = 64) -> None:
        super().__init__()
        self.image_size = _as_pair(image_size, "image_size")
        self.patch_size = _as_pair(patch_size, "patch_size")
        self.in_channels = check_int(in_channels, "in_channels", 1)
        self.d_model = check_int(d_model, "d_model", 1)
        (h, w), (ph, pw) = self.image_size, self.patch_size
        if h % ph or w % pw:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size "
                             f"{self.patch_size}")
        self.grid = (h // ph, w // pw)
        self.n_patches = self.grid[0] * self.grid[1]
        self.patch_dim = self.in_channels * ph * pw
        self.proj = nn.Linear(self.patch_dim, self.d_model)
        self.row = nn.Embedding(self.grid[0], self.d_model)
        self.col = nn.Embedding(self.grid[1], self.d_model)
        nn.init.normal_(self.row.weight, std=0.02)
        nn.init.normal_(self.col.weight, std=0.02)

    def _check_images(self, images: torch.Tensor) -> torch.Tensor:
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.ndim == 3 and self.in_channels == 1:
            images = images[:, None]
        c, (h, w) = self.in_channels, self.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (c, h, w):
            raise ValueError(f"images must have shape (B, {c}, {h}, {w})"
                             + (f" or (B, {h}, {w})" if c == 1 else "")
                             + f", got {tuple(images.shape)}")
        return images

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` (or ``(B, H, W)``) → ``(B, n_patches, patch_dim)``, row-major patches."""
        x = self._check_images(images)
        b, c = x.shape[:2]
        (gh, gw), (ph, pw) = self.grid, self.patch_size
        x = x.reshape(b, c, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(b, gh * gw, c * ph * pw)

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`patchify`: ``(B, n_patches, patch_dim)`` → ``(B, C, H, W)``."""
        if patches.ndim != 3 or tuple(patches.shape[1:]) != (self.n_patches, self.patch_dim):
            raise ValueError(f"patches must have shape (B, {self.n_patches}, {self.patch_dim}), "
                             f"got {tuple(patches.shape)}")
        b = patches.shape[0]
        (gh, gw), (ph, pw), c = self.grid, self.patch_size, self.in_channels
        x = patches.reshape(b, gh, gw, c, ph, pw).permute(0, 3, 1, 4, 2, 5)
        return x.reshape(b, c, gh * ph, gw * pw)

    def patch_boxes(self) -> np.ndarray:
        """Pixel box ``(x0, y0, x1, y1)`` of every patch, ``(n_patches, 4)`` float64, row-major."""
        gw = self.grid[1]
        ph, pw = self.patch_size
        r, c = np.divmod(np.arange(self.n_patches), gw)
        return np.stack([c * pw, r * ph, (c + 1) * pw, (r + 1) * ph], axis=1).astype(np.float64)

    def patches_in_boxes(self, boxes: Any) -> torch.Tensor:
        """Which patches each box overlaps (with positive area).

        Parameters
        ----------
        boxes : array-like [shape=(K, 4)]
            ``(x0, y0, x1, y1)`` pixel boxes (e.g. a digit's ink box); rows
            with NaN give no patch.

        Returns
        -------
        masks : torch.BoolTensor [shape=(K, n_patches)]
        """
        b = np.asarray(boxes, dtype=np.float64)
        if b.ndim != 2 or b.shape[1] != 4:
            raise ValueError(f"boxes must have shape (K, 4) (x0, y0, x1, y1), got {b.shape}")
        pb = self.patch_boxes()
        with np.errstate(invalid="ignore"):
            ox = np.minimum(b[:, None, 2], pb[None, :, 2]) - np.maximum(b[:, None, 0], pb[None, :, 0])
            oy = np.minimum(b[:, None, 3], pb[None, :, 3]) - np.maximum(b[:, None, 1], pb[None, :, 1])
            inside = (ox > 0) & (oy > 0)
        return torch.from_numpy(inside)

    def positions(self) -> torch.Tensor:
        """Learned 2-D position codes ``(n_patches, d_model)`` (row vector + column vector)."""
        gh, gw = self.grid
        dev = self.row.weight.device
        rows = torch.arange(gh, device=dev).repeat_interleave(gw)
        cols = torch.arange(gw, device=dev).repeat(gh)
        return self.row(rows) + self.col(cols)

    def project(self, images: torch.Tensor) -> torch.Tensor:
        """Linear projection of the patches alone (no positions): ``(B, n_patches, d_model)``."""
        return self.proj(self.patchify(images).to(self.proj.weight.dtype))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, n_patches, d_model)``: projected patches plus 2-D positions."""
        return self.project(images) + self.positions()[None]


# --------------------------------------------------------------------------- frame features

def audio_frames(y: np.ndarray, sr: int, *, n_mfcc: int = 20, hop_length: int = 512,
                 deltas: bool = False, standardize: bool = True) -> np.ndarray:
    """MFCC frames of an audio signal for a :class:`FrameEmbedding` (librosa).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono signal.
    sr : int > 0
        Sampling rate in Hz.
    n_mfcc : int > 0
    hop_length : int > 0
        Samples between frames (frame rate ``sr / hop_length``).
    deltas : bool
        Append first-order deltas (``librosa.feature.delta``): ``2 * n_mfcc`` features.
    standardize : bool
        Zero mean, unit variance per coefficient over the signal's frames
        (cepstral mean and variance normalisation).

    Returns
    -------
    frames : np.ndarray [shape=(n_frames, n_mfcc or 2 * n_mfcc)], float32

    Examples
    --------
    >>> import numpy as np
    >>> sr = 8000
    >>> y = np.sin(2 * np.pi * 440 * np.arange(sr) / sr).astype(np.float32)
    >>> audio_frames(y, sr, n_mfcc=13, hop_length=256, deltas=True).shape
    (32, 26)
    """
    from ..features.audio import mfcc

    m = np.asarray(mfcc(y, sr, n_mfcc=n_mfcc, hop_length=hop_length), dtype=np.float64)
    if deltas:
        import librosa

        width = min(9, m.shape[0] - (1 - m.shape[0] % 2))
        d = (librosa.feature.delta(m.T, width=width).T if width >= 3 else np.zeros_like(m))
        m = np.concatenate([m, d], axis=1)
    if standardize:
        sd = m.std(axis=0)
        m = (m - m.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return m.astype(np.float32)


def frame_signal(x: Any, frame_length: int, hop_length: int | None = None) -> np.ndarray:
    """Cut a multichannel sensor stream into flattened windows for a :class:`FrameEmbedding`.

    Parameters
    ----------
    x : array-like [shape=(n_samples,) or (n_samples, channels)]
        E.g. accelerometer samples.
    frame_length : int >= 1
        Samples per window.
    hop_length : int >= 1 or None
        Samples between window starts; default ``frame_length`` (no overlap).
        A last incomplete window is dropped.

    Returns
    -------
    frames : np.ndarray [shape=(n_frames, frame_length * channels)], float32
        Window ``t`` holds samples ``t * hop ... t * hop + frame_length - 1``,
        time-major (sample 0's channels first).

    Examples
    --------
    >>> import numpy as np
    >>> frame_signal(np.arange(20).reshape(10, 2), frame_length=4, hop_length=2).shape
    (4, 8)
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"x must have shape (n_samples,) or (n_samples, channels), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("x contains NaN or infinite values")
    frame_length = check_int(frame_length, "frame_length", 1)
    hop = frame_length if hop_length is None else check_int(hop_length, "hop_length", 1)
    if a.shape[0] < frame_length:
        raise ValueError(f"frame_length ({frame_length}) is longer than the signal ({a.shape[0]} samples)")
    n = 1 + (a.shape[0] - frame_length) // hop
    idx = np.arange(n)[:, None] * hop + np.arange(frame_length)[None, :]
    return a[idx].reshape(n, -1).astype(np.float32)

