"""Synthetic generators with ground truth and loaders for bundled data."""

from .multimodal_streams import (
    STREAM_LEXICON,
    MultimodalStreams,
    StreamBatch,
    collate_streams,
    multimodal_streams,
)
from .sequence_tasks import (
    DATE_FORMATS,
    DATE_LOCALES,
    Seq2SeqBatch,
    Seq2SeqExample,
    Vocabulary,
    build_vocabularies,
    date_task,
    encode_batch,
    gold_alignment,
    reordering_task,
    reversal_task,
)
from .synthetic_audio import PerformancePair, synthesize_performances
from .rendered_chorales import ChoraleScore, RenderedPiece, chorale_score, render_chorale, tempo_curve
from .synthetic_speech import SpeechLike, synthesize_speech_like
from .synthetic_warps import (
    LatentMap,
    WarpedPair,
    WarpedSet,
    basic_motions_warped,
    random_monotone_warp,
    warped_multimodal,
)
from .mnist import MNIST_N_TEST, MNIST_N_TRAIN, load_mnist
from .distorted_digits import DISTORTION_KINDS, DistortedDigits, distorted_digits
from .cluttered_digits import ClutteredDigits, cluttered_digits, translated_digits
from .digit_scenes import DIGIT_WORDS, SPATIAL_WORDS, DigitScenes, digit_scenes, scene_vocabulary
from .planted_embeddings import PLANTED_N_WORDS_RANGE, PlantedEmbeddings, planted_embeddings

__all__ = [
    "PerformancePair", "synthesize_performances",
    "ChoraleScore", "RenderedPiece", "chorale_score", "render_chorale", "tempo_curve",
    "SpeechLike", "synthesize_speech_like",
    "LatentMap", "WarpedPair", "WarpedSet", "basic_motions_warped", "random_monotone_warp",
    "warped_multimodal",
    "DATE_FORMATS", "DATE_LOCALES", "Seq2SeqBatch", "Seq2SeqExample", "Vocabulary",
    "build_vocabularies", "date_task", "encode_batch", "gold_alignment", "reordering_task",
    "reversal_task",
    "STREAM_LEXICON", "MultimodalStreams", "StreamBatch", "collate_streams", "multimodal_streams",
    "MNIST_N_TEST", "MNIST_N_TRAIN", "load_mnist",
    "DISTORTION_KINDS", "DistortedDigits", "distorted_digits",
    "ClutteredDigits", "cluttered_digits", "translated_digits",
    "DIGIT_WORDS", "SPATIAL_WORDS", "DigitScenes", "digit_scenes", "scene_vocabulary",
    "PLANTED_N_WORDS_RANGE", "PlantedEmbeddings", "planted_embeddings",
]
