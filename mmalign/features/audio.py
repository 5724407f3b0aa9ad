"""Audio loading and frame-level features for alignment (thin layer over librosa).

Every feature function returns a **time-first** array ``(n_frames, n_features)``,
the mmalign convention, i.e. the transpose of what librosa returns.  Frame ``i``
is centred on the instant ``i * hop_length / sr`` seconds (librosa's
``center=True``), so ``frame_rate(sr, hop_length)`` frames make one second.

librosa is imported inside the functions: it is slow to import, and
``import mmalign`` should stay fast.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["load_audio", "chroma", "mfcc", "frame_rate", "AudioFileInfo", "audio_file_info",
           "check_audio_file", "MIN_AUDIO_SECONDS"]

#: Shortest recording the command line accepts, in seconds (``align``, ``subtitle``, ``sync``).
#: Below it the features are a handful of frames and librosa warns instead of failing.
MIN_AUDIO_SECONDS = 0.5

# Lowest chroma-CQT frequency (C1) and librosa's default number of octaves.
_CQT_FMIN = 32.70319566257483
_CQT_OCTAVES = 7


def load_audio(path: str | os.PathLike, *, sr: int | None = 22050, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file (WAV, FLAC, OGG, ... anything libsndfile reads).

    Parameters
    ----------
    path : str or os.PathLike
        File to read.
    sr : int > 0 or None
        Sampling rate to resample to, in Hz; ``None`` keeps the file's rate.
    mono : bool
        If True, average the channels into one.

    Returns
    -------
    y : np.ndarray, dtype=float32
        Samples in ``[-1, 1]``: shape ``(n_samples,)`` if ``mono``, otherwise
        ``(n_samples, n_channels)`` (time first, the mmalign convention).
    sr : int
        Sampling rate of ``y`` in Hz.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (the message names it).
    ValueError
        If the file cannot be decoded as audio, holds no samples or non-finite
        samples, or ``sr`` is not a positive integer.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
    >>> sf.write(tmp, np.zeros((8000, 2)), 8000)
    >>> y, sr = load_audio(tmp, sr=16000)
    >>> y.shape, sr
    ((16000,), 16000)
    """
    import soundfile as sf

    if sr is not None and (isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ValueError(f"sr must be a positive integer or None, got {sr!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"audio path is a directory, not a file: {path}")
    try:
        y, native_sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several error types
        raise ValueError(f"could not read audio file {path}: {err}") from None
    if y.size == 0:
        raise ValueError(f"audio file {path} contains no samples")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"audio file {path} contains NaN or infinite samples")
    if mono:
        y = y.mean(axis=1)
    if sr is not None and sr != native_sr:
        import librosa

        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, axis=0).astype(np.float32)
    else:
        sr = native_sr
    return np.ascontiguousarray(y), int(sr)


@dataclass(frozen=True)
class AudioFileInfo:
    """What :func:`audio_file_info` learns from a file's header.

    Attributes
    ----------
    path : str
        The file.
    sr : int
        Native sampling rate in Hz.
    n_samples : int
        Samples per channel at the native rate.
    channels : int
        Number of channels.
    """

    path: str
    sr: int
    n_samples: int
    channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sr


def audio_file_info(path: str | os.PathLike) -> AudioFileInfo:
    """Read an audio file's header (libsndfile); errors name the file.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.

    Returns
    -------
    info : AudioFileInfo

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a directory, libsndfile cannot read its header, or it
        holds no samples.

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
    >>> sf.write(tmp, np.zeros((8000, 2)), 16000)
    >>> info = audio_file_info(tmp)
    >>> info.sr, info.n_samples, info.channels, info.duration
    (16000, 8000, 2, 0.5)
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"expected an audio file, got a directory: {path}")
    try:
        info = sf.info(path)
    except Exception as err:  # libsndfile raises several error types
        reason = str(err).splitlines()[-1] if str(err) else type(err).__name__
        raise ValueError(f"could not read audio file {path}: {reason}") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError(f"audio file {path} contains no samples")
    return AudioFileInfo(path=path, sr=int(info.samplerate), n_samples=int(info.frames),
                         channels=int(info.channels))


def check_audio_file(path: str | os.PathLike, *, min_seconds: float = MIN_AUDIO_SECONDS) -> AudioFileInfo:
    """Check that an audio file can be read and is long enough, without reading all of it.

    The one check behind every command that reads audio: the header is read,
    the length compared with ``min_seconds`` and the first samples decoded.
    A truncated download (say the first 100 bytes of a WAV) is refused here,
    with the file's name and its length, instead of giving a few frames that
    align to nonsense.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.
    min_seconds : float >= 0
        Shortest accepted length in seconds (default :data:`MIN_AUDIO_SECONDS`, 0.5 s).

    Returns
    -------
    info : AudioFileInfo

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file cannot be decoded, holds no samples or lasts less than
        ``min_seconds`` (the message names the file and the reason).

    Examples
    --------
    >>> import tempfile, soundfile as sf
    >>> tmp = tempfile.NamedTemporaryFile(suffix=".wav", delete=False).name
    >>> sf.write(tmp, np.zeros(22050), 22050)
    >>> check_audio_file(tmp).duration
    1.0
    >>> sf.write(tmp, np.zeros(2205), 22050)
    >>> check_audio_file(tmp)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: audio file ... is too short: 0.100 s (at least 0.5 s needed)
    """
    import soundfile as sf

    info = audio_file_info(path)
    if info.duration < min_seconds:
        raise ValueError(f"audio file {info.path} is too short: {info.duration:.3f} s "
                         f"(at least {min_seconds:g} s needed)")
    try:
        with sf.SoundFile(info.path) as f:
            f.read(min(info.n_samples, 4096), dtype="float32")
    except Exception as err:  # libsndfile raises several error types
        raise ValueError(f"could not decode audio file {info.path}: {err}") from None
    return info


def frame_rate(sr: float, hop_length: int) -> float:
    """Frames per second for a hop of ``hop_length`` samples at ``sr`` Hz.

    Parameters
    ----------
    sr : float > 0
        Sampling rate in Hz.
    hop_length : int > 0
        Hop between frames in samples.

    Returns
    -------
    rate : float
        ``sr / hop_length``, in frames per second.

    Examples
    --------
    >>> round(frame_rate(22050, 512), 3)
    43.066
    """
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)) or not 0 < sr < np.inf:
        raise ValueError(f"sr must be a positive number, got {sr!r}")
    _check_positive_int("hop_length", hop_length)
    return float(sr) / float(hop_length)


def chroma(y: np.ndarray, sr: int, *, hop_length: int = 512, tuning: float | None = None) -> np.ndarray:
    """Chromagram: energy in each of the 12 pitch classes, frame by frame.

    Constant-Q chroma (``librosa.feature.chroma_cqt``, tuning estimated from
    the signal), each frame scaled to unit Euclidean norm so that the squared
    Euclidean distance between frames is ``2 - 2 cos``, independent of
    loudness.  Constant-Q chroma aligned the synthetic performances of
    :func:`mmalign.datasets.synthesize_performances` more accurately than
    STFT chroma at a similar cost.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio signal.
    sr : int > 0
        Sampling rate of ``y`` in Hz.
    hop_length : int > 0
        Hop between frames in samples (512 at 22050 Hz is about 23 ms).  The
        constant-Q transform needs a multiple of ``2 ** (n_octaves - 1)``
        (64 at 22050 Hz) to run at full speed; other hops work, many times
        slower.
    tuning : float or None
        Deviation from A440 tuning in fractions of a chroma bin (in
        ``[-0.5, 0.5)``); ``None`` estimates it from ``y``.  Pass a fixed
        value when extracting a long signal chunk by chunk, so that every
        chunk uses the same tuning.

    Returns
    -------
    C : np.ndarray, shape=(n_frames, 12), dtype of ``y``
        Unit-norm chroma, time first; column 0 is C, 1 is C#, ... 11 is B.
        Frames of digital silence are all zero.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(sr) / sr
    >>> y = np.sin(2 * np.pi * 440.0 * t)   # an A
    >>> C = chroma(y, sr)
    >>> C.shape, int(np.argmax(C.mean(axis=0)))
    ((44, 12), 9)
    """
    import librosa

    y = _check_signal(y)
    _check_sr(sr)
    _check_positive_int("hop_length", hop_length)
    # The top CQT bin must stay below Nyquist: drop octaves at low rates.
    n_octaves = int(np.clip(np.floor(np.log2(0.45 * sr / _CQT_FMIN)), 1, _CQT_OCTAVES))
    with warnings.catch_warnings():
        # Short signals make the long low-octave filters warn; padding is fine.
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        C = librosa.feature.chroma_cqt(
            y=y, sr=sr, hop_length=hop_length, fmin=_CQT_FMIN, n_octaves=n_octaves, norm=2,
            tuning=tuning,
        )
    return np.ascontiguousarray(C.T, dtype=y.dtype)


def mfcc(y: np.ndarray, sr: int, *, n_mfcc: int = 20, hop_length: int = 512, n_fft: int = 2048,
         top_db: float | None = 80.0) -> np.ndarray:
    """Mel-frequency cepstral coefficients, frame by frame: the one MFCC of mmalign.

    A 128-band mel power spectrogram (``librosa.feature.melspectrogram``,
    ``n_fft``-sample Hann windows, Slaney mel filters), in dB
    (``librosa.power_to_db``, floored ``top_db`` below its loudest cell), and
    its orthonormal DCT-II (``librosa.feature.mfcc``), transposed to time
    first.  Coefficient 0 is the log energy of the frame.  With the defaults
    this is exactly ``librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc,
    hop_length=hop_length)``.  Frame ``i`` is centred on the instant
    ``i * hop_length / sr`` seconds.

    The applications call it with their own settings: audio synchronisation
    (:mod:`mmalign.apps.sync.features`) with ``top_db=None``, so that chunks
    of a long recording analysed apart agree; forced alignment
    (:func:`mmalign.apps.forced_alignment.speech_features`) with a
    speech-sized window (``n_fft=512``, 23 ms at 22050 Hz) and
    ``hop_length=256``.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio signal.
    sr : int > 0
        Sampling rate of ``y`` in Hz.
    n_mfcc : int > 0
        Number of coefficients.
    hop_length : int > 0
        Hop between frames in samples.
    n_fft : int > 0
        Analysis window in samples (2048: 93 ms at 22050 Hz, sized for music).
    top_db : float >= 0 or None
        Floor of the dB mel spectrogram, in dB below its maximum over the
        whole of ``y`` (librosa's default, 80); ``None`` for no floor.

    Returns
    -------
    M : np.ndarray, shape=(1 + n_samples // hop_length, n_mfcc), dtype of ``y``
        MFCCs, time first.

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> mfcc(y, 22050, n_mfcc=13).shape
    (44, 13)
    >>> mfcc(y, 22050, n_mfcc=13, hop_length=256, n_fft=512, top_db=None).shape
    (87, 13)
    """
    import librosa

    y = _check_signal(y)
    _check_sr(sr)
    _check_positive_int("n_mfcc", n_mfcc)
    _check_positive_int("hop_length", hop_length)
    _check_positive_int("n_fft", n_fft)
    if top_db is not None and (isinstance(top_db, bool)
                               or not isinstance(top_db, (int, float, np.integer, np.floating))
                               or not 0 <= top_db < np.inf):
        raise ValueError(f"top_db must be a non-negative number or None, got {top_db!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_fft=.*is too large")
        S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length)
    M = librosa.feature.mfcc(S=librosa.power_to_db(S, top_db=top_db), n_mfcc=n_mfcc)
    return np.ascontiguousarray(M.T, dtype=y.dtype)


def _check_signal(y, name: str = "y") -> np.ndarray:
    """A 1-d, non-empty, finite float signal (float32 / float64 kept, other floats -> float64)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D mono signal of shape (n_samples,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got dtype {y.dtype}; "
                         "scale integer PCM to [-1, 1] first")
    if y.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if y.dtype not in (np.float32, np.float64):
        y = y.astype(np.float64)
    return y


def _check_sr(sr) -> None:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
