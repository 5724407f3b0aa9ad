import csv

import numpy as np
import pytest
import soundfile as sf

from mmalign.cli import main
from mmalign.datasets import synthesize_performances

SR = 22050


@pytest.fixture(scope="module")
def audio_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("audio")
    pair = synthesize_performances(10, seed=3)
    a, b = directory / "a.wav", directory / "b.flac"
    sf.write(a, pair.audio_a, SR)
    sf.write(b, pair.audio_b, SR)
    return a, b


@pytest.fixture
def array_files(tmp_path):
    x = np.sin(np.linspace(0, 6, 30))
    y = np.stack([np.sin(np.linspace(0, 6, 45) ** 1.05)], axis=1)
    a, b = tmp_path / "x.npy", tmp_path / "y.csv"
    np.save(a, x)
    np.savetxt(b, y, delimiter=",", header="value", comments="")
    return a, b


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def check_path(p, n_x=None, n_y=None):
    assert tuple(p[0, :2]) == (0, 0)
    if n_x is not None:
        assert tuple(p[-1, :2]) == (n_x - 1, n_y - 1)
    steps = np.diff(p[:, :2], axis=0)
    assert np.all((steps >= 0) & (steps <= 1)) and np.all(steps.sum(axis=1) >= 1)


def test_align_audio_writes_csv_and_plot(audio_files, tmp_path, capsys):
    a, b = audio_files
    out, png = tmp_path / "path.csv", tmp_path / "plot.png"
    assert main(["align", str(a), str(b), "--out", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "DTW cost" in printed and "frames" in printed and "ms" in printed

    header, rows = read_csv(out)
    assert header == ["x_index", "y_index", "x_time", "y_time"]
    n_x = 1 + len(sf.read(a)[0]) // 512
    n_y = 1 + len(sf.read(b)[0]) // 512
    check_path(rows, n_x, n_y)
    assert f"A: {n_x} frames, B: {n_y} frames" in printed
    np.testing.assert_allclose(rows[:, 2], rows[:, 0] * 512 / SR)
    np.testing.assert_allclose(rows[:, 3], rows[:, 1] * 512 / SR)
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000


def test_align_audio_options(audio_files, tmp_path, capsys):
    a, b = audio_files
    out = tmp_path / "path.csv"
    argv = ["align", str(a), str(b), "--features", "mfcc", "--radius", "200",
            "--hop", "1024", "--sr", "16000", "--out", str(out)]
    assert main(argv) == 0
    _, rows = read_csv(out)
    check_path(rows)
    assert rows[-1, 2] == pytest.approx(len(sf.read(a)[0]) / SR, abs=1024 / 16000)
    assert "mfcc" in capsys.readouterr().out
    np.testing.assert_allclose(rows[:, 2], rows[:, 0] * 1024 / 16000)


def test_align_multiscale(audio_files, capsys):
    a, b = audio_files
    assert main(["align", str(a), str(b), "--multiscale"]) == 0
    assert "DTW cost" in capsys.readouterr().out


def test_align_arrays(array_files, tmp_path, capsys):
    a, b = array_files
    out = tmp_path / "path.csv"
    assert main(["align", str(a), str(b), "--out", str(out)]) == 0
    header, rows = read_csv(out)
    assert header == ["x_index", "y_index"]
    check_path(rows, 30, 45)
    printed = capsys.readouterr().out
    assert "A: 30 frames, B: 45 frames" in printed


def test_align_two_dimensional_csv_without_header(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    np.savetxt(a, np.random.default_rng(0).normal(size=(12, 3)), delimiter=",")
    np.savetxt(b, np.random.default_rng(1).normal(size=(9, 3)), delimiter=",")
    png = tmp_path / "p.png"
    assert main(["align", str(a), str(b), "--plot", str(png)]) == 0
    assert png.stat().st_size > 5_000


def run_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and "Traceback" not in err
    return err


def test_missing_file(audio_files, tmp_path, capsys):
    missing = tmp_path / "missing_take.wav"
    err = run_error(["align", str(missing), str(audio_files[1])], capsys)
    assert "missing_take.wav" in err


def test_mixing_audio_and_arrays(audio_files, array_files, capsys):
    err = run_error(["align", str(audio_files[0]), str(array_files[0])], capsys)
    assert "audio" in err and "array" in err


def test_unreadable_audio(audio_files, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"garbage" * 100)
    err = run_error(["align", str(bad), str(audio_files[0])], capsys)
    assert "broken.wav" in err


def test_bad_csv(array_files, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,oops\n")
    err = run_error(["align", str(bad), str(array_files[1])], capsys)
    assert "bad.csv" in err


def test_ragged_csv(array_files, tmp_path, capsys):
    bad = tmp_path / "ragged.csv"
    bad.write_text("1,2\n3\n")
    assert "ragged.csv" in run_error(["align", str(bad), str(array_files[1])], capsys)


def test_mismatched_feature_sizes(tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, np.zeros((5, 2)))
    np.save(b, np.zeros((5, 3)))
    run_error(["align", str(a), str(b)], capsys)


def test_wrong_features_for_input(array_files, audio_files, capsys):
    run_error(["align", str(array_files[0]), str(array_files[1]), "--features", "chroma"], capsys)
    run_error(["align", str(audio_files[0]), str(audio_files[1]), "--features", "raw"], capsys)


def test_unknown_extension(tmp_path, array_files, capsys):
    odd = tmp_path / "notes.txt"
    odd.write_text("1\n2\n")
    assert "notes.txt" in run_error(["align", str(odd), str(array_files[0])], capsys)


def test_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["align", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--radius" in text and "frames" in text and "default" in text
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_demo_subcommand(tmp_path, capsys):
    assert main(["demo", "--n-notes", "8", "--seed", "1", "--out", str(tmp_path)]) == 0
    assert "median" in capsys.readouterr().out
    assert (tmp_path / "mmalign_demo.png").is_file()


def test_parser_imports_no_heavy_module():
    # `mmalign --help` builds every sub-command's parser: no torch, scikit-learn, librosa, numba or
    # scipy may load for that (each sub-command's run() imports what its work needs).
    import subprocess
    import sys

    code = ("import sys\n"
            "from mmalign.cli import _build_parser\n"
            "_build_parser()\n"
            "print(' '.join(m for m in ('torch', 'sklearn', 'librosa', 'numba', 'scipy', 'matplotlib')\n"
            "               if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ""


def test_python_dash_m_entry_points_show_help():
    import subprocess
    import sys

    for module, words in (("mmalign", ("align", "demo", "subtitle", "sync")),):
        run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0, run.stderr
        assert run.stdout.startswith(f"usage: {'mmalign' if module == 'mmalign' else 'python -m ' + module}")
        assert all(word in run.stdout for word in words)
