"""The CCA family and canonical time warping.

Transformers of representations (``fit`` / ``transform``, not aligners): :class:`CCA`,
:class:`DeepCCA`, :class:`DeepMCCA` (and the functions :func:`cca`, :func:`mcca`).
Aligners that use them: :class:`CTW`, :class:`GCTW`, :class:`GTW`, :class:`DCTW`.
"""

from .cca import CCA, cca, mcca
from .ctw import CTW
from .dctw import DCTW
from .deep_cca import (DeepCCA, DeepCCAModule, DeepMCCA, DeepMCCAModule, cca_loss, cnn_encoder,
                       gru_encoder, mcca_loss, mlp_encoder)
from .gctw import GCTW, MultiAlignment
from .gtw import GTW, warp_basis

__all__ = [
    "CCA", "CTW", "DCTW", "DeepCCA", "DeepCCAModule", "DeepMCCA", "DeepMCCAModule", "GCTW", "GTW", "MultiAlignment", "cca", "cca_loss", "cnn_encoder",
    "gru_encoder", "mcca", "mcca_loss", "mlp_encoder", "warp_basis",
]
