"""Where a recording holds speech: an energy detector with hysteresis and a noise floor of its own.

:func:`detect_speech` marks each 10 ms frame as speech or not.  The level of
each frame is its energy in the speech band (100–8000 Hz, capped at the Nyquist frequency) in dB; the noise
floor is a low percentile of those levels and the speech level a high one, so
the detector adapts to the recording's gain and background noise.  Frames
louder than a *high* threshold seed speech regions, which grow over their
neighbours while they stay above a *low* threshold (hysteresis: weak
consonants at word edges stay attached to their vowels); then pauses shorter
than ``min_pause`` are closed and bursts shorter than ``min_speech`` dropped.

Loud frames are not speech when the spectrum around them is flat for a
third of a second (broadband noise: hiss, rain, applause); music is tonal
like speech and is left to the aligner, which can leave a head or tail of
the recording unmatched.

Forced alignment (:func:`mmalign.apps.forced_alignment.align_text`) uses it so
that the first word starts where speech starts, the last ends where it ends
and long pauses become gaps between words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils.validation import check_float
from .audio import _check_signal, _check_sr
from .speech_frames import FrameSpec, power_spectrogram

__all__ = ["SpeechActivity", "detect_speech", "band_energy_db", "spectral_flatness"]

SPEECH_BAND = (100.0, 8000.0)   # fricatives ("s", "f") carry their energy above 4 kHz


@dataclass(frozen=True)
class SpeechActivity:
    """Speech frames of a recording.

    Attributes
    ----------
    mask : np.ndarray, shape=(n_frames,), bool
        True where frame ``i`` (centred on ``i / frame_rate`` seconds) is speech.
    frame_rate : float
        Frames per second.
    level_db : np.ndarray, shape=(n_frames,)
        Speech-band energy of each frame in dB relative to the loudest frame.
    duration : float
        Length of the recording in seconds.
    dynamic_range_db : float
        Speech level (99th percentile of ``level_db``) above the noise floor
        (10th percentile): about 40 dB and more in a quiet room, under 20 dB
        in noise or reverberation, where the pauses found are less reliable.
    """

    mask: np.ndarray
    frame_rate: float
    level_db: np.ndarray
    duration: float
    dynamic_range_db: float = float("nan")

    @property
    def intervals(self) -> list[tuple[float, float]]:
        """Speech regions as ``(start, end)`` in seconds, in order.

        From the first to the last speech frame, ± half a hop: a frame counts as
        speech once its 25 ms window reaches into the sound, so edges can lead
        the sound by up to half a window.
        """
        edges = np.flatnonzero(np.diff(np.concatenate([[0], self.mask.astype(np.int8), [0]])))
        half = 0.5 / self.frame_rate
        return [(max(0.0, a / self.frame_rate - half), min(self.duration, (b - 1) / self.frame_rate + half))
                for a, b in zip(edges[::2], edges[1::2])]

    @property
    def onset(self) -> float | None:
        """Start of the first speech region in seconds; None if there is no speech."""
        spans = self.intervals
        return spans[0][0] if spans else None

    @property
    def offset(self) -> float | None:
        """End of the last speech region in seconds; None if there is no speech."""
        spans = self.intervals
        return spans[-1][1] if spans else None

    def pauses(self, min_duration: float = 0.0) -> list[tuple[float, float]]:
        """Silences between speech regions (not before the first or after the last), ``(start, end)`` seconds."""
        spans = self.intervals
        return [(a[1], b[0]) for a, b in zip(spans, spans[1:]) if b[0] - a[1] >= min_duration]


def band_energy_db(S: np.ndarray, sr: int, n_fft: int, band: tuple[float, float] = SPEECH_BAND) -> np.ndarray:
    """Energy of each frame of a power spectrogram ``S`` (time first) inside ``band`` Hz, in dB."""
    freqs = np.arange(S.shape[1]) * sr / n_fft
    inside = (freqs >= band[0]) & (freqs <= band[1])
    return 10.0 * np.log10(S[:, inside].sum(axis=1) + 1e-12)


def spectral_flatness(S: np.ndarray, sr: int, n_fft: int, band: tuple[float, float] = SPEECH_BAND) -> np.ndarray:
    """Geometric over arithmetic mean of each frame's power spectrum inside ``band`` Hz: 0 tonal, 1 white."""
    freqs = np.arange(S.shape[1]) * sr / n_fft
    P = S[:, (freqs >= band[0]) & (freqs <= band[1])] + 1e-12
    return np.exp(np.log(P).mean(axis=1)) / P.mean(axis=1)


def _running_median(values: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(values, (half, half), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    return np.median(windows, axis=1)


def detect_speech(
    y: np.ndarray,
    sr: int,
    *,
    spec: FrameSpec | None = None,
    high_db: float = 0.35,
    low_db: float = 0.15,
    min_speech: float = 0.05,
    min_pause: float = 0.15,
    max_flatness: float = 0.45,
) -> SpeechActivity:
    """Mark the frames of ``y`` that hold speech.

    Parameters
    ----------
    y : np.ndarray, shape=(n_samples,), floating
        Mono recording.
    sr : int > 0
        Sampling rate in Hz.
    spec : FrameSpec or None
        Framing; default 25 ms windows every 10 ms.
    high_db, low_db : float in (0, 1)
        The seed and growth thresholds, as fractions of the way from the noise
        floor (10th percentile of frame levels) to the speech level (99th
        percentile); at least 6 and 3 dB above the floor.
    min_speech : float >= 0
        Speech regions shorter than this (seconds) are dropped (clicks).
    min_pause : float >= 0
        Silences between speech regions shorter than this (seconds) are
        closed: they are the gaps inside and between words of fluent speech.
    max_flatness : float in (0, 1]
        Frames whose spectral flatness (geometric over arithmetic mean of the
        power spectrum in the speech band), as a running median over 0.3 s, is
        above this are not speech, however loud: broadband noise (hiss, rain,
        applause) has a flatness of 0.5-0.6, running speech under 0.35 because
        voiced sounds dominate any 0.3 s of it (fricatives alone reach 0.4-0.5).
        1 turns the test off.

    Returns
    -------
    activity : SpeechActivity
        Frame mask, ``intervals``, ``onset`` / ``offset`` and ``pauses()``.

    Examples
    --------
    >>> sr = 16000
    >>> t = np.arange(sr) / sr
    >>> y = np.where((t > 0.3) & (t < 0.7), np.sin(2 * np.pi * 220 * t), 0.0)
    >>> y = y + 1e-3 * np.random.default_rng(0).standard_normal(sr)
    >>> act = detect_speech(y, sr)
    >>> round(float(act.onset), 2), round(float(act.offset), 2)      # to the 10 ms frame, edges
    (0.28, 0.71)
    """
    y = _check_signal(y)
    _check_sr(sr)
    high_db = check_float(high_db, "high_db", 0.0, 1.0, low_open=True)
    low_db = check_float(low_db, "low_db", 0.0, 1.0, low_open=True)
    if low_db > high_db:
        raise ValueError(f"low_db must not exceed high_db, got {low_db!r} > {high_db!r}")
    min_speech = check_float(min_speech, "min_speech", 0.0)
    min_pause = check_float(min_pause, "min_pause", 0.0)
    max_flatness = check_float(max_flatness, "max_flatness", 0.0, 1.0, low_open=True)
    spec = spec or FrameSpec(sr)
    S = power_spectrogram(y, spec)
    level = band_energy_db(S, sr, spec.n_fft)
    level = level - level.max()
    floor, peak = np.percentile(level, 10), np.percentile(level, 99)
    span = peak - floor
    high = floor + max(6.0, high_db * span)
    low = floor + max(3.0, low_db * span)
    rate = spec.frame_rate
    flat = _running_median(spectral_flatness(S, sr, spec.n_fft), int(round(0.15 * rate)))
    voiced_enough = flat <= max_flatness
    mask = _hysteresis((level >= high) & voiced_enough, (level >= low) & voiced_enough)
    mask = _close_gaps(mask, int(round(min_pause * rate)))
    mask = _drop_short(mask, int(round(min_speech * rate)))
    return SpeechActivity(mask, rate, level, len(y) / sr, float(span))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return edges[::2], edges[1::2]


def _hysteresis(seed: np.ndarray, grow: np.ndarray) -> np.ndarray:
    """Runs of ``grow`` that contain at least one ``seed`` frame."""
    out = np.zeros_like(grow)
    for a, b in zip(*_runs(grow)):
        if seed[a:b].any():
            out[a:b] = True
    return out


def _close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    out = mask.copy()
    starts, ends = _runs(mask)
    for end, start in zip(ends[:-1], starts[1:]):
        if start - end < max_gap:
            out[end:start] = True
    return out


def _drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for a, b in zip(*_runs(mask)):
        if b - a < min_len:
            out[a:b] = False
    return out
