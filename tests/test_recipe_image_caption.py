"""The image <-> caption recipe runs end to end (--quick) and its attention points at the digits."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

RECIPE = pathlib.Path(__file__).resolve().parent.parent / "recipes" / "image_caption.py"


def _load():
    spec = importlib.util.spec_from_file_location("recipe_image_caption", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image_caption(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    pytest.importorskip("matplotlib")
    import mmalign

    result = _load().main(["--out", str(tmp_path), "--quick", "--threads", "1"])
    figure = tmp_path / "image_caption.png"
    assert figure.is_file() and figure.stat().st_size > 20_000
    written = json.loads((tmp_path / "image_caption.json").read_text())
    assert written["quick"] and written["pointing_accuracy"] == result["pointing_accuracy"]
    alignments = result["alignments"]
    assert len(alignments) == written["config"]["n_test"]
    for al in alignments[:5]:
        assert isinstance(al, mmalign.Alignment) and al.extras["grid_shape"] == (8, 8)
        # image cells on side x, caption words on side y: each word's weights sum to one
        assert al.distribution_over == "x" and al.shape[0] == 64
        np.testing.assert_allclose(al.matrix().sum(0), 1.0, atol=1e-6)
    # the words look at their digits far more often than a random cell does
    assert result["pointing_accuracy"] > result["random_cell_rate"] + 0.3, result
    assert result["mass_inside"] > 2 * result["random_cell_rate"]
    assert 0.0 <= result["exact_match"] <= 1.0
    out = capsys.readouterr().out
    assert "pointing accuracy" in out and "random-cell rate" in out
