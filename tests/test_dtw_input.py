"""Bad input gets a ValueError naming the argument; good input of any real dtype works."""

import numpy as np
import pytest

import mmalign

X = np.array([0.0, 1.0, 2.0, 1.0])
Y = np.array([0.0, 2.0, 1.0])


@pytest.mark.parametrize("bad, fragment", [
    (np.array([0.0, np.nan]), "NaN"),
    (np.array([0.0, np.inf]), "infinite"),
    (np.array([]), "empty"),
    (np.zeros((3, 0)), "no features"),
    (np.float64(3.0), "0-d"),
    (np.zeros((2, 3, 4)), "3-d"),
    (np.array(["a", "b"]), "dtype"),
    (np.array([True, False]), "dtype"),
    (np.array([1 + 2j, 3j]), "dtype"),
])
@pytest.mark.parametrize("func", [mmalign.dtw, mmalign.dtw_path])
def test_bad_sequences_are_named(func, bad, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        func(bad, Y)
    assert "x" in str(err.value)
    with pytest.raises(ValueError, match=r"\by\b"):
        func(X, bad)


def test_mismatched_features():
    with pytest.raises(ValueError, match="x and y have different numbers of features"):
        mmalign.dtw(np.zeros((4, 2)), np.zeros((4, 3)))


@pytest.mark.parametrize("kwargs, name", [
    ({"radius": -1}, "radius"), ({"radius": 1.5}, "radius"), ({"radius": True}, "radius"),
    ({"window": 1.5}, "window"), ({"window": -0.1}, "window"),
    ({"radius": 2, "window": 0.1}, "radius"),
    ({"itakura_slope": 0.5}, "itakura_slope"), ({"itakura_slope": np.nan}, "itakura_slope"),
    ({"metric": "hamming"}, "metric"), ({"step_pattern": "symmetric3"}, "step_pattern"),
    ({"mask": np.ones((3, 3), bool)}, "mask"), ({"mask": np.ones((4, 3))}, "mask"),
])
def test_bad_options_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mmalign.dtw(X, Y, **kwargs)


def test_bad_cost_matrix():
    with pytest.raises(ValueError, match="cost"):
        mmalign.dtw_from_cost(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="cost"):
        mmalign.dtw_from_cost(np.zeros(3))
    with pytest.raises(ValueError, match="cost"):
        mmalign.dtw_from_cost(np.zeros((0, 3)))
    # +inf marks forbidden cells and is allowed
    assert mmalign.dtw_from_cost(np.array([[0.0, np.inf], [np.inf, 1.0]])) == 1.0


def test_cosine_rejects_zero_frames():
    with pytest.raises(ValueError, match="x has all-zero frames"):
        mmalign.dtw(np.zeros((3, 2)), np.ones((3, 2)), metric="cosine")


def test_infeasible_window_gives_inf_distance_and_a_path_error():
    x, y = np.zeros(3), np.zeros(10)
    assert mmalign.dtw(x, y, itakura_slope=2.0) == np.inf
    with pytest.raises(ValueError, match="window admits no warping path"):
        mmalign.dtw_path(x, y, itakura_slope=2.0)
    blocked = np.ones((3, 10), bool)
    blocked[1] = False
    assert mmalign.dtw(x, y, mask=blocked) == np.inf


def test_float32_int_and_float64_agree_and_inputs_are_untouched():
    rng = np.random.default_rng(0)
    x64 = rng.standard_normal((30, 2))
    y64 = rng.standard_normal((25, 2))
    x32, y32 = x64.astype(np.float32), y64.astype(np.float32)
    before = x32.copy(), y32.copy()
    d32 = mmalign.dtw(x32, y32, radius=3)
    np.testing.assert_array_equal(x32, before[0])
    np.testing.assert_array_equal(y32, before[1])
    assert d32 == pytest.approx(mmalign.dtw(x64, y64, radius=3), rel=1e-6)
    xi, yi = np.array([0, 2, 4, 3]), np.array([0, 4, 3])
    assert mmalign.dtw(xi, yi) == mmalign.dtw(xi.astype(float), yi.astype(float))
    assert mmalign.dtw([0, 1, 2], [0, 2]) == mmalign.dtw(np.array([0.0, 1, 2]), np.array([0.0, 2]))


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    x = torch.randn(20, 3, dtype=torch.float64)
    y = torch.randn(15, 3, dtype=torch.float64)
    assert mmalign.dtw(x, y) == pytest.approx(mmalign.dtw(x.numpy(), y.numpy()))


def test_window_fraction_rounds_like_the_ucr_archive():
    # round(0.03 * 275) = 8, round(0.1 * 25) = 3 (halves up, unlike Python's round(2.5) = 2)
    np.testing.assert_array_equal(mmalign.window_mask(275, 275, window=0.03),
                                  mmalign.window_mask(275, 275, radius=8))
    np.testing.assert_array_equal(mmalign.window_mask(25, 25, window=0.1),
                                  mmalign.window_mask(25, 25, radius=3))


def test_sakoe_chiba_band_is_widened_by_the_length_difference():
    mask = mmalign.window_mask(3, 5, radius=0)
    assert mask.astype(int).tolist() == [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]
    assert np.isfinite(mmalign.dtw(np.zeros(3), np.zeros(5), radius=0))


def test_length_one_sequences():
    assert mmalign.dtw([3.0], [1.0]) == 2.0
    assert mmalign.dtw([3.0], [1.0, 2.0]) == pytest.approx(np.sqrt(4 + 1))
    assert mmalign.dtw_path([1.0, 2.0, 3.0], [2.0]).path().tolist() == [[0, 0], [1, 0], [2, 0]]


def test_backtracking_corrupt_direction_codes_raises_instead_of_reading_out_of_bounds():
    from mmalign.warping import _kernels as K

    dirs = np.zeros((3, 4), np.uint8)                     # all diagonal: from (2, 3) runs off at (-1, 0)
    with pytest.raises(ValueError, match="left the direction matrix"):
        K.backtrack_general(dirs, 2, 3, False)
    dirs[:] = 7                                           # no such code
    with pytest.raises(ValueError, match="unknown direction code"):
        K.backtrack_general(dirs, 2, 3, False)
    with pytest.raises(ValueError, match="left the direction matrix"):
        K.backtrack_general(dirs, 3, 0, False)            # end outside the matrix
    good = np.zeros((3, 3), np.uint8)
    assert K.backtrack_general(good, 2, 2, False).tolist() == [[0, 0], [1, 1], [2, 2]]


def test_banded_backtracking_corrupt_direction_codes_raises():
    from mmalign.warping import _kernels as K

    x, y = np.random.default_rng(0).standard_normal((2, 5, 1))
    lo, hi = np.zeros(5, np.int64), np.full(5, 5, np.int64)           # the full matrix
    _, dirs, a, offsets = K.diagonal_dtw(np.ascontiguousarray(x.T), np.ascontiguousarray(y[::-1].T),
                                         lo, hi, K.METRIC_SQEUCLIDEAN, True, np.inf, K.STEP_SYMMETRIC1)
    good = K.backtrack_diagonal(dirs, a, offsets, 5, 5)
    assert good[0].tolist() == [0, 0] and good[-1].tolist() == [4, 4]
    up = np.full_like(dirs, K.DIR_UP)                                  # straight up from (4, 4) runs off the top
    with pytest.raises(ValueError, match="left the direction matrix"):
        K.backtrack_diagonal(up, a, offsets, 5, 5)
    with pytest.raises(ValueError, match="unknown direction code"):
        K.backtrack_diagonal(np.full_like(dirs, 7), a, offsets, 5, 5)
