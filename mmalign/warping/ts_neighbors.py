"""k-nearest-neighbour classification under any elastic distance of :mod:`.elastic`."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin

from ..aligner import Estimator
from ..utils.validation import check_fitted, check_int
from .cdist import as_collection
from .elastic import METRICS, _check_params, cdist
from .neighbors import store_training_set


class KNeighborsTimeSeries(ClassifierMixin, Estimator):
    """k-nearest-neighbour classifier under an elastic distance (scikit-learn classifier).

    ``metric="dtw"`` with at most ``radius`` / ``window`` runs
    :class:`~mmalign.KNeighborsDTW` (the LB_Kim / LB_Keogh cascade with early
    abandoning, exact).  Every other metric, and dtw with ``itakura_slope`` or
    ``mask``, computes all distances with :func:`mmalign.cdist` (brute force: no
    lower bound of these metrics is used).  Either way the neighbours are those of
    brute force: distances sorted stably (ties to the lower training index), the
    vote's ties to the smaller class.

    Parameters
    ----------
    n_neighbors : int >= 1
    metric : str
        One of :data:`mmalign.warping.elastic.METRICS`.
    metric_params : dict or None
        The metric's parameters and window options, as ``**params`` of
        :func:`mmalign.distance` (a dict, as scikit-learn's ``KNeighborsClassifier``
        takes them: scikit-learn estimators cannot take ``**kwargs``).
    n_jobs : int
        Threads; ``-1`` for all cores.

    Attributes
    ----------
    classes_ : np.ndarray
    y_encoded_ : np.ndarray [shape=(N,)]
    train_ : list of np.ndarray [shape=(n_k, d)]

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> X = [np.array([0., 1., 2., 1.]), np.array([0., 1., 1.]), np.array([5., 5., 4., 5.])]
    >>> clf = mmalign.KNeighborsTimeSeries(metric="msm").fit(X, ["up", "up", "high"])
    >>> clf.predict([np.array([4., 5., 5.])]).tolist()
    ['high']
    """

    def __init__(self, n_neighbors: int = 1, metric: str = "dtw",
                 metric_params: dict | None = None, n_jobs: int = -1):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.metric_params = metric_params
        self.n_jobs = n_jobs

    def fit(self, X, y) -> "KNeighborsTimeSeries":
        """Store the training series ``X`` (``(N, n[, d])`` or a ragged list) and labels ``y``."""
        self._params()
        return store_training_set(self, X, y)

    def kneighbors(self, X, n_neighbors: int | None = None, return_distance: bool = True):
        """Nearest training series of each series of ``X``: ``(distances, indices)``,
        each ``(len(X), n_neighbors)``, distances ascending (:func:`mmalign.distance`'s)."""
        check_fitted(self, "train_", "fit(X, y)")
        k = check_int(self.n_neighbors if n_neighbors is None else n_neighbors,
                      "n_neighbors", 1)
        if k > len(self.train_):
            raise ValueError(f"n_neighbors={k} exceeds the {len(self.train_)} training series")
        queries = as_collection(X, "X")
        if queries[0].shape[1] != self.n_features_in_:
            raise ValueError(f"X has {queries[0].shape[1]} features, the training series "
                             f"{self.n_features_in_}")
        params = self._params()
        if self.metric == "dtw" and set(params) <= {"radius", "window"}:
            from .neighbors import KNeighborsDTW

            inner = KNeighborsDTW(k, radius=params.get("radius"), window=params.get("window"),
                                  n_jobs=self.n_jobs).fit(self.train_, self.y_encoded_)
            dist, ind = inner.kneighbors(queries, k)
        else:
            D = cdist(queries, self.train_, metric=self.metric, n_jobs=self.n_jobs, **params)
            ind = np.argsort(D, axis=1, kind="stable")[:, :k]
            dist = np.take_along_axis(D, ind, axis=1)
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

    def _params(self) -> dict:
        check_int(self.n_neighbors, "n_neighbors", 1)
        check_int(self.n_jobs, "n_jobs", -(2**31))
        params = {} if self.metric_params is None else self.metric_params
        if not isinstance(params, dict):
            raise ValueError(f"metric_params must be a dict or None, got "
                             f"{type(params).__name__}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        _check_params(self.metric, dict(params))  # names and values, before any work
        return dict(params)
