"""Multi-digit scenes with captions and the box of every word's referent
(an offline image ↔ caption task for show-attend-tell attention).

Each scene is a black ``size × size`` image (64 × 64 by default) holding 1–3
source digits, each scaled by a factor uniform in ``scale`` and placed at a
uniform random position so that no two digits' ink boxes overlap or touch
(rejection sampling, at most ``max_tries`` rounds, then a ``ValueError`` rather
than a hang).  The caption names the digits **left to right** (by the
x-coordinate of their ink-box centres, ties broken top to bottom)::

    ["two", "seven", "one"]

and, with ``spatial_words=True``, states the relation of each digit to the
next one::

    ["two", "left", "of", "seven", "above", "one"]

(``"above"`` / ``"below"`` when the vertical offset between the two centres is
larger than the horizontal one, ``"left of"`` otherwise; each relation reads
between the digit before it and the digit after it).

Ground truth: for each caption token, the ink box of the digit it names (or
``None`` for the function words ``left``, ``of``, ``above``, ``below``), as
``(x0, y0, x1, y1)`` in pixel coordinates — ``x`` along columns, edges at pixel
boundaries (the single pixel at row ``i``, column ``j`` has box
``(j, i, j + 1, i + 1)``), the tight box around the digit's ink (grey level
> 0.1) measured on the rendered digit alone.  Divide by ``size / 2`` and
subtract 1 for normalised ``[-1, 1]`` (``align_corners=False``) coordinates.

Token ids come from a fixed :class:`~mmalign.datasets.Vocabulary`
(``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2, ``<unk>`` 3, then ``zero`` … ``nine``,
``left``, ``of``, ``above``, ``below``), the same for every call.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..utils.validation import check_bool, check_int
from ._digits import as_rng, check_digits, check_range, ink_boxes, matrix_grid, paste, resample
from .sequence_tasks import Vocabulary

__all__ = ["DigitScenes", "digit_scenes", "DIGIT_WORDS", "SPATIAL_WORDS", "scene_vocabulary"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPATIAL_WORDS = ("left", "of", "above", "below")
_RENDER_CHUNK = 512
_GAP_PX = 3.0  # empty pixels kept between two digits' ink boxes and to the border


def scene_vocabulary() -> Vocabulary:
    """The fixed vocabulary of :func:`digit_scenes` captions.

    Examples
    --------
    >>> from mmalign.datasets import scene_vocabulary
    >>> v = scene_vocabulary()
    >>> len(v), v["zero"], v["nine"], v["below"]
    (18, 4, 13, 17)
    """
    return Vocabulary(DIGIT_WORDS + SPATIAL_WORDS)


@dataclass
class DigitScenes:
    """Multi-digit scenes, captions and per-word boxes (see the module docstring).

    Attributes
    ----------
    images : np.ndarray [float32], shape (n, size, size)
        In ``[0, 1]``.
    labels : list of np.ndarray [int64], each shape (k_i,)
        The digits of each scene, left to right.
    boxes : list of np.ndarray [float64], each shape (k_i, 4)
        Their ink boxes ``(x0, y0, x1, y1)`` in pixels, left to right.
    captions : list of list of str
    word_boxes : list of list of (np.ndarray of shape (4,) or None)
        For each caption token, the box of the digit it names, or ``None``.
    word_digits : list of list of int
        For each caption token, the index (into ``labels[i]`` / ``boxes[i]``)
        of the digit it names, or -1.
    scales : list of np.ndarray [float64], each shape (k_i,)
        Scale of each digit (output pixels per source pixel), left to right.
    source_indices : list of np.ndarray [int64], each shape (k_i,)
        Index of each digit in the source images, left to right.
    vocabulary : Vocabulary
        :func:`scene_vocabulary`.
    """

    images: np.ndarray
    labels: list[np.ndarray]
    boxes: list[np.ndarray]
    captions: list[list[str]]
    word_boxes: list[list[np.ndarray | None]]
    word_digits: list[list[int]]
    scales: list[np.ndarray]
    source_indices: list[np.ndarray]
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def encode(self, *, bos: bool = True, eos: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Caption token ids, padded with ``<pad>`` (0).

        Returns
        -------
        ids : np.ndarray [int64], shape (n, max_length)
        lengths : np.ndarray [int64], shape (n,)
            Including ``<bos>`` / ``<eos>`` when requested.
        """
        seqs = [self.vocabulary.encode(c, bos=bos, eos=eos) for c in self.captions]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        ids = np.full((len(seqs), int(lengths.max(initial=0))), Vocabulary.PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        return ids, lengths

    def token_boxes(self, *, bos: bool = True, eos: bool = True) -> np.ndarray:
        """Boxes aligned with :meth:`encode`'s ids: ``(n, max_length, 4)`` float64,
        NaN for ``<bos>``, ``<eos>``, padding and function words."""
        _, lengths = self.encode(bos=bos, eos=eos)
        out = np.full((len(self), int(lengths.max(initial=0)), 4), np.nan)
        start = 1 if bos else 0
        for i, words in enumerate(self.word_boxes):
            for t, box in enumerate(words):
                if box is not None:
                    out[i, start + t] = box
        return out


def _check_n_digits(value: Any) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        value = (value, value)
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"n_digits must be an int or a pair (min, max), got {value!r}") from None
    lo = check_int(lo, "n_digits[0]", 1)
    hi = check_int(hi, "n_digits[1]", 1)
    if lo > hi:
        raise ValueError(f"n_digits must have min <= max, got {value!r}")
    return lo, hi


def _render_slot(digits: np.ndarray, ink: np.ndarray, scales: np.ndarray, left: np.ndarray,
                 top: np.ndarray, patch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``digits`` scaled by ``scales`` with their ink box's top-left at
    ``(left, top)`` into ``patch × patch`` tiles; returns the tiles and their
    integer canvas positions (left of / above the scaled source frame)."""
    h, w = digits.shape[1:]
    o_x = np.floor(left - scales * ink[:, 0]).astype(np.int64)
    o_y = np.floor(top - scales * ink[:, 1]).astype(np.int64)
    half_p, half_w, half_h = patch / 2.0, w / 2.0, h / 2.0
    m = np.zeros((digits.shape[0], 3, 3))
    # x_src = u_src / half_w - 1 with u_src = (o_x + (x_patch + 1) half_p - left) / s + ink_x0
    m[:, 0, 0] = half_p / (scales * half_w)
    m[:, 0, 2] = (o_x + half_p - left) / (scales * half_w) + ink[:, 0] / half_w - 1.0
    m[:, 1, 1] = half_p / (scales * half_h)
    m[:, 1, 2] = (o_y + half_p - top) / (scales * half_h) + ink[:, 1] / half_h - 1.0
    m[:, 2, 2] = 1.0
    return resample(digits, matrix_grid(m, patch, patch)), o_x, o_y


def _overlapping(boxes: np.ndarray, active: np.ndarray, gap: float) -> np.ndarray:
    """``(m,)`` whether any two active boxes of a scene overlap (or are closer than ``gap``)."""
    x0, y0, x1, y1 = (boxes[..., c] for c in range(4))
    sep_x = (x0[:, :, None] >= x1[:, None, :] + gap) | (x0[:, None, :] >= x1[:, :, None] + gap)
    sep_y = (y0[:, :, None] >= y1[:, None, :] + gap) | (y0[:, None, :] >= y1[:, :, None] + gap)
    clash = ~(sep_x | sep_y)
    k = boxes.shape[1]
    clash &= active[:, :, None] & active[:, None, :] & ~np.eye(k, dtype=bool)[None]
    return clash.any(axis=(1, 2))


def digit_scenes(
    images: Any,
    labels: Any,
    n: int,
    size: int = 64,
    n_digits: int | tuple[int, int] = (1, 3),
    seed: int | np.random.Generator = 0,
    spatial_words: bool = False,
    *,
    scale: tuple[float, float] = (0.6, 1.0),
    max_tries: int = 100,
) -> DigitScenes:
    """Scenes of non-overlapping digits with left-to-right captions and word boxes.

    Parameters
    ----------
    images : np.ndarray, shape (N, h, w)
        Source digits in ``[0, 1]``, e.g. from :func:`~mmalign.datasets.load_mnist`;
        drawn with replacement.
    labels : np.ndarray, shape (N,)
        Their classes, ``0 … 9``.
    n : int >= 1
        Number of scenes.
    size : int
        Side of the square scenes in pixels.
    n_digits : int or (int, int)
        Number of digits per scene, or the inclusive range it is drawn from uniformly.
    seed : int >= 0 or numpy.random.Generator
        Use ``seed=epoch`` to regenerate training scenes each epoch.
    spatial_words : bool
        Insert ``"left of"`` / ``"above"`` / ``"below"`` between consecutive digits.
    scale : (float, float)
        Range of the uniform scale factor of each digit (output pixels per source pixel).
    max_tries : int >= 1
        Rounds of rejection sampling of the positions before giving up.

    Returns
    -------
    DigitScenes

    Raises
    ------
    ValueError
        On bad arguments, labels outside ``0 … 9``, or if the digits cannot be
        placed without overlap within ``max_tries`` rounds.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.datasets import digit_scenes
    >>> digits = np.zeros((2, 28, 28), np.float32); digits[:, 6:22, 11:17] = 1.0
    >>> s = digit_scenes(digits, [1, 7], n=2, n_digits=2, seed=0, spatial_words=True)
    >>> s.images.shape, s.captions[1]
    ((2, 64, 64), ['seven', 'below', 'one'])
    >>> s.word_boxes[1][0], s.word_boxes[1][1]
    (array([31., 40., 37., 55.]), None)
    >>> ids, lengths = s.encode()
    >>> ids.shape[0], int(ids[0, 0]), s.token_boxes().shape[2]
    (2, 1, 4)
    """
    images, labels = check_digits(images, labels)
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"labels must be digit classes 0 ... 9, got range [{labels.min()}, {labels.max()}]")
    n = check_int(n, "n", 1)
    size = check_int(size, "size", 8)
    lo_k, hi_k = _check_n_digits(n_digits)
    s_lo, s_hi = check_range(scale, "scale", 1e-3, 8.0)
    if s_lo <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    check_bool(spatial_words, "spatial_words")
    max_tries = check_int(max_tries, "max_tries", 1)
    rng = as_rng(seed)
    n_src, h, w = images.shape

    counts = rng.integers(lo_k, hi_k + 1, size=n)
    active = np.arange(hi_k)[None, :] < counts[:, None]                    # (n, K)
    src = rng.integers(0, n_src, size=(n, hi_k))
    scales = rng.uniform(s_lo, s_hi, size=(n, hi_k))
    src_box = ink_boxes(images)
    src_box = np.where(np.isnan(src_box), np.array([0.0, 0.0, w, h]), src_box)[src]   # (n, K, 4)
    ink_w = (src_box[..., 2] - src_box[..., 0]) * scales
    ink_h = (src_box[..., 3] - src_box[..., 1]) * scales
    if (ink_w > size - 2 * _GAP_PX).any() or (ink_h > size - 2 * _GAP_PX).any():
        raise ValueError(f"size = {size} is too small for digits at scale up to {s_hi}")

    # rejection sampling of the ink boxes' top-left corners, whole scenes at a time
    left = np.zeros((n, hi_k))
    top = np.zeros((n, hi_k))
    todo = np.arange(n)
    for _ in range(max_tries):
        m = todo.size
        left[todo] = _GAP_PX + rng.random((m, hi_k)) * (size - 2 * _GAP_PX - ink_w[todo])
        top[todo] = _GAP_PX + rng.random((m, hi_k)) * (size - 2 * _GAP_PX - ink_h[todo])
        placed = np.stack([left[todo], top[todo], left[todo] + ink_w[todo], top[todo] + ink_h[todo]], -1)
        todo = todo[_overlapping(placed, active[todo], _GAP_PX)]
        if todo.size == 0:
            break
    else:
        raise ValueError(
            f"could not place {hi_k} digit(s) without overlap in a {size} x {size} scene after "
            f"max_tries = {max_tries} rounds ({todo.size} scene(s) left); use a larger size, "
            "fewer digits (n_digits) or a smaller scale"
        )

    # render each digit into a small patch (one batched resampling per slot and
    # chunk of scenes) and add the patches into a padded canvas; output pixel u
    # reads source pixel (u - left) / scale + ink_x0, and the same for rows
    patch = int(np.ceil(s_hi * max(h, w))) + 2         # holds the whole scaled source frame
    canvas = np.empty((n, size, size), dtype=np.float32)
    slot_boxes = np.full((n, hi_k, 4), np.nan)
    for lo in range(0, n, _RENDER_CHUNK):
        hi = min(n, lo + _RENDER_CHUNK)
        padded = np.zeros((hi - lo, size + 2 * patch, size + 2 * patch), dtype=np.float32)
        for j in range(hi_k):
            rows = lo + np.flatnonzero(active[lo:hi, j])
            if rows.size == 0:
                continue
            layer, o_x, o_y = _render_slot(images[src[rows, j]], src_box[rows, j], scales[rows, j],
                                           left[rows, j], top[rows, j], patch)
            slot_boxes[rows, j] = ink_boxes(layer) + np.stack([o_x, o_y, o_x, o_y], axis=1)
            paste(padded, layer, o_x + patch, o_y + patch, index=rows - lo)  # ink never overlaps
        canvas[lo:hi] = np.clip(padded[:, patch:-patch, patch:-patch], 0.0, 1.0)

    vocab = scene_vocabulary()
    out_labels, out_boxes, captions, word_boxes, word_digits, out_scales, out_src = [], [], [], [], [], [], []
    for i in range(n):
        k = int(counts[i])
        b = slot_boxes[i, :k]
        cx, cy = (b[:, 0] + b[:, 2]) / 2.0, (b[:, 1] + b[:, 3]) / 2.0
        order = np.lexsort((cy, cx))                                      # by x, then y
        b, cx, cy = b[order], cx[order], cy[order]
        digits = labels[src[i, :k]][order]
        tokens: list[str] = []
        refs: list[int] = []
        for t in range(k):
            if spatial_words and t > 0:
                dx, dy = cx[t] - cx[t - 1], cy[t] - cy[t - 1]
                rel = ("left", "of") if abs(dy) <= dx else (("above",) if dy > 0 else ("below",))
                tokens.extend(rel)
                refs.extend([-1] * len(rel))
            tokens.append(DIGIT_WORDS[int(digits[t])])
            refs.append(t)
        out_labels.append(digits)
        out_boxes.append(b)
        captions.append(tokens)
        word_digits.append(refs)
        word_boxes.append([b[r].copy() if r >= 0 else None for r in refs])
        out_scales.append(scales[i, :k][order])
        out_src.append(src[i, :k][order])
    return DigitScenes(
        images=canvas, labels=out_labels, boxes=out_boxes, captions=captions,
        word_boxes=word_boxes, word_digits=word_digits, scales=out_scales,
        source_indices=out_src, vocabulary=vocab,
    )
