"""Evaluation of coordinated representations: cross-modal retrieval, embedding tables, linear probes and bias probes."""

from .embeddings import (AnalogyReport, EmbeddingTable, Neighbors, SimilarityReport, VariantReport,
                         analogy, as_table, evaluate_analogies, nearest_neighbors,
                         similarity_correlation, variant_robustness)
from .probes import ProbeReport, linear_probe
from .bias import (DebiasResult, ExtremeItems, WEATResult, bias_direction, extreme_items,
                   hard_debias, project, weat)
from .crossmodal_retrieval import (RetrievalReport, RetrievalScores, component_correlations, retrieval,
                                   retrieval_from_model, retrieval_ranks)

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
