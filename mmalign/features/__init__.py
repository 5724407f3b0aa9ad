"""Frame-level features for alignment, time first: ``(n_frames, n_features)``.

The one MFCC (:func:`mfcc`) and the one chroma (:func:`chroma`) of mmalign: the
applications (:mod:`mmalign.apps.sync`, :mod:`mmalign.apps.forced_alignment`,
the demo) and ``mmalign align`` call these with their own settings.
"""

from .audio import chroma, frame_rate, load_audio, mfcc

__all__ = ["chroma", "frame_rate", "load_audio", "mfcc"]
