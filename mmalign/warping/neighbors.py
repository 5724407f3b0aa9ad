"""k-nearest-neighbour classification under DTW with a lower-bound cascade."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from sklearn.base import ClassifierMixin

from ..aligner import Estimator
from ..utils.validation import check_choice, check_fitted, check_int
from . import _extremes as ext
from . import _kernels as K
from ._threads import numba_threads
from .cdist import BACKENDS, _resolve_jobs, as_collection, cdist_dtw
from .dtw import finalize
from .lower_bounds import _envelope, _metric_code, lb_keogh_raw, lb_kim_raw
from .windows import resolve_radius, sakoe_chiba_bounds

if TYPE_CHECKING:  # the dask backend is optional
    from distributed import Client

# a bound may exceed the exact distance by rounding when the two are equal in exact
# arithmetic; pruning only beyond this relative slack keeps the search exact
SLACK = 1e-12



def store_training_set(estimator, X, y):
    """Set ``train_``, ``classes_``, ``y_encoded_`` and ``n_features_in_`` of a nearest-neighbour classifier.

    ``X`` is ``(N, n[, d])`` or a ragged list, ``y`` one label per series; returns ``estimator``.
    """
    estimator.train_ = as_collection(X, "X")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(estimator.train_):
        raise ValueError(f"y must have one label per series of X ({len(estimator.train_)}), "
                         f"got shape {y.shape}")
    estimator.classes_, estimator.y_encoded_ = np.unique(y, return_inverse=True)
    estimator.n_features_in_ = estimator.train_[0].shape[1]
    return estimator

class KNeighborsDTW(ClassifierMixin, Estimator):
    """k-nearest-neighbour classifier under DTW, exact and fast.

    Candidates are visited in order of LB_Kim and pruned by LB_Kim, LB_Keogh of
    the query against the candidate's envelope and of the candidate against the
    query's envelope; the survivors run DTW with early abandoning (Rakthanmanon
    et al. 2012, "UCR suite").  The neighbours, distances and predictions are
    exactly those of brute force (``cdist_dtw`` and a stable sort); ties in
    distance go to the lower training index, ties in the vote to the smaller class.

    Parameters
    ----------
    n_neighbors : int >= 1
    radius : int >= 0 or None
        Sakoe–Chiba radius in samples (see :mod:`mmalign.warping.windows`).
    window : float in [0, 1] or None
        The radius as a fraction of the length, ``round(window * n)`` (UCR).
    metric : {"sqeuclidean", "euclidean", "cityblock"}
    lower_bounds : bool
        Use the cascade; ``False`` computes every distance (for comparisons).
    n_jobs : int
        Threads; ``-1`` for all cores.  With ``backend="dask"`` and neither
        ``client`` nor ``scheduler``: the worker processes of the ``LocalCluster``
        started for each ``kneighbors`` call.
    backend : {"local", "dask"}
        ``"dask"``: the queries are cut into blocks of ``block_size`` that run the
        same search on the workers of a ``dask.distributed`` cluster, the training
        series scattered once per call (the brute-force fallback runs
        ``cdist_dtw(..., backend="dask")``).  Neighbours, distances and
        ``n_dtw_computed_`` are identical to ``"local"``.
    client : dask.distributed.Client or None
        ``backend="dask"``: the cluster to use (left open).
    scheduler : str or None
        ``backend="dask"``: a scheduler address to connect to; with neither
        ``client`` nor ``scheduler`` a ``LocalCluster`` is started and closed per call.
    block_size : int > 0 or None
        ``backend="dask"``: queries per block (and tile size of the brute force);
        ``None``: 256.

    Attributes
    ----------
    classes_ : np.ndarray
    y_encoded_ : np.ndarray [shape=(N,)]
        Each training series' label as an index into ``classes_``.
    train_ : list of np.ndarray
        The training series.
    n_dtw_computed_ : int
        DTW distances that the last ``kneighbors`` call could not prune.

    Notes
    -----
    The cascade needs every training and query series to have one length, and
    values inside ``[2**-400, 2**400]`` in magnitude (or 0); otherwise the search
    falls back to brute force, with the same results (``cdist_dtw``, which
    handles values of any finite size as :func:`mmalign.dtw` does).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> X = np.array([[0., 1., 2., 1.], [0., 1., 1., 2.], [5., 5., 4., 5.]])
    >>> clf = mmalign.KNeighborsDTW().fit(X, ["up", "up", "high"])
    >>> clf.predict(np.array([[4., 5., 5., 5.]])).tolist()
    ['high']
    """

    def __init__(self, n_neighbors: int = 1, *, radius: int | None = None,
                 window: float | None = None, metric: str = "sqeuclidean",
                 lower_bounds: bool = True, n_jobs: int = -1, backend: str = "local",
                 client: Client | None = None, scheduler: str | None = None,
                 block_size: int | None = None):
        self.n_neighbors = n_neighbors
        self.radius = radius
        self.window = window
        self.metric = metric
        self.lower_bounds = lower_bounds
        self.n_jobs = n_jobs
        self.backend = backend
        self.client = client
        self.scheduler = scheduler
        self.block_size = block_size

    def fit(self, X, y) -> "KNeighborsDTW":
        """Store the training series ``X`` (``(N, n[, d])`` or a list) and labels ``y`` (N,)."""
        self._check_params()
        return store_training_set(self, X, y)

    def kneighbors(self, X, n_neighbors: int | None = None, return_distance: bool = True):
        """Nearest training series of each series of ``X``.

        Returns
        -------
        distances : np.ndarray [shape=(len(X), n_neighbors)]
            DTW distances (as :func:`mmalign.dtw`), ascending.
        indices : np.ndarray [shape=(len(X), n_neighbors)]
            Indices into the training set.
        """
        check_fitted(self, "train_", "fit(X, y)")
        k = check_int(self.n_neighbors if n_neighbors is None else n_neighbors,
                      "n_neighbors", 1)
        if k > len(self.train_):
            raise ValueError(f"n_neighbors={k} exceeds the {len(self.train_)} training series")
        queries = as_collection(X, "X")
        if queries[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {queries[0].shape[1]} features, the training series "
                             f"{self.n_features_in_}")
        lengths = {len(s) for s in queries} | {len(s) for s in self.train_}
        if len(lengths) == 1 and not self._needs_scaling(queries):
            dist, ind = self._cascade(queries, k)
        else:
            dist, ind = self._brute_force(queries, k)
        return (dist, ind) if return_distance else ind

    def predict(self, X) -> np.ndarray:
        """Majority label of the ``n_neighbors`` nearest training series."""
        check_fitted(self, "train_", "fit(X, y)")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """Fraction of the neighbours in each class, ``(len(X), n_classes)``."""
        ind = self.kneighbors(X, return_distance=False)
        votes = self.y_encoded_[ind]
        counts = np.zeros((len(ind), len(self.classes_)))
        np.add.at(counts, (np.arange(len(ind))[:, None], votes), 1.0)
        return counts / ind.shape[1]

    def __sklearn_clone__(self) -> "KNeighborsDTW":
        """``sklearn.base.clone``: a dask ``client`` is shared, not copied (it cannot be)."""
        from sklearn.base import clone

        params = self.get_params(deep=False)
        return type(self)(**{name: value if name == "client" else clone(value, safe=False)
                             for name, value in params.items()})

    # ------------------------------------------------------------------ internals

    def _check_params(self) -> None:
        check_int(self.n_neighbors, "n_neighbors", 1)
        _metric_code(self.metric)
        self._check_backend()

    def _check_backend(self) -> None:
        check_choice(self.backend, "backend", BACKENDS)
        if self.backend == "local":
            for name in ("client", "scheduler", "block_size"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} is a backend='dask' option; pass backend='dask' "
                                     f"or drop {name}")
        else:
            from ._dask import check_block_size, import_distributed

            check_block_size(self.block_size)
            import_distributed()

    def _dask_options(self) -> dict:
        if self.backend == "local":
            return {}
        return dict(backend="dask", client=self.client, scheduler=self.scheduler,
                    block_size=self.block_size)

    def _needs_scaling(self, queries) -> bool:
        """Whether a series lies outside the safe range, where the cascade's raw costs
        could overflow or underflow: brute force then scales each pair."""
        peaks = [ext.peak(s) for s in queries] + [ext.peak(s) for s in self.train_]
        return bool(ext.exponents(np.array(peaks)).any())

    def _radius_for(self, n: int) -> int | None:
        return resolve_radius(self.radius, self.window, n, n)

    def _brute_force(self, queries, k):
        D = cdist_dtw(queries, self.train_, radius=self.radius, window=self.window,
                      metric=self.metric, n_jobs=self.n_jobs, **self._dask_options())
        order = np.argsort(D, axis=1, kind="stable")[:, :k]
        self.n_dtw_computed_ = D.size
        return np.take_along_axis(D, order, axis=1), order

    def _cascade(self, queries, k):
        check_choice(self.lower_bounds, "lower_bounds", {True, False})
        n = len(queries[0])
        r = self._radius_for(n)
        lo, hi = sakoe_chiba_bounds(n, n, -1 if r is None else r)
        code = _metric_code(self.metric)
        env_r = n if r is None else r
        Q = np.stack(queries)
        T = np.stack(self.train_)
        T_rev = np.ascontiguousarray(T[:, ::-1].transpose(0, 2, 1))
        Q_t = np.ascontiguousarray(Q.transpose(0, 2, 1))
        upT, loT = _envelope_stack(T, env_r)
        upQ, loQ = _envelope_stack(Q, env_r)
        if self.backend == "dask":
            from ._dask import knn_blocks

            arrays = dict(Q=Q, Q_t=Q_t, T=T, T_rev=T_rev, upT=upT, loT=loT, upQ=upQ, loQ=loQ,
                          lo=lo, hi=hi, metric=code, use_bounds=bool(self.lower_bounds))
            dist, ind, computed = knn_blocks(arrays, len(Q), k, client=self.client,
                                             scheduler=self.scheduler,
                                             block_size=self.block_size,
                                             n_workers=_resolve_jobs(self.n_jobs))
        else:
            dist = np.empty((len(Q), k))
            ind = np.empty((len(Q), k), np.int64)
            computed = np.zeros(len(Q), np.int64)
            with numba_threads(_resolve_jobs(self.n_jobs)):
                _knn_cascade(Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, code,
                             bool(self.lower_bounds), dist, ind, computed)
        self.n_dtw_computed_ = int(computed.sum())
        return np.vectorize(lambda v: finalize(v, self.metric))(dist), ind


def _envelope_stack(S: np.ndarray, r: int):
    pairs = [_envelope(s, r) for s in S]
    return (np.ascontiguousarray(np.stack([p[0] for p in pairs])),
            np.ascontiguousarray(np.stack([p[1] for p in pairs])))


@njit(cache=True, parallel=True)
def _knn_cascade(Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, metric, use_bounds,
                 dist, ind, computed):
    for q in prange(Q.shape[0]):
        _knn_query(q, Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, metric, use_bounds,
                   dist, ind, computed)


@njit(cache=True, nogil=True)
def _knn_cascade_serial(Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, metric, use_bounds,
                        dist, ind, computed):
    """``_knn_cascade`` without numba's thread pool (dask workers: one block per thread)."""
    for q in range(Q.shape[0]):
        _knn_query(q, Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, metric, use_bounds,
                   dist, ind, computed)


@njit(cache=True, nogil=True)
def _knn_query(q, Q, Q_t, T, T_rev, upT, loT, upQ, loQ, lo, hi, k, metric, use_bounds,
               dist, ind, computed):
    """The k nearest training series of query ``q``, written into row ``q`` of the outputs."""
    n_train = T.shape[0]
    best_d = np.full(k, np.inf)
    best_i = np.full(k, n_train, np.int64)
    kim = np.empty(n_train)
    for t in range(n_train):
        kim[t] = lb_kim_raw(Q[q], T[t], metric)
    order = np.argsort(kim, kind="mergesort") if use_bounds else np.arange(n_train)
    count = 0
    for t in order:
        threshold = best_d[k - 1]
        if use_bounds:
            slack = threshold * (1.0 + SLACK)
            if kim[t] > slack:
                break  # candidates come in increasing LB_Kim; none later can qualify
            if lb_keogh_raw(Q[q], upT[t], loT[t], metric, slack) > slack:
                continue
            if lb_keogh_raw(T[t], upQ[q], loQ[q], metric, slack) > slack:
                continue
        else:
            threshold = np.inf
        d = K.diagonal_dtw(Q_t[q], T_rev[t], lo, hi, metric, False, threshold)[0]
        count += 1
        if d < best_d[k - 1] or (d == best_d[k - 1] and t < best_i[k - 1]):
            pos = k - 1
            while pos > 0 and (best_d[pos - 1] > d
                               or (best_d[pos - 1] == d and best_i[pos - 1] > t)):
                best_d[pos] = best_d[pos - 1]
                best_i[pos] = best_i[pos - 1]
                pos -= 1
            best_d[pos] = d
            best_i[pos] = t
    dist[q] = best_d
    ind[q] = best_i
    computed[q] = count
