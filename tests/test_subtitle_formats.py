"""The writers of mmalign.apps.subtitles (TextGrid, Audacity labels, CSV, TSV, JSON) and the matching
TextAlignment methods, read back by real readers: praatio for TextGrid, Audacity's tab-separated label
format parsed as Audacity does, the csv module for CSV and TSV, json for JSON.
(``mmalign subtitle --format ...``: tests/test_cli_subtitle_formats.py.)"""

import csv
import io
import json
import math

import numpy as np
import pytest

import mmalign
from mmalign.apps.forced_alignment import TextAlignment
from mmalign.apps.subtitles import (Segment, is_low_confidence, to_audacity, to_csv, to_json, to_srt, to_textgrid,
                                    to_tsv)

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


# --------------------------------------------------------------------------- confidence: CSV, TSV, JSON

TEXT = "Hello there. This\tpart is wrong."
C_WORDS = [Segment("Hello", 0.1, 0.4, 0, 5, 0.9), Segment("there", 0.45, 0.8, 6, 11, 0.8),
           Segment("This", 1.0, 1.2, 13, 17, 0.3), Segment("part", 1.2, 1.5, 18, 22, math.nan),
           Segment("is", 1.55, 1.65, 23, 25, 0.45), Segment("wrong", 1.7, 2.1, 26, 31, 0.25)]
C_SENTENCES = [Segment("Hello there.", 0.1, 0.8, 0, 12, 0.85), Segment("This\tpart is wrong.", 1.0, 2.1, 13, 32, 0.3)]


def strict_json(text):
    def no_constant(name):
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=no_constant)


def test_csv_has_confidence_as_last_column():
    rows = list(csv.DictReader(io.StringIO(to_csv(C_WORDS))))
    assert list(rows[0]) == ["start", "end", "text", "char_start", "char_end", "confidence"]
    assert [r["confidence"] for r in rows] == ["0.900", "0.800", "0.300", "", "0.450", "0.250"]
    assert rows[2]["start"] == "1.000" and rows[2]["char_end"] == "17"


def test_tsv_reads_back_with_four_fields_per_row(tmp_path):
    path = tmp_path / "talk.tsv"
    segments = C_SENTENCES + [Segment('"quoted"\nline', 2.5, 3.0)]
    text = to_tsv(segments, path)
    assert path.read_text(encoding="utf-8") == text
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["start", "end", "text", "confidence"] and all(len(r) == 4 for r in rows)
    assert rows[1:] == [["0.100", "0.800", "Hello there.", "0.850"], ["1.000", "2.100", "This part is wrong.", "0.300"],
                        ["2.500", "3.000", '"quoted" line', ""]]
    assert to_tsv([]) == "start\tend\ttext\tconfidence\n"


def test_confidences_outside_0_1_are_refused_nan_and_none_mean_unknown():
    for bad in (1.5, -0.1, "high"):
        with pytest.raises(ValueError, match="confidence=.*need a number in \\[0, 1\\] or NaN"):
            to_srt([("a", 0.0, 1.0, 0, 1, bad)])
    assert to_csv([("a", 0.0, 1.0, 0, 1, None)]).endswith(",\n")
    assert is_low_confidence(0.2, 0.5) and not is_low_confidence(0.5, 0.5)
    assert not is_low_confidence(math.nan, 0.5) and not is_low_confidence(0.2, None) and not is_low_confidence(0.2, 0)
    with pytest.raises(ValueError, match="min_confidence must be a number in \\[0, 1\\]"):
        is_low_confidence(0.2, 1.5)


def test_json_nests_words_in_sentences_and_lists_them_flat(tmp_path):
    path = tmp_path / "talk.json"
    text = to_json(C_SENTENCES, C_WORDS, path, text=TEXT, duration=3.0, confidence=0.62)
    assert path.read_text(encoding="utf-8") == text
    doc = strict_json(text)
    assert {k: doc[k] for k in ("format", "version", "text", "audio_duration", "confidence", "min_confidence",
                                "dropped")} == {
        "format": "mmalign-alignment", "version": 1, "text": TEXT, "audio_duration": 3.0, "confidence": 0.62,
        "min_confidence": None, "dropped": {"sentences": 0, "words": 0}}
    first, second = doc["sentences"]
    assert first == {"id": 0, "text": "Hello there.", "start": 0.1, "end": 0.8, "char_start": 0, "char_end": 12,
                     "confidence": 0.85, "low_confidence": False, "words": doc["words"][:2]}
    assert second["text"] == "This part is wrong." and second["words"] == doc["words"][2:]
    assert doc["words"][3] == {"id": 3, "text": "part", "start": 1.2, "end": 1.5, "char_start": 18, "char_end": 22,
                               "confidence": None, "low_confidence": False, "sentence": 1}
    assert [w["sentence"] for w in doc["words"]] == [0, 0, 1, 1, 1, 1]
    for item in doc["sentences"] + doc["words"]:                 # the offsets index the text
        assert " ".join(TEXT[item["char_start"]:item["char_end"]].split()) == item["text"]


def test_json_places_words_by_time_without_spans_and_never_writes_nan():
    doc = strict_json(to_json([("One two.", 0.0, 1.0), ("Three.", 2.0, 3.0)],
                              [("One", 0.0, 0.4), ("two", 0.5, 1.0), ("um", 1.2, 1.6), ("Three", 2.0, 3.0)],
                              confidence=math.nan, indent=None))
    assert [w["sentence"] for w in doc["words"]] == [0, 0, None, 1]
    assert [len(s["words"]) for s in doc["sentences"]] == [2, 1]
    assert doc["confidence"] is None and doc["text"] is None and doc["audio_duration"] is None
    assert doc["words"][0]["char_start"] is None and doc["words"][0]["confidence"] is None
    assert to_json([], [])                                       # an empty alignment is a valid document
    assert strict_json(to_json([], []))["sentences"] == []


def test_json_flags_or_drops_low_confidence_segments_with_stable_ids():
    flagged = strict_json(to_json(C_SENTENCES, C_WORDS, min_confidence=0.5))
    assert flagged["min_confidence"] == 0.5 and flagged["dropped"] == {"sentences": 0, "words": 0}
    assert [s["low_confidence"] for s in flagged["sentences"]] == [False, True]
    assert [w["low_confidence"] for w in flagged["words"]] == [False, False, True, False, True, True]  # NaN: not low
    dropped = strict_json(to_json(C_SENTENCES, C_WORDS, min_confidence=0.5, low_confidence="drop"))
    assert dropped["dropped"] == {"sentences": 1, "words": 3}
    assert [s["id"] for s in dropped["sentences"]] == [0] and [w["id"] for w in dropped["words"]] == [0, 1, 3]
    assert dropped["words"][2]["sentence"] == 1                  # a word kept from a dropped sentence
    assert not any(item["low_confidence"] for item in dropped["sentences"] + dropped["words"])
    kept = strict_json(to_json(C_SENTENCES[:1], C_WORDS[:3], min_confidence=0.5, low_confidence="drop"))
    assert [w["text"] for w in kept["sentences"][0]["words"]] == ["Hello", "there"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_confidence=1.5), "min_confidence must be a number in \\[0, 1\\]"),
    (dict(min_confidence=math.nan), "min_confidence must be a number in \\[0, 1\\]"),
    (dict(low_confidence="hide"), "low_confidence must be one of"),
    (dict(duration=2.0), "duration must be a number >= the last segment's end \\(2.1 s\\)"),
    (dict(confidence=1.2), "confidence must be a number in \\[0, 1\\], NaN or None"),
    (dict(text=b"bytes"), "text must be a str"),
])
def test_json_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_json(C_SENTENCES, C_WORDS, **kwargs)


# --------------------------------------------------------------------------- TextAlignment methods


class ScoredAlignment(TextAlignment):
    """A TextAlignment built by hand, with an overall confidence of the test's choosing."""

    confidence = math.nan                        # shadows the real attribute, whatever form it takes

    def __init__(self, confidence):
        super().__init__(TEXT, list(C_WORDS), list(C_SENTENCES), 3.0, mmalign.Alignment([[0, 0]]), [])
        self.confidence = confidence


def test_text_alignment_writes_every_format(tmp_path):
    from praatio import textgrid

    result = ScoredAlignment(0.7)
    grid_text = result.to_textgrid(tmp_path / "talk.TextGrid")
    assert (tmp_path / "talk.TextGrid").read_text(encoding="utf-8") == grid_text
    grid = textgrid.openTextgrid(str(tmp_path / "talk.TextGrid"), includeEmptyIntervals=False)
    assert grid.tierNames == ("sentences", "words") and grid.maxTimestamp == 3.0
    assert [e.label for e in grid.getTier("words").entries] == [w.text for w in C_WORDS]
    assert [e.label for e in grid.getTier("sentences").entries] == ["Hello there.", "This part is wrong."]
    doc = strict_json(result.to_json(tmp_path / "talk.json"))
    assert doc == strict_json((tmp_path / "talk.json").read_text(encoding="utf-8"))
    assert doc["confidence"] == 0.7 and doc["audio_duration"] == 3.0 and doc["text"] == TEXT
    assert len(doc["sentences"]) == 2 and len(doc["words"]) == 6
    assert strict_json(result.to_json(min_confidence=0.5, low_confidence="drop"))["dropped"]["words"] == 3
    tsv = [line.split("\t") for line in result.to_tsv().splitlines()]
    assert len(tsv) == 7 and tsv[3] == ["1.000", "1.200", "This", "0.300"]
    assert len(result.to_tsv(level="sentence").splitlines()) == 3
    labels = [line.split("\t") for line in result.to_audacity(tmp_path / "talk.labels.txt").splitlines()]
    assert [r[2] for r in labels] == ["Hello there.", "This part is wrong."]
    assert len(result.to_audacity(level="word").splitlines()) == 6
