"""The benchmark suite runner: child processes, report locations, the SUITE report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as suite

ROOT = Path(__file__).resolve().parent.parent


def test_seeds_collects_every_seed_entry_but_machine_info():
    data = {"seed": 3, "machine": {"seed": 99},
            "deep": {"seeds": [0, 1, 2], "config": {"SEED": 7}},
            "results": [{"seed": 5}]}
    assert suite._seeds(data) == {"seed": 3, "deep.seeds": [0, 1, 2], "deep.config.SEED": 7}


def test_quick_runs_default_to_their_own_directory():
    assert suite.default_out(True) == suite.default_out(False) / "quick"


def test_unknown_benchmark_is_an_error(capsys):
    with pytest.raises(SystemExit):
        suite.main(["no_such_benchmark"])
    assert "no_such_benchmark" in capsys.readouterr().err


def test_suite_runs_each_benchmark_in_a_child_and_writes_the_report(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    committed = ROOT / "benchmarks" / "results" / "projection.md"
    before = committed.read_text() if committed.exists() else None
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "alignment_quality", "projection", "--quick",
         "--out", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("alignment_quality", "projection"):
        assert (tmp_path / f"{name}.md").exists() and (tmp_path / f"{name}.json").exists()
    report = (tmp_path / "SUITE.md").read_text()
    assert report.startswith("# mmalign benchmark suite (quick)")
    # the benchmarks' own headings sit one level under the suite's
    assert "\n## Alignment quality of every explicit aligner (quick)" in report
    assert "| DCTW |" in report
    data = json.loads((tmp_path / "suite.json").read_text())
    assert data["mode"] == "quick"
    assert [b["name"] for b in data["benchmarks"]] == ["alignment_quality", "projection"]
    assert all(b["status"] == "ok" for b in data["benchmarks"])
    assert data["benchmarks"][0]["seeds"]["seeds"] == [0, 1, 2]
    assert "libraries" in data["machine"] and "torch" in data["machine"]
    # the reported (full-run) results were not overwritten
    assert (committed.read_text() if committed.exists() else None) == before


def test_a_failed_benchmark_is_reported_not_hidden(tmp_path):
    records = [{"name": "dtw_speed", "status": "failed (exit 1)", "seconds": 1.0,
                "stderr_tail": "Traceback ...\nValueError: boom"}]
    path = suite._write_suite(records, True, tmp_path, 1.0)
    text = path.read_text()
    assert "failed (exit 1)" in text and "ValueError: boom" in text


def test_device_applies_only_to_the_benchmarks_that_train_models(capsys):
    with pytest.raises(SystemExit):
        suite.main(["dtw_speed", "spatial_transformer", "--device", "cpu"])
    assert "dtw_speed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        suite.main(["--device", "cpu"])                     # the whole suite: not every one trains
    assert "--device applies to" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_an_error(capsys):
    with pytest.raises(SystemExit):
        suite.main(["spatial_transformer", "--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs CUDA"))])
@pytest.mark.parametrize("name", suite.DEVICE_BENCHMARKS)
def test_trained_model_benchmarks_train_on_the_chosen_device(name, device, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "benchmarks", name, "--quick", "--out", str(tmp_path),
                           "--device", device], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"trained on {device}" in (tmp_path / f"{name}.md").read_text()
    assert json.loads((tmp_path / f"{name}.json").read_text())["config"]["device"] == device
