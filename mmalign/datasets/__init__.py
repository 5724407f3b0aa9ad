"""Synthetic generators with ground truth and loaders for bundled data."""

from .synthetic_audio import PerformancePair, synthesize_performances

__all__ = ["PerformancePair", "synthesize_performances"]
