"""mmalign agrees with tslearn, dtaidistance, librosa and dtw-python where definitions agree.

Window conventions: mmalign ``radius=r`` is tslearn ``sakoe_chiba_radius=r`` and
dtaidistance ``window=r + 1`` (which counts |i - j| < window); Itakura slopes are
tslearn's ``itakura_max_slope``.  librosa sums unsquared Euclidean costs: mmalign
``metric="euclidean"``.
"""

import numpy as np
import pytest

import mmalign

tslearn_metrics = pytest.importorskip("tslearn.metrics")
dtai = pytest.importorskip("dtaidistance")
from dtaidistance import dtw as dtai_dtw  # noqa: E402
from dtaidistance import dtw_ndim as dtai_ndim  # noqa: E402

RTOL = 1e-8


def random_pairs(seed, count=25, max_len=60, max_dim=4):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n, m = rng.integers(1, max_len, 2)
        d = int(rng.integers(1, max_dim + 1))
        yield rng.standard_normal((n, d)), rng.standard_normal((m, d))


def tslearn_options(radius=None, slope=None):
    if radius is not None:
        return {"global_constraint": "sakoe_chiba", "sakoe_chiba_radius": radius}
    if slope is not None:
        return {"global_constraint": "itakura", "itakura_max_slope": slope}
    return {}


@pytest.mark.parametrize("radius", [None, 0, 1, 4, 15])
def test_dtw_and_path_equal_tslearn_with_sakoe_chiba(radius):
    for x, y in random_pairs(radius or 0):
        expected = tslearn_metrics.dtw(x, y, **tslearn_options(radius))
        assert mmalign.dtw(x, y, radius=radius) == pytest.approx(expected, rel=RTOL)
        path, cost = tslearn_metrics.dtw_path(x, y, **tslearn_options(radius))
        alignment = mmalign.dtw_path(x, y, radius=radius)
        assert alignment.cost == pytest.approx(cost, rel=RTOL)
        np.testing.assert_array_equal(alignment.path(), np.array(path))


@pytest.mark.parametrize("slope", [1.5, 2.0, 3.0])
def test_dtw_equals_tslearn_with_itakura(slope):
    compared = 0
    for x, y in random_pairs(int(slope * 10)):
        try:
            expected = tslearn_metrics.dtw(x, y, **tslearn_options(slope=slope))
        except RuntimeWarning:  # tslearn raises when the parallelogram admits no path
            assert mmalign.dtw(x, y, itakura_slope=slope) == np.inf
            continue
        assert mmalign.dtw(x, y, itakura_slope=slope) == pytest.approx(expected, rel=RTOL)
        compared += 1
    assert compared > 5


def test_itakura_mask_equals_tslearn():
    for n, m, s in [(6, 6, 3.0), (20, 31, 2.0), (40, 25, 1.7), (50, 50, 2.0)]:
        np.testing.assert_array_equal(
            mmalign.window_mask(n, m, itakura_slope=s),
            np.asarray(tslearn_metrics.itakura_mask(n, m, max_slope=s), dtype=bool),
        )


@pytest.mark.parametrize("radius", [None, 0, 2, 10])
def test_dtw_equals_dtaidistance(radius):
    window = None if radius is None else radius + 1
    for x, y in random_pairs(100 + (radius or 0)):
        if x.shape[1] == 1:
            expected = dtai_dtw.distance_fast(x[:, 0].copy(), y[:, 0].copy(), window=window)
        else:
            expected = dtai_ndim.distance_fast(x, y, window=window)
        assert mmalign.dtw(x, y, radius=radius) == pytest.approx(expected, rel=RTOL)


def test_path_equals_dtaidistance_warping_path():
    rng = np.random.default_rng(5)
    for _ in range(10):
        x, y = rng.standard_normal(int(rng.integers(5, 200))), rng.standard_normal(
            int(rng.integers(5, 200)))
        expected = np.array(dtai_dtw.warping_path_fast(x, y))
        np.testing.assert_array_equal(mmalign.dtw_path(x, y).path(), expected)


@pytest.mark.parametrize("radius", [None, 3])
def test_cdist_equals_tslearn_and_dtaidistance(radius):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((45, 30))  # 990 pairs: the SIMD lane route
    Y = rng.standard_normal((12, 30))
    ours = mmalign.cdist_dtw(X, radius=radius)
    np.testing.assert_allclose(
        ours, tslearn_metrics.cdist_dtw(X, **tslearn_options(radius)), rtol=RTOL)
    theirs = dtai_dtw.distance_matrix_fast(X, window=None if radius is None else radius + 1)
    upper = np.triu_indices(len(X), 1)
    np.testing.assert_allclose(ours[upper], theirs[upper], rtol=RTOL)
    np.testing.assert_allclose(
        mmalign.cdist_dtw(X, Y, radius=radius),
        tslearn_metrics.cdist_dtw(X, Y, **tslearn_options(radius)), rtol=RTOL)


def test_cdist_ragged_multivariate_equals_tslearn():
    rng = np.random.default_rng(8)
    X = [rng.standard_normal((int(rng.integers(3, 40)), 3)) for _ in range(20)]
    Y = [rng.standard_normal((int(rng.integers(3, 40)), 3)) for _ in range(7)]
    for radius in (None, 2):
        np.testing.assert_allclose(
            mmalign.cdist_dtw(X, Y, radius=radius),
            tslearn_metrics.cdist_dtw(X, Y, **tslearn_options(radius)), rtol=RTOL)
    close = [rng.standard_normal((int(rng.integers(20, 30)), 3)) for _ in range(12)]
    np.testing.assert_allclose(  # lengths within a factor 2: the parallelogram admits paths
        mmalign.cdist_dtw(close, itakura_slope=2.0),
        tslearn_metrics.cdist_dtw(close, **tslearn_options(slope=2.0)), rtol=RTOL)


def test_euclidean_metric_equals_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(9)
    for n, m, d in [(30, 45, 1), (64, 50, 12), (2, 7, 3)]:
        x, y = rng.standard_normal((n, d)), rng.standard_normal((m, d))
        D, wp = librosa.sequence.dtw(X=x.T, Y=y.T, metric="euclidean")  # features first
        alignment = mmalign.dtw_path(x, y, metric="euclidean")
        assert alignment.cost == pytest.approx(D[-1, -1], rel=RTOL)
        np.testing.assert_array_equal(alignment.path(), wp[::-1])


@pytest.mark.parametrize("step, open_begin, open_end", [
    ("symmetric1", False, False), ("symmetric2", False, False), ("symmetric2", False, True),
    ("asymmetric", False, False), ("asymmetric", False, True), ("asymmetric", True, True),
])
def test_step_patterns_equal_dtw_python(step, open_begin, open_end):
    dtwpy = pytest.importorskip("dtw")
    rng = np.random.default_rng(11)
    for _ in range(8):
        x = rng.standard_normal((int(rng.integers(5, 30)), 2))
        y = rng.standard_normal((int(rng.integers(len(x), 2 * len(x) - 1)), 2))
        ref = dtwpy.dtw(x, y, dist_method="cityblock", step_pattern=getattr(dtwpy, step),
                        open_begin=open_begin, open_end=open_end)
        ours = mmalign.dtw_path(x, y, metric="cityblock", step_pattern=step,
                                open_begin=open_begin, open_end=open_end)
        assert ours.cost == pytest.approx(ref.distance, rel=RTOL)
        np.testing.assert_array_equal(ours.path(), np.c_[ref.index1, ref.index2])


def test_precomputed_cost_and_callable_metric_agree_with_builtin():
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((25, 3)), rng.standard_normal((31, 3))
    C = cdist(x, y, "sqeuclidean")
    assert np.sqrt(mmalign.dtw_from_cost(C)) == pytest.approx(mmalign.dtw(x, y), rel=RTOL)
    assert mmalign.dtw(x, y, metric=lambda a, b: float(np.abs(a - b).sum())) == pytest.approx(
        mmalign.dtw(x, y, metric="cityblock"), rel=RTOL)
    np.testing.assert_array_equal(mmalign.dtw_path_from_cost(C, radius=4).path(),
                                  mmalign.dtw_path(x, y, radius=4).path())
    cos = cdist(x, y, "cosine")
    assert mmalign.dtw(x, y, metric="cosine") == pytest.approx(mmalign.dtw_from_cost(cos),
                                                               rel=1e-10)
