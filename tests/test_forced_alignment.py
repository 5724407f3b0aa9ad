"""Speech synthesis with word timings, text-to-audio forced alignment, subtitles, ``mmalign subtitle``."""

import csv
import ctypes
import io
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from mmalign.apps import forced_alignment as fa
from mmalign.cli import main
from mmalign.features import speech
from mmalign.apps.forced_alignment import align_text, split_sentences
from mmalign.apps.subtitles import Segment, format_timestamp, to_csv, to_srt, to_vtt


def _espeak_available() -> bool:
    try:
        speech.espeak_version()
        return True
    except ImportError:
        return False


needs_espeak = pytest.mark.skipif(not _espeak_available(),
                                  reason='eSpeak NG not installed (pip install "mmalign[speech]")')

TEXT = ("The quick brown fox jumps over the lazy dog. "
        "Then it runs away, far across the silent fields, and nobody sees it again.")
# A recording slow and female, the aligner's rendering fast and male: a uniform
# stretch between the two is off by ~70 ms (median), DTW by 3-9 ms.
RECORDING = dict(voice="en-gb+f3", rate_wpm=130)
ALIGNER = dict(voice="en-us", rate_wpm=190)
THRESHOLD_MS = 30.0


@pytest.fixture(scope="module")
def recording():
    return speech.synthesize_speech(TEXT, **RECORDING)


def boundary_errors_ms(result, truth_words):
    truth = np.array([[w.start, w.end] for w in truth_words])
    return 1e3 * np.abs(result.word_times() - truth).ravel()


# --------------------------------------------------------------------------- synthesis


def test_ctypes_layout_matches_speak_lib_h():
    pointer = ctypes.sizeof(ctypes.c_void_p)
    offsets = {name: getattr(speech._Event, name).offset for name, _ in speech._Event._fields_}
    assert [offsets[n] for n in ("type", "unique_identifier", "text_position", "length",
                                 "audio_position", "sample", "user_data")] == [0, 4, 8, 12, 16, 20, 24]
    assert offsets["id"] == 24 + pointer
    assert ctypes.sizeof(speech._EventId) == 8
    assert ctypes.sizeof(speech._Event) == 24 + pointer + 8
    assert speech._Voice.gender.offset == 3 * pointer
    assert (speech.AUDIO_OUTPUT_SYNCHRONOUS, speech.POS_CHARACTER, speech.EVENT_WORD, speech.EVENT_END) == (2, 1, 1, 5)


@needs_espeak
def test_synthesis_words_increase_inside_the_audio(recording):
    audio, sr, words = recording
    assert audio.dtype == np.float32 and audio.ndim == 1 and sr == 22050
    assert 0 < np.abs(audio).max() <= 1.0
    assert [w.word for w in words] == [w for w, _, _ in speech.tokenize_words(TEXT)]
    times = np.array([[w.start, w.end] for w in words])
    assert np.all(times[:, 0] <= times[:, 1])
    assert np.all(np.diff(times[:, 0]) > 0)
    assert np.all(times[:-1, 1] <= times[1:, 0] + 1e-9)
    assert times.min() >= 0 and times.max() <= len(audio) / sr
    assert all(TEXT[w.char_start:w.char_end] == w.word for w in words)
    # ~20 words at 130 words/min: about 10 s
    assert 6 < len(audio) / sr < 14


@needs_espeak
def test_synthesis_rate_voice_and_resampling():
    text = "One two three four five six seven eight."
    slow = speech.synthesize_speech(text, voice="en", rate_wpm=100)
    fast = speech.synthesize_speech(text, voice="en", rate_wpm=300)
    assert len(slow.audio) > 1.8 * len(fast.audio)
    assert slow.words[-1].start > 1.8 * fast.words[-1].start
    low = speech.synthesize_speech(text, voice="en-gb", sr=16000)          # a language, not a file name
    assert low.sr == 16000
    assert abs(len(low.audio) / 16000 - low.words[-1].end) < 0.5
    numbers = speech.synthesize_speech("It cost 23 dollars & 5 cents.", voice="en-us")
    assert [w.word for w in numbers.words] == ["It", "cost", "23", "dollars", "&", "5", "cents"]
    voices = speech.list_voices()
    assert any("en-us" in langs for _, langs in voices)
    assert speech.espeak_version()[0].isdigit()


@needs_espeak
def test_words_espeak_joins_or_misplaces_are_kept():
    # eSpeak reports no event for "the" in "on the" and puts the event of "far" inside "so"
    text = "The cat sat on the mat. It was so far from a home."
    words = speech.synthesize_speech(text, voice="en-us").words
    assert [w.word for w in words] == [w for w, _, _ in speech.tokenize_words(text)]
    times = np.array([[w.start, w.end] for w in words])
    assert np.all(np.diff(times.ravel()) >= 0) and np.all(times[:, 1] > times[:, 0])


@needs_espeak
@pytest.mark.parametrize("kwargs, match", [
    (dict(text=""), "empty"),
    (dict(text="   \n"), "empty"),
    (dict(text="hi", rate_wpm=20), "rate_wpm"),
    (dict(text="hi", pitch=200), "pitch"),
    (dict(text="hi", sr=0), "sr"),
    (dict(text="hi", voice="xx-nonexistent"), "unknown eSpeak voice"),
])
def test_synthesis_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        speech.synthesize_speech(**kwargs)


def test_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setattr(speech, "_STATE", {})
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)
    monkeypatch.setattr(speech.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(ImportError, match=r"mmalign\[speech\]"):
        speech.synthesize_speech("hello")


@needs_espeak
def test_synthesis_is_thread_safe():
    texts = ["First thread speaks here.", "A second voice says other words entirely."]
    expected = [[w.word for w in speech.synthesize_speech(t).words] for t in texts]
    results = {}

    def work(i):
        results[i] = [w.word for w in speech.synthesize_speech(texts[i % 2]).words]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i] == expected[i % 2] for i in range(4))


# --------------------------------------------------------------------------- alignment


@needs_espeak
def test_align_text_word_boundaries_within_threshold(recording):
    audio, sr, truth = recording
    result = align_text(TEXT, audio, sr, **ALIGNER)
    errors = boundary_errors_ms(result, truth)
    assert np.median(errors) < THRESHOLD_MS
    assert np.percentile(errors, 90) < 3 * THRESHOLD_MS
    # the naive option, a uniform stretch, does not pass the same bar
    synthetic = np.array([[w.start, w.end] for w in result.synthetic_words])
    ratio = (len(audio) / sr) / (result.alignment.n_x / result.alignment.extras["frame_rate_x"])
    stretched = np.abs(synthetic * ratio - np.array([[w.start, w.end] for w in truth])).ravel()
    assert np.median(stretched) * 1e3 > THRESHOLD_MS
    # segments: in order, inside the recording, sentences spanning their words
    times = result.word_times()
    assert np.all(np.diff(times.ravel()) >= 0) and times.max() <= result.duration
    assert [s.text for s in result.sentences] == [s for s, _, _ in split_sentences(TEXT)]
    assert result.sentences[0].start == result.words[0].start
    assert result.sentences[1].end == result.words[-1].end
    assert "2 sentences" in repr(result)


@needs_espeak
def test_a_broken_aligner_fails_the_threshold(recording, monkeypatch):
    def uniform(x_of_y, rate_x, rate_y):            # ignores the path: a uniform stretch
        n_x, n_y = x_of_y[-1] + 1, len(x_of_y)
        return lambda t: np.asarray(t) * rate_x * (n_y - 1) / (n_x - 1) / rate_y

    monkeypatch.setattr(fa, "time_map", uniform)
    audio, sr, truth = recording
    errors = boundary_errors_ms(align_text(TEXT, audio, sr, **ALIGNER), truth)
    assert np.median(errors) > THRESHOLD_MS


@needs_espeak
def test_align_text_other_sample_rate_and_multiscale(recording):
    import librosa

    audio, sr, truth = recording
    audio16 = librosa.resample(audio, orig_sr=sr, target_sr=16000)
    result = align_text(TEXT, audio16, 16000, method="multiscale", **ALIGNER)
    assert np.median(boundary_errors_ms(result, truth)) < THRESHOLD_MS
    assert result.duration == pytest.approx(len(audio16) / 16000)


@needs_espeak
@pytest.mark.parametrize("text, audio, match", [
    ("", np.zeros(1000, np.float32), "empty"),
    ("hello", np.zeros((1000, 2), np.float32), "mono"),
    ("hello", np.zeros(0, np.float32), "empty"),
    ("hello", np.full(1000, np.nan, np.float32), "NaN"),
    ("hello", np.zeros(1000, np.int16), "floating"),
])
def test_align_text_bad_input(text, audio, match):
    with pytest.raises(ValueError, match=match):
        align_text(text, audio, 22050)
    with pytest.raises(ValueError, match="features"):
        align_text("hello", np.zeros(5000, np.float32), 22050, features="chroma")


# --------------------------------------------------------------------------- text and formats


def test_split_sentences_and_words():
    text = 'He said "Stop!" Then he left...\n\nA new paragraph\nwithout a full stop'
    assert split_sentences(text) == [('He said "Stop!"', 0, 15), ("Then he left...", 16, 31),
                                     ("A new paragraph\nwithout a full stop", 33, 68)]
    assert split_sentences("   ") == []
    assert speech.tokenize_words("(well-known) don't -- stop.") == [
        ("well-known", 1, 11), ("don't", 13, 18), ("stop", 22, 26)]


def test_timestamps():
    assert format_timestamp(0) == "00:00:00,000"
    assert format_timestamp(3599.9994) == "00:59:59,999"
    assert format_timestamp(3599.9996) == "01:00:00,000"
    assert format_timestamp(36000 + 61.5, separator=".") == "10:01:01.500"
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            format_timestamp(bad)


def test_srt_vtt_csv_formatting():
    segments = [Segment("First  cue\nhere.", 1.0, 2.5, 0, 16), ("Fish & chips <b> --> x", 62.25, 3725.0)]
    srt = to_srt(segments)
    assert srt == ("1\n00:00:01,000 --> 00:00:02,500\nFirst cue here.\n\n"
                   "2\n00:01:02,250 --> 01:02:05,000\nFish & chips <b> -> x\n")
    vtt = to_vtt(segments, numbered=True)
    assert vtt.startswith("WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nFirst cue here.\n\n2\n")
    assert "Fish &amp; chips &lt;b&gt; --&gt; x" in vtt
    long = to_srt([("word " * 30, 0, 1)])
    assert all(len(line) <= 42 for line in long.splitlines())
    rows = list(csv.reader(io.StringIO(to_csv(segments))))
    assert rows[0] == ["start", "end", "text", "char_start", "char_end", "confidence"]
    assert rows[1] == ["1.000", "2.500", "First cue here.", "0", "16", ""]        # confidence unknown
    assert rows[2][3:] == ["-1", "-1", ""]
    with pytest.raises(ValueError, match="start <= end"):
        to_srt([("bad", 2.0, 1.0)])


def test_long_sentences_become_several_cues():
    text = ("The last keeper was a quiet woman called Ada, who kept bees in the walled garden "
            "and wrote the weather in a green ledger every morning.")
    tokens = speech.tokenize_words(text)
    words = [Segment(w, 0.5 * k, 0.5 * k + 0.4, c0, c1) for k, (w, c0, c1) in enumerate(tokens)]
    result = fa.TextAlignment(text, words, fa._sentences(text, words), 20.0, None, [])
    cues = result.segments("sentence", line_length=42, max_lines=2)
    assert len(cues) >= 2
    assert " ".join(c.text for c in cues) == text
    assert all(text[c.char_start:c.char_end] == c.text for c in cues)
    assert all(len(to_srt([c]).splitlines()) <= 4 for c in cues)     # number, time, <= 2 lines
    assert cues[0].start == 0.0 and cues[-1].end == words[-1].end
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    assert len(result.segments("sentence")) == 1
    srt = result.to_srt()
    assert srt.count("-->") == len(cues)
    assert result.to_srt(max_lines=None).count("-->") == 1
    assert result.to_vtt(level="word").count("-->") == len(words)


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory, recording):
    directory = tmp_path_factory.mktemp("subtitle")
    audio, sr, _ = recording
    wav, txt = directory / "talk.wav", directory / "talk.txt"
    sf.write(wav, np.stack([audio, audio], axis=1), sr)                 # stereo is fine
    txt.write_text(TEXT, encoding="utf-8")
    return wav, txt


@needs_espeak
def test_cli_subtitle_writes_all_formats(cli_inputs, tmp_path, capsys, recording):
    wav, txt = cli_inputs
    out = tmp_path / "subs"
    status = main(["subtitle", str(wav), str(txt), "--out", str(out), "--format", "srt", "vtt", "csv",
                   "--level", "word", "--voice", "en-us", "--rate", "190", "--no-progress"])
    assert status == 0
    srt, vtt, table = (out / "talk.srt").read_text(), (out / "talk.vtt").read_text(), out / "talk.csv"
    n_words = len(recording.words)
    assert srt.startswith("1\n00:00:0") and srt.count("-->") == n_words and f"\n{n_words}\n" in srt
    assert vtt.startswith("WEBVTT\n\n") and vtt.count("-->") == n_words
    with open(table, newline="") as f:
        rows = list(csv.reader(f))
    starts = np.array([float(r[0]) for r in rows[1:]])
    truth = np.array([w.start for w in recording.words])
    assert np.median(np.abs(starts - truth)) * 1e3 < THRESHOLD_MS
    printed = capsys.readouterr().out
    assert f"{n_words} words, 2 sentences" in printed and "talk.csv" in printed


@needs_espeak
def test_cli_subtitle_sentence_default(cli_inputs, tmp_path, capsys):
    wav, txt = cli_inputs
    assert main(["subtitle", str(wav), str(txt), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "talk.srt").read_text().count("-->") == 2      # one cue per sentence
    assert main(["subtitle", str(wav), str(txt), "--out", str(tmp_path), "--line-length", "20",
                 "--force"]) == 0                                      # talk.srt exists: replace it
    srt = (tmp_path / "talk.srt").read_text()
    assert srt.count("-->") > 2                                        # long sentences cut into cues
    assert max(len(line) for line in srt.splitlines()) <= 29           # 20 or one long word + timestamps


def test_cli_subtitle_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["subtitle", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "forced alignment" in text and "--level" in text and "examples:" in text


@pytest.mark.parametrize("case, match", [
    ("missing audio", "audio file not found"),
    ("missing text", "text file not found"),
    ("empty text", "is empty"),
    ("latin-1 text", "UTF-8"),
    ("unreadable audio", "could not read audio file"),
    ("text is a folder", "directory"),
    ("out is a file", "must be a folder"),
    ("too short audio", "too short: 0.181 s"),
    ("bad voice", "unknown eSpeak voice"),
])
def test_cli_subtitle_readable_errors(case, match, tmp_path, capsys):
    if case == "bad voice" and not _espeak_available():
        pytest.skip("needs eSpeak NG")
    wav, txt = tmp_path / "a.wav", tmp_path / "a.txt"
    sf.write(wav, np.zeros(13000, np.float32), 22050)              # 0.59 s: just long enough
    txt.write_text("Hello there.", encoding="utf-8")
    args = [str(wav), str(txt), "--out", str(tmp_path / "out")]
    if case == "missing audio":
        args[0] = str(tmp_path / "nope.wav")
    elif case == "missing text":
        args[1] = str(tmp_path / "nope.txt")
    elif case == "empty text":
        txt.write_text("  \n", encoding="utf-8")
    elif case == "latin-1 text":
        txt.write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    elif case == "unreadable audio":
        wav.write_bytes(b"RIFF but not really a wave file")
    elif case == "text is a folder":
        args[1] = str(tmp_path)
    elif case == "out is a file":
        args[3] = str(txt)
    elif case == "too short audio":
        sf.write(wav, np.zeros(4000, np.float32), 22050)
    elif case == "bad voice":
        args += ["--voice", "xx-nonexistent"]
    with pytest.raises(SystemExit) as info:
        main(["subtitle", *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and match in err and "Traceback" not in err
    if case == "too short audio":
        assert str(wav) in err and err.count("\n") == 1


@pytest.mark.parametrize("option, value, message", [
    ("--rate", "20", "must be between 80 and 450 words per minute, got 20"),
    ("--rate", "fast", "expected an integer, got 'fast'"),
    ("--line-length", "-1", "must be a non-negative integer, got -1"),
    ("--min-confidence", "1.5", "must be a number between 0 and 1, got 1.5"),
    ("--min-confidence", "-0.1", "must be a number between 0 and 1, got -0.1"),
    ("--min-confidence", "nan", "must be a number between 0 and 1, got nan"),
    ("--min-confidence", "high", "expected a number between 0 and 1, got 'high'"),
    ("--low-confidence", "hide", "invalid choice: 'hide'"),
    ("--format", "docx", "invalid choice: 'docx'"),
])
def test_cli_subtitle_option_errors_print_usage(option, value, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["subtitle", "a.wav", "a.txt", "--out", "subs", option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mmalign subtitle") and f"error: argument {option}: {message}" in err
