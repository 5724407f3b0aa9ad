"""k-medoids for time series on the pairwise distance matrix: PAM or alternating updates."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClusterMixin

from ..aligner import Estimator
from ..utils.validation import check_choice, check_fitted, check_int
from ..warping.cdist import _resolve_jobs
from ._common import (as_rng, check_metric, check_metric_params, check_params, collection,
                      kmeans_plusplus, pairwise)

METHODS = ("pam", "alternate")
INITS = ("k-medoids++", "build", "random")


class TimeSeriesKMedoids(ClusterMixin, Estimator):
    """k-medoids of time series under DTW or any elastic metric.

    The ``N x N`` distance matrix is computed once (:func:`mmalign.cdist_dtw` for
    dtw, ``mmalign.warping.elastic.cdist`` for the elastic metrics, each pair
    once); the medoids minimise the sum of distances of every series to its
    nearest medoid.

    Parameters
    ----------
    n_clusters : int >= 1
    metric : {"dtw", "softdtw", "euclidean"} or a name of ``mmalign.warping.elastic.METRICS``
    method : {"pam", "alternate"}
        ``"pam"`` (Kaufman & Rousseeuw 1990): from the initial medoids, repeatedly
        make the single medoid/non-medoid swap that lowers the total the most,
        until none does (a local optimum over all swaps).  ``"alternate"``
        (Voronoi iteration, as k-means): assign every series to its nearest
        medoid, then make each cluster's medoid its member with the least sum of
        distances to the others; until the medoids no longer change.  Faster,
        usually a little worse.
    init : {"k-medoids++", "build", "random"} or array of n_clusters indices
        ``"k-medoids++"``: greedy k-means++ seeding on the distances (not squared);
        ``"build"``: PAM's greedy BUILD (deterministic); ``"random"``: distinct
        series at random; or the indices of the initial medoids.
    max_iter : int >= 1
        Most swaps (``"pam"``) or rounds (``"alternate"``).
    random_state : None, int or np.random.Generator
    metric_params : dict or None
        Keyword arguments of the metric (see :class:`TimeSeriesKMeans`).
    n_jobs : int
        Threads for the distance matrix; ``-1``: all cores.

    Attributes
    ----------
    medoid_indices_ : np.ndarray [shape=(n_clusters,)]
        Indices into the training set.
    cluster_centers_ : list of np.ndarray [shape=(n_k, d)]
        The medoid series.
    labels_ : np.ndarray [shape=(N,)]
    inertia_ : float
        Sum of the distances of the training series to their medoid (the
        objective; scikit-learn-extra's ``KMedoids`` reports the same).
    n_iter_ : int

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 30)
    >>> X = [np.sin(2 * np.pi * (t - s)) for s in (0, .05, .1)] + [t * k for k in (1, 1.2, 1.4)]
    >>> km = mmalign.TimeSeriesKMedoids(2, random_state=0).fit(X)
    >>> sorted(km.medoid_indices_.tolist())
    [1, 4]
    """

    def __init__(self, n_clusters: int = 8, *, metric: str = "dtw", method: str = "pam",
                 init="k-medoids++", max_iter: int = 300, random_state=None,
                 metric_params: dict | None = None, n_jobs: int = -1):
        self.n_clusters = n_clusters
        self.metric = metric
        self.method = method
        self.init = init
        self.max_iter = max_iter
        self.random_state = random_state
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        check_int(self.n_clusters, "n_clusters", 1)
        metric = check_metric(self.metric)
        check_choice(self.method, "method", METHODS)
        if isinstance(self.init, str):
            check_choice(self.init, "init", INITS)
        elif not isinstance(self.init, (np.ndarray, list, tuple)):
            raise ValueError(f"init must be one of {list(INITS)} or medoid indices, "
                             f"got {self.init!r}")
        check_int(self.max_iter, "max_iter", 1)
        check_metric_params(metric, check_params(self.metric_params, "metric_params"))
        _resolve_jobs(self.n_jobs)

    def fit(self, X, y=None) -> "TimeSeriesKMedoids":
        """Cluster ``X``: ``(N, n)``, ``(N, n, d)`` or a list of series (lengths may differ)."""
        self._check_params()
        xs = collection(X)
        k = self.n_clusters
        if k > len(xs):
            raise ValueError(f"n_clusters={k} exceeds the {len(xs)} series of X")
        D = pairwise(xs, None, self.metric, check_params(self.metric_params, "metric_params"),
                     _resolve_jobs(self.n_jobs))
        medoids = self._initial(D, as_rng(self.random_state))
        if self.method == "pam":
            medoids, n_iter = pam_swap(D, medoids, self.max_iter)
        else:
            medoids, n_iter = alternate(D, medoids, self.max_iter)
        self.medoid_indices_ = np.asarray(medoids)
        self.labels_ = np.argmin(D[:, self.medoid_indices_], axis=1)
        self.inertia_ = float(D[np.arange(len(xs)), self.medoid_indices_[self.labels_]].sum())
        self.cluster_centers_ = [xs[i].copy() for i in self.medoid_indices_]
        self.n_iter_ = n_iter
        self.n_features_in_ = xs[0].shape[1]
        return self

    def _initial(self, D: np.ndarray, rng) -> np.ndarray:
        k, n = self.n_clusters, len(D)
        if not isinstance(self.init, str):
            idx = np.asarray(self.init)
            if idx.shape != (k,) or not np.issubdtype(idx.dtype, np.integer) \
                    or idx.min() < 0 or idx.max() >= n or len(set(idx.tolist())) != k:
                raise ValueError(f"init must be {k} distinct indices in [0, {n}), "
                                 f"got {self.init!r}")
            return idx.astype(np.int64)
        if self.init == "random":
            return rng.choice(n, k, replace=False)
        if self.init == "build":
            return build(D, k)
        return kmeans_plusplus(list(range(n)), k, lambda rows: np.sqrt(D[rows]), rng)

    def predict(self, X) -> np.ndarray:
        """Index of the nearest medoid for each series of ``X``."""
        return np.argmin(self.transform(X), axis=1)

    def transform(self, X) -> np.ndarray:
        """Distances ``(N, n_clusters)`` from each series of ``X`` to each medoid."""
        check_fitted(self, "medoid_indices_", "fit(X)")
        xs = collection(X)
        if xs[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {xs[0].shape[1]} features, the training series "
                             f"{self.n_features_in_}")
        return pairwise(xs, list(self.cluster_centers_), self.metric,
                        check_params(self.metric_params, "metric_params"),
                        _resolve_jobs(self.n_jobs))

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_


def build(D: np.ndarray, k: int) -> np.ndarray:
    """PAM's BUILD: the series with the least total distance, then greedily the one that
    lowers the total the most."""
    medoids = [int(np.argmin(D.sum(axis=1)))]
    nearest = D[medoids[0]].copy()
    for _ in range(1, k):
        gain = np.maximum(nearest[None, :] - D, 0.0).sum(axis=1)
        gain[medoids] = -1.0
        best = int(np.argmax(gain))
        medoids.append(best)
        nearest = np.minimum(nearest, D[best])
    return np.asarray(medoids)


def pam_swap(D: np.ndarray, medoids, max_iter: int) -> tuple[np.ndarray, int]:
    """PAM's SWAP: the best single swap while it lowers ``sum_i min_m D[i, m]``."""
    medoids = np.array(medoids, dtype=np.int64)
    n = len(D)
    for it in range(1, max_iter + 1):
        Dm = D[:, medoids]                       # (n, k)
        order = np.argsort(Dm, axis=1)
        first = Dm[np.arange(n), order[:, 0]]    # distance to nearest medoid
        second = Dm[np.arange(n), order[:, 1]] if len(medoids) > 1 else np.full(n, np.inf)
        total = first.sum()
        best_delta, best_swap = 0.0, None
        is_medoid = np.zeros(n, bool)
        is_medoid[medoids] = True
        for slot in range(len(medoids)):
            # removing medoid `slot`: series assigned to it fall back to their second
            without = np.where(order[:, 0] == slot, second, first)   # (n,)
            # adding candidate h: every series takes min(without, D[i, h])
            costs = np.minimum(without[None, :], D).sum(axis=1)       # (n candidates,)
            costs[is_medoid] = np.inf
            h = int(np.argmin(costs))
            delta = costs[h] - total
            if delta < best_delta - 1e-12 * max(total, 1.0):
                best_delta, best_swap = delta, (slot, h)
        if best_swap is None:
            return medoids, it
        medoids[best_swap[0]] = best_swap[1]
    return medoids, max_iter


def alternate(D: np.ndarray, medoids, max_iter: int) -> tuple[np.ndarray, int]:
    """Voronoi iteration: assign, then each cluster's best member, until nothing changes."""
    medoids = np.array(medoids, dtype=np.int64)
    for it in range(1, max_iter + 1):
        labels = np.argmin(D[:, medoids], axis=1)
        new = medoids.copy()
        for c in range(len(medoids)):
            members = np.flatnonzero(labels == c)
            if len(members):
                new[c] = members[np.argmin(D[np.ix_(members, members)].sum(axis=1))]
        if np.array_equal(new, medoids):
            return medoids, it
        medoids = new
    return medoids, max_iter
