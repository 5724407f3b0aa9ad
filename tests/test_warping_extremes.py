"""Numbers at the extremes (issue 19): huge and tiny values, huge radii and slopes,
bfloat16 losses, dense-mask sizes.  A right answer or a ValueError that says why —
never inf / NaN, an empty result or a message blaming the wrong argument."""

import numpy as np
import pytest
import torch

import mmalign
from mmalign.warping import batch as TB
from mmalign.warping.batch import batch_dtw
from mmalign.warping.lower_bounds import lb_keogh, lb_kim

BIG = 2.0 ** 700  # squares overflow float64
TINY = 2.0 ** -700  # squares underflow to 0
RNG = np.random.default_rng(19)
X = RNG.normal(size=(9, 2))
Y = RNG.normal(size=(7, 2))
T = RNG.normal(size=(6, 9))
HUGE_RADII = [2**63 - 1, 2**63, 10**30]


# --------------------------------------------------------------- hard DTW: huge and tiny values


def test_dtw_of_the_issue_example_is_right():
    value = mmalign.dtw(np.full((3, 1), 1e200), np.zeros((3, 1)))
    assert value == pytest.approx(np.sqrt(3) * 1e200, rel=1e-15)
    assert mmalign.dtw(np.full((3, 1), 1e200), np.zeros((3, 1)), radius=1) == value


@pytest.mark.parametrize("scale", [BIG, TINY, 2.0 ** 1000, 2.0 ** -1000])
@pytest.mark.parametrize("kw", [
    {}, {"radius": 1}, {"window": 0.3}, {"metric": "euclidean"}, {"metric": "cityblock"},
    {"step_pattern": "symmetric2"}, {"step_pattern": "asymmetric"}, {"open_end": True},
    {"open_begin": True, "open_end": True}, {"itakura_slope": 3.0},
])
def test_dtw_scales_exactly_with_a_power_of_two(scale, kw):
    # the local costs are homogeneous, so dtw(c x, c y) = c dtw(x, y) for every metric but cosine
    expected = mmalign.dtw(X, Y, **kw)
    assert np.isfinite(expected)
    assert mmalign.dtw(X * scale, Y * scale, **kw) == scale * expected
    path = mmalign.dtw_path(X * scale, Y * scale, **kw)
    assert np.array_equal(path.path(), mmalign.dtw_path(X, Y, **kw).path())
    assert path.cost == scale * expected


@pytest.mark.parametrize("scale", [BIG, TINY, 1e307])
def test_cosine_is_scale_free_at_the_extremes(scale):
    expected = mmalign.dtw(X, Y, metric="cosine")
    assert mmalign.dtw(X * scale, Y * scale, metric="cosine") == pytest.approx(expected, rel=1e-12)
    # rows of wildly different sizes in one sequence
    rows = X * np.logspace(-300, 300, len(X))[:, None]
    assert mmalign.dtw(rows, Y, metric="cosine") == pytest.approx(expected, rel=1e-12)


def test_values_near_the_largest_float():
    top = np.finfo(np.float64).max
    assert mmalign.dtw(np.array([top]), np.array([0.0])) == top
    assert mmalign.dtw(np.array([top, top]), np.array([top])) == 0.0
    assert mmalign.dtw(np.array([top / 2]), np.array([-top / 2]), metric="cityblock") == top
    # the true distance is above float64: say so, never inf
    for kw in ({}, {"metric": "euclidean"}, {"metric": "cityblock"}, {"radius": 0}):
        with pytest.raises(ValueError, match="float64"):
            mmalign.dtw(np.array([top, top]), np.array([-top, -top]), **kw)
        with pytest.raises(ValueError, match="float64"):
            mmalign.dtw_path(np.array([top, top]), np.array([-top, -top]), **kw)


def test_dtw_path_does_not_blame_a_window_that_was_not_given():
    big = np.full((3, 1), 1e200)
    alignment = mmalign.dtw_path(big, np.zeros((3, 1)))
    assert alignment.cost == pytest.approx(np.sqrt(3) * 1e200, rel=1e-15)
    # no path at all without a window: asymmetric steps cannot cover a y > 2 len(x) - 1
    with pytest.raises(ValueError) as err:
        mmalign.dtw_path(np.zeros(2), np.zeros(9), step_pattern="asymmetric")
    assert "window" not in str(err.value) and "asymmetric" in str(err.value)
    # a window that was given is still named
    with pytest.raises(ValueError, match="window"):
        mmalign.dtw_path(np.zeros(3), np.zeros(10), itakura_slope=2.0)


def test_multiscale_path_at_the_extremes():
    t = np.linspace(0, 1, 1500)
    x, y = np.sin(7 * t), np.sin(7 * t ** 1.2)
    exact = mmalign.dtw_path(x, y, method="multiscale")
    for scale in (BIG, TINY):
        scaled = mmalign.dtw_path(x * scale, y * scale, method="multiscale")
        assert np.array_equal(scaled.path(), exact.path())
        assert scaled.cost == scale * exact.cost


def test_dtw_on_the_device_path_at_the_extremes():
    # the torch wavefront that dtw() runs on CUDA tensors, here on CPU tensors
    for scale in (BIG, TINY):
        value, path, _ = TB.solve_on_device(
            torch.from_numpy(X * scale), torch.from_numpy(Y * scale), radius=None, window=None,
            itakura_slope=None, mask=None, metric="sqeuclidean", step_pattern="symmetric1",
            open_begin=False, open_end=False, want_path=True)
        assert value == scale * mmalign.dtw(X, Y)
        assert np.array_equal(path, mmalign.dtw_path(X, Y).path())
    value = TB.solve_on_device(
        torch.from_numpy(X * 1e300), torch.from_numpy(Y * 1e300), radius=None, window=None,
        itakura_slope=None, mask=None, metric="cosine", step_pattern="symmetric1",
        open_begin=False, open_end=False, want_path=False)[0]
    assert value == pytest.approx(mmalign.dtw(X, Y, metric="cosine"), rel=1e-12)


# --------------------------------------------------------------- precomputed and callable costs


def test_dtw_from_cost_with_huge_finite_costs():
    assert mmalign.dtw_from_cost(np.full((2, 2), 6e307)) == pytest.approx(1.2e308)
    for func in (mmalign.dtw_from_cost, mmalign.dtw_path_from_cost):
        with pytest.raises(ValueError, match="float64") as err:
            func(np.full((3, 3), 1e308))
        assert "window" not in str(err.value)
    # forbidden cells that leave no path: still inf / a message about the cells
    blocked = np.array([[0.0, np.inf], [np.inf, np.inf]])
    assert mmalign.dtw_from_cost(blocked) == np.inf
    with pytest.raises(ValueError, match="inf"):
        mmalign.dtw_path_from_cost(blocked)


def test_callable_metric_whose_costs_overflow_when_summed():
    def huge(a, b):
        return 1e308

    with pytest.raises(ValueError, match="float64"):
        mmalign.dtw(X, Y, metric=huge)
    with pytest.raises(ValueError, match="float64"):
        mmalign.subsequence_dtw(X[:3], Y, metric=huge)
    assert mmalign.dtw(X[:1], Y[:1], metric=huge) == 1e308


@pytest.mark.parametrize("bad", [[[1.0, 2.0], [3.0]], [[1.0, "a"]], "abc"])
def test_ragged_or_unreadable_cost_matrix_is_named(bad):
    with pytest.raises(ValueError, match="cost"):
        mmalign.dtw_from_cost(bad)


# --------------------------------------------------------------- the rest of the hard family


def test_subsequence_dtw_at_the_extremes():
    series = np.r_[np.zeros(20), np.sin(np.linspace(0, np.pi, 15)), np.zeros(20)]
    query = np.sin(np.linspace(0, np.pi, 10))
    expected = mmalign.subsequence_dtw(query, series, k=2)
    for scale in (1e200 / 2.0 ** 5, BIG, TINY):
        found = mmalign.subsequence_dtw(query * scale, series * scale, k=2)
        assert [(m.start, m.stop) for m in found] == [(m.start, m.stop) for m in expected]
        assert [m.cost for m in found] == pytest.approx([scale * m.cost for m in expected],
                                                        rel=1e-15)
    found = mmalign.subsequence_dtw(np.full(3, 1e200), np.zeros(10))
    assert len(found) == 1 and found[0].cost == pytest.approx(np.sqrt(3) * 1e200, rel=1e-15)


@pytest.mark.parametrize("kw", [{}, {"radius": 2}, {"metric": "cityblock"}, {"metric": "cosine"}])
def test_cdist_dtw_scales_per_pair(kw):
    Xs = [RNG.normal(size=(n, 2)) for n in (6, 6, 8, 6)]
    plain = mmalign.cdist_dtw(Xs, **kw)
    mixed = [Xs[0] * BIG, Xs[1], Xs[2] * TINY, Xs[3]]
    for device in (None, "cpu"):
        got = mmalign.cdist_dtw(mixed, **kw, device=device)
        assert np.isfinite(got).all()
        for a in range(4):
            for b in range(4):
                assert got[a, b] == pytest.approx(
                    mmalign.dtw(mixed[a], mixed[b], **kw), rel=1e-12, abs=0)
        # ordinary pairs stay bit for bit what they were
        assert got[1, 3] == plain[1, 3]
        if "metric" not in kw:
            assert got[0, 0] == 0.0 and mmalign.cdist_dtw([mixed[0]] * 3, device=device).max() == 0
    same = [x * BIG for x in Xs]
    scale = 1.0 if kw.get("metric") == "cosine" else BIG
    assert np.array_equal(mmalign.cdist_dtw(same, **kw), scale * plain)
    if kw.get("metric") != "cosine":
        with pytest.raises(ValueError, match="float64"):
            mmalign.cdist_dtw([np.full(4, 1e308), np.full(4, -1e308)], **kw)


def test_batch_dtw_scales_per_pair_and_ignores_padding():
    x = torch.from_numpy(np.stack([X[:7], X[:7] * BIG, X[:7] * TINY]))
    y = torch.from_numpy(np.stack([Y, Y * BIG, Y * TINY]))
    lengths = [7, 5, 6]
    y[1, 5:] = 1e300  # padding may hold anything
    got = batch_dtw(x, y, y_lengths=lengths)
    for b, scale in enumerate((1.0, BIG, TINY)):
        assert float(got[b]) == scale * mmalign.dtw(X[:7], Y[:lengths[b]])
    values, paths = batch_dtw(x, y, y_lengths=lengths, return_paths=True)
    assert np.array_equal(paths[1], mmalign.dtw_path(X[:7], Y[:5]).path())
    with pytest.raises(ValueError, match="float64"):
        batch_dtw(torch.full((1, 2), 1e308, dtype=torch.float64),
                  torch.full((1, 2), -1e308, dtype=torch.float64))


def test_kneighbors_and_lower_bounds_at_the_extremes():
    train = RNG.normal(size=(12, 10))
    labels = np.arange(12) % 3
    queries = RNG.normal(size=(4, 10))
    plain = mmalign.KNeighborsDTW(2, radius=2).fit(train, labels)
    dist, ind = plain.kneighbors(queries)
    for scale in (BIG, TINY):
        clf = mmalign.KNeighborsDTW(2, radius=2).fit(train * scale, labels)
        sdist, sind = clf.kneighbors(queries * scale)
        assert np.array_equal(sind, ind)
        assert np.array_equal(sdist, scale * dist)
        assert np.array_equal(clf.predict(queries * scale), plain.predict(queries))
        for metric in ("sqeuclidean", "euclidean", "cityblock"):
            assert lb_keogh(queries[0] * scale, train[0] * scale, radius=2, metric=metric) \
                == scale * lb_keogh(queries[0], train[0], radius=2, metric=metric)
            assert lb_kim(queries[0] * scale, train[0] * scale, metric=metric) \
                == scale * lb_kim(queries[0], train[0], metric=metric)


def test_dba_and_the_dtw_aligner_at_the_extremes():
    Xs = [RNG.normal(size=(n, 2)) for n in (8, 9, 7)]
    z, history = mmalign.dba(Xs, n_iter=5, return_history=True)
    for scale in (2.0 ** 450, 2.0 ** -450):
        zs, hs = mmalign.dba([x * scale for x in Xs], n_iter=5, return_history=True)
        assert np.array_equal(zs, z * scale)
        assert np.array_equal(hs, history * scale ** 2)
    for scale in (BIG, TINY):
        assert np.array_equal(mmalign.dba([x * scale for x in Xs], n_iter=5), z * scale)
    with pytest.raises(ValueError, match="float64"):  # the squared costs exceed float64
        mmalign.dba([x * BIG for x in Xs], n_iter=5, return_history=True)
    a = mmalign.DTW().align(X * BIG, Y * BIG)
    assert a.cost == BIG * mmalign.dtw(X, Y)


# --------------------------------------------------------------- soft-DTW: a clear error


@pytest.mark.parametrize("call", [
    lambda x, y: mmalign.soft_dtw(x, y),
    lambda x, y: mmalign.soft_dtw_alignment(x, y),
    lambda x, y: mmalign.soft_dtw(x, y, radius=1, metric="euclidean"),
    lambda x, y: mmalign.SoftDTW().align(x, y),
    lambda x, y: mmalign.soft_dtw_barycenter([x, y], max_iter=2),
])
def test_soft_dtw_refuses_values_whose_squared_costs_overflow(call):
    with pytest.raises(ValueError, match="too large") as err:
        call(np.full((3, 1), 1e200), np.zeros((3, 1)))
    assert "gamma" in str(err.value) and "1e+200" in str(err.value)


def test_soft_dtw_in_range_stays_finite():
    assert np.isfinite(mmalign.soft_dtw(X * 1e100, Y * 1e100))
    # cityblock costs are not squared: 1e200 is in range
    assert mmalign.soft_dtw(np.full(3, 1e200), np.zeros(3), metric="cityblock", gamma=1e-8) \
        == pytest.approx(3e200)
    assert np.isfinite(mmalign.soft_dtw_alignment(X * 1e3, Y * 1e3).matrix()).all()
    # costs far beyond what float64 resolves relative to gamma: a clear error, no NaN weights
    with pytest.raises(ValueError, match="relative to gamma"):
        mmalign.soft_dtw_alignment(X * 1e100, Y * 1e100)
    # tiny values are fine: their costs are negligible next to gamma
    assert mmalign.soft_dtw(X * TINY, Y * TINY, gamma=1.0) == pytest.approx(
        mmalign.soft_dtw(np.zeros_like(X), np.zeros_like(Y), gamma=1.0))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_soft_dtw_loss_refuses_overflowing_values(backend):
    loss = mmalign.SoftDTWLoss(backend=backend)
    y = torch.zeros(2, 3, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="too large"):
        loss(torch.full((2, 3, 1), 1e200, dtype=torch.float64), y)
    # no NaN gradient either where x - y itself overflows
    x = torch.tensor([[[1e300], [-1e300]]], dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="too large"):
        loss(x, torch.tensor([[[-1e300], [1e300]]], dtype=torch.float64))
    # float32 tensors: float32's range
    with pytest.raises(ValueError, match="too large"):
        loss(torch.full((2, 3, 1), 1e20), torch.zeros(2, 3, 1))
    # the divergence also solves (x, x): twice the differences of x alone
    x = torch.full((1, 3, 1), 2.0 ** 510, dtype=torch.float64)
    assert torch.isfinite(loss(x, torch.zeros_like(x)))
    with pytest.raises(ValueError, match="too large"):
        mmalign.SoftDTWLoss(backend=backend, normalize=True)(x, torch.zeros_like(x))
    # padding beyond the lengths is not looked at
    x = torch.zeros(2, 4, 1, dtype=torch.float64)
    x[:, 3] = 1e200
    assert torch.isfinite(loss(x, y, x_lengths=torch.tensor([3, 3])))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_soft_dtw_loss_gradient_is_never_nan(backend):
    # in range for the value, but costs ~1e200 next to gamma = 1: float64 cannot resolve
    # the soft minimum's weights; the backward says so instead of returning NaN
    x = torch.from_numpy(X[None] * 1e100).requires_grad_(True)
    loss = mmalign.SoftDTWLoss(backend=backend)(x, torch.from_numpy(Y[None] * 1e100))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="relative to gamma"):
        loss.backward()


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_soft_dtw_loss_on_half_precision(backend, dtype):
    x32 = torch.from_numpy(X[None, :, :1].astype(np.float32))
    y32 = torch.from_numpy(Y[None, :, :1].astype(np.float32))
    x = x32.to(dtype).requires_grad_(True)
    loss = mmalign.SoftDTWLoss(gamma=0.5, normalize=True, backend=backend)
    value = loss(x, y32.to(dtype))
    assert value.dtype == dtype
    value.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()
    xr = x.detach().float().requires_grad_(True)
    reference = loss(xr, y32.to(dtype).float())
    reference.backward()
    assert float(value.detach()) == pytest.approx(float(reference.detach()), rel=1e-2, abs=1e-2)
    assert torch.allclose(x.grad.float(), xr.grad, rtol=2e-2, atol=2e-2)


def test_soft_dtw_loss_result_beyond_float16_is_an_error():
    x = torch.full((1, 3, 1), 200.0, dtype=torch.float16)
    with pytest.raises(ValueError, match="float16"):
        mmalign.SoftDTWLoss()(x, torch.zeros(1, 3, 1, dtype=torch.float16))


# --------------------------------------------------------------- radius, slope and mask sizes


def _everywhere(radius):
    """Every entry point that takes a Sakoe–Chiba radius, with that radius."""
    x, y = X[:, 0], Y[:, 0]
    tx, ty = torch.from_numpy(x)[None], torch.from_numpy(y)[None]
    return {
        "dtw": lambda: mmalign.dtw(x, y, radius=radius),
        "dtw_path": lambda: mmalign.dtw_path(x, y, radius=radius).cost,
        "multiscale": lambda: mmalign.dtw_path(x, y, radius=radius, method="multiscale").cost,
        "multiscale_radius": lambda: mmalign.dtw_path(x, y, method="multiscale",
                                                      multiscale_radius=radius).cost,
        "dtw_from_cost": lambda: mmalign.dtw_from_cost(np.abs(x[:, None] - y), radius=radius),
        "DTW": lambda: mmalign.DTW(radius=radius).align(x, y).cost,
        "batch_dtw": lambda: float(batch_dtw(tx, ty, radius=radius)[0]),
        "cdist_dtw": lambda: mmalign.cdist_dtw([x, y], radius=radius)[0, 1],
        "cdist_dtw device": lambda: mmalign.cdist_dtw([x, y], radius=radius, device="cpu")[0, 1],
        "soft_dtw": lambda: mmalign.soft_dtw(x, y, radius=radius),
        "soft_dtw_alignment": lambda: mmalign.soft_dtw_alignment(x, y, radius=radius).cost,
        "SoftDTW": lambda: mmalign.SoftDTW(radius=radius).align(x, y).cost,
        "SoftDTWLoss numba": lambda: float(mmalign.SoftDTWLoss(radius=radius, backend="numba")(
            tx[..., None], ty[..., None])),
        "SoftDTWLoss torch": lambda: float(mmalign.SoftDTWLoss(radius=radius, backend="torch")(
            tx[..., None], ty[..., None])),
        "window_mask": lambda: mmalign.window_mask(9, 7, radius=radius).sum(),
        "KNeighborsDTW": lambda: mmalign.KNeighborsDTW(radius=radius).fit(T[:4], [0, 1, 0, 1])
        .kneighbors(T[4:])[0].tolist(),
        "lb_keogh": lambda: lb_keogh(T[0], T[1], radius=radius),
        "envelope": lambda: mmalign.warping.envelope(T[0], radius=radius)[0].tolist(),
        "dba": lambda: mmalign.dba([x, y, x[::-1]], radius=radius, n_iter=2).tolist(),
        "soft_dtw_barycenter": lambda: mmalign.soft_dtw_barycenter(
            [x, y], radius=radius, max_iter=2).tolist(),
    }


@pytest.mark.parametrize("name", list(_everywhere(None)))
@pytest.mark.parametrize("radius", HUGE_RADII)
def test_a_radius_beyond_both_lengths_means_no_band(name, radius):
    expected = _everywhere(None if name != "multiscale_radius" else 16)[name]()
    got = _everywhere(radius)[name]()
    assert got == pytest.approx(expected, rel=1e-12) if isinstance(got, float) else got == expected


@pytest.mark.parametrize("name", list(_everywhere(None)))
def test_a_negative_radius_is_still_named(name):
    with pytest.raises(ValueError, match="radius"):
        _everywhere(-1)[name]()


@pytest.mark.parametrize("slope", [1e4, 1e20, 1e300, 1.7e308])
def test_a_huge_itakura_slope_gives_the_limit_parallelogram(slope):
    for n, m in ((5, 4), (4, 7), (9, 9)):
        limit = np.zeros((n, m), bool)
        limit[:, 1:m - 1] = True  # any slope below infinity: the first and last columns
        limit[0, 0] = limit[n - 1, m - 1] = True  # hold only the corner cells
        assert np.array_equal(mmalign.window_mask(n, m, itakura_slope=slope), limit)
    assert np.isfinite(mmalign.dtw(X, Y, itakura_slope=slope))


def test_dense_masks_over_the_size_limit_are_refused():
    for call in (lambda: mmalign.window_mask(10**7, 10**7, radius=1),
                 lambda: mmalign.window_mask(10**7, 10**7),
                 lambda: mmalign.warping.itakura_mask(10**7, 10**7, 2.0)):
        with pytest.raises(ValueError, match="radius=") as err:
            call()
        assert "10000000" in str(err.value)
    assert mmalign.window_mask(3000, 3000, radius=1).sum() == 3000 + 2 * 2999
