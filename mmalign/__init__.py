"""mmalign: multimodal alignment behind one ``Aligner`` interface and one ``Alignment`` type.

Sequences are ``(n_timesteps, n_features)`` arrays; see ``mmalign.warping`` for the
DTW conventions (squared-Euclidean local cost, square root of the accumulated cost,
UCR window rounding).
"""

from . import evaluation, metrics
from .aligner import Aligner
from .alignment import Alignment
from .attention import GlimpseAttention, SpatialTransformer
from .attention import Seq2SeqAttention
from .attention import ShowAttendTell
from .attention import BimodalTransformer, CrossmodalTransformer, JointSelfAttentionFusion
from .projection import CCA, CTW, DCTW, GCTW, DeepCCA, cca, mcca
from .warping import (
    DTW,
    KNeighborsDTW,
    SoftDTW,
    SoftDTWLoss,
    SubsequenceMatch,
    batch_dtw,
    cdist_dtw,
    dba,
    dtw,
    dtw_from_cost,
    dtw_path,
    dtw_path_from_cost,
    soft_dtw,
    soft_dtw_alignment,
    soft_dtw_barycenter,
    subsequence_dtw,
    window_mask,
)

__version__ = "0.1.0"

__all__ = [
    "Seq2SeqAttention",
    "ShowAttendTell",
    "Aligner", "Alignment", "SpatialTransformer", "GlimpseAttention", "BimodalTransformer", "CrossmodalTransformer", "JointSelfAttentionFusion", "CCA", "CTW", "DCTW", "DeepCCA", "GCTW", "cca", "mcca", "DTW", "KNeighborsDTW", "SoftDTW", "SoftDTWLoss", "SubsequenceMatch", "batch_dtw", "cdist_dtw", "dba", "dtw",
    "dtw_from_cost", "dtw_path", "dtw_path_from_cost", "evaluation", "metrics", "soft_dtw",
    "soft_dtw_alignment", "soft_dtw_barycenter", "subsequence_dtw",
    "window_mask",
]
