"""Score-to-audio alignment (mmalign.apps.sync.score) and ``mmalign score``."""

import csv
import importlib.util
import os

import numpy as np
import pytest

pretty_midi = pytest.importorskip("pretty_midi", reason="score alignment needs pretty_midi (test extra)")

from mmalign.apps.sync import align_score, load_score, score_features  # noqa: E402
from mmalign.cli import main  # noqa: E402

SR = 22050
# a four-bar tune: (pitch, beat, beats) at 120 bpm (0.5 s a beat), with a bass line
TUNE = [(67, 0, 1), (69, 1, 1), (71, 2, 2), (72, 4, 1), (71, 5, 1), (69, 6, 2), (67, 8, 1), (64, 9, 1),
        (62, 10, 2), (60, 12, 4)]
BASS = [(48, 0, 4), (53, 4, 4), (55, 8, 4), (48, 12, 4)]


def score_midi():
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for name, line in (("melody", TUNE), ("bass", BASS)):
        inst = pretty_midi.Instrument(program=0, name=name)
        inst.notes = [pretty_midi.Note(velocity=90, pitch=p, start=0.5 * b, end=0.5 * (b + d)) for p, b, d in line]
        midi.instruments.append(inst)
    return midi


def performance(midi, *, lead_in=0.7, depth=0.25, period=5.0):
    """Sine-tone rendering (3 partials, 30 ms attack) under a smooth tempo curve; the true onsets."""
    def curve(s):
        return lead_in + s + depth * period / (2 * np.pi) * np.sin(2 * np.pi * s / period)
    notes = sorted((n.start, n.pitch, n.end) for inst in midi.instruments for n in inst.notes)
    onsets = np.array([curve(s) for s, _, _ in notes])
    offsets = np.array([curve(e) for _, _, e in notes])
    y = np.zeros(int((offsets.max() + 1.0) * SR))
    for (s, p, e), a, b in zip(notes, onsets, offsets):
        t = np.arange(int((b - a) * SR)) / SR
        f = 440.0 * 2 ** ((p - 69) / 12)
        env = np.minimum(1, t / 0.03) * np.exp(-t) * np.minimum(1, (t[-1] - t) / 0.03)
        i = int(a * SR)
        y[i:i + len(t)] += env * sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))
    return (0.3 * y / np.abs(y).max()).astype(np.float32), notes, onsets


def test_align_score_recovers_onsets():
    midi = score_midi()
    audio, notes, onsets = performance(midi)
    res = align_score(midi, audio, SR)
    got = res.notes
    assert list(got.dtype.names) == ["pitch", "score_onset", "score_offset", "audio_onset", "audio_offset",
                                     "velocity", "instrument"]
    assert len(got) == len(notes) and set(got["instrument"]) == {"melody", "bass"}
    order = np.lexsort((got["pitch"], got["score_onset"]))
    err = np.abs(got["audio_onset"][order] - onsets)
    assert np.median(err) < 0.05 and err.max() < 0.15
    assert np.all(got["audio_offset"] > got["audio_onset"] - 1e-9)
    # the re-timed MIDI has the aligned times
    retimed = res.to_pretty_midi()
    starts = sorted(n.start for inst in retimed.instruments for n in inst.notes)
    np.testing.assert_allclose(starts, np.sort(got["audio_onset"]), atol=1e-6)


def test_score_features_shape_and_silence():
    notes = load_score(score_midi())
    F = score_features(notes, frame_rate=50.0)
    assert F.shape == (int(np.ceil(8.0 * 50)) + 1, 24) and F.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(F[:, :12], axis=1), 1.0, atol=1e-5)
    assert int(np.argmax(F[0, 12:])) in (0, 7)            # C (bass) or G (melody) starts at 0
    with pytest.raises(ValueError, match="frame_rate"):
        score_features(notes, frame_rate=0.0)


def test_load_score_errors(tmp_path):
    with pytest.raises(ValueError, match="MIDI or MusicXML"):
        load_score(str(tmp_path / "x.txt"))
    with pytest.raises(FileNotFoundError, match="score file not found"):
        load_score(str(tmp_path / "missing.mid"))
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="cannot read the MIDI file"):
        load_score(str(bad))
    with pytest.raises(ValueError, match="no notes"):
        load_score(pretty_midi.PrettyMIDI())
    with pytest.raises(ValueError, match="onset_weight"):
        align_score(score_midi(), np.zeros(SR, np.float32), SR, onset_weight=-1.0)


@pytest.mark.skipif(importlib.util.find_spec("music21") is None, reason="MusicXML needs music21")
def test_musicxml_score(tmp_path):
    import music21

    s = music21.stream.Stream([music21.tempo.MetronomeMark(number=120)] +
                              [music21.note.Note(p, quarterLength=1.0) for p in ("C4", "E4", "G4", "C5")])
    path = str(tmp_path / "s.musicxml")
    s.write("musicxml", fp=path)
    notes = load_score(path)
    assert notes["pitch"].tolist() == [60, 64, 67, 72]
    np.testing.assert_allclose(notes["score_onset"], [0.0, 0.5, 1.0, 1.5])


def _write_inputs(tmp_path):
    import soundfile as sf

    midi = score_midi()
    audio, _, _ = performance(midi)
    mid, wav = str(tmp_path / "tune.mid"), str(tmp_path / "take.wav")
    midi.write(mid)
    sf.write(wav, audio, SR)
    return mid, wav


def test_cli_score_writes_outputs_and_refuses_overwrite(tmp_path, capsys):
    mid, wav = _write_inputs(tmp_path)
    out = str(tmp_path / "out")
    assert main(["score", mid, wav, "--out", out]) == 0
    assert sorted(os.listdir(out)) == ["aligned.mid", "alignment.png", "notes.csv"]
    with open(os.path.join(out, "notes.csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(TUNE) + len(BASS)
    assert list(rows[0]) == ["pitch", "score_onset", "score_offset", "audio_onset", "audio_offset", "velocity",
                             "instrument"]
    assert float(rows[0]["audio_onset"]) == pytest.approx(0.7, abs=0.06)
    assert len(pretty_midi.PrettyMIDI(os.path.join(out, "aligned.mid")).instruments) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["score", mid, wav, "--out", out])
    assert exc.value.code == 2 and "--force" in capsys.readouterr().err
    assert main(["score", mid, wav, "--out", out, "--force", "--no-plot"]) == 0


@pytest.mark.parametrize("case, message", [
    ("missing_score", "score file not found"),
    ("missing_audio", "audio file not found"),
    ("text_score", "MIDI or MusicXML"),
    ("out_is_file", "--out must be a folder"),
    ("bad_midi", "cannot read the MIDI file"),
])
def test_cli_score_bad_input(tmp_path, capsys, case, message):
    mid, wav = _write_inputs(tmp_path)
    out = str(tmp_path / "out")
    args = {"missing_score": [str(tmp_path / "nope.mid"), wav, "--out", out],
            "missing_audio": [mid, str(tmp_path / "nope.wav"), "--out", out],
            "text_score": [wav, wav, "--out", out],
            "out_is_file": [mid, wav, "--out", wav],
            "bad_midi": [str(tmp_path / "bad.mid"), wav, "--out", out]}[case]
    (tmp_path / "bad.mid").write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exc:
        main(["score", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "notes.csv"))


def test_cli_score_help(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    for phrase in ("notes.csv", "aligned.mid", "alignment.png", "--force", "MusicXML"):
        assert phrase in text
