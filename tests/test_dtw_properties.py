"""Properties every DTW result must have, on generated data."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import mmalign

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def pairs(draw, max_len=30):
    d = draw(st.integers(1, 3))
    n = draw(st.integers(1, max_len))
    m = draw(st.integers(1, max_len))
    x = draw(arrays(np.float64, (n, d), elements=finite))
    y = draw(arrays(np.float64, (m, d), elements=finite))
    return x, y


radii = st.one_of(st.none(), st.integers(0, 10))


def path_cost(x, y, path):
    return float(np.sqrt(((x[path[:, 0]] - y[path[:, 1]]) ** 2).sum()))


@settings(max_examples=60, deadline=None)
@given(pairs(), radii)
def test_distance_to_itself_is_zero(pair, radius):
    x, _ = pair
    assert mmalign.dtw(x, x, radius=radius) == 0.0


@settings(max_examples=60, deadline=None)
@given(pairs(), radii)
def test_symmetric(pair, radius):
    x, y = pair
    assert np.isclose(mmalign.dtw(x, y, radius=radius), mmalign.dtw(y, x, radius=radius),
                      rtol=1e-12, atol=0)


@settings(max_examples=80, deadline=None)
@given(pairs(), radii)
def test_path_is_monotone_continuous_inside_the_window_and_costs_what_is_returned(pair, radius):
    x, y = pair
    alignment = mmalign.dtw_path(x, y, radius=radius)
    path = alignment.path()
    assert path[0].tolist() == [0, 0]
    assert path[-1].tolist() == [len(x) - 1, len(y) - 1]
    steps = np.diff(path, axis=0)
    assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(axis=1) >= 1).all()
    allowed = mmalign.window_mask(len(x), len(y), radius=radius)
    assert allowed[path[:, 0], path[:, 1]].all()
    assert np.isclose(path_cost(x, y, path), alignment.cost, rtol=1e-9, atol=1e-12)
    assert np.isclose(alignment.cost, mmalign.dtw(x, y, radius=radius), rtol=1e-12, atol=0)


@settings(max_examples=40, deadline=None)
@given(pairs(max_len=20), st.floats(1.0, 4.0))
def test_itakura_path_stays_inside_the_parallelogram(pair, slope):
    x, y = pair
    allowed = mmalign.window_mask(len(x), len(y), itakura_slope=slope)
    value = mmalign.dtw(x, y, itakura_slope=slope)
    if not np.isfinite(value):
        return
    path = mmalign.dtw_path(x, y, itakura_slope=slope).path()
    assert allowed[path[:, 0], path[:, 1]].all()


def reference_dtw(C):
    """Textbook symmetric1 recursion in plain Python: the oracle for masks."""
    n, m = C.shape
    D = np.full((n + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i, j] = C[i - 1, j - 1] + min(D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
    return D[n, m]


@settings(max_examples=40, deadline=None)
@given(pairs(max_len=15), radii, st.integers(0, 2**32 - 1))
def test_band_route_and_mask_route_equal_the_textbook_recursion(pair, radius, seed):
    from scipy.spatial.distance import cdist

    x, y = pair
    C = cdist(x, y, "sqeuclidean")
    band = mmalign.window_mask(len(x), len(y), radius=radius)
    assert np.isclose(mmalign.dtw(x, y, radius=radius) ** 2,
                      reference_dtw(np.where(band, C, np.inf)), rtol=1e-9, atol=1e-12)
    # a mask with random holes is no band: the general kernel answers
    holes = band & (np.random.default_rng(seed).random(band.shape) > 0.2)
    expected = reference_dtw(np.where(holes, C, np.inf))
    got = mmalign.dtw(x, y, mask=holes)
    if np.isinf(expected):
        assert np.isinf(got)
    else:
        assert np.isclose(got ** 2, expected, rtol=1e-9, atol=1e-12)
        path = mmalign.dtw_path(x, y, mask=holes).path()
        assert holes[path[:, 0], path[:, 1]].all()


@settings(max_examples=30, deadline=None)
@given(pairs(max_len=20))
def test_wider_windows_never_cost_more(pair):
    x, y = pair
    values = [mmalign.dtw(x, y, radius=r) for r in (0, 1, 3, 8)] + [mmalign.dtw(x, y)]
    assert all(a >= b - 1e-9 * max(1.0, b) for a, b in zip(values, values[1:]))


@settings(max_examples=40, deadline=None)
@given(pairs(max_len=25), radii)
def test_symmetric2_band_route_equals_the_cost_matrix_route(pair, radius):
    from scipy.spatial.distance import cdist

    x, y = pair
    band = mmalign.window_mask(len(x), len(y), radius=radius)
    C = np.where(band, cdist(x, y, "cityblock"), np.inf)
    fast = mmalign.dtw_path(x, y, radius=radius, metric="cityblock", step_pattern="symmetric2")
    general = mmalign.dtw_path_from_cost(C, step_pattern="symmetric2")
    assert np.isclose(fast.cost, general.cost, rtol=1e-12, atol=1e-12)
    # symmetric2 counts a cell twice when a diagonal step enters it
    path = fast.path()
    cell_costs = np.abs(x[path[:, 0]] - y[path[:, 1]]).sum(axis=1)
    diagonal_entry = (np.diff(path, axis=0) == 1).all(axis=1)
    expected = cell_costs.sum() + cell_costs[1:][diagonal_entry].sum()
    assert np.isclose(fast.cost, expected, rtol=1e-9, atol=1e-9)
