"""The DTW family and soft-DTW: numba kernels on CPU, torch wavefronts on any device,
behind plain functions and the DTW / SoftDTW aligners."""

from .aligner import DTW, SoftDTW
from .barycenter import dba, soft_dtw_barycenter
from .batch import batch_dtw
from .cdist import cdist_dtw
from .dtw import dtw, dtw_from_cost, dtw_path, dtw_path_from_cost
from .lower_bounds import envelope, lb_keogh, lb_kim
from .neighbors import KNeighborsDTW
from .soft import soft_dtw, soft_dtw_alignment
from .soft_loss import SoftDTWLoss
from .subsequence import SubsequenceMatch, subsequence_dtw
from .windows import itakura_mask, window_mask

__all__ = [
    "DTW", "KNeighborsDTW", "SoftDTW", "SoftDTWLoss", "SubsequenceMatch", "batch_dtw",
    "cdist_dtw", "dba", "dtw", "dtw_from_cost", "dtw_path", "dtw_path_from_cost", "envelope", "itakura_mask", "lb_keogh", "lb_kim",
    "soft_dtw", "soft_dtw_alignment", "soft_dtw_barycenter", "subsequence_dtw", "window_mask",
]
