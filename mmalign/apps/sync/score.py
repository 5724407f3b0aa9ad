"""Score-to-audio alignment: where each note of a symbolic score sounds in a recording.

>>> res = align_score("chorale.mid", audio, sr=22050)          # doctest: +SKIP
>>> res.notes["audio_onset"][:4]                                # doctest: +SKIP

The score's features are computed from its notes, not synthesised: chroma
(each sounding note adds to its pitch class while it lasts) and chroma
onsets (each note start adds to its pitch class at its frame), turned into
the same ``"chroma+dlnco"`` features as the audio's
(:mod:`mmalign.apps.sync.features`: unit chroma, silence flat; DLNCO with
the same normalisation and decay) -- as synctoolbox derives its score
features from note lists.  DTW (exact, or multiscale for long pieces)
aligns score frames (side x) with audio frames (side y); each note's onset
and offset are mapped through the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .core import METHODS, align_features
from .features import _dlnco, _unit_chroma, feature_hop, sync_features

if TYPE_CHECKING:
    from ...alignment import Alignment

__all__ = ["ScoreAlignment", "NOTE_COLUMNS", "load_score", "score_features", "align_score", "write_score_outputs"]

NOTE_COLUMNS = ("pitch", "score_onset", "score_offset", "audio_onset", "audio_offset", "velocity", "instrument")
SCORE_SUFFIXES = (".mid", ".midi", ".xml", ".musicxml", ".mxl")
# partials 1-6 of a note, (semitones above it, weight 0.6 ** (k - 1)): what a chroma of a real
# instrument's note holds besides its pitch class (octaves, fifths, a major third)
HARMONICS = tuple((s, 0.6 ** k) for k, s in enumerate((0, 12, 19, 24, 28, 31)))


@dataclass
class ScoreAlignment:
    """What :func:`align_score` found.

    Attributes
    ----------
    alignment : mmalign.Alignment
        Score frames (side x) to audio frames (side y), ``frame_rate`` set.
    notes : np.ndarray, structured, shape=(n_notes,)
        Fields :data:`NOTE_COLUMNS`; times in seconds (score time as the
        score file gives it), ``instrument`` the track's name or program.
    seconds : dict
        Wall time per stage.
    """

    alignment: Alignment
    notes: np.ndarray
    seconds: dict = field(default_factory=dict)

    def to_pretty_midi(self):
        """The score re-timed onto the recording: every note at its aligned onset and offset."""
        import pretty_midi

        midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        for name in dict.fromkeys(self.notes["instrument"].tolist()):
            sel = self.notes[self.notes["instrument"] == name]
            inst = pretty_midi.Instrument(program=0, name=str(name))
            for n in sel:
                end = max(float(n["audio_offset"]), float(n["audio_onset"]) + 1e-3)
                inst.notes.append(pretty_midi.Note(velocity=int(n["velocity"]), pitch=int(n["pitch"]),
                                                   start=float(n["audio_onset"]), end=end))
            midi.instruments.append(inst)
        return midi


def load_score(score) -> np.ndarray:
    """The notes of a score as a structured array (fields ``pitch``, ``score_onset``,
    ``score_offset``, ``velocity``, ``instrument``), sorted by onset.

    ``score`` is a path to a MIDI file (``.mid`` / ``.midi``, read by
    pretty_midi), a MusicXML file (``.xml`` / ``.musicxml`` / ``.mxl``, read by
    music21 at its first tempo mark, else 120 quarter notes per minute), or a
    ``pretty_midi.PrettyMIDI``.  Drum tracks are left out.
    """
    if isinstance(score, (str, os.PathLike)):
        path = os.fspath(score)
        suffix = os.path.splitext(path)[1].lower()
        if suffix not in SCORE_SUFFIXES:
            raise ValueError(f"score must be a MIDI or MusicXML file ({', '.join(SCORE_SUFFIXES)}), got {path}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"score file not found: {path}")
        if suffix in (".mid", ".midi"):
            import pretty_midi

            try:
                score = pretty_midi.PrettyMIDI(path)
            except Exception as err:  # noqa: BLE001 - mido / pretty_midi raise many kinds
                raise ValueError(f"cannot read the MIDI file {path}: {err}") from None
        else:
            return _musicxml_notes(path)
    rows = []
    for k, inst in enumerate(getattr(score, "instruments", None) or []):
        if inst.is_drum:
            continue
        name = inst.name.strip() or f"track {k} (program {inst.program})"
        rows += [(n.pitch, n.start, n.end, n.velocity, name) for n in inst.notes if n.end > n.start]
    if not hasattr(score, "instruments"):
        raise ValueError(f"score must be a path or a pretty_midi.PrettyMIDI, got {type(score).__name__}")
    return _as_notes(rows, "the score")


def score_features(notes: np.ndarray, *, frame_rate: float, n_frames: int | None = None) -> np.ndarray:
    """``"chroma+dlnco"`` features of a note list, ``(n_frames, 24)`` float32.

    Chroma: each note adds its velocity / 127 to its pitch class over the
    frames it sounds in; onsets: each note adds ``log(1 + velocity)`` to its
    pitch class at its onset frame; then the same normalisation as for audio
    (:func:`mmalign.apps.sync.features` ``"chroma+dlnco"``).  Frame ``i`` is
    the instant ``i / frame_rate`` of score time.  Frames where no note
    sounds have the flat chroma ``1 / sqrt(12)`` (as silent audio).
    """
    from .features import DLNCO_WEIGHT

    if not 0 < frame_rate < np.inf:
        raise ValueError(f"frame_rate must be positive, got {frame_rate!r}")
    end = float(notes["score_offset"].max()) if len(notes) else 0.0
    if n_frames is None and not len(notes):
        raise ValueError("notes is empty; pass n_frames for silent features")
    n = int(n_frames) if n_frames is not None else int(np.ceil(end * frame_rate)) + 1
    C = np.zeros((n, 12))
    CO = np.zeros((n, 12))
    start = np.clip(np.round(notes["score_onset"] * frame_rate).astype(int), 0, n - 1)
    stop = np.clip(np.round(notes["score_offset"] * frame_rate).astype(int), 1, n)
    pc = notes["pitch"] % 12
    for s, e, p, v in zip(start, stop, pc, notes["velocity"]):
        for shift, weight in HARMONICS:
            C[s:max(e, s + 1), (p + shift) % 12] += weight * v / 127.0
        CO[s, p] += np.log1p(v)
    return np.concatenate([_unit_chroma(C), _dlnco(CO, frame_rate) * DLNCO_WEIGHT], axis=1).astype(np.float32)


def align_score(score, audio: np.ndarray, sr: int, *, onset_weight: float = 1.0, feature_rate: float = 50.0,
                method: str = "auto", multiscale_radius: int = 16) -> ScoreAlignment:
    """Align a symbolic score with a recording of it.

    Parameters
    ----------
    score : str, os.PathLike or pretty_midi.PrettyMIDI
        MIDI or MusicXML file (MusicXML needs music21), or a PrettyMIDI object
        (see :func:`load_score`).
    audio : np.ndarray, shape=(n_samples,), floating
        Mono recording.
    sr : int > 0
        Its sampling rate, Hz.
    onset_weight : float >= 0
        Weight of the DLNCO half of both sides' features (audio-to-audio
        synchronisation uses 4).  Note onsets written from a score are
        sharper than those heard in a recording of bowed or blown
        instruments; weight 1 was stable on rendered chorales where 2 and 4
        sometimes lost the thread (0: chroma alone lags slow attacks).
    feature_rate, method, multiscale_radius
        As in :func:`mmalign.apps.sync.synchronize`.

    Returns
    -------
    result : ScoreAlignment
        ``result.notes`` has every note's ``audio_onset`` / ``audio_offset``
        (seconds in ``audio``), mapped through the path: the audio times of a
        score instant's frames averaged, linearly interpolated between frames.

    Raises
    ------
    ValueError
        An unreadable or empty score, bad audio, unknown ``method``.
    """
    import time

    from .features import DLNCO_WEIGHT

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if isinstance(onset_weight, bool) or not isinstance(onset_weight, (int, float)) or not 0 <= onset_weight < np.inf:
        raise ValueError(f"onset_weight must be a number >= 0, got {onset_weight!r}")
    notes = load_score(score)
    hop = feature_hop(sr, feature_rate, "chroma+dlnco")
    rate = sr / hop
    seconds = {}
    t0 = time.perf_counter()
    fa = sync_features(audio, sr, features="chroma+dlnco", hop_length=hop)
    # one frame of silence before and after the score: it absorbs the recording's
    # lead-in and reverberation tail (its chroma is the flat vector, as audio silence)
    shifted = notes.copy()
    shifted["score_onset"] += 1 / rate
    shifted["score_offset"] += 1 / rate
    fs = score_features(shifted, frame_rate=rate)
    fs = np.concatenate([fs, score_features(shifted[:0], frame_rate=rate, n_frames=1)])
    scale = np.float32(onset_weight / DLNCO_WEIGHT)
    fa[:, 12:] *= scale
    fs[:, 12:] *= scale
    seconds["features"] = time.perf_counter() - t0
    alignment = align_features(fs, fa, frame_rate=rate, method=method, multiscale_radius=multiscale_radius)
    seconds["dtw"] = alignment.extras["seconds"]["dtw"]
    alignment.extras.update(features="chroma+dlnco", hop_length=hop, sr=int(sr), seconds=dict(seconds))
    t = alignment.times()
    out = np.empty(len(notes), dtype=[("pitch", "i4"), ("score_onset", "f8"), ("score_offset", "f8"),
                                       ("audio_onset", "f8"), ("audio_offset", "f8"), ("velocity", "i4"),
                                       ("instrument", notes.dtype["instrument"])])
    for f in ("pitch", "score_onset", "score_offset", "velocity", "instrument"):
        out[f] = notes[f]
    out["audio_onset"] = map_times(t, shifted["score_onset"])
    out["audio_offset"] = map_times(t, shifted["score_offset"])
    return ScoreAlignment(alignment=alignment, notes=out, seconds=seconds)


def map_times(path_seconds: np.ndarray, t) -> np.ndarray:
    """Times on side y of times ``t`` on side x through a ``(K, 2)`` path in seconds.

    The y times of each x time on the path are averaged, then linearly
    interpolated (clamped at the ends).

    Examples
    --------
    >>> map_times(np.array([[0.0, 0.0], [1.0, 2.0], [1.0, 3.0], [2.0, 4.0]]), [0.5, 1.0, 2.0]).tolist()
    [1.25, 2.5, 4.0]
    """
    path_seconds = np.asarray(path_seconds, dtype=np.float64)
    xs, inverse = np.unique(path_seconds[:, 0], return_inverse=True)
    ys = np.bincount(inverse, weights=path_seconds[:, 1]) / np.bincount(inverse)
    return np.interp(np.asarray(t, dtype=np.float64), xs, ys)


def write_score_outputs(result: ScoreAlignment, outputs: dict, *, title: str = "") -> None:
    """Write ``notes.csv``, ``aligned.mid`` and ``alignment.png`` to the paths in ``outputs``
    (keys ``"notes"``, ``"midi"``, ``"plot"``), each through a temporary file."""
    import csv

    from ...utils.files import atomic_write

    if "notes" in outputs:
        with atomic_write(outputs["notes"]) as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(NOTE_COLUMNS)
                for n in result.notes:
                    w.writerow([int(n["pitch"]), f"{n['score_onset']:.4f}", f"{n['score_offset']:.4f}",
                                f"{n['audio_onset']:.4f}", f"{n['audio_offset']:.4f}", int(n["velocity"]),
                                str(n["instrument"])])
    if "midi" in outputs:
        with atomic_write(outputs["midi"]) as tmp:
            result.to_pretty_midi().write(tmp)
    if "plot" in outputs:
        from ...plot import save_alignment_plot

        with atomic_write(outputs["plot"]) as tmp:
            save_alignment_plot(result.alignment, tmp, title=title)


# --------------------------------------------------------------------------- internals


def _as_notes(rows, what: str) -> np.ndarray:
    if not rows:
        raise ValueError(f"{what} has no notes")
    width = max(len(str(r[4])) for r in rows)
    notes = np.array(rows, dtype=[("pitch", "i4"), ("score_onset", "f8"), ("score_offset", "f8"),
                                  ("velocity", "i4"), ("instrument", f"U{max(width, 1)}")])
    return np.sort(notes, order=["score_onset", "pitch"], kind="stable")


def _musicxml_notes(path: str) -> np.ndarray:
    try:
        import music21
    except ImportError:
        raise ImportError("MusicXML scores need music21: pip install music21") from None
    try:
        stream = music21.converter.parse(path).stripTies()
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"cannot read the MusicXML file {path}: {err}") from None
    marks = stream.metronomeMarkBoundaries()
    bpm = float(marks[0][2].getQuarterBPM()) if marks else 120.0
    quarter = 60.0 / bpm
    rows = []
    for k, part in enumerate(stream.parts):
        name = part.partName or f"part {k}"
        for el in part.flatten().notes:
            length = float(el.duration.quarterLength)
            if length <= 0:
                continue
            start = float(el.offset) * quarter
            for p in el.pitches:
                rows.append((int(p.midi), start, start + length * quarter, 80, name))
    return _as_notes(rows, f"the score {path}")
