"""Generalised time warping (GTW, Zhou & De la Torre, CVPR 2012): smooth warps of N sequences.

Each sequence ``k`` (``n_k`` frames, ``d_k`` features) is read on one common
timeline of ``L`` steps through a warp

    p_k(t) = (n_k - 1) * sum_j a_kj q_j(t / (L - 1)),   a_kj >= 0,   sum_j a_kj = 1,

a convex combination of monotone basis functions ``q_j`` on [0, 1] with
``q_j(0) = 0`` and ``q_j(1) = 1`` (:func:`warp_basis`: powers, exponentials,
logarithms, hyperbolic tangents and I-splines), so every warp is monotone and runs
from the first frame to the last.  The loop alternates

1. multi-set CCA (:func:`~mmalign.projection.mcca`) of the sequences read
   through their current warps (linear interpolation between frames);
2. the common target: the mean of the projected, warped sequences;
3. one Gauss–Newton step per sequence on its weights ``a_k``: the projected
   warped sequence is linearised in ``a_k`` (the derivative of the sequence
   along time times each basis), and the step solves the linearised least
   squares over the simplex (non-negative least squares with the sum held
   by a heavy extra row), halved until the objective falls.

Unlike DTW-based GCTW (:class:`~mmalign.GCTW`), a warp has a few dozen
parameters instead of a path: warps are smooth, and the cost of an iteration
grows linearly with the length and the number of sequences.
"""

from __future__ import annotations

import numpy as np

from ..alignment import Alignment
from ..utils.validation import check_choice, check_float, check_int
from ..warping.aligner import StatelessAligner
from .cca import mcca
from .gctw import MultiAlignment, checked_sequences, named_sequences, positions_to_path

__all__ = ["GTW", "warp_basis"]

BASES = ("all", "splines", "parametric")


def warp_basis(length: int, kind: str = "all", n_splines: int = 12) -> np.ndarray:
    """Monotone basis functions on ``length`` evenly spaced points of [0, 1]: ``(length, n_basis)``.

    Every column rises from 0 to 1.  ``"parametric"``: ``t ** a`` (a = 1/3, 1/2,
    1, 2, 3), normalised exponentials and logarithms, and hyperbolic tangents
    centred at 0.25, 0.5 and 0.75 (the GTW paper's families); ``"splines"``:
    ``n_splines`` I-splines (integrated quadratic B-splines on even knots), which
    combine into any smooth monotone curve; ``"all"``: both.  The identity warp
    ``t`` is always the column ``identity_column(kind)``.

    Examples
    --------
    >>> Q = warp_basis(50)
    >>> bool(np.allclose(Q[0], 0) and np.allclose(Q[-1], 1) and (np.diff(Q, axis=0) >= -1e-12).all())
    True
    """
    check_int(length, "length", 2)
    check_choice(kind, "kind", BASES)
    t = np.linspace(0.0, 1.0, length)
    columns = []
    if kind in ("all", "parametric"):
        columns += [t ** a for a in (1.0, 1 / 3, 1 / 2, 2.0, 3.0)]
        columns += [(np.exp(b * t) - 1) / (np.exp(b) - 1) for b in (-6.0, -3.0, 3.0, 6.0)]
        columns += [np.log1p(g * t) / np.log1p(g) for g in (5.0, 50.0)]
        for c in (0.25, 0.5, 0.75):
            s = 10.0
            lo, hi = np.tanh(s * (0 - c)), np.tanh(s * (1 - c))
            columns.append((np.tanh(s * (t - c)) - lo) / (hi - lo))
    if kind in ("all", "splines"):
        if kind == "splines":
            columns.append(t)
        columns += list(_i_splines(t, check_int(n_splines, "n_splines", 2)).T)
    return np.column_stack(columns)


def _i_splines(t: np.ndarray, n: int) -> np.ndarray:
    """``n`` I-splines: cumulative integrals of unit-area quadratic B-splines on even knots."""
    fine = np.linspace(0.0, 1.0, 2001)
    centres = np.linspace(0.0, 1.0, n)
    width = 1.5 / (n - 1)
    out = np.empty((len(t), n))
    for j, c in enumerate(centres):
        u = (fine - c) / width                      # quadratic B-spline bump on [-1.5, 1.5]
        bump = np.where(np.abs(u) <= 0.5, 0.75 - u ** 2,
                        np.where(np.abs(u) <= 1.5, 0.5 * (1.5 - np.abs(u)) ** 2, 0.0))
        area = np.concatenate([[0.0], np.cumsum(0.5 * (bump[1:] + bump[:-1]) * np.diff(fine))])
        out[:, j] = np.interp(t, fine, area / area[-1])
    return out


def _read(seq: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``seq`` (n, d) linearly interpolated at fractional frame ``positions`` (L,)."""
    n = len(seq)
    lo = np.clip(np.floor(positions).astype(np.int64), 0, n - 2)
    frac = (positions - lo)[:, None]
    return seq[lo] * (1 - frac) + seq[lo + 1] * frac


def _slope(seq: np.ndarray, positions: np.ndarray, half: int = 2) -> np.ndarray:
    """d/dposition of the sequence around each position: a central difference over ``±half`` frames.

    Wider than one frame so that noise between neighbouring frames does not steer the step.
    """
    n = len(seq)
    lo = np.clip(np.round(positions).astype(np.int64) - half, 0, n - 1)
    hi = np.clip(np.round(positions).astype(np.int64) + half, 0, n - 1)
    return (seq[hi] - seq[lo]) / np.maximum(hi - lo, 1)[:, None]


class GTW(StatelessAligner):
    """Generalised time warping of N >= 2 sequences of different dimensions: smooth parametric warps.

    Parameters
    ----------
    n_components : int or None
        Dimension of the shared space; default the smallest feature dimension.
    reg : float >= 0
        Ridge of the multi-set CCA.
    max_iter : int >= 1
        Alternations of CCA and Gauss–Newton.
    tol : float >= 0
        Stop when the objective improves by less than this fraction.
    length : int or None
        Steps of the common timeline; default the longest sequence.
    basis : {"all", "splines", "parametric"}
        The monotone basis functions of every warp (:func:`warp_basis`).
    n_splines : int >= 2
        I-splines in the basis.
    smoothness : float >= 0
        Ridge on the weights' change per Gauss–Newton step (damping).
    init : {"dtw", "uniform"}
        Initial warps: the basis combination closest to the DTW path of each
        sequence's first principal component against the longest sequence's (as
        :class:`~mmalign.GCTW` starts), or the identity (uniform stretching).
    inner_iter : int >= 1
        Gauss–Newton steps per sequence between two CCA fits.

    Attributes set by :meth:`align_all`'s result: ``warps`` (one
    :class:`~mmalign.Alignment` per sequence, side x the common timeline),
    ``pair(a, b)``, ``objective`` (per iteration, non-increasing).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> clock = [np.linspace(0, 1, n) ** p for n, p in ((100, 1.0), (80, 1.4), (120, 0.7))]
    >>> maps = [np.array([[1., 0.]]), np.array([[1., 2., 0.], [0., 1., 1.]]), np.eye(2)]
    >>> seqs = [np.c_[np.sin(5 * c), np.cos(3 * c)][:, :m.shape[0]] @ m for c, m in zip(clock, maps)]
    >>> result = mmalign.GTW().align_all(seqs)
    >>> len(result.warps), result.pair(0, 2).shape
    (3, (100, 120))
    """

    def __init__(self, n_components: int | None = None, reg: float = 1e-6, max_iter: int = 50,
                 tol: float = 1e-5, length: int | None = None, basis: str = "all",
                 n_splines: int = 12, smoothness: float = 1e-3, init: str = "dtw", inner_iter: int = 3):
        self.n_components = n_components
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol
        self.length = length
        self.basis = basis
        self.n_splines = n_splines
        self.smoothness = smoothness
        self.init = init
        self.inner_iter = inner_iter

    def _check_params(self) -> None:
        if self.n_components is not None:
            check_int(self.n_components, "n_components", 1)
        check_float(self.reg, "reg", 0.0)
        check_int(self.max_iter, "max_iter", 1)
        check_float(self.tol, "tol", 0.0)
        if self.length is not None:
            check_int(self.length, "length", 2)
        check_choice(self.basis, "basis", BASES)
        check_int(self.n_splines, "n_splines", 2)
        check_float(self.smoothness, "smoothness", 0.0)
        check_choice(self.init, "init", ("dtw", "uniform"))
        check_int(self.inner_iter, "inner_iter", 1)

    def align(self, x, y) -> Alignment:
        """Two sequences: the pair alignment through the common timeline."""
        return self._align_all([x, y], ["x", "y"]).pair(0, 1)

    def align_all(self, sequences) -> MultiAlignment:
        """Warp every sequence of ``sequences`` ((n_k, d_k) arrays) onto one timeline."""
        return self._align_all(*named_sequences(sequences))

    def _align_all(self, sequences, names: list[str]) -> MultiAlignment:
        seqs = checked_sequences(sequences, names)
        self._check_params()
        L = max(len(s) for s in seqs) if self.length is None else int(self.length)
        k = None if self.n_components is None else int(self.n_components)
        Q = warp_basis(L, self.basis, int(self.n_splines))
        if self.init == "uniform":
            weights = [_fit_weights(Q, np.linspace(0.0, 1.0, L)) for _ in seqs]
        else:
            longest = seqs[int(np.argmax([len(s) for s in seqs]))]
            weights = [_fit_weights(Q, _dtw_positions(longest, s, L) / (len(s) - 1)) for s in seqs]
        state = self._evaluate(seqs, Q, weights, k)
        history = [state["objective"]]
        for _ in range(int(self.max_iter)):
            new_weights = list(weights)
            for i in range(len(seqs)):
                for _ in range(int(self.inner_iter)):
                    new_weights[i] = self._gauss_newton(seqs[i], i, Q, new_weights, state, k)
            new_state = self._evaluate(seqs, Q, new_weights, k)
            if new_state["objective"] > history[-1] * (1.0 - float(self.tol)):
                break
            weights, state = new_weights, new_state
            history.append(state["objective"])
        warps = []
        for s, a in zip(seqs, weights):
            positions = (len(s) - 1) * (Q @ a)
            warps.append(Alignment(positions_to_path(positions, len(s)), shape=(L, len(s)), monotonic=True))
        return MultiAlignment(warps=warps, length=L, weights=state["projections"], means=state["means"],
                              scores=state["scores"], objective=history)

    def _evaluate(self, seqs, Q, weights, k) -> dict:
        """CCA on the warped sequences, the target, the objective (mean squared distance to it)."""
        warped = [_read(s, (len(s) - 1) * (Q @ a)) for s, a in zip(seqs, weights)]
        projections, scores, means = mcca(warped, k, reg=float(self.reg))
        on_common = [(w - m) @ v for w, m, v in zip(warped, means, projections)]
        target = np.mean(on_common, axis=0)
        objective = float(np.mean([((c - target) ** 2).sum(axis=1).mean() for c in on_common]))
        return {"projections": projections, "means": means, "scores": scores, "target": target,
                "objective": objective}

    def _gauss_newton(self, seq, index, Q, weights, state, k) -> np.ndarray:
        """One damped Gauss–Newton step of sequence ``index``'s weights on the simplex."""
        from scipy.optimize import nnls

        a = weights[index]
        n = len(seq)
        V, m = state["projections"][index], state["means"][index]
        target = state["target"]
        positions = (n - 1) * (Q @ a)
        residual = ((_read(seq, positions) - m) @ V - target).ravel()
        slope = _slope(seq, positions) @ V                       # (L, c): change per frame of position
        jac = ((n - 1) * Q[:, :, None] * slope[:, None, :]).transpose(0, 2, 1).reshape(-1, Q.shape[1])
        # min |J a' - (J a - r)|^2 + smoothness |a' - a|^2, a' >= 0, sum a' = 1 (heavy row)
        scale = max(np.linalg.norm(jac), 1.0)
        rows = [jac, np.sqrt(self.smoothness) * scale * np.eye(len(a)), 1e3 * scale * np.ones((1, len(a)))]
        rhs = [jac @ a - residual, np.sqrt(self.smoothness) * scale * a, [1e3 * scale]]
        proposal, _ = nnls(np.vstack(rows), np.concatenate(rhs), maxiter=50 * len(a))
        proposal = proposal / proposal.sum() if proposal.sum() > 0 else a
        current = self._partial_objective(seq, index, Q, a, state)
        step = 1.0
        for _ in range(8):                                        # halve until the objective falls
            trial = a + step * (proposal - a)
            if self._partial_objective(seq, index, Q, trial, state) < current:
                return trial
            step *= 0.5
        return a

    @staticmethod
    def _partial_objective(seq, index, Q, a, state) -> float:
        """Squared distance of sequence ``index``'s projected warped frames to the current target."""
        V, m = state["projections"][index], state["means"][index]
        warped = (_read(seq, (len(seq) - 1) * (Q @ a)) - m) @ V
        return float(((warped - state["target"]) ** 2).sum(axis=1).mean())


def _fit_weights(Q: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """The simplex weights whose basis combination is closest (least squares) to ``curve`` on [0, 1]."""
    from scipy.optimize import nnls

    A = np.vstack([Q, 1e3 * np.ones((1, Q.shape[1]))])
    a, _ = nnls(A, np.concatenate([curve, [1e3]]), maxiter=50 * Q.shape[1])
    return a / a.sum()


def _dtw_positions(reference: np.ndarray, seq: np.ndarray, L: int) -> np.ndarray:
    """Mean frame of ``seq`` matched to each of ``L`` steps along ``reference`` (PCA-DTW, as GCTW starts)."""
    from .ctw import _pca_dtw_path

    path = _pca_dtw_path(reference, seq, None)
    n_ref = len(reference)
    counts = np.bincount(path[:, 0], minlength=n_ref)
    mean = np.bincount(path[:, 0], weights=path[:, 1], minlength=n_ref) / np.maximum(counts, 1)
    return np.interp(np.linspace(0, n_ref - 1, L), np.arange(n_ref), np.maximum.accumulate(mean))
