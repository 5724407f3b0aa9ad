"""The DTW family and soft-DTW: numba kernels on CPU, torch wavefronts on any device,
behind plain functions and the DTW / SoftDTW aligners.

Supported range of values (:mod:`mmalign.warping._extremes`):

* hard DTW (``dtw``, ``dtw_path`` exact and multiscale, ``batch_dtw``,
  ``cdist_dtw``, ``subsequence_dtw``, ``KNeighborsDTW`` and the lower bounds,
  ``dba``, ``DTW``): any finite float64 values.  A pair whose largest magnitude
  is outside ``[2**-400, 2**400]`` (about 3.9e-121 to 2.6e120) is solved
  multiplied by a power of two, exactly, and the distance multiplied back; a
  distance beyond float64 (about 1.8e308) is a ``ValueError``.  Precomputed
  costs (``dtw_from_cost``) and callable metrics are not rescaled: a minimal
  accumulated cost beyond float64 is a ``ValueError``;
* soft-DTW (``soft_dtw``, ``soft_dtw_alignment``, ``soft_dtw_barycenter``,
  ``SoftDTW``, ``SoftDTWLoss``), which ``gamma`` keeps from being scale-free:
  ``(n + m - 1) * d * (max|x| + max|y|)**2`` below ``2**1023`` (about 9e307)
  in float64 and ``2**127`` (about 1.7e38) in float32 (``SoftDTWLoss`` on
  float32, float16 and bfloat16 tensors); beyond, a ``ValueError`` that says
  how to rescale ``x``, ``y`` and ``gamma``;
* a Sakoe–Chiba ``radius`` of any size: ``max(n, m)`` or more means no band;
  an Itakura slope of any size; dense window masks up to 2**31 cells.
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
# Eager: these names are also the name of their module (dtw.py), which would shadow the
# function once imported by any other route. dtw.py needs numba, not torch or scikit-learn.
from .dtw import dtw, dtw_from_cost, dtw_path, dtw_path_from_cost

__all__ = [
    "DTW", "KNeighborsDTW", "SoftDTW", "SoftDTWLoss", "SubsequenceMatch", "batch_dtw",
    "cdist_dtw", "dba", "dtw", "dtw_from_cost", "dtw_path", "dtw_path_from_cost", "envelope", "itakura_mask", "lb_keogh", "lb_kim",
    "soft_dtw", "soft_dtw_alignment", "soft_dtw_barycenter", "subsequence_dtw", "subsequence_search",
    "window_mask", "KNeighborsTimeSeries", "distance", "distance_path",
]

# The others on first use: SoftDTWLoss and batch_dtw need torch, KNeighborsDTW scikit-learn.
__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    "DTW": ".aligner", "SoftDTW": ".aligner",
    "dba": ".barycenter", "soft_dtw_barycenter": ".barycenter",
    "batch_dtw": ".batch",
    "cdist_dtw": ".cdist",
    "envelope": ".lower_bounds", "lb_keogh": ".lower_bounds", "lb_kim": ".lower_bounds",
    "KNeighborsDTW": ".neighbors",
    "soft_dtw": ".soft", "soft_dtw_alignment": ".soft",
    "SoftDTWLoss": ".soft_loss",
    "SubsequenceMatch": ".subsequence", "subsequence_dtw": ".subsequence",
    "itakura_mask": ".windows", "window_mask": ".windows",
    "subsequence_search": ".search",
    # the elastic cdist is mmalign.cdist / elastic.cdist: here "cdist" is the submodule
    "distance": ".elastic", "distance_path": ".elastic", "KNeighborsTimeSeries": ".ts_neighbors",
})
del lazy_attributes

if TYPE_CHECKING:
    from .aligner import DTW, SoftDTW
    from .barycenter import dba, soft_dtw_barycenter
    from .batch import batch_dtw
    from .cdist import cdist_dtw
    from .lower_bounds import envelope, lb_keogh, lb_kim
    from .neighbors import KNeighborsDTW
    from .soft import soft_dtw, soft_dtw_alignment
    from .soft_loss import SoftDTWLoss
    from .subsequence import SubsequenceMatch, subsequence_dtw
    from .windows import itakura_mask, window_mask
    from .search import subsequence_search
    from .elastic import distance, distance_path
    from .ts_neighbors import KNeighborsTimeSeries
