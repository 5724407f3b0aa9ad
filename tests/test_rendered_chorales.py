"""mmalign.datasets.rendered_chorales: chorale scores, tempo curves, FluidSynth renderings."""

import importlib.util

import numpy as np
import pytest

from mmalign.datasets.rendered_chorales import chorale_score, fluidsynth_available, render_chorale, tempo_curve

needs_music21 = pytest.mark.skipif(importlib.util.find_spec("music21") is None,
                                   reason="music21 is not installed (pip install music21)")
needs_fluidsynth = pytest.mark.skipif(
    not fluidsynth_available() or importlib.util.find_spec("pretty_midi") is None,
    reason="rendering needs fluidsynth + fluid-soundfont-gm (apt-get) and pretty_midi (pip)")


def test_tempo_curve_is_monotone_and_bounded():
    s = np.linspace(0, 100, 10001)
    t = tempo_curve(s, depth=0.2, period=17.0, phase=1.0)
    slope = np.diff(t) / np.diff(s)
    assert t[0] == 0.0 and np.all(slope > 0.79) and np.all(slope < 1.21)
    assert slope.min() < 0.81 and slope.max() > 1.19        # the full +-20 % is reached
    with pytest.raises(ValueError, match="depth"):
        tempo_curve(s, depth=1.0)
    with pytest.raises(ValueError, match="period"):
        tempo_curve(s, period=0.0)


@needs_music21
def test_chorale_score_notes():
    score = chorale_score("bwv10.7.mxl", bpm=60.0)
    n = score.notes
    assert len(score.part_names) == 4 and len(n) > 100
    assert np.all(np.diff(n["score_onset"]) >= 0) and np.all(n["score_offset"] > n["score_onset"])
    assert n["pitch"].min() >= 30 and n["pitch"].max() <= 90
    short = chorale_score("bwv10.7.mxl", bpm=60.0, max_seconds=10.0)
    assert short.notes["score_onset"].max() < 10.0 and len(short.notes) < len(n)
    with pytest.raises(ValueError, match="bpm"):
        chorale_score(0, bpm=0)


@needs_music21
@needs_fluidsynth
def test_render_chorale_onsets_are_where_the_sound_starts():
    score = chorale_score("bwv10.7.mxl", max_seconds=6.0)
    piece = render_chorale(score, program=0, seed=3, lead_in=0.5)
    assert piece.audio.dtype == np.float32 and abs(np.abs(piece.audio).max() - 0.9) < 1e-6
    assert piece.notes["onset"][0] == pytest.approx(0.5)
    first = np.argmax(np.abs(piece.audio) > 0.01) / piece.sr
    assert 0.5 <= first < 0.52                       # piano: the sound starts at the note-on
    np.testing.assert_allclose(piece.performance_time(score.notes["score_onset"]), piece.notes["onset"], atol=1e-3)
    with pytest.raises(ValueError, match="program"):
        render_chorale(score, program=200)
