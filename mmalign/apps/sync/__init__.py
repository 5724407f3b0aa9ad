"""Audio-to-audio synchronisation: two recordings of the same music or speech.

>>> from mmalign.apps.sync import synchronize, write_preview               # doctest: +SKIP
>>> al = synchronize(a, b, sr=22050, features="chroma")                   # doctest: +SKIP
>>> al.to_csv("path.csv"); write_preview("preview.wav", a, b, al, 22050)  # doctest: +SKIP

- :func:`synchronize` / :func:`synchronize_files`: features
  (:mod:`mmalign.apps.sync.features`, MFCC and chroma from :mod:`mmalign.features`)
  + DTW or multiscale DTW -> :class:`mmalign.Alignment` with ``frame_rate`` set
  (``times()`` in seconds);
- :func:`write_preview` / :func:`warp_audio_preview`: B re-timed onto A's timeline;
- :func:`time_stretch_piecewise`: a known piecewise-linear warp, for ground truth;
- :func:`align_score`: a MIDI / MusicXML score against a recording of it
  (``mmalign score SCORE AUDIO --out DIR``).

The command-line front end is ``mmalign sync A B --out DIR`` (:mod:`mmalign.cli.sync`).
Importing this package loads numpy only; librosa, scipy and the DTW kernels load on first use.
"""

from .features import FEATURES, feature_dim, feature_hop, stream_features, sync_features
from .core import AUTO_EXACT_CELLS, METHODS, SyncResult, align_features, synchronize, synchronize_files
from .score import NOTE_COLUMNS, ScoreAlignment, align_score, load_score, score_features, write_score_outputs
from .vocoder import alignment_time_map, time_stretch_piecewise, warp_audio_preview, write_preview

__all__ = [
    "FEATURES", "METHODS", "AUTO_EXACT_CELLS", "SyncResult",
    "synchronize", "synchronize_files", "align_features", "sync_features", "stream_features", "feature_hop", "feature_dim",
    "align_score", "load_score", "score_features", "write_score_outputs", "ScoreAlignment", "NOTE_COLUMNS",
    "time_stretch_piecewise", "warp_audio_preview", "write_preview", "alignment_time_map",
]
