"""Issue 19: the CLI never writes onto an input, never replaces a file without --force, checks output
paths before any work, writes through a temporary file, and refuses unreadable or too-short audio."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import mmalign
from mmalign.cli import main

SR = 22050


@pytest.fixture
def arrays(tmp_path):
    a, b = tmp_path / "a.npy", tmp_path / "b.csv"
    np.save(a, np.sin(np.linspace(0, 6, 20)))
    np.savetxt(b, np.sin(np.linspace(0, 6, 25)), delimiter=",")
    return a, b


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """A 1 s noise WAV, a 0.3 s one, and the first 100 bytes of the first (a truncated download)."""
    directory = tmp_path_factory.mktemp("wavs")
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, SR).astype(np.float32)
    real, short, truncated = directory / "real.wav", directory / "short.wav", directory / "truncated.wav"
    sf.write(real, noise, SR)
    sf.write(short, noise[: int(0.3 * SR)], SR)
    truncated.write_bytes(real.read_bytes()[:100])
    return real, short, truncated


def error(argv, capsys, entry=main):
    with pytest.raises(SystemExit) as exc:
        entry(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mmalign: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def forbid(monkeypatch, target, name):
    def boom(*args, **kwargs):
        raise AssertionError(f"{name} ran before the output check")
    monkeypatch.setattr(target, name, boom)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- check_output_file / atomic_write


def test_check_output_file_refuses_inputs_existing_files_and_folders(tmp_path):
    from mmalign.utils import check_output_file

    source = tmp_path / "b.csv"
    source.write_text("1\n")
    os.symlink(source, tmp_path / "link.csv")
    for spelling in (source, tmp_path / "." / "b.csv", tmp_path / "link.csv"):
        with pytest.raises(ValueError, match="input"):
            check_output_file(spelling, force=True, inputs=[source])
    with pytest.raises(FileExistsError, match=r"b\.csv.*--force"):
        check_output_file(source, force=False)
    assert check_output_file(source, force=True) == str(source)
    with pytest.raises(ValueError, match="folder"):
        check_output_file(tmp_path, force=True)
    with pytest.raises(ValueError, match="b.csv"):                       # a file where a folder must go
        check_output_file(source / "x.csv", force=False)
    nested = tmp_path / "new" / "deeper" / "x.csv"
    assert check_output_file(nested, force=False) == str(nested)
    assert not (tmp_path / "new").exists()                             # checking creates nothing
    with pytest.raises(ValueError, match=r"--plot.*\.bmp.*\.png"):
        check_output_file(tmp_path / "p.bmp", force=False, option="--plot", extensions=(".png", ".pdf"))
    assert check_output_file(tmp_path / "P.PNG", force=False, option="--plot", extensions=(".png",))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_check_output_file_refuses_read_only_folder(tmp_path):
    from mmalign.utils import check_output_file

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ValueError, match="not writable"):
            check_output_file(locked / "x.csv", force=False)
    finally:
        locked.chmod(0o700)


def test_atomic_write_replaces_on_success_and_keeps_the_old_file_on_error(tmp_path):
    from mmalign.utils import atomic_write

    target = tmp_path / "sub" / "out.csv"
    with atomic_write(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub") and tmp.endswith(".csv")
        assert not target.exists()
        with open(tmp, "w") as f:
            f.write("new\n")
    assert target.read_text() == "new\n" and listing(tmp_path / "sub") == ["out.csv"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask             # not mkstemp's 0o600

    for interruption in (OSError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with atomic_write(target) as tmp:
                with open(tmp, "w") as f:
                    f.write("half a fi")
                raise interruption
        assert target.read_text() == "new\n" and listing(tmp_path / "sub") == ["out.csv"]


# --------------------------------------------------------------------------- align


def test_align_refuses_to_write_onto_its_input(arrays, capsys, monkeypatch):
    a, b = arrays
    before = b.read_bytes()
    forbid(monkeypatch, mmalign, "dtw_path")
    for argv in (["--out", str(b)], ["--out", str(b), "--force"], ["--plot", str(a.with_suffix(".npy"))],
                 ["--out", os.path.relpath(b)]):
        err = error(["align", str(a), str(b), *argv], capsys)
        assert "input" in err
    assert b.read_bytes() == before


def test_align_refuses_existing_outputs_before_any_work(arrays, tmp_path, capsys, monkeypatch):
    a, b = arrays
    out, png = tmp_path / "path.csv", tmp_path / "plot.png"
    out.write_text("precious\n")
    png.write_bytes(b"precious")
    forbid(monkeypatch, mmalign, "dtw_path")
    forbid(monkeypatch, mmalign.cli.align, "_load_array")
    err = error(["align", str(a), str(b), "--out", str(out)], capsys)
    assert str(out) in err and "--force" in err
    err = error(["align", str(a), str(b), "--plot", str(png)], capsys)
    assert str(png) in err and "--force" in err
    assert "--plot" in error(["align", str(a), str(b), "--plot", str(tmp_path / "p.xyz")], capsys)
    assert "same file" in error(["align", str(a), str(b), "--out", str(tmp_path / "o.png"),
                                 "--plot", str(tmp_path / "o.png")], capsys)
    err = error(["align", str(a), str(b), "--out", str(a.parent / "a.npy" / "x.csv")], capsys)
    assert "a.npy" in err
    assert out.read_text() == "precious\n" and png.read_bytes() == b"precious"


def test_align_audio_checks_outputs_before_decoding(wavs, tmp_path, capsys, monkeypatch):
    real, _, truncated = wavs
    out = tmp_path / "path.csv"
    out.write_text("precious\n")
    forbid(monkeypatch, mmalign.features, "load_audio")
    forbid(monkeypatch, mmalign.features.audio, "load_audio")
    err = error(["align", str(truncated), str(real), "--out", str(out)], capsys)   # bad input AND bad output
    assert str(out) in err and "--force" in err


def test_align_force_replaces_through_a_temporary_file(arrays, tmp_path, capsys, monkeypatch):
    a, b = arrays
    out, png = tmp_path / "path.csv", tmp_path / "plot.png"
    out.write_text("old\n")
    png.write_bytes(b"old")
    assert main(["align", str(a), str(b), "--out", str(out), "--plot", str(png), "--force"]) == 0
    assert out.read_text().startswith("x_index,y_index") and png.read_bytes()[:4] == b"\x89PNG"
    assert listing(tmp_path) == ["a.npy", "b.csv", "path.csv", "plot.png"]

    def half_written(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("x_index,y")
        raise OSError("No space left on device")

    monkeypatch.setattr(mmalign.Alignment, "to_csv", half_written)
    kept = out.read_text()
    assert "No space left" in error(["align", str(a), str(b), "--out", str(out), "--force"], capsys)
    assert out.read_text() == kept
    assert listing(tmp_path) == ["a.npy", "b.csv", "path.csv", "plot.png"]


def test_align_refuses_truncated_and_short_audio(wavs, capsys):
    real, short, truncated = wavs
    err = error(["align", str(truncated), str(real)], capsys)
    assert str(truncated) in err and "too short" in err
    err = error(["align", str(real), str(short)], capsys)
    assert str(short) in err and "0.300 s" in err and "0.5 s" in err


def test_python_dash_m_mmalign_and_no_warnings_leak(wavs, tmp_path):
    # One subprocess (about 3 s, most of it `import mmalign`): the same command, and a clean stderr.
    real, _, truncated = wavs
    run = subprocess.run([sys.executable, "-m", "mmalign", "align", str(truncated), str(real)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("mmalign: error: ") and run.stderr.count("\n") == 1, run.stderr
    assert str(truncated) in run.stderr and "too short" in run.stderr and run.stdout == ""


# --------------------------------------------------------------------------- subtitle


def test_subtitle_refuses_existing_outputs_before_any_work(wavs, tmp_path, capsys, monkeypatch):
    import mmalign.apps.forced_alignment

    real, _, truncated = wavs
    text = tmp_path / "real.txt"
    text.write_text("Hello there.", encoding="utf-8")
    out = tmp_path / "subs"
    out.mkdir()
    (out / "real.vtt").write_text("precious")
    forbid(monkeypatch, mmalign.apps.forced_alignment, "align_text")
    forbid(monkeypatch, mmalign.features.audio, "load_audio")
    err = error(["subtitle", str(real), str(text), "--out", str(out), "--format", "srt", "vtt"], capsys)
    assert str(out / "real.vtt") in err and "--force" in err
    assert listing(out) == ["real.vtt"] and (out / "real.vtt").read_text() == "precious"
    # the text file is an input too
    csv_text = tmp_path / "real.csv"
    csv_text.write_text("Hello there.", encoding="utf-8")
    err = error(["subtitle", str(real), str(csv_text), "--out", str(tmp_path), "--format", "csv", "--force"],
                capsys)
    assert "input" in err and csv_text.read_text() == "Hello there."


def test_subtitle_refuses_truncated_audio(wavs, tmp_path, capsys, monkeypatch):
    import mmalign.apps.forced_alignment

    _, short, truncated = wavs
    text = tmp_path / "t.txt"
    text.write_text("Hello there.", encoding="utf-8")
    forbid(monkeypatch, mmalign.apps.forced_alignment, "align_text")
    forbid(monkeypatch, mmalign.features.audio, "load_audio")
    for audio, why in ((truncated, "too short"), (short, "0.300 s")):
        err = error(["subtitle", str(audio), str(text), "--out", str(tmp_path / "subs")], capsys)
        assert str(audio) in err and why in err
    assert not (tmp_path / "subs").exists()


def test_subtitle_force_writes_atomically(wavs, tmp_path, capsys, monkeypatch):
    import mmalign.apps.forced_alignment
    from mmalign.apps.forced_alignment import TextAlignment
    from mmalign.apps.subtitles import Segment

    real, _, _ = wavs
    text = tmp_path / "real.txt"
    text.write_text("Hello there.", encoding="utf-8")
    out = tmp_path / "subs"
    out.mkdir()
    (out / "real.srt").write_text("old")

    def fake_align_text(text, audio, sr, **kwargs):
        words = [Segment("Hello", 0.1, 0.4, 0, 5), Segment("there", 0.45, 0.8, 6, 11)]
        return TextAlignment(text, words, [Segment("Hello there.", 0.1, 0.8, 0, 12)], len(audio) / sr,
                             mmalign.Alignment([[0, 0]]), [])

    monkeypatch.setattr(mmalign.apps.forced_alignment, "align_text", fake_align_text)
    assert main(["subtitle", str(real), str(text), "--out", str(out), "--force", "--no-progress"]) == 0
    assert "00:00:00,100 --> 00:00:00,800" in (out / "real.srt").read_text()
    assert listing(out) == ["real.srt"]


# --------------------------------------------------------------------------- sync


def test_sync_refuses_existing_outputs_before_any_work(wavs, tmp_path, capsys, monkeypatch):
    import mmalign.apps.sync.core

    real, _, truncated = wavs
    out = tmp_path / "sync"
    out.mkdir()
    (out / "preview.wav").write_bytes(b"precious")
    forbid(monkeypatch, mmalign.apps.sync.core, "stream_features")
    err = error(["sync", str(real), str(real), "--out", str(out)], capsys)
    assert str(out / "preview.wav") in err and "--force" in err
    err = error(["sync", str(truncated), str(real), "--out", str(out)], capsys)   # outputs first
    assert "preview.wav" in err
    # --no-preview: preview.wav is not written, so it is not in the way
    err = error(["sync", str(truncated), str(real), "--out", str(out), "--no-preview"], capsys)
    assert str(truncated) in err and "too short" in err
    # an input inside --out with an output's name
    err = error(["sync", str(out / "preview.wav"), str(real), "--out", str(out), "--force"], capsys)
    assert "input" in err
    assert listing(out) == ["preview.wav"] and (out / "preview.wav").read_bytes() == b"precious"


def test_synchronize_files_overwrite_keyword(tmp_path, monkeypatch):
    import mmalign.apps.sync.core
    from mmalign.apps.sync import synchronize_files

    (tmp_path / "path.csv").write_text("precious")
    forbid(monkeypatch, mmalign.apps.sync.core, "stream_features")
    with pytest.raises(FileExistsError, match=r"path\.csv.*overwrite=True"):
        synchronize_files(tmp_path / "a.wav", tmp_path / "b.wav", tmp_path)


# --------------------------------------------------------------------------- demo


def test_demo_refuses_to_replace_its_plot_and_names_force(tmp_path, capsys, monkeypatch):
    import mmalign.datasets
    from mmalign.apps import demo
    from mmalign.cli.demo import main as demo_main

    plot = tmp_path / demo.PLOT_NAME
    plot.write_bytes(b"precious")
    forbid(monkeypatch, mmalign.datasets, "synthesize_performances")
    for entry, argv in ((main, ["demo", "--out", str(tmp_path)]), (demo_main, ["--out", str(tmp_path)])):
        err = error(argv, capsys, entry)
        assert str(plot) in err and "--force" in err
    with pytest.raises(FileExistsError, match="overwrite=True"):
        demo.run_demo(out=tmp_path)
    assert plot.read_bytes() == b"precious"


def test_demo_force_replaces_the_plot(tmp_path, capsys):
    from mmalign.apps import demo
    from mmalign.cli.demo import main as demo_main

    plot = tmp_path / demo.PLOT_NAME
    plot.write_bytes(b"old")
    assert demo_main(["--n-notes", "6", "--out", str(tmp_path), "--force"]) == 0
    assert plot.read_bytes()[:4] == b"\x89PNG" and listing(tmp_path) == [demo.PLOT_NAME]


@pytest.mark.parametrize("argv, option, message", [
    (["--seed", "-1"], "--seed", "must be a non-negative integer, got -1"),
    (["--seed", "x"], "--seed", "expected an integer, got 'x'"),
    (["--n-notes", "abc"], "--n-notes", "expected an integer, got 'abc'"),
    (["--n-notes", "0"], "--n-notes", "must be a positive integer, got 0"),
])
def test_demo_argument_errors_name_the_option(argv, option, message, capsys):
    from mmalign.cli.demo import main as demo_main

    for entry, args in ((main, ["demo", *argv]), (demo_main, argv)):
        with pytest.raises(SystemExit) as exc:
            entry(args)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("usage: ") and f"error: argument {option}: {message}" in err


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", ["align", "subtitle", "sync", "demo"])
def test_help_documents_exit_status_force_and_minimum_duration(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--force" in text and "exit status: 0 on success; 2" in text
    if command != "demo":
        assert "shorter than 0.5 s" in text
