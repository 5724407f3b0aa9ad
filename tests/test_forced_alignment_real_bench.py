"""Scoring of the ``forced_alignment_real`` benchmark: fabricated references and predictions with known errors.

Pure numpy: no pocketsphinx, aeneas or eSpeak needed.
"""

import json

import numpy as np
import pytest

from benchmarks import _aeneas
from benchmarks import _speech_reference as ref_data
from benchmarks.forced_alignment_real import (edge_errors, energy_speech_span, error_summary, overall_summary,
                                              uniform_words, verdicts, word_errors)

REF = [{"word": "ten", "start": 0.10, "end": 0.40},
       {"word": "of", "start": 0.40, "end": 0.50},
       {"word": "clubs", "start": 0.50, "end": 1.00}]


def _shift(words, starts_ms, ends_ms):
    return [{"word": w["word"], "start": w["start"] + s / 1000, "end": w["end"] + e / 1000}
            for w, s, e in zip(words, starts_ms, ends_ms)]


def test_word_errors_are_signed_prediction_minus_reference():
    s, e = word_errors(REF, _shift(REF, [10, -30, 120], [-5, 0, 70]))
    np.testing.assert_allclose(s * 1000, [10, -30, 120], atol=1e-9)
    np.testing.assert_allclose(e * 1000, [-5, 0, 70], atol=1e-9)


def test_word_errors_accept_pairs_and_segments():
    class Seg:
        def __init__(self, start, end):
            self.start, self.end = start, end

    s, e = word_errors([(0.0, 1.0)], [Seg(0.25, 0.75)])
    assert s.tolist() == [0.25] and e.tolist() == [-0.25]


def test_word_errors_need_the_same_number_of_words():
    with pytest.raises(ValueError, match="same transcript"):
        word_errors(REF, REF[:2])
    with pytest.raises(ValueError, match="no words"):
        word_errors([], [])


def test_error_summary_medians_means_and_within_fractions():
    out = error_summary(np.array([0.010, -0.030, 0.120, 0.050]), np.array([0.0, 0.0, -0.2, 0.06]))
    assert out["words"] == 4
    assert out["median_abs_start_ms"] == pytest.approx(40.0)
    assert out["mean_abs_start_ms"] == pytest.approx(52.5)
    assert out["median_abs_end_ms"] == pytest.approx(30.0)
    assert out["mean_abs_end_ms"] == pytest.approx(65.0)
    assert out["start_within_20ms_pct"] == pytest.approx(25.0)
    assert out["start_within_50ms_pct"] == pytest.approx(75.0)     # 50 ms exactly counts as within
    assert out["start_within_100ms_pct"] == pytest.approx(75.0)
    assert out["end_within_50ms_pct"] == pytest.approx(50.0)


def test_error_summary_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        error_summary([], [])
    with pytest.raises(ValueError):
        error_summary([0.1, 0.2], [0.1])


def test_edge_errors_use_the_first_start_and_the_last_end():
    edges = edge_errors(REF, _shift(REF, [-40, 500, 500], [500, 500, 61]))
    assert edges["first_start_ms"] == pytest.approx(-40)
    assert edges["last_end_ms"] == pytest.approx(61)
    assert edges["both_within_60ms"] is False
    assert edge_errors(REF, _shift(REF, [60, 0, 0], [0, 0, -60]))["both_within_60ms"] is True


def test_overall_summary_pools_words_and_counts_recordings_for_edges():
    good = {"start_errors": [0.0, 0.01], "end_errors": [0.0, 0.0],
            "edges": {"first_start_ms": 0.0, "last_end_ms": 0.0, "both_within_60ms": True}}
    bad = {"start_errors": [0.2], "end_errors": [-0.3],
           "edges": {"first_start_ms": 200.0, "last_end_ms": -300.0, "both_within_60ms": False}}
    out = overall_summary([good, bad])
    assert out["words"] == 3 and out["recordings"] == 2
    assert out["median_abs_start_ms"] == pytest.approx(10.0)
    assert out["start_within_50ms_pct"] == pytest.approx(200 / 3)
    assert out["max_abs_edge_ms"] == pytest.approx(300.0)
    assert out["both_edges_within_60ms_pct"] == pytest.approx(50.0)
    with pytest.raises(ValueError):
        overall_summary([])


def test_uniform_words_split_the_span_by_characters():
    spans = uniform_words(["ten", "of", "clubs"], 0.0, 1.0)
    np.testing.assert_allclose(np.array(spans), [[0.0, 0.3], [0.3, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError):
        uniform_words([], 0.0, 1.0)
    with pytest.raises(ValueError):
        uniform_words(["a"], 1.0, 0.5)


def test_energy_span_finds_a_tone_in_quiet_noise():
    sr = 16000
    t = np.arange(sr) / sr
    x = 1e-4 * np.random.default_rng(0).standard_normal(sr)
    x[(t >= 0.3) & (t < 0.7)] += 0.5 * np.sin(2 * np.pi * 300 * t[(t >= 0.3) & (t < 0.7)])
    start, end = energy_speech_span((x * 32767).astype(np.int16), sr)
    assert abs(start - 0.3) <= 0.02 and abs(end - 0.7) <= 0.02


def _overall(median_start, median_end, within50, both_edges, max_edge=10.0):
    return {"median_abs_start_ms": median_start, "median_abs_end_ms": median_end,
            "start_within_50ms_pct": within50, "both_edges_within_60ms_pct": both_edges,
            "max_abs_edge_ms": max_edge}


def test_verdicts_compare_with_the_targets_and_with_aeneas():
    results = {"mmalign": {"overall": _overall(15, 20, 95, 100), "seconds_per_recording": 0.4},
               "aeneas": {"overall": _overall(40, 50, 60, 50), "seconds_per_recording": 0.5}}
    assert [v["met"] for v in verdicts(results)] == [True, True, True, True, True]
    results["mmalign"] = {"overall": _overall(25, 60, 80, 90, 120), "seconds_per_recording": 2.0}
    assert [v["met"] for v in verdicts(results)] == [False, False, False, False, False]


def test_verdicts_without_aeneas_are_not_measured():
    out = verdicts({"mmalign": {"overall": _overall(15, 20, 95, 100), "seconds_per_recording": 0.4}})
    assert [v["met"] for v in out] == [True, True, True, None, None]


def test_hypseg_line_gives_words_without_silences_and_variants():
    line = "utt S 0 T -1359 A -1359 L 0 0 -341 0 <sil> 18 -370 0 five 72 -162 0 <sil> 83 -315 0 and(2) 124 -171 0 <sil> 153"
    words = ref_data.parse_hypseg(line)
    assert words == [{"word": "five", "start": 0.18, "end": 0.72}, {"word": "and", "start": 0.83, "end": 1.24}]
    with pytest.raises(ValueError):
        ref_data.parse_hypseg("not a hypseg line")


def test_grammar_holds_exactly_the_transcript():
    assert ref_data.grammar(["ten", "of", "clubs"]).splitlines()[-1] == "public <s> = ten of clubs;"


def test_transcription_file_and_tidigits_names(tmp_path):
    p = tmp_path / "t.transcription"
    p.write_text("<s> TEN of clubs  </s> (001)\n<s> five five </s> (004)\n")
    assert ref_data._read_transcription(p) == {"001": "ten of clubs", "004": "five five"}
    assert ref_data.tidigits_transcript("2934z") == "two nine three four zero"
    assert ref_data.tidigits_transcript("o1") == "oh one"
    with pytest.raises(ValueError):
        ref_data.tidigits_transcript("2x")


def test_reserved_files_are_refused():
    with pytest.raises(ValueError, match="reserved"):
        ref_data.load_audio(ref_data.DATA_DIR / "goforward.raw")
    with pytest.raises(ValueError, match="reserved"):
        ref_data.load_audio(ref_data.DATA_DIR / "librivox" / "x.wav")


def test_aeneas_sync_map_parsing():
    data = json.loads('{"fragments": [{"begin": "0.000", "end": "0.240", "id": "f000001", "lines": ["eight"]},'
                      '{"begin": "0.240", "end": "0.680", "id": "f000002", "lines": ["of"]}]}')
    assert _aeneas.parse_sync_map(data) == [{"word": "eight", "start": 0.0, "end": 0.24},
                                            {"word": "of", "start": 0.24, "end": 0.68}]
