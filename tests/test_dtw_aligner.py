import numpy as np
import pytest

import mmalign


def test_dtw_aligner_is_the_functional_layer(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((30, 2)), rng.standard_normal((40, 2))
    aligner = mmalign.DTW(radius=5, metric="cityblock")
    assert aligner.fit(x, y) is aligner
    alignment = aligner.align(x, y)
    expected = mmalign.dtw_path(x, y, radius=5, metric="cityblock")
    np.testing.assert_array_equal(alignment.path(), expected.path())
    assert alignment.cost == expected.cost
    aligner.save(tmp_path / "dtw.npz")
    loaded = mmalign.Aligner.load(tmp_path / "dtw.npz")
    assert isinstance(loaded, mmalign.DTW) and loaded.get_params() == aligner.get_params()
    np.testing.assert_array_equal(loaded.align(x, y).path(), expected.path())
    assert aligner.to("cpu") is aligner


def test_dtw_aligner_validates_at_align_time():
    aligner = mmalign.DTW(step_pattern="nope")
    with pytest.raises(ValueError, match="step_pattern"):
        aligner.align(np.zeros(3), np.zeros(3))
