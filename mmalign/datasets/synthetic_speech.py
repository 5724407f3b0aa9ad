"""Speech-like audio from a random phone sequence, with the phone boundaries.

A crude source-filter synthesiser: a glottal pulse train with a falling,
wandering pitch contour drives cascaded formant resonators for vowels and
nasals; band-passed noise makes fricatives; a closure followed by a short
burst makes plosives; words are separated by pauses.  It is not
intelligible, but it has what aligners see in speech: fast spectral change
at phone boundaries, formant structure, pitch, pauses.  No real recording
ships with mmalign (downloads are not allowed), so this stands in for one in
:mod:`mmalign.apps.sync` tests and the ``recipes/audio_sync.py`` recipe.  It needs
nothing beyond numpy and scipy; for speech from text (eSpeak NG, word timings)
see :func:`mmalign.features.speech.synthesize_speech`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpeechLike", "synthesize_speech_like"]

# (F1, F2, F3) in Hz, bandwidths (80, 100, 140) Hz.
_VOWELS = {"a": (730, 1090, 2440), "i": (270, 2290, 3010), "u": (300, 870, 2240),
           "e": (530, 1840, 2480), "o": (570, 840, 2410), "ae": (660, 1720, 2410)}
_NASALS = {"m": (250, 1100, 2300), "n": (250, 1700, 2600)}
_FRICATIVES = {"s": (4000, 7500), "sh": (2000, 4500), "f": (1200, 7000)}   # noise band, Hz
_PLOSIVES = {"p": (500, 2500), "t": (2500, 6000), "k": (1500, 3500)}     # burst band, Hz
_BANDWIDTHS = (80.0, 100.0, 140.0)


@dataclass(frozen=True, eq=False)
class SpeechLike:
    """Speech-like audio and its phone segmentation.

    Attributes
    ----------
    audio : np.ndarray, shape=(n_samples,), dtype=float32
        Mono signal, peak 0.9.
    sr : int
        Sampling rate in Hz.
    phones : list of str
        Phone labels in order (``"_"`` is a pause).
    starts : np.ndarray, shape=(n_phones,)
        Start of each phone in seconds (the end is the next start, or the end
        of the audio).
    """

    audio: np.ndarray
    sr: int
    phones: list = field(repr=False)
    starts: np.ndarray = field(repr=False)

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.audio) / self.sr


def synthesize_speech_like(duration: float = 20.0, *, sr: int = 22050, seed: int = 0,
                      noise_level: float = 1e-3) -> SpeechLike:
    """Render about ``duration`` seconds of speech-like audio.

    Words of 1-3 syllables (consonant-vowel, sometimes a final consonant),
    vowels 70-220 ms, consonants 40-120 ms, pauses of 80-400 ms between
    words; pitch falls from about 190 to 110 Hz over each 2-4 s phrase, with
    a slow random wander.

    Parameters
    ----------
    duration : float > 0
        Approximate length in seconds (the last word is completed).
    sr : int >= 8000
        Sampling rate in Hz.
    seed : int
        Random seed; the result is deterministic for a seed.
    noise_level : float >= 0
        Standard deviation of added white noise.

    Returns
    -------
    speech : SpeechLike

    Examples
    --------
    >>> s = synthesize_speech_like(2.0, sr=16000, seed=1)
    >>> s.audio.dtype, s.sr, len(s.phones) == len(s.starts)
    (dtype('float32'), 16000, True)
    """
    if not 0 < duration < np.inf:
        raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or sr < 8000:
        raise ValueError(f"sr must be an integer >= 8000 (Hz), got {sr!r}")
    if not 0 <= noise_level < np.inf:
        raise ValueError(f"noise_level must be >= 0, got {noise_level!r}")
    rng = np.random.default_rng(seed)
    phones, lengths = _phone_sequence(duration, rng)
    starts = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
    n = int(np.ceil((starts[-1] + lengths[-1]) * sr))
    excitation = _glottal_source(n, sr, rng)
    noise = rng.standard_normal(n)
    audio = np.zeros(n)
    ramp = int(0.008 * sr)
    for phone, start, length in zip(phones, starts, lengths):
        a = int(round(start * sr))
        b = min(n, int(round((start + length) * sr)))
        if b - a < 2 * ramp or phone == "_":
            continue
        pad = int(0.03 * sr)  # filter warm-up taken from the neighbouring source
        lo = max(0, a - pad)
        seg = _render(phone, excitation[lo:b], noise[lo:b], sr, rng)[a - lo:]
        env = np.ones(b - a)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        audio[a:b] += seg * env
    audio /= np.max(np.abs(audio)) + 1e-12
    audio = 0.9 * audio + noise_level * rng.standard_normal(n)
    return SpeechLike(audio=np.clip(audio, -1, 1).astype(np.float32), sr=int(sr), phones=phones,
                      starts=starts)


def _phone_sequence(duration, rng):
    vowels, consonants = list(_VOWELS), list(_NASALS) + list(_FRICATIVES) + list(_PLOSIVES)
    phones, lengths = ["_"], [rng.uniform(0.1, 0.3)]
    while sum(lengths) < duration:
        for _ in range(int(rng.integers(1, 4))):           # syllables in a word
            c = consonants[int(rng.integers(len(consonants)))]
            phones.append(c)
            lengths.append(rng.uniform(0.04, 0.12))
            phones.append(vowels[int(rng.integers(len(vowels)))])
            lengths.append(rng.uniform(0.07, 0.22))
            if rng.random() < 0.3:
                phones.append(consonants[int(rng.integers(len(consonants)))])
                lengths.append(rng.uniform(0.04, 0.12))
        phones.append("_")
        lengths.append(rng.uniform(0.08, 0.4))
    return phones, np.array(lengths)


def _glottal_source(n, sr, rng):
    """Impulse train at a falling, wandering f0, low-passed like a glottal pulse."""
    from scipy.signal import lfilter

    t = np.arange(n) / sr
    f0 = np.empty(n)
    start = 0
    while start < n:   # phrases of 2-4 s with declination
        length = int(rng.uniform(2.0, 4.0) * sr)
        stop = min(n, start + length)
        u = np.linspace(0, 1, stop - start)
        f0[start:stop] = rng.uniform(170, 210) * (1 - 0.4 * u)
        start = stop
    knots = np.arange(0, t[-1] + 0.25, 0.25)
    f0 *= np.exp(np.interp(t, knots, rng.normal(0, 0.06, len(knots))))
    phase = np.cumsum(f0 / sr)
    pulses = np.diff(np.floor(phase), prepend=0.0)
    a = np.exp(-2 * np.pi * 300 / sr)   # roll-off of about -12 dB per octave above 300 Hz
    return lfilter([1 - a], [1, -2 * a, a * a], pulses) * 30


def _resonators(x, formants, sr):
    from scipy.signal import lfilter

    for f, bw in zip(formants, _BANDWIDTHS):
        r = np.exp(-np.pi * bw / sr)
        theta = 2 * np.pi * f / sr
        x = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    return x


def _band(x, band, sr):
    from scipy.signal import butter, sosfilt

    lo, hi = band[0], min(band[1], 0.45 * sr)
    return sosfilt(butter(4, [lo, hi], btype="band", fs=sr, output="sos"), x)


# RMS of each kind of phone relative to a vowel (vowels are the loudest in speech).
_LEVELS = {"vowel": 1.0, "nasal": 0.3, "fricative": 0.12, "burst": 0.5}


def _render(phone, source, noise, sr, rng):
    if phone in _VOWELS:
        return _at_level(_resonators(source, _VOWELS[phone], sr), "vowel")
    if phone in _NASALS:
        return _at_level(_resonators(source, _NASALS[phone], sr), "nasal")
    if phone in _FRICATIVES:
        return _at_level(_band(noise, _FRICATIVES[phone], sr), "fricative")
    out = np.zeros(len(source))            # plosive: closure, then a 15 ms burst
    burst, release = int(0.015 * sr), int(0.01 * sr)
    out[-burst - release:-release] = _at_level(_band(noise, _PLOSIVES[phone], sr)[-burst:], "burst")
    return out


def _at_level(x, kind):
    """``x`` scaled to the RMS of its kind of phone."""
    return x * (_LEVELS[kind] / (np.sqrt(np.mean(x ** 2)) + 1e-12))
