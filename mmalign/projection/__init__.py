"""Projection aligners: the CCA family and canonical time warping."""

from .cca import CCA, cca, mcca
from .ctw import CTW

__all__ = ["CCA", "CTW", "cca", "mcca"]
