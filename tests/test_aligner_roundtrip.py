"""Every mmalign Aligner, fitted on a tiny case, survives save -> load with identical output.

The classes are discovered (every concrete ``Aligner`` subclass defined in mmalign), so a new
aligner without a tiny case below fails ``test_every_aligner_has_a_tiny_case``.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import numpy as np
import pytest
import torch

import mmalign
from mmalign.aligner import Aligner
from mmalign.alignment import Alignment


def _discover() -> dict[str, type]:
    found, todo = {}, [Aligner]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.split(".")[0] == "mmalign" and not inspect.isabstract(sub):
                found[f"{sub.__module__}.{sub.__qualname__}"] = sub
    return found


# ----------------------------------------------------------------------------- tiny cases
# Each case returns (fitted aligner, output): output(aligner) is what must not change.
def _pair(n=12, m=10, dx=2, dy=3, seed=0):
    rng = np.random.default_rng(seed)
    t, u = np.linspace(0, 1, n), np.linspace(0, 1, m) ** 1.3
    x = np.c_[np.sin(6 * t), np.cos(4 * t)][:, :dx] + 0.01 * rng.standard_normal((n, dx))
    y = np.tanh(np.c_[np.sin(6 * u), np.cos(4 * u), np.sin(6 * u) * np.cos(4 * u)])[:, :dy]
    return x, y + 0.01 * rng.standard_normal((m, dy))


def _dtw():
    x, y = _pair(dx=2, dy=2)
    return mmalign.DTW(radius=3), lambda a: a.align(x, y)


def _soft_dtw():
    x, y = _pair(dx=2, dy=2)
    return mmalign.SoftDTW(gamma=0.1), lambda a: a.align(x, y)


def _cca():
    x, y = _pair(n=20, m=20)
    return mmalign.CCA(n_components=2).fit(x, y), lambda a: a.transform(x, y)


def _ctw():
    x, y = _pair()
    return mmalign.CTW(max_iter=3), lambda a: a.align(x, y)


def _gctw():
    x, y = _pair()
    return mmalign.GCTW(), lambda a: a.align(x, y)


def _dctw():
    x, y = _pair()
    model = mmalign.DCTW(hidden=(4,), n_outer=1, epochs_per_step=1, init="uniform").fit([(x, y)])
    model.align_all([x, y, y[::2]])  # multi-set encoders as well
    return model, lambda a: [a.align(x, y), a.align_all([x, y, y[::2]], fit=False)]


def _deep_cca():
    x, y = _pair(n=16, m=16)
    model = mmalign.DeepCCA(hidden=(4,), max_epochs=1).fit(x, y)
    return model, lambda a: a.transform(x, y)


def _deep_mcca():
    from mmalign.projection import DeepMCCA

    x, y = _pair(n=16, m=16)
    views = [x, y, x[:, :1] * y[:, :1]]
    model = DeepMCCA(n_components=1, hidden=(4,), max_epochs=1).fit(views)
    return model, lambda a: a.transform(views)


def _images(n=8, size=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g), np.arange(n) % 2


def _spatial_transformer():
    from mmalign.attention import SpatialTransformer

    images, labels = _images(size=16)
    model = SpatialTransformer(n_classes=2, max_epochs=1, batch_size=4).fit(images, labels)
    return model, lambda a: a.align(images[0])


def _glimpse():
    from mmalign.attention import GlimpseAttention

    images, labels = _images()
    model = GlimpseAttention(image_size=(8, 8), n_classes=2, n_glimpses=2, glimpse_size=4,
                             glimpse_hidden=8, location_hidden=8, core_hidden=8,
                             max_epochs=1, batch_size=4).fit(images, labels)
    return model, lambda a: a.align(images[0])


def _seq2seq():
    from mmalign.attention import Seq2SeqAttention

    rng = np.random.default_rng(0)
    src = [rng.integers(3, 9, size=rng.integers(2, 5)).tolist() for _ in range(8)]
    model = Seq2SeqAttention(9, 9, embed_dim=4, hidden_dim=8, attention_dim=4, max_epochs=1,
                             batch_size=4).fit(src, [s[::-1] for s in src])
    return model, lambda a: [a.align(src[0], src[0][::-1]), a.align(src[1])]


def _show_attend_tell():
    from mmalign.attention import ShowAttendTell

    images, _ = _images(size=32)
    captions = [[4 + (i % 5), 5 + (i % 3)][: 1 + i % 2] for i in range(len(images))]
    model = ShowAttendTell(10, attention="hard", embed_dim=4, hidden_dim=8, attention_dim=4,
                           max_epochs=1, batch_size=4).fit(images, captions)
    return model, lambda a: [a.align(images[:2], captions[:2]), a.align(images[2:3])]


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
                    max_epochs=1, batch_size=4, **extra).fit(X, y)
        return model, lambda a: a.align({k: v[0] for k, v in X.items()})
    return case


def _streams():
    from mmalign.attention import streams_inputs
    from mmalign.datasets import multimodal_streams

    ds = multimodal_streams(4, seed=0, audio_rate=10.0, video_rate=5.0)
    return ds, streams_inputs(ds)


_PRETRAINER = dict(d_model=4, num_heads=2, num_layers=1, max_epochs=1, batch_size=4)


def _pretrainer():
    from mmalign.attention import MultimodalPretrainer

    ds, X = _streams()
    model = MultimodalPretrainer(len(ds.vocab), {"audio": 16, "video": 8}, **_PRETRAINER).fit(X)
    return model, lambda a: a.align({k: v[0] for k, v in X.items()}, target="text")


def _fine_tuner():
    from mmalign.attention import MultimodalFineTuner, MultimodalPretrainer

    ds, X = _streams()
    backbone = MultimodalPretrainer(len(ds.vocab), {"audio": 16, "video": 8}, **_PRETRAINER).fit(X)
    model = MultimodalFineTuner(backbone, task="regression", num_labels=1, max_epochs=1,
                                batch_size=4).fit(X, ds.labels)
    return model, lambda a: [a.align({k: v[0] for k, v in X.items()}, target="text"),
                             a.predict(X)]


CASES: dict[str, Callable[[], tuple[Aligner, Callable[[Aligner], Any]]]] = {
    "mmalign.warping.aligner.DTW": _dtw,
    "mmalign.warping.aligner.SoftDTW": _soft_dtw,
    "mmalign.projection.cca.CCA": _cca,
    "mmalign.projection.ctw.CTW": _ctw,
    "mmalign.projection.gctw.GCTW": _gctw,
    "mmalign.projection.dctw.DCTW": _dctw,
    "mmalign.projection.deep_cca.DeepCCA": _deep_cca,
    "mmalign.projection.deep_cca.DeepMCCA": _deep_mcca,
    "mmalign.attention.spatial_transformer.SpatialTransformer": _spatial_transformer,
    "mmalign.attention.glimpse.GlimpseAttention": _glimpse,
    "mmalign.attention.seq2seq.Seq2SeqAttention": _seq2seq,
    "mmalign.attention.show_attend_tell.ShowAttendTell": _show_attend_tell,
    "mmalign.attention.crossmodal.CrossmodalTransformer": _fusion("CrossmodalTransformer"),
    "mmalign.attention.crossmodal.JointSelfAttentionFusion": _fusion("JointSelfAttentionFusion"),
    "mmalign.attention.crossmodal.BimodalTransformer": _fusion("BimodalTransformer"),
    "mmalign.attention.pretraining.MultimodalPretrainer": _pretrainer,
    "mmalign.attention.finetuning.MultimodalFineTuner": _fine_tuner,
}


# ----------------------------------------------------------------------------- comparison
def _assert_same(a: Any, b: Any, where: str = "output") -> None:
    """Exact equality of alignments, arrays, tensors and containers of them."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Alignment):
        assert a.shape == b.shape, f"{where}.shape"
        for name in ("weights", "cost", "extras"):
            _assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
        _assert_same(a.path(), b.path(), f"{where}.path()")
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            _assert_same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_same(u, v, f"{where}[{i}]")
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# ----------------------------------------------------------------------------- tests
ALIGNERS = _discover()


def test_every_aligner_has_a_tiny_case():
    missing = sorted(set(ALIGNERS) - set(CASES))
    assert not missing, f"add a tiny save/load case to tests/test_aligner_roundtrip.py for {missing}"
    assert not set(CASES) - set(ALIGNERS), "a case names an aligner that no longer exists"


@pytest.mark.parametrize("name", sorted(ALIGNERS))
def test_fitted_aligner_round_trips(name, tmp_path):
    if name not in CASES:
        pytest.fail(f"no tiny save/load case for {name}")
    torch.manual_seed(0)
    model, output = CASES[name]()
    assert type(model) is ALIGNERS[name]
    expected = output(model)
    path = tmp_path / "model.npz"
    model.save(path)
    for loader in (Aligner.load, type(model).load):
        loaded = loader(path)
        assert type(loaded) is type(model)
        assert repr(loaded) == repr(model)
        _assert_same(output(loaded), expected)
    _assert_same(output(model), expected)  # saving changed nothing


def test_load_can_find_every_mmalign_aligner_module():
    from mmalign.aligner import _MMALIGN_ALIGNER_MODULES

    missing = {cls.__module__ for cls in ALIGNERS.values()} - set(_MMALIGN_ALIGNER_MODULES)
    assert not missing, f"add {sorted(missing)} to mmalign.aligner._MMALIGN_ALIGNER_MODULES"
