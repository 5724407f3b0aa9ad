import io
import itertools

import numpy as np
import pytest
import scipy.sparse
import torch

from mmalign.alignment import Alignment

DIAG_STEPS = [(1, 0), (0, 1), (1, 1)]


def all_monotone_paths(n_x, n_y):
    """Every monotone continuous path from (0, 0) to (n_x - 1, n_y - 1) (brute force)."""
    out = []

    def extend(p):
        i, j = p[-1]
        if (i, j) == (n_x - 1, n_y - 1):
            out.append(list(p))
            return
        for di, dj in DIAG_STEPS:
            if i + di < n_x and j + dj < n_y:
                extend(p + [(i + di, j + dj)])

    extend([(0, 0)])
    return out


# ---------------------------------------------------------------- construction
def test_shape_inferred_from_path_and_weights():
    a = Alignment([[0, 0], [1, 1], [2, 1]])
    assert a.shape == (3, 2) and (a.n_x, a.n_y) == (3, 2)
    w = np.full((4, 3, 5), 0.2)
    b = Alignment(weights=w, weight_axes=("head",), monotonic=False)
    assert b.shape == (3, 5)
    assert b.weights.shape == (4, 3, 5)


def test_path_is_int64_copy_and_input_untouched():
    p = np.array([[0, 0], [1, 1]], dtype=np.int32)
    a = Alignment(p, shape=(3, 3))
    p[0, 0] = 2  # mutating the caller's array afterwards must not leak in
    out = a.path()
    assert out.dtype == np.int64
    assert out.tolist() == [[0, 0], [1, 1]]
    out[0, 0] = 9  # the returned array is the caller's to modify
    assert a.path()[0, 0] == 0
    assert a.shape == (3, 3)


def test_weights_stored_read_only_copy():
    w = np.eye(3)
    a = Alignment(weights=w)
    w[0, 0] = 5.0
    assert a.weights[0, 0] == 1.0
    with pytest.raises(ValueError):
        a.weights[0, 0] = 2.0


def test_attributes():
    a = Alignment([[0, 0], [1, 1]], cost=np.float32(2.5), frame_rate=10, extras={"k": 1})
    assert a.cost == 2.5 and isinstance(a.cost, float)
    assert a.frame_rate == 10.0
    assert a.extras == {"k": 1}
    assert a.monotonic is True
    assert Alignment([[0, 0]]).extras == {}
    assert Alignment([[0, 0]]).cost is None


def test_torch_inputs_accepted():
    a = Alignment(torch.tensor([[0, 0], [1, 1]]), weights=torch.eye(2), cost=torch.tensor(3.0))
    assert a.cost == 3.0
    np.testing.assert_array_equal(a.matrix(), np.eye(2))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({}, "path"),
        ({"path": [[0, 0, 0]]}, "path"),
        ({"path": [0, 1]}, "path"),
        ({"path": np.zeros((0, 2), dtype=int)}, "path"),
        ({"path": [[0.5, 1.0]]}, "path"),
        ({"path": [[-1, 0]]}, "path"),
        ({"path": [[np.nan, 0]]}, "path"),
        ({"path": [["a", "b"]]}, "path"),
        ({"path": [[0, 0], [3, 1]], "shape": (3, 3)}, "path"),
        ({"path": [[0, 0]], "shape": (0, 2)}, "shape"),
        ({"path": [[0, 0]], "shape": (2,)}, "shape"),
        ({"weights": np.ones(3)}, "weights"),
        ({"weights": np.zeros((0, 3))}, "weights"),
        ({"weights": [[np.inf, 0.0]]}, "weights"),
        ({"weights": [[-0.1, 1.1]]}, "weights"),
        ({"weights": np.ones((2, 3)), "shape": (3, 2)}, "weights"),
        ({"path": [[0, 0]], "frame_rate": 0}, "frame_rate"),
        ({"path": [[0, 0]], "frame_rate": (10, np.nan)}, "frame_rate"),
        ({"path": [[0, 0]], "frame_rate": "fast"}, "frame_rate"),
        ({"path": [[0, 0]], "cost": np.nan}, "cost"),
        ({"path": [[0, 0]], "cost": [1.0, 2.0]}, "cost"),
        ({"path": [[0, 0]], "extras": [1]}, "extras"),
    ],
)
def test_bad_input_raises_naming_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Alignment(**kwargs)


@pytest.mark.parametrize("path, step", [
    ([[0, 0], [1, 1], [0, 2]], r"step 1 goes from \(1, 1\) to \(0, 2\)"),
    ([[0, 0], [1, 2], [2, 1]], r"step 1 goes from \(1, 2\) to \(2, 1\)"),
    ([[2, 2], [1, 1], [0, 0]], r"step 0 goes from \(2, 2\) to \(1, 1\)"),
])
def test_non_monotone_path_is_refused_unless_monotonic_is_false(path, step):
    with pytest.raises(ValueError, match=r"path must be monotone .*monotonic=False.*" + step):
        Alignment(path)
    with pytest.raises(ValueError, match="path must be monotone"):
        Alignment(path, monotonic=True, shape=(3, 3))
    a = Alignment(path, monotonic=False)
    assert a.monotonic is False and a.path().tolist() == path


def test_monotone_paths_may_repeat_pairs_skip_cells_and_start_anywhere():
    for path in ([[0, 0], [0, 0], [1, 1]], [[0, 0], [2, 3]], [[3, 1], [4, 1], [5, 4]]):
        assert Alignment(path).monotonic is True


def test_integral_float_path_accepted():
    assert Alignment(np.array([[0.0, 0.0], [1.0, 2.0]])).path().tolist() == [[0, 0], [1, 2]]


# ---------------------------------------------------------------------- path()
def test_argmax_path_from_weights():
    w = np.array([[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]])
    a = Alignment(weights=w, monotonic=False)
    assert a.path().tolist() == [[0, 1], [1, 0]]  # default for non-monotonic
    assert a.index_x.tolist() == [0, 1]
    assert a.index_y.tolist() == [1, 0]


def test_monotone_path_matches_brute_force():
    rng = np.random.default_rng(0)
    for n_x, n_y in [(1, 1), (1, 4), (3, 1), (3, 4), (4, 4), (5, 3)]:
        w = rng.random((n_x, n_y))
        a = Alignment(weights=w)
        p = a.path(method="monotone")
        score = np.log(w[p[:, 0], p[:, 1]] + 1e-12).sum()
        best = max(
            np.log(np.array([w[i, j] for i, j in q]) + 1e-12).sum()
            for q in all_monotone_paths(n_x, n_y)
        )
        assert score == pytest.approx(best, rel=1e-12)
        assert p[0].tolist() == [0, 0] and p[-1].tolist() == [n_x - 1, n_y - 1]
        assert set(map(tuple, np.diff(p, axis=0))) <= set(DIAG_STEPS)


def test_monotone_path_follows_strong_band():
    w = np.full((4, 6), 1e-3)
    target = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (3, 5)]
    for i, j in target:
        w[i, j] = 1.0
    assert Alignment(weights=w).path().tolist() == [list(c) for c in target]


def test_leading_axes_are_averaged():
    w = np.zeros((2, 2, 2))
    w[0] = [[1.0, 0.0], [0.0, 1.0]]
    w[1] = [[0.0, 1.0], [0.0, 1.0]]
    a = Alignment(weights=w, weight_axes=("head",), monotonic=False)
    np.testing.assert_allclose(a.matrix(), [[0.5, 0.5], [0.0, 1.0]])
    assert a.path().tolist() == [[0, 0], [1, 1]]
    assert a.weight_axes == ("head",) and "over ('head',)" in repr(a)


@pytest.mark.parametrize("shape,axes", [((1, 2, 2), ()), ((2, 2), ("head",)), ((2, 3, 2, 2), ("head",)),
                                        ((2,), ())])
def test_weights_need_one_named_axis_per_leading_axis(shape, axes):
    with pytest.raises(ValueError, match="weights must have shape"):
        Alignment(weights=np.ones(shape), weight_axes=axes)


@pytest.mark.parametrize("axes", ["head", [1], ("",), None])
def test_weight_axes_must_be_names(axes):
    with pytest.raises(ValueError, match="weight_axes"):
        Alignment(weights=np.ones((1, 2, 2)), weight_axes=axes)


def test_weight_axes_without_weights_is_refused():
    with pytest.raises(ValueError, match="weight_axes"):
        Alignment([[0, 0]], weight_axes=("head",))


def test_stored_path_preferred_unless_method_given():
    w = np.array([[0.1, 0.9], [0.9, 0.1]])
    a = Alignment([[0, 0], [1, 1]], weights=w)
    assert a.path().tolist() == [[0, 0], [1, 1]]
    assert a.path("argmax").tolist() == [[0, 1], [1, 0]]
    with pytest.raises(ValueError, match="method"):
        a.path("viterbi")


def test_len_and_repr():
    a = Alignment([[0, 0], [1, 1], [2, 1]], cost=1.25)
    assert len(a) == 3
    r = repr(a)
    assert "shape=(3, 2)" in r and "3 pairs" in r and "cost=1.25" in r


# ---------------------------------------------------------------- conversions
def test_matrix_from_path_dense_and_sparse():
    a = Alignment([[0, 0], [1, 0], [1, 1], [2, 2]], shape=(3, 4))
    expected = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=float)
    np.testing.assert_array_equal(a.matrix(), expected)
    s = a.matrix(dense=False)
    assert isinstance(s, scipy.sparse.csr_matrix)
    np.testing.assert_array_equal(s.toarray(), expected)


def test_warping_matrices_sample_along_path():
    rng = np.random.default_rng(1)
    p = np.array([[0, 0], [1, 0], [2, 1], [2, 2], [3, 3]])
    a = Alignment(p)
    W_x, W_y = a.warping_matrices()
    assert W_x.shape == (4, 5) and W_y.shape == (4, 5)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    np.testing.assert_array_equal(W_x.T @ X, X[p[:, 0]])
    np.testing.assert_array_equal(W_y.T @ Y, Y[p[:, 1]])
    np.testing.assert_array_equal(X.T @ W_x, X[p[:, 0]].T)
    np.testing.assert_array_equal(W_x.sum(axis=0), np.ones((1, 5)))


def test_warp_hard_path_means_matched_frames():
    a = Alignment([[0, 0], [1, 0], [2, 1], [3, 2]])
    x = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0], [7.0, 70.0]])
    np.testing.assert_allclose(a.warp(x, source="x"), [[2.0, 20.0], [5.0, 50.0], [7.0, 70.0]])
    y = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(a.warp(y, source="y"), [1.0, 1.0, 2.0, 3.0])
    assert x[0, 0] == 1.0  # input untouched


def test_warp_soft_weights_weighted_average():
    w = np.array([[3.0, 1.0], [0.0, 2.0]])
    a = Alignment(weights=w, monotonic=False)
    y = np.array([0.0, 8.0])
    np.testing.assert_allclose(a.warp(y, source="y"), [2.0, 8.0])
    x = np.array([4.0, 1.0])
    np.testing.assert_allclose(a.warp(x, source="x"), [4.0, (4.0 + 2.0) / 3.0])


def test_warp_trailing_shape_dtype_and_unmatched():
    a = Alignment([[0, 0], [1, 0], [2, 2]], monotonic=False)  # y frame 1 unmatched
    x = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    out = a.warp(x)
    assert out.shape == (3, 2, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], (x[0] + x[1]) / 2)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[2], x[2])


@pytest.mark.parametrize(
    "seq, source, match",
    [
        (np.ones(4), "x", "seq"),
        (np.ones(2), "y", "seq"),
        (np.array([1.0, np.nan, 2.0]), "x", "seq"),
        (np.array(["a", "b", "c"]), "x", "seq"),
        (np.ones(3), "z", "source"),
    ],
)
def test_warp_bad_input(seq, source, match):
    a = Alignment([[0, 0], [1, 1], [2, 2]])
    with pytest.raises(ValueError, match=match):
        a.warp(seq, source=source)


def test_mapping_hard_soft_and_interpolated():
    a = Alignment([[0, 0], [0, 1], [1, 2], [2, 2]])
    np.testing.assert_allclose(a.mapping("x"), [0.5, 2.0, 2.0])
    np.testing.assert_allclose(a.mapping("y"), [0.0, 0.0, 1.5])
    soft = Alignment(weights=[[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], monotonic=False)
    np.testing.assert_allclose(soft.mapping("x"), [0.5, 2.0])
    gaps = Alignment([[0, 0], [1, 2], [2, 4]], shape=(3, 5))
    np.testing.assert_allclose(gaps.mapping("y"), [0.0, 0.5, 1.0, 1.5, 2.0])


def test_times_with_scalar_and_pair_frame_rate():
    p = [[0, 0], [2, 1], [4, 3]]
    np.testing.assert_allclose(Alignment(p, frame_rate=2.0).times(), [[0, 0], [1, 0.5], [2, 1.5]])
    np.testing.assert_allclose(
        Alignment(p, frame_rate=(4.0, 1.0)).times(), [[0, 0], [0.5, 1.0], [1.0, 3.0]]
    )
    with pytest.raises(ValueError, match="frame_rate"):
        Alignment(p).times()


def test_to_csv_buffer_and_file(tmp_path):
    a = Alignment([[0, 0], [1, 2]], frame_rate=(2.0, 4.0))
    buf = io.StringIO()
    a.to_csv(buf)
    assert buf.getvalue().splitlines() == ["x_index,y_index,x_time,y_time", "0,0,0.0,0.0", "1,2,0.5,0.5"]
    f = tmp_path / "a.csv"
    Alignment([[0, 0], [1, 1]]).to_csv(f, header=False)
    assert f.read_text().splitlines() == ["0,0", "1,1"]
    rows = np.loadtxt(io.StringIO(buf.getvalue()), delimiter=",", skiprows=1)
    np.testing.assert_allclose(rows, np.hstack([a.path(), a.times()]))


def test_derived_path_fits_every_conversion():
    # Soft-only monotone alignment: all hard-path conversions use the derived path.
    w = np.eye(3) + 0.01
    a = Alignment(weights=w)
    assert len(a) == 3
    W_x, _ = a.warping_matrices()
    assert W_x.shape == (3, 3)
    assert list(itertools.chain.from_iterable(a.path().tolist())) == [0, 0, 1, 1, 2, 2]


# ------------------------------------------------------- distribution_over, transpose
def test_argmax_path_of_a_distribution_over_x_picks_a_row_per_column():
    w = np.array([[0.1, 0.7, 0.0], [0.9, 0.3, 1.0]])  # every column sums to one
    a = Alignment(weights=w, distribution_over="x", monotonic=False)
    assert a.path().tolist() == [[1, 0], [0, 1], [1, 2]]
    assert Alignment(weights=w, monotonic=False).path().tolist() == [[0, 1], [1, 2]]
    assert "distribution_over='x'" in repr(a)


@pytest.mark.parametrize("value", ["z", 0, "rows"])
def test_distribution_over_names_a_side(value):
    with pytest.raises(ValueError, match="distribution_over"):
        Alignment(weights=np.eye(2), distribution_over=value)


def test_distribution_over_needs_weights():
    with pytest.raises(ValueError, match="distribution_over"):
        Alignment([[0, 0]], distribution_over="x")


def test_transpose_swaps_every_side_dependent_part():
    w = np.random.default_rng(0).random((2, 3, 4))
    a = Alignment([[0, 0], [1, 1], [2, 3]], weights=w, weight_axes=("head",), distribution_over="y",
                  frame_rate=(10.0, 20.0), cost=2.5, extras={"k": 1})
    t = a.transpose()
    assert t.shape == (4, 3) and t.path().tolist() == [[0, 0], [1, 1], [3, 2]]
    np.testing.assert_array_equal(t.weights, np.swapaxes(w, -1, -2))
    assert (t.distribution_over, t.frame_rate, t.cost, t.extras) == ("x", (20.0, 10.0), 2.5, {"k": 1})
    np.testing.assert_array_equal(t.matrix(), a.matrix().T)
    np.testing.assert_array_equal(t.transpose().path(), a.path())
