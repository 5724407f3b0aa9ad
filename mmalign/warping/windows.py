"""Global constraints (windows) on warping paths.

Conventions (peers differ silently; mmalign follows the UCR archive and tslearn):

* **Sakoe–Chiba radius** ``r`` in samples: cell ``(i, j)`` is allowed when
  ``-r - max(0, n - m) <= j - i <= r + max(0, m - n)``, i.e. ``|i - j| <= r``
  widened by the length difference so that the end cell is always reachable
  (tslearn's ``sakoe_chiba_radius=r``; dtaidistance's ``window=r + 1``, which
  counts ``|i - j| < window``).  Any ``r >= max(n, m)`` means no band, however
  large (``2**63`` and beyond included).
* **Window fraction** ``w`` in ``[0, 1]``: ``r = round(w * max(n, m))`` with
  halves rounded up, as the UCR archive does (aeon floors ``w * n`` instead).
* **Itakura parallelogram** with maximum slope ``s``: tslearn's
  ``itakura_mask(n, m, max_slope=s)`` exactly.  From ``s = 256 max(n, m)`` on the
  parallelogram no longer changes (the first column holds only ``(0, 0)``, the
  last only ``(n - 1, m - 1)``, the others every row), so larger slopes are
  taken as that one, where tslearn's formula would lose it to rounding.
* **Mask**: any boolean ``(n, m)`` array, ``True`` where a cell is allowed.

Several constraints given together are intersected.  A dense mask is refused
beyond ``MAX_DENSE_CELLS`` (2**31) cells; bands never need one.  Internally a window is a
pair of per-row column bounds ``lo[i] <= j < hi[i]`` whenever it has that form
with non-decreasing bounds (every band above does), which lets the fast kernels
skip everything outside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ..utils.validation import check_float, check_int

# a dense (n, m) boolean mask beyond this many cells (2 GiB) is refused: bands never need one
MAX_DENSE_CELLS = 2**31
# from this slope on (times max(n, m)) the Itakura parallelogram no longer changes
ITAKURA_LIMIT_SLOPE = 256


@dataclass(frozen=True)
class Window:
    """A resolved window for an ``(n, m)`` grid: monotone row bounds, or a dense mask."""

    n: int
    m: int
    lo: np.ndarray | None = None  # (n,) int64, first allowed column of each row
    hi: np.ndarray | None = None  # (n,) int64, one past the last allowed column
    mask: np.ndarray | None = None  # (n, m) bool, when the window is not a monotone band

    @property
    def is_band(self) -> bool:
        return self.mask is None

    @property
    def feasible(self) -> bool:
        """Whether a path can exist: exact for bands; a dense mask is only known once run."""
        return band_is_feasible(self.lo, self.hi, self.m) if self.is_band else True

    def to_mask(self) -> np.ndarray:
        if not self.is_band:
            return self.mask.copy()
        check_dense(self.n, self.m, "a window mask")
        cols = np.arange(self.m)
        return (cols[None, :] >= self.lo[:, None]) & (cols[None, :] < self.hi[:, None])


def resolve_radius(radius, window, n: int, m: int) -> int | None:
    """The Sakoe–Chiba radius in samples from ``radius`` (samples) or ``window`` (fraction).

    None means no band: no constraint given, or a radius of ``max(n, m)`` or more
    (of any size: Python integers beyond int64 included).
    """
    if radius is not None and window is not None:
        raise ValueError("give either radius (in samples) or window (a fraction), not both")
    if radius is not None:
        return band_radius(radius, max(n, m))
    if window is not None:
        w = check_float(window, "window", 0.0, 1.0)
        return int(math.floor(w * max(n, m) + 0.5))
    return None


def band_radius(radius, longest: int) -> int | None:
    """A validated radius (ValueError naming ``radius`` unless an int >= 0), None when it
    reaches ``longest`` (the longest sequence): then the band covers the whole grid."""
    if radius is None:
        return None
    r = check_int(radius, "radius", 0)
    return None if r >= longest else r


@njit(cache=True, nogil=True)
def sakoe_chiba_bounds(n, m, radius):
    """Row bounds of the (length-widened) Sakoe–Chiba band; ``radius < 0`` means no band."""
    lo = np.empty(n, np.int64)
    hi = np.empty(n, np.int64)
    if radius < 0:
        lo[:] = 0
        hi[:] = m
        return lo, hi
    below = radius + max(0, n - m)
    above = radius + max(0, m - n)
    for i in range(n):
        lo[i] = max(0, i - below)
        hi[i] = min(m, i + above + 1)
    return lo, hi


def itakura_mask(n: int, m: int, max_slope: float) -> np.ndarray:
    """Boolean ``(n, m)`` Itakura parallelogram, the same cells as tslearn's ``itakura_mask``.

    Slopes beyond ``ITAKURA_LIMIT_SLOPE * max(n, m)`` give the parallelogram of
    that slope (the limit; see the module docstring).
    """
    max_slope = check_float(max_slope, "itakura_slope", 1.0, np.inf)
    n = check_int(n, "n", 1)
    m = check_int(m, "m", 1)
    check_dense(n, m, "an Itakura mask")
    # beyond this the cells do not change, and (n - 1) - max_s (m - 1) + max_s j below
    # would cancel catastrophically (or overflow)
    max_slope = min(max_slope, float(ITAKURA_LIMIT_SLOPE * max(n, m)))
    ratio = n / m
    min_s = ratio / max_slope
    max_s = ratio * max_slope
    cols = np.arange(m)
    lower = np.maximum(
        np.round(min_s * cols, 2), np.round((n - 1) - max_s * (m - 1) + max_s * cols, 2)
    )
    upper = np.minimum(
        np.round(max_s * cols, 2), np.round((n - 1) - min_s * (m - 1) + min_s * cols, 2)
    )
    first = np.ceil(lower).astype(np.int64)
    stop = np.floor(upper + 1).astype(np.int64)
    rows = np.arange(n)[:, None]
    return (rows >= np.maximum(first, 0)[None, :]) & (rows < stop[None, :])


def mask_to_band(mask: np.ndarray):
    """``(lo, hi)`` if every row of ``mask`` is one non-empty run with monotone ends, else None."""
    n, m = mask.shape
    any_row = mask.any(axis=1)
    if not any_row.all():
        return None
    lo = mask.argmax(axis=1).astype(np.int64)
    hi = (m - mask[:, ::-1].argmax(axis=1)).astype(np.int64)
    if (mask.sum(axis=1) != hi - lo).any():
        return None
    if (np.diff(lo) < 0).any() or (np.diff(hi) < 0).any():
        return None
    return lo, hi


def band_is_feasible(lo: np.ndarray, hi: np.ndarray, m: int) -> bool:
    if (hi <= lo).any() or lo[0] != 0 or hi[-1] != m:
        return False
    # each row must touch the previous one so that a path can step between them
    return bool((lo[1:] <= hi[:-1]).all())


def resolve_window(n: int, m: int, *, radius=None, window=None, itakura_slope=None,
                   mask=None) -> Window:
    """Intersect every constraint given into one :class:`Window` for an ``(n, m)`` grid."""
    r = resolve_radius(radius, window, n, m)
    lo, hi = sakoe_chiba_bounds(n, m, -1 if r is None else r)
    dense = None
    if itakura_slope is not None:
        dense = itakura_mask(n, m, itakura_slope)
    if mask is not None:
        user = _check_mask(mask, n, m)
        dense = user if dense is None else dense & user
    if dense is not None:
        band = mask_to_band(dense)
        if band is None:
            cols = np.arange(m)
            dense = dense & (cols[None, :] >= lo[:, None]) & (cols[None, :] < hi[:, None])
            band = mask_to_band(dense)
            if band is None:
                return Window(n, m, mask=dense)
        lo = np.maximum(lo, band[0])
        hi = np.minimum(hi, band[1])
    return Window(n, m, lo=np.ascontiguousarray(lo), hi=np.ascontiguousarray(hi))


def check_dense(n: int, m: int, what: str) -> None:
    """A ValueError for a dense ``(n, m)`` boolean array beyond ``MAX_DENSE_CELLS``."""
    if n * m > MAX_DENSE_CELLS:
        raise ValueError(
            f"{what} for a {n} x {m} grid would be a dense array of {n * m} cells "
            f"({n * m / 2**30:.3g} GiB), more than MAX_DENSE_CELLS = 2**31; a Sakoe-Chiba band "
            f"needs none: pass radius= (or window=) to the DTW functions, which keep only the "
            f"band's cells (with symmetric1 / symmetric2 steps and closed ends)")


def _check_mask(mask, n: int, m: int) -> np.ndarray:
    if hasattr(mask, "detach"):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be a boolean array (True = allowed), got dtype {mask.dtype}")
    if mask.shape != (n, m):
        raise ValueError(f"mask must have shape (len(x), len(y)) = {(n, m)}, got {mask.shape}")
    return mask


def window_mask(n: int, m: int, *, radius=None, window=None, itakura_slope=None,
                mask=None) -> np.ndarray:
    """Boolean ``(n, m)`` array of the cells a warping path may visit.

    At most ``MAX_DENSE_CELLS`` (2**31) cells: beyond, a ValueError (the DTW
    functions take ``radius=`` / ``window=`` without forming a mask).

    Parameters
    ----------
    n, m : int
        Lengths of the two sequences.
    radius, window, itakura_slope, mask
        The constraints of :func:`mmalign.dtw`, intersected.

    Examples
    --------
    >>> import mmalign
    >>> mmalign.window_mask(4, 4, radius=1).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 1, 0],
           [0, 1, 1, 1],
           [0, 0, 1, 1]])
    """
    n = check_int(n, "n", 1)
    m = check_int(m, "m", 1)
    check_dense(n, m, "window_mask")
    return resolve_window(n, m, radius=radius, window=window, itakura_slope=itakura_slope,
                          mask=mask).to_mask()
