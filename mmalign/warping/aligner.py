"""The DTW-family ``Aligner`` classes: the functional layer behind the common interface."""

from __future__ import annotations

from ..aligner import Aligner
from ..alignment import Alignment
from ..utils.validation import check_choice, check_int, check_sequences
from .dtw import METRICS, STEP_PATTERNS, dtw_path
from .soft import check_gamma, soft_dtw_alignment
from .windows import resolve_radius, resolve_window


class StatelessAligner(Aligner):
    """An aligner that aligns each pair on its own and learns nothing (DTW, soft-DTW, CTW, GCTW).

    ``fit`` only checks the hyper-parameters (``_check_params``) and that ``X``
    (and ``Y``) are sequences or collections of sequences, so that mistakes show
    up where the data are given.
    """

    def fit(self, X, Y=None) -> "StatelessAligner":
        """Check the hyper-parameters and the data; nothing is learned.

        Parameters
        ----------
        X, Y : array-like [shape=(n, d)], a list of them, or a 3-d array
            Sequences (``Y`` optional).

        Returns
        -------
        self
        """
        self._check_params()
        check_sequences(X, "X")
        if Y is not None:
            check_sequences(Y, "Y")
        return self


class DTW(StatelessAligner):
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

    def _check_params(self) -> None:
        # what dtw_path checks of these options, without a pair to align (load() calls it)
        check_choice(self.method, "method", {"exact", "multiscale"})
        check_int(self.multiscale_radius, "multiscale_radius", 1)
        check_choice(self.step_pattern, "step_pattern", STEP_PATTERNS)
        if not callable(self.metric):
            check_choice(self.metric, "metric", METRICS)
        resolve_window(1, 1, radius=self.radius, window=self.window,
                       itakura_slope=self.itakura_slope)

    def align(self, x, y, *, mask=None) -> Alignment:
        """Optimal warping path between ``x`` (n[, d]) and ``y`` (m[, d])."""
        return dtw_path(x, y, mask=mask, **self.get_params())


class SoftDTW(StatelessAligner):
    """Soft-DTW as an :class:`~mmalign.Aligner`: the expected alignment as soft weights.

    Parameters
    ----------
    gamma : float > 0
        Smoothing; small values approach the hard DTW path.
    radius, window, metric
        As in :func:`mmalign.soft_dtw`.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> a = mmalign.SoftDTW(gamma=0.01).align(np.array([0., 1., 2.]), np.array([0., 2.]))
    >>> a.matrix().shape, a.path().tolist()
    ((3, 2), [[0, 0], [1, 0], [2, 1]])
    """

    def __init__(self, gamma: float = 1.0, radius: int | None = None,
                 window: float | None = None, metric: str = "sqeuclidean"):
        self.gamma = gamma
        self.radius = radius
        self.window = window
        self.metric = metric

    def _check_params(self) -> None:
        # what soft_dtw_alignment checks of these options, without a pair (load() calls it)
        check_gamma(self.gamma)
        check_choice(self.metric, "metric", {"sqeuclidean", "euclidean", "cityblock"})
        resolve_radius(self.radius, self.window, 1, 1)

    def align(self, x, y) -> Alignment:
        """Expected alignment ``(n, m)`` between ``x`` (n[, d]) and ``y`` (m[, d])."""
        return soft_dtw_alignment(x, y, **self.get_params())
