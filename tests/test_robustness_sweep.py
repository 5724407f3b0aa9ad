"""Robustness sweep over the public functional API: every bad input gets a ValueError or
TypeError that names the argument; every unusual but valid input (float16, int8,
big-endian, non-contiguous, read-only) gives the float64 answer; values near 1e300 give
the right answer or a ValueError that says why; nothing a caller passed is modified;
no result is inf, NaN or empty.

Each case states its arguments and their kind; the bad and odd variants are derived
from the valid value, so a new public function needs one line here.
"""

from __future__ import annotations

import faulthandler
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest

import mmalign
import mmalign.features
from mmalign import metrics
from mmalign.evaluation import component_correlations
from mmalign.warping import envelope, lb_keogh, lb_kim

RNG = np.random.default_rng(0)
# integer-valued, so float16 and int8 hold them exactly
X = RNG.integers(-4, 5, size=(12, 2)).astype(np.float64)
Y = RNG.integers(-4, 5, size=(15, 2)).astype(np.float64)
Z = RNG.integers(-4, 5, size=(9, 2)).astype(np.float64)
# views of different dimension for CCA-like methods (full rank)
U = np.c_[X, X[:, 0] ** 2 + np.arange(12)]
PATH = np.array([(k, k) for k in range(12)] + [(11, j) for j in range(12, 15)])  # (0, 0) -> (11, 14)
OTHER_PATH = np.array([(0, j) for j in range(4)] + [(k, k + 3) for k in range(1, 12)])
REFERENCE = np.c_[np.arange(12), np.linspace(0, 14, 12).round()]
_T = np.arange(8192) / 22050
SIGNAL = (np.sin(2 * np.pi * 440 * _T) + 0.5 * np.sin(2 * np.pi * 660 * _T)) * np.linspace(0.1, 1, 8192)


@pytest.fixture(autouse=True)
def _no_hang():
    """A hang ends the run with a traceback instead of stalling CI (works inside numba)."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# --------------------------------------------------------------------------- variants
def _read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _non_contiguous(a):
    a = np.asarray(a)
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype) if a.ndim else a
    if a.ndim == 0:
        return a
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] == 1
    if view.flags.c_contiguous:  # one column: stride along time instead
        long = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        long[::2] = a
        view = long[::2]
    return view


ODD = {
    "float16": lambda a: np.asarray(a).astype(np.float16),
    "int8": lambda a: np.asarray(a).astype(np.int8),
    "big-endian": lambda a: np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">")),
    "non-contiguous": _non_contiguous,
    "read-only": _read_only,
}


def _with_nan(a):
    a = np.array(a, dtype=np.float64)
    a.flat[len(a.flat) // 2] = np.nan
    return a


def _with_inf(a):
    a = np.array(a, dtype=np.float64)
    a.flat[len(a.flat) // 2] = np.inf
    return a


BAD = {
    "nan": _with_nan,
    "inf": _with_inf,
    "empty": lambda a: np.asarray(a)[:0],
    "0-d": lambda a: np.float64(1.0),
    "3-d": lambda a: np.asarray(a)[None, None],
    "object": lambda a: np.asarray(a).astype(object),
    "str": lambda a: np.asarray(a).astype(str),
    "complex": lambda a: np.asarray(a).astype(complex) + 1j,
    "bool": lambda a: np.asarray(a) > 0,
}


@dataclass
class Case:
    """``call(**args)`` with ``args`` valid; ``names`` maps an argument to the words a message
    about it may use; ``huge``: what values near 1e300 give ("scale": the result times 1e300,
    "invariant": the same result, "value_error": a ValueError, "either": right answer
    ("invariant") or a ValueError); ``bad``: bad variants that do not apply."""

    name: str
    call: Callable[..., Any]
    args: dict
    names: dict = field(default_factory=dict)
    huge: str | None = None
    odd: tuple = tuple(ODD)
    bad: tuple = tuple(BAD)


def _seq(f, **kw):
    return lambda x, y: f(x, y, **kw)


CASES = [
    Case("dtw", _seq(mmalign.dtw), {"x": X, "y": Y}, huge="scale"),
    Case("dtw radius", _seq(mmalign.dtw, radius=3), {"x": X, "y": Y}, huge="scale"),
    Case("dtw euclidean", _seq(mmalign.dtw, metric="euclidean"), {"x": X, "y": Y}, huge="scale"),
    Case("dtw cityblock", _seq(mmalign.dtw, metric="cityblock"), {"x": X, "y": Y}, huge="scale"),
    Case("dtw itakura", _seq(mmalign.dtw, itakura_slope=2.0), {"x": X, "y": Y}, huge="scale"),
    Case("dtw symmetric2 open end", _seq(mmalign.dtw, step_pattern="symmetric2", open_end=True),
         {"x": X, "y": Y}, huge="scale"),
    Case("dtw_path", _seq(mmalign.dtw_path), {"x": X, "y": Y}, huge="scale"),
    Case("dtw_path multiscale", _seq(mmalign.dtw_path, method="multiscale", multiscale_radius=2),
         {"x": X, "y": Y}, huge="scale"),
    Case("DTW.align", lambda x, y: mmalign.DTW(radius=4).align(x, y), {"x": X, "y": Y}, huge="scale"),
    Case("subsequence_dtw", lambda query, series: mmalign.subsequence_dtw(query, series, k=2),
         {"query": Z[:4], "series": Y}, huge="scale"),
    Case("lb_keogh", lambda x, y: lb_keogh(x, y, radius=2), {"x": X, "y": X[::-1]}, huge="scale"),
    Case("lb_kim", _seq(lb_kim), {"x": X, "y": Y}, huge="scale"),
    Case("envelope", lambda x: envelope(x, radius=2), {"x": X}, huge="scale"),
    Case("soft_dtw", _seq(mmalign.soft_dtw, gamma=0.5), {"x": X, "y": Y}, huge="value_error"),
    Case("soft_dtw_alignment", _seq(mmalign.soft_dtw_alignment, gamma=0.5), {"x": X, "y": Y},
         huge="value_error"),
    Case("SoftDTW.align", lambda x, y: mmalign.SoftDTW(gamma=0.5).align(x, y), {"x": X, "y": Y},
         huge="value_error"),
    Case("dtw_from_cost", lambda cost: mmalign.dtw_from_cost(cost),
         {"cost": np.abs(X[:, :1] - Y[:, 0])}, huge="scale",
         bad=("nan", "empty", "0-d", "3-d", "object", "str", "complex", "bool")),
    Case("dtw_path_from_cost", lambda cost: mmalign.dtw_path_from_cost(cost),
         {"cost": np.abs(X[:, :1] - Y[:, 0])}, huge="scale",
         bad=("nan", "empty", "0-d", "3-d", "object", "str", "complex", "bool")),
    # the correlations: weights and means scale with the data
    Case("cca", lambda X, Y: mmalign.cca(X, Y, 1)[2], {"X": U, "Y": X}, huge="either",
         names={"X": ("X", "view"), "Y": ("Y", "view")}),
    Case("CCA.fit", lambda X, Y: mmalign.CCA(n_components=1).fit(X, Y).correlations_,
         {"X": U, "Y": X}, huge="either", names={"X": ("X", "view"), "Y": ("Y", "view")}),
    # reg=0: a ridge is in the squared units of the data, so it would not scale
    Case("CTW.align", lambda x, y: mmalign.CTW(n_components=1, reg=0.0).align(x, y), {"x": U, "y": Y},
         huge="either"),
    Case("component_correlations", component_correlations, {"a": U[:, :2], "b": X},
         huge="either"),
    Case("deviations", metrics.deviations, {"alignment": PATH, "reference": REFERENCE},
         odd=("int8", "big-endian", "non-contiguous", "read-only"),
         bad=("nan", "inf", "empty", "0-d", "3-d", "object", "str", "complex")),
    Case("mean_absolute_deviation", metrics.mean_absolute_deviation,
         {"alignment": PATH, "reference": REFERENCE},
         odd=("int8", "big-endian", "non-contiguous", "read-only"),
         bad=("nan", "inf", "empty", "0-d", "3-d", "object", "str", "complex")),
    Case("area_between_paths", metrics.area_between_paths, {"p": PATH, "q": OTHER_PATH},
         odd=("int8", "big-endian", "non-contiguous", "read-only"),
         bad=("nan", "inf", "empty", "0-d", "3-d", "object", "str", "complex")),
    Case("Alignment", lambda path: mmalign.Alignment(path).path(), {"path": PATH},
         odd=("int8", "big-endian", "non-contiguous", "read-only"),
         bad=("nan", "inf", "empty", "0-d", "3-d", "object", "str", "complex")),
    Case("chroma", lambda y: mmalign.features.chroma(y, 22050), {"y": SIGNAL},
         odd=("big-endian", "non-contiguous", "read-only"),
         bad=("nan", "inf", "empty", "0-d", "3-d", "object", "str", "complex", "bool")),
]

COLLECTION_CASES = [
    Case("cdist_dtw", lambda X: mmalign.cdist_dtw(X, n_jobs=1), {"X": [X, Y, Z]}, huge="scale"),
    Case("cdist_dtw radius", lambda X: mmalign.cdist_dtw(X, radius=2, n_jobs=1), {"X": [X, Y, Z]},
         huge="scale"),
    Case("dba", lambda X: mmalign.dba(X, n_iter=3), {"X": [X, Y, Z]}, huge="scale"),
    Case("soft_dtw_barycenter", lambda X: mmalign.soft_dtw_barycenter(X, gamma=1.0, max_iter=3),
         {"X": [X, Y, Z]}, huge="value_error"),
    Case("KNeighborsDTW", lambda X: mmalign.KNeighborsDTW(radius=3, n_jobs=1).fit(X, [0, 1, 1])
         .predict_proba(X), {"X": [X, Y, Z]}, huge="invariant"),
    Case("mcca", lambda views: mmalign.mcca(views, 1)[1], {"views": [U, X, X[:, ::-1] + U[:, 2:]]},
         huge="either"),
]


# --------------------------------------------------------------------------- comparison
def _same(a, b, rtol=1e-12):
    if isinstance(a, mmalign.Alignment):
        return (isinstance(b, mmalign.Alignment) and _same(a.path(), b.path())
                and _same(a.cost, b.cost) and a.shape == b.shape)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v, rtol) for u, v in zip(a, b))
    if hasattr(a, "__dataclass_fields__"):
        return all(_same(getattr(a, f), getattr(b, f), rtol) for f in a.__dataclass_fields__)
    if a is None or isinstance(a, (str, bool)):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=0, equal_nan=False)


def _finite_and_not_empty(result):
    if isinstance(result, mmalign.Alignment):
        assert len(result.path()) > 0
        assert result.cost is None or np.isfinite(result.cost)
        return
    if isinstance(result, (list, tuple)):
        assert len(result) > 0, "empty result"
        for r in result:
            _finite_and_not_empty(r)
        return
    if hasattr(result, "__dataclass_fields__"):
        for f in result.__dataclass_fields__:
            v = getattr(result, f)
            if isinstance(v, (float, np.floating, np.ndarray)):
                _finite_and_not_empty(v)
        return
    arr = np.asarray(result)
    if arr.dtype.kind in "fc":
        assert arr.size > 0, "empty result"
        assert np.isfinite(arr).all(), f"non-finite result {result!r}"


def _scaled(result, factor):
    if isinstance(result, mmalign.Alignment):
        return mmalign.Alignment(result.path(), cost=None if result.cost is None else result.cost * factor,
                                 shape=result.shape)
    if isinstance(result, list):
        return [_scaled(r, factor) for r in result]
    if hasattr(result, "__dataclass_fields__"):
        out = {f: getattr(result, f) for f in result.__dataclass_fields__}
        for key, value in out.items():
            if isinstance(value, mmalign.Alignment) or key in ("cost", "distance"):
                out[key] = _scaled(value, factor)
        return type(result)(**out)
    return result * factor if np.ndim(result) == 0 else np.asarray(result) * factor


def _snapshot(value):
    if isinstance(value, list):
        return [np.array(v, copy=True) for v in value]
    return np.array(value, copy=True)


def _unchanged(before, after):
    if isinstance(before, list):
        return all(_unchanged(b, a) for b, a in zip(before, after))
    after = np.asarray(after)
    return (before.dtype == after.dtype and before.shape == after.shape
            and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))


def _names(case, arg):
    return case.names.get(arg, (arg,))


def _mentions(message, words):
    return any(re.search(rf"(?<![A-Za-z_]){re.escape(w)}(?![A-Za-z_])", message) for w in words)


def _collection_with(value, variant):
    return [variant(value[0])] + list(value[1:])


def _ids(cases, variants):
    return [(c, a, k) for c in cases for a in c.args for k in variants if k in
            (c.bad if variants is BAD else c.odd)]


# --------------------------------------------------------------------------- the sweep
@pytest.mark.parametrize("case,arg,kind", _ids(CASES, BAD),
                         ids=lambda v: v.name if isinstance(v, Case) else str(v))
def test_bad_input_is_refused_naming_the_argument(case, arg, kind):
    args = dict(case.args)
    args[arg] = BAD[kind](args[arg])
    before = _snapshot(args[arg])
    with pytest.raises((ValueError, TypeError)) as info:
        case.call(**args)
    assert _mentions(str(info.value), _names(case, arg)), str(info.value)
    assert _unchanged(before, args[arg])


@pytest.mark.parametrize("case,arg,kind", _ids(COLLECTION_CASES, BAD),
                         ids=lambda v: v.name if isinstance(v, Case) else str(v))
def test_bad_member_of_a_collection_is_refused(case, arg, kind):
    if kind == "3-d":
        pytest.skip("a 3-d member is a collection of its own")
    args = dict(case.args)
    args[arg] = _collection_with(args[arg], BAD[kind])
    with pytest.raises((ValueError, TypeError)) as info:
        case.call(**args)
    assert _mentions(str(info.value), _names(case, arg)), str(info.value)


@pytest.mark.parametrize("case", COLLECTION_CASES, ids=lambda c: c.name)
def test_empty_collection_is_refused(case):
    (arg,) = case.args
    with pytest.raises((ValueError, TypeError)) as info:
        case.call(**{arg: []})
    assert _mentions(str(info.value), _names(case, arg)), str(info.value)


@pytest.mark.parametrize("case,arg,kind", _ids(CASES, ODD) + _ids(COLLECTION_CASES, ODD),
                         ids=lambda v: v.name if isinstance(v, Case) else str(v))
def test_unusual_valid_arrays_give_the_float64_answer(case, arg, kind):
    expected = case.call(**case.args)
    _finite_and_not_empty(expected)
    args = dict(case.args)
    collection = isinstance(args[arg], list)
    args[arg] = _collection_with(args[arg], ODD[kind]) if collection else ODD[kind](args[arg])
    before = _snapshot(args[arg])
    got = case.call(**args)
    assert _same(got, expected), f"{got!r} != {expected!r}"
    assert _unchanged(before, args[arg])


HUGE = 2.0 ** 996  # about 6.7e299


@pytest.mark.parametrize("case", [c for c in CASES + COLLECTION_CASES if c.huge],
                         ids=lambda c: c.name)
def test_values_near_1e300_give_the_right_answer_or_say_why(case):
    expected = case.call(**case.args)
    args = {k: [v * HUGE for v in a] if isinstance(a, list) else a * HUGE
            for k, a in case.args.items()}
    if case.huge == "value_error":
        with pytest.raises(ValueError, match="large"):
            case.call(**args)
        return
    try:
        got = case.call(**args)
    except ValueError as err:
        assert case.huge == "either", f"{case.name}: {err}"
        assert re.search("large|overflow|range|singular", str(err)), str(err)
        return
    _finite_and_not_empty(got)
    want = _scaled(expected, HUGE) if case.huge == "scale" else expected
    assert _same(got, want, rtol=1e-9), f"{got!r} != {want!r}"


# --------------------------------------------------------------------------- windows
WINDOWED = [
    ("dtw", lambda **kw: mmalign.dtw(X, Y, **kw)),
    ("dtw_path", lambda **kw: mmalign.dtw_path(X, Y, **kw)),
    ("soft_dtw", lambda **kw: mmalign.soft_dtw(X, Y, gamma=0.5, **kw)),
    ("soft_dtw_alignment", lambda **kw: mmalign.soft_dtw_alignment(X, Y, gamma=0.5, **kw)),
    ("cdist_dtw", lambda **kw: mmalign.cdist_dtw([X, Y, Z], n_jobs=1, **kw)),
    ("batch_dtw", lambda **kw: mmalign.batch_dtw(np.stack([X, X[::-1]]), np.stack([Y, Y[::-1]]),
                                                 **kw)),
    ("window_mask", lambda **kw: mmalign.window_mask(12, 15, **kw)),
    ("DTW.align", lambda **kw: mmalign.DTW(**kw).align(X, Y)),
    ("SoftDTW.align", lambda **kw: mmalign.SoftDTW(gamma=0.5, **kw).align(X, Y)),
    ("lb_keogh", lambda **kw: lb_keogh(X, X[::-1], **kw)),
    ("dba", lambda **kw: mmalign.dba([X, Y, Z], n_iter=2, **kw)),
    ("SoftDTWLoss", lambda **kw: _soft_loss(**kw)),
]


def _soft_loss(**kw):
    import torch

    loss = mmalign.SoftDTWLoss(gamma=0.5, **kw)
    return float(loss(torch.from_numpy(X)[None], torch.from_numpy(Y)[None]))


def _no_band_radius(name):
    # lb_keogh's envelope needs a radius; every other entry point takes None as "no band"
    return 10_000 if name == "lb_keogh" else None


@pytest.mark.parametrize("radius", [2 ** 63 - 1, 2 ** 63, 10 ** 30, np.int64(2 ** 62)],
                         ids=["2**63-1", "2**63", "1e30", "int64"])
@pytest.mark.parametrize("name,call", WINDOWED, ids=[w[0] for w in WINDOWED])
def test_a_radius_beyond_both_lengths_means_no_band(name, call, radius):
    got = call(radius=radius)
    _finite_and_not_empty(got)
    assert _same(got, call(radius=_no_band_radius(name)))


@pytest.mark.parametrize("radius", [-1, -(2 ** 63), 1.5, np.nan, "3", True],
                         ids=["-1", "-2**63", "1.5", "nan", "str", "bool"])
@pytest.mark.parametrize("name,call", WINDOWED, ids=[w[0] for w in WINDOWED])
def test_a_bad_radius_is_refused_naming_it(name, call, radius):
    with pytest.raises((ValueError, TypeError), match="radius"):
        call(radius=radius)


WINDOW_FRACTION = [w for w in WINDOWED if w[0] in ("dtw", "dtw_path", "soft_dtw", "cdist_dtw",
                                                   "window_mask", "DTW.align")]


@pytest.mark.parametrize("window", [-0.1, 1.5, np.nan, np.inf, "0.1"])
@pytest.mark.parametrize("name,call", WINDOW_FRACTION, ids=[w[0] for w in WINDOW_FRACTION])
def test_a_bad_window_fraction_is_refused_naming_it(name, call, window):
    with pytest.raises((ValueError, TypeError), match="window"):
        call(window=window)


def test_a_huge_dense_mask_is_refused_pointing_to_radius():
    with pytest.raises(ValueError, match="radius"):
        mmalign.window_mask(10 ** 7, 10 ** 7, radius=1)


# --------------------------------------------------------------------------- SoftDTWLoss (torch)
def _tensor_pair():
    import torch

    return torch.from_numpy(X)[None], torch.from_numpy(Y)[None]


@pytest.mark.parametrize("kind", ["nan", "inf", "empty", "0-d", "4-d", "complex", "bool"])
@pytest.mark.parametrize("arg", ["x", "y"])
def test_soft_dtw_loss_refuses_bad_tensors_naming_them(arg, kind):
    import torch

    tensors = dict(zip("xy", _tensor_pair()))
    t = tensors[arg]
    bad = {
        "nan": lambda: t.clone().index_fill_(1, torch.tensor([3]), float("nan")),
        "inf": lambda: t.clone().index_fill_(1, torch.tensor([3]), float("inf")),
        "empty": lambda: t[:, :0],
        "0-d": lambda: torch.tensor(1.0, dtype=torch.float64),
        "4-d": lambda: t[None],
        "complex": lambda: t.to(torch.complex128),
        "bool": lambda: t > 0,
    }[kind]()
    tensors[arg] = bad
    with pytest.raises((ValueError, TypeError)) as info:
        mmalign.SoftDTWLoss(gamma=0.5)(tensors["x"], tensors["y"])
    assert _mentions(str(info.value), (arg,)), str(info.value)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_soft_dtw_loss_in_low_precision_returns_that_dtype_and_a_close_value(dtype):
    import torch

    x, y = _tensor_pair()
    want = float(mmalign.SoftDTWLoss(gamma=0.5)(x, y))
    dt = getattr(torch, dtype)
    xs = x.to(dt).requires_grad_(True)
    got = mmalign.SoftDTWLoss(gamma=0.5)(xs, y.to(dt))
    assert got.dtype == dt
    got.backward()
    assert xs.grad.dtype == dt and torch.isfinite(xs.grad.float()).all()
    assert abs(float(got.detach()) - want) <= 1e-2 * abs(want) + 1e-2


def test_soft_dtw_loss_on_values_near_1e300_says_they_are_too_large():
    import torch

    x, y = _tensor_pair()
    with pytest.raises(ValueError, match="large"):
        mmalign.SoftDTWLoss(gamma=0.5)(x * HUGE, y * HUGE)


def test_soft_dtw_loss_leaves_its_inputs_alone():
    import torch

    x, y = _tensor_pair()
    x = x[:, ::2].clone().requires_grad_(True)   # non-contiguous after the slice below
    before = x.detach().clone()
    mmalign.SoftDTWLoss(gamma=0.5, normalize=True)(x[:, ::1], y).backward()
    assert torch.equal(x.detach(), before)
