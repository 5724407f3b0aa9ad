"""Frame features for audio synchronisation, extracted chunk by chunk.

A long recording is cut into chunks of ``chunk_seconds`` (60 s by default);
each chunk is analysed together with a margin of two seconds on either side
and only the frames of its interior are kept.  Frame ``i`` is centred on
sample ``i * hop_length`` in every case, and the result matches a single
pass over the whole signal up to edge effects inside the margins (below
1e-4 for chroma at a fixed tuning; tests check it).  Memory therefore depends on the chunk length,
not on the length of the recording; only the features (``n_frames x d``
float32, 2.3 MB per hour of 12-d chroma at 50 Hz) are kept.

Feature sets (``features=``)
----------------------------
``"chroma"``
    12-bin constant-Q chroma, unit norm per frame
    (:func:`mmalign.features.chroma`); the tuning is estimated once, from the
    first 30 s, whatever the chunk length.  Harmony: the choice for music.
``"mfcc"``
    20 MFCCs (:func:`mmalign.features.mfcc` with ``top_db=None``: without
    the 80 dB floor below the loudest frame), each minus its mean over the
    recording (cepstral mean normalisation), so that a constant gain or
    channel colouring cancels.  Timbre: the choice for speech.  (Dropping
    coefficient 0 or also scaling to unit variance was 40-70 % less accurate
    on the speech-like tuning set of ``recipes/audio_sync.py``.)
``"onset"``
    Spectral flux in 8 mel bands (positive frame-to-frame increase of the log
    mel spectrum), each band divided by its 99th percentile over the
    recording, clipped at 2, then smoothed with a 100 ms exponential decay
    (decaying onset features after Ewert et al., 2009).
``"chroma+onset"``
    Both, side by side: chroma plus ``0.5 *`` onset.  Sharper at note starts
    than chroma alone.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

import numpy as np

from ...features.audio import _CQT_FMIN, _CQT_OCTAVES, _check_signal, chroma, mfcc
from ._stream import array_blocks

__all__ = ["FEATURES", "feature_hop", "feature_dim", "sync_features", "stream_features"]

FEATURES = ("chroma", "mfcc", "onset", "chroma+onset")
MARGIN_SECONDS = 2.0     # context analysed on each side of a chunk, then dropped
TUNING_SECONDS = 30.0    # chroma: tuning estimated once, from this much of the start
N_MFCC = 20
N_MELS = 64
ONSET_BANDS = 8
ONSET_DECAY_SECONDS = 0.1
ONSET_WEIGHT = 0.5       # of the onset half in "chroma+onset"


def feature_dim(features: str) -> int:
    """Number of columns of the features named ``features``."""
    _check_features(features)
    return {"chroma": 12, "mfcc": N_MFCC, "onset": ONSET_BANDS,
            "chroma+onset": 12 + ONSET_BANDS}[features]


def feature_hop(sr: int, feature_rate: float, features: str = "chroma") -> int:
    """Hop in samples that gives about ``feature_rate`` frames per second.

    Chroma goes through a constant-Q transform, which is only fast when the
    hop is a multiple of ``2 ** (n_octaves - 1)`` (64 at 22050 Hz): for
    feature sets with chroma the hop is rounded to the nearest such multiple,
    otherwise to the nearest integer.  The exact rate is
    ``sr / feature_hop(...)``.

    Parameters
    ----------
    sr : int > 0
        Sampling rate in Hz.
    feature_rate : float > 0
        Wanted frames per second.
    features : str
        One of :data:`FEATURES`.

    Returns
    -------
    hop_length : int > 0

    Examples
    --------
    >>> feature_hop(22050, 50.0), feature_hop(22050, 50.0, "mfcc")
    (448, 441)
    """
    _check_features(features)
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
    if isinstance(feature_rate, bool) or not isinstance(feature_rate, (int, float, np.integer, np.floating)) \
            or not 0 < feature_rate < np.inf:
        raise ValueError(f"feature_rate must be a positive number (frames per second), got {feature_rate!r}")
    step = 2 ** (_cqt_octaves(sr) - 1) if "chroma" in features else 1
    hop = int(step * max(1, round(sr / feature_rate / step)))
    return hop


def sync_features(y: np.ndarray, sr: int, *, features: str = "chroma", hop_length: int = 448,
                  chunk_seconds: float = 60.0, progress: bool = False) -> np.ndarray:
    """Frame features of a whole signal for synchronisation, chunk by chunk.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio.
    sr : int > 0
        Sampling rate of ``y`` in Hz.
    features : {"chroma", "mfcc", "onset", "chroma+onset"}
        Feature set; see the module documentation.
    hop_length : int > 0
        Hop between frames in samples (see :func:`feature_hop`).
    chunk_seconds : float > 0
        Audio analysed at once (plus 2 s margins).
    progress : bool
        Show a tqdm progress bar over the chunks.

    Returns
    -------
    F : np.ndarray, shape=(1 + (n_samples - 1) // hop_length, d), dtype=float32
        Features, time first; frame ``i`` is centred at ``i * hop_length / sr``
        seconds.  ``d`` is :func:`feature_dim`.

    Examples
    --------
    >>> sr = 22050
    >>> y = np.sin(2 * np.pi * 440.0 * np.arange(sr) / sr).astype(np.float32)
    >>> sync_features(y, sr, hop_length=512).shape
    (44, 12)
    """
    y = _check_signal(y)
    return stream_features(array_blocks(y.astype(np.float32, copy=False)), sr, features=features,
                           hop_length=hop_length, n_samples=len(y), chunk_seconds=chunk_seconds,
                           progress=progress)


def stream_features(blocks: Iterable[np.ndarray], sr: int, *, features: str = "chroma",
                    hop_length: int = 448, n_samples: int | None = None, chunk_seconds: float = 60.0,
                    progress: bool = False, desc: str | None = None) -> np.ndarray:
    """:func:`sync_features` of a signal given as a stream of mono blocks.

    ``n_samples`` (if known) sizes the progress bar only.  Memory: one chunk of
    audio plus its margins, and the features.
    """
    _check_features(features)
    if isinstance(hop_length, bool) or not isinstance(hop_length, (int, np.integer)) or hop_length <= 0:
        raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
    if not 0 < chunk_seconds < np.inf:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
    hop = int(hop_length)
    margin = hop * math.ceil(MARGIN_SECONDS * sr / hop)
    chunk = hop * max(1, math.ceil(chunk_seconds * sr / hop))
    state: dict = {}
    parts = []

    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = None if n_samples is None else math.ceil(n_samples / chunk)
        bar = tqdm(total=total, desc=desc or f"{features} features", unit="chunk", leave=False)

    buf = np.zeros(0, np.float32)   # samples from buf_start on
    buf_start = 0
    next_frame = 0                  # first frame not yet produced
    stream = iter(blocks)
    exhausted = False
    while True:
        first = next_frame * hop                       # first sample of this chunk's interior
        need = first + chunk + margin                  # last sample (excl.) the chunk needs
        if "chroma" in features and "tuning" not in state:
            need = max(need, int(TUNING_SECONDS * sr))
        while not exhausted and buf_start + len(buf) < need:
            try:
                block = next(stream)
            except StopIteration:
                exhausted = True
                break
            buf = np.concatenate([buf, np.asarray(block, np.float32)])
        end = buf_start + len(buf)                     # samples seen so far
        if exhausted:
            n_total = 1 + (end - 1) // hop if end else 0   # frames of the whole signal
            stop_frame = min(next_frame + chunk // hop, n_total)
        else:
            stop_frame = next_frame + chunk // hop
        if stop_frame <= next_frame:
            break
        seg_start = max(0, first - margin)
        seg_stop = min(end, stop_frame * hop + margin)
        segment = buf[seg_start - buf_start:seg_stop - buf_start]
        if "chroma" in features and "tuning" not in state:
            state["tuning"] = _estimate_tuning(buf[:int(TUNING_SECONDS * sr)], sr)
        F = _raw_features(segment, sr, hop, features, state)
        offset = (first - seg_start) // hop
        parts.append(F[offset:offset + stop_frame - next_frame])
        next_frame = stop_frame
        if bar is not None:
            bar.update(1)
        keep_from = max(0, next_frame * hop - margin)  # drop what no later chunk needs
        buf = buf[keep_from - buf_start:]
        buf_start = keep_from
    if bar is not None:
        bar.close()
    if not parts:
        raise ValueError("the audio is empty")
    return _finish(np.concatenate(parts).astype(np.float32), features, sr / hop)


# --------------------------------------------------------------------------- internals


def _check_features(features) -> None:
    if features not in FEATURES:
        raise ValueError(f"features must be one of {', '.join(FEATURES)}; got {features!r}")


def _cqt_octaves(sr: int) -> int:
    """Octaves of the chroma CQT at ``sr`` (as in :func:`mmalign.features.chroma`)."""
    return int(np.clip(np.floor(np.log2(0.45 * sr / _CQT_FMIN)), 1, _CQT_OCTAVES))


def _raw_features(y: np.ndarray, sr: int, hop: int, features: str, state: dict) -> np.ndarray:
    """Per-chunk features before the whole-recording normalisation, time first."""
    parts = []
    if "chroma" in features:
        parts.append(_chroma(y, sr, hop, state))
    if features == "mfcc":
        parts.append(_mfcc(y, sr, hop))
    if "onset" in features:
        parts.append(_onset_flux(y, sr, hop))
    n = min(len(p) for p in parts)
    return np.concatenate([p[:n] for p in parts], axis=1)


def _estimate_tuning(y: np.ndarray, sr: int) -> float:
    """Tuning deviation in fractions of a 36-per-octave bin, as ``chroma_cqt`` would estimate it."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuning = float(librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=36))
    return tuning if np.isfinite(tuning) else 0.0


def _chroma(y, sr, hop, state) -> np.ndarray:
    return chroma(y, sr, hop_length=hop, tuning=state["tuning"])


def _mfcc(y, sr, hop) -> np.ndarray:
    """:func:`mmalign.features.mfcc` without the dB floor relative to the loudest frame
    (``top_db=None``), which would make chunks differ."""
    return mfcc(y, sr, n_mfcc=N_MFCC, hop_length=hop, top_db=None)


def _onset_flux(y, sr, hop) -> np.ndarray:
    import librosa

    n_fft = _n_fft(sr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        warnings.filterwarnings("ignore", message="Empty filters detected")
        S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop, n_mels=N_MELS,
                                           fmax=min(8000.0, sr / 2), power=2.0)
    L = np.log(S + 1e-8)                                   # gain-invariant differences
    flux = np.maximum(0.0, np.diff(L, axis=1, prepend=L[:, :1]))
    bands = flux.reshape(ONSET_BANDS, N_MELS // ONSET_BANDS, -1).sum(axis=1)
    return bands.T.astype(np.float32)


def _n_fft(sr: int) -> int:
    """Power of two closest to 93 ms (2048 at 22050 Hz)."""
    return int(2 ** round(math.log2(0.0929 * sr)))


def _finish(F: np.ndarray, features: str, rate: float) -> np.ndarray:
    """Whole-recording normalisation: mean removal for MFCC, scaling and decay for onsets."""
    if features == "mfcc":
        F = F - F.mean(axis=0, dtype=np.float64)
    elif "onset" in features:
        k = 12 if features == "chroma+onset" else 0
        O = F[:, k:].astype(np.float64)
        scale = np.percentile(O, 99, axis=0) + 1e-8
        O = np.minimum(O / scale, 2.0)
        O = _decay(O, ONSET_DECAY_SECONDS * rate)
        if k:
            O *= ONSET_WEIGHT
        F = np.concatenate([F[:, :k], O.astype(np.float32)], axis=1)
    return np.ascontiguousarray(F, dtype=np.float32)


def _decay(O: np.ndarray, frames: float) -> np.ndarray:
    """Causal exponential smoothing with time constant ``frames``, peak kept at 1x."""
    from scipy.signal import lfilter

    a = math.exp(-1.0 / max(frames, 1e-3))
    return lfilter([1.0], [1.0, -a], O, axis=0)
