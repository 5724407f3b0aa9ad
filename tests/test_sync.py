"""mmalign.apps.sync (audio-to-audio synchronisation) and the ``mmalign sync`` command."""

import csv

import numpy as np
import pytest
import soundfile as sf

from mmalign import Alignment, metrics
from mmalign.cli import main
from mmalign.datasets import synthesize_performances, synthesize_speech_like
from mmalign.apps.sync import (
    FEATURES,
    align_features,
    feature_dim,
    feature_hop,
    stream_features,
    sync_features,
    synchronize,
    time_stretch_piecewise,
    warp_audio_preview,
    write_preview,
)
from mmalign.apps.sync._stream import SequentialReader, array_blocks, file_blocks

SR = 22050


@pytest.fixture(scope="module")
def pair():
    return synthesize_performances(12, sr=SR, seed=4)


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory, pair):
    directory = tmp_path_factory.mktemp("sync_audio")
    a, b = directory / "a.wav", directory / "b.flac"
    sf.write(a, pair.audio_a, SR)
    sf.write(b, pair.audio_b, SR)
    return a, b


# --------------------------------------------------------------------------- features


def test_feature_hop_and_dim():
    assert feature_hop(22050, 50.0) == 448            # multiple of 64 for the CQT
    assert feature_hop(22050, 50.0, "mfcc") == 441
    assert feature_hop(44100, 50.0, "chroma+onset") % 64 == 0
    assert [feature_dim(f) for f in FEATURES] == [12, 20, 8, 20, 24]
    with pytest.raises(ValueError, match="features"):
        feature_hop(22050, 50.0, "pitch")
    with pytest.raises(ValueError, match="feature_rate"):
        feature_hop(22050, 0.0)


@pytest.mark.parametrize("features", FEATURES)
def test_chunked_features_match_one_pass(pair, features):
    hop = feature_hop(SR, 50.0, features)
    y = pair.audio_a
    whole = sync_features(y, SR, features=features, hop_length=hop, chunk_seconds=600)
    chunked = sync_features(y, SR, features=features, hop_length=hop, chunk_seconds=3)
    assert whole.shape == (1 + len(y) // hop, feature_dim(features)) and whole.dtype == np.float32
    np.testing.assert_allclose(chunked, whole, atol=1e-4)
    # the same from a stream of odd-sized blocks
    streamed = stream_features(array_blocks(y, block=12345), SR, features=features, hop_length=hop,
                               chunk_seconds=3)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_sync_features_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        sync_features(np.zeros((100, 2), np.float32), SR)
    with pytest.raises(ValueError, match="NaN"):
        sync_features(np.full(1000, np.nan, np.float32), SR)
    with pytest.raises(ValueError, match="features"):
        sync_features(np.zeros(1000, np.float32), SR, features="chromagram")


# --------------------------------------------------------------------------- synchronize


def test_synchronize_matches_ground_truth(pair):
    al = synchronize(pair.audio_a, pair.audio_b, sr=SR)
    assert al.extras["method"] == "dtw" and al.extras["features"] == "chroma+dlnco"
    assert al.frame_rate == pytest.approx(SR / 448)
    t = al.times()
    assert t[0].tolist() == [0.0, 0.0] and np.all(np.diff(t, axis=0) >= 0)
    assert t[-1, 0] == pytest.approx(len(pair.audio_a) / SR, abs=1 / al.frame_rate)
    onsets = np.column_stack([pair.onsets_a, pair.onsets_b]) * al.frame_rate
    errors_ms = 1e3 * metrics.deviations(al, onsets) / al.frame_rate
    assert np.median(errors_ms) < 25 and np.max(errors_ms) < 100

    ms = synchronize(pair.audio_a, pair.audio_b, sr=SR, method="multiscale", features="chroma+onset")
    assert ms.extras["method"] == "multiscale"
    assert np.median(1e3 * metrics.deviations(ms, onsets * ms.frame_rate / al.frame_rate) / ms.frame_rate) < 25


def test_synchronize_errors(pair):
    with pytest.raises(ValueError, match="audio_b lasts 0.010 s"):
        synchronize(pair.audio_a, pair.audio_a[:220], sr=SR)
    with pytest.raises(ValueError, match="method"):
        synchronize(pair.audio_a, pair.audio_b, sr=SR, method="fast")
    with pytest.raises(ValueError, match="features"):
        synchronize(pair.audio_a, pair.audio_b, sr=SR, features="cqt")


def test_align_features_auto_switches_to_multiscale(monkeypatch):
    import importlib

    module = importlib.import_module("mmalign.apps.sync.core")

    x = np.sin(np.linspace(0, 20, 600))[:, None]
    y = np.sin(np.linspace(0, 20, 700) ** 1.02)[:, None]
    assert align_features(x, y, frame_rate=50.0).extras["method"] == "dtw"
    monkeypatch.setattr(module, "AUTO_EXACT_CELLS", 1000)
    al = align_features(x, y, frame_rate=50.0)
    assert al.extras["method"] == "multiscale" and al.shape == (600, 700)


# --------------------------------------------------------------------------- stretching and preview


def test_time_stretch_piecewise_follows_the_map():
    speech = synthesize_speech_like(6.0, sr=16000, seed=2)
    y, sr = speech.audio, speech.sr
    same, knots = time_stretch_piecewise(y, sr, [(len(y) / sr, len(y) / sr)])
    np.testing.assert_allclose(same, y, atol=1e-5)                 # rate 1 reconstructs exactly
    z, knots = time_stretch_piecewise(y, sr, [(2.0, 3.0), (4.0, 4.5)])
    assert knots[0].tolist() == [0.0, 0.0] and knots[-1, 0] == pytest.approx(len(y) / sr)
    assert knots[-1, 1] == pytest.approx(4.5 + 0.75 * (len(y) / sr - 4.0))   # last rate continued
    assert len(z) == round(knots[-1, 1] * sr) and z.dtype == np.float32
    # energy envelopes (20 ms frames) agree once the stretch is undone, not before
    hop = 320
    env_y = np.sqrt(np.convolve(y ** 2, np.ones(2 * hop) / hop, "same"))[::hop]
    env_z = np.sqrt(np.convolve(z ** 2, np.ones(2 * hop) / hop, "same"))[::hop]
    t_y, t_z = np.arange(len(env_y)) * hop / sr, np.arange(len(env_z)) * hop / sr
    undone = np.interp(np.interp(t_y, knots[:, 0], knots[:, 1]), t_z, env_z)
    assert np.corrcoef(env_y, undone)[0, 1] > 0.9 > 0.5 > np.corrcoef(env_y, np.interp(t_y, t_z, env_z))[0, 1]


def test_time_stretch_piecewise_rejects_bad_knots():
    y = np.zeros(8000, np.float32)
    with pytest.raises(ValueError, match="strictly increasing"):
        time_stretch_piecewise(y, 8000, [(0.5, 0.5), (0.4, 0.9)])
    with pytest.raises(ValueError, match="beyond"):
        time_stretch_piecewise(y, 8000, [(2.0, 2.0)])
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        time_stretch_piecewise(y, 8000, [1.0, 2.0])


def test_preview_retimes_b_onto_a(pair, tmp_path):
    a = pair.audio_a
    b, knots = time_stretch_piecewise(a, SR, [(2.0, 2.6), (4.0, 4.0)])
    al = synchronize(a, b, sr=SR, features="mfcc")
    warped = warp_audio_preview(b, al, SR)
    assert warped.shape == (round(al.n_x / al.frame_rate * SR),) and warped.dtype == np.float32
    # B re-timed onto A sounds like A: its features match A's frame by frame
    n = min(len(a), len(warped), len(b))
    fa = sync_features(a[:n], SR, features="chroma", hop_length=512)
    fw = sync_features(warped[:n], SR, features="chroma", hop_length=512)
    fb = sync_features(b[:n], SR, features="chroma", hop_length=512)
    assert np.mean(np.sum(fa * fw, axis=1)) > 0.9 > np.mean(np.sum(fa * fb, axis=1))

    out = write_preview(tmp_path / "p.wav", a, array_blocks(b, block=5000), al, SR)
    stereo, rate = sf.read(out)
    assert rate == SR and stereo.shape == (len(warped), 2)
    np.testing.assert_allclose(stereo[:n, 0], a[:n], atol=1e-4)   # left channel: A itself


def test_preview_needs_frame_rate(pair):
    with pytest.raises(ValueError, match="frame_rate"):
        warp_audio_preview(pair.audio_b, Alignment([[0, 0], [1, 1]]), SR)


def test_sequential_reader_and_file_blocks(tmp_path):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, 30000).astype(np.float32)
    reader = SequentialReader(array_blocks(y, block=1000))
    np.testing.assert_array_equal(reader.get(-5, 10), np.concatenate([np.zeros(5), y[:10]]))
    np.testing.assert_array_equal(reader.get(20000, 20100), y[20000:20100])   # a long skip
    with pytest.raises(ValueError, match="go back"):
        reader.get(100, 200)
    path = tmp_path / "y.wav"
    sf.write(path, np.stack([y, y], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(np.concatenate(list(file_blocks(path, block=4096))), y, atol=1e-6)
    import librosa

    resampled = np.concatenate(list(file_blocks(path, 8000, block=4096)))
    reference = librosa.resample(y, orig_sr=16000, target_sr=8000, res_type="soxr_hq")
    assert abs(len(resampled) - len(reference)) <= 1
    n = min(len(resampled), len(reference))
    np.testing.assert_allclose(resampled[100:n - 100], reference[100:n - 100], atol=1e-3)


def test_synthesize_speech_like():
    s = synthesize_speech_like(3.0, sr=16000, seed=5)
    again = synthesize_speech_like(3.0, sr=16000, seed=5)
    np.testing.assert_array_equal(s.audio, again.audio)
    assert s.duration >= 3.0 and np.max(np.abs(s.audio)) <= 1.0
    assert len(s.phones) == len(s.starts) and np.all(np.diff(s.starts) > 0)
    assert {"_"} < set(s.phones)
    with pytest.raises(ValueError, match="sr"):
        synthesize_speech_like(1.0, sr=4000)


# --------------------------------------------------------------------------- CLI


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def test_cli_sync_writes_outputs(audio_files, tmp_path, capsys):
    a, b = audio_files
    out = tmp_path / "sync"
    assert main(["sync", str(a), str(b), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "chroma" in printed and "frames/s" in printed and "wrote" in printed

    header, rows = read_csv(out / "path.csv")
    assert header == ["x_index", "y_index", "x_time", "y_time"]
    assert rows[0, :2].tolist() == [0, 0] and np.all(np.diff(rows[:, :2], axis=0) >= 0)
    np.testing.assert_allclose(rows[:, 2], rows[:, 0] * 448 / SR)
    assert rows[-1, 3] == pytest.approx(len(sf.read(b)[0]) / SR, abs=448 / SR)

    info = sf.info(out / "preview.wav")
    assert info.channels == 2 and info.samplerate == SR
    assert info.frames == pytest.approx(len(sf.read(a)[0]), abs=448)
    png = out / "alignment.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000


def test_cli_sync_options_and_resampling(audio_files, tmp_path, capsys):
    a, _ = audio_files
    b = tmp_path / "b44.wav"
    y, _ = sf.read(a)
    import librosa

    sf.write(b, librosa.resample(y, orig_sr=SR, target_sr=44100), 44100)
    out = tmp_path / "o"
    argv = ["sync", str(a), str(b), "--out", str(out), "--sr", "16000", "--features", "mfcc",
            "--method", "multiscale", "--radius", "100", "--no-preview", "--no-plot", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "resampled from 22050 / 44100 Hz" in printed and "multiscale" in printed
    assert sorted(p.name for p in out.iterdir()) == ["path.csv"]
    _, rows = read_csv(out / "path.csv")
    assert np.median(np.abs(rows[:, 3] - rows[:, 2])) < 0.05      # the same audio: the diagonal


def _error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_sync_readable_errors(audio_files, tmp_path, capsys):
    a, _ = audio_files
    out = str(tmp_path / "out")
    missing = tmp_path / "nope.wav"
    assert str(missing) in _error(capsys, ["sync", str(a), str(missing), "--out", out])

    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio" * 50)
    err = _error(capsys, ["sync", str(garbage), str(a), "--out", out])
    assert "could not read audio file" in err and str(garbage) in err

    other_rate = tmp_path / "c.wav"
    sf.write(other_rate, np.zeros(48000, np.float32), 48000)
    err = _error(capsys, ["sync", str(a), str(other_rate), "--out", out])
    assert "sample rates differ" in err and "48000 Hz" in err and "--sr" in err

    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(2000, np.float32), SR)
    err = _error(capsys, ["sync", str(a), str(short), "--out", out])
    assert "too short" in err and str(short) in err

    truncated = tmp_path / "truncated.wav"                      # the first 100 bytes of a real WAV
    truncated.write_bytes(a.read_bytes()[:100])
    err = _error(capsys, ["sync", str(truncated), str(a), "--out", out])
    assert "too short: 0.001 s" in err and str(truncated) in err

    assert "is a file" in _error(capsys, ["sync", str(a), str(a), "--out", str(a)])
    assert not (tmp_path / "out").exists()


def test_cli_sync_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sync", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for phrase in ("path.csv", "preview.wav", "alignment.png", "chroma+onset", "multiscale",
                   "sample rates", "--sr", "exit status", "examples"):
        assert phrase in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "sync" in capsys.readouterr().out
