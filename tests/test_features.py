import numpy as np
import pytest
import soundfile as sf

from mmalign.datasets import synthesize_performances
from mmalign.features import chroma, frame_rate, load_audio, mfcc

SR = 22050


def tone(freq, seconds=1.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ------------------------------------------------------------------ chroma
def test_chroma_is_time_first_and_unit_norm():
    y = tone(440.0)
    C = chroma(y, SR, hop_length=512)
    assert C.shape == (1 + len(y) // 512, 12)
    assert C.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("midi", [57, 60, 64, 71])
def test_chroma_finds_the_pitch_class(midi):
    C = chroma(tone(440.0 * 2 ** ((midi - 69) / 12)), SR)
    assert int(np.argmax(C.mean(axis=0))) == midi % 12


def test_chroma_hop_sets_frame_count():
    y = tone(330.0)
    assert len(chroma(y, SR, hop_length=256)) == 1 + len(y) // 256


def test_chroma_tracks_the_synthetic_melody():
    pair = synthesize_performances(12, seed=2, chord_probability=0.0)
    hop = 512
    C = chroma(pair.audio_a, pair.sr, hop_length=hop)
    ends = np.append(pair.onsets_a[1:], pair.onsets_a[-1] + 0.2)
    hits = 0
    for start, end, notes in zip(pair.onsets_a, ends, pair.pitches):
        frames = slice(int((start + 0.05) * SR / hop), max(int((end - 0.02) * SR / hop), int((start + 0.05) * SR / hop) + 1))
        hits += int(np.argmax(C[frames].mean(axis=0))) == notes[0] % 12
    assert hits >= 11


def test_chroma_works_at_low_sample_rate():
    C = chroma(tone(440.0, sr=8000), 8000, hop_length=256)
    assert C.shape[1] == 12 and int(np.argmax(C.mean(axis=0))) == 9


def test_features_do_not_modify_input():
    y = tone(220.0)
    before = y.copy()
    chroma(y, SR)
    mfcc(y, SR)
    np.testing.assert_array_equal(y, before)


def test_mfcc_shape_and_dtype():
    y = tone(220.0).astype(np.float64)
    M = mfcc(y, SR, n_mfcc=13, hop_length=256)
    assert M.shape == (1 + len(y) // 256, 13) and M.dtype == np.float64
    assert np.all(np.isfinite(M))


@pytest.mark.parametrize("func", [chroma, mfcc])
@pytest.mark.parametrize(
    "y, match",
    [
        (np.zeros((2, 1000), dtype=np.float32), "1-D"),
        (np.zeros(1000, dtype=np.int16), "floating"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.0, np.nan, 0.0] * 400), "NaN"),
    ],
)
def test_bad_signal_raises(func, y, match):
    with pytest.raises(ValueError, match=match):
        func(y, SR)


@pytest.mark.parametrize("kwargs, name", [(dict(sr=0), "sr"), (dict(hop_length=0), "hop_length"),
                                          (dict(sr=22050.5), "sr")])
def test_bad_parameters_raise(kwargs, name):
    args = dict(sr=SR, hop_length=512) | kwargs
    with pytest.raises(ValueError, match=name):
        chroma(tone(440.0), args["sr"], hop_length=args["hop_length"])


def test_mfcc_rejects_bad_n_mfcc():
    with pytest.raises(ValueError, match="n_mfcc"):
        mfcc(tone(440.0), SR, n_mfcc=0)


@pytest.mark.parametrize("kwargs, name", [(dict(n_fft=0), "n_fft"), (dict(top_db=-1.0), "top_db"),
                                          (dict(top_db=float("nan")), "top_db")])
def test_mfcc_rejects_bad_window_and_floor(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mfcc(tone(440.0), SR, **kwargs)


def test_mfcc_is_the_one_mfcc_of_the_applications():
    # One MFCC (mmalign.features.mfcc); the applications pass their settings, their results unchanged.
    import librosa

    from mmalign.apps.forced_alignment import speech_features
    from mmalign.apps.sync import sync_features

    rng = np.random.default_rng(0)
    y = (tone(330.0) + 0.05 * rng.standard_normal(SR)).astype(np.float32)
    y[: SR // 4] = 0.0                                          # a silent start: the dB floor matters
    np.testing.assert_array_equal(mfcc(y, SR), librosa.feature.mfcc(y=y, sr=SR).T)
    # sync: no dB floor (top_db=None), then minus the mean over the recording
    M = mfcc(y, SR, hop_length=448, top_db=None)
    assert not np.array_equal(M, mfcc(y, SR, hop_length=448))
    np.testing.assert_array_equal(sync_features(y, SR, features="mfcc", hop_length=448),
                                  (M - M.mean(axis=0, dtype=np.float64)).astype(np.float32))
    # forced alignment: the numpy speech MFCC (25 ms every 10 ms at any rate), its deltas, a speech column
    from mmalign.features.speech_frames import deltas, speech_mfcc

    raw = speech_features(y, SR, normalize=False, deltas=False)
    assert raw.dtype == np.float64
    np.testing.assert_array_equal(raw, speech_mfcc(y, SR, fmax=8000.0))
    speech = np.arange(len(raw)) % 3 > 0
    full = speech_features(y, SR, normalize=False, speech=speech, speech_weight=2.0)
    np.testing.assert_array_equal(full[:, 13:26], deltas(raw))
    np.testing.assert_array_equal(full[:, -1], 2.0 * speech)
    normed = speech_features(y, SR, speech=speech)
    np.testing.assert_allclose(normed[speech, :26].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(normed[speech, :26].std(axis=0), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="speech"):
        speech_features(y, SR, speech=speech[:-1])


# ------------------------------------------------------------------ frame_rate
def test_frame_rate():
    assert frame_rate(22050, 512) == pytest.approx(43.06640625)
    assert frame_rate(16000, 160) == 100.0
    with pytest.raises(ValueError, match="hop_length"):
        frame_rate(22050, 0)
    with pytest.raises(ValueError, match="sr"):
        frame_rate(-1, 512)


# ------------------------------------------------------------------ load_audio
def test_load_audio_resamples_and_mixes_down(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = tone(440.0, 0.5, 16000), np.zeros(8000, dtype=np.float32)
    sf.write(path, np.stack([left, right], axis=1), 16000)
    y, sr = load_audio(path, sr=SR)
    assert sr == SR and y.dtype == np.float32 and y.shape == (SR // 2,)
    assert np.max(np.abs(y)) == pytest.approx(0.25, rel=0.05)

    native, native_sr = load_audio(str(path), sr=None, mono=False)
    assert native_sr == 16000 and native.shape == (8000, 2)
    np.testing.assert_allclose(native[:, 0], left, atol=1e-4)


def test_load_audio_flac(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, tone(440.0, 0.25), SR)
    y, sr = load_audio(path)
    assert sr == SR and len(y) == SR // 4


def test_load_audio_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.wav"
    with pytest.raises(FileNotFoundError, match="nowhere.wav"):
        load_audio(missing)


def test_load_audio_unreadable_file(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"this is not a RIFF file at all" * 10)
    with pytest.raises(ValueError, match="noise.wav"):
        load_audio(path)


def test_load_audio_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(ValueError, match="no samples"):
        load_audio(path)


def test_load_audio_rejects_bad_sr(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440.0, 0.1), SR)
    with pytest.raises(ValueError, match="sr"):
        load_audio(path, sr=-5)
