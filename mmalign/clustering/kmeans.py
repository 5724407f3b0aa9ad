"""k-means for time series under DTW, soft-DTW, the Euclidean distance or any elastic metric."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClusterMixin

from ..aligner import Estimator
from ..utils.validation import check_bool, check_choice, check_fitted, check_float, check_int
from ..warping.cdist import _resolve_jobs
from . import _averaging as avg
from ._common import (as_rng, check_metric, check_metric_params, check_params, collection,
                      kmeans_plusplus, labels_from, pairwise, resample)

AVERAGINGS = ("dba", "softdtw", "mean", "medoid")
# the averaging each metric gets with averaging=None
DEFAULT_AVERAGING = {"dtw": "dba", "softdtw": "softdtw", "euclidean": "mean"}
_AVERAGING_PARAMS = {"dba": ("max_iter", "tol"), "softdtw": ("gamma", "max_iter", "tol"),
                     "mean": (), "medoid": ()}


class TimeSeriesKMeans(ClusterMixin, Estimator):
    """k-means clustering of time series under DTW, soft-DTW, Euclidean or any elastic metric.

    Lloyd's iterations: assign every series to its nearest centre under ``metric``,
    then replace every centre by the average of its members (``averaging``); stop
    when the inertia changes by less than ``tol`` or after ``max_iter`` rounds.
    With ``metric="dtw"`` and ``averaging="dba"`` this is tslearn's
    ``TimeSeriesKMeans(metric="dtw")``: from the same initial centres it gives
    the same labels, centres and inertia (``benchmarks/clustering.py`` checks).

    Parameters
    ----------
    n_clusters : int >= 1
    metric : {"dtw", "softdtw", "euclidean"} or a name of ``mmalign.warping.elastic.METRICS``
        ``"dtw"``: :func:`mmalign.dtw` (square root of the accumulated squared
        Euclidean cost); ``"softdtw"``: :func:`mmalign.soft_dtw` (may be negative);
        ``"euclidean"``: the norm of the difference of equal-length series;
        another name: ``mmalign.warping.elastic.cdist(..., metric=metric)``.
    averaging : {"dba", "softdtw", "mean", "medoid"} or None
        How a centre is recomputed from its members. ``"dba"``: DTW barycenter
        averaging from the current centre (the step of :func:`mmalign.dba`);
        ``"softdtw"``: :func:`mmalign.soft_dtw_barycenter` from the current
        centre; ``"mean"``: the frame-wise mean (series of one length);
        ``"medoid"``: the member with the least sum of squared distances under
        ``metric`` to the other members (any metric).  ``None``: ``"dba"`` for
        dtw, ``"softdtw"`` for softdtw, ``"mean"`` for euclidean, ``"medoid"``
        for the other elastic metrics.
    init : "k-means++", "random" or np.ndarray [shape=(n_clusters, L) or (n_clusters, L, d)]
        Initial centres: greedy k-means++ under ``metric`` (squared distances,
        ``2 + int(log n_clusters)`` candidates per seed, as scikit-learn and
        tslearn), ``n_clusters`` distinct series drawn at random, or the given
        centres (then ``n_init`` is ignored: one run).
    n_init : int >= 1
        Runs from different seeds; the one with the least inertia is kept.
    max_iter : int >= 1
        Most assignment/update rounds per run.
    tol : float >= 0
        Stop when the inertia changes by less than ``tol`` (absolute, as tslearn).
    random_state : None, int or np.random.Generator
        Seeds ``init`` and ``n_init``; a fixed int gives the same result every time.
    n_jobs : int
        Threads for the distance matrices (:func:`mmalign.cdist_dtw`, the elastic
        ``cdist``); ``-1``: all cores.  DBA's alignments run on one core.
    metric_params : dict or None
        Keyword arguments of the metric: ``radius`` / ``window`` /
        ``itakura_slope`` for dtw (also used by DBA's alignments), ``gamma``
        (default 1), ``radius`` / ``window`` for softdtw, those of
        ``mmalign.warping.elastic.cdist`` for the elastic metrics.
    averaging_params : dict or None
        ``"dba"``: ``max_iter`` (default 30) and ``tol`` (default 1e-5; stop when
        the mean squared DTW distance to the centre changes by less, as tslearn's
        DBA); ``"softdtw"``: ``gamma`` (default: the metric's, else 1),
        ``max_iter`` (default 100, as tslearn's ``max_iter_barycenter``), ``tol``.
    progress : bool
        Show a tqdm bar over the rounds.

    Attributes
    ----------
    cluster_centers_ : np.ndarray [shape=(n_clusters, L, d)] or list of np.ndarray
        The centres.  Every averaging but ``"medoid"`` gives ``n_clusters``
        centres of one length ``L``: the longest series of the training set
        (seeds that are shorter series are resampled to it linearly, as tslearn
        does with ragged data sets) or the length of a given ``init``.
        ``"medoid"`` keeps the members themselves, a list when their lengths differ.
    labels_ : np.ndarray [shape=(N,)], int
        The nearest centre of ``cluster_centers_`` for each training series.
    inertia_ : float
        The mean over the training series of the squared distance to their centre
        in ``cluster_centers_`` (tslearn's definition: scikit-learn's ``KMeans``
        reports the sum, ``N`` times as large).  tslearn stores the inertia of
        the last assignment before its final centre update; mmalign that of the
        centres it returns (they differ by less than ``tol`` once converged).
    n_iter_ : int
        Assignment/update rounds of the kept run.

    Notes
    -----
    Empty clusters: when an assignment leaves a cluster without members, its
    centre is replaced by the series farthest from its own centre (resampled
    to ``L``), and the assignment is redone (scikit-learn's remedy; tslearn
    instead abandons the run and starts another from a new seeding, which
    cannot help when ``init`` is given).

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> t = np.linspace(0, 1, 30)
    >>> X = [np.sin(2 * np.pi * (t - s)) for s in (0, .05, .1)] + [t * k for k in (1, 1.2, 1.4)]
    >>> km = mmalign.TimeSeriesKMeans(2, metric="dtw", random_state=0).fit(X)
    >>> km.labels_.tolist() in ([0, 0, 0, 1, 1, 1], [1, 1, 1, 0, 0, 0])
    True
    >>> km.cluster_centers_.shape
    (2, 30, 1)
    """

    def __init__(self, n_clusters: int = 8, *, metric: str = "dtw", averaging: str | None = None,
                 init="k-means++", n_init: int = 1, max_iter: int = 50, tol: float = 1e-6,
                 random_state=None, n_jobs: int = -1, metric_params: dict | None = None,
                 averaging_params: dict | None = None, progress: bool = False):
        self.n_clusters = n_clusters
        self.metric = metric
        self.averaging = averaging
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.metric_params = metric_params
        self.averaging_params = averaging_params
        self.progress = progress

    # ------------------------------------------------------------------ checks
    def _check_params(self) -> None:
        check_int(self.n_clusters, "n_clusters", 1)
        metric = check_metric(self.metric)
        if self.averaging is not None:
            check_choice(self.averaging, "averaging", AVERAGINGS)
        check_int(self.n_init, "n_init", 1)
        check_int(self.max_iter, "max_iter", 1)
        check_float(self.tol, "tol", 0.0)
        _resolve_jobs(self.n_jobs)
        check_metric_params(metric, check_params(self.metric_params, "metric_params"))
        averaging = self._averaging()
        params = check_params(self.averaging_params, "averaging_params")
        unknown = sorted(set(params) - set(_AVERAGING_PARAMS[averaging]))
        if unknown:
            raise ValueError(f"averaging_params {unknown} not accepted by averaging="
                             f"{averaging!r}; it takes {list(_AVERAGING_PARAMS[averaging])}")
        check_bool(self.progress, "progress")
        if isinstance(self.init, str):
            check_choice(self.init, "init", ("k-means++", "random"))
        elif not isinstance(self.init, (np.ndarray, list, tuple)):
            raise ValueError(f"init must be 'k-means++', 'random' or an array of initial "
                             f"centres, got {self.init!r}")

    def _averaging(self) -> str:
        if self.averaging is not None:
            return self.averaging
        return DEFAULT_AVERAGING.get(self.metric, "medoid")

    def _distances(self, xs, ys, n_jobs: int) -> np.ndarray:
        params = check_params(self.metric_params, "metric_params")
        return pairwise(xs, ys, self.metric, params, n_jobs)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None) -> "TimeSeriesKMeans":
        """Cluster ``X``: ``(N, n)``, ``(N, n, d)`` or a list of ``(n_k,)`` / ``(n_k, d)``."""
        self._check_params()
        xs = collection(X)
        k = self.n_clusters
        if k > len(xs):
            raise ValueError(f"n_clusters={k} exceeds the {len(xs)} series of X")
        averaging = self._averaging()
        if averaging == "mean" and len({len(x) for x in xs}) > 1:
            raise ValueError("averaging='mean' needs series of one length; use 'dba', "
                             "'softdtw' or 'medoid' for ragged input")
        n_jobs = _resolve_jobs(self.n_jobs)
        rng = as_rng(self.random_state)
        given = not isinstance(self.init, str)
        length = max(len(x) for x in xs)
        if given:
            starts = [self._given_init(xs)]
            length = starts[0].shape[1]
        best = None
        for _ in range(1 if given else self.n_init):
            centres = starts[0] if given else self._seed(xs, rng, n_jobs, length, averaging)
            result = self._lloyd(xs, centres, averaging, n_jobs, length)
            if best is None or result[2] < best[2]:
                best = result
        centres, labels, inertia, n_iter = best
        self.cluster_centers_ = centres
        self.labels_ = labels
        self.inertia_ = float(inertia)
        self.n_iter_ = n_iter
        self.n_features_in_ = xs[0].shape[1]
        return self

    def _given_init(self, xs) -> np.ndarray:
        init = np.asarray(self.init, dtype=np.float64)
        if init.ndim == 2:
            init = init[:, :, None]
        if init.ndim != 3 or init.shape[0] != self.n_clusters:
            raise ValueError(f"init must have shape (n_clusters={self.n_clusters}, L) or "
                             f"(n_clusters, L, d), got {np.shape(self.init)}")
        if init.shape[2] != xs[0].shape[1]:
            raise ValueError(f"init has {init.shape[2]} features, X has {xs[0].shape[1]}")
        if not np.isfinite(init).all():
            raise ValueError("init contains NaN or infinite values")
        if self._averaging() == "mean" or self.metric == "euclidean":
            if init.shape[1] != len(xs[0]):
                raise ValueError(f"init has length {init.shape[1]}, the series {len(xs[0])}")
        return init.copy()

    def _seed(self, xs, rng, n_jobs: int, length: int, averaging: str):
        if self.init == "random":
            idx = rng.choice(len(xs), self.n_clusters, replace=False)
        else:
            idx = kmeans_plusplus(xs, self.n_clusters,
                                  lambda rows: self._distances([xs[i] for i in rows], xs, n_jobs),
                                  rng)
        return self._centres_from([xs[i] for i in idx], length, averaging)

    @staticmethod
    def _centres_from(series, length: int, averaging: str):
        if averaging == "medoid":
            return [s.copy() for s in series]
        return np.stack([resample(s, length) for s in series])

    def _lloyd(self, xs, centres, averaging: str, n_jobs: int, length: int):
        """One run from ``centres``: (centres, labels, inertia, rounds)."""
        params = check_params(self.averaging_params, "averaging_params")
        metric_params = check_params(self.metric_params, "metric_params")
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_iter, desc="k-means", leave=False)
        previous = np.inf
        rounds = 0
        try:
            for rounds in range(1, self.max_iter + 1):
                D = self._distances(xs, list(centres), n_jobs)
                labels, D, centres = self._fill_empty(xs, D, centres, n_jobs, length, averaging)
                inertia = np.mean(D[np.arange(len(xs)), labels] ** 2)
                centres = self._update(xs, labels, centres, averaging, params, metric_params,
                                       n_jobs)
                if bar is not None:
                    bar.update()
                    bar.set_postfix(inertia=f"{inertia:.4g}")
                if abs(previous - inertia) < self.tol:
                    break
                previous = inertia
        finally:
            if bar is not None:
                bar.close()
        D = self._distances(xs, list(centres), n_jobs)
        labels = labels_from(D)
        inertia = np.mean(D[np.arange(len(xs)), labels] ** 2)
        if not isinstance(centres, list):
            centres = np.asarray(centres)
        elif len({len(c) for c in centres}) == 1:
            centres = np.stack(centres)
        return centres, labels, inertia, rounds

    def _fill_empty(self, xs, D, centres, n_jobs: int, length: int, averaging: str):
        """Labels with every cluster non-empty: an empty cluster's centre becomes the series
        farthest from its centre, and the distances are recomputed."""
        centres = list(centres)
        for _ in range(self.n_clusters):
            labels = labels_from(D)
            empty = np.setdiff1d(np.arange(self.n_clusters), labels)
            if not len(empty):
                break
            own = D[np.arange(len(xs)), labels].copy()
            for c in empty:
                far = int(np.argmax(own))
                own[far] = -np.inf
                centres[c] = self._centres_from([xs[far]], length, averaging)[0]
            D = self._distances(xs, centres, n_jobs)
        else:
            labels = labels_from(D)
        return labels, D, centres

    def _update(self, xs, labels, centres, averaging, params, metric_params, n_jobs):
        new = list(centres)
        for c in range(self.n_clusters):
            members = [xs[i] for i in np.flatnonzero(labels == c)]
            if not members:
                continue
            if averaging == "dba":
                dtw_options = {k: v for k, v in metric_params.items()
                               if k in ("radius", "window", "itakura_slope")} \
                    if self.metric == "dtw" else {}
                new[c] = avg.dba_rounds(members, np.asarray(centres[c]),
                                        max_iter=check_int(params.get("max_iter", 30),
                                                           "averaging_params['max_iter']", 0),
                                        tol=check_float(params.get("tol", 1e-5),
                                                        "averaging_params['tol']", 0.0),
                                        options=dtw_options)
            elif averaging == "softdtw":
                soft = {"gamma": params.get("gamma", metric_params.get("gamma", 1.0)),
                        "max_iter": params.get("max_iter", 100), "tol": params.get("tol", 1e-5)}
                if self.metric == "softdtw":
                    soft.update({k: v for k, v in metric_params.items() if k == "radius"})
                new[c] = avg.softdtw_centre(members, np.asarray(centres[c]), soft)
            elif averaging == "mean":
                new[c] = avg.mean_centre(members)
            else:
                D = self._distances(members, None, n_jobs)
                new[c] = members[avg.medoid_index(D)].copy()
        if averaging == "medoid":
            return new
        return np.stack(new)

    # ------------------------------------------------------------------ predict
    def predict(self, X) -> np.ndarray:
        """Index of the nearest centre of ``cluster_centers_`` for each series of ``X``."""
        return labels_from(self.transform(X))

    def transform(self, X) -> np.ndarray:
        """Distances ``(N, n_clusters)`` under ``metric`` from the series of X to the centres."""
        check_fitted(self, "cluster_centers_", "fit(X)")
        xs = collection(X)
        if xs[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {xs[0].shape[1]} features, the training series "
                             f"{self.n_features_in_}")
        return self._distances(xs, list(self.cluster_centers_), _resolve_jobs(self.n_jobs))

    def fit_predict(self, X, y=None) -> np.ndarray:
        """``fit(X).labels_``."""
        return self.fit(X).labels_
