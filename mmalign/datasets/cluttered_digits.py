"""Translated and cluttered digits with the digit's box recorded (the recurrent
attention model benchmark of Mnih et al., NIPS 2014).

The protocol of DeepMind's ``mnist-cluttered`` generator, which produced the
paper's data: on a black ``size × size`` canvas (60 × 60 in the paper)

1. *clutter* (cluttered only): ``n_clutter`` pieces (4 in the paper) of
   ``clutter_size × clutter_size`` pixels (8 × 8), each cut at a uniform
   position from a random other source digit and added at a uniform position
   of the canvas; the sum is clipped to 1.  Pieces may overlap each other and
   the digit, and many are blank (cut from a digit's empty border) — as in the
   original generator;
2. the whole source digit (28 × 28) added at a uniform integer position that
   keeps it inside the canvas, and the result clipped to ``[0, 1]``.

Ground truth per sample: ``boxes``, the tight box of the digit's ink (grey level
> 0.1, measured on the digit alone) as ``(x0, y0, x1, y1)`` in pixel
coordinates — ``x`` along columns, edges at pixel boundaries, so the single
pixel at row ``i``, column ``j`` has box ``(j, i, j + 1, i + 1)``; ``offsets``,
the top-left ``(column, row)`` of the pasted 28 × 28 frame; and the clutter
pieces' boxes.  :attr:`ClutteredDigits.centers` gives the ink-box centres in
the normalised ``[-1, 1]`` (``align_corners=False``) coordinates in which glimpse
locations are expressed: ``x = 2 u / W - 1`` for a pixel coordinate ``u``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..utils.validation import check_int
from ._digits import as_rng, check_digits, translate_and_clutter

__all__ = ["ClutteredDigits", "translated_digits", "cluttered_digits"]


@dataclass
class ClutteredDigits:
    """Translated (and cluttered) digits with their boxes.

    Attributes
    ----------
    images : np.ndarray [float32], shape (n, size, size)
        In ``[0, 1]``.
    labels : np.ndarray [int64], shape (n,)
    boxes : np.ndarray [float64], shape (n, 4)
        Ink box ``(x0, y0, x1, y1)`` of the digit in pixels.
    offsets : np.ndarray [int64], shape (n, 2)
        Top-left ``(column, row)`` of the pasted source frame.
    clutter_boxes : np.ndarray [int64], shape (n, n_clutter, 4)
        Pixel boxes of the clutter pieces (``n_clutter = 0`` for translated digits).
    clutter_sources : np.ndarray [int64], shape (n, n_clutter)
        Index (into the input images) of the digit each clutter piece was cut from.
    """

    images: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray
    offsets: np.ndarray
    clutter_boxes: np.ndarray
    clutter_sources: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def centers(self) -> np.ndarray:
        """``(n, 2)`` ink-box centres ``(x, y)`` in normalised ``[-1, 1]`` coordinates."""
        h, w = self.images.shape[1:]
        cx = (self.boxes[:, 0] + self.boxes[:, 2]) / w - 1.0
        cy = (self.boxes[:, 1] + self.boxes[:, 3]) / h - 1.0
        return np.stack([cx, cy], axis=1)


def translated_digits(
    images: Any, labels: Any, size: int = 60, seed: int | np.random.Generator = 0
) -> ClutteredDigits:
    """Digits pasted at a random position of a larger black image (Mnih et al. 2014).

    Parameters
    ----------
    images : np.ndarray, shape (n, h, w)
        Source digits in ``[0, 1]``, e.g. from :func:`~mmalign.datasets.load_mnist`.
    labels : np.ndarray, shape (n,)
    size : int
        Side of the square output in pixels, at least the source size (60 in the paper).
    seed : int >= 0 or numpy.random.Generator
        Use ``seed=epoch`` to regenerate training images each epoch.

    Returns
    -------
    ClutteredDigits
        With no clutter pieces.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.datasets import translated_digits
    >>> digits = np.zeros((3, 28, 28), np.float32); digits[:, 4:24, 10:18] = 1.0
    >>> t = translated_digits(digits, [1, 1, 1], size=60, seed=0)
    >>> t.images.shape, bool(np.all(t.boxes[:, 2] - t.boxes[:, 0] == 8))
    ((3, 60, 60), True)
    """
    return cluttered_digits(images, labels, size=size, n_clutter=0, seed=seed)


def cluttered_digits(
    images: Any,
    labels: Any,
    size: int = 60,
    n_clutter: int = 4,
    clutter_size: int = 8,
    seed: int | np.random.Generator = 0,
) -> ClutteredDigits:
    """Translated digits with clutter cut from other digits (Mnih et al. 2014).

    Parameters
    ----------
    images : np.ndarray, shape (n, h, w)
        Source digits in ``[0, 1]``; clutter is cut from these too.
    labels : np.ndarray, shape (n,)
    size : int
        Side of the square output in pixels (60 in the paper; 100 is also used).
    n_clutter : int >= 0
        Number of clutter pieces (4 in the paper for 60 × 60; 8 for 100 × 100).
    clutter_size : int >= 1
        Side of a clutter piece in pixels (8 in the paper).
    seed : int >= 0 or numpy.random.Generator
        Use ``seed=epoch`` to regenerate training images each epoch.

    Returns
    -------
    ClutteredDigits

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.datasets import cluttered_digits
    >>> digits = np.zeros((3, 28, 28), np.float32); digits[:, 4:24, 10:18] = 1.0
    >>> c = cluttered_digits(digits, [1, 1, 1], seed=0)
    >>> c.images.shape, c.clutter_boxes.shape
    ((3, 60, 60), (3, 4, 4))
    """
    images, labels = check_digits(images, labels)
    size = check_int(size, "size", 1)
    n_clutter = check_int(n_clutter, "n_clutter", 0)
    clutter_size = check_int(clutter_size, "clutter_size", 1)
    h, w = images.shape[1:]
    if size < max(h, w):
        raise ValueError(f"size = {size} is smaller than the {h} x {w} source digits")
    if n_clutter and clutter_size > min(h, w):
        raise ValueError(f"clutter_size = {clutter_size} is larger than the {h} x {w} source digits")
    res = translate_and_clutter(images, size, n_clutter, clutter_size, as_rng(seed))
    return ClutteredDigits(
        images=res["images"], labels=labels, boxes=res["boxes"], offsets=res["offsets"],
        clutter_boxes=res["clutter_boxes"], clutter_sources=res["clutter_sources"],
    )
