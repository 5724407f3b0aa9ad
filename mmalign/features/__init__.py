"""Frame-level features for alignment, time first: ``(n_frames, n_features)``."""

from .audio import chroma, frame_rate, load_audio, mfcc

__all__ = ["chroma", "frame_rate", "load_audio", "mfcc"]
