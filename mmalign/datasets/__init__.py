"""Synthetic generators with ground truth and loaders for bundled data."""

from .synthetic_audio import PerformancePair, synthesize_performances
from .synthetic_warps import (
    LatentMap,
    WarpedPair,
    WarpedSet,
    basic_motions_warped,
    random_monotone_warp,
    warped_multimodal,
)

__all__ = [
    "PerformancePair", "synthesize_performances",
    "LatentMap", "WarpedPair", "WarpedSet", "basic_motions_warped", "random_monotone_warp",
    "warped_multimodal",
]
