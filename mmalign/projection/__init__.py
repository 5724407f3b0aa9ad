"""Projection aligners: the CCA family and canonical time warping."""

from .cca import CCA, cca, mcca
from .ctw import CTW
from .gctw import GCTW, MultiAlignment

__all__ = ["CCA", "CTW", "GCTW", "MultiAlignment", "cca", "mcca"]
