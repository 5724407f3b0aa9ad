"""Bach chorales rendered with real instrument samples under known tempo curves.

Scores come from music21's bundled corpus (no download); each is played
under a smooth, monotone tempo curve and rendered by the FluidSynth
synthesiser with the FluidR3 General MIDI sound font (Debian packages
``fluidsynth`` and ``fluid-soundfont-gm``).  The curve maps every note's score
time to its performance time, so the onset of every note in the recording is
known exactly: the ground truth for music synchronisation across instruments
(piano against strings or organ) and for score-to-audio alignment.

Conventions
-----------
*Score time* is seconds at the nominal tempo (``bpm`` quarter notes per
minute).  The tempo curve ``T(s) = s + depth * P / (2 pi) * (sin(2 pi s / P +
phi) - sin(phi))``, with period ``P`` and phase ``phi`` drawn from the seed,
is the performance time of score time ``s``; its slope ``1 + depth *
cos(...)`` stays within ``1 +- depth`` (default ``depth`` 0.2: the local
tempo varies smoothly by up to 20 % either way).  The recording starts with
``lead_in`` seconds of silence.

>>> piece = render_chorale(0, program=48, seed=1)              # doctest: +SKIP
>>> piece.audio.shape, piece.notes["onset"][:3]               # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

__all__ = ["ChoraleScore", "RenderedPiece", "GM_PROGRAMS", "SOUND_FONT", "chorale_score",
           "chorale_names", "tempo_curve", "render_notes", "render_chorale", "fluidsynth_available"]

SOUND_FONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# General MIDI programs (0-based) used by the benchmarks, by name.
GM_PROGRAMS = {"piano": 0, "organ": 19, "strings": 48, "choir": 52, "flute": 73, "clarinet": 71,
               "guitar": 24}
_NOTE_FIELDS = ("pitch", "score_onset", "score_offset", "velocity", "part")


@dataclass(frozen=True, eq=False)
class ChoraleScore:
    """The notes of one chorale at a nominal tempo.

    Attributes
    ----------
    name : str
        Corpus file name (e.g. ``"bwv1.6.mxl"``).
    notes : np.ndarray, structured, shape=(n_notes,)
        Fields ``pitch`` (MIDI number), ``score_onset`` and ``score_offset``
        (seconds at ``bpm``), ``velocity`` (1-127), ``part`` (index of the
        voice, 0 = top); sorted by onset, then pitch.
    bpm : float
        Quarter notes per minute.
    part_names : tuple of str
    """

    name: str
    notes: np.ndarray
    bpm: float
    part_names: tuple

    @property
    def duration(self) -> float:
        """Seconds from score time 0 to the last note-off."""
        return float(self.notes["score_offset"].max())

    def to_pretty_midi(self, program: int = 0):
        """The score as a ``pretty_midi.PrettyMIDI`` (one instrument per part, all ``program``)."""
        return _notes_to_midi(self.notes, self.notes["score_onset"], self.notes["score_offset"], program,
                              self.part_names)


@dataclass(frozen=True, eq=False)
class RenderedPiece:
    """A score rendered to audio under a known tempo curve.

    Attributes
    ----------
    audio : np.ndarray, shape=(n_samples,), dtype=float32
        Mono recording, peak-normalised to 0.9.
    sr : int
        Sampling rate in Hz.
    notes : np.ndarray, structured, shape=(n_notes,)
        The score's fields (see :class:`ChoraleScore`) plus ``onset`` and
        ``offset``: when each note starts and ends in ``audio``, seconds.
    program : int
        General MIDI program that played every part.
    score_grid, perf_grid : np.ndarray, shape=(n_grid,)
        The tempo curve tabulated every 10 ms of score time (performance
        time includes the lead-in).
    name : str
    """

    audio: np.ndarray
    sr: int
    notes: np.ndarray
    program: int
    score_grid: np.ndarray
    perf_grid: np.ndarray
    name: str = ""

    def performance_time(self, score_seconds) -> np.ndarray:
        """Performance time (seconds in ``audio``) of score times, by the tempo curve."""
        return np.interp(score_seconds, self.score_grid, self.perf_grid)


def fluidsynth_available(sound_font: str = SOUND_FONT) -> bool:
    """Whether the ``fluidsynth`` program and ``sound_font`` are installed."""
    return shutil.which("fluidsynth") is not None and os.path.exists(sound_font)


def chorale_names(n: int, *, parts: int = 4) -> list[str]:
    """The first ``n`` Bach chorales of music21's corpus with exactly ``parts`` parts.

    Sorted by file name; ``-sc`` variants are skipped.  Needs music21.
    """
    corpus = _music21().corpus
    names = []
    for path in sorted(corpus.getComposer("bach"), key=lambda p: os.path.basename(str(p))):
        base = os.path.basename(str(path))
        if "-sc" in base or not base.startswith("bwv"):
            continue
        if len(corpus.parse(path).parts) == parts:
            names.append(base)
            if len(names) == n:
                break
    if len(names) < n:
        raise ValueError(f"music21's corpus has only {len(names)} Bach chorales with {parts} parts; asked for {n}")
    return names


def chorale_score(name_or_index: str | int, *, bpm: float = 80.0, velocity: int = 80,
                  max_seconds: float | None = None) -> ChoraleScore:
    """The notes of a Bach chorale from music21's corpus.

    Parameters
    ----------
    name_or_index : str or int
        Corpus file name (``"bwv1.6.mxl"``, or ``"bach/bwv1.6"``) or the
        index into :func:`chorale_names` (4-part chorales sorted by name).
    bpm : float > 0
        Nominal tempo in quarter notes per minute.
    velocity : int in [1, 127]
        MIDI velocity of every note.
    max_seconds : float or None
        Keep only the notes starting before this score time (whole: a note that
        starts before it keeps its full length).

    Returns
    -------
    score : ChoraleScore
        Ties merged into single notes; grace notes dropped.
    """
    if not (isinstance(bpm, (int, float)) and 0 < bpm < math.inf):
        raise ValueError(f"bpm must be a positive number, got {bpm!r}")
    if not (isinstance(velocity, (int, np.integer)) and 1 <= velocity <= 127):
        raise ValueError(f"velocity must be an integer in [1, 127], got {velocity!r}")
    m21 = _music21()
    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        if name_or_index < 0:
            raise ValueError(f"name_or_index must be >= 0, got {name_or_index}")
        name = chorale_names(int(name_or_index) + 1)[-1]
    elif isinstance(name_or_index, str):
        name = name_or_index
    else:
        raise ValueError(f"name_or_index must be a corpus file name or an index, got {name_or_index!r}")
    base = os.path.basename(name)
    query = name if "/" in name else f"bach/{base}"
    stream = m21.corpus.parse(query.removesuffix(".mxl")).stripTies()
    quarter = 60.0 / bpm
    rows = []
    names = []
    for k, part in enumerate(stream.parts):
        names.append(part.partName or f"part {k}")
        for element in part.flatten().notes:
            length = float(element.duration.quarterLength)
            if length <= 0:
                continue
            start = float(element.offset) * quarter
            end = start + length * quarter
            for p in element.pitches:
                rows.append((int(p.midi), start, end, int(velocity), k))
    notes = np.array(rows, dtype=[(f, t) for f, t in zip(_NOTE_FIELDS, ("i4", "f8", "f8", "i4", "i4"))])
    if max_seconds is not None:
        notes = notes[notes["score_onset"] < max_seconds]
    notes = np.sort(notes, order=["score_onset", "pitch"])
    return ChoraleScore(name=base, notes=notes, bpm=float(bpm), part_names=tuple(names))


def tempo_curve(score_seconds, *, depth: float = 0.2, period: float = 20.0, phase: float = 0.0) -> np.ndarray:
    """Performance time of score times under a smooth sinusoidal tempo curve.

    ``T(s) = s + depth * period / (2 pi) * (sin(2 pi s / period + phase) - sin(phase))``;
    the slope ``dT/ds = 1 + depth * cos(2 pi s / period + phase)`` lies in
    ``[1 - depth, 1 + depth]``, so ``T`` is strictly increasing for ``depth < 1``.

    Examples
    --------
    >>> tempo_curve([0.0, 5.0, 10.0], depth=0.2, period=20.0).round(3).tolist()
    [0.0, 5.637, 10.0]
    """
    if not 0 <= depth < 1:
        raise ValueError(f"depth must be in [0, 1), got {depth!r}")
    if not 0 < period < math.inf:
        raise ValueError(f"period must be positive, got {period!r}")
    s = np.asarray(score_seconds, dtype=np.float64)
    w = 2 * math.pi / period
    return s + depth / w * (np.sin(w * s + phase) - math.sin(phase))


def render_notes(notes: np.ndarray, onsets, offsets, *, program: int = 0, sr: int = 22050,
                 sound_font: str = SOUND_FONT, tail: float = 1.5, gain: float = 0.5) -> np.ndarray:
    """Render notes with FluidSynth; mono float32 audio peak-normalised to 0.9.

    ``notes`` carries ``pitch`` and ``velocity`` (and optionally ``part``);
    ``onsets`` / ``offsets`` are the times to play them, seconds.  The
    recording lasts until ``tail`` seconds after the last note-off.
    """
    if not fluidsynth_available(sound_font):
        raise RuntimeError(
            "rendering needs the fluidsynth program and a General MIDI sound font at "
            f"{sound_font}: apt-get install -y fluidsynth fluid-soundfont-gm")
    if not (isinstance(program, (int, np.integer)) and 0 <= program <= 127):
        raise ValueError(f"program must be a General MIDI program in [0, 127], got {program!r}")
    import soundfile as sf

    midi = _notes_to_midi(notes, onsets, offsets, program, None)
    with tempfile.TemporaryDirectory(prefix="mmalign-render-") as tmp:
        mid, wav = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.wav")
        midi.write(mid)
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(int(sr)), "-F", wav, "-T", "wav",
               "-O", "float", sound_font, mid]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(wav):
            raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != sr:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, asked for {sr} Hz")
    y = audio.mean(axis=1)
    n = int(round((float(np.max(offsets)) + tail) * sr))
    y = y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))
    peak = float(np.abs(y).max())
    if peak > 0:
        y = y * (0.9 / peak)
    return y.astype(np.float32)


def render_chorale(score: ChoraleScore | str | int, *, program: int = 0, sr: int = 22050, seed: int = 0,
                   depth: float = 0.2, period_range: tuple = (12.0, 30.0), lead_in: float = 0.5,
                   sound_font: str = SOUND_FONT) -> RenderedPiece:
    """One chorale played by one General MIDI instrument under a seeded tempo curve.

    Parameters
    ----------
    score : ChoraleScore, str or int
        A score from :func:`chorale_score`, or what it takes.
    program : int in [0, 127]
        General MIDI program (:data:`GM_PROGRAMS`: piano 0, organ 19, strings 48, ...).
    sr : int
        Sampling rate, Hz.
    seed : int
        Draws the tempo curve's period (uniform in ``period_range`` seconds)
        and phase (uniform in ``[0, 2 pi)``).
    depth : float in [0, 1)
        Largest relative tempo deviation (:func:`tempo_curve`).
    lead_in : float >= 0
        Silence before score time 0, seconds.

    Returns
    -------
    piece : RenderedPiece
        ``notes["onset"]`` is exact: the time FluidSynth was told to start each note.

    Raises
    ------
    RuntimeError
        FluidSynth or the sound font is missing (with the command that installs them).
    """
    if not isinstance(score, ChoraleScore):
        score = chorale_score(score)
    if lead_in < 0:
        raise ValueError(f"lead_in must be >= 0, got {lead_in!r}")
    rng = np.random.default_rng(seed)
    period = float(rng.uniform(*period_range))
    phase = float(rng.uniform(0, 2 * math.pi))
    grid = np.arange(0.0, score.duration + 0.01, 0.01)
    perf = lead_in + tempo_curve(grid, depth=depth, period=period, phase=phase)
    onsets = lead_in + tempo_curve(score.notes["score_onset"], depth=depth, period=period, phase=phase)
    offsets = lead_in + tempo_curve(score.notes["score_offset"], depth=depth, period=period, phase=phase)
    audio = render_notes(score.notes, onsets, offsets, program=program, sr=sr, sound_font=sound_font)
    dtype = score.notes.dtype.descr + [("onset", "f8"), ("offset", "f8")]
    notes = np.empty(len(score.notes), dtype=dtype)
    for f in score.notes.dtype.names:
        notes[f] = score.notes[f]
    notes["onset"], notes["offset"] = onsets, offsets
    return RenderedPiece(audio=audio, sr=int(sr), notes=notes, program=int(program), score_grid=grid,
                         perf_grid=perf, name=score.name)


# --------------------------------------------------------------------------- internals


def _music21():
    try:
        import music21
    except ImportError:
        raise ImportError("the Bach chorales come from music21's corpus: pip install music21") from None
    return music21


def _notes_to_midi(notes, onsets, offsets, program, part_names):
    try:
        import pretty_midi
    except ImportError:
        raise ImportError("MIDI files need pretty_midi: pip install pretty_midi") from None
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    parts = notes["part"] if "part" in (notes.dtype.names or ()) else np.zeros(len(notes), int)
    for k in np.unique(parts):
        name = part_names[k] if part_names is not None and k < len(part_names) else f"part {k}"
        inst = pretty_midi.Instrument(program=int(program), name=str(name))
        for i in np.flatnonzero(parts == k):
            inst.notes.append(pretty_midi.Note(velocity=int(notes["velocity"][i]), pitch=int(notes["pitch"][i]),
                                               start=float(onsets[i]), end=float(offsets[i])))
        midi.instruments.append(inst)
    return midi
