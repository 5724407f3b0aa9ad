"""Synthetic pairs of musical performances with a known alignment.

One random score (a melody over occasional chords, notes from a major scale) is
rendered twice.  Each rendition follows its own smooth, random, time-varying
tempo curve, so the two recordings are non-linearly warped versions of each
other.  Both score-time -> performance-time maps are kept, which gives the exact
correspondence between any instant of rendition A and rendition B.

Conventions
-----------
All times are in seconds.  *Score time* is the time the score would take at the
nominal tempo (tempo factor 1).  A tempo factor ``r > 1`` plays faster, so one
second of score lasts ``1 / r`` seconds of performance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PerformancePair", "synthesize_performances"]

# Seconds of score per beat (120 bpm at tempo factor 1).
_BEAT = 0.5
# Note lengths in beats and how often they occur.
_DURATIONS = np.array([0.5, 1.0, 1.5, 2.0])
_DURATION_P = np.array([0.3, 0.4, 0.15, 0.15])
_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
# Resolution of the stored time maps (seconds of score).
_GRID_STEP = 1e-3


@dataclass(frozen=True, eq=False)
class PerformancePair:
    """Two renditions of one score and the ground-truth map between them.

    Attributes
    ----------
    audio_a, audio_b : np.ndarray, shape=(n_samples,), dtype=float32
        Mono audio of rendition A and B, peak-normalised to 0.9.
    sr : int
        Sampling rate of both signals, in Hz.
    score_times : np.ndarray, shape=(n_notes,)
        Onset of each note in score time (seconds at tempo factor 1).
    onsets_a, onsets_b : np.ndarray, shape=(n_notes,)
        Onset of each note in rendition A and B, in seconds.
    pitches : list of tuple of int
        MIDI pitches sounding at each note (melody first, then chord tones).
    score_grid : np.ndarray, shape=(n_grid,)
        Score times at which the time maps are tabulated (seconds, increasing).
    perf_grid_a, perf_grid_b : np.ndarray, shape=(n_grid,)
        Performance time of each ``score_grid`` point in A and B (strictly
        increasing).  They span the played part of the score: first onset to
        last note-off.
    """

    audio_a: np.ndarray
    audio_b: np.ndarray
    sr: int
    score_times: np.ndarray
    onsets_a: np.ndarray
    onsets_b: np.ndarray
    pitches: list = field(repr=False)
    score_grid: np.ndarray = field(repr=False)
    perf_grid_a: np.ndarray = field(repr=False)
    perf_grid_b: np.ndarray = field(repr=False)

    @property
    def duration_a(self) -> float:
        """Length of ``audio_a`` in seconds."""
        return len(self.audio_a) / self.sr

    @property
    def duration_b(self) -> float:
        """Length of ``audio_b`` in seconds."""
        return len(self.audio_b) / self.sr

    def true_time_b(self, t_a):
        """True time in rendition B of instants ``t_a`` of rendition A.

        Parameters
        ----------
        t_a : float or np.ndarray
            Times in rendition A, in seconds.  Values outside the played span
            are clamped to its ends.

        Returns
        -------
        t_b : float or np.ndarray
            Corresponding times in rendition B, in seconds (same shape).

        Examples
        --------
        >>> pair = synthesize_performances(8, seed=1)
        >>> t_a = pair.onsets_a[3]
        >>> bool(abs(pair.true_time_b(t_a) - pair.onsets_b[3]) < 1e-3)
        True
        """
        return np.interp(t_a, self.perf_grid_a, self.perf_grid_b)

    def true_time_a(self, t_b):
        """True time in rendition A of instants ``t_b`` of rendition B (seconds).

        The inverse of :meth:`true_time_b`; same clamping rule.
        """
        return np.interp(t_b, self.perf_grid_b, self.perf_grid_a)

    def reference_frames(self, hop_length: int) -> np.ndarray:
        """Ground-truth alignment on rendition A's frame grid.

        Frame ``i`` of a signal is the instant ``i * hop_length / sr`` (the
        centre of the analysis window with librosa's ``center=True``).  Only
        frames of A inside the span where both renditions play (first onset to
        last note-off) are returned.

        Parameters
        ----------
        hop_length : int > 0
            Hop between frames, in samples.

        Returns
        -------
        reference : np.ndarray, shape=(K, 2), dtype=float64
            Rows ``(frame_a, frame_b)``: an integer frame of A and the
            fractional frame of B that sounds the same score instant.

        Examples
        --------
        >>> pair = synthesize_performances(8, seed=1)
        >>> ref = pair.reference_frames(512)
        >>> ref.shape[1], bool(np.all(np.diff(ref[:, 1]) > 0))
        (2, True)
        """
        if isinstance(hop_length, bool) or not isinstance(hop_length, (int, np.integer)) or hop_length <= 0:
            raise ValueError(f"hop_length must be a positive integer, got {hop_length!r}")
        frame_rate = self.sr / hop_length
        first = int(np.ceil(self.perf_grid_a[0] * frame_rate))
        last = int(np.floor(self.perf_grid_a[-1] * frame_rate))
        frames_a = np.arange(first, last + 1, dtype=np.float64)
        frames_b = self.true_time_b(frames_a / frame_rate) * frame_rate
        return np.column_stack([frames_a, frames_b])


def synthesize_performances(
    n_notes: int = 48,
    *,
    sr: int = 22050,
    seed: int = 0,
    tempo_range: tuple[float, float] = (0.7, 1.4),
    n_harmonics: int = 6,
    chord_probability: float = 0.3,
    lead_in: tuple[float, float] = (0.2, 0.8),
    noise_level: float = 1e-3,
) -> PerformancePair:
    """Render one random score twice, each time with its own tempo curve.

    The score is ``n_notes`` notes (120 bpm nominal; lengths of 1/2 to 2 beats)
    with pitches from a random major scale; consecutive melody notes differ,
    and a note carries a two-note chord below it with ``chord_probability``.
    Every tone is harmonic (``n_harmonics`` partials, amplitudes ``1/k``) with
    a fast attack and an exponential decay, so onsets are audible and chroma is
    informative.  Each rendition draws its own smooth tempo curve (piecewise
    linear in log-tempo, knots every two beats, values within ``tempo_range``),
    its own note loudnesses, its own lead-in silence and its own noise floor.

    With the defaults one rendition lasts about 30 s.

    Parameters
    ----------
    n_notes : int > 0
        Number of notes (events) in the score.
    sr : int > 0
        Sampling rate in Hz.
    seed : int
        Seed of the random generator; the result is deterministic for a seed.
    tempo_range : (float, float)
        Lowest and highest tempo factor (``> 0``; ``1`` is the nominal tempo,
        ``1.4`` is 40 % faster).
    n_harmonics : int > 0
        Partials per tone.
    chord_probability : float in [0, 1]
        Probability that a note carries a chord.
    lead_in : (float, float)
        Range of the silence before the first note, drawn per rendition, in
        seconds.
    noise_level : float >= 0
        Standard deviation of the white noise added to each rendition.

    Returns
    -------
    pair : PerformancePair
        Both renditions and their ground-truth time maps.

    Raises
    ------
    ValueError
        If an argument is out of range (the message names it).

    Examples
    --------
    >>> pair = synthesize_performances(16, seed=3)
    >>> pair.audio_a.dtype, pair.sr
    (dtype('float32'), 22050)
    >>> ref = pair.reference_frames(hop_length=512)  # (frame in A, frame in B)
    >>> ref.shape[1]
    2
    """
    _check_args(n_notes, sr, tempo_range, n_harmonics, chord_probability, lead_in, noise_level)
    rng = np.random.default_rng(seed)

    # --- score -------------------------------------------------------------
    durations = rng.choice(_DURATIONS, size=n_notes, p=_DURATION_P) * _BEAT
    score_times = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    score_end = float(score_times[-1] + durations[-1])
    tonic = 60 + int(rng.integers(0, 12))
    # Scale degrees over two octaves starting a fifth below the tonic.
    scale = np.concatenate([tonic - 12 + _MAJOR, tonic + _MAJOR, [tonic + 12]])
    scale = scale[scale >= tonic - 5]
    pitches = []
    degree = int(rng.integers(0, len(scale)))
    for _ in range(n_notes):
        # A random walk over the scale; a step of 0 is not allowed so that
        # consecutive notes always differ.
        step = int(rng.choice([-3, -2, -1, 1, 2, 3]))
        degree = int(np.clip(degree + step, 0, len(scale) - 1))
        if pitches and scale[degree] == pitches[-1][0]:
            degree = degree - 1 if degree > 0 else degree + 1
        melody = int(scale[degree])
        notes = [melody]
        if rng.random() < chord_probability:
            notes += [melody - 12, melody - 8 if rng.random() < 0.5 else melody - 9]
        pitches.append(tuple(notes))

    # --- one time map per rendition -------------------------------------------
    score_grid = np.arange(0.0, score_end + _GRID_STEP, _GRID_STEP)
    score_grid[-1] = min(score_grid[-1], score_end)
    renditions = []
    for _ in range(2):
        start = rng.uniform(*lead_in)
        perf_grid = start + _performance_times(score_grid, score_end, tempo_range, rng)
        renditions.append(perf_grid)

    # --- audio -------------------------------------------------------------
    audios, onsets = [], []
    for perf_grid in renditions:
        note_on = np.interp(score_times, score_grid, perf_grid)
        note_off = np.interp(score_times + durations, score_grid, perf_grid)
        loudness = rng.uniform(0.6, 1.0, size=n_notes)
        total = perf_grid[-1] + 0.5  # room for the last release
        audio = np.zeros(int(np.ceil(total * sr)), dtype=np.float64)
        for on, off, notes, gain in zip(note_on, note_off, pitches, loudness):
            _add_note(audio, sr, on, off, notes, gain, n_harmonics)
        audio /= np.max(np.abs(audio))
        audio = 0.9 * audio + noise_level * rng.standard_normal(audio.shape)
        audios.append(np.clip(audio, -1.0, 1.0).astype(np.float32))
        onsets.append(note_on)

    return PerformancePair(
        audio_a=audios[0],
        audio_b=audios[1],
        sr=sr,
        score_times=score_times,
        onsets_a=onsets[0],
        onsets_b=onsets[1],
        pitches=pitches,
        score_grid=score_grid,
        perf_grid_a=renditions[0],
        perf_grid_b=renditions[1],
    )


def _check_args(n_notes, sr, tempo_range, n_harmonics, chord_probability, lead_in, noise_level):
    def positive_int(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")

    positive_int("n_notes", n_notes)
    positive_int("sr", sr)
    positive_int("n_harmonics", n_harmonics)
    try:
        low, high = (float(v) for v in tempo_range)
    except (TypeError, ValueError):
        raise ValueError(f"tempo_range must be a pair of numbers, got {tempo_range!r}") from None
    if not (0 < low <= high < np.inf):
        raise ValueError(f"tempo_range must satisfy 0 < low <= high, got {tempo_range!r}")
    try:
        lo, hi = (float(v) for v in lead_in)
    except (TypeError, ValueError):
        raise ValueError(f"lead_in must be a pair of numbers, got {lead_in!r}") from None
    if not (0 <= lo <= hi < np.inf):
        raise ValueError(f"lead_in must satisfy 0 <= low <= high, got {lead_in!r}")
    if not 0 <= chord_probability <= 1:
        raise ValueError(f"chord_probability must be in [0, 1], got {chord_probability!r}")
    if not 0 <= noise_level < np.inf:
        raise ValueError(f"noise_level must be >= 0, got {noise_level!r}")


def _performance_times(score_grid, score_end, tempo_range, rng):
    """Performance time (from 0) of each score time under a random tempo curve."""
    log_low, log_high = np.log(tempo_range[0]), np.log(tempo_range[1])
    knots = np.arange(0.0, score_end + 2 * _BEAT, 2 * _BEAT)
    # A bounded random walk in log-tempo keeps the curve smooth but wandering.
    log_tempo = np.empty(len(knots))
    log_tempo[0] = rng.uniform(log_low, log_high)
    spread = log_high - log_low
    for k in range(1, len(knots)):
        proposal = log_tempo[k - 1] + rng.normal(0.0, 0.35 * spread)
        # Reflect at the bounds.
        if proposal > log_high:
            proposal = 2 * log_high - proposal
        if proposal < log_low:
            proposal = 2 * log_low - proposal
        log_tempo[k] = np.clip(proposal, log_low, log_high)
    tempo = np.exp(np.interp(score_grid, knots, log_tempo))
    # d(performance)/d(score) = 1 / tempo; integrate with the trapezoid rule.
    rate = 1.0 / tempo
    steps = np.diff(score_grid) * 0.5 * (rate[1:] + rate[:-1])
    return np.concatenate([[0.0], np.cumsum(steps)])


def _add_note(audio, sr, onset, offset, midi_pitches, gain, n_harmonics):
    """Add one (possibly chordal) harmonic tone to ``audio`` in place."""
    attack, release = 0.01, 0.05
    start = int(round(onset * sr))
    stop = min(int(round((offset + release) * sr)), len(audio))
    if stop <= start:
        return
    t = np.arange(stop - start) / sr
    hold = offset - onset
    # Fast attack, exponential decay while held, linear release after note-off.
    envelope = np.minimum(t / attack, 1.0) * np.exp(-2.0 * t)
    envelope *= np.clip(1.0 - (t - hold) / release, 0.0, 1.0)
    tone = np.zeros_like(t)
    for midi in midi_pitches:
        f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
        for k in range(1, n_harmonics + 1):
            if k * f0 < 0.45 * sr:
                tone += np.sin(2 * np.pi * k * f0 * t) / k
    audio[start:stop] += gain * envelope * tone / len(midi_pitches) ** 0.5
