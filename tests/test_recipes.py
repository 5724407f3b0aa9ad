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
