import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmalign.aligner import Aligner, Estimator
from mmalign.nn.estimator import TorchAligner
from mmalign.alignment import Alignment


class ToyAligner(Aligner):
    """Aligns along the diagonal; 'learns' the feature mean and a few odds and ends."""

    def __init__(self, radius=3, scale=1.0, name="toy", window=(1, 2), offsets=None, metric=None):
        self.radius = radius
        self.scale = scale
        self.name = name
        self.window = window
        self.offsets = offsets
        self.metric = metric

    def fit(self, X, Y=None):
        X = np.asarray(X, dtype=float)
        self.mean_ = X.mean(axis=0)
        self.n_features_in_ = X.shape[1]
        self.history_ = [1.0, 0.5, 0.25]
        self.centre_ = torch.arange(3, dtype=torch.float32)
        self.converged_ = True
        self.info_ = {"solver": "toy", "bounds": (0, 1)}
        self._private_ = "not saved"
        return self

    def align(self, x, y):
        n = min(len(x), len(y))
        return Alignment(np.stack([np.arange(n)] * 2, axis=1), shape=(len(x), len(y)))


class SubToy(ToyAligner):
    pass


class OtherAligner(Aligner):
    def __init__(self, inner=None):
        self.inner = inner

    def align(self, x, y):
        return Alignment([[0, 0]])


class LinearAligner(TorchAligner):
    """A neural aligner: owns its network (``module_``, with a float64 buffer)."""

    def __init__(self, n_in=4, n_out=2, dropout=0.1, train=None):
        self.n_in = n_in
        self.n_out = n_out
        self.dropout = dropout
        self.train = train

    def _make_module(self):
        net = torch.nn.Linear(self.n_in, self.n_out)
        net.register_buffer("running", torch.zeros(self.n_out, dtype=torch.float64))
        return net

    def fit(self, X, Y=None):
        self._ensure_module()
        self.n_iter_ = 7
        return self

    def align(self, x, y):
        w = torch.softmax(self.module_(x) @ self.module_(y).T, dim=1)
        return Alignment(weights=w.detach(), monotonic=False)


class ModuleAligner(Aligner, torch.nn.Module):
    """The older form (an aligner that is itself a network): save refuses it."""

    def __init__(self, n_in=2):
        super().__init__()
        self.n_in = n_in
        self.proj = torch.nn.Linear(n_in, 1)

    def align(self, x, y): ...


# ----------------------------------------------------------------- params
def test_abstract_base_cannot_be_instantiated():
    with pytest.raises(TypeError):
        Aligner()


def test_get_set_params_round_trip():
    a = ToyAligner(radius=5, window=(3, 4))
    params = a.get_params()
    assert params == {
        "radius": 5, "scale": 1.0, "name": "toy", "window": (3, 4), "offsets": None, "metric": None
    }
    b = ToyAligner().set_params(**params)
    assert b.get_params() == params
    assert b.set_params(radius=1) is b and b.radius == 1


def test_set_params_unknown_name():
    with pytest.raises(ValueError, match="'radiuss'"):
        ToyAligner().set_params(radiuss=2)


def test_nested_params():
    outer = OtherAligner(inner=ToyAligner(radius=2))
    assert outer.get_params()["inner__radius"] == 2
    assert "inner__radius" not in outer.get_params(deep=False)
    outer.set_params(inner__radius=9)
    assert outer.inner.radius == 9


def test_repr_shows_non_default_params_only():
    assert repr(ToyAligner()) == "ToyAligner()"
    assert repr(ToyAligner(radius=4, name="x")) == "ToyAligner(name='x', radius=4)"
    assert repr(ToyAligner(offsets=np.arange(2))).startswith("ToyAligner(offsets=array")
    assert repr(LinearAligner(n_out=3)) == "LinearAligner(n_out=3)"


def test_fit_returns_self_and_default_fit_is_noop():
    a = ToyAligner()
    assert a.fit(np.ones((3, 2))) is a
    o = OtherAligner()
    assert o.fit(np.ones((3, 2))) is o
    assert isinstance(o.align(None, None), Alignment)


# ------------------------------------------------------------------ device
def test_to_cpu():
    a = ToyAligner().fit(np.ones((3, 2)))
    assert a.to("cpu") is a
    assert a.device_ == torch.device("cpu")
    m = LinearAligner().fit(None).to(torch.device("cpu"))
    assert m.device_.type == "cpu" and m.module_.weight.device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_to_cuda_without_cuda(device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        ToyAligner().to(device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_cuda_moves_module_and_fitted_tensors():
    m = LinearAligner().fit(None).to("cuda")
    assert m.module_.weight.is_cuda and m.device_.type == "cuda"
    a = ToyAligner().fit(np.ones((3, 2))).to("cuda")
    assert a.centre_.is_cuda


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "", 3, None])
def test_to_unknown_device(device):
    with pytest.raises(ValueError, match="device"):
        ToyAligner().to(device)


# --------------------------------------------------------------- save/load
def test_save_load_round_trips_params_and_fitted_state(tmp_path):
    a = ToyAligner(radius=7, scale=0.5, name="saved", window=(5, 6), offsets=np.array([1.5, -2.0]))
    a.fit(np.arange(12.0).reshape(4, 3))
    a.to("cpu")
    path = tmp_path / "toy.model"
    a.save(path)
    assert path.exists()  # written exactly where asked, no suffix added

    b = Aligner.load(path)
    assert type(b) is ToyAligner
    assert (b.radius, b.scale, b.name) == (7, 0.5, "saved")
    assert b.window == (5, 6) and isinstance(b.window, tuple)
    np.testing.assert_array_equal(b.offsets, [1.5, -2.0])
    np.testing.assert_array_equal(b.mean_, a.mean_)
    assert b.n_features_in_ == 3 and isinstance(b.n_features_in_, int)
    assert b.history_ == [1.0, 0.5, 0.25]
    assert isinstance(b.centre_, torch.Tensor) and torch.equal(b.centre_, a.centre_)
    assert b.converged_ is True
    assert b.info_ == {"solver": "toy", "bounds": (0, 1)}
    assert not hasattr(b, "_private_") and not hasattr(b, "device_")


def test_saved_file_is_plain_npz_with_json_metadata(tmp_path):
    path = tmp_path / "toy.npz"
    ToyAligner(radius=2).fit(np.ones((2, 2))).save(path)
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"][()]))
        assert meta["class"]["qualname"] == "ToyAligner"
        assert meta["params"]["radius"] == 2
        assert "mmalign_version" in meta
        assert any(k.startswith("fitted/mean_") for k in npz.files)


def test_unfitted_round_trip_and_buffer():
    buf = io.BytesIO()
    ToyAligner(radius=1).save(buf)
    buf.seek(0)
    b = ToyAligner.load(buf)
    assert b.radius == 1 and not hasattr(b, "mean_")


def test_torch_module_round_trips_weights_exactly(tmp_path):
    torch.manual_seed(0)
    a = LinearAligner(n_in=5, n_out=3, dropout=0.25).fit(None)
    with torch.no_grad():
        a.module_.running += torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    path = tmp_path / "lin.npz"
    a.save(path)
    b = LinearAligner.load(path)
    assert isinstance(b, LinearAligner) and not isinstance(b, torch.nn.Module)
    assert (b.n_in, b.n_out, b.dropout, b.n_iter_) == (5, 3, 0.25, 7)
    for key, value in a.module_.state_dict().items():
        assert torch.equal(b.module_.state_dict()[key], value), key
        assert b.module_.state_dict()[key].dtype == value.dtype
    x, y = torch.randn(4, 5), torch.randn(6, 5)
    np.testing.assert_array_equal(a.align(x, y).matrix(), b.align(x, y).matrix())


def test_load_checks_requested_class(tmp_path):
    path = tmp_path / "toy.npz"
    ToyAligner().save(path)
    assert type(ToyAligner.load(path)) is ToyAligner
    with pytest.raises(ValueError, match="SubToy"):
        SubToy.load(path)
    with pytest.raises(ValueError, match="OtherAligner"):
        OtherAligner.load(path)
    sub = tmp_path / "sub.npz"
    SubToy().save(sub)
    assert type(ToyAligner.load(sub)) is SubToy


def test_nested_aligner_param_round_trips(tmp_path):
    path = tmp_path / "outer.npz"
    OtherAligner(inner=ToyAligner(radius=4, window=(0, 9))).save(path)
    b = Aligner.load(path)
    assert isinstance(b.inner, ToyAligner) and b.inner.radius == 4 and b.inner.window == (0, 9)


def test_unsaveable_param_warns_and_falls_back_to_default(tmp_path):
    path = tmp_path / "toy.npz"
    with pytest.warns(UserWarning, match="metric"):
        ToyAligner(metric=np.linalg.norm, radius=2).save(path)
    b = ToyAligner.load(path)
    assert b.metric is None and b.radius == 2


def test_load_rejects_foreign_files(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.ones(3))
    with pytest.raises(ValueError, match=f"^{plain}: not an mmalign aligner file"):
        Aligner.load(plain)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match=f"^{text}: not an mmalign aligner file"):
        Aligner.load(text)


def test_load_refuses_non_aligner_class(tmp_path):
    path = tmp_path / "toy.npz"
    ToyAligner().save(path)
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__meta__"][()]))
    meta["class"] = {"module": "collections", "qualname": "OrderedDict"}
    arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="not a subclass"):
        Aligner.load(path)


# ------------------------------------------------------- save/load: hostile and broken files
def _rewrite(path, edit=None, **extra):
    """Rewrite an aligner file with its metadata passed through ``edit`` and ``extra`` members."""
    with np.load(path) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["__meta__"][()]))
    if edit is not None:
        edit(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    arrays.update(extra)
    np.savez(path, **arrays)


def _saved_toy(tmp_path, name="toy.npz"):
    path = tmp_path / name
    ToyAligner(radius=2, offsets=np.arange(3.0)).fit(np.ones((4, 3))).save(path)
    return path


def _load_error(path, cls=Aligner):
    with pytest.raises(ValueError) as info:
        cls.load(path)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
    return str(info.value)


def _set(key, value):
    def edit(meta):
        meta[key] = value
    return edit


def _drop(key):
    def edit(meta):
        del meta[key]
    return edit


@pytest.mark.parametrize("edit, match", [
    (_drop("class"), "class"),
    (_set("class", "ToyAligner"), "class"),
    (_set("class", {"module": "mmalign.aligner", "qualname": "Aligner"}), "Aligner"),
    (_set("class", {"module": "mmalign.attention.crossmodal", "qualname": "_FusionAligner"}),
     "abstract"),
    (_set("params", [1, 2]), "params"),
    (lambda m: m["params"].update(radiuss=1), "radiuss"),
    (_set("format_version", "x"), "format_version"),
    (_set("format_version", 99), "newer"),
    (_set("fitted", "mean_"), "fitted"),
    (lambda m: m["fitted"].update({"mean": 1}), "fitted attribute"),
    (lambda m: m["fitted"].update(mean_={"__ndarray__": "nowhere"}), "nowhere"),
    (lambda m: m["fitted"].update(mean_={"__weird__": 1}), "unrecognised"),
    (lambda m: m["fitted"].update(mean_={"__tensor__": "fitted/centre_", "dtype": "os"}), "dtype"),
    (lambda m: m["arrays"]["fitted/mean_"].update(shape=[4]), "fitted/mean_"),
    (lambda m: m["arrays"]["fitted/mean_"].update(dtype="<f4"), "fitted/mean_"),
    (lambda m: m["arrays"]["fitted/mean_"].update(dtype="O"), "fitted/mean_"),
    (lambda m: m["arrays"].pop("fitted/mean_"), "fitted/mean_"),
    (_set("arrays", []), "arrays"),
])
def test_load_tampered_metadata_raises_value_error_naming_the_file(tmp_path, edit, match):
    path = _saved_toy(tmp_path)
    _rewrite(path, edit)
    assert match in _load_error(path)


def test_load_unreadable_files_raise_value_error_naming_the_file(tmp_path):
    good = _saved_toy(tmp_path).read_bytes()
    cases = {"empty.npz": b"", "truncated.npz": good[: len(good) // 2],
             "tail.npz": good[len(good) // 2:], "text.npz": b"not a zip"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        _load_error(tmp_path / name)
    np.save(tmp_path / "array.npy", np.arange(3.0))
    _load_error(tmp_path / "array.npy")
    meta_only = tmp_path / "meta.npz"
    np.savez(meta_only, __meta__=np.array("{not json"))
    _load_error(meta_only)
    np.savez(meta_only, __meta__=np.array("[1, 2]"))
    _load_error(meta_only)
    np.savez(meta_only, __meta__=np.arange(3))
    _load_error(meta_only)


def test_load_bit_flipped_files_raise_value_error_or_load(tmp_path):
    path = _saved_toy(tmp_path)
    good = path.read_bytes()
    failures = 0
    for i in range(0, len(good), 3):
        flipped = bytearray(good)
        flipped[i] ^= 0x10
        path.write_bytes(bytes(flipped))
        try:
            Aligner.load(path)
        except ValueError as err:
            assert str(err).startswith(f"{path}: "), (i, str(err))
            failures += 1
    assert failures > len(good) // 6  # most flips are caught (CRC, headers, JSON)


def test_load_error_names_a_file_object(tmp_path):
    path = _saved_toy(tmp_path)
    _rewrite(path, _drop("class"))
    with open(path, "rb") as f, pytest.raises(ValueError, match=f"^{path}: "):
        Aligner.load(f)
    with pytest.raises(ValueError, match="class"):
        Aligner.load(io.BytesIO(path.read_bytes()))


def test_load_never_imports_a_module_named_by_the_file(tmp_path, monkeypatch):
    marker = tmp_path / "imported.txt"
    (tmp_path / "planted_mmalign_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from mmalign.aligner import Aligner\n"
        "class Evil(Aligner):\n    def align(self, x, y): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _saved_toy(tmp_path)
    for module in ("planted_mmalign_module", "mmalign.planted_mmalign_module", "this"):
        _rewrite(path, _set("class", {"module": module, "qualname": "Evil"}))
        assert "Evil" in _load_error(path)
    assert not marker.exists()
    assert "planted_mmalign_module" not in sys.modules


def test_load_finds_mmalign_aligners_not_imported_yet(tmp_path):
    # a fresh interpreter that imported only the base class (the package's __init__ stubbed out,
    # as a lazy __init__ would leave it)
    import mmalign
    from mmalign.attention.seq2seq import Seq2SeqAttention

    path = tmp_path / "s2s.npz"
    Seq2SeqAttention(5, 6, embed_dim=4, hidden_dim=4, attention_dim=4).save(path)
    code = ("import sys, types\n"
            "pkg = types.ModuleType('mmalign')\n"
            f"pkg.__path__ = [{mmalign.__path__[0]!r}]\n"
            "sys.modules['mmalign'] = pkg\n"
            "from mmalign.aligner import Aligner\n"
            "assert 'mmalign.attention.seq2seq' not in sys.modules\n"
            f"print(type(Aligner.load({str(path)!r})).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "Seq2SeqAttention", out.stderr


def test_load_user_defined_class_only_when_defined(tmp_path):
    def make():
        class Local(Aligner):
            def __init__(self, k=1):
                self.k = k

            def align(self, x, y): ...
        return Local

    path = tmp_path / "local.npz"
    make()(k=3).save(path)
    assert Aligner.load(path).k == 3
    _rewrite(path, lambda m: m["class"].update(qualname="NotDefinedAnywhere"))
    assert "NotDefinedAnywhere" in _load_error(path)


def test_load_reads_only_referenced_arrays_of_the_declared_size(tmp_path):
    import tracemalloc
    import zipfile

    path = _saved_toy(tmp_path)
    big = 64 << 20  # zeros: compress to well under 1 MB

    def plant(name):
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            with zf.open(name, "w", force_zip64=True) as f:
                np.lib.format.write_array_header_1_0(
                    f, {"descr": "<f8", "fortran_order": False, "shape": (big // 8,)})
                chunk = bytes(1 << 20)
                for _ in range(big >> 20):
                    f.write(chunk)

    plant("unreferenced.npy")  # never read
    tracemalloc.start()
    try:
        b = Aligner.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20 and b.mean_.shape == (3,)

    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files if k not in ("fitted/mean_", "unreferenced")}
    np.savez(path, **arrays)
    plant("fitted/mean_.npy")  # referenced, declared (3,) float64, holds 64 MB
    tracemalloc.start()
    try:
        assert "fitted/mean_" in _load_error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_saved_metadata_declares_every_array(tmp_path):
    path = _saved_toy(tmp_path)
    with np.load(path) as npz:
        meta = json.loads(str(npz["__meta__"][()]))
        assert meta["format_version"] == 2
        assert set(meta["arrays"]) == set(npz.files) - {"__meta__"}
        for key, spec in meta["arrays"].items():
            assert spec == {"shape": list(npz[key].shape), "dtype": npz[key].dtype.str}


def test_load_reads_format_version_1_files(tmp_path):
    path = _saved_toy(tmp_path)
    _rewrite(path, lambda m: (m.pop("arrays"), m.update(format_version=1)))
    b = Aligner.load(path)
    np.testing.assert_array_equal(b.mean_, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.offsets, [0.0, 1.0, 2.0])
    # version 1 held nested aligners as a class reference and hyper-parameters
    nested = tmp_path / "outer.npz"
    OtherAligner(inner=ToyAligner(radius=4)).save(nested)

    def to_version_1(meta):
        spec = meta["params"]["inner"]["__aligner__"]
        meta["params"]["inner"] = {"__aligner__": spec["class"], "params": spec["params"]}
        meta.update(format_version=1)
        del meta["arrays"]

    _rewrite(nested, to_version_1)
    assert Aligner.load(nested).inner.radius == 4
    # version 1 files were never compressed: a compressed array is refused unread
    with np.load(path) as npz:
        arrays = dict(npz)
    np.savez_compressed(path, **arrays)
    assert "compressed" in _load_error(path)


def test_load_validates_hyper_parameters_like_fit(tmp_path):
    import mmalign

    path = tmp_path / "dtw.npz"
    mmalign.DTW(radius=2).save(path)
    _rewrite(path, lambda m: m["params"].update(radius=-5))
    assert "radius" in _load_error(path)
    _rewrite(path, lambda m: m["params"].update(radius=2, step_pattern="nope"))
    assert "step_pattern" in _load_error(path)
    path = tmp_path / "dcca.npz"
    mmalign.DeepCCA(x_dim=2, y_dim=2).save(path)
    _rewrite(path, lambda m: m["params"].update(train={"__dict__": {"lr": -1.0}}))
    assert "train.lr" in _load_error(path, Estimator)
    _rewrite(path, lambda m: m["params"].update(train={"__dict__": {"lr": 0.1, "nope": 1}}))
    assert "nope" in _load_error(path, Estimator)
    _rewrite(path, lambda m: m["params"].update(train=None, lr=-1.0))  # an earlier file's flat lr
    assert "train.lr" in _load_error(path, Estimator)
    assert "not a subclass of Aligner" in _load_error(path)  # a transformer, not an aligner


# ------------------------------------------------------- save/load: nested aligners and modules
class Holder(Aligner):
    """Holds an aligner as a hyper-parameter and another one as fitted state."""

    def __init__(self, inner=None):
        self.inner = inner

    def fit(self, X, Y=None):
        torch.manual_seed(1)
        self.model_ = LinearAligner(n_in=2, n_out=2).fit(None)
        self.models_ = [ToyAligner(radius=9).fit(np.ones((2, 2)))]
        return self

    def align(self, x, y):
        return self.model_.align(x, y)


def test_nested_aligners_round_trip_with_fitted_state_and_weights(tmp_path):
    torch.manual_seed(0)
    inner = LinearAligner(n_in=3).fit(None)
    a = Holder(inner=inner).fit(None)
    path = tmp_path / "holder.npz"
    a.save(path)
    b = Holder.load(path)
    assert b.inner.n_iter_ == 7 and b.model_.n_iter_ == 7
    for mine, theirs in ((a.inner, b.inner), (a.model_, b.model_)):
        for key, value in mine.module_.state_dict().items():
            assert torch.equal(theirs.module_.state_dict()[key], value), key
    np.testing.assert_array_equal(b.models_[0].mean_, [1.0, 1.0])
    x = torch.randn(3, 2)
    np.testing.assert_array_equal(a.align(x, x).matrix(), b.align(x, x).matrix())


class ModuleHolder(Aligner):
    def __init__(self, net=None):
        self.net = net

    def fit(self, X, Y=None):
        self.net_ = torch.nn.Linear(2, 2)
        return self

    def align(self, x, y): ...


def test_save_refuses_modules_it_cannot_rebuild(tmp_path):
    path = tmp_path / "m.npz"
    with pytest.raises(ValueError, match="itself a torch.nn.Module.*TorchAligner"):
        ModuleAligner().save(path)
    with pytest.raises(ValueError, match="net_"):
        ModuleHolder().fit(None).save(path)
    with pytest.raises(ValueError, match="net"):
        ModuleHolder(net=torch.nn.Linear(2, 2)).save(path)
    assert not path.exists()


def test_save_refuses_fitted_state_it_cannot_store_and_warns_for_nested_params(tmp_path):
    path = tmp_path / "toy.npz"
    a = ToyAligner().fit(np.ones((2, 2)))
    a.scorer_ = np.linalg.norm
    with pytest.raises(ValueError, match="scorer_"):
        a.save(path)
    assert not path.exists()
    with pytest.warns(UserWarning, match="inner/metric"):
        OtherAligner(inner=ToyAligner(metric=np.linalg.norm, radius=5)).save(path)
    b = Aligner.load(path)
    assert b.inner.metric is None and b.inner.radius == 5


def test_load_refuses_weights_for_an_estimator_without_a_network(tmp_path):
    import mmalign

    path = tmp_path / "dtw.npz"
    mmalign.DTW(radius=2).save(path)
    _rewrite(path, _set("state_dict", ["weight"]), **{"state/weight": np.zeros(2, np.float32)})
    assert "a DTW has no state_dict" in _load_error(path)
    _rewrite(path, lambda m: m.update(state_dict=[], state_attribute="module_"))
    assert "keeps no network in 'module_'" in _load_error(path)
