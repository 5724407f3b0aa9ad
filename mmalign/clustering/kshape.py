"""k-shape (Paparrizos & Gravano 2015): k-means under the shape-based distance."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClusterMixin

from ..aligner import Estimator
from ..utils.validation import check_bool, check_choice, check_fitted, check_float, check_int
from ._common import as_rng, collection

__all__ = ["TimeSeriesKShape", "sbd", "shape_extraction", "z_normalize"]


def z_normalize(X: np.ndarray) -> np.ndarray:
    """Each series and feature of ``X (N, n, d)`` to mean 0 and (population) std 1; a
    constant one to 0 (tslearn's ``TimeSeriesScalerMeanVariance``)."""
    mean = X.mean(axis=1, keepdims=True)
    std = X.std(axis=1, keepdims=True)
    return (X - mean) / np.where(std > 0, std, 1.0)


def _cross_correlation(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(len(A), len(B), 2n - 1)`` cross-correlations summed over features, lags
    ``-(n-1) .. n-1`` of ``B`` against ``A`` (by FFT, as tslearn's ``normalized_cc``)."""
    n = A.shape[1]
    size = 2 ** (1 + int(np.log2(2 * n - 1)))
    fa = np.fft.rfft(A, size, axis=1)
    fb = np.conj(np.fft.rfft(B, size, axis=1))
    cc = np.fft.irfft(np.einsum("afd,bfd->abf", fa, fb), size, axis=2)
    return np.concatenate([cc[:, :, size - (n - 1):], cc[:, :, :n]], axis=2)


def _ncc_max(A: np.ndarray, B: np.ndarray, block: int = 256) -> np.ndarray:
    """Largest normalised cross-correlation of every pair, ``(len(A), len(B))``."""
    na = np.linalg.norm(A.reshape(len(A), -1), axis=1)
    nb = np.linalg.norm(B.reshape(len(B), -1), axis=1)
    denom = na[:, None] * nb[None, :]
    denom = np.where(denom < 1e-9, np.inf, denom)  # a zero series correlates with nothing
    out = np.empty((len(A), len(B)))
    for s in range(0, len(A), block):
        out[s:s + block] = _cross_correlation(A[s:s + block], B).max(axis=2)
    return out / denom


def sbd(X, Y=None) -> np.ndarray:
    """Shape-based distance ``1 - max_lag NCC(x, y)`` between every series of ``X`` and ``Y``.

    Parameters
    ----------
    X : np.ndarray [shape=(N, n) or (N, n, d)]
    Y : np.ndarray [shape=(M, n) or (M, n, d)] or None
        ``None``: within ``X``.

    Returns
    -------
    distances : np.ndarray [shape=(N, M)], in ``[0, 2]``
        The normalised cross-correlation divides by the product of the Euclidean
        norms (``0`` where one is below ``1e-9``, as tslearn), the maximum runs
        over every shift ``-(n-1) .. n-1``; multivariate series sum the
        correlation over features.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.sin(np.linspace(0, 6, 50))
    >>> float(round(sbd(x[None], np.roll(x, 3)[None])[0, 0], 2)) < 0.1
    True
    """
    A = _as_equal(X, "X")
    B = A if Y is None else _as_equal(Y, "Y")
    if B.shape[1:] != A.shape[1:]:
        raise ValueError(f"X and Y need one length and feature count, got {A.shape[1:]} "
                         f"and {B.shape[1:]}")
    return 1.0 - _ncc_max(A, B)


def _shift_to(reference: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Each series of ``X (N, n, d)`` shifted (zero-filled) to its best lag on ``reference``."""
    n = X.shape[1]
    cc = _cross_correlation(reference[None], X)[0]  # (N, 2n - 1), lag index 0 = -(n-1)
    shifts = np.argmax(cc, axis=1) + 1 - n
    out = np.zeros_like(X)
    for i, s in enumerate(shifts):
        if s > 0:
            out[i, s:] = X[i, :-s]
        elif s < 0:
            out[i, :s] = X[i, -s:]
        else:
            out[i] = X[i]
    return out


def shape_extraction(members: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The k-shape centroid of ``members (N, n, d)`` aligned on ``centre (n, d)``.

    Each member is shifted to its best lag on the current centre; per feature the
    new centre is the leading eigenvector of ``Q^T S Q`` (``S = X^T X`` of the
    shifted members, ``Q = I - 1/n``), signed to be nearer the members; then
    z-normalised (Paparrizos & Gravano 2015, Algorithm 2, as tslearn).
    """
    n, d = centre.shape
    shifted = _shift_to(centre, members)
    Q = np.eye(n) - np.ones((n, n)) / n
    columns = []
    for j in range(d):
        S = shifted[:, :, j].T @ shifted[:, :, j]
        _, vec = np.linalg.eigh(Q.T @ (S @ Q))
        mu = vec[:, -1].reshape(n, 1)
        plus = np.linalg.norm(shifted - mu, axis=(1, 2)).sum()
        minus = np.linalg.norm(shifted + mu, axis=(1, 2)).sum()
        columns.append(-mu if minus < plus else mu)
    return z_normalize(np.hstack(columns)[None])[0]


def _as_equal(X, name: str) -> np.ndarray:
    xs = collection(X, name)
    lengths = {len(x) for x in xs}
    if len(lengths) > 1:
        raise ValueError(f"{name} must hold series of one length for k-shape, got lengths "
                         f"{sorted(lengths)[:3]}...")
    return np.stack(xs)


class TimeSeriesKShape(ClusterMixin, Estimator):
    """k-shape clustering (Paparrizos & Gravano 2015), as tslearn's ``KShape``.

    Assignment under the shape-based distance ``SBD = 1 - max NCC`` (normalised
    cross-correlation over every shift, by FFT); update by shape extraction (the
    leading eigenvector of the shifted members' centred scatter matrix). From the
    same initial centres it gives tslearn's labels, centres and inertia.

    Parameters
    ----------
    n_clusters : int >= 1
    max_iter : int >= 1
    tol : float >= 0
        Stop when the inertia changes by less (or rises: then the previous
        centres are kept, as tslearn).
    n_init : int >= 1
        Runs from different random initial centres; the least inertia is kept.
    random_state : None, int or np.random.Generator
    init : "random" or np.ndarray [shape=(n_clusters, n) or (n_clusters, n, d)]
        ``"random"``: ``n_clusters`` distinct series (z-normalised input) drawn at random.
    z_normalize : bool
        z-normalise every series (per feature) before clustering, as the method
        assumes; tslearn leaves this to the user (``TimeSeriesScalerMeanVariance``).

    Attributes
    ----------
    cluster_centers_ : np.ndarray [shape=(n_clusters, n, d)], z-normalised
    labels_ : np.ndarray [shape=(N,)]
    inertia_ : float
        Mean over the series of the squared SBD to their centre (tslearn's).
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 64)
    >>> X = [np.sin(6 * np.pi * t + s) for s in (0, .3, .6)] + [(t > c) * 1.0 for c in (.4, .5, .6)]
    >>> ks = mmalign.TimeSeriesKShape(2, n_init=3, random_state=0).fit(X)  # a local method
    >>> ks.labels_.tolist() in ([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
    True
    """

    def __init__(self, n_clusters: int = 3, *, max_iter: int = 100, tol: float = 1e-6,
                 n_init: int = 1, random_state=None, init="random", z_normalize: bool = True):
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.init = init
        self.z_normalize = z_normalize

    def _check_params(self) -> None:
        check_int(self.n_clusters, "n_clusters", 1)
        check_int(self.max_iter, "max_iter", 1)
        check_float(self.tol, "tol", 0.0)
        check_int(self.n_init, "n_init", 1)
        check_bool(self.z_normalize, "z_normalize")
        if isinstance(self.init, str):
            check_choice(self.init, "init", ("random",))
        elif not isinstance(self.init, (np.ndarray, list, tuple)):
            raise ValueError(f"init must be 'random' or an array of initial centres, "
                             f"got {self.init!r}")

    def _prepare(self, X) -> np.ndarray:
        A = _as_equal(X, "X")
        return z_normalize(A) if self.z_normalize else A

    def fit(self, X, y=None) -> "TimeSeriesKShape":
        """Cluster ``X`` (``(N, n)``, ``(N, n, d)`` or a list of equal-length series)."""
        self._check_params()
        A = self._prepare(X)
        k = self.n_clusters
        if k > len(A):
            raise ValueError(f"n_clusters={k} exceeds the {len(A)} series of X")
        rng = as_rng(self.random_state)
        if not isinstance(self.init, str):
            init = np.asarray(self.init, dtype=np.float64)
            init = init[:, :, None] if init.ndim == 2 else init
            if init.shape != (k, *A.shape[1:]):
                raise ValueError(f"init must have shape {(k, *A.shape[1:])}, got {init.shape}")
            if not np.isfinite(init).all():
                raise ValueError("init contains NaN or infinite values")
            starts = [init.copy()]
        else:
            starts = [A[rng.choice(len(A), k, replace=False)].copy() for _ in range(self.n_init)]
        best = None
        for centres in starts:
            result = self._one_run(A, centres)
            if best is None or result[2] < best[2]:
                best = result
        self.cluster_centers_, self.labels_, inertia, self.n_iter_ = best
        self.inertia_ = float(inertia)
        self.n_features_in_ = A.shape[2]
        self.n_timesteps_in_ = A.shape[1]
        return self

    def _assign(self, A, centres):
        D = 1.0 - _ncc_max(A, centres)
        labels = np.argmin(D, axis=1)
        empty = np.setdiff1d(np.arange(self.n_clusters), labels)
        if len(empty):  # refill an empty cluster with the series farthest from its centre
            own = D[np.arange(len(A)), labels].copy()
            for c in empty:
                far = int(np.argmax(own))
                own[far] = -np.inf
                centres = centres.copy()
                centres[c] = A[far]
            return self._assign(A, centres)
        return labels, np.mean(D[np.arange(len(A)), labels] ** 2), centres

    def _one_run(self, A, centres):
        labels, inertia, centres = self._assign(A, centres)
        previous = np.inf
        rounds = 0
        for rounds in range(1, self.max_iter + 1):
            old = centres
            centres = np.stack([shape_extraction(A[labels == c], centres[c])
                                for c in range(self.n_clusters)])
            new_labels, new_inertia, centres = self._assign(A, centres)
            if abs(previous - new_inertia) < self.tol or new_inertia > previous:
                # converged or worse: keep the previous centres (as tslearn)
                labels, inertia, centres = self._assign(A, old)
                break
            labels, inertia, previous = new_labels, new_inertia, new_inertia
        return centres, labels, inertia, rounds

    def predict(self, X) -> np.ndarray:
        """Nearest centre under SBD for each series of ``X`` (z-normalised if ``z_normalize``)."""
        return np.argmin(self.transform(X), axis=1)

    def transform(self, X) -> np.ndarray:
        """SBD ``(N, n_clusters)`` from each series of ``X`` to each centre."""
        check_fitted(self, "cluster_centers_", "fit(X)")
        A = self._prepare(X)
        if A.shape[1:] != self.cluster_centers_.shape[1:]:
            raise ValueError(f"X has series of shape {A.shape[1:]}, the training series "
                             f"{self.cluster_centers_.shape[1:]}")
        return 1.0 - _ncc_max(A, self.cluster_centers_)

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_
