import numpy as np
import pytest

from mmalign.apps.demo import PLOT_NAME, run_demo
from mmalign.cli.demo import main


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_demo(n_notes=16, seed=0, out=tmp_path_factory.mktemp("demo"))


def test_demo_aligns_well(results):
    assert results["median_error_ms"] < 100
    assert results["mean_error_ms"] < 150
    assert results["within_100ms"] > 0.8
    # DTW must beat a plain linear stretch by far.
    assert results["median_error_ms"] < 0.5 * results["baseline_median_error_ms"]


def test_demo_reports_consistent_numbers(results):
    alignment = results["alignment"]
    assert alignment.shape == (results["n_frames_a"], results["n_frames_b"])
    assert results["n_frames_a"] == 1 + int(results["duration_a"] * 22050) // 512
    assert 0 <= results["within_50ms"] <= results["within_100ms"] <= 1
    assert results["features_ms"] > 0 and results["dtw_ms"] > 0
    assert np.isfinite(alignment.cost)


def test_demo_writes_plot(results):
    with open(results["plot"], "rb") as f:
        assert f.read(4) == b"\x89PNG"
    assert results["plot"].endswith(PLOT_NAME)


def test_demo_does_not_replace_its_plot_without_overwrite(results):
    import os

    folder = os.path.dirname(results["plot"])
    before = os.path.getmtime(results["plot"])
    with pytest.raises(FileExistsError, match=f"{PLOT_NAME}.*overwrite=True"):
        run_demo(n_notes=16, seed=0, out=folder)                # refused before any work
    assert os.path.getmtime(results["plot"]) == before


def test_demo_main_prints_report(tmp_path, capsys):
    assert main(["--n-notes", "10", "--seed", "2", "--features", "mfcc", "--out", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    for word in ("frames", "features", "DTW", "mean", "median", "within  50 ms", "within 100 ms", "ms"):
        assert word in report
    assert (tmp_path / PLOT_NAME).stat().st_size > 10_000


def test_demo_rejects_bad_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--features", "spectrogram"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(["--n-notes", "0"])
    with pytest.raises(ValueError, match="features"):
        run_demo(n_notes=4, features="raw", out=None)
