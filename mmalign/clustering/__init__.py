"""Clustering of time series: k-means, k-medoids and k-shape.

A room above :mod:`mmalign.warping` (it imports from warping and below only):
the distances are mmalign's (:func:`mmalign.cdist_dtw`, :func:`mmalign.soft_dtw`,
``mmalign.warping.elastic.cdist``), the averages its barycenters
(:func:`mmalign.dba`'s step, :func:`mmalign.soft_dtw_barycenter`).

- :class:`TimeSeriesKMeans` — Lloyd's k-means under dtw / softdtw / euclidean
  or any elastic metric, with DBA, soft-DTW, mean or medoid centres (tslearn's
  ``TimeSeriesKMeans`` from the same initial centres gives the same result);
- :class:`TimeSeriesKMedoids` — PAM or alternating k-medoids on the pairwise matrix;
- :class:`TimeSeriesKShape` — k-shape (Paparrizos & Gravano 2015).

All three are scikit-learn clusterers (``ClusterMixin``: ``fit``, ``predict``,
``fit_predict``, ``labels_``, ``inertia_``) on ``(N, n)``, ``(N, n, d)`` arrays
or lists of series of different lengths.

Hierarchical clustering needs no class: the condensed matrix of
:func:`mmalign.cdist_dtw` goes to scipy's linkage::

    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    D = mmalign.cdist_dtw(X)                      # symmetric, zero diagonal
    Z = linkage(squareform(D, checks=False), method="average")
    labels = fcluster(Z, t=3, criterion="maxclust")
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes

__all__ = ["TimeSeriesKMeans", "TimeSeriesKMedoids", "TimeSeriesKShape"]

# scikit-learn is imported on first use of a class
__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    "TimeSeriesKMeans": ".kmeans",
    "TimeSeriesKMedoids": ".kmedoids",
    "TimeSeriesKShape": ".kshape",
})
del lazy_attributes

if TYPE_CHECKING:
    from .kmeans import TimeSeriesKMeans
    from .kmedoids import TimeSeriesKMedoids
    from .kshape import TimeSeriesKShape
