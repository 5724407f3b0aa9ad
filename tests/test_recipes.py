"""Recipes run end to end (with --quick) and produce their outputs."""

import importlib.util
import pathlib

import pytest

RECIPES = pathlib.Path(__file__).resolve().parent.parent / "recipes"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_soft_dtw_templates(tmp_path, capsys):
    pytest.importorskip("aeon")
    result = _load("soft_dtw_templates").main(["--out", str(tmp_path), "--quick"])
    figure = tmp_path / "soft_dtw_templates.png"
    assert figure.is_file() and figure.stat().st_size > 10_000
    assert result["figure"] == str(figure)
    errors = result["errors"]
    assert errors["soft-DTW bary"] <= errors["euclidean mean"]
    assert all(0.0 <= e <= 1.0 for e in errors.values())
    assert all(history[-1] < history[0] for history in result["torch_losses"])
    out = capsys.readouterr().out
    assert "soft-DTW bary" in out and "test error" in out


def test_forced_alignment(tmp_path, capsys):
    pytest.importorskip("espeakng_loader", reason='eSpeak NG comes with pip install "mmalign[speech]"')
    result = _load("forced_alignment").main(["--out", str(tmp_path), "--quick"])
    figure = tmp_path / "forced_alignment.png"
    assert figure.is_file() and figure.stat().st_size > 20_000
    for kind in ("srt", "vtt", "csv", "wav", "txt"):
        assert (tmp_path / result[kind].rsplit("/", 1)[-1]).is_file()
    assert (tmp_path / "forced_alignment.srt").read_text().startswith("1\n00:00:0")
    for condition, scores in result["summary"].items():
        median_ms, p95_ms = scores["mmalign"]
        assert median_ms < 60 and median_ms <= p95_ms
        assert median_ms < scores["linear"][0], condition
    assert result["summary"]["clean"]["mmalign"][0] < 20
    out = capsys.readouterr().out
    assert "noise+reverb" in out and "mmalign subtitle" in out


def test_motion_sensor(tmp_path, capsys):
    pytest.importorskip("aeon")
    import json

    result = _load("motion_sensor").main(["--out", str(tmp_path), "--quick"])
    figure = tmp_path / "motion_sensor.png"
    assert figure.is_file() and figure.stat().st_size > 20_000
    written = json.loads((tmp_path / "motion_sensor.json").read_text())
    assert written["quick"] and written["results"] == result["results"]
    results = result["results"]
    sensors = results["BasicMotions accelerometer <-> gyroscope"]
    # Accelerometer vs gyroscope: different quantities, CTW finds the shared motion, DTW cannot.
    assert sensors["CTW"]["median"] < sensors["DTW"]["median"]
    assert sensors["CTW"]["median"] < 5 and sensors["GCTW"]["median"] < 5   # frames at 10 Hz
    videos = {k: v for k, v in results.items() if k.startswith("video")}
    assert "video (pixels) <-> 3-D motion" in videos
    for setting, per_method in videos.items():
        assert per_method["CTW"]["median"] < per_method["DTW"]["median"], setting
        assert per_method["CTW"]["median"] < 0.5 * per_method["uniform"]["median"], setting
        for s in per_method.values():
            assert 0 <= s["median"] <= s["p95"] and abs(s["median_s"] * 30 - s["median"]) < 1e-9
    out = capsys.readouterr().out
    assert "video (pixels)" in out and "CTW" in out and "p95" in out


def test_audio_sync(tmp_path, capsys):
    import json

    result = _load("audio_sync").main(["--out", str(tmp_path), "--quick"])
    figure = tmp_path / "audio_sync.png"
    assert figure.is_file() and figure.stat().st_size > 20_000
    assert json.loads((tmp_path / "audio_sync.json").read_text())["accuracy"] == result["accuracy"]
    for scenario, per_method in result["accuracy"].items():
        ours = per_method["mmalign DTW"]
        assert ours["median_ms"] <= ours["p95_ms"] < 60, scenario
        assert ours["median_ms"] < 0.5 * per_method["linear"]["median_ms"], scenario
        assert per_method["mmalign multiscale"]["median_ms"] < 30, scenario
        assert per_method["librosa DTW"]["n"] == ours["n"] > 10
    long = result["long_features"]
    assert long["n_frames"] == 18_000 and long["median_ms"] < 40 and long["dtw_peak_increase_mb"] < 500
    assert result["long_audio"] is None          # --quick skips the hour of audio
    out = capsys.readouterr().out
    assert "librosa DTW" in out and "p95 ms" in out and "full DTW would need" in out
