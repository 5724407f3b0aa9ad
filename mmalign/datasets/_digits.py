"""Private helpers shared by the digit image generators: checks, coordinates,
ink boxes, batched resampling and pasting.

Coordinates (the one convention of all mmalign image generators):

- *pixel coordinates* ``(u, v)``: ``u`` along columns (rightwards), ``v`` along
  rows (downwards), continuous, pixel ``(row i, column j)`` covers
  ``[j, j + 1) × [i, i + 1)`` and has its centre at ``(j + 0.5, i + 0.5)``;
- *normalised coordinates* ``(x, y)`` in ``[-1, 1]``: ``x = 2 u / W - 1``,
  ``y = 2 v / H - 1`` — the ``align_corners=False`` convention of
  :func:`torch.nn.functional.grid_sample` / ``affine_grid`` (the image edges are
  at ±1, pixel centres at ``(2 j + 1) / W - 1``).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

# A pixel is ink when its grey level exceeds this (images in [0, 1]).
INK_THRESHOLD = 0.1


def as_rng(seed: Any, name: str = "seed") -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"{name} must be a non-negative integer or a numpy Generator, got {seed!r}")


def check_digits(images: Any, labels: Any, *, min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``images`` as C-contiguous float32 ``(n, h, w)`` in ``[0, 1]``; ``labels`` as int64 ``(n,)``."""
    if hasattr(images, "detach") and hasattr(images, "cpu"):
        images = images.detach().cpu().numpy()
    try:
        images = np.asarray(images)
    except (TypeError, ValueError) as err:
        raise ValueError(f"images cannot be read as a numeric array: {err}") from None
    if images.dtype == np.bool_ or not (
        np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)
    ):
        raise ValueError(f"images must hold real numbers, got dtype {images.dtype}")
    if images.ndim != 3:
        raise ValueError(f"images must have shape (n, height, width), got shape {images.shape}")
    if images.shape[0] < min_count:
        raise ValueError(f"images must hold at least {min_count} digit(s), got {images.shape[0]}")
    if min(images.shape[1:]) < 4:
        raise ValueError(f"images must be at least 4 x 4 pixels, got {images.shape[1:]}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise ValueError("images contains NaN or infinite values")
    if images.min() < 0.0 or images.max() > 1.0 + 1e-6:
        raise ValueError(
            f"images must lie in [0, 1] (got [{images.min():g}, {images.max():g}]); "
            "divide 0-255 grey levels by 255"
        )
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must have shape ({images.shape[0]},) to match images, got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels))):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    return images, labels.astype(np.int64)


def check_range(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    """A ``(lo, hi)`` pair with ``low <= lo <= hi <= high``."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or not (low <= lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {value!r}")
    return lo, hi


def pixel_centres(height: int, width: int) -> np.ndarray:
    """``(height * width, 2)`` normalised ``(x, y)`` of the pixel centres, row-major."""
    xs = (2.0 * np.arange(width) + 1.0) / width - 1.0
    ys = (2.0 * np.arange(height) + 1.0) / height - 1.0
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def half_size_matrix(height: int, width: int) -> np.ndarray:
    """``diag(W / 2, H / 2, 1)``: normalised → pixels relative to the image centre."""
    return np.diag([width / 2.0, height / 2.0, 1.0])


def apply_homography(matrices: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``points`` ``(P, 2)`` or ``(n, P, 2)`` by ``(n, 3, 3)`` matrices → ``(n, P, 2)``."""
    points = np.asarray(points, dtype=np.float64)
    x, y = points[..., 0], points[..., 1]
    m = matrices[:, :, :, None]                                        # (n, 3, 3, 1)
    mapped = [m[:, i, 0] * x + m[:, i, 1] * y + m[:, i, 2] for i in range(3)]   # each (n, P)
    return np.stack([mapped[0] / mapped[2], mapped[1] / mapped[2]], axis=-1)


def matrix_grid(matrices: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Sampling grid ``(n, height, width, 2)`` (float32) of ``(n, 3, 3)`` output → source
    matrices evaluated at the output pixel centres, with the homogeneous divide."""
    m = torch.from_numpy(np.ascontiguousarray(matrices, dtype=np.float32))
    if np.all(matrices[:, 2] == np.array([0.0, 0.0, 1.0])):  # affine: torch's own grid
        return F.affine_grid(m[:, :2], [m.shape[0], 1, height, width], align_corners=False)
    q = torch.from_numpy(pixel_centres(height, width).astype(np.float32))
    homog = torch.cat([q, torch.ones(q.shape[0], 1)], dim=1)                # (P, 3)
    mapped = torch.matmul(homog, m.transpose(1, 2))                          # (n, P, 3)
    denom = mapped[..., 2:]
    # beyond the horizon (denominator <= 0): far outside the source, so zero is read
    grid = torch.where(denom > 1e-6, mapped[..., :2] / denom.clamp_min(1e-6), torch.full_like(denom, -4.0))
    return grid.reshape(-1, height, width, 2)


def resample(images: np.ndarray, grid: np.ndarray | torch.Tensor) -> np.ndarray:
    """Bilinear read of ``images`` ``(n, h, w)`` at normalised ``grid`` ``(n, H, W, 2)``.

    Zero outside the source; ``align_corners=False``; float32 result clipped to ``[0, 1]``.
    """
    src = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    if not isinstance(grid, torch.Tensor):
        grid = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))
    with torch.no_grad():
        out = F.grid_sample(src, grid.float(), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        out.clamp_(0.0, 1.0)
    return out[:, 0].numpy()


def ink_boxes(images: np.ndarray, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """Tight boxes ``(n, 4)`` = ``(x0, y0, x1, y1)`` in pixel coordinates around the ink.

    ``x0`` is the left edge of the leftmost ink column, ``x1`` the right edge of
    the rightmost one (so a single ink pixel at column ``j`` gives ``x1 - x0 = 1``).
    Ink is ``> threshold``; an image with no such pixel falls back to any
    non-zero pixel, and one with none at all gets NaN.
    """
    n = images.shape[0]
    boxes = np.full((n, 4), np.nan)
    mask = images > threshold
    empty = ~mask.reshape(n, -1).any(axis=1)
    if empty.any():
        mask[empty] = images[empty] > 0
    cols = mask.any(axis=1)
    rows = mask.any(axis=2)
    ok = cols.any(axis=1)
    if ok.any():
        w, h = cols.shape[1], rows.shape[1]
        boxes[ok, 0] = np.argmax(cols[ok], axis=1)
        boxes[ok, 2] = w - np.argmax(cols[ok][:, ::-1], axis=1)
        boxes[ok, 1] = np.argmax(rows[ok], axis=1)
        boxes[ok, 3] = h - np.argmax(rows[ok][:, ::-1], axis=1)
    return boxes


def paste(canvas: np.ndarray, sprites: np.ndarray, left: np.ndarray, top: np.ndarray,
          index: np.ndarray | None = None) -> None:
    """Add ``sprites`` ``(m, h, w)`` into ``canvas`` ``(n, H, W)`` at integer top-left
    corners ``(left, top)``, in place; sprite ``k`` goes to canvas ``index[k]``
    (default ``k``).  Sprites must fit; two sprites of one canvas must not share a pixel."""
    m, h, w = sprites.shape
    index = np.arange(m) if index is None else np.asarray(index)
    rows = top[:, None] + np.arange(h)[None, :]
    cols = left[:, None] + np.arange(w)[None, :]
    canvas[index[:, None, None], rows[:, :, None], cols[:, None, :]] += sprites


def translate_and_clutter(
    digits: np.ndarray, size: int, n_clutter: int, clutter_size: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Digits pasted at random integer positions of a ``size × size`` canvas, with clutter.

    The protocol of DeepMind's ``mnist-cluttered`` generator (used for Mnih et
    al. 2014): clutter first — ``n_clutter`` crops of ``clutter_size`` pixels
    from random *other* source digits, each at a uniform position of the crop in
    its digit and of the piece on the canvas, summed and clipped to 1 — then the
    whole digit sprite at a uniform position that keeps it inside the canvas,
    added and clipped to ``[0, 1]``.  Clutter may overlap the digit.
    """
    n, h, w = digits.shape
    if h > size or w > size:
        raise ValueError(f"size = {size} is smaller than the {h} x {w} source digits")
    if n_clutter and clutter_size > min(h, w):
        raise ValueError(
            f"clutter_size = {clutter_size} is larger than the {h} x {w} source digits"
        )
    canvas = np.zeros((n, size, size), dtype=np.float32)
    clutter_boxes = np.zeros((n, n_clutter, 4), dtype=np.int64)
    clutter_sources = np.zeros((n, n_clutter), dtype=np.int64)
    for k in range(n_clutter):
        # a different digit than the sample's own (when there is one)
        src = (np.arange(n) + rng.integers(1, n, size=n)) % n if n > 1 else np.zeros(1, np.int64)
        sy = rng.integers(0, h - clutter_size + 1, size=n)
        sx = rng.integers(0, w - clutter_size + 1, size=n)
        ty = rng.integers(0, size - clutter_size + 1, size=n)
        tx = rng.integers(0, size - clutter_size + 1, size=n)
        r = sy[:, None, None] + np.arange(clutter_size)[None, :, None]
        c = sx[:, None, None] + np.arange(clutter_size)[None, None, :]
        pieces = digits[src[:, None, None], r, c]
        paste(canvas, pieces, tx, ty)
        clutter_boxes[:, k] = np.stack([tx, ty, tx + clutter_size, ty + clutter_size], axis=1)
        clutter_sources[:, k] = src
    np.minimum(canvas, 1.0, out=canvas)
    top = rng.integers(0, size - h + 1, size=n)
    left = rng.integers(0, size - w + 1, size=n)
    digit_layer = np.zeros_like(canvas)
    paste(digit_layer, digits, left, top)
    boxes = ink_boxes(digit_layer)
    canvas += digit_layer
    np.clip(canvas, 0.0, 1.0, out=canvas)
    return {
        "images": canvas,
        "offsets": np.stack([left, top], axis=1).astype(np.int64),
        "boxes": boxes,
        "clutter_boxes": clutter_boxes,
        "clutter_sources": clutter_sources,
    }
