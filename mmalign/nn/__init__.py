"""Building blocks of mmalign's neural aligners (the torch room, under the models of
:mod:`mmalign.attention` and :mod:`mmalign.projection`, like ``torch.nn.functional``
under ``torch.nn``).

- attention as functions (:mod:`~mmalign.nn.functional`) and layers
  (:mod:`~mmalign.nn.layers`) that return their weights;
- positions and modality embeddings (:mod:`~mmalign.nn.positional`),
  transformer layers and stacks (:mod:`~mmalign.nn.transformer`), input
  embedders for tokens, frames and patches (:mod:`~mmalign.nn.embedders`);
- decoding with attention, greedy and beam search (:mod:`~mmalign.nn.decoding`);
- multimodal pretraining pieces: input corruptions (:mod:`~mmalign.nn.masking`),
  their losses (:mod:`~mmalign.nn.pretraining_losses`), the packed joint
  sequence (:mod:`~mmalign.nn.packing`) and task heads (:mod:`~mmalign.nn.heads`);
- the one training loop (:mod:`~mmalign.nn.train`) and the estimators that own a
  network (:mod:`~mmalign.nn.estimator`).

Names are imported on first use (PEP 562): ``from mmalign.nn.train import fit``
loads the loop without the layers.
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes

_EXPORTS = {
    "functional": "",
    **dict.fromkeys(("causal_mask", "lengths_to_padding_mask", "masked_softmax"), ".functional"),
    **dict.fromkeys(("AdditiveAttention", "MultiHeadAttention", "MultiplicativeAttention",
                     "ScaledDotProductAttention"), ".layers"),
    **dict.fromkeys(("ModalityEmbedding", "PositionalEncoding", "sinusoidal_positions"), ".positional"),
    **dict.fromkeys(("DecoderWeights", "Transformer", "TransformerDecoder", "TransformerDecoderLayer",
                     "TransformerEncoder", "TransformerEncoderLayer", "TransformerWeights"), ".transformer"),
    **dict.fromkeys(("FrameEmbedding", "PatchEmbedding", "TokenEmbedding", "audio_frames", "frame_signal"),
                    ".embedders"),
    **dict.fromkeys(("Hypothesis", "beam_search", "greedy_decode", "length_normalised_score"), ".decoding"),
    **dict.fromkeys(("mask_tokens", "patch_mask", "shuffle_pairs", "span_mask"), ".masking"),
    **dict.fromkeys(("masked_frame_loss", "masked_token_loss", "pair_matching_loss"), ".pretraining_losses"),
    **dict.fromkeys(("JointEncoding", "attention_pooled_frames", "streams_inputs"), ".packing"),
    **dict.fromkeys(("SequenceClassificationHead", "SpanExtractionHead", "StepFeatures",
                     "TokenClassificationHead", "decode_spans", "span_loss", "token_classification_loss"),
                    ".heads"),
    **dict.fromkeys(("History", "TrainConfig"), ".train"),
    **dict.fromkeys(("TorchAligner", "TorchEstimator"), ".estimator"),
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)
del lazy_attributes

if TYPE_CHECKING:  # the names as type checkers and IDEs should see them
    from . import functional
    from .decoding import Hypothesis, beam_search, greedy_decode, length_normalised_score
    from .embedders import FrameEmbedding, PatchEmbedding, TokenEmbedding, audio_frames, frame_signal
    from .functional import causal_mask, lengths_to_padding_mask, masked_softmax
    from .heads import (SequenceClassificationHead, SpanExtractionHead, StepFeatures, TokenClassificationHead,
                        decode_spans, span_loss, token_classification_loss)
    from .layers import AdditiveAttention, MultiHeadAttention, MultiplicativeAttention, ScaledDotProductAttention
    from .masking import mask_tokens, patch_mask, shuffle_pairs, span_mask
    from .packing import JointEncoding, attention_pooled_frames, streams_inputs
    from .positional import ModalityEmbedding, PositionalEncoding, sinusoidal_positions
    from .pretraining_losses import masked_frame_loss, masked_token_loss, pair_matching_loss
    from .estimator import TorchAligner, TorchEstimator
    from .train import History, TrainConfig
    from .transformer import (DecoderWeights, Transformer, TransformerDecoder, TransformerDecoderLayer,
                              TransformerEncoder, TransformerEncoderLayer, TransformerWeights)
