"""Implicit aligners and the attention layers they share.

Every layer returns its attention weights; every model's ``align`` returns
them as an :class:`~mmalign.alignment.Alignment` with the target on side x
and the source on side y.
"""

from . import functional
from .functional import causal_mask, lengths_to_padding_mask, masked_softmax
from .layers import AdditiveAttention, MultiHeadAttention, MultiplicativeAttention, ScaledDotProductAttention
from .positional import ModalityEmbedding, PositionalEncoding, sinusoidal_positions
from .transformer import (DecoderWeights, Transformer, TransformerDecoder, TransformerDecoderLayer,
                          TransformerEncoder, TransformerEncoderLayer, TransformerWeights)
from .spatial_transformer import SpatialTransformer
from .seq2seq import Hypothesis, Seq2SeqAttention
from .glimpse import GlimpseAttention
from .show_attend_tell import (ShowAttendTell, SmallConvEncoder, cell_positions, grid_cell_masks,
                               torchvision_encoder, word_box_masks)
from .crossmodal import (BimodalTransformer, CrossmodalEncoder, CrossmodalLayer,
                         CrossmodalTransformer, JointSelfAttentionFusion)

__all__ = [
    "functional", "causal_mask", "lengths_to_padding_mask", "masked_softmax",
    "AdditiveAttention", "MultiHeadAttention", "MultiplicativeAttention", "ScaledDotProductAttention",
    "ModalityEmbedding", "PositionalEncoding", "sinusoidal_positions",
    "DecoderWeights", "Transformer", "TransformerDecoder", "TransformerDecoderLayer",
    "TransformerEncoder", "TransformerEncoderLayer", "TransformerWeights",
    "SpatialTransformer", "GlimpseAttention",
    "Hypothesis", "Seq2SeqAttention",
    "ShowAttendTell", "SmallConvEncoder", "cell_positions", "grid_cell_masks", "torchvision_encoder",
    "word_box_masks",
    "BimodalTransformer", "CrossmodalEncoder", "CrossmodalLayer", "CrossmodalTransformer",
    "JointSelfAttentionFusion",
]

from .embedders import FrameEmbedding, PatchEmbedding, TokenEmbedding, audio_frames, frame_signal
from .pretraining import (JointEncoding, MultimodalPretrainer, mask_tokens, masked_frame_loss,
                          masked_token_loss, pair_matching_loss, patch_mask, pretrain, shuffle_pairs,
                          span_mask, streams_inputs)

__all__ += [
    "FrameEmbedding", "PatchEmbedding", "TokenEmbedding", "audio_frames", "frame_signal",
    "JointEncoding", "MultimodalPretrainer", "mask_tokens", "masked_frame_loss", "masked_token_loss",
    "pair_matching_loss", "patch_mask", "pretrain", "shuffle_pairs", "span_mask", "streams_inputs",
]
from .finetuning import (MultimodalFineTuner, SequenceClassificationHead, SpanExtractionHead, StepFeatures,
                         TokenClassificationHead, attention_pooled_frames, decode_spans, finetune, span_loss,
                         token_classification_loss)

__all__ += [
    "MultimodalFineTuner", "SequenceClassificationHead", "SpanExtractionHead", "StepFeatures",
    "TokenClassificationHead", "attention_pooled_frames", "decode_spans", "finetune", "span_loss", "token_classification_loss",
]
