"""Projection aligners: the CCA family, deep CCA and canonical time warping."""

from .cca import CCA, cca, mcca
from .ctw import CTW
from .dctw import DCTW
from .deep_cca import DeepCCA, DeepMCCA, cca_loss, cnn_encoder, gru_encoder, mcca_loss, mlp_encoder
from .gctw import GCTW, MultiAlignment

__all__ = [
    "CCA", "CTW", "DCTW", "DeepCCA", "DeepMCCA", "GCTW", "MultiAlignment", "cca", "cca_loss", "cnn_encoder",
    "gru_encoder", "mcca", "mcca_loss", "mlp_encoder",
]
