"""Every mmalign estimator (aligners, transformers such as CCA and deep CCA, the DTW
classifier), fitted on a tiny case, survives save -> load with identical output.

The classes are discovered (every concrete ``Estimator`` subclass defined in mmalign), so a new
estimator without a tiny case below fails ``test_every_aligner_has_a_tiny_case``. Each case
(:class:`TinyCase`: the fitted aligner and its calls, arguments by name) is fitted once per
test session and shared with tests/test_aligner_sweep.py. Files with tampered
hyper-parameters are refused on load, naming the file and the parameter.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import pkgutil
import re
from typing import Any, Callable

import numpy as np
import pytest
import torch

import mmalign
from mmalign.aligner import Aligner, Estimator, TransformerMixin
from mmalign.alignment import Alignment


def _discover() -> dict[str, type]:
    # `import mmalign` is lazy: define every class first by importing every module
    for info in pkgutil.walk_packages(mmalign.__path__, "mmalign."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, todo = {}, [Estimator]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] == "mmalign" and not inspect.isabstract(sub):
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return found


# ----------------------------------------------------------------------------- tiny cases
@dataclasses.dataclass(frozen=True)
class Call:
    """``getattr(aligner, method)(**args)``: one output the round trip must keep."""

    method: str
    args: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TinyCase:
    """A fitted aligner and the calls whose outputs must survive save -> load.

    ``ids`` names the arguments that hold integer token ids (``"src"``, or ``"x['text']"``
    for an entry of a dict of modalities): for them ``int`` is the natural dtype.
    tests/test_aligner_sweep.py substitutes bad and unusual arrays into ``calls``.
    """

    aligner: Aligner
    calls: tuple[Call, ...]
    ids: frozenset[str] = frozenset()

    def output(self, aligner: Aligner | None = None) -> list:
        """The outputs of ``calls`` on ``aligner`` (default: the fitted one)."""
        aligner = self.aligner if aligner is None else aligner
        return [getattr(aligner, call.method)(**call.args) for call in self.calls]


def _pair(n=12, m=10, dx=2, dy=3, seed=0):
    rng = np.random.default_rng(seed)
    t, u = np.linspace(0, 1, n), np.linspace(0, 1, m) ** 1.3
    x = np.c_[np.sin(6 * t), np.cos(4 * t)][:, :dx] + 0.01 * rng.standard_normal((n, dx))
    y = np.tanh(np.c_[np.sin(6 * u), np.cos(4 * u), np.sin(6 * u) * np.cos(4 * u)])[:, :dy]
    return x, y + 0.01 * rng.standard_normal((m, dy))


def _dtw():
    x, y = _pair(dx=2, dy=2)
    return TinyCase(mmalign.DTW(radius=3), (Call("align", {"x": x, "y": y}),))


def _soft_dtw():
    x, y = _pair(dx=2, dy=2)
    return TinyCase(mmalign.SoftDTW(gamma=0.1), (Call("align", {"x": x, "y": y}),))


def _cca():
    x, y = _pair(n=20, m=20)
    return TinyCase(mmalign.CCA(n_components=2).fit(x, y), (Call("transform", {"X": x, "Y": y}),))


def _ctw():
    x, y = _pair()
    return TinyCase(mmalign.CTW(max_iter=3), (Call("align", {"x": x, "y": y}),))


def _gctw():
    x, y = _pair()
    return TinyCase(mmalign.GCTW(), (Call("align", {"x": x, "y": y}),))


def _gtw():
    x, y = _pair()
    return TinyCase(mmalign.GTW(max_iter=3), (Call("align", {"x": x, "y": y}),))


def _dctw():
    x, y = _pair()
    model = mmalign.DCTW(hidden=(4,), n_outer=1, epochs_per_step=1, init="uniform").fit([(x, y)])
    model.align_all([x, y, y[::2]])  # multi-set encoders as well
    return TinyCase(model, (Call("align", {"x": x, "y": y}),
                            Call("align_all", {"sequences": [x, y, y[::2]], "fit": False})))


def _deep_cca():
    x, y = _pair(n=16, m=16)
    model = mmalign.DeepCCA(hidden=(4,), train={"max_epochs": 1}).fit(x, y)
    return TinyCase(model, (Call("transform", {"X": x, "Y": y}),))


def _deep_mcca():
    from mmalign.projection import DeepMCCA

    x, y = _pair(n=16, m=16)
    views = [x, y, x[:, :1] * y[:, :1]]
    model = DeepMCCA(n_components=1, hidden=(4,), train={"max_epochs": 1}).fit(views)
    return TinyCase(model, (Call("transform", {"views": views}),))


def _kneighbors_dtw():
    x, y = _pair(dx=2, dy=2)
    X = [x, x[::-1], y, y[::2]]
    model = mmalign.KNeighborsDTW(radius=3).fit(X, ["a", "a", "b", "b"])
    return TinyCase(model, (Call("predict", {"X": X}), Call("kneighbors", {"X": X})))


def _kneighbors_ts():
    x, y = _pair(dx=2, dy=2)
    X = [x, x[::-1], y, y[::2]]
    model = mmalign.KNeighborsTimeSeries(metric="msm", metric_params={"c": 0.5}).fit(
        X, ["a", "a", "b", "b"])
    return TinyCase(model, (Call("predict", {"X": X}), Call("kneighbors", {"X": X})))


def _clusterer(name, ragged=True):
    def case():
        x, y = _pair(dx=2, dy=2, m=12)
        X = [x, x[::-1], y, y[1:], x[1:]] if ragged else [x, x[::-1], y, y[::-1], x + 0.1]
        model = getattr(mmalign, name)(2, random_state=0).fit(X)
        return TinyCase(model, (Call("predict", {"X": X}),))
    return case


def _images(n=8, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), np.arange(n) % 2


def _spatial_transformer():
    from mmalign.attention import SpatialTransformer

    images, labels = _images(size=16)
    model = SpatialTransformer(n_classes=2, train={"max_epochs": 1, "batch_size": 4}).fit(images,
                                                                                       labels)
    return TinyCase(model, (Call("align", {"image": images[0]}),
                            Call("align_batch", {"images": images[:3]}),
                            Call("predict", {"images": images[:3]})))


def _glimpse():
    from mmalign.attention import GlimpseAttention

    images, labels = _images()
    model = GlimpseAttention(image_size=(8, 8), n_classes=2, n_glimpses=2, glimpse_size=4,
                             glimpse_hidden=8, location_hidden=8, core_hidden=8,
                             train={"max_epochs": 1, "batch_size": 4}).fit(images, labels)
    return TinyCase(model, (Call("align", {"image": images[0]}),
                            Call("align_batch", {"images": images[:3]}),
                            Call("predict_proba", {"images": images[:3]})))


def _seq2seq():
    from mmalign.attention import Seq2SeqAttention

    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 5)).tolist() for _ in range(8)]
    model = Seq2SeqAttention(9, 9, embed_dim=4, hidden_dim=8, attention_dim=4,
                             train={"max_epochs": 1, "batch_size": 4}).fit(src, [s[::-1] for s in src])
    return TinyCase(model, (Call("align", {"src": src[0], "tgt": src[0][::-1]}),
                            Call("align_batch", {"src": src[:3], "tgt": [s[::-1] for s in src[:3]]}),
                            Call("translate", {"src": src[:3], "beam_size": 2}),
                            Call("align", {"src": src[1]})), ids=frozenset({"src", "tgt"}))


def _transformer_seq2seq():
    from mmalign.attention import TransformerSeq2Seq

    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 5)).tolist() for _ in range(8)]
    model = TransformerSeq2Seq(9, 9, d_model=8, nhead=2, dim_feedforward=8,
                               train={"max_epochs": 1, "batch_size": 4}).fit(src, [s[::-1] for s in src])
    return TinyCase(model, (Call("align", {"src": src[0], "tgt": src[0][::-1]}),
                            Call("align_batch", {"src": src[:3], "tgt": [s[::-1] for s in src[:3]]}),
                            Call("translate", {"src": src[:3], "beam_size": 2}),
                            Call("align", {"src": src[1]})), ids=frozenset({"src", "tgt"}))


def _show_attend_tell():
    from mmalign.attention import ShowAttendTell

    images, _ = _images(size=32)
    captions = [[4 + (i % 5), 5 + (i % 3)][: 1 + i % 2] for i in range(len(images))]
    model = ShowAttendTell(10, attention="hard", embed_dim=4, hidden_dim=8, attention_dim=4,
                           train={"max_epochs": 1, "batch_size": 4}).fit(images, captions)
    return TinyCase(model, (Call("align", {"image": images[0], "caption": captions[0]}),
                            Call("align_batch", {"images": images[:2], "captions": captions[:2]}),
                            Call("caption", {"images": images[:2], "beam_size": 2, "max_len": 3}),
                            Call("align", {"image": images[2]})), ids=frozenset({"caption", "captions"}))


def _fusion_inputs(n=6):
    g = torch.Generator().manual_seed(0)
    X = {"text": torch.randn(n, 5, 4, generator=g), "audio": torch.randn(n, 7, 3, generator=g),
         "video": torch.randn(n, 4, 2, generator=g)}
    return X, X["audio"][:, :, 0].mean(1) + X["text"][:, :, 1].mean(1)


def _fusion(name):
    def case():
        cls = getattr(mmalign.attention, name)
        X, y = _fusion_inputs()
        extra = {"self_layers": 1} if name == "CrossmodalTransformer" else {}
        model = cls({"text": 4, "audio": 3, "video": 2}, d_model=4, num_heads=2, num_layers=1,
                    train={"max_epochs": 1, "batch_size": 4}, **extra).fit(X, y)
        calls = [Call("align", {"x": {k: v[0] for k, v in X.items()}}),
                 Call("align_batch", {"X": X, "target": "text", "source": "audio"})]
        if name != "JointSelfAttentionFusion":  # the pair form: x the source, y the target
            calls.append(Call("align", {"x": X["audio"][1], "y": X["text"][1], "target": "text",
                                        "source": "audio"}))
        return TinyCase(model, tuple(calls))
    return case


def _streams():
    from mmalign.nn import streams_inputs
    from mmalign.datasets import multimodal_streams

    ds = multimodal_streams(4, seed=0, audio_rate=10.0, video_rate=5.0)
    return ds, streams_inputs(ds)


_PRETRAINER = dict(d_model=4, num_heads=2, num_layers=1, train={"max_epochs": 1, "batch_size": 4})


def _pretrainer():
    from mmalign.attention import MultimodalPretrainer

    ds, X = _streams()
    model = MultimodalPretrainer(len(ds.vocab), {"audio": 16, "video": 8}, **_PRETRAINER).fit(X)
    return TinyCase(model, (Call("align", {"x": {k: v[0] for k, v in X.items()},
                                           "target": "text"}),
                            Call("align_batch", {"X": X, "target": "text", "source": "video"})),
                    ids=frozenset({"x['text']", "X['text']"}))


def _fine_tuner():
    from mmalign.attention import MultimodalFineTuner, MultimodalPretrainer

    ds, X = _streams()
    backbone = MultimodalPretrainer(len(ds.vocab), {"audio": 16, "video": 8}, **_PRETRAINER).fit(X)
    model = MultimodalFineTuner(backbone, task="regression", num_labels=1,
                                train={"max_epochs": 1, "batch_size": 4}).fit(X, ds.labels)
    return TinyCase(model, (Call("align", {"x": {k: v[0] for k, v in X.items()},
                                           "target": "text"}),
                            Call("align_batch", {"X": X, "target": "text"}),
                            Call("predict", {"X": X})), ids=frozenset({"x['text']", "X['text']"}))


CASES: dict[str, Callable[[], TinyCase]] = {
    "mmalign.warping.aligner.DTW": _dtw,
    "mmalign.warping.aligner.SoftDTW": _soft_dtw,
    "mmalign.warping.neighbors.KNeighborsDTW": _kneighbors_dtw,
    "mmalign.warping.ts_neighbors.KNeighborsTimeSeries": _kneighbors_ts,
    "mmalign.clustering.kmeans.TimeSeriesKMeans": _clusterer("TimeSeriesKMeans"),
    "mmalign.clustering.kmedoids.TimeSeriesKMedoids": _clusterer("TimeSeriesKMedoids"),
    "mmalign.clustering.kshape.TimeSeriesKShape": _clusterer("TimeSeriesKShape", ragged=False),
    "mmalign.projection.cca.CCA": _cca,
    "mmalign.projection.ctw.CTW": _ctw,
    "mmalign.projection.gctw.GCTW": _gctw,
    "mmalign.projection.gtw.GTW": _gtw,
    "mmalign.projection.dctw.DCTW": _dctw,
    "mmalign.projection.deep_cca.DeepCCA": _deep_cca,
    "mmalign.projection.deep_cca.DeepMCCA": _deep_mcca,
    "mmalign.attention.spatial_transformer.SpatialTransformer": _spatial_transformer,
    "mmalign.attention.glimpse.GlimpseAttention": _glimpse,
    "mmalign.attention.seq2seq.Seq2SeqAttention": _seq2seq,
    "mmalign.attention.transformer_seq2seq.TransformerSeq2Seq": _transformer_seq2seq,
    "mmalign.attention.show_attend_tell.ShowAttendTell": _show_attend_tell,
    "mmalign.attention.crossmodal.CrossmodalTransformer": _fusion("CrossmodalTransformer"),
    "mmalign.attention.crossmodal.JointSelfAttentionFusion": _fusion("JointSelfAttentionFusion"),
    "mmalign.attention.crossmodal.BimodalTransformer": _fusion("BimodalTransformer"),
    "mmalign.attention.pretraining.MultimodalPretrainer": _pretrainer,
    "mmalign.attention.finetuning.MultimodalFineTuner": _fine_tuner,
}


@functools.lru_cache(maxsize=None)
def tiny_case(name: str) -> TinyCase:
    """The tiny case of aligner ``name``, fitted once per test session (seeded)."""
    if name not in CASES:
        pytest.fail(f"no tiny save/load case for {name}")
    torch.manual_seed(0)
    return CASES[name]()


# ----------------------------------------------------------------------------- comparison
def _assert_same(a: Any, b: Any, where: str = "output", *, rtol: float = 0.0,
                 atol: float = 0.0) -> None:
    """Equality of alignments, arrays, tensors and containers of them: same types, dtypes and
    shapes; values exactly equal, or within ``rtol`` / ``atol`` when given."""
    tol = dict(rtol=rtol, atol=atol)
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Alignment):
        assert a.shape == b.shape, f"{where}.shape"
        for name in ("weights", "cost", "extras"):
            _assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}", **tol)
        _assert_same(a.path(), b.path(), f"{where}.path()", **tol)
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _assert_same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}",
                         **tol)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype} {tuple(a.shape)} " \
                                                          f"!= {b.dtype} {tuple(b.shape)}"
        if rtol or atol:
            torch.testing.assert_close(a.cpu(), b.cpu(), msg=where, equal_nan=True, **tol)
        else:
            assert torch.equal(a.cpu(), b.cpu()), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        if rtol or atol:
            np.testing.assert_allclose(a, b, err_msg=where, **tol)
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]", **tol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]", **tol)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    elif isinstance(a, float) and (rtol or atol):
        assert abs(a - b) <= atol + rtol * abs(b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ----------------------------------------------------------------------------- tests
ESTIMATORS = _discover()
# aligners and transformers: what tests/test_aligner_sweep.py sweeps
ALIGNERS = {name: cls for name, cls in ESTIMATORS.items()
            if issubclass(cls, (Aligner, TransformerMixin))}


def test_every_aligner_has_a_tiny_case():
    missing = sorted(set(ESTIMATORS) - set(CASES))
    assert not missing, f"add a tiny save/load case to tests/test_aligner_roundtrip.py for {missing}"
    assert not set(CASES) - set(ESTIMATORS), "a case names an estimator that no longer exists"


def test_transformers_are_not_aligners():
    for name in ("mmalign.projection.cca.CCA", "mmalign.projection.deep_cca.DeepCCA",
                 "mmalign.projection.deep_cca.DeepMCCA"):
        cls = ESTIMATORS[name]
        assert issubclass(cls, TransformerMixin) and not issubclass(cls, Aligner), name
        assert not hasattr(cls, "align") and hasattr(cls, "fit_transform"), name


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fitted_aligner_round_trips(name, tmp_path):
    case = tiny_case(name)
    model = case.aligner
    assert type(model) is ESTIMATORS[name]
    expected = case.output()
    path = tmp_path / "model.npz"
    model.save(path)
    base = Aligner if isinstance(model, Aligner) else Estimator
    for loader in (base.load, Estimator.load, type(model).load):
        loaded = loader(path)
        assert type(loaded) is type(model)
        assert repr(loaded) == repr(model)
        _assert_same(case.output(loaded), expected)
    _assert_same(case.output(), expected)  # saving changed nothing


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_clone_gives_an_unfitted_copy_with_the_same_params(name):
    """sklearn.base.clone: same class and hyper-parameters, no fitted state (__init__ did no
    work), and the hyper-parameters stored as given (clone checks they are the same objects)."""
    from sklearn.base import clone

    model = tiny_case(name).aligner
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert repr(copy) == repr(model)
    assert copy.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    fitted = [k for k in vars(copy) if k.endswith("_") and not k.startswith("_")]
    assert not fitted, f"clone of {name} holds fitted state {fitted}"
    assert repr(type(model)(**copy.get_params(deep=False))) == repr(model)


def test_load_can_find_every_mmalign_aligner_module():
    from mmalign.aligner import _MMALIGN_ALIGNER_MODULES

    missing = {cls.__module__ for cls in ESTIMATORS.values()} - set(_MMALIGN_ALIGNER_MODULES)
    assert not missing, f"add {sorted(missing)} to mmalign.aligner._MMALIGN_ALIGNER_MODULES"


# ----------------------------------------------------------------------------- tampered files
# (aligner, hyper-parameter, invalid value): load refuses the file, as fit / align refuse it
TAMPERED = [
    ("mmalign.projection.ctw.CTW", "max_iter", -1),
    ("mmalign.projection.ctw.CTW", "tol", -0.5),
    ("mmalign.projection.ctw.CTW", "init", "nope"),
    ("mmalign.projection.ctw.CTW", "reg", -1.0),
    ("mmalign.projection.ctw.CTW", "n_components", 0),
    ("mmalign.projection.ctw.CTW", "radius", -1),
    ("mmalign.projection.gctw.GCTW", "max_iter", 0),
    ("mmalign.projection.gctw.GCTW", "tol", float("nan")),
    ("mmalign.projection.gctw.GCTW", "length", 1),
    ("mmalign.projection.gctw.GCTW", "init", "nope"),
    ("mmalign.projection.gctw.GCTW", "radius", -3),
    ("mmalign.projection.gtw.GTW", "max_iter", 0),
    ("mmalign.projection.gtw.GTW", "tol", float("nan")),
    ("mmalign.projection.gtw.GTW", "length", 1),
    ("mmalign.projection.gtw.GTW", "init", "nope"),
    ("mmalign.projection.gtw.GTW", "basis", "nope"),
    ("mmalign.projection.gtw.GTW", "n_splines", 1),
    ("mmalign.projection.gtw.GTW", "smoothness", -1.0),
    ("mmalign.projection.gtw.GTW", "inner_iter", 0),
    ("mmalign.projection.cca.CCA", "n_components", 0),
    ("mmalign.projection.cca.CCA", "reg", -1.0),
]


def write_as_earlier_file(path, out, flat: dict, *, drop: tuple = (),
                          rename: Callable[[str], str] = lambda key: key) -> None:
    """Rewrite the file ``path`` of a neural estimator to ``out`` as mmalign wrote it when the
    estimator was itself a torch module: the training settings as flat hyper-parameters
    (``flat`` instead of ``train``; ``drop`` names parameters it did not have yet), no
    ``state_attribute``, and the network's state_dict keys as the module had them
    (``rename(new key) -> old key``)."""
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays.pop("__meta__")[()]))
    for name in ("train", *drop):
        meta["params"].pop(name)
    meta["params"].update(flat)
    del meta["state_attribute"]

    def old(key: str) -> str:
        return "state/" + rename(key[len("state/"):]) if key.startswith("state/") else key

    meta["state_dict"] = [rename(k) for k in meta["state_dict"]]
    arrays = {old(k): v for k, v in arrays.items()}
    meta["arrays"] = {old(k): v for k, v in meta["arrays"].items()}
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(out, **arrays)


def _rewrite_params(path, **params: Any) -> None:
    """Rewrite an aligner file with ``params`` in its saved hyper-parameters."""
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__meta__"][()]))
    meta["params"].update(params)
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


@pytest.mark.parametrize("name,param,value", TAMPERED,
                         ids=[f"{n.rsplit('.', 1)[1]}-{p}" for n, p, _ in TAMPERED])
def test_load_refuses_a_tampered_hyper_parameter_naming_file_and_parameter(name, param, value,
                                                                          tmp_path):
    path = tmp_path / "model.npz"
    tiny_case(name).aligner.save(path)
    _rewrite_params(path, **{param: value})
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: .*\b{param}\b"):
        Estimator.load(path)


@pytest.mark.parametrize("name,param,value", TAMPERED,
                         ids=[f"{n.rsplit('.', 1)[1]}-{p}" for n, p, _ in TAMPERED])
def test_fit_and_align_refuse_the_same_hyper_parameter(name, param, value):
    case = tiny_case(name)
    aligner = type(case.aligner)(**{**case.aligner.get_params(deep=False), param: value})
    args = case.calls[0].args
    data = (args["X"], args["Y"]) if "X" in args else (args["x"], args["y"])
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        aligner.fit(*data)
    if hasattr(case.aligner, "x_weights_"):  # CCA: nothing to align
        return
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        aligner.align(*data)
