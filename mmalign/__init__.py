"""mmalign: multimodal alignment behind one ``Aligner`` interface and one ``Alignment`` type.

Sequences are ``(n_timesteps, n_features)`` arrays; see ``mmalign.warping`` for the
DTW conventions (squared-Euclidean local cost, square root of the accumulated cost,
UCR window rounding).

Names are imported on first use (PEP 562): ``import mmalign`` loads neither torch
nor scikit-learn; ``mmalign.dtw`` loads the DTW kernels, ``mmalign.CCA`` torch.
"""

from typing import TYPE_CHECKING

from ._version import __version__
from .utils.lazy import lazy_attributes

_ATTENTION = ("BimodalTransformer", "CrossmodalTransformer", "GlimpseAttention", "JointSelfAttentionFusion",
              "Seq2SeqAttention", "ShowAttendTell", "SpatialTransformer", "TransformerSeq2Seq")
_PROJECTION = ("CCA", "CTW", "DCTW", "DeepCCA", "GCTW", "GTW", "cca", "mcca")
_WARPING = ("DTW", "KNeighborsDTW", "SoftDTW", "SoftDTWLoss", "SubsequenceMatch", "batch_dtw",
            "cdist_dtw", "dba", "dtw", "dtw_from_cost", "dtw_path", "dtw_path_from_cost",
            "soft_dtw", "soft_dtw_alignment", "soft_dtw_barycenter", "subsequence_dtw",
            "subsequence_search", "window_mask")
_ELASTIC = ("cdist", "distance", "distance_path")
_CLUSTERING = ("TimeSeriesKMeans", "TimeSeriesKMedoids", "TimeSeriesKShape")

__all__ = ["Aligner", "Alignment", "Estimator", "KNeighborsTimeSeries", "evaluation", "metrics",
           *_ATTENTION, *_PROJECTION, *_WARPING, *_ELASTIC, *_CLUSTERING]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    "Aligner": ".aligner",
    "Estimator": ".aligner",
    "Alignment": ".alignment",
    "evaluation": "",
    "metrics": "",
    **dict.fromkeys(_ATTENTION, ".attention"),
    **dict.fromkeys(_PROJECTION, ".projection"),
    **dict.fromkeys(_WARPING, ".warping"),
    **dict.fromkeys(_ELASTIC, ".warping.elastic"),
    "KNeighborsTimeSeries": ".warping.ts_neighbors",
    **dict.fromkeys(_CLUSTERING, ".clustering"),
})
del lazy_attributes

if TYPE_CHECKING:  # the names as type checkers and IDEs should see them
    from . import evaluation, metrics
    from .aligner import Aligner, Estimator
    from .alignment import Alignment
    from .clustering import TimeSeriesKMeans, TimeSeriesKMedoids, TimeSeriesKShape
    from .attention import (BimodalTransformer, CrossmodalTransformer, GlimpseAttention,
                            JointSelfAttentionFusion, Seq2SeqAttention, ShowAttendTell,
                            SpatialTransformer, TransformerSeq2Seq)
    from .projection import CCA, CTW, DCTW, GCTW, GTW, DeepCCA, cca, mcca
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
    from .warping import subsequence_search
    from .warping.elastic import cdist, distance, distance_path
    from .warping.ts_neighbors import KNeighborsTimeSeries
