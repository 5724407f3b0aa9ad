"""``mmalign subtitle --format ...``: every format written by the command line and read back by a real
reader (praatio, json, csv), --min-confidence with flag and drop, the low-confidence warning, option
errors, and the output-file rules for the new formats.  ``align_text`` is replaced by a hand-made
alignment, so no eSpeak NG is needed."""

import csv
import json
import math
import re

import numpy as np
import pytest
import soundfile as sf

import mmalign
import mmalign.apps.forced_alignment as fa
from mmalign.apps.forced_alignment import TextAlignment
from mmalign.apps.subtitles import Segment
from mmalign.cli import main

SR = 22050
TEXT = "Hello there. This part is wrong."
WORDS = [Segment("Hello", 0.1, 0.4, 0, 5, 0.9), Segment("there", 0.45, 0.8, 6, 11, 0.8),
         Segment("This", 1.0, 1.2, 13, 17, 0.3), Segment("part", 1.2, 1.5, 18, 22, 0.2),
         Segment("is", 1.55, 1.65, 23, 25, 0.45), Segment("wrong", 1.7, 2.1, 26, 31, 0.25)]
SENTENCES = [Segment("Hello there.", 0.1, 0.8, 0, 12, 0.85), Segment("This part is wrong.", 1.0, 2.1, 13, 32, 0.3)]
ALL = ["srt", "vtt", "csv", "textgrid", "json", "tsv", "audacity"]
NAMES = ["talk.TextGrid", "talk.csv", "talk.json", "talk.labels.txt", "talk.srt", "talk.tsv", "talk.vtt"]
LOW = getattr(fa, "LOW_CONFIDENCE", 0.5)


class ScoredAlignment(TextAlignment):
    """A TextAlignment built by hand, with an overall confidence of the test's choosing."""

    confidence = math.nan                        # shadows the real attribute, whatever form it takes

    def __init__(self, text, words, sentences, duration, confidence):
        super().__init__(text, words, sentences, duration, mmalign.Alignment([[0, 0]]), [])
        self.confidence = confidence


@pytest.fixture
def inputs(tmp_path):
    wav, txt = tmp_path / "talk.wav", tmp_path / "talk.txt"
    sf.write(wav, np.random.default_rng(0).uniform(-0.3, 0.3, 3 * SR).astype(np.float32), SR)
    txt.write_text(TEXT, encoding="utf-8")
    return wav, txt


@pytest.fixture
def overall(monkeypatch):
    """Replace align_text by the hand-made alignment; set ``overall["confidence"]`` to change its score."""
    score = {"confidence": (1 + LOW) / 2}

    def fake_align_text(text, audio, sr, **kwargs):
        assert text == TEXT
        return ScoredAlignment(text, list(WORDS), list(SENTENCES), len(audio) / sr, score["confidence"])

    monkeypatch.setattr(fa, "align_text", fake_align_text)
    return score


def run(inputs, out, *options):
    wav, txt = inputs
    return main(["subtitle", str(wav), str(txt), "--out", str(out), "--no-progress", *options])


def cues(srt_or_vtt):
    """Cue texts (lines joined by spaces) of an SRT or WebVTT file."""
    blocks = [b.splitlines() for b in srt_or_vtt.strip().split("\n\n") if "-->" in b]
    return [" ".join(lines[[i for i, line in enumerate(lines) if "-->" in line][0] + 1:]) for lines in blocks]


def check_schema(doc):
    """The documented layout of mmalign.apps.subtitles.to_json, field by field."""
    number, maybe = (int, float), (int, float, type(None))
    assert doc["format"] == "mmalign-alignment" and doc["version"] == 1
    assert set(doc) == {"format", "version", "text", "audio_duration", "confidence", "min_confidence", "dropped",
                        "sentences", "words"}
    assert isinstance(doc["text"], str) and isinstance(doc["audio_duration"], number)
    assert isinstance(doc["confidence"], maybe) and isinstance(doc["min_confidence"], maybe)
    assert set(doc["dropped"]) == {"sentences", "words"}
    fields = {"id", "text", "start", "end", "char_start", "char_end", "confidence", "low_confidence"}
    for sentence in doc["sentences"]:
        assert set(sentence) == fields | {"words"}
        assert all(word in doc["words"] and word["sentence"] == sentence["id"] for word in sentence["words"])
    for item in doc["sentences"] + doc["words"]:
        assert fields <= set(item) and isinstance(item["id"], int) and isinstance(item["low_confidence"], bool)
        assert 0 <= item["start"] <= item["end"] <= doc["audio_duration"]
        assert item["confidence"] is None or 0 <= item["confidence"] <= 1
        assert doc["text"][item["char_start"]:item["char_end"]] == item["text"]
    for word in doc["words"]:
        assert set(word) == fields | {"sentence"}


def read_all(out, level):
    """Every output file, read back by a real reader."""
    from praatio import textgrid

    with open(out / "talk.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    with open(out / "talk.tsv", newline="", encoding="utf-8") as f:
        tsv = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    with open(out / "talk.json", encoding="utf-8") as f:
        doc = json.load(f, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    grid = textgrid.openTextgrid(str(out / "talk.TextGrid"), includeEmptyIntervals=False)
    labels = [line.split("\t") for line in (out / "talk.labels.txt").read_text(encoding="utf-8").splitlines()]
    return dict(srt=cues((out / "talk.srt").read_text(encoding="utf-8")),
                vtt=cues((out / "talk.vtt").read_text(encoding="utf-8")), csv=table, tsv=tsv, json=doc,
                grid={name: [(e.start, e.end, e.label) for e in grid.getTier(name).entries] for name in grid.tierNames},
                labels=labels)


@pytest.mark.parametrize("level", ["sentence", "word"])
def test_every_format_reads_back(level, inputs, overall, tmp_path, capsys):
    out = tmp_path / "subs"
    assert run(inputs, out, "--format", *ALL, "--level", level) == 0
    assert sorted(p.name for p in out.iterdir()) == NAMES
    got, segments = read_all(out, level), (SENTENCES if level == "sentence" else WORDS)
    texts = [s.text for s in segments]
    assert got["srt"] == texts and got["vtt"] == texts
    assert [r["text"] for r in got["csv"]] == texts == [r["text"] for r in got["tsv"]]
    assert list(got["csv"][0]) == ["start", "end", "text", "char_start", "char_end", "confidence"]
    assert list(got["tsv"][0]) == ["start", "end", "text", "confidence"]
    for rows in (got["csv"], got["tsv"]):
        np.testing.assert_allclose([[float(r["start"]), float(r["end"]), float(r["confidence"])] for r in rows],
                                   [[s.start, s.end, s.confidence] for s in segments])
    assert all(len(r) == 3 for r in got["labels"]) and [r[2] for r in got["labels"]] == texts
    np.testing.assert_allclose([[float(r[0]), float(r[1])] for r in got["labels"]],
                               [[s.start, s.end] for s in segments])
    # textgrid and json hold both levels whatever --level says
    assert got["grid"] == {"sentences": [(s.start, s.end, s.text) for s in SENTENCES],
                           "words": [(w.start, w.end, w.text) for w in WORDS]}
    doc = got["json"]
    check_schema(doc)
    assert doc["audio_duration"] == 3.0 and doc["confidence"] == round(overall["confidence"], 3)
    assert [w["text"] for w in doc["words"]] == [w.text for w in WORDS]
    assert [[w["text"] for w in s["words"]] for s in doc["sentences"]] == [["Hello", "there"],
                                                                         ["This", "part", "is", "wrong"]]
    assert doc["min_confidence"] is None and not any(w["low_confidence"] for w in doc["words"])
    captured = capsys.readouterr()
    assert f"confidence    {overall['confidence']:.2f} overall" in captured.out
    assert all(str(out / name) in captured.out for name in NAMES) and "warning" not in captured.err


def test_min_confidence_flag_marks_the_low_segments(inputs, overall, tmp_path, capsys):
    for level, marked in (("word", ["Hello", "there", "(?) This", "(?) part", "(?) is", "(?) wrong"]),
                          ("sentence", ["Hello there.", "(?) This part is wrong."])):
        out = tmp_path / level
        assert run(inputs, out, "--format", *ALL, "--level", level, "--min-confidence", "0.5") == 0
        got = read_all(out, level)
        assert got["srt"] == marked and got["vtt"] == marked and [r[2] for r in got["labels"]] == marked
        segments = WORDS if level == "word" else SENTENCES
        assert [r["text"] for r in got["csv"]] == [s.text for s in segments]      # the column shows it
        assert [float(r["confidence"]) for r in got["tsv"]] == [s.confidence for s in segments]
        assert [label for _, _, label in got["grid"]["words"]] == [w.text for w in WORDS]   # unmarked
        doc = got["json"]
        check_schema(doc)
        assert doc["min_confidence"] == 0.5 and doc["dropped"] == {"sentences": 0, "words": 0}
        assert [s["low_confidence"] for s in doc["sentences"]] == [False, True]
        assert [w["low_confidence"] for w in doc["words"]] == [False, False, True, True, True, True]
    printed = capsys.readouterr().out
    assert 'low           1 of 2 sentences and 4 of 6 words under 0.5: flagged "(?)"' in printed


def test_min_confidence_drop_leaves_the_low_segments_out(inputs, overall, tmp_path, capsys):
    for level, kept in (("word", ["Hello", "there"]), ("sentence", ["Hello there."])):
        out = tmp_path / level
        assert run(inputs, out, "--format", *ALL, "--level", level, "--min-confidence", "0.5",
                   "--low-confidence", "drop") == 0
        got = read_all(out, level)
        assert got["srt"] == kept and got["vtt"] == kept and [r[2] for r in got["labels"]] == kept
        assert [r["text"] for r in got["csv"]] == kept == [r["text"] for r in got["tsv"]]
        assert [label for _, _, label in got["grid"]["words"]] == ["Hello", "there"]
        assert [label for _, _, label in got["grid"]["sentences"]] == ["Hello there."]
        doc = got["json"]
        check_schema(doc)
        assert doc["dropped"] == {"sentences": 1, "words": 4}
        assert [s["text"] for s in doc["sentences"]] == ["Hello there."]
        assert [w["text"] for w in doc["words"]] == ["Hello", "there"]
    assert "under 0.5: dropped" in capsys.readouterr().out


def test_pieces_of_a_long_sentence_share_its_flag(inputs, overall, tmp_path):
    """--line-length cuts a long sentence into several cues; each is judged by the sentence's confidence."""
    flag, drop = tmp_path / "flag", tmp_path / "drop"
    assert run(inputs, flag, "--line-length", "9", "--min-confidence", "0.5") == 0
    srt = (flag / "talk.srt").read_text()
    pieces = cues(srt)
    low = [p for p in pieces if p.startswith("(?) ")]
    assert len(low) > 1 and " ".join(p[4:] for p in low) == "This part is wrong."
    assert " ".join(p for p in pieces if p not in low) == "Hello there."
    # flagged cues are cut shorter, so that with the flag they still wrap to at most 2 lines of 9
    blocks = [block.splitlines()[2:] for block in srt.strip().split("\n\n")]
    assert all(len(lines) <= 2 and max(map(len, lines)) <= 9 for lines in blocks), srt
    assert run(inputs, drop, "--line-length", "9", "--min-confidence", "0.5", "--low-confidence", "drop") == 0
    assert " ".join(cues((drop / "talk.srt").read_text())) == "Hello there."


@pytest.mark.parametrize("score, warned", [(LOW / 2, True), ((1 + LOW) / 2, False), (math.nan, False)])
def test_low_overall_confidence_warns_but_succeeds(score, warned, inputs, overall, tmp_path, capsys):
    overall["confidence"] = score
    assert run(inputs, tmp_path / "subs", "--format", "srt", "json") == 0
    captured = capsys.readouterr()
    assert (tmp_path / "subs" / "talk.srt").exists() and (tmp_path / "subs" / "talk.json").exists()
    if warned:
        assert captured.err.startswith("mmalign: warning: the overall confidence") and captured.err.count("\n") == 1
        assert "may not match" in captured.err and "transcript" in captured.err and "--voice" in captured.err
    else:
        assert "warning" not in captured.err
    if math.isnan(score):
        assert "confidence    unknown" in captured.out
        assert json.loads((tmp_path / "subs" / "talk.json").read_text())["confidence"] is None




def test_format_names_ignore_case(inputs, overall, tmp_path):
    assert run(inputs, tmp_path / "subs", "--format", "TextGrid", "JSON") == 0
    assert sorted(p.name for p in (tmp_path / "subs").iterdir()) == ["talk.TextGrid", "talk.json"]


@pytest.mark.parametrize("fmt, name", [("textgrid", "talk.TextGrid"), ("json", "talk.json"), ("tsv", "talk.tsv"),
                                       ("audacity", "talk.labels.txt"), ("csv", "talk.csv")])
def test_new_formats_never_replace_a_file_without_force(fmt, name, inputs, tmp_path, capsys, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("align_text ran before the output check")

    out = tmp_path / "subs"
    out.mkdir()
    (out / name).write_text("precious")
    monkeypatch.setattr(fa, "align_text", forbidden)
    with pytest.raises(SystemExit) as info:
        run(inputs, out, "--format", "srt", fmt)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and str(out / name) in err and "--force" in err
    assert [p.name for p in out.iterdir()] == [name] and (out / name).read_text() == "precious"
    monkeypatch.setattr(fa, "align_text", lambda text, audio, sr, **kw: ScoredAlignment(
        text, list(WORDS), list(SENTENCES), len(audio) / sr, 0.9))
    assert run(inputs, out, "--format", "srt", fmt, "--force") == 0
    assert (out / name).read_text() != "precious" and sorted(p.name for p in out.iterdir()) == sorted(
        ["talk.srt", name])


def test_outputs_stay_off_the_inputs(inputs, overall, tmp_path, capsys):
    wav, txt = inputs
    # the transcript talk.txt sits where the outputs go: Audacity labels are talk.labels.txt, not talk.txt
    assert run(inputs, tmp_path, "--format", "audacity") == 0
    assert txt.read_text(encoding="utf-8") == TEXT and (tmp_path / "talk.labels.txt").exists()
    # a transcript named like an output is refused, even with --force
    transcript = tmp_path / "talk.json"
    transcript.write_text(TEXT, encoding="utf-8")
    with pytest.raises(SystemExit):
        main(["subtitle", str(wav), str(transcript), "--out", str(tmp_path), "--format", "json", "--force"])
    err = capsys.readouterr().err
    assert re.search(r"is the input file .*talk\.json", err) and transcript.read_text(encoding="utf-8") == TEXT
