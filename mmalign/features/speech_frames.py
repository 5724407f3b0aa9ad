"""Speech frames in plain numpy: power spectra, log-mel energies and MFCCs at any sampling rate.

Forced alignment compares a synthetic rendering (22050 Hz) with a recording at
whatever rate it was made (8, 16, 44.1 kHz ...).  Instead of resampling one of
them, both are analysed with the same window and hop *in seconds* and a mel
filterbank over the same band (up to the lower Nyquist frequency), so their
frames are comparable and nothing slower than numpy is imported: librosa and
scipy.signal take longer to import than this takes to run on a minute of speech.

Frame ``i`` covers ``[i * hop, i * hop + window)`` seconds of the zero-padded
signal and is centred on ``i * hop`` seconds (the signal is padded by half a
window on each side), so ``1 + n_samples // hop_samples`` frames cover the
recording, as :func:`mmalign.features.mfcc` does.
"""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_float, check_int
from .audio import _check_signal, _check_sr

__all__ = ["FrameSpec", "power_spectrogram", "mel_filterbank", "log_mel", "speech_mfcc", "deltas"]

#: Default analysis: 25 ms Hann windows every 10 ms (the usual speech-recognition framing).
WINDOW_SECONDS = 0.025
HOP_SECONDS = 0.010
N_MELS = 40
FMIN = 60.0
FMAX = 7600.0


class FrameSpec:
    """Window and hop in samples for a sampling rate, from the same durations in seconds.

    Parameters
    ----------
    sr : int > 0
        Sampling rate in Hz.
    window, hop : float > 0
        Window length and hop in seconds.

    Examples
    --------
    >>> spec = FrameSpec(16000)
    >>> spec.win_length, spec.hop_length, spec.n_fft
    (400, 160, 512)
    """

    def __init__(self, sr: int, window: float = WINDOW_SECONDS, hop: float = HOP_SECONDS) -> None:
        _check_sr(sr)
        window = check_float(window, "window", 0.0, low_open=True)
        hop = check_float(hop, "hop", 0.0, low_open=True)
        self.sr = int(sr)
        self.win_length = max(int(round(window * sr)), 2)
        self.hop_length = max(int(round(hop * sr)), 1)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        self.frame_rate = self.sr / self.hop_length

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length


def power_spectrogram(y: np.ndarray, spec: FrameSpec) -> np.ndarray:
    """|STFT|^2 with a Hann window, time first.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
    spec : FrameSpec

    Returns
    -------
    S : np.ndarray, shape=(1 + n_samples // hop_length, 1 + n_fft // 2), float64

    Examples
    --------
    >>> S = power_spectrogram(np.zeros(16000), FrameSpec(16000))
    >>> S.shape
    (101, 257)
    """
    y = _check_signal(y).astype(np.float64, copy=False)
    half = spec.win_length // 2
    padded = np.pad(y, (half, spec.win_length - half))
    n = spec.n_frames(len(y))
    index = np.arange(spec.win_length)[None, :] + spec.hop_length * np.arange(n)[:, None]
    frames = padded[index] * np.hanning(spec.win_length + 2)[1:-1]
    return np.abs(np.fft.rfft(frames, n=spec.n_fft, axis=1)) ** 2


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sr: int, n_fft: int, *, n_mels: int = N_MELS, fmin: float = FMIN,
                   fmax: float = FMAX) -> np.ndarray:
    """Triangular filters on the HTK mel scale, unit peak: ``(1 + n_fft // 2, n_mels)``.

    ``fmax`` is lowered to the Nyquist frequency ``sr / 2``.

    Examples
    --------
    >>> mel_filterbank(16000, 512).shape
    (257, 40)
    """
    _check_sr(sr)
    fmax = min(float(fmax), sr / 2.0)
    if not 0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax (fmax capped at sr / 2 = {sr / 2:g} Hz), got {fmin!r}, {fmax!r}")
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(1 + n_fft // 2) * sr / n_fft
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rise = (freqs[:, None] - lower) / (centre - lower)
    fall = (upper - freqs[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rise, fall))


def log_mel(y: np.ndarray, sr: int, *, spec: FrameSpec | None = None, n_mels: int = N_MELS,
            fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """Log mel-band energies (natural log, floored at 1e-10): ``(n_frames, n_mels)``.

    Examples
    --------
    >>> log_mel(np.zeros(8000), 8000).shape
    (101, 40)
    """
    spec = spec or FrameSpec(sr)
    S = power_spectrogram(y, spec)
    return np.log(np.maximum(S @ mel_filterbank(sr, spec.n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax), 1e-10))


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix: ``x @ M`` is ``scipy.fft.dct(x, norm="ortho")[:n_out]``."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    M = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    M[:, 0] /= np.sqrt(2.0)
    return M


def speech_mfcc(y: np.ndarray, sr: int, *, n_mfcc: int = 13, spec: FrameSpec | None = None,
                n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """MFCCs of speech, time first: ``(n_frames, n_mfcc)``; coefficient 0 is the (scaled) log energy.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono audio.
    sr : int > 0
        Sampling rate in Hz.
    n_mfcc : int > 0
        Number of coefficients (at most ``n_mels``).
    spec : FrameSpec or None
        Window and hop; default 25 ms every 10 ms.
    n_mels, fmin, fmax
        Mel filterbank: bands, lowest and highest frequency in Hz (``fmax`` capped at ``sr / 2``).
        Give two recordings at different rates the same ``fmax`` to make their frames comparable.

    Returns
    -------
    M : np.ndarray, shape=(1 + n_samples // spec.hop_length, n_mfcc), float64

    Examples
    --------
    >>> y = np.random.default_rng(0).standard_normal(16000)
    >>> speech_mfcc(y, 16000).shape
    (101, 13)
    """
    check_int(n_mfcc, "n_mfcc", 1, n_mels)
    return log_mel(y, sr, spec=spec, n_mels=n_mels, fmin=fmin, fmax=fmax) @ _dct_matrix(n_mels, n_mfcc)


def deltas(M: np.ndarray, width: int = 2) -> np.ndarray:
    """Regression deltas over ``±width`` frames (edges repeated), same shape as ``M``.

    ``d[t] = sum_k k (M[t + k] - M[t - k]) / (2 sum_k k^2)``, the HTK formula.

    Examples
    --------
    >>> deltas(np.arange(6.0)[:, None]).ravel()
    array([0.5, 0.8, 1. , 1. , 0.8, 0.5])
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ValueError(f"M must be 2-D (n_frames, n_features), got shape {M.shape}")
    width = check_int(width, "width", 1)
    padded = np.pad(M, ((width, width), (0, 0)), mode="edge")
    n = len(M)
    out = np.zeros_like(M)
    for k in range(1, width + 1):
        out += k * (padded[width + k: width + k + n] - padded[width - k: width - k + n])
    return out / (2 * sum(k * k for k in range(1, width + 1)))
