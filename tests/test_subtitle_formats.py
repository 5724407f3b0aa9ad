"""Praat TextGrid and Audacity label writers (mmalign.apps.subtitles), read back by real readers:
praatio for TextGrid, Audacity's tab-separated label format parsed as Audacity does."""

import numpy as np
import pytest

from mmalign.apps.subtitles import Segment, to_audacity, to_textgrid

WORDS = [Segment("Hello,", 0.31, 0.62, 0, 6), Segment('"world"', 0.70, 1.05, 7, 14),
         Segment("again", 1.05, 1.4, 15, 20)]
SENTENCES = [Segment('Hello, "world" again', 0.31, 1.4, 0, 20)]


def test_textgrid_opens_in_praatio_with_both_tiers(tmp_path):
    from praatio import textgrid

    path = tmp_path / "talk.TextGrid"
    text = to_textgrid({"sentences": SENTENCES, "words": WORDS}, path, duration=2.0)
    assert path.read_text(encoding="utf-8") == text
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    assert grid.tierNames == ("sentences", "words") and (grid.minTimestamp, grid.maxTimestamp) == (0, 2.0)
    words = grid.getTier("words").entries
    # Praat's tiers cover the recording: empty intervals fill the gaps, quotes survive
    assert [(e.start, e.end, e.label) for e in words] == [
        (0, 0.31, ""), (0.31, 0.62, "Hello,"), (0.62, 0.7, ""), (0.7, 1.05, '"world"'),
        (1.05, 1.4, "again"), (1.4, 2.0, "")]
    assert [e.label for e in grid.getTier("sentences").entries] == ["", 'Hello, "world" again', ""]


def test_textgrid_defaults_to_the_last_end_and_refuses_bad_input(tmp_path):
    from praatio import textgrid

    to_textgrid({"words": WORDS}, tmp_path / "w.TextGrid")
    grid = textgrid.openTextgrid(str(tmp_path / "w.TextGrid"), includeEmptyIntervals=True)
    assert grid.maxTimestamp == 1.4 and grid.getTier("words").entries[-1].label == "again"
    with pytest.raises(ValueError, match="tiers must be a non-empty mapping"):
        to_textgrid({})
    with pytest.raises(ValueError, match=r"tiers\['words'\]: segments overlap"):
        to_textgrid({"words": [("a", 0.0, 1.0), ("b", 0.5, 1.5)]})
    with pytest.raises(ValueError, match="duration must be a number >= the last segment's end"):
        to_textgrid({"words": WORDS}, duration=1.0)
    with pytest.raises(ValueError, match="tier names"):
        to_textgrid({"": WORDS})
    with pytest.raises(ValueError, match="bad times"):
        to_textgrid({"words": [("a", 1.0, 0.5)]})


def test_audacity_labels_read_back_as_audacity_reads_them(tmp_path):
    path = tmp_path / "labels.txt"
    text = to_audacity(WORDS, path)
    assert path.read_text(encoding="utf-8") == text
    rows = [line.split("\t") for line in text.splitlines()]
    assert all(len(r) == 3 for r in rows)
    np.testing.assert_allclose([[float(r[0]), float(r[1])] for r in rows],
                               [[w.start, w.end] for w in WORDS], atol=1e-6)
    assert [r[2] for r in rows] == [w.text for w in WORDS]
    assert to_audacity([]) == ""
