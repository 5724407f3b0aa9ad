"""Soft-DTW: values and gradients against tslearn and finite differences, ragged batches."""

import math

import numpy as np
import pytest
import torch

import mmalign

tslearn_metrics = pytest.importorskip("tslearn.metrics")

BACKENDS = ["numba", "torch"]


@pytest.mark.parametrize("gamma", [1e-3, 0.1, 1.0, 10.0, 100.0])
def test_value_and_expected_alignment_equal_tslearn(gamma):
    from tslearn.metrics import SoftDTW, SquaredEuclidean

    rng = np.random.default_rng(int(gamma * 1000))
    for _ in range(5):
        x = rng.standard_normal((int(rng.integers(1, 30)), 3))
        y = rng.standard_normal((int(rng.integers(1, 30)), 3))
        expected = tslearn_metrics.soft_dtw(x, y, gamma=gamma)
        assert mmalign.soft_dtw(x, y, gamma=gamma) == pytest.approx(expected, rel=1e-6)
        reference = SoftDTW(SquaredEuclidean(x, y).compute(), gamma=gamma)
        reference.compute()
        alignment = mmalign.soft_dtw_alignment(x, y, gamma=gamma)
        np.testing.assert_allclose(alignment.matrix(), reference.grad(), rtol=1e-6, atol=1e-9)
        assert alignment.cost == pytest.approx(expected, rel=1e-6)


def test_tends_to_dtw_as_gamma_vanishes():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((25, 2)), rng.standard_normal((31, 2))
    hard = mmalign.dtw(x, y) ** 2
    gaps = [abs(mmalign.soft_dtw(x, y, gamma=g) - hard) for g in (1.0, 0.1, 0.01, 0.001)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-2
    for radius in (0, 3):
        assert mmalign.soft_dtw(x, y, gamma=1e-4, radius=radius) == pytest.approx(
            mmalign.dtw(x, y, radius=radius) ** 2, rel=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("radius", [None, 2])
def test_ragged_batch_equals_pairs_alone(backend, radius):
    torch.manual_seed(0)
    x = torch.randn(5, 14, 3, dtype=torch.float64)
    y = torch.randn(5, 11, 3, dtype=torch.float64)
    lx = torch.tensor([14, 7, 14, 3, 10])
    ly = torch.tensor([11, 11, 4, 2, 6])
    loss = mmalign.SoftDTWLoss(gamma=0.3, radius=radius, reduction="none", backend=backend)
    batch = loss(x, y, lx, ly)
    for b in range(5):
        alone = mmalign.soft_dtw(x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy(), gamma=0.3,
                                 radius=radius)
        assert batch[b].item() == pytest.approx(alone, rel=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("normalize", [False, True])
def test_gradients_equal_finite_differences(backend, normalize, one_torch_thread):
    torch.manual_seed(1)
    x = torch.randn(4, 9, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 7, 2, dtype=torch.float64, requires_grad=True)
    lx, ly = torch.tensor([9, 5, 9, 2]), torch.tensor([7, 7, 3, 4])
    for radius in (None, 1):
        loss = mmalign.SoftDTWLoss(gamma=0.5, normalize=normalize, radius=radius,
                                   reduction="sum", backend=backend)
        assert torch.autograd.gradcheck(lambda a, b: loss(a, b, lx, ly), (x, y))


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_is_zero_at_equality_and_nonnegative(backend):
    torch.manual_seed(2)
    x = torch.randn(6, 20, 2, dtype=torch.float64)
    divergence = mmalign.SoftDTWLoss(gamma=1.0, normalize=True, reduction="none",
                                     backend=backend)
    assert torch.allclose(divergence(x, x), torch.zeros(6, dtype=torch.float64), atol=1e-9)
    y = torch.randn(6, 17, 2, dtype=torch.float64)
    assert (divergence(x, y) >= 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gamma", [1e-3, 1.0, 100.0])
def test_stable_for_extreme_gamma_and_large_costs(backend, gamma):
    torch.manual_seed(3)
    x = (1e3 * torch.randn(3, 16, 2, dtype=torch.float64)).requires_grad_()  # costs ~1e6
    y = 1e3 * torch.randn(3, 12, 2, dtype=torch.float64)
    value = mmalign.SoftDTWLoss(gamma=gamma, backend=backend)(x, y)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_backends_agree_and_float32_works():
    torch.manual_seed(4)
    x = torch.randn(3, 10, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 8, 2, dtype=torch.float64)
    values, grads = [], []
    for backend in BACKENDS:
        x.grad = None
        v = mmalign.SoftDTWLoss(backend=backend, reduction="sum")(x, y)
        v.backward()
        values.append(v.item())
        grads.append(x.grad.clone())
    assert values[0] == pytest.approx(values[1], rel=1e-12)
    assert torch.allclose(grads[0], grads[1], rtol=1e-10, atol=1e-12)
    x32 = x.detach().float().requires_grad_()
    v32 = mmalign.SoftDTWLoss(reduction="sum")(x32, y.float())
    v32.backward()
    assert v32.dtype == torch.float32 and v32.item() == pytest.approx(values[0], rel=1e-5)
    assert x32.grad.dtype == torch.float32


def test_bad_input_is_named():
    loss = mmalign.SoftDTWLoss()
    x = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="x must have shape"):
        loss(torch.zeros(5, 3), x)
    with pytest.raises(ValueError, match="y contains NaN"):
        loss(x, torch.full((2, 5, 3), float("nan")))
    with pytest.raises(ValueError, match="different numbers of features"):
        loss(x, torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="batch sizes"):
        loss(x, torch.zeros(3, 5, 3))
    with pytest.raises(ValueError, match="x_lengths"):
        loss(x, x, x_lengths=torch.tensor([5, 6]))
    with pytest.raises(ValueError, match="y_lengths"):
        loss(x, x, y_lengths=torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match="x must be float32 or float64"):
        loss(torch.zeros(2, 5, 3, dtype=torch.int64), x)
    with pytest.raises(ValueError, match="gamma"):
        mmalign.SoftDTWLoss(gamma=0.0)
    with pytest.raises(ValueError, match="reduction"):
        mmalign.SoftDTWLoss(reduction="avg")
    with pytest.raises(ValueError, match="gamma"):
        mmalign.soft_dtw(np.zeros(3), np.zeros(3), gamma=-1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        mmalign.soft_dtw(np.array([np.nan]), np.zeros(3))


def test_reductions():
    torch.manual_seed(5)
    x, y = torch.randn(4, 6, 1), torch.randn(4, 5, 1)
    per_pair = mmalign.SoftDTWLoss(reduction="none")(x, y)
    assert per_pair.shape == (4,)
    assert mmalign.SoftDTWLoss(reduction="sum")(x, y).item() == pytest.approx(
        per_pair.sum().item(), rel=1e-6)
    assert mmalign.SoftDTWLoss()(x, y).item() == pytest.approx(per_pair.mean().item(), rel=1e-6)


# --------------------------------------------------------------------------- torch wavefront:
# the GPU code path.  On "cpu" it is forced with backend="torch" (so CI without a GPU runs
# it); on "cuda" it is the default.  Both stores of R (full, checkpointed) must give the
# same bits, and agree with the numba kernels on CPU to 1e-10.

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")
WAVEFRONT_DEVICES = ["cpu"] + (["cuda"] if CUDA else [])


@pytest.fixture
def one_torch_thread():
    """The wavefront's tensors are small: intra-op threads only add barriers (and, on a
    busy machine, spinning threads made these tests 20x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _ragged_problem(seed, B=5, N=23, M=17, d=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, d, dtype=torch.float64, generator=g)
    y = torch.randn(B, M, d, dtype=torch.float64, generator=g)
    lx = torch.tensor([N, N // 2, N, 1, N - 3][:B])
    ly = torch.tensor([M, M, 4, M // 3, 2][:B])
    return x, y, lx, ly


def _value_and_grads(loss, x, y, lx, ly, device):
    xd = x.to(device).requires_grad_()
    yd = y.to(device).requires_grad_()
    value = loss(xd, yd, lx.to(device), ly.to(device))
    value.sum().backward()
    return value.detach().cpu(), xd.grad.cpu(), yd.grad.cpu()


@pytest.mark.parametrize("device", WAVEFRONT_DEVICES)
@pytest.mark.parametrize("gamma", [1e-3, 0.1, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("normalize, radius", [(False, None), (True, None), (False, 0),
                                               (True, 3)])
def test_wavefront_checkpointed_equals_full_and_numba(device, gamma, normalize, radius,
                                                      one_torch_thread):
    x, y, lx, ly = _ragged_problem(int(gamma * 1000) + 7 * (radius or 0))
    common = dict(gamma=gamma, normalize=normalize, radius=radius, reduction="none")
    backend = "torch" if device == "cpu" else "auto"
    full = _value_and_grads(mmalign.SoftDTWLoss(backend=backend, checkpoint=False, **common),
                            x, y, lx, ly, device)
    ckpt = _value_and_grads(mmalign.SoftDTWLoss(backend=backend, checkpoint=True, **common),
                            x, y, lx, ly, device)
    numba_ = _value_and_grads(mmalign.SoftDTWLoss(backend="numba", **common), x, y, lx, ly, "cpu")
    for a, b, c in zip(full, ckpt, numba_):
        assert torch.equal(a, b)  # checkpointing recomputes R bit for bit
        assert torch.allclose(a, c, rtol=1e-10, atol=1e-10 * max(1.0, c.abs().max().item()))
    # the padding beyond each sequence gets no gradient
    for b in range(len(lx)):
        assert not full[1][b, lx[b]:].any() and not full[2][b, ly[b]:].any()


@pytest.mark.parametrize("segment", [1, 2, 3, 5, None, 1000])
@pytest.mark.parametrize("radius", [-1, 1])
def test_wavefront_segments_of_any_length_give_the_same_bits(segment, radius,
                                                             one_torch_thread):
    from mmalign.warping import _wavefront as W

    x, y, lx, ly = _ragged_problem(11, N=13, M=20)
    values, R = W.soft_forward(x, y, lx, ly, 0.7, radius, store="full")
    gx, gy, E = W.soft_backward(x, y, R, lx, ly, 0.7, radius, keep_alignment=True)
    cvalues, saved = W.soft_forward(x, y, lx, ly, 0.7, radius, store="checkpoint",
                                    segment=segment)
    cgx, cgy, cE = W.soft_backward(x, y, saved, lx, ly, 0.7, radius, keep_alignment=True)
    assert isinstance(saved, W.SoftCheckpoints)
    for a, b in ((values, cvalues), (gx, cgx), (gy, cgy), (E, cE)):
        assert torch.equal(a, b)
    assert torch.equal(W.soft_forward(x, y, lx, ly, 0.7, radius, store="none")[0], values)
    # E is the expected alignment: each pair's matches its numba computation
    for b in range(len(lx)):
        xb, yb = x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy()
        ref = mmalign.soft_dtw_alignment(xb, yb, gamma=0.7,
                                         radius=None if radius < 0 else radius).matrix()
        np.testing.assert_allclose(E[b, :lx[b], :ly[b]].numpy(), ref, rtol=1e-10, atol=1e-13)


def test_checkpoint_is_chosen_by_size_and_validated(monkeypatch):
    from mmalign.warping import _wavefront as W
    from mmalign.warping import soft_loss

    assert not soft_loss.use_checkpoints(64, 256, 256, 4, None)  # R = 17 MiB: keep it
    assert soft_loss.use_checkpoints(8, 4096, 4096, 4, None)  # R = 512 MiB: checkpoint
    assert not soft_loss.use_checkpoints(8, 4096, 4096, 4, False)
    assert soft_loss.use_checkpoints(1, 3, 3, 8, True)
    assert not soft_loss.use_checkpoints(4096, 8192, 2, 8, None)  # checkpoints would be larger
    N = M = 4096
    s = W.default_segment(N + M - 1)
    assert s == 128 and W.soft_memory(2, N, M, "checkpoint") == 2 * (N + 2) * (2 * 64 + s + 2)
    with pytest.raises(ValueError, match="checkpoint"):
        mmalign.SoftDTWLoss(checkpoint="yes")
    with pytest.raises(ValueError, match="store"):
        W.soft_forward(torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), torch.tensor([2]),
                       torch.tensor([2]), 1.0, -1, store="all")
    # auto: a tiny threshold switches the CPU-forced torch path to checkpoints
    calls = []
    original = W.soft_forward

    def spy(*args, **kwargs):
        calls.append(kwargs["store"])
        return original(*args, **kwargs)

    monkeypatch.setattr(W, "soft_forward", spy)
    x = torch.randn(2, 60, 1, dtype=torch.float64, requires_grad=True)
    loss = mmalign.SoftDTWLoss(backend="torch")
    loss(x, x.detach() + 1).backward()
    loss(x.detach(), x.detach())  # no gradient wanted: nothing kept
    monkeypatch.setattr(soft_loss, "CHECKPOINT_ABOVE_BYTES", 0)
    loss(x, x.detach() + 1).backward()
    assert calls == ["full", "none", "checkpoint"]


class _LargestStorage(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the largest storage any aten op returns (views count their whole base)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.untyped_storage().nbytes())
        return out


def test_checkpointed_backward_never_allocates_n_by_m(one_torch_thread):
    torch.manual_seed(6)
    B, N, M = 2, 200, 180
    x = torch.randn(B, N, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(B, M, 2, dtype=torch.float64, requires_grad=True)
    lx, ly = torch.tensor([200, 141]), torch.tensor([117, 180])
    loss = mmalign.SoftDTWLoss(gamma=0.5, backend="torch", checkpoint=True)
    with _LargestStorage() as mode:
        loss(x, y, lx, ly).backward()
    # diagonals 2 .. max(lx + ly), checkpointed every s: ceil(K / s) pairs of (B, N + 2)
    # row buffers and one segment of s in the backward: O(B N sqrt(N + M)) values
    K = int((lx + ly).max()) - 1
    s = math.ceil(math.sqrt(2 * K))
    row = B * (N + 2) * 8
    assert 2 * math.ceil(K / s) * row <= mode.largest <= max(2 * math.ceil(K / s), s) * row
    assert mode.largest * 5 < B * (N + 2) * (M + 2) * 8  # R, what the full store keeps


_RSS_CHILD = """
import json, time, torch, mmalign
torch.set_num_threads(1)
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field + ':'):
            return int(line.split()[1]) * 1024
g = torch.Generator().manual_seed(0)
x = torch.randn(2, 4096, 2, dtype=torch.float64, generator=g, requires_grad=True)
y = torch.randn(2, 4096, 2, dtype=torch.float64, generator=g)
lx, ly = torch.tensor([4096, 3001]), torch.tensor([3500, 4096])
loss = mmalign.SoftDTWLoss(backend='torch', reduction='sum')
loss(x[:, :8], y[:, :8], torch.tensor([8, 5]), torch.tensor([8, 8])).backward()
x.grad = None
with open('/proc/self/clear_refs', 'w') as fh:
    fh.write('5')
before = rss('VmRSS')
t0 = time.perf_counter()
loss(x, y, lx, ly).backward()
print(json.dumps(dict(growth=rss('VmHWM') - before, seconds=time.perf_counter() - t0,
                      finite=bool(torch.isfinite(x.grad).all()))))
"""


@pytest.mark.slow
def test_long_ragged_batch_runs_in_modest_memory_on_the_torch_path():
    # B = 2, 4096 x 4096: R alone would be 256 MiB; the checkpointed backward needs ~17 MiB
    import json
    import subprocess
    import sys

    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pytest.skip("peak RSS cannot be reset here (/proc/self/clear_refs)")
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["finite"]
    assert result["growth"] < 64 * 2**20, result


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softdtw_loss_cuda_float32_and_float64_match_cpu(dtype):
    x, y, lx, ly = _ragged_problem(21, N=40, M=33)
    loss = mmalign.SoftDTWLoss(gamma=0.1, radius=5, reduction="none")
    xc = x.to(dtype).requires_grad_()
    xg = x.to(dtype).cuda().requires_grad_()
    cpu = loss(xc, y.to(dtype), lx, ly)
    gpu = loss(xg, y.to(dtype).cuda(), lx.cuda(), ly.cuda())
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    cpu.sum().backward()
    gpu.sum().backward()
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-3)
    assert torch.allclose(gpu.detach().cpu(), cpu.detach(), **tol)
    assert torch.allclose(xg.grad.cpu(), xc.grad, **tol)
