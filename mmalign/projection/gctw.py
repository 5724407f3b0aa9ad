"""Generalised canonical time warping: N >= 2 sequences of different dimensions.

Each sequence is warped onto one common timeline and projected by multi-set CCA
into one shared space (Zhou & De la Torre, CVPR 2012).  The loop alternates

1. multi-set CCA (:func:`~mmalign.projection.mcca`) on the sequences resampled
   onto the common timeline by their current warps;
2. the common target: the mean of the projected, warped sequences;
3. DTW of every projected sequence against the target: new warps.

Here the warps are DTW paths (the GCTW paper's DTW-based variant), not the
monotone basis functions optimised by Gauss–Newton of its GTW variant.  As in
:class:`~mmalign.CTW`, the objective (mean squared distance of the projected,
warped sequences to their mean) is tracked, the best iterate kept, and the
reported history never increases.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..alignment import Alignment
from ..utils.validation import as_sequence, check_int
from ..warping import dtw_path
from ..warping.aligner import StatelessAligner
from .cca import mcca
from .ctw import _pca_dtw_path, check_params, uniform_path


@dataclass
class MultiAlignment:
    """Warps of N sequences onto one common timeline of ``length`` steps.

    ``warps[k]`` is an :class:`~mmalign.Alignment` whose side x is the common
    timeline and side y sequence k.  :meth:`pair` derives the alignment of any
    two sequences.
    """

    warps: list
    length: int
    weights: list
    means: list
    scores: np.ndarray
    objective: list = field(default_factory=list)

    def pair(self, a: int, b: int) -> Alignment:
        """Alignment of sequence ``a`` (side x) with sequence ``b`` (side y).

        Each frame of ``a`` is sent to the common timeline and from there to ``b``
        (mean matched positions, linear interpolation); the resulting positions are
        rounded into a monotone continuous path.
        """
        n = len(self.warps)
        for idx, name in ((a, "a"), (b, "b")):
            if not 0 <= idx < n:
                raise ValueError(f"{name} must index one of the {n} sequences, got {idx}")
        common_of_a = self.warps[a].mapping("y")  # frame of a -> common step
        b_of_common = self.warps[b].mapping("x")  # common step -> frame of b
        target = np.interp(common_of_a, np.arange(self.length), b_of_common)
        n_a, n_b = self.warps[a].n_y, self.warps[b].n_y
        return Alignment(positions_to_path(target, n_b), shape=(n_a, n_b), monotonic=True)


class GCTW(StatelessAligner):
    """Generalised canonical time warping of N >= 2 sequences of different dimensions.

    Parameters
    ----------
    n_components : int or None
        Dimension of the shared space; default the smallest feature dimension.
    reg : float >= 0
        Ridge of the multi-set CCA.
    max_iter : int >= 1
    tol : float >= 0
        Stop when the objective improves by less than this fraction.
    length : int or None
        Steps of the common timeline with ``init="uniform"``; default (and always
        with ``init="dtw"``) the longest sequence.
    init : {"best", "dtw", "uniform"}
        Initial warps: DTW of each sequence's first principal component against the
        longest sequence's (as :class:`~mmalign.CTW` does for a pair); uniform
        stretching onto the common timeline; or ``"best"``, both, keeping the run
        with the lower final objective.
    radius : int or None
        Sakoe–Chiba radius of the DTW steps.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> clock = [np.linspace(0, 1, n) ** p for n, p in ((100, 1.0), (80, 1.4), (120, 0.7))]
    >>> maps = [np.array([[1., 0.]]), np.array([[1., 2., 0.], [0., 1., 1.]]), np.eye(2)]
    >>> seqs = [np.c_[np.sin(5 * c), np.cos(3 * c)][:, :m.shape[0]] @ m for c, m in zip(clock, maps)]
    >>> result = mmalign.GCTW().align_all(seqs)
    >>> len(result.warps), result.pair(0, 2).shape
    (3, (100, 120))
    """

    def __init__(self, n_components: int | None = None, reg: float = 1e-6, max_iter: int = 30,
                 tol: float = 1e-6, length: int | None = None, init: str = "best",
                 radius: int | None = None):
        self.n_components = n_components
        self.reg = reg
        self.max_iter = max_iter
        self.tol = tol
        self.length = length
        self.init = init
        self.radius = radius

    def _check_params(self) -> None:
        check_params(self, {"best", "dtw", "uniform"})
        if self.length is not None:
            check_int(self.length, "length", 2)

    def align(self, x, y) -> Alignment:
        """Two sequences: the pair alignment through the common timeline."""
        return self._align_all([x, y], ["x", "y"]).pair(0, 1)

    def align_all(self, sequences) -> MultiAlignment:
        """Warp every sequence of ``sequences`` ((n_k, d_k) arrays) onto one timeline."""
        return self._align_all(*named_sequences(sequences))

    def _align_all(self, sequences, names: list[str]) -> MultiAlignment:
        """:meth:`align_all`, with messages naming each sequence by ``names``."""
        seqs = checked_sequences(sequences, names)
        self._check_params()
        max_iter, tol = int(self.max_iter), float(self.tol)
        k = None if self.n_components is None else int(self.n_components)
        runs = []
        if self.init in ("best", "dtw"):
            longest = seqs[int(np.argmax([len(s) for s in seqs]))]
            L = len(longest)
            runs.append(self._alternate(seqs, L, k, max_iter, tol, [
                Alignment(_pca_dtw_path(longest, s, self.radius), shape=(L, len(s)))
                for s in seqs]))
        if self.init in ("best", "uniform"):
            L = max(len(s) for s in seqs) if self.length is None else int(self.length)
            runs.append(self._alternate(seqs, L, k, max_iter, tol, [
                Alignment(uniform_path(L, len(s)), shape=(L, len(s))) for s in seqs]))
        return min(runs, key=lambda r: r.objective[-1])

    def _alternate(self, seqs, L, k, max_iter, tol, warps) -> MultiAlignment:
        best, history = None, []
        for _ in range(max_iter):
            warped = [w.warp(s, source="y") for w, s in zip(warps, seqs)]
            weights, scores, means = mcca(warped, k, reg=self.reg)
            projected = [(s - m) @ w for s, m, w in zip(seqs, means, weights)]
            on_common = [(v - m) @ w for v, m, w in zip(warped, means, weights)]
            target = np.mean(on_common, axis=0)
            objective = float(np.mean([((c - target) ** 2).sum(axis=1).mean()
                                       for c in on_common]))
            if best is not None and objective > best[0] * (1.0 - tol):
                break
            best = (objective, warps, weights, means, scores)
            history.append(objective)
            new = [dtw_path(target, p, radius=self.radius) for p in projected]
            if all(np.array_equal(a.path(), b.path()) for a, b in zip(new, warps)):
                break
            warps = [Alignment(a.path(), shape=a.shape) for a in new]
        objective, warps, weights, means, scores = best
        return MultiAlignment(warps=warps, length=L, weights=weights, means=means,
                              scores=scores, objective=history)


def named_sequences(sequences) -> tuple[list, list[str]]:
    """``sequences`` as a list, and the names its items go by in error messages."""
    try:
        sequences = list(sequences)
    except TypeError:
        raise ValueError(f"sequences must be a list of (n_k, d_k) arrays, got "
                         f"{type(sequences).__name__}") from None
    return sequences, [f"sequences[{k}]" for k in range(len(sequences))]


def checked_sequences(sequences, names: list[str]) -> list[np.ndarray]:
    """At least two finite ``(n_k, d_k)`` sequences, none constant or shorter than 2 frames."""
    seqs = [as_sequence(s, name) for s, name in zip(sequences, names)]
    if len(seqs) < 2:
        raise ValueError(f"sequences must hold at least 2 sequences, got {len(seqs)}")
    for s, name in zip(seqs, names):
        if len(s) < 2 or np.ptp(s, axis=0).max() == 0:
            raise ValueError(f"{name} is constant or too short to correlate")
    return seqs


def positions_to_path(target: np.ndarray, n_b: int) -> np.ndarray:
    """Monotone continuous path from fractional positions in b, one per frame of a."""
    cols = np.clip(np.round(np.maximum.accumulate(target)), 0, n_b - 1).astype(np.int64)
    cols[0] = 0
    cols[-1] = n_b - 1
    path, j = [], 0
    for i, col in enumerate(cols):
        if i > 0 and j < col:
            j += 1  # enter the row diagonally when b moves on
        path.append((i, j))
        while j < col:
            j += 1
            path.append((i, j))
    return np.array(path, dtype=np.int64)
