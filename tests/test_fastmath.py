"""The vectorisable exp / log used by the soft-DTW kernels agree with numpy to a few ulp."""

import numpy as np
from numba import njit

from mmalign.warping._fastmath import vexp, vlog_1_to_3


@njit(error_model="numpy")
def _apply_exp(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])
    return out


@njit(error_model="numpy")
def _apply_log(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = vlog_1_to_3(x[i])
    return out


def test_exp_of_non_positive_arguments():
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.exponential(1.0, 100_000), -rng.uniform(0, 708, 100_000),
                        [0.0, -0.0, -1e-300, -1e-12, -707.9]])
    expected = np.exp(x)
    got = _apply_exp(x)
    normal = expected > 1e-300
    assert np.max(np.abs(got[normal] - expected[normal]) / expected[normal]) < 1e-15
    assert got[-5] == 1.0 and got[-4] == 1.0
    # below the smallest normal: exactly zero, never NaN
    np.testing.assert_array_equal(_apply_exp(np.array([-708.5, -745.2, -1e6, -np.inf])), 0.0)


def test_log_on_one_to_three():
    s = np.concatenate([np.random.default_rng(1).uniform(1.0, 3.0, 200_000),
                        [1.0, 1.5, np.nextafter(1.5, 2.0), 2.0, 3.0]])
    got = _apply_log(s)
    np.testing.assert_allclose(got, np.log(s), rtol=1e-15, atol=3e-16)
    assert got[-5] == 0.0
