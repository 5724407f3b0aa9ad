import io
import json

import numpy as np
import pytest
import torch

from mmalign.aligner import Aligner
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


class LinearAligner(Aligner, torch.nn.Module):
    def __init__(self, n_in=4, n_out=2, dropout=0.1):
        super().__init__()
        self.n_in = n_in
        self.n_out = n_out
        self.dropout = dropout
        self.proj = torch.nn.Linear(n_in, n_out)
        self.register_buffer("running", torch.zeros(n_out, dtype=torch.float64))

    def fit(self, X, Y=None):
        self.n_iter_ = 7
        return self

    def align(self, x, y):
        w = torch.softmax(self.proj(x) @ self.proj(y).T, dim=1)
        return Alignment(weights=w.detach(), monotonic=False)


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
    m = LinearAligner().to(torch.device("cpu"))
    assert m.device_.type == "cpu" and m.proj.weight.device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", torch.device("cuda")])
def test_to_cuda_without_cuda(device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        ToyAligner().to(device)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_cuda_moves_module_and_fitted_tensors():
    m = LinearAligner().to("cuda")
    assert m.proj.weight.is_cuda and m.device_.type == "cuda"
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
        a.running += torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    path = tmp_path / "lin.npz"
    a.save(path)
    b = LinearAligner.load(path)
    assert isinstance(b, LinearAligner) and isinstance(b, torch.nn.Module)
    assert (b.n_in, b.n_out, b.dropout, b.n_iter_) == (5, 3, 0.25, 7)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key
        assert b.state_dict()[key].dtype == value.dtype
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
    with pytest.raises(ValueError, match="path"):
        Aligner.load(plain)
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    with pytest.raises(ValueError, match="path"):
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
