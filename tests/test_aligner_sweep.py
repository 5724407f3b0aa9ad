"""Robustness sweep over every Aligner subclass: its tiny case's calls with one argument
replaced at a time.

Each array-valued argument of each call of ``tests/test_aligner_roundtrip.py``'s tiny
cases (an entry of a dict of modalities or the first member of a list included) is
replaced by

- each bad variant (NaN, inf, empty, 0-d, extra dimensions, object, str, complex, bool):
  a ``ValueError`` / ``TypeError`` whose message names the argument, and the argument
  unchanged afterwards;
- each unusual but valid variant (float16, int8 (of the values, or of ``round(20 *
  values)`` where they are not integers), big-endian, non-contiguous, read-only; for
  tensors float16, bfloat16, int8, non-contiguous, and big-endian / read-only numpy
  arrays): the output of the same values in the original dtype, to the model's precision,
  and the argument unchanged afterwards.

Then: ``fit`` of the explicit aligners with bad training data; values near 1e300 (the
right answer or a ValueError that says why); huge and negative window arguments and
decoding limits.
"""

from __future__ import annotations

import copy
import faulthandler
import numbers
import re
from typing import Any, Callable

import numpy as np
import pytest
import torch

import mmalign
from mmalign.alignment import Alignment
from test_aligner_roundtrip import ALIGNERS, Call, _assert_same, tiny_case
from test_robustness_sweep import BAD, HUGE, ODD, _mentions

# torch's "The given NumPy array is not writable" warning included: read-only input is valid
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

NAMES = sorted(ALIGNERS)  # every discovered aligner: one without a tiny case fails
# aligners that compute in float64 (the others in their network's float32)
FLOAT64 = {"mmalign.warping.aligner.DTW", "mmalign.warping.aligner.SoftDTW",
           "mmalign.projection.cca.CCA", "mmalign.projection.ctw.CTW",
           "mmalign.projection.gctw.GCTW", "mmalign.projection.gtw.GTW"}
TOLERANCE = {True: dict(rtol=1e-9, atol=1e-12), False: dict(rtol=1e-5, atol=1e-6)}


@pytest.fixture(autouse=True)
def _no_hang():
    """A hang ends the run with a traceback instead of stalling CI."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


# --------------------------------------------------------------------------- variants
def _with_value(t: torch.Tensor, value: float) -> torch.Tensor:
    t = t.clone() if t.is_floating_point() else t.double()
    t.view(-1)[t.numel() // 2] = value
    return t


def _non_contiguous_tensor(t: torch.Tensor) -> torch.Tensor:
    wide = torch.zeros(t.shape[:-1] + (2 * t.shape[-1],), dtype=t.dtype)
    wide[..., ::2] = t
    view = wide[..., ::2]
    if view.is_contiguous():  # one feature: stride along the first axis instead
        long = torch.zeros((2 * t.shape[0],) + t.shape[1:], dtype=t.dtype)
        long[::2] = t
        view = long[::2]
    assert not view.is_contiguous()
    return view


TENSOR_BAD: dict[str, Callable[[torch.Tensor], Any]] = {
    "nan": lambda t: _with_value(t, float("nan")),
    "inf": lambda t: _with_value(t, float("inf")),
    "empty": lambda t: t[:0],
    "0-d": lambda t: torch.tensor(1.0),
    "3-d": lambda t: t[None, None],
    # numpy arrays: tensors of these dtypes do not exist
    "object": lambda t: t.numpy().astype(object),
    "str": lambda t: t.numpy().astype(str),
    "complex": lambda t: t.to(torch.complex64) + 1j,
    "bool": lambda t: t > 0,
}
TENSOR_ODD: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "float16": lambda t: t.half(),
    "bfloat16": lambda t: t.bfloat16(),
    "non-contiguous": _non_contiguous_tensor,
}
assert set(TENSOR_BAD) == set(BAD)
ALL_ODD = list(ODD) + [k for k in TENSOR_ODD if k not in ODD]


def _integers(a: np.ndarray) -> bool:
    return a.dtype.kind in "iu" or (a.dtype.kind == "f" and bool(np.all(a == np.round(a))))


def _int8_values(value: Any, ids: bool) -> Any:
    """Values that int8 holds exactly, in the dtype of ``value``: the values themselves when
    they are small integers, else ``round(20 * value)`` (a different but equally valid
    input: the comparison is between two dtypes of the same values)."""
    a = np.array(value.numpy() if isinstance(value, torch.Tensor) else value)  # a copy
    small = _integers(a) and bool(np.all(np.abs(a) <= 127))
    if ids and not small:
        return None
    values = a if small else np.clip(np.round(20 * a), -127, 127).astype(a.dtype)
    if isinstance(value, torch.Tensor):
        return torch.from_numpy(np.ascontiguousarray(values))
    return values.tolist() if isinstance(value, list) else values


def _odd(value: Any, kind: str, ids: bool) -> tuple[Any, Any] | str:
    """``(odd value, the same values in the original dtype)``, or why ``kind`` does not apply.

    Tensors get the torch variants (float16, bfloat16, non-contiguous, int8) and, as numpy
    arrays, big-endian and read-only.
    """
    tensor = isinstance(value, torch.Tensor)
    if kind == "bfloat16" and not tensor:
        return "numpy has no bfloat16"
    if kind in ("float16", "bfloat16") and ids:
        return "token ids are integers: float ids are refused, not rounded"
    if kind == "int8":
        values = _int8_values(value, ids)
        if values is None:
            return "ids beyond the int8 range"
        if tensor:
            return values.to(torch.int8), values
        return np.asarray(values).astype(np.int8), values
    if tensor and kind in TENSOR_ODD:
        odd = TENSOR_ODD[kind](value)
        return odd, odd.to(value.dtype).contiguous()
    a = value.numpy() if tensor else np.asarray(value)
    odd = ODD[kind](a)
    back = np.ascontiguousarray(odd, dtype=a.dtype.newbyteorder("="))
    return odd, (back.tolist() if isinstance(value, list) else back)


def _bad(value: Any, kind: str) -> Any:
    if isinstance(value, torch.Tensor):
        return TENSOR_BAD[kind](value)
    return BAD[kind](value)


# --------------------------------------------------------------------------- argument slots
Path = tuple  # ("x",), ("x", "audio"), ("sequences", 0), ("X", "text", 0)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _is_array(v: Any) -> bool:
    if isinstance(v, (np.ndarray, torch.Tensor)):
        return True
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_number(u) for u in v)


def _is_collection(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_array(u) for u in v)


def _slots(args: dict) -> list[Path]:
    """The array-valued arguments of a call: top level, dict entries, first list members."""
    found = []
    for name, value in args.items():
        if isinstance(value, dict):
            for key, entry in value.items():
                if _is_collection(entry):
                    found.append((name, key, 0))
                elif _is_array(entry):
                    found.append((name, key))
        elif _is_collection(value):
            found.append((name, 0))
        elif _is_array(value):
            found.append((name,))
    return found


def _label(path: Path) -> str:
    """How the argument is written, ``x['audio']`` for a dict entry, ``views[0]`` for a member."""
    out = path[0]
    for part in path[1:]:
        out += f"[{part!r}]"
    return out


def _id_key(path: Path) -> str:
    """The form TinyCase.ids uses: ``src`` or ``x['text']`` (list members count as the list)."""
    return _label(tuple(p for p in path if not isinstance(p, int)))


def _names_argument(message: str, path: Path) -> bool:
    """Whether ``message`` names the argument at ``path``: the parameter name, or for a dict
    entry its key (and, where written as ``name['key']``, the right parameter name)."""
    keys = [p for p in path[1:] if isinstance(p, str)]
    if not keys:
        return _mentions(message, (path[0],))
    key = keys[-1]
    prefixes = re.findall(rf"([A-Za-z_]\w*)\[['\"]{re.escape(key)}['\"]\]", message)
    return _mentions(message, (key,)) and all(p == path[0] for p in prefixes)


def _get(args: dict, path: Path) -> Any:
    value = args
    for part in path:
        value = value[part]
    return value


def _replaced(args: dict, path: Path, new: Any) -> dict:
    """A copy of ``args`` (containers along ``path`` copied) with ``new`` at ``path``."""
    out = dict(args)
    holder = out
    for part in path[:-1]:
        inner = holder[part]
        inner = dict(inner) if isinstance(inner, dict) else list(inner)
        holder[part] = inner
        holder = inner
    holder[path[-1]] = new
    return out


def _snapshot(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return copy.deepcopy(value)


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        if before.dtype != after.dtype or before.shape != after.shape:
            return False
        if before.is_floating_point() or before.is_complex():
            return bool(((before == after) | (before.isnan() & after.isnan())).all())
        return torch.equal(before, after)
    if isinstance(before, np.ndarray):
        if before.dtype != after.dtype or before.shape != after.shape:
            return False
        return np.array_equal(before, after, equal_nan=before.dtype.kind in "fc")
    return before == after


def _call(aligner: Any, call: Call, args: dict) -> Any:
    return getattr(aligner, call.method)(**args)


def _check_finite(result: Any, where: str = "output") -> None:
    """Non-empty, finite: alignments (path, cost, weights), arrays, tensors, containers."""
    if isinstance(result, Alignment):
        assert len(result.path()) > 0, f"{where}: empty path"
        assert result.cost is None or np.isfinite(result.cost), f"{where}.cost = {result.cost}"
        if result.weights is not None:
            _check_finite(result.weights, f"{where}.weights")
        return
    if isinstance(result, (list, tuple)):
        assert len(result) > 0, f"{where}: empty result"
        for i, r in enumerate(result):
            _check_finite(r, f"{where}[{i}]")
        return
    if hasattr(result, "__dataclass_fields__"):
        for f in result.__dataclass_fields__:
            _check_finite(getattr(result, f), f"{where}.{f}")
        return
    if isinstance(result, torch.Tensor):
        result = result.detach().float().cpu().numpy()
    if isinstance(result, (np.ndarray, float, np.floating)):
        arr = np.asarray(result)
        if arr.dtype.kind in "fc":
            assert arr.size > 0, f"{where}: empty"
            assert np.isfinite(arr).all(), f"{where}: not finite"


def _describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:300]}"


# --------------------------------------------------------------------------- the sweep
@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("name", NAMES, ids=_short)
def test_bad_argument_is_refused_naming_it(name, kind):
    case = tiny_case(name)
    failures = []
    for call in case.calls:
        for path in _slots(call.args):
            # (no variant is skipped: for token ids as well, NaN, inf, empty, 0-d, extra
            # dimensions, object, str, complex and bool are never a valid sequence of ids)
            value = _bad(_get(call.args, path), kind)
            before = _snapshot(value)
            where = f"{call.method}({_label(path)}={kind})"
            try:
                result = _call(case.aligner, call, _replaced(call.args, path, value))
            except (ValueError, TypeError) as err:
                if not _names_argument(str(err), path):
                    failures.append(f"{where}: message does not name {_label(path)}: "
                                    f"{_describe_error(err)}")
            except Exception as err:  # noqa: BLE001 - the point is to report what escaped
                failures.append(f"{where}: {_describe_error(err)}")
            else:
                failures.append(f"{where}: returned {type(result).__name__} silently")
            if not _unchanged(before, value):
                failures.append(f"{where}: the argument was modified")
    assert not failures, "\n".join(failures)


def _expect_refusal(run: Callable[[], Any], arg: str, where: str, failures: list[str],
                    silent: str) -> None:
    """``run()`` must raise a ValueError / TypeError naming ``arg``; else a failure is noted
    (``silent`` when it returned)."""
    try:
        run()
    except (ValueError, TypeError) as err:
        if not _mentions(str(err), (arg,)):
            failures.append(f"{where}: {_describe_error(err)}")
    except Exception as err:  # noqa: BLE001 - the point is to report what escaped
        failures.append(f"{where}: {_describe_error(err)}")
    else:
        failures.append(f"{where}: {silent}")


@pytest.mark.parametrize("kind", ALL_ODD)
@pytest.mark.parametrize("name", NAMES, ids=_short)
def test_unusual_valid_array_gives_the_same_output(name, kind):
    case = tiny_case(name)
    tol = TOLERANCE[name in FLOAT64]
    failures, tried = [], 0
    for call in case.calls:
        for path in _slots(call.args):
            original = _get(call.args, path)
            made = _odd(original, kind, _id_key(path) in case.ids)
            if isinstance(made, str):
                continue  # does not apply: made says why
            odd, same_values = made
            tried += 1
            before = _snapshot(odd)
            where = f"{call.method}({_label(path)}={kind})"
            want = _call(case.aligner, call, _replaced(call.args, path, same_values))
            _check_finite(want, where)
            try:
                got = _call(case.aligner, call, _replaced(call.args, path, odd))
                _assert_same(got, want, where, **tol)
            except Exception as err:  # noqa: BLE001
                failures.append(f"{where}: {_describe_error(err)}")
            if not _unchanged(before, odd):
                failures.append(f"{where}: the argument was modified")
    if not tried:
        pytest.skip(f"no argument of {_short(name)} takes {kind} values")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", NAMES, ids=_short)
def test_empty_collection_or_dict_is_refused(name):
    case = tiny_case(name)
    failures, tried = [], 0
    for call in case.calls:
        for arg, value in call.args.items():
            if isinstance(value, dict):
                empty = {}
            elif _is_collection(value):
                empty = []
            else:
                continue
            tried += 1
            _expect_refusal(lambda: _call(case.aligner, call, {**call.args, arg: empty}), arg,
                            f"{call.method}({arg}={empty!r})", failures, "returned silently")
    if not tried:
        pytest.skip("no collection or dict argument")
    assert not failures, "\n".join(failures)


def _deep_snapshot(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_snapshot(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_deep_snapshot(v) for v in value]
    return _snapshot(value)


def _deep_unchanged(before: Any, after: Any) -> bool:
    if isinstance(after, dict):
        return before.keys() == after.keys() and all(_deep_unchanged(before[k], after[k])
                                                     for k in after)
    if isinstance(after, (list, tuple)):
        return len(before) == len(after) and all(_deep_unchanged(b, a)
                                                 for b, a in zip(before, after))
    return _unchanged(before, after)


@pytest.mark.parametrize("name", NAMES, ids=_short)
def test_calls_leave_their_arguments_alone(name):
    case = tiny_case(name)
    for call in case.calls:
        before = _deep_snapshot(call.args)
        _check_finite(_call(case.aligner, call, call.args), call.method)
        assert _deep_unchanged(before, call.args), f"{call.method} modified its arguments"


def test_every_case_sweeps_at_least_one_argument():
    for name in NAMES:
        assert any(_slots(c.args) for c in tiny_case(name).calls), name


# --------------------------------------------------------------------------- fit
def _ragged_member(a: np.ndarray) -> list:
    """A nested list that is not an array: rows of different lengths."""
    rows = np.asarray(a).tolist()
    return [rows[0][:1]] + rows[1:]


def _fit_case(name: str) -> tuple[Callable[..., Any], dict]:
    """``(fit of a fresh copy, valid training data by argument name)``."""
    case = tiny_case(name)
    args = case.calls[0].args
    x, y = args.get("x", args.get("X")), args.get("y", args.get("Y"))
    fresh = type(case.aligner)(**case.aligner.get_params(deep=False))
    if name.endswith(".CCA"):
        return fresh.fit, {"X": x, "Y": y}
    return fresh.fit, {"X": [x, x[::2]], "Y": [y, y[::2]]}


FIT_BAD = {
    "None": lambda v: None,
    "nan": lambda v: [BAD["nan"](v[0])] + list(v[1:]) if isinstance(v, list) else BAD["nan"](v),
    "empty": lambda v: [] if isinstance(v, list) else v[:0],
    "empty member": lambda v: [v[0][:0]] + list(v[1:]),
    "ragged": lambda v: [_ragged_member(v[0])] + list(v[1:]) if isinstance(v, list) else _ragged_member(v),
}
FIT_NAMES = ["mmalign.warping.aligner.DTW", "mmalign.warping.aligner.SoftDTW",
             "mmalign.projection.cca.CCA", "mmalign.projection.ctw.CTW",
             "mmalign.projection.gctw.GCTW", "mmalign.projection.gtw.GTW", "mmalign.projection.dctw.DCTW"]
# fit(X) alone is valid where Y is optional
OPTIONAL_Y = {"mmalign.warping.aligner.DTW", "mmalign.warping.aligner.SoftDTW",
              "mmalign.projection.ctw.CTW", "mmalign.projection.gctw.GCTW", "mmalign.projection.gtw.GTW"}


@pytest.mark.parametrize("kind", list(FIT_BAD))
@pytest.mark.parametrize("name", FIT_NAMES, ids=_short)
def test_fit_refuses_bad_training_data_naming_it(name, kind):
    fit, args = _fit_case(name)
    fit(**args)  # the valid data are accepted
    failures, tried = [], 0
    for arg, value in args.items():
        if kind == "empty member" and not isinstance(value, list):
            continue  # one array, not a collection
        if kind == "None" and arg == "Y" and name in OPTIONAL_Y:
            continue
        tried += 1
        _expect_refusal(lambda: fit(**{**args, arg: FIT_BAD[kind](value)}), arg,
                        f"fit({arg}={kind})", failures, "accepted")
    if not tried:
        pytest.skip(f"{kind} does not apply")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- extreme values
WHY = "large|overflow|range|float32"
# name -> what values near 1e300 give: "scale" (same path, cost times HUGE), "invariant"
# (the same result), "close" (same path, cost within 1e-4: the ridge is in the data's
# units), "value_error", or "finite" (a network: any finite answer, or a ValueError)
HUGE_RESULT = {
    "mmalign.warping.aligner.DTW": "scale",
    "mmalign.warping.aligner.SoftDTW": "value_error",
    "mmalign.projection.cca.CCA": "invariant",
    "mmalign.projection.ctw.CTW": "close",
    "mmalign.projection.gctw.GCTW": "close",
    "mmalign.projection.gtw.GTW": "close",
    "mmalign.projection.dctw.DCTW": "finite",
    "mmalign.projection.deep_cca.DeepCCA": "finite",
    "mmalign.projection.deep_cca.DeepMCCA": "finite",
}


def _times(args: dict, factor: float) -> dict:
    out = {}
    for k, v in args.items():
        if isinstance(v, np.ndarray):
            out[k] = v * factor
        elif isinstance(v, list) and all(isinstance(u, np.ndarray) for u in v):
            out[k] = [u * factor for u in v]
        else:
            out[k] = v
    return out


@pytest.mark.parametrize("name", sorted(HUGE_RESULT), ids=_short)
def test_values_near_1e300_give_the_right_answer_or_say_why(name):
    case = tiny_case(name)
    want = HUGE_RESULT[name]
    for call in case.calls:
        expected = _call(case.aligner, call, call.args)
        args = _times(call.args, HUGE)
        aligner = case.aligner
        if name.endswith(".CCA"):  # CCA is fitted on the data: fit on the scaled data as well
            aligner = mmalign.CCA(**case.aligner.get_params()).fit(args["X"], args["Y"])
        try:
            got = _call(aligner, call, args)
        except ValueError as err:
            assert want in ("value_error", "finite", "close"), f"{call.method}: {err}"
            assert re.search(WHY, str(err)), str(err)
            continue
        assert want != "value_error", f"{call.method}: no ValueError"
        _check_finite(got, call.method)
        if want == "invariant":
            _assert_same(got, expected, call.method, rtol=1e-6, atol=1e-9)
        elif want in ("scale", "close"):
            results = got if isinstance(got, list) else [got]
            for g, e in zip(results, expected if isinstance(expected, list) else [expected]):
                if isinstance(g, Alignment):
                    np.testing.assert_array_equal(g.path(), e.path())
                    if e.cost is not None:
                        factor = HUGE if want == "scale" else 1.0
                        np.testing.assert_allclose(g.cost, e.cost * factor,
                                                   rtol=1e-9 if want == "scale" else 1e-4)


def _huge(value: Any) -> Any:
    """``value`` times about 6.7e299, in float64 (a tensor stays a tensor)."""
    if isinstance(value, torch.Tensor):
        return value.double() * HUGE
    return np.asarray(value, dtype=np.float64) * HUGE


NETWORKS = [n for n in NAMES if n not in HUGE_RESULT]


@pytest.mark.parametrize("name", NETWORKS, ids=_short)
def test_values_near_1e300_in_a_network_say_they_are_too_large(name):
    """Beyond float32: a ValueError naming the argument and saying why (or a finite answer)."""
    case = tiny_case(name)
    failures = []
    for call in case.calls:
        for path in _slots(call.args):
            if _id_key(path) in case.ids:
                continue  # token ids: 1e300 is not an id (the bad-argument sweep covers floats)
            where = f"{call.method}({_label(path)}=1e300)"
            try:
                huge = _huge(_get(call.args, path))
                got = _call(case.aligner, call, _replaced(call.args, path, huge))
                _check_finite(got, where)
            except ValueError as err:
                if not (re.search(WHY, str(err)) and _names_argument(str(err), path)):
                    failures.append(f"{where}: {_describe_error(err)}")
            except Exception as err:  # noqa: BLE001
                failures.append(f"{where}: {_describe_error(err)}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------- window arguments
WINDOWED_ALIGNERS = ["mmalign.projection.ctw.CTW", "mmalign.projection.gctw.GCTW",
                     "mmalign.projection.dctw.DCTW"]


def _with_params(name: str, **params: Any) -> Any:
    aligner = copy.deepcopy(tiny_case(name).aligner)
    return aligner.set_params(**params)


@pytest.mark.parametrize("radius", [2 ** 63 - 1, 2 ** 63, 10 ** 30, np.int64(2 ** 62)],
                         ids=["2**63-1", "2**63", "1e30", "int64"])
@pytest.mark.parametrize("name", WINDOWED_ALIGNERS, ids=_short)
def test_a_radius_beyond_both_lengths_means_no_band(name, radius):
    call = tiny_case(name).calls[0]
    got = _call(_with_params(name, radius=radius), call, call.args)
    _check_finite(got)
    _assert_same(got, _call(_with_params(name, radius=None), call, call.args), **TOLERANCE[True])


@pytest.mark.parametrize("radius", [-1, -(2 ** 63), 1.5, np.nan, "3", True],
                         ids=["-1", "-2**63", "1.5", "nan", "str", "bool"])
@pytest.mark.parametrize("name", WINDOWED_ALIGNERS, ids=_short)
def test_a_bad_radius_is_refused_naming_it(name, radius):
    call = tiny_case(name).calls[0]
    with pytest.raises((ValueError, TypeError), match="radius"):
        _call(_with_params(name, radius=radius), call, call.args)


DECODERS = ["mmalign.attention.seq2seq.Seq2SeqAttention",
            "mmalign.attention.transformer_seq2seq.TransformerSeq2Seq",
            "mmalign.attention.show_attend_tell.ShowAttendTell"]


@pytest.mark.parametrize("value", [0, -1, -(2 ** 63), 1.5, np.nan, "3", True, 2 ** 63, 10_001],
                         ids=["0", "-1", "-2**63", "1.5", "nan", "str", "bool", "2**63", "10001"])
@pytest.mark.parametrize("option", ["beam_size", "max_len"])
@pytest.mark.parametrize("name", DECODERS, ids=_short)
def test_a_bad_decoding_limit_is_refused_naming_it(name, option, value):
    case = tiny_case(name)
    call = case.calls[-1]  # the decoding call (no target given)
    with pytest.raises((ValueError, TypeError), match=option):
        _call(case.aligner, call, {**call.args, option: value})
