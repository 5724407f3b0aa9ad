"""Hard DTW through the torch wavefront: cdist_dtw(device=...), batch_dtw, CUDA tensors.

Everything is checked on device="cpu" (the same torch code as on a GPU); the CUDA
tests run only where CUDA is available.
"""

import importlib

import numpy as np
import pytest
import torch

import mmalign
from mmalign.warping import batch as TB
from mmalign.warping.batch import batch_dtw

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
dtw_module = importlib.import_module("mmalign.warping.dtw")  # the package exports dtw()
DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
RTOL = 1e-10


def ragged(rng, lengths, d=2):
    return [rng.standard_normal((n, d)) for n in lengths]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kw", [{}, {"radius": 2}, {"window": 0.2}, {"metric": "euclidean"},
                                {"metric": "cityblock", "radius": 0}, {"metric": "cosine"}])
def test_cdist_device_equals_numba_ragged(device, kw):
    rng = np.random.default_rng(0)
    X = ragged(rng, [6, 17, 17, 9, 23, 12, 17])
    expected = mmalign.cdist_dtw(X, **kw)
    got = mmalign.cdist_dtw(X, device=device, **kw)
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=0)
    np.testing.assert_array_equal(got, got.T)


@pytest.mark.parametrize("device", DEVICES)
def test_cdist_device_univariate_multivariate_two_sets(device):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((5, 14)), rng.standard_normal((3, 11))  # (N, n): univariate
    np.testing.assert_allclose(mmalign.cdist_dtw(X, Y, device=torch.device(device)),
                               mmalign.cdist_dtw(X, Y), rtol=RTOL, atol=0)
    X3, Y3 = rng.standard_normal((4, 10, 3)), rng.standard_normal((6, 13, 3))
    for kw in ({}, {"window": 0.1}, {"radius": 1, "metric": "euclidean"}):
        np.testing.assert_allclose(mmalign.cdist_dtw(X3, Y3, device=device, **kw),
                                   mmalign.cdist_dtw(X3, Y3, **kw), rtol=RTOL, atol=0)


def test_cdist_device_chunks_bound_memory(monkeypatch):
    rng = np.random.default_rng(2)
    X = ragged(rng, [5, 8, 8, 13, 4, 21, 9, 9], d=1)
    expected = mmalign.cdist_dtw(X, window=0.3)
    # room for about three 8 x 8 pairs per chunk: many chunks, one pair alone at the end
    monkeypatch.setattr(TB, "MAX_CHUNK_BYTES", 3 * 10 * 10 * 8)
    np.testing.assert_allclose(mmalign.cdist_dtw(X, window=0.3, device="cpu"), expected,
                               rtol=RTOL, atol=0)
    assert mmalign.cdist_dtw([X[0]], device="cpu").tolist() == [[0.0]]


def test_cdist_device_errors():
    X = [np.zeros(3), np.ones(4)]
    with pytest.raises(ValueError, match="device"):
        mmalign.cdist_dtw(X, device="not-a-device")
    with pytest.raises(ValueError, match="device"):
        mmalign.cdist_dtw(X, device=3.5)
    if not CUDA:
        with pytest.raises(ValueError, match="device='cuda'.*not available"):
            mmalign.cdist_dtw(X, device="cuda")
        with pytest.raises(ValueError, match="device"):
            mmalign.cdist_dtw(X, device=torch.device("cuda", 0))
    for kw, name in (({"itakura_slope": 2.0}, "itakura_slope"),
                     ({"step_pattern": "symmetric2"}, "step_pattern"),
                     ({"metric": lambda a, b: float(np.abs(a - b).sum())}, "callable metric")):
        with pytest.raises(ValueError, match=f"{name}.*CPU only"):
            mmalign.cdist_dtw(X, device="cpu", **kw)
    with pytest.raises(ValueError, match="mask.*CPU only"):
        mmalign.cdist_dtw(np.zeros((2, 3)), device="cpu", mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="radius"):
        mmalign.cdist_dtw(X, device="cpu", radius=-1)


def random_batch(rng, B=6, N=19, M=15, d=2, integer=False):
    if integer:  # small integers: many exactly tied predecessors, a test of the tie rule
        x = torch.from_numpy(rng.integers(0, 3, (B, N, d)).astype(np.float64))
        y = torch.from_numpy(rng.integers(0, 3, (B, M, d)).astype(np.float64))
    else:
        x = torch.from_numpy(rng.standard_normal((B, N, d)))
        y = torch.from_numpy(rng.standard_normal((B, M, d)))
    lx = torch.from_numpy(rng.integers(1, N + 1, B))
    ly = torch.from_numpy(rng.integers(1, M + 1, B))
    lx[0], ly[0] = N, M
    return x, y, lx, ly


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("kw", [{}, {"radius": 2}, {"radius": 0, "metric": "cityblock"},
                                {"metric": "euclidean"}])
def test_batch_dtw_equals_dtw_and_dtw_path_per_pair(device, integer, kw):
    rng = np.random.default_rng(3)
    x, y, lx, ly = random_batch(rng, integer=integer)
    values, paths = batch_dtw(x.to(device), y.to(device), x_lengths=lx, y_lengths=ly,
                              return_paths=True, **kw)
    assert values.shape == (6,) and values.dtype == torch.float64
    assert values.device.type == device
    for b in range(6):
        xb, yb = x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy()
        np.testing.assert_allclose(values[b].item(), mmalign.dtw(xb, yb, **kw), rtol=RTOL)
        expected = mmalign.dtw_path(xb, yb, **kw).path()
        assert paths[b].dtype == np.int64
        np.testing.assert_array_equal(paths[b], expected)


def test_batch_dtw_padding_univariate_and_cosine():
    rng = np.random.default_rng(4)
    x = torch.randn(3, 12, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    y = x.flip(1) + 0.5
    lx, ly = [12, 7, 3], [5, 12, 1]
    x[1, 7:] = float("nan")  # padding may hold anything
    got = batch_dtw(x, y, x_lengths=lx, y_lengths=ly)
    for b in range(3):
        expected = mmalign.dtw(x[b, :lx[b]].double().numpy(), y[b, :ly[b]].double().numpy())
        np.testing.assert_allclose(got[b].item(), expected, rtol=RTOL)
    a, c = rng.standard_normal((2, 9, 3)) + 2, rng.standard_normal((2, 11, 3)) + 2
    got = batch_dtw(a, c, metric="cosine")  # numpy input: a CPU tensor
    np.testing.assert_allclose(got.numpy(), [mmalign.dtw(a[b], c[b], metric="cosine")
                                             for b in range(2)], rtol=1e-9)
    assert torch.equal(batch_dtw(x[:1], x[:1]), torch.zeros(1, dtype=torch.float64))


def test_batch_dtw_errors():
    x, y = torch.zeros(2, 5, 1), torch.ones(2, 4, 1)
    cases = [
        (dict(x=torch.zeros(5)), "x must have shape"),
        (dict(x=torch.zeros(2, 5, 1, 1)), "x must have shape"),
        (dict(x=[[1.0]]), "x must be a torch.Tensor"),
        (dict(y=torch.zeros(2, 0, 1)), "y is empty"),
        (dict(x=torch.zeros(2, 5, 1, dtype=torch.bool)), "x must hold real numbers"),
        (dict(y=torch.full((2, 4, 1), float("nan"))), "y contains NaN"),
        (dict(y=torch.ones(3, 4, 1)), "different batch sizes"),
        (dict(y=torch.ones(2, 4, 2)), "different numbers of features"),
        (dict(x_lengths=[5, 6]), r"x_lengths must lie in \[1, 5\]"),
        (dict(y_lengths=[0, 4]), "y_lengths must lie"),
        (dict(y_lengths=[4.0, 4.0]), "y_lengths must hold integers"),
        (dict(x_lengths=[5]), r"x_lengths must have shape \(2,\)"),
        (dict(radius=-1), "radius"),
        (dict(radius=1.5), "radius"),
        (dict(metric="hamming"), "metric"),
    ]
    for change, message in cases:
        args = dict(x=x, y=y) | change
        with pytest.raises(ValueError, match=message):
            batch_dtw(args.pop("x"), args.pop("y"), **args)
    with pytest.raises(ValueError, match="all-zero frames"):
        batch_dtw(x, y, metric="cosine")
    # NaN beyond the lengths is padding; within them it is an error
    bad = torch.zeros(2, 5, 1)
    bad[1, 2] = float("nan")
    assert batch_dtw(bad, y, x_lengths=[5, 2]).shape == (2,)
    with pytest.raises(ValueError, match="x contains NaN"):
        batch_dtw(bad, y, x_lengths=[5, 3])


def test_dtw_on_device_tensors_routes_through_the_wavefront(monkeypatch):
    # the CUDA route, exercised on CPU tensors: dtw / dtw_path must not change
    calls = []
    original = TB.solve_on_device

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(dtw_module, "_on_one_cuda_device",
                        lambda x, y: isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor))
    monkeypatch.setattr(TB, "solve_on_device", spy)
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 3, (23, 2)).astype(float), rng.integers(0, 3, (17, 2)).astype(float)
    tx, ty = torch.from_numpy(x).float(), torch.from_numpy(y).float()
    for kw in ({}, {"window": 0.1}, {"radius": 3, "metric": "cityblock"}, {"metric": "cosine"}):
        if kw.get("metric") == "cosine":
            x, y, tx, ty = x + 1, y + 1, tx + 1, ty + 1
        assert mmalign.dtw(tx, ty, **kw) == pytest.approx(mmalign.dtw(x, y, **kw), rel=RTOL)
        a = mmalign.dtw_path(tx, ty, **kw)
        np.testing.assert_array_equal(a.path(), mmalign.dtw_path(x, y, **kw).path())
        assert a.shape == (23, 17)
    assert calls == [True] * 8
    # options the wavefront lacks fall back to the CPU kernels
    assert mmalign.dtw(tx, ty, itakura_slope=2.0) == mmalign.dtw(x, y, itakura_slope=2.0)
    assert mmalign.dtw(tx, ty, step_pattern="symmetric2") == mmalign.dtw(
        x, y, step_pattern="symmetric2")
    assert calls[-2:] == [False, False]
    with pytest.raises(ValueError, match="x contains NaN"):
        mmalign.dtw(torch.tensor([0.0, float("nan")]), ty[:, 0])
    with pytest.raises(ValueError, match="different numbers of features"):
        mmalign.dtw(tx, ty[:, :1])
    with pytest.raises(ValueError, match="x must have shape"):
        mmalign.dtw(tx[None], ty)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dtw_and_dtw_path_on_cuda_tensors(dtype):
    rng = np.random.default_rng(6)
    x, y = rng.integers(0, 3, (40, 3)).astype(dtype), rng.integers(0, 3, (31, 3)).astype(dtype)
    x[::7] += 0.25  # not only integers: float32 inputs must give float32 inputs' answers
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    for kw in ({}, {"radius": 4}, {"window": 0.1, "metric": "euclidean"},
               {"radius": 0, "metric": "cityblock"}):
        assert mmalign.dtw(tx, ty, **kw) == pytest.approx(mmalign.dtw(x, y, **kw), rel=RTOL)
        np.testing.assert_array_equal(mmalign.dtw_path(tx, ty, **kw).path(),
                                      mmalign.dtw_path(x, y, **kw).path())
    assert dtw_module._on_one_cuda_device(tx, ty)
    assert not dtw_module._on_one_cuda_device(tx, ty.cpu())
