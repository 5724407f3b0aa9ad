"""Forced alignment around the speech: silence, noise and music at the edges, pauses, confidence.

The "recordings" are eSpeak NG renderings in another voice and rate than the
aligner's, with silence, white noise or a run of synthetic music notes put
before and after them and a pause put between their sentences: the truth is
the rendering's own word times, shifted by what was inserted.
"""

import numpy as np
import pytest

from mmalign.apps import forced_alignment as fa
from mmalign.apps.forced_alignment import align_text
from mmalign.features import speech

try:
    speech.espeak_version()
    HAVE_ESPEAK = True
except ImportError:
    HAVE_ESPEAK = False

pytestmark = pytest.mark.skipif(not HAVE_ESPEAK, reason='eSpeak NG not installed (pip install "mmalign[speech]")')

TEXT = ("The quick brown fox jumps over the lazy dog. "
        "Then it runs away, far across the silent fields, and nobody sees it again.")
EDGE_MS = 60.0


@pytest.fixture(scope="module")
def rendering():
    return speech.synthesize_speech(TEXT, voice="en-gb+f3", rate_wpm=130)


def music(sr, seconds, level, seed):
    """Decaying harmonic notes, a new one every 0.25 s: tonal and loud, like a jingle."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    step = int(0.25 * sr)
    for k in range(0, len(t), step):
        part = t[k:k + step]
        f = rng.choice([220.0, 277.2, 329.6, 392.0, 440.0])
        out[k:k + step] = sum(np.sin(2 * np.pi * f * h * part) / h for h in range(1, 6)) * np.exp(-3 * (part - part[0]))
    return level * out / np.abs(out).max()


def build(rendering, head, tail, *, pause=0.0, noise_db=-50.0, seed=0):
    """The rendering with ``head`` / ``tail`` samples around it and ``pause`` s of silence between its sentences."""
    y = rendering.audio.astype(np.float64)
    sr = rendering.sr
    words = [(w.start, w.end) for w in rendering.words]
    cut = rendering.words[8].end + 0.5 * (rendering.words[9].start - rendering.words[8].end)   # after "dog."
    gap = np.zeros(int(round(pause * sr)))
    at = int(round(cut * sr))
    audio = np.concatenate([head, y[:at], gap, y[at:], tail])
    offset = len(head) / sr
    truth = np.array([(a + offset + (len(gap) / sr if a > cut else 0.0),
                       b + offset + (len(gap) / sr if b > cut else 0.0)) for a, b in words])
    rng = np.random.default_rng(seed)
    # a room's noise floor (real recordings: 40-50 dB below the speech); the truth, eSpeak's word events,
    # ends a word where its level falls 40 dB below the loudest sample
    floor = np.abs(y).max() * 10 ** (noise_db / 20)
    return audio + floor * rng.standard_normal(len(audio)), sr, truth


def edge_errors_ms(result, truth):
    t = result.word_times()
    return 1e3 * (t[0, 0] - truth[0, 0]), 1e3 * (t[-1, 1] - truth[-1, 1])


def test_leading_and_trailing_silence_are_not_words(rendering):
    sr = rendering.sr
    audio, sr, truth = build(rendering, np.zeros(int(1.5 * sr)), np.zeros(int(1.0 * sr)))
    result = align_text(TEXT, audio, sr)
    first, last = edge_errors_ms(result, truth)
    assert abs(first) < EDGE_MS and abs(last) < EDGE_MS
    assert result.speech[0][0] == pytest.approx(truth[0, 0], abs=0.06)


def test_noise_before_and_after_is_skipped(rendering, monkeypatch):
    sr = rendering.sr
    rng = np.random.default_rng(1)
    level = 0.05 * np.abs(rendering.audio).max()
    audio, sr, truth = build(rendering, level * rng.standard_normal(2 * sr),
                             level * rng.standard_normal(int(1.5 * sr)))
    first, last = edge_errors_ms(align_text(TEXT, audio, sr), truth)
    assert abs(first) < EDGE_MS and abs(last) < EDGE_MS
    # what makes it work: without speech-activity edges, skipping and the hold weight, plain DTW spreads
    # the words into the noise ("The" starts with a hiss)
    monkeypatch.setattr(fa, "_skip_cost", lambda costs, speech: None)
    monkeypatch.setattr(fa, "HOLD_WEIGHT", 1.0)
    plain_first, plain_last = edge_errors_ms(align_text(TEXT, audio, sr, edges=False), truth)
    assert max(abs(plain_first), abs(plain_last)) > 10 * EDGE_MS


def test_music_before_and_after_is_left_unmatched(rendering, monkeypatch):
    sr = rendering.sr
    level = 0.5 * np.abs(rendering.audio).max()
    audio, sr, truth = build(rendering, music(sr, 3.0, level, 0), music(sr, 2.0, level, 1))
    result = align_text(TEXT, audio, sr)
    first, last = edge_errors_ms(result, truth)
    assert abs(first) < 3 * EDGE_MS and abs(last) < 2 * EDGE_MS      # instead of seconds into the music
    errors = 1e3 * np.abs(result.word_times() - truth)
    assert np.median(errors) < 30
    monkeypatch.setattr(fa, "HOLD_WEIGHT", 1.0)         # the rendering may hold a sound through the music
    held = edge_errors_ms(align_text(TEXT, audio, sr), truth)
    assert max(abs(held[0]), abs(held[1])) > 10 * EDGE_MS


def test_a_long_pause_becomes_a_gap(rendering):
    audio, sr, truth = build(rendering, np.zeros(rendering.sr // 2), np.zeros(rendering.sr // 2), pause=1.2)
    result = align_text(TEXT, audio, sr)
    t = result.word_times()
    assert abs(t[8, 1] - truth[8, 1]) < 0.06            # "dog" ends where the pause starts
    assert abs(t[9, 0] - truth[9, 0]) < 0.06            # "Then" starts where it ends
    assert t[9, 0] - t[8, 1] > 1.0
    assert result.sentences[0].end < result.sentences[1].start


def test_noisy_speech_keeps_its_edges(rendering):
    sr = rendering.sr
    audio, sr, truth = build(rendering, np.zeros(sr), np.zeros(sr), noise_db=-30)
    first, last = edge_errors_ms(align_text(TEXT, audio, sr), truth)
    assert abs(first) < EDGE_MS and abs(last) < EDGE_MS


def test_confidence_flags_a_wrong_transcript(rendering):
    audio, sr, _ = build(rendering, np.zeros(rendering.sr // 2), np.zeros(rendering.sr // 2))
    right = align_text(TEXT, audio, sr)
    wrong = align_text("Please call Stella and ask her to bring these things with her from the store. "
                       "Six spoons of fresh snow peas, five thick slabs of blue cheese.", audio, sr)
    assert right.confidence >= fa.LOW_CONFIDENCE > wrong.confidence
    for result in (right, wrong):
        assert all(0.0 <= s.confidence <= 1.0 for s in result.words + result.sentences)
    assert np.mean([w.confidence for w in right.words]) > np.mean([w.confidence for w in wrong.words])


def test_a_replaced_word_has_the_lowest_confidence(rendering):
    audio, sr, _ = build(rendering, np.zeros(rendering.sr // 2), np.zeros(rendering.sr // 2))
    changed = TEXT.replace("lazy", "enormous")
    result = align_text(changed, audio, sr)
    confidence = {w.text: w.confidence for w in result.words}
    others = [c for word, c in confidence.items() if word != "enormous"]
    assert confidence["enormous"] < np.median(others)


def test_too_short_and_bad_options():
    with pytest.raises(ValueError, match="too short"):
        align_text("hello", np.zeros(400, np.float32), 16000)
    with pytest.raises(ValueError, match="edges"):
        align_text("hello", np.zeros(16000, np.float32), 16000, edges="yes")
    with pytest.raises(ValueError, match="method"):
        align_text("hello", np.zeros(16000, np.float32), 16000, method="fast")
