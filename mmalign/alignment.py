"""The one result type every aligner returns: :class:`Alignment`."""

from __future__ import annotations

import csv
import numbers
import os
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:                       # scipy.sparse takes ~0.2 s to import: loaded by the methods that need it
    import scipy.sparse

__all__ = ["Alignment"]

# Added to soft weights before the log so that zero weights cost a lot but stay finite.
_LOG_EPS = 1e-12
_PATH_METHODS = ("argmax", "monotone")


def _as_numpy(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a numpy array (torch tensors included), without copying if possible."""
    if value is None:
        raise ValueError(f"{name} must not be None")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} could not be converted to an array: {err}") from None


def _check_real(arr: np.ndarray, name: str, *, allow_bool: bool = True) -> None:
    kinds = "biuf" if allow_bool else "iuf"
    if arr.dtype.kind not in kinds:
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")


def _validate_path(path: Any) -> np.ndarray:
    arr = _as_numpy(path, "path")
    _check_real(arr, "path", allow_bool=False)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"path must have shape (K, 2), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("path must not be empty")
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise ValueError("path must hold integer indices, got fractional values")
    if (arr < 0).any():
        raise ValueError("path must hold non-negative indices")
    out = arr.astype(np.int64)  # always a fresh array
    out.setflags(write=False)
    return out


def _check_monotone(path: np.ndarray) -> None:
    """Refuse a path that steps back on either side (repeated pairs and jumps are fine)."""
    back = np.flatnonzero((np.diff(path, axis=0) < 0).any(axis=1))
    if back.size:
        k = int(back[0])
        raise ValueError(
            "path must be monotone (non-decreasing in both columns) unless monotonic=False: "
            f"step {k} goes from {tuple(int(v) for v in path[k])} to "
            f"{tuple(int(v) for v in path[k + 1])}"
        )


def _validate_weight_axes(weight_axes: Any) -> tuple[str, ...]:
    if isinstance(weight_axes, str) or not isinstance(weight_axes, (tuple, list)) or not all(
            isinstance(a, str) and a for a in weight_axes):
        raise ValueError(f"weight_axes must be a tuple of axis names such as ('layer', 'head'), "
                         f"got {weight_axes!r}")
    return tuple(weight_axes)


def _validate_weights(weights: Any, weight_axes: tuple[str, ...]) -> np.ndarray:
    arr = _as_numpy(weights, "weights")
    _check_real(arr, "weights")
    if arr.ndim != 2 + len(weight_axes):
        leading = "".join(f"{a}, " for a in weight_axes)
        hint = ("" if weight_axes or arr.ndim < 2 else
                "; name leading axes (e.g. per layer / per head) with weight_axes=('layer', 'head')")
        raise ValueError(f"weights must have shape ({leading}n_x, n_y), got {arr.shape}{hint}")
    if arr.size == 0:
        raise ValueError(f"weights must not be empty, got shape {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if (arr < 0).any():
        raise ValueError("weights must be non-negative")
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


def _validate_shape(shape: Any) -> tuple[int, int]:
    try:
        n_x, n_y = shape
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a pair (n_x, n_y), got {shape!r}") from None
    for n in (n_x, n_y):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise ValueError(f"shape must hold two positive integers, got {shape!r}")
    return int(n_x), int(n_y)


def _validate_rate(rate: Any) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ValueError(f"frame_rate must be a positive number, got {rate!r}")
    rate = float(rate)
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"frame_rate must be positive and finite, got {rate!r}")
    return rate


def _validate_frame_rate(frame_rate: Any) -> float | tuple[float, float] | None:
    if frame_rate is None:
        return None
    if isinstance(frame_rate, (tuple, list, np.ndarray)):
        if len(frame_rate) != 2:
            raise ValueError(f"frame_rate must be a number or a pair (rate_x, rate_y), got {frame_rate!r}")
        return (_validate_rate(frame_rate[0]), _validate_rate(frame_rate[1]))
    return _validate_rate(frame_rate)


def _validate_cost(cost: Any) -> float | None:
    if cost is None:
        return None
    if hasattr(cost, "detach") and hasattr(cost, "cpu"):
        cost = cost.detach().cpu().numpy()
    if np.ndim(cost) != 0:
        raise ValueError(f"cost must be a scalar, got shape {np.shape(cost)}")
    try:
        value = float(cost)
    except (TypeError, ValueError):
        raise ValueError(f"cost must be a real number, got {cost!r}") from None
    if np.isnan(value):
        raise ValueError("cost is NaN")
    return value


def _monotone_path(weights: np.ndarray) -> np.ndarray:
    """Best monotone continuous path through ``weights`` maximising the sum of log weights:
    DTW on the cost ``-log(w + eps)``."""
    cost = -np.log(weights.astype(np.float64) + _LOG_EPS)
    return _min_cost_path(cost)


# Step codes of _min_cost_path, in the order ties are broken.
_DIAGONAL, _UP, _LEFT = 0, 1, 2


def _min_cost_path(cost: np.ndarray) -> np.ndarray:
    """The path from ``(0, 0)`` to ``(n - 1, m - 1)`` of least summed ``cost`` (finite, ``(n, m)``).

    Steps ``(1, 1)``, ``(1, 0)``, ``(0, 1)``, each adding the cost of the cell it
    enters: ``D[i, j] = cost[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])``, ties
    going to the diagonal, then up, then left. This is the symmetric DTW step of
    :func:`mmalign.dtw_path_from_cost`, and gives the same path. Cells on one
    anti-diagonal depend only on the two before it, so each anti-diagonal is one
    vectorised step.

    Returns
    -------
    path : np.ndarray [int64], shape (K, 2)
    """
    n, m = cost.shape
    # One row and column of +inf in front; D[0, 0] = 0 makes the first cell its own cost.
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    steps = np.zeros((n, m), np.uint8)
    for k in range(n + m - 1):
        i = np.arange(max(0, k - m + 1), min(k, n - 1) + 1)
        j = k - i
        c = cost[i, j]
        best = D[i, j] + c
        code = np.full(len(i), _DIAGONAL, np.uint8)
        for candidate, step in ((D[i, j + 1] + c, _UP), (D[i + 1, j] + c, _LEFT)):
            better = candidate < best
            best = np.where(better, candidate, best)
            code[better] = step
        D[i + 1, j + 1] = best
        steps[i, j] = code
    path = [(n - 1, m - 1)]
    i, j = n - 1, m - 1
    while i or j:
        step = steps[i, j]
        if step != _LEFT:
            i -= 1
        if step != _UP:
            j -= 1
        path.append((i, j))
    return np.array(path[::-1], dtype=np.int64)


class Alignment:
    """Correspondence between two sequences, in whichever form the aligner produced.

    Convention: the alignment relates side **x** (rows, length ``n_x``) to side
    **y** (columns, length ``n_y``).

    - A *hard path* is a ``(K, 2)`` int64 array of ``(i, j)`` pairs where ``i``
      indexes x and ``j`` indexes y. Warping aligners (the DTW family) produce
      monotone continuous paths from ``(0, 0)`` to ``(n_x - 1, n_y - 1)``.
    - *Soft weights* have shape ``(n_x, n_y)``, or ``(*leading, n_x, n_y)`` with
      the leading axes named in ``weight_axes`` (e.g. ``("layer", "head")``);
      :meth:`matrix` and :meth:`path` average over the leading axes.
      Where they are a distribution over one side (attention: for every
      element of one side, weights over the other that sum to one),
      ``distribution_over`` names that side, and the argmax :meth:`path`
      picks, for every element of the other side, its most attended element.
      The first argument of every aligner's ``align(a, b)`` is side x.

    Every stored array is a private read-only copy; inputs are never modified.

    Parameters
    ----------
    path : array-like of int, shape (K, 2), or None
        Hard path of ``(i, j)`` index pairs (frames).
    cost : float or None
        The aligner's cost or score (for DTW, the returned distance).
    shape : tuple (n_x, n_y) or None
        Lengths of both sides in frames. Inferred from the last two axes of
        ``weights``, or else from ``path.max(0) + 1``.
    weights : array-like, shape (n_x, n_y) or (*leading, n_x, n_y), or None
        Non-negative soft correspondence weights.
    weight_axes : tuple of str
        Names of the leading axes of ``weights`` (e.g. ``("layer", "head")``);
        ``weights`` must have ``2 + len(weight_axes)`` axes. Default: none,
        so ``weights`` is ``(n_x, n_y)``.
    distribution_over : {"x", "y"} or None
        The side the soft weights are a distribution over: ``"x"`` when
        ``weights[..., :, j]`` sums to one for every ``j`` (e.g. each target
        token's attention over source positions, the source on side x), ``"y"``
        when ``weights[..., i, :]`` does for every ``i``. None: neither is
        claimed (a soft-DTW expected alignment). Needs ``weights``.
    monotonic : bool
        True for a monotone warping (DTW family), False otherwise (attention,
        hard attention paths). With True a given ``path`` must be monotone:
        non-decreasing in both columns (it may repeat pairs, skip cells and
        start anywhere, as a subsequence match does). Selects the default
        method of :meth:`path` for soft weights.
    frame_rate : float, pair (rate_x, rate_y), or None
        Frames per second of both sides (or of each side), for :meth:`times`.
    extras : dict or None
        Per-method extras (canonical projections, loss history, accumulated
        cost matrix, ...). Available as the ``extras`` attribute.

    At least one of ``path`` and ``weights`` is required.

    Attributes
    ----------
    cost : float or None
    shape : tuple (n_x, n_y)
    n_x, n_y : int
    weights : np.ndarray (read-only), shape (*leading, n_x, n_y), or None
    weight_axes : tuple of str
    distribution_over : {"x", "y"} or None
    monotonic : bool
    frame_rate : float, tuple (rate_x, rate_y), or None
    extras : dict

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.alignment import Alignment
    >>> a = Alignment([[0, 0], [1, 0], [2, 1], [3, 2]], cost=1.5)
    >>> a.shape
    (4, 3)
    >>> a.warp(np.array([10.0, 20.0, 30.0, 40.0]), source="x")
    array([15., 30., 40.])
    >>> a.mapping("y")
    array([0.5, 2. , 3. ])
    """

    def __init__(
        self,
        path: Any = None,
        *,
        cost: float | None = None,
        shape: tuple[int, int] | None = None,
        weights: Any = None,
        weight_axes: tuple[str, ...] = (),
        distribution_over: str | None = None,
        monotonic: bool = True,
        frame_rate: float | tuple[float, float] | None = None,
        extras: dict | None = None,
    ) -> None:
        if path is None and weights is None:
            raise ValueError("at least one of path and weights is required")
        self._path = None if path is None else _validate_path(path)
        if self._path is not None and monotonic:
            _check_monotone(self._path)
        self.weight_axes = _validate_weight_axes(weight_axes)
        if weights is None and self.weight_axes:
            raise ValueError("weight_axes names axes of weights, but no weights were given")
        self.weights = None if weights is None else _validate_weights(weights, self.weight_axes)
        if distribution_over not in (None, "x", "y"):
            raise ValueError(f"distribution_over must be 'x', 'y' or None, got {distribution_over!r}")
        if distribution_over is not None and weights is None:
            raise ValueError("distribution_over describes weights, but no weights were given")
        self.distribution_over = distribution_over

        if shape is not None:
            shape = _validate_shape(shape)
            if self.weights is not None and self.weights.shape[-2:] != shape:
                raise ValueError(
                    f"weights has last two axes {self.weights.shape[-2:]}, but shape is {shape}"
                )
        elif self.weights is not None:
            shape = (int(self.weights.shape[-2]), int(self.weights.shape[-1]))
        else:
            shape = tuple(int(n) for n in self._path.max(axis=0) + 1)
        if self._path is not None:
            top = self._path.max(axis=0)
            if top[0] >= shape[0] or top[1] >= shape[1]:
                raise ValueError(f"path has indices up to {tuple(top)}, outside shape {shape}")
        self.shape = shape

        self.cost = _validate_cost(cost)
        self.monotonic = bool(monotonic)
        self.frame_rate = _validate_frame_rate(frame_rate)
        if extras is not None and not isinstance(extras, dict):
            raise ValueError(f"extras must be a dict or None, got {type(extras).__name__}")
        self.extras = dict(extras) if extras else {}
        self._derived_paths: dict[str, np.ndarray] = {}
        self._mean_weights_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ basics
    @property
    def n_x(self) -> int:
        """Length of side x in frames."""
        return self.shape[0]

    @property
    def n_y(self) -> int:
        """Length of side y in frames."""
        return self.shape[1]

    def __len__(self) -> int:
        return len(self._hard_path())

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        parts = [f"shape={self.shape}"]
        if self._path is not None:
            parts.append(f"path={len(self._path)} pairs")
        if self.weights is not None:
            axes = f" over {self.weight_axes}" if self.weight_axes else ""
            parts.append(f"weights={self.weights.shape}{axes}")
        if self.cost is not None:
            parts.append(f"cost={self.cost:.6g}")
        if self.distribution_over is not None:
            parts.append(f"distribution_over={self.distribution_over!r}")
        parts.append(f"monotonic={self.monotonic}")
        if self.frame_rate is not None:
            parts.append(f"frame_rate={self.frame_rate}")
        return f"Alignment({', '.join(parts)})"

    def _mean_weights(self) -> np.ndarray:
        """Soft weights averaged over leading axes, shape (n_x, n_y), read-only."""
        if self._mean_weights_cache is None:
            w = self.weights
            if w.ndim > 2:
                w = w.reshape((-1,) + self.shape).mean(axis=0)
                w.setflags(write=False)
            self._mean_weights_cache = w
        return self._mean_weights_cache

    def _hard_path(self, method: str | None = None) -> np.ndarray:
        """Like :meth:`path` but returns a cached read-only array."""
        if method is not None and method not in _PATH_METHODS:
            raise ValueError(f"method must be one of {_PATH_METHODS} or None, got {method!r}")
        if self._path is not None and (method is None or self.weights is None):
            return self._path
        if method is None:
            method = "monotone" if self.monotonic else "argmax"
        if method not in self._derived_paths:
            w = self._mean_weights()
            if method == "argmax" and self.distribution_over == "x":
                p = np.stack([np.argmax(w, axis=0), np.arange(self.n_y)], axis=1).astype(np.int64)
            elif method == "argmax":
                p = np.stack([np.arange(self.n_x), np.argmax(w, axis=1)], axis=1).astype(np.int64)
            else:
                p = _monotone_path(w)
            p.setflags(write=False)
            self._derived_paths[method] = p
        return self._derived_paths[method]

    @staticmethod
    def _check_side(source: str) -> str:
        if source not in ("x", "y"):
            raise ValueError(f"source must be 'x' or 'y', got {source!r}")
        return "y" if source == "x" else "x"

    # ------------------------------------------------------------- conversions
    def path(self, method: str | None = None) -> np.ndarray:
        """Hard path of ``(i, j)`` index pairs.

        Parameters
        ----------
        method : {"argmax", "monotone"} or None
            How to derive a path from the soft weights (averaged over leading
            axes). ``"argmax"``: ``(i, argmax_j w[i, j])`` for every row ``i``
            (K = n_x), or ``(argmax_i w[i, j], j)`` for every column ``j``
            (K = n_y) when the weights are a distribution over x. ``"monotone"``: the monotone continuous path from
            ``(0, 0)`` to ``(n_x - 1, n_y - 1)`` maximising the sum of
            ``log(w + 1e-12)``. None: the stored hard path if there is one,
            otherwise ``"monotone"`` if ``self.monotonic`` else ``"argmax"``.
            Ignored when the alignment has no soft weights.

        Returns
        -------
        path : np.ndarray [int64], shape (K, 2)
            ``path[k] = (i, j)`` pairs frame ``i`` of x with frame ``j`` of y.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> import numpy as np
        >>> w = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.0, 0.3, 0.7]])
        >>> Alignment(weights=w).path()
        array([[0, 0],
               [1, 1],
               [2, 2]])
        """
        return self._hard_path(method).copy()

    @property
    def index_x(self) -> np.ndarray:
        """Frame indices on side x along the path, shape (K,)."""
        return self.path()[:, 0]

    @property
    def index_y(self) -> np.ndarray:
        """Frame indices on side y along the path, shape (K,)."""
        return self.path()[:, 1]

    def transpose(self) -> "Alignment":
        """The same alignment with the sides swapped: side x becomes side y.

        Paths swap their columns, weights their last two axes; shape, frame
        rates and ``distribution_over`` follow; cost and extras are kept.

        Returns
        -------
        alignment : Alignment

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> import numpy as np
        >>> a = Alignment(weights=np.array([[0.2, 0.9], [0.8, 0.1]]), distribution_over="x",
        ...               monotonic=False)
        >>> a.path().tolist(), a.transpose().path().tolist()
        ([[1, 0], [0, 1]], [[0, 1], [1, 0]])
        """
        rate = self.frame_rate
        if isinstance(rate, tuple):
            rate = (rate[1], rate[0])
        swap = {"x": "y", "y": "x", None: None}
        return Alignment(
            None if self._path is None else self._path[:, ::-1],
            cost=self.cost, shape=(self.n_y, self.n_x),
            weights=None if self.weights is None else np.swapaxes(self.weights, -1, -2),
            weight_axes=self.weight_axes, distribution_over=swap[self.distribution_over],
            monotonic=self.monotonic, frame_rate=rate, extras=self.extras)

    def matrix(self, dense: bool = True) -> np.ndarray | scipy.sparse.csr_matrix:
        """Correspondence matrix between x (rows) and y (columns).

        Parameters
        ----------
        dense : bool
            Return a numpy array if True, else a ``scipy.sparse.csr_matrix``.

        Returns
        -------
        m : np.ndarray or scipy.sparse.csr_matrix, shape (n_x, n_y)
            The soft weights averaged over leading axes if the alignment has
            weights, else a 0/1 matrix with ones on the hard path.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> Alignment([[0, 0], [1, 1], [1, 2]]).matrix()
        array([[1., 0., 0.],
               [0., 1., 1.]])
        """
        if self.weights is not None:
            w = self._mean_weights()
            if dense:
                return np.array(w, copy=True)
            import scipy.sparse

            return scipy.sparse.csr_matrix(w)
        import scipy.sparse

        cells = np.unique(self._path, axis=0)
        m = scipy.sparse.csr_matrix(
            (np.ones(len(cells)), (cells[:, 0], cells[:, 1])), shape=self.shape
        )
        return m.toarray() if dense else m

    def warping_matrices(self) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
        """Sparse 0/1 warping matrices of the hard path.

        Returns
        -------
        W_x : scipy.sparse.csr_matrix, shape (n_x, K)
            ``W_x[path[k, 0], k] = 1``.
        W_y : scipy.sparse.csr_matrix, shape (n_y, K)
            ``W_y[path[k, 1], k] = 1``.

        Notes
        -----
        With sequences stored the mmalign way, ``X`` of shape ``(n_x, d)``,
        ``W_x.T @ X`` is ``(K, d)``: x sampled along the path (and likewise
        ``W_y.T @ Y``). With sequences stored features-first, ``X.T`` of shape
        ``(d, n_x)``, this is the CTW notation ``X.T @ W_x ≈ Y.T @ W_y``, both
        ``(d, K)``.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> W_x, W_y = Alignment([[0, 0], [1, 0], [1, 1]]).warping_matrices()
        >>> W_x.toarray()
        array([[1., 0., 0.],
               [0., 1., 1.]])
        """
        import scipy.sparse

        p = self._hard_path()
        k = np.arange(len(p))
        ones = np.ones(len(p))
        w_x = scipy.sparse.csr_matrix((ones, (p[:, 0], k)), shape=(self.n_x, len(p)))
        w_y = scipy.sparse.csr_matrix((ones, (p[:, 1], k)), shape=(self.n_y, len(p)))
        return w_x, w_y

    def _correspondence(self, source: str):
        """(n_other, n_source) non-negative weights used by warp: hard path counts or soft weights."""
        if self._path is not None:
            m = self.matrix(dense=False)
        else:
            m = self._mean_weights()
        return m.T if source == "x" else m

    def warp(self, seq: Any, *, source: str = "x") -> np.ndarray:
        """Resample a sequence from one side's timeline onto the other's.

        Parameters
        ----------
        seq : array-like, shape (n_source, ...)
            Sequence on the timeline of side ``source`` (any trailing shape).
        source : {"x", "y"}
            Side whose timeline ``seq`` lives on.

        Returns
        -------
        warped : np.ndarray, shape (n_other, ...)
            With a hard path, frame ``t`` of the other side is the mean of the
            ``seq`` frames the path matches to ``t``. With soft weights only,
            it is the weighted average normalised by the total weight. Frames
            with nothing matched (zero total weight) are NaN. float32 input
            stays float32, everything else becomes float64.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> a = Alignment([[0, 0], [1, 1], [2, 1]])
        >>> a.warp([[1.0], [2.0], [4.0]], source="x")
        array([[1.],
               [3.]])
        """
        self._check_side(source)
        n_source = self.n_x if source == "x" else self.n_y
        n_other = self.n_y if source == "x" else self.n_x
        arr = _as_numpy(seq, "seq")
        _check_real(arr, "seq")
        if arr.ndim == 0 or len(arr) != n_source:
            raise ValueError(
                f"seq must have length n_{source}={n_source} along axis 0, got shape {arr.shape}"
            )
        out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
        flat = arr.reshape(n_source, -1).astype(np.float64)
        m = self._correspondence(source)
        total = np.asarray(m.sum(axis=1), dtype=np.float64).reshape(n_other, 1)
        summed = np.asarray(m @ flat, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(total > 0, summed / total, np.nan)
        return out.reshape((n_other,) + arr.shape[1:]).astype(out_dtype)

    def mapping(self, source: str = "x") -> np.ndarray:
        """The alignment read as a function from one side's frames to the other's.

        Parameters
        ----------
        source : {"x", "y"}
            Side whose frames are the function's argument.

        Returns
        -------
        positions : np.ndarray [float64], shape (n_source,)
            For each frame of side ``source``, the mean frame index it is
            matched to on the other side (weighted mean for soft weights
            without a hard path). Frames matched to nothing are linearly
            interpolated from their neighbours (held constant at the ends).

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> Alignment([[0, 0], [0, 1], [1, 2], [2, 2]]).mapping("x")
        array([0.5, 2. , 2. ])
        """
        other = self._check_side(source)
        n_other = self.n_y if source == "x" else self.n_x
        pos = self.warp(np.arange(n_other, dtype=np.float64), source=other)
        matched = ~np.isnan(pos)
        if not matched.all():
            idx = np.arange(len(pos))
            pos = np.interp(idx, idx[matched], pos[matched])
        return pos

    def _rates(self) -> tuple[float, float]:
        if self.frame_rate is None:
            raise ValueError("frame_rate is not set; pass frame_rate= to Alignment")
        if isinstance(self.frame_rate, tuple):
            return self.frame_rate
        return (self.frame_rate, self.frame_rate)

    def times(self) -> np.ndarray:
        """The hard path in seconds.

        Returns
        -------
        times : np.ndarray [float64], shape (K, 2)
            ``(i / rate_x, j / rate_y)`` for every path pair, in seconds.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> Alignment([[0, 0], [1, 2]], frame_rate=(10, 20)).times()
        array([[0. , 0. ],
               [0.1, 0.1]])
        """
        rate_x, rate_y = self._rates()
        return self._hard_path() / np.array([rate_x, rate_y])

    def to_csv(self, path_or_buffer: str | os.PathLike | Any, *, header: bool = True) -> None:
        """Write the hard path as CSV.

        Parameters
        ----------
        path_or_buffer : str, os.PathLike or text file object
            Destination.
        header : bool
            Write a header row.

        Notes
        -----
        Columns are ``x_index,y_index`` (frames), plus ``x_time,y_time``
        (seconds) when ``frame_rate`` is set. Lines end with ``"\\n"``.

        Examples
        --------
        >>> from mmalign.alignment import Alignment
        >>> import io
        >>> buf = io.StringIO()
        >>> Alignment([[0, 0], [1, 1]], frame_rate=2.0).to_csv(buf)
        >>> print(buf.getvalue(), end="")
        x_index,y_index,x_time,y_time
        0,0,0.0,0.0
        1,1,0.5,0.5
        """
        p = self._hard_path()
        columns: list[Iterable] = [p[:, 0].tolist(), p[:, 1].tolist()]
        names = ["x_index", "y_index"]
        if self.frame_rate is not None:
            t = self.times()
            columns += [t[:, 0].tolist(), t[:, 1].tolist()]
            names += ["x_time", "y_time"]

        def write(f) -> None:
            writer = csv.writer(f, lineterminator="\n")
            if header:
                writer.writerow(names)
            writer.writerows(zip(*columns))

        if hasattr(path_or_buffer, "write"):
            write(path_or_buffer)
        else:
            with open(os.fspath(path_or_buffer), "w", newline="") as f:
                write(f)
