"""Canonical time warping (Zhou & De la Torre, NIPS 2009).

CTW aligns two sequences that live in different feature spaces (different
modalities, different dimensions) by alternating

1. CCA on the frames the current path pairs: projections ``V_x``, ``V_y`` that
   make the warped sequences maximally correlated (unit-variance variates);
2. DTW between the projected sequences ``(x - mean_x) V_x`` and ``(y - mean_y) V_y``,

which lowers ``J = sum over the path of |V_x' x_i - V_y' y_j|^2`` (per path step).
The CCA constraint depends on the path, so a DTW step followed by a new CCA step
is not guaranteed to lower ``J``; the loop keeps the best iterate and stops as
soon as ``J`` fails to improve by ``tol`` (relative) or the path stops changing,
so the reported objective history never increases.
"""

from __future__ import annotations


import numpy as np

from ..alignment import Alignment
from ..utils.validation import as_sequence, check_choice, check_float, check_int
from ..warping import dtw_path
from ..warping.aligner import StatelessAligner
from .cca import cca


class CTW(StatelessAligner):
    """Canonical time warping: align two sequences of different dimensions.

    Parameters
    ----------
    n_components : int or None
        Dimension of the shared space; default the smaller feature dimension
        (capped by the ranks of the warped sequences).
    reg : float >= 0
        Ridge on each covariance in the CCA step (needed when ``d`` is large
        compared with the sequence length), in the squared units of the data.
    max_iter : int >= 1
    tol : float >= 0
        Stop when the objective improves by less than this fraction.
    init : {"best", "dtw", "uniform"}
        Initial path: DTW between the first principal components of the two
        sequences (z-scored, the sign that aligns better); the straight diagonal
        (time-normalised uniform alignment); or ``"best"``, both, keeping the
        run that ends with the lower objective.  Each start wins on some data
        (the alternation only finds a local optimum); ``"best"`` was the most
        accurate on the synthetic protocol of
        :func:`mmalign.datasets.warped_multimodal`.
    radius : int or None
        Sakoe–Chiba radius of the DTW step, in frames.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 120)
    >>> z = np.c_[np.sin(6 * t), np.cos(4 * t)]                    # latent 2-d trajectory
    >>> x = z @ np.array([[1., 0., 2.], [0., 1., -1.]])            # 3-d view
    >>> u = np.linspace(0, 1, 90) ** 1.5                           # a warped clock
    >>> y = np.c_[np.sin(6 * u), np.cos(4 * u)] @ np.array([[2., 1.], [-1., 3.]])
    >>> a = mmalign.CTW().align(x, y)
    >>> a.path()[[0, -1]].tolist(), a.extras["objective"] == sorted(a.extras["objective"], reverse=True)
    ([[0, 0], [119, 89]], True)
    """

    def __init__(self, n_components: int | None = None, reg: float = 1e-6, max_iter: int = 30,
                 tol: float = 1e-6, init: str = "best", radius: int | None = None):
        self.n_components = n_components
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.radius = radius

    def _check_params(self) -> None:
        check_params(self, {"best", "uniform", "dtw"})

    def align(self, x, y) -> Alignment:
        """Align ``x`` (n_x, d_x) with ``y`` (n_y, d_y).

        Returns
        -------
        alignment : Alignment
            ``path()`` the warping path; ``cost`` the final objective (per path
            step); ``extras``: ``x_weights`` (d_x, k), ``y_weights`` (d_y, k),
            ``x_mean``, ``y_mean``, ``correlations`` (k,), ``objective`` (the
            accepted iterates, non-increasing), ``n_iter``.
        """
        self._check_params()
        max_iter, tol = int(self.max_iter), float(self.tol)
        x = as_sequence(x, "x")
        y = as_sequence(y, "y")
        for seq, name in ((x, "x"), (y, "y")):
            if len(seq) < 2:
                raise ValueError(f"{name} needs at least 2 frames, got {len(seq)}")
            if np.ptp(seq, axis=0).max() == 0:
                raise ValueError(f"{name} is constant: nothing to correlate")
        starts = {"uniform": [uniform_path(len(x), len(y))],
                  "dtw": [_pca_dtw_path(x, y, self.radius)]}
        starts["best"] = starts["dtw"] + starts["uniform"]
        runs = [self._alternate(x, y, path, max_iter, tol) for path in starts[self.init]]
        return min(runs, key=lambda a: a.cost)

    def _alternate(self, x, y, path, max_iter, tol) -> Alignment:
        best = None
        history: list[float] = []
        for iteration in range(max_iter):
            wx, wy, rho, mx, my = cca(x[path[:, 0]], y[path[:, 1]], self._components(x, y, path),
                                      reg=self.reg)
            px, py = (x - mx) @ wx, (y - my) @ wy
            objective = path_objective(px, py, path)
            if best is not None and objective > best[0] * (1.0 - tol):
                break  # no (sufficient) improvement: keep the previous iterate
            best = (objective, path, wx, wy, mx, my, rho)
            history.append(objective)
            new_path = dtw_path(px, py, radius=self.radius).path()
            if np.array_equal(new_path, path):
                break
            path = new_path
        objective, path, wx, wy, mx, my, rho = best
        return Alignment(path, cost=objective, shape=(len(x), len(y)), monotonic=True,
                         extras={"x_weights": wx, "y_weights": wy, "x_mean": mx, "y_mean": my,
                                 "correlations": rho, "objective": history,
                                 "n_iter": len(history)})

    def _components(self, x, y, path) -> int | None:
        if self.n_components is None:
            return None
        k = check_int(self.n_components, "n_components", 1)
        if k > min(x.shape[1], y.shape[1]):
            raise ValueError(f"n_components={k} exceeds the smaller feature dimension "
                             f"({min(x.shape[1], y.shape[1])})")
        return k


def check_params(aligner: StatelessAligner, inits: set) -> None:
    """The hyper-parameter checks CTW and GCTW share; ValueError naming the bad one."""
    if aligner.n_components is not None:
        check_int(aligner.n_components, "n_components", 1)
    check_float(aligner.reg, "reg", 0.0, np.inf)
    check_int(aligner.max_iter, "max_iter", 1)
    check_float(aligner.tol, "tol", 0.0, np.inf)
    check_choice(aligner.init, "init", inits)
    if aligner.radius is not None:
        check_int(aligner.radius, "radius", 0)


def uniform_path(n: int, m: int) -> np.ndarray:
    """The monotone continuous path closest to the straight line from (0, 0) to (n-1, m-1)."""
    sx, sy = 1.0 / max(n - 1, 1), 1.0 / max(m - 1, 1)
    i = j = 0
    path = [(0, 0)]
    while i < n - 1 or j < m - 1:
        steps = [(i + 1, j + 1), (i + 1, j), (i, j + 1)]  # diagonal first: it wins ties
        steps = [(a, b) for a, b in steps if a < n and b < m]
        i, j = min(steps, key=lambda c: abs(c[0] * sx - c[1] * sy))
        path.append((i, j))
    return np.array(path, dtype=np.int64)


def path_objective(px: np.ndarray, py: np.ndarray, path: np.ndarray) -> float:
    """Mean squared distance between the projected frames the path pairs."""
    diff = px[path[:, 0]] - py[path[:, 1]]
    return float((diff ** 2).sum() / len(path))


def _pca_dtw_path(x: np.ndarray, y: np.ndarray, radius) -> np.ndarray:
    """DTW on the leading principal component of each sequence, signs aligned."""
    def leading(seq):
        # the score is standardised: dividing by a power of two first changes nothing but
        # keeps values near 1e300 from overflowing in the mean and the SVD
        seq = np.ldexp(seq, -np.frexp(np.abs(seq).max())[1])
        centred = seq - seq.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        score = centred @ vt[0]
        return score / (score.std() or 1.0)

    a, b = leading(x), leading(y)
    forward = dtw_path(a, b, radius=radius)
    flipped = dtw_path(a, -b, radius=radius)
    return (forward if forward.cost <= flipped.cost else flipped).path()
