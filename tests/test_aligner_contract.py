"""The one Aligner contract, checked on every aligner mmalign defines (discovered, not listed:
a new aligner without a case below fails ``test_every_aligner_has_a_contract_case``).

For each aligner:

- ``Aligner()`` with its defaults constructs and does no work: it stores the hyper-parameters
  and nothing else (no network, no fitted attribute, no draw from torch's or numpy's global
  random state); it is not a ``torch.nn.Module``; scikit-learn's estimator checks that apply
  to a constructor pass (clone, repr, get_params / set_params, no attribute set in
  ``__init__``, default-constructible parameters, no validation in ``__init__`` /
  ``set_params``);
- ``fit(X, Y)`` returns the aligner; ``align(a, b)`` then returns ONE
  :class:`~mmalign.Alignment` whose side x indexes ``a`` and side y indexes ``b`` (``shape
  == (len(a), len(b))``, or the documented internal side for the spatial transformer and
  the glimpse model, which refuse a second argument); where the weights are a distribution
  over one side, they sum to one over it;
- ``align_batch`` over the same pairs equals ``align`` pair by pair;
- a device that is not there (CUDA on a machine without it) is a clear ``ValueError``.

Save / load of every fitted aligner: tests/test_aligner_roundtrip.py (the same discovery).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils import estimator_checks

from mmalign.aligner import Aligner
from mmalign.alignment import Alignment
from test_aligner_roundtrip import (ESTIMATORS, _assert_same, _fusion_inputs, _images, _pair,
                                    _streams, tiny_case)

ALIGNER_NAMES = sorted(name for name, cls in ESTIMATORS.items() if issubclass(cls, Aligner))


@dataclasses.dataclass(frozen=True)
class Contract:
    """What one aligner is fitted on and aligned with.

    ``fit``: positional arguments of ``fit`` (``X``, ``Y``). ``pairs``: arguments of
    ``align``, one pair each (one element where side y is internal). ``batch``: the same
    pairs as ``align_batch``'s arguments. ``options``: keywords of both (which modalities
    of a multimodal sample, which holds both sides). ``shape(pair)``: the documented ``Alignment.shape`` (None for a
    side that is internal to the model, checked to be non-empty).
    """

    fit: tuple
    pairs: tuple[tuple, ...]
    batch: tuple
    shape: Callable[[tuple], tuple]
    options: dict = dataclasses.field(default_factory=dict)
    # the pairs hold one argument: what the message says when a second one is given
    second_refused: str | None = None


def _lengths(pair: tuple) -> tuple:
    return tuple(len(member) for member in pair)


def _sequences() -> Contract:
    x, y = _pair()
    pairs = ((x, y), (x[::2], y), (x, y[:7]))
    return Contract(fit=([x, x[::-1]], [y, y[::-1]]), pairs=pairs,
                    batch=([p[0] for p in pairs], [p[1] for p in pairs]), shape=_lengths)


def _same_dims() -> Contract:  # DTW and soft-DTW compare features directly: d_x == d_y
    x, y = _pair(dx=2, dy=2)
    pairs = ((x, y), (x[::2], y), (x, y[:7]))
    return Contract(fit=([x], [y]), pairs=pairs,
                    batch=([p[0] for p in pairs], [p[1] for p in pairs]), shape=_lengths)


def _image_contract(size: int, labels: bool = True) -> Contract:
    images, classes = _images(size=size)
    return Contract(fit=(images, classes), pairs=((images[0],), (images[1],)),
                    batch=(images[:2],), second_refused="side y",
                    shape=lambda pair: (pair[0].shape[-2] * pair[0].shape[-1], None))


def _seq2seq() -> Contract:
    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 5)).tolist() for _ in range(8)]
    tgt = [s[::-1] for s in src]
    pairs = ((src[0], tgt[0]), (src[1], tgt[2]), (src[3], tgt[3]))
    return Contract(fit=(src, tgt), pairs=pairs,
                    batch=([p[0] for p in pairs], [p[1] for p in pairs]), shape=_lengths)


def _show_attend_tell() -> Contract:
    images, _ = _images(size=32)
    captions = [[4 + (i % 5), 5 + (i % 3)][: 1 + i % 2] for i in range(len(images))]
    pairs = ((images[0], captions[0]), (images[1], captions[1]), (images[2], [7, 4, 5]))
    return Contract(fit=(images, captions), pairs=pairs,
                    batch=(torch.stack([p[0] for p in pairs]), [p[1] for p in pairs]),
                    shape=lambda pair: (None, len(pair[1])))  # side x: the encoder's cells


def _fusion() -> Contract:
    X, y = _fusion_inputs()
    samples = tuple(({k: v[i] for k, v in X.items()},) for i in range(3))
    return Contract(fit=(X, y), pairs=samples, batch=({k: v[:3] for k, v in X.items()},),
                    options={"target": "text", "source": "audio"}, second_refused="^y",
                    shape=lambda pair: (len(pair[0]["audio"]), len(pair[0]["text"])))


def _multimodal_streams(labels: bool) -> Contract:
    ds, X = _streams()
    samples = tuple(({k: v[i] for k, v in X.items()},) for i in range(3))
    batch = {k: v[:3] for k, v in X.items()}
    fit = (X, ds.labels) if labels else (X,)  # pretraining: no labels
    return Contract(fit=fit, pairs=samples, batch=(batch,),
                    options={"target": "text", "source": "video"}, second_refused="^y",
                    shape=lambda pair: (len(pair[0]["video"]), len(pair[0]["text"])))


CONTRACTS: dict[str, Callable[[], Contract]] = {
    "mmalign.warping.aligner.DTW": _same_dims,
    "mmalign.warping.aligner.SoftDTW": _same_dims,
    "mmalign.projection.ctw.CTW": _sequences,
    "mmalign.projection.gctw.GCTW": _sequences,
    "mmalign.projection.gtw.GTW": _sequences,
    "mmalign.projection.dctw.DCTW": _sequences,
    "mmalign.attention.spatial_transformer.SpatialTransformer": lambda: _image_contract(16),
    "mmalign.attention.glimpse.GlimpseAttention": lambda: _image_contract(8),
    "mmalign.attention.seq2seq.Seq2SeqAttention": _seq2seq,
    "mmalign.attention.transformer_seq2seq.TransformerSeq2Seq": _seq2seq,
    "mmalign.attention.show_attend_tell.ShowAttendTell": _show_attend_tell,
    "mmalign.attention.crossmodal.CrossmodalTransformer": _fusion,
    "mmalign.attention.crossmodal.JointSelfAttentionFusion": _fusion,
    "mmalign.attention.crossmodal.BimodalTransformer": _fusion,
    "mmalign.attention.pretraining.MultimodalPretrainer": lambda: _multimodal_streams(False),
    "mmalign.attention.finetuning.MultimodalFineTuner": lambda: _multimodal_streams(True),
}


def _fitted(name: str) -> tuple[Aligner, Contract]:
    """A clone of the tiny case's aligner (small hyper-parameters), fitted here on the contract's
    data; the fit must return the aligner itself."""
    case = CONTRACTS[name]()
    model = clone(tiny_case(name).aligner)
    torch.manual_seed(0)
    assert model.fit(*case.fit) is model, f"{name}.fit must return self"
    return model, case


# ----------------------------------------------------------------------------- discovery
def test_every_aligner_has_a_contract_case():
    assert len(ALIGNER_NAMES) >= 14
    missing = sorted(set(ALIGNER_NAMES) - set(CONTRACTS))
    assert not missing, f"add a contract case to tests/test_aligner_contract.py for {missing}"
    assert not set(CONTRACTS) - set(ALIGNER_NAMES), "a contract case names no aligner"


# ----------------------------------------------------------------------------- construction
@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_default_construction_stores_parameters_and_does_no_work(name):
    cls = ESTIMATORS[name]
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    model = cls()
    assert torch.equal(torch.random.get_rng_state(), torch_state), f"{name}() drew random numbers"
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()
    assert not isinstance(model, torch.nn.Module), f"{name} must own its network, not be one"
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    assert sorted(vars(model)) == sorted(params), f"{name}() set {sorted(set(vars(model)) - set(params))}"
    defaults = {p: v.default for p, v in inspect.signature(cls.__init__).parameters.items()
                if p != "self"}
    for p, value in model.get_params(deep=False).items():
        assert value is defaults[p], f"{name}.{p} is not stored as given"


# scikit-learn's checks that apply to the constructor and the parameters
SKLEARN_CHECKS = ["check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
                  "check_get_params_invariance", "check_set_params",
                  "check_parameters_default_constructible",
                  "check_do_not_raise_errors_in_init_or_set_params"]


@pytest.mark.parametrize("check", SKLEARN_CHECKS)
@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_scikit_learn_estimator_checks(name, check):
    getattr(estimator_checks, check)(name.rsplit(".", 1)[1], ESTIMATORS[name]())


@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_params_round_trip_through_set_params_and_clone(name):
    model = tiny_case(name).aligner
    params = model.get_params(deep=False)
    copy = clone(model)
    assert copy.set_params(**params) is copy and repr(copy) == repr(model)
    deep = model.get_params(deep=True)
    nested = {k: v for k, v in deep.items() if "__" in k}
    if nested:  # e.g. train__lr: set_params reaches nested hyper-parameters
        copy.set_params(**nested)
        assert copy.get_params(deep=True).keys() == deep.keys()


# ----------------------------------------------------------------------------- fit -> align
@pytest.fixture(scope="module")
def fitted():
    cache: dict[str, tuple[Aligner, Contract]] = {}

    def get(name: str) -> tuple[Aligner, Contract]:
        if name not in cache:
            cache[name] = _fitted(name)
        return cache[name]
    return get


@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_align_returns_one_alignment_indexing_its_arguments(name, fitted):
    model, case = fitted(name)
    for pair in case.pairs:
        al = model.align(*pair, **case.options)
        assert isinstance(al, Alignment), f"{name}.align returned {type(al).__name__}"
        for got, want, side in zip(al.shape, case.shape(pair), "xy"):
            assert got >= 1 and (want is None or got == want), \
                f"{name}: side {side} has {got} elements, the pair gives {want}"
        if al.distribution_over is not None:
            axis = 0 if al.distribution_over == "x" else 1
            np.testing.assert_allclose(al.matrix().sum(axis), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_align_batch_equals_align_pair_by_pair(name, fitted):
    model, case = fitted(name)
    batch = model.align_batch(*case.batch, **case.options)
    assert isinstance(batch, list) and len(batch) == len(case.pairs)
    for i, pair in enumerate(case.pairs):
        _assert_same(batch[i], model.align(*pair, **case.options), f"{name} pair {i}",
                     rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_one_argument_aligners_refuse_a_second(name, fitted):
    """Side y internal (an output frame, glimpses), or both sides in one multimodal sample."""
    model, case = fitted(name)
    if case.second_refused is None:
        pytest.skip("both sides are arguments")
    first = case.pairs[0][0]
    second = next(iter(first.values())) if isinstance(first, dict) else first
    with pytest.raises((TypeError, ValueError), match=case.second_refused):
        model.align(first, second, **case.options)


# ----------------------------------------------------------------------------- devices
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("name", ALIGNER_NAMES)
def test_missing_cuda_is_a_clear_error(name, fitted):
    model, case = fitted(name)
    with pytest.raises(ValueError, match="CUDA"):
        clone(model).to("cuda")
    if "train" in model.get_params(deep=False):
        with pytest.raises(ValueError, match="CUDA"):
            clone(model).set_params(train__device="cuda").fit(*case.fit)
