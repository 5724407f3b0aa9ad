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
    than chroma alone on one instrument; unreliable across instruments (the
    flux of a bowed or blown attack differs from a struck one).
``"chroma+dlnco"``
    The default for music: 12 chroma (unnormalised constant-Q chroma scaled
    to unit norm, frames more than 50 dB below the recording's loud frames
    set to the flat vector ``1 / sqrt(12)`` so that silence and faint tails
    match each other) next to ``4 *`` 12 DLNCO features -- decaying locally
    adaptive normalised chroma onsets (Ewert, Müller & Grosche 2009, as
    synctoolbox's MrMsDTW uses them): STFT energy pooled into the semitone
    bands of MIDI pitches 21-108 at the estimated tuning, compressed as
    ``log(1 + 1e8 E)`` (a full-scale sine has ``E = 1``), its positive increase at twice the feature rate
    summed per pitch class, divided by the local maximum of its norm over
    0.8 s (floored at 0.1 x the recording's 95th percentile of that maximum),
    then decaying as ``sqrt(1 / k)`` over 0.2 s.  The Euclidean cost between
    such frames weighs harmony and note starts; with a piano against strings
    or organ the note starts stay where ``chroma`` alone lags behind slow
    attacks (``python -m benchmarks music_sync``).  The weight 4 and the
    constants were chosen on chorales 10-15 of music21's corpus, not on the
    benchmark's chorales 0-7.
"""

from __future__ import annotations

import math
import warnings
from typing import Iterable

import numpy as np

from ...features.audio import _CQT_FMIN, _CQT_OCTAVES, _check_signal, chroma, mfcc
from ._stream import array_blocks

__all__ = ["FEATURES", "feature_hop", "feature_dim", "sync_features", "stream_features",
           "estimate_tuning_semitones"]

FEATURES = ("chroma", "mfcc", "onset", "chroma+onset", "chroma+dlnco")
MARGIN_SECONDS = 2.0     # context analysed on each side of a chunk, then dropped
TUNING_SECONDS = 30.0    # chroma: tuning estimated once, from this much of the start
N_MFCC = 20
N_MELS = 64
ONSET_BANDS = 8
ONSET_DECAY_SECONDS = 0.1
ONSET_WEIGHT = 0.5       # of the onset half in "chroma+onset"
# "chroma+dlnco": decaying locally adaptive normalised chroma onsets (Ewert et al. 2009)
DLNCO_MIDI = (21, 108)           # pitch bands (MIDI numbers) pooled into the 12 chroma onsets
DLNCO_GAMMA = 1e8                # log compression log(1 + gamma * energy) of the pitch energies
DLNCO_LN_SECONDS = 0.8           # window of the local maximum that normalises the onsets
DLNCO_LN_FLOOR = 0.1             # floor of that maximum, relative to its 95th percentile
DLNCO_DECAY_SECONDS = 0.2        # length of the decay sqrt(1 / k), k = 1, 2, ...
DLNCO_WEIGHT = 4.0               # of the onset half in "chroma+dlnco" (tuned on chorales 10-15)
SILENCE_DB = 50.0                # chroma of frames this far below the recording's loud frames: flat


def feature_dim(features: str) -> int:
    """Number of columns of the features named ``features``."""
    _check_features(features)
    return {"chroma": 12, "mfcc": N_MFCC, "onset": ONSET_BANDS,
            "chroma+onset": 12 + ONSET_BANDS, "chroma+dlnco": 24}[features]


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
            if features == "chroma+dlnco":
                state["semitones"] = estimate_tuning_semitones(buf[:int(TUNING_SECONDS * sr)], sr)
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
    if features == "chroma+dlnco":
        parts.append(_chroma_energy(y, sr, hop, state["tuning"]))
    elif "chroma" in features:
        parts.append(_chroma(y, sr, hop, state))
    if features == "mfcc":
        parts.append(_mfcc(y, sr, hop))
    if "onset" in features:
        parts.append(_onset_flux(y, sr, hop))
    if features == "chroma+dlnco":
        parts.append(_chroma_onsets(y, sr, hop, state["semitones"]))
    n = min(len(p) for p in parts)
    return np.concatenate([p[:n] for p in parts], axis=1)


def _estimate_tuning(y: np.ndarray, sr: int) -> float:
    """Tuning deviation in fractions of a 36-per-octave bin, as ``chroma_cqt`` would estimate it."""
    import librosa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuning = float(librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=36))
    return tuning if np.isfinite(tuning) else 0.0


def estimate_tuning_semitones(y: np.ndarray, sr: int) -> float:
    """Deviation of the recording's tuning from A440 in semitones, in ``[-0.5, 0.5)``.

    ``librosa.estimate_tuning`` at 12 bins per octave (pitches of the
    strongest spectral peaks, folded onto a semitone): a recording tuned to
    A = 450 Hz gives about ``+0.39`` (to about 0.02).  0 for silence.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(2 * sr) / sr
    >>> y = np.sin(2 * np.pi * 440.0 * 2 ** (0.3 / 12) * t)   # 30 cents sharp
    >>> round(estimate_tuning_semitones(y, sr), 1)
    0.3
    """
    import librosa

    y = _check_signal(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuning = float(librosa.estimate_tuning(y=y, sr=sr, bins_per_octave=12))
    return tuning if np.isfinite(tuning) else 0.0


def _chroma(y, sr, hop, state) -> np.ndarray:
    return chroma(y, sr, hop_length=hop, tuning=state["tuning"])


def _chroma_energy(y, sr, hop, tuning) -> np.ndarray:
    """Constant-Q chroma as in :func:`mmalign.features.chroma` but not normalised (the
    frame norms tell silence from sound in :func:`_finish`)."""
    import librosa

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        C = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=hop, fmin=_CQT_FMIN, n_octaves=_cqt_octaves(sr),
                                       norm=None, tuning=tuning)
    return C.T.astype(np.float32)


def _pitch_filterbank(sr: int, n_fft: int, tuning: float):
    """``(88, 1 + n_fft // 2)`` 0 / 1 matrix pooling STFT bins into the semitone bands of
    MIDI pitches 21 ... 108 (each bin to its nearest pitch, ``tuning`` in semitones,
    as :func:`estimate_tuning_semitones` gives it)."""
    lo, hi = DLNCO_MIDI
    freqs = np.arange(1 + n_fft // 2) * sr / n_fft
    with np.errstate(divide="ignore"):
        pitch = 69.0 + 12.0 * np.log2(freqs / 440.0) - tuning
    nearest = np.round(pitch)
    ok = np.isfinite(nearest) & (nearest >= lo) & (nearest <= hi)
    F = np.zeros((hi - lo + 1, len(freqs)), np.float32)
    F[(nearest[ok] - lo).astype(int), np.flatnonzero(ok)] = 1.0
    return F


def _chroma_onsets(y, sr, hop, tuning) -> np.ndarray:
    """Chroma onsets (CO of Ewert et al. 2009) at the feature rate, ``(n_frames, 12)``.

    STFT (93 ms Hann windows, hop ``hop / 2``) -> energy per MIDI pitch band
    (21-108, tuned; a full-scale sine has energy 1) -> ``log(1 + gamma * E)`` -> positive increase from frame to
    frame -> summed per pitch class; the two half-hop frames around each feature
    frame are pooled by their maximum.
    """
    import librosa

    fine = max(1, hop // 2)
    n_fft = _n_fft(sr)
    # scaled so that a full-scale sine has energy 1 in its band (Hann window sum / 2 = n_fft / 4)
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=fine, center=True) / (n_fft / 4)) ** 2
    P = _pitch_filterbank(sr, n_fft, tuning) @ S                  # (88, n_fine)
    L = np.log1p(DLNCO_GAMMA * P)
    rise = np.maximum(0.0, np.diff(L, axis=1, prepend=L[:, :1]))
    lo = DLNCO_MIDI[0]
    classes = (np.arange(L.shape[0]) + lo) % 12
    CO = np.zeros((12, rise.shape[1]), np.float64)
    np.add.at(CO, classes, rise)
    n = 1 + (len(y) - 1) // hop
    # feature frame i (centred at i * hop) takes the rises at fine frames 2i - 1 and 2i
    # (changes between 2i - 2 .. 2i, i.e. within half a hop before its centre) and 2i + 1
    idx = np.arange(n) * (hop // fine) if hop % fine == 0 else np.round(np.arange(n) * hop / fine).astype(int)
    out = np.zeros((n, 12))
    for shift in (-1, 0, 1):
        j = np.clip(idx + shift, 0, CO.shape[1] - 1)
        out = np.maximum(out, CO[:, j].T)
    return out.astype(np.float32)


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
    elif features == "chroma+dlnco":
        C = _unit_chroma(F[:, :12].astype(np.float64))
        D = _dlnco(F[:, 12:].astype(np.float64), rate) * DLNCO_WEIGHT
        F = np.concatenate([C, D], axis=1)
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


def _unit_chroma(C: np.ndarray) -> np.ndarray:
    """Frames scaled to unit norm; frames more than :data:`SILENCE_DB` below the
    recording's loud frames (95th percentile of the norms) become the flat vector
    ``1 / sqrt(12)`` (silence and faint tails match each other, not chance chroma)."""
    norms = np.linalg.norm(C, axis=1)
    loud = np.percentile(norms, 95) if len(norms) else 0.0
    quiet = norms <= max(loud * 10 ** (-SILENCE_DB / 20), 1e-12)
    out = C / np.where(quiet, 1.0, norms)[:, None]
    out[quiet] = 1.0 / math.sqrt(12)
    return out


def _dlnco(CO: np.ndarray, rate: float) -> np.ndarray:
    """Decaying locally adaptive normalised chroma onsets from chroma onsets ``(n, 12)``.

    Each frame is divided by the largest onset norm within +-``DLNCO_LN_SECONDS / 2``
    (floored at ``DLNCO_LN_FLOOR`` times the 95th percentile of that local maximum),
    then every onset decays as ``sqrt(1 / k)`` over the next
    ``DLNCO_DECAY_SECONDS`` (maximum of the decaying copies), as in MrMsDTW.
    """
    from scipy.ndimage import maximum_filter1d

    norms = np.linalg.norm(CO, axis=1)
    width = max(1, int(round(DLNCO_LN_SECONDS * rate)) | 1)
    local = maximum_filter1d(norms, size=width, mode="constant")
    floor = DLNCO_LN_FLOOR * (np.percentile(local, 95) if len(local) else 0.0)
    LN = CO / np.maximum(local, max(floor, 1e-12))[:, None]
    n_decay = max(1, int(round(DLNCO_DECAY_SECONDS * rate)))
    out = LN.copy()
    for k in range(1, n_decay):
        out[k:] = np.maximum(out[k:], LN[:-k] * math.sqrt(1.0 / (k + 1)))
    return out


def _decay(O: np.ndarray, frames: float) -> np.ndarray:
    """Causal exponential smoothing with time constant ``frames``, peak kept at 1x."""
    from scipy.signal import lfilter

    a = math.exp(-1.0 / max(frames, 1e-3))
    return lfilter([1.0], [1.0, -a], O, axis=0)
