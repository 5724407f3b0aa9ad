"""Implicit aligners: models whose attention is an alignment, one file per model.

Every model's ``align`` returns its attention as an
:class:`~mmalign.alignment.Alignment` with the target on side x and the source
on side y. The layers, embedders, objectives and decoders they are built from
live in :mod:`mmalign.nn`.
"""

from .spatial_transformer import SpatialTransformer
from .seq2seq import Seq2SeqAttention
from .glimpse import GlimpseAttention
from .show_attend_tell import (ShowAttendTell, SmallConvEncoder, cell_positions, grid_cell_masks,
                               torchvision_encoder, word_box_masks)
from .crossmodal import (BimodalTransformer, CrossmodalEncoder, CrossmodalLayer,
                         CrossmodalTransformer, JointSelfAttentionFusion)
from .pretraining import MultimodalPretrainer, pretrain
from .finetuning import MultimodalFineTuner, finetune

__all__ = [
    "SpatialTransformer", "GlimpseAttention",
    "Seq2SeqAttention",
    "ShowAttendTell", "SmallConvEncoder", "cell_positions", "grid_cell_masks", "torchvision_encoder",
    "word_box_masks",
    "BimodalTransformer", "CrossmodalEncoder", "CrossmodalLayer", "CrossmodalTransformer",
    "JointSelfAttentionFusion",
    "MultimodalPretrainer", "pretrain",
    "MultimodalFineTuner", "finetune",
]
