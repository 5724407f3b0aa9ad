"""Implicit aligners: models whose attention is an alignment, one file per model.

Every model's ``align`` returns its attention as an
:class:`~mmalign.alignment.Alignment` with the target on side x and the source
on side y. The layers, embedders, objectives and decoders they are built from
live in :mod:`mmalign.nn`.
"""

from .spatial_transformer import (SpatialTransformer, SpatialTransformerLayer,
                                  SpatialTransformerModule)
from .seq2seq import Seq2SeqAttention, Seq2SeqAttentionModule
from .transformer_seq2seq import TransformerSeq2Seq, TransformerSeq2SeqModule
from .glimpse import GlimpseAttention, GlimpseAttentionModule
from .show_attend_tell import (ShowAttendTell, ShowAttendTellModule, SmallConvEncoder, cell_positions,
                               grid_cell_masks, torchvision_encoder, word_box_masks)
from .crossmodal import (BimodalTransformer, BimodalTransformerModule, CrossmodalEncoder,
                         CrossmodalLayer, CrossmodalTransformer, CrossmodalTransformerModule,
                         JointSelfAttentionFusion, JointSelfAttentionFusionModule)
from .pretraining import MultimodalPretrainer, MultimodalPretrainerModule, pretrain
from .finetuning import MultimodalFineTuner, MultimodalFineTunerModule, finetune

__all__ = [
    "SpatialTransformer", "SpatialTransformerLayer", "SpatialTransformerModule",
    "GlimpseAttention", "GlimpseAttentionModule",
    "Seq2SeqAttention", "Seq2SeqAttentionModule",
    "TransformerSeq2Seq", "TransformerSeq2SeqModule",
    "ShowAttendTell", "ShowAttendTellModule", "SmallConvEncoder", "cell_positions", "grid_cell_masks",
    "torchvision_encoder", "word_box_masks",
    "BimodalTransformer", "BimodalTransformerModule", "CrossmodalEncoder", "CrossmodalLayer",
    "CrossmodalTransformer", "CrossmodalTransformerModule", "JointSelfAttentionFusion",
    "JointSelfAttentionFusionModule",
    "MultimodalPretrainer", "MultimodalPretrainerModule", "pretrain",
    "MultimodalFineTuner", "MultimodalFineTunerModule", "finetune",
]
