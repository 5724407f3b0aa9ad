"""Numpy speech frames (mmalign.features.speech_frames) and speech-activity detection (speech_activity)."""

import numpy as np
import pytest

from mmalign.features.speech_activity import SpeechActivity, detect_speech
from mmalign.features.speech_frames import (FrameSpec, _dct_matrix, deltas, log_mel, mel_filterbank,
                                            power_spectrogram, speech_mfcc)


def tone(sr, seconds, freq=220.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return amp * np.sin(2 * np.pi * freq * t)


# ------------------------------------------------------------------ frames
@pytest.mark.parametrize("sr, win, hop, n_fft", [(16000, 400, 160, 512), (22050, 551, 220, 1024),
                                                 (8000, 200, 80, 256), (44100, 1102, 441, 2048)])
def test_frame_spec_is_the_same_duration_at_every_rate(sr, win, hop, n_fft):
    spec = FrameSpec(sr)
    assert (spec.win_length, spec.hop_length, spec.n_fft) == (win, hop, n_fft)
    assert spec.frame_rate == pytest.approx(100.0, rel=0.01)
    assert spec.n_frames(sr) == 1 + sr // hop


def test_power_spectrogram_peaks_at_the_tone_and_matches_numpy_stft():
    sr = 16000
    y = tone(sr, 0.5, freq=1000.0)
    spec = FrameSpec(sr)
    S = power_spectrogram(y, spec)
    assert S.shape == (spec.n_frames(len(y)), spec.n_fft // 2 + 1)
    assert np.argmax(S[25]) == round(1000 * spec.n_fft / sr)
    # frame 10 by hand: centred on sample 10 * hop
    start = 10 * spec.hop_length - spec.win_length // 2
    frame = y[start:start + spec.win_length] * np.hanning(spec.win_length + 2)[1:-1]
    np.testing.assert_allclose(S[10], np.abs(np.fft.rfft(frame, spec.n_fft)) ** 2, rtol=1e-10)


def test_input_is_not_modified_and_float32_works():
    y = tone(16000, 0.3).astype(np.float32)
    before = y.copy()
    M = speech_mfcc(y, 16000)
    np.testing.assert_array_equal(y, before)
    assert M.dtype == np.float64 and np.all(np.isfinite(M))


def test_mel_filterbank_covers_the_band_and_caps_fmax_at_nyquist():
    fb = mel_filterbank(16000, 512, n_mels=40, fmin=60.0, fmax=7600.0)
    assert fb.shape == (257, 40) and fb.min() >= 0 and np.all(fb.max(axis=0) > 0.5)
    low = mel_filterbank(8000, 256, fmax=7600.0)              # capped at 4000 Hz
    freqs = np.arange(129) * 8000 / 256
    assert freqs[np.flatnonzero(low.sum(axis=1))].max() <= 4000
    with pytest.raises(ValueError, match="fmin"):
        mel_filterbank(16000, 512, fmin=9000.0)


def test_dct_matrix_is_scipy_orthonormal_dct():
    scipy_fft = pytest.importorskip("scipy.fft")
    x = np.random.default_rng(0).standard_normal((7, 40))
    np.testing.assert_allclose(x @ _dct_matrix(40, 13), scipy_fft.dct(x, norm="ortho", axis=1)[:, :13], atol=1e-12)


def test_two_rates_give_comparable_frames_when_the_band_is_shared():
    pytest.importorskip("scipy.signal")
    from scipy.signal import resample_poly

    rng = np.random.default_rng(1)
    y22 = np.convolve(rng.standard_normal(22050), np.ones(8) / 8, mode="same")     # low-passed noise
    y16 = resample_poly(y22, 320, 441)
    a = log_mel(y22, 22050, fmax=7000.0)
    b = log_mel(y16, 16000, fmax=7000.0)
    n = min(len(a), len(b))
    # the same sound at two rates: per-band log energies agree up to a constant gain
    diff = (a[5:n - 5] - b[5:n - 5])
    assert np.abs(diff - diff.mean()).mean() < 0.5


def test_deltas_of_a_ramp_and_bad_input():
    M = np.column_stack([np.arange(10.0), 2 * np.arange(10.0)])
    d = deltas(M)
    np.testing.assert_allclose(d[2:-2], [[1.0, 2.0]] * 6)
    with pytest.raises(ValueError, match="2-D"):
        deltas(np.arange(5.0))
    with pytest.raises(ValueError, match="width"):
        deltas(M, width=0)


@pytest.mark.parametrize("bad, match", [(np.zeros(0), "empty"), (np.full(100, np.nan), "NaN"),
                                        (np.zeros(100, np.int16), "floating"), (np.zeros((2, 100)), "1-D")])
def test_bad_signals_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        speech_mfcc(bad, 16000)
    with pytest.raises(ValueError, match=match):
        detect_speech(bad, 16000)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="sr"):
        FrameSpec(0)
    with pytest.raises(ValueError, match="hop"):
        FrameSpec(16000, hop=0.0)
    with pytest.raises(ValueError, match="n_mfcc"):
        speech_mfcc(tone(16000, 0.2), 16000, n_mfcc=0)
    with pytest.raises(ValueError, match="high_db"):
        detect_speech(tone(16000, 0.2), 16000, high_db=1.5)
    with pytest.raises(ValueError, match="low_db"):
        detect_speech(tone(16000, 0.2), 16000, high_db=0.2, low_db=0.3)
    with pytest.raises(ValueError, match="min_pause"):
        detect_speech(tone(16000, 0.2), 16000, min_pause=-1)


# ------------------------------------------------------------------ speech activity
def bursts(sr, spans, total, noise_db=-60.0, seed=0):
    """Harmonic bursts (a crude voiced sound) at ``spans`` seconds, in white noise ``noise_db`` below them."""
    t = np.arange(int(sr * total)) / sr
    y = np.zeros_like(t)
    for a, b in spans:
        inside = (t >= a) & (t < b)
        y[inside] = sum(np.sin(2 * np.pi * 150 * k * t[inside]) / k for k in range(1, 12))
    y *= 0.3 / np.abs(y).max()
    rng = np.random.default_rng(seed)
    return y + 0.3 * 10 ** (noise_db / 20) * rng.standard_normal(len(t))


@pytest.mark.parametrize("noise_db", [-60.0, -35.0])
def test_detect_speech_finds_onset_offset_and_pauses(noise_db):
    sr = 16000
    y = bursts(sr, [(0.40, 1.10), (1.45, 2.00), (2.10, 2.50)], 3.0, noise_db)
    act = detect_speech(y, sr)
    assert isinstance(act, SpeechActivity) and act.mask.dtype == bool
    assert act.onset == pytest.approx(0.40, abs=0.02)
    assert act.offset == pytest.approx(2.50, abs=0.02)
    # the 350 ms pause is kept, the 100 ms one closed (min_pause 0.15 s)
    pauses = act.pauses()
    assert len(pauses) == 1 and pauses[0][0] == pytest.approx(1.10, abs=0.02)
    assert pauses[0][1] == pytest.approx(1.45, abs=0.02)
    assert len(detect_speech(y, sr, min_pause=0.05).pauses()) == 2
    assert act.dynamic_range_db > 20


def test_detect_speech_drops_clicks_and_handles_silence():
    sr = 16000
    y = bursts(sr, [(0.5, 1.0)], 2.0)
    y[int(1.5 * sr):int(1.5 * sr) + 40] += 0.3               # a 2.5 ms click
    act = detect_speech(y, sr)
    assert len(act.intervals) == 1
    silent = detect_speech(np.zeros(sr), sr)
    assert not silent.mask.any() and silent.onset is None and silent.offset is None and silent.pauses() == []
