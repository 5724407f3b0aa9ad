"""Coarse-to-fine DTW paths for long sequences in memory linear in their length.

The sequences are halved (pairs of frames averaged) until both are short, the
exact path is computed there, and each finer level is solved exactly inside a
band: the coarse path projected onto the finer grid and widened by
``multiscale_radius`` frames.  This is the multiscale DTW of Salvador & Chan
(FastDTW) and Müller et al. (2006); unlike FastDTW's default radius of 1, a
radius of 16 recovers the exact path on all but pathological inputs.
"""

from __future__ import annotations

import numpy as np

from ..alignment import Alignment
from ..utils.validation import check_int
from . import _extremes as ext
from .dtw import METRICS, diagonal_solve, finalize, prepare_pair
from .windows import Window, band_is_feasible, resolve_window

COARSEST = 512  # frames: below this a level is solved exactly on the full grid


def multiscale_dtw_path(x, y, *, multiscale_radius: int = 16, radius=None, window=None,
                        itakura_slope=None, mask=None, metric="sqeuclidean",
                        step_pattern="symmetric1", open_begin=False,
                        open_end=False) -> Alignment:
    """Approximate DTW path, exact within a band around a coarser level's path.

    Called through ``dtw_path(..., method="multiscale")``; see :func:`mmalign.dtw_path`.
    """
    r = check_int(multiscale_radius, "multiscale_radius", 1)
    if callable(metric) or step_pattern != "symmetric1" or open_begin or open_end:
        raise ValueError(
            "method='multiscale' supports the symmetric1 step pattern, closed ends and the "
            "built-in metrics; use method='exact' for the others"
        )
    x, y = prepare_pair(x, y, metric)
    n, m = len(x), len(y)
    r = min(r, max(n, m))  # wider bands change nothing (and 2**63 would overflow int64)
    e = ext.exponent(max(ext.peak(x), ext.peak(y)))
    x, y = ext.scale(x, e), ext.scale(y, e)
    user = resolve_window(n, m, radius=radius, window=window, itakura_slope=itakura_slope,
                          mask=mask)
    if not user.is_band:
        raise ValueError("method='multiscale' needs a band-shaped window, not an arbitrary mask")
    if not user.feasible:
        raise ValueError("the window admits no warping path between x and y; widen it")
    code = METRICS[metric]
    # the pyramid: level 0 is the input, each next level halves the longer sides
    pyramid = [(x, y, 1, 1)]
    while max(len(pyramid[-1][0]), len(pyramid[-1][1])) > COARSEST:
        cx, cy, _, _ = pyramid[-1]
        fx = 2 if len(cx) > COARSEST // 4 else 1
        fy = 2 if len(cy) > COARSEST // 4 else 1
        pyramid.append((_halve(cx) if fx == 2 else cx, _halve(cy) if fy == 2 else cy, fx, fy))
    cx, cy, _, _ = pyramid[-1]
    top = Window(len(cx), len(cy), *_full_band(len(cx), len(cy)))
    acc, path = diagonal_solve(cx, cy, top, code, want_path=True)
    for level in range(len(pyramid) - 2, -1, -1):
        fx, fy = pyramid[level + 1][2], pyramid[level + 1][3]
        lx, ly = pyramid[level][0], pyramid[level][1]
        lo, hi = _project(path, fx, fy, len(lx), len(ly), r)
        if level == 0:
            lo = np.maximum(lo, user.lo)
            hi = np.minimum(hi, user.hi)
            if not band_is_feasible(lo, hi, len(ly)):  # the band left the user's window
                lo, hi = user.lo, user.hi
        acc, path = diagonal_solve(lx, ly, Window(len(lx), len(ly), lo, hi), code,
                                   want_path=True)
    return Alignment(path, cost=ext.unscale(finalize(acc, metric), e, "the DTW distance"),
                     shape=(n, m), monotonic=True,
                     extras={"metric": metric, "step_pattern": step_pattern,
                             "method": "multiscale", "levels": len(pyramid)})


def _halve(x: np.ndarray) -> np.ndarray:
    n = len(x)
    even = x[: n - n % 2].reshape(n // 2, 2, -1).mean(axis=1)
    return np.ascontiguousarray(np.vstack([even, x[n - 1:]]) if n % 2 else even)


def _full_band(n: int, m: int):
    return np.zeros(n, np.int64), np.full(n, m, np.int64)


def _project(path: np.ndarray, fx: int, fy: int, n: int, m: int, r: int):
    """Row bounds on the finer grid: the cells under the coarse path, widened by r."""
    proj_lo = np.full(n, m, np.int64)
    proj_hi = np.zeros(n, np.int64)
    for dx in range(fx):
        rows = np.minimum(path[:, 0] * fx + dx, n - 1)
        np.minimum.at(proj_lo, rows, path[:, 1] * fy)
        np.maximum.at(proj_hi, rows, np.minimum(path[:, 1] * fy + fy, m))
    rows = np.arange(n)
    lo = np.maximum(0, proj_lo[np.maximum(0, rows - r)] - r)
    hi = np.minimum(m, proj_hi[np.minimum(n - 1, rows + r)] + r)
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)
