"""The DTW ``Aligner``: the functional layer behind the common interface."""

from __future__ import annotations

from ..aligner import Aligner
from ..alignment import Alignment
from .dtw import dtw_path


class DTW(Aligner):
    """Dynamic time warping as an :class:`~mmalign.Aligner` (nothing to fit).

    Parameters
    ----------
    radius, window, itakura_slope, metric, step_pattern, open_begin, open_end
        As in :func:`mmalign.dtw`.
    method : {"exact", "multiscale"}
        As in :func:`mmalign.dtw_path`.
    multiscale_radius : int
        Band half-width of the multiscale refinement, in frames.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> aligner = mmalign.DTW(radius=2)
    >>> aligner.align(np.array([0., 1., 2.]), np.array([0., 1., 1., 2.])).path().tolist()
    [[0, 0], [1, 1], [1, 2], [2, 3]]
    """

    def __init__(self, radius: int | None = None, window: float | None = None,
                 itakura_slope: float | None = None, metric: str = "sqeuclidean",
                 step_pattern: str = "symmetric1", open_begin: bool = False,
                 open_end: bool = False, method: str = "exact", multiscale_radius: int = 16):
        self.radius = radius
        self.window = window
        self.itakura_slope = itakura_slope
        self.metric = metric
        self.step_pattern = step_pattern
        self.open_begin = open_begin
        self.open_end = open_end
        self.method = method
        self.multiscale_radius = multiscale_radius

    def align(self, x, y, *, mask=None) -> Alignment:
        """Optimal warping path between ``x`` (n[, d]) and ``y`` (m[, d])."""
        return dtw_path(x, y, mask=mask, **self.get_params())
