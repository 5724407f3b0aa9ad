"""Evaluation of coordinated representations: cross-modal retrieval, embedding tables, linear probes and bias probes.

Names are imported on first use: the embedding evaluations need scipy, the probes
scikit-learn, retrieval torch.
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes

__all__ = [
    "AnalogyReport", "EmbeddingTable", "Neighbors", "SimilarityReport", "VariantReport", "analogy",
    "as_table", "evaluate_analogies", "nearest_neighbors", "similarity_correlation",
    "variant_robustness",
    "ProbeReport", "linear_probe",
    "DebiasResult", "ExtremeItems", "WEATResult", "bias_direction", "extreme_items", "hard_debias",
    "project", "weat",
    "RetrievalReport", "RetrievalScores", "component_correlations", "retrieval",
    "retrieval_from_model", "retrieval_ranks",
]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), {
    **dict.fromkeys(("AnalogyReport", "EmbeddingTable", "Neighbors", "SimilarityReport",
                     "VariantReport", "analogy", "as_table", "evaluate_analogies",
                     "nearest_neighbors", "similarity_correlation", "variant_robustness"),
                    ".embeddings"),
    **dict.fromkeys(("ProbeReport", "linear_probe"), ".probes"),
    **dict.fromkeys(("DebiasResult", "ExtremeItems", "WEATResult", "bias_direction",
                     "extreme_items", "hard_debias", "project", "weat"), ".bias"),
    **dict.fromkeys(("RetrievalReport", "RetrievalScores", "component_correlations", "retrieval",
                     "retrieval_from_model", "retrieval_ranks"), ".crossmodal_retrieval"),
})
del lazy_attributes

if TYPE_CHECKING:
    from .bias import (DebiasResult, ExtremeItems, WEATResult, bias_direction, extreme_items,
                       hard_debias, project, weat)
    from .crossmodal_retrieval import (RetrievalReport, RetrievalScores, component_correlations,
                                       retrieval, retrieval_from_model, retrieval_ranks)
    from .embeddings import (AnalogyReport, EmbeddingTable, Neighbors, SimilarityReport,
                             VariantReport, analogy, as_table, evaluate_analogies,
                             nearest_neighbors, similarity_correlation, variant_robustness)
    from .probes import ProbeReport, linear_probe
