"""Soft-DTW Triton backend: kernels run in Triton's CPU interpreter against numba and torch.

``TRITON_INTERPRET=1`` must be set before triton is imported, so the kernels run in a
subprocess (``tests/_triton_interpreted.py``) that saves its inputs and outputs; the
comparisons with the numba kernels and the torch wavefront happen here.  The
``cuda`` test runs the compiled kernels on a GPU (``pytest -k cuda``).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mmalign

pytest.importorskip("triton")
pytest.importorskip("numba")

HERE = Path(__file__).resolve().parent
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    """The dict saved by tests/_triton_interpreted.py (one interpreter run per module)."""
    out = tmp_path_factory.mktemp("triton") / "results.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-W", "ignore", str(HERE / "_triton_interpreted.py"),
                           str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out, weights_only=False)


def _reference(backend, x, y, lx, ly, **options):
    options.pop("checkpoint", None)
    xd = x.clone().requires_grad_()
    yd = y.clone().requires_grad_()
    value = mmalign.SoftDTWLoss(backend=backend, reduction="none", **options)(xd, yd, lx, ly)
    value.sum().backward()
    return value.detach(), xd.grad, yd.grad


def _assert_close(ours, ref, rtol):
    for name, a, b in zip(("values", "grad_x", "grad_y"), ours, ref):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        scale = max(1.0, b.abs().max().item())
        assert torch.allclose(a, b, rtol=rtol, atol=rtol * scale), \
            (name, (a - b).abs().max().item())


FLOAT64_CASES = [f"float64 gamma={g} normalize={n} radius={r} checkpoint={c}"
                 for g, n, r in ((1e-3, False, None), (1.0, True, 3), (100.0, False, 0),
                                 (0.3, False, 3)) for c in (False, True)]


@pytest.mark.parametrize("case", FLOAT64_CASES)
def test_float64_values_and_gradients_equal_numba(interpreted, case):
    result = interpreted[case]
    x, y, lx, ly = result["inputs"]
    assert x.dtype == torch.float64 and x.shape[1] != y.shape[1]
    assert int(lx.max()) < x.shape[1] and int(lx.min()) == 1 and int(ly.min()) == 1
    ours = result["outputs"]
    _assert_close(ours, _reference("numba", x, y, lx, ly, **result["options"]), 1e-10)
    # the padding beyond each sequence gets no gradient, the sequences do
    for b in range(len(lx)):
        assert not ours[1][b, lx[b]:].any() and not ours[2][b, ly[b]:].any()
    assert ours[1].abs().sum() > 0 and ours[2].abs().sum() > 0


@pytest.mark.parametrize("case", [c for c in FLOAT64_CASES if c.endswith("checkpoint=True")])
def test_checkpointed_store_gives_the_same_bits(interpreted, case):
    full = interpreted[case.replace("checkpoint=True", "checkpoint=False")]["outputs"]
    for a, b in zip(interpreted[case]["outputs"], full):
        assert torch.equal(a, b)


def test_float32_equals_numba(interpreted):
    result = interpreted["float32 gamma=1.0 radius=None"]
    x, y, lx, ly = result["inputs"]
    assert x.dtype == torch.float32
    ref = _reference("numba", x, y, lx, ly, **result["options"])
    assert result["outputs"][1].dtype == torch.float32
    _assert_close(result["outputs"], ref, 1e-4)


@pytest.mark.parametrize("gamma", [1e-3, 1.0, 100.0])
def test_large_costs_give_finite_values_and_gradients(interpreted, gamma):
    result = interpreted[f"large costs gamma={gamma}"]
    x, y, lx, ly = result["inputs"]
    assert x.abs().max() > 1e3  # squared distances ~1e6
    for t in result["outputs"]:
        assert torch.isfinite(t).all()
    # R ~ 1e7 carries absolute rounding ~1e-9, divided by gamma in the backward's
    # exp((R_next - R - C) / gamma): the numba and torch backends themselves differ by
    # ~2e-6 at gamma = 1e-3.  The wavefront evaluates the same expressions in the
    # same order as the kernels, so it is the reference here.
    _assert_close(result["outputs"], _reference("torch", x, y, lx, ly, **result["options"]),
                  1e-10)


@pytest.mark.parametrize("radius", [-1, 2])
def test_launchers_in_small_chunks_equal_the_wavefront(interpreted, radius):
    from mmalign.warping import _wavefront as W

    result = interpreted["launchers"]
    x, y, lx, ly = result["inputs"]
    gamma = result["gamma"]
    assert not x.is_contiguous()
    # block = 4 rows per chunk, diagonals up to 11 rows long: several chunks per diagonal
    assert min(x.shape[1], y.shape[1]) > 2 * 4
    values, R = W.soft_forward(x, y, lx, ly, gamma, radius, store="full")
    gx, gy, _ = W.soft_backward(x, y, R, lx, ly, gamma, radius)
    outputs = result["outputs"]
    _assert_close(outputs[(radius, "full")], (values, gx, gy), 1e-12)
    assert torch.equal(outputs[(radius, "none")][0], outputs[(radius, "full")][0])
    for segment in (1, 2, 5):
        for a, b in zip(outputs[(radius, f"checkpoint {segment}")], outputs[(radius, "full")]):
            assert torch.equal(a, b)


def test_cpu_tensors_without_the_interpreter_are_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    loss = mmalign.SoftDTWLoss(backend="triton")
    x = torch.randn(2, 5, 2)
    with pytest.raises(ValueError, match="backend='triton' needs CUDA tensors"):
        loss(x, x + 1)
    with pytest.raises(ValueError, match="backend"):
        mmalign.SoftDTWLoss(backend="cuda")


def test_missing_triton_is_named(monkeypatch):
    import mmalign.warping
    from mmalign.warping import soft_loss

    # `from . import _triton_soft` then raises ImportError, as without triton
    monkeypatch.delattr(mmalign.warping, "_triton_soft", raising=False)
    monkeypatch.setitem(sys.modules, "mmalign.warping._triton_soft", None)
    with pytest.raises(ValueError, match="backend='triton' needs the triton package"):
        soft_loss.SoftDTWLoss(backend="triton")


# The interpreter runs kernels as Python and accepts what the compiler rejects (e.g. a
# non-constexpr global, which once slipped through): compiling them for a Hopper GPU
# (PTX and cubin, with the ptxas that ships in triton's wheel) needs no GPU.
@pytest.mark.parametrize("dtype", ["fp32", "fp64"])
def test_kernels_compile_for_hopper(dtype):
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from mmalign.warping import _triton_soft as T

    if T.interpreted():
        pytest.skip("kernels were built by the interpreter in this process")

    def signature(kernel):
        return {name: "constexpr" if name in ("STORE", "CHECKPOINT", "BLOCK")
                else "*i64" if name in ("lx_ptr", "ly_ptr")
                else f"*{dtype}" if name.endswith("_ptr") else "i32" for name in kernel.arg_names}

    variants = [(T._forward_kernel, {"STORE": store}) for store in T.STORE_CODES.values()]
    variants += [(T._backward_kernel, {"CHECKPOINT": ck}) for ck in (False, True)]
    for kernel, constants in variants:
        source = ASTSource(fn=kernel, signature=signature(kernel), constexprs={**constants, "BLOCK": 256})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": 4, "num_stages": 1})
        ptx = compiled.asm["ptx"]
        assert "bar.sync" in ptx and "ld.global.cg" in ptx, (kernel.__name__, constants)
        assert compiled.asm["cubin"]


def _ragged(*args, **kwargs):
    sys.path.insert(0, str(HERE))
    try:
        from _triton_interpreted import ragged
    finally:
        sys.path.remove(str(HERE))
    return ragged(*args, **kwargs)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("checkpoint", [False, True])
@pytest.mark.parametrize("radius, normalize", [(None, False), (5, True)])
def test_triton_on_cuda_matches_numba_on_cpu(dtype, checkpoint, radius, normalize):
    x, y, lx, ly = _ragged(21, B=5, N=300, M=270, d=3)
    lx[0], ly[0] = 300, 270  # one pair spans the padded size
    options = dict(gamma=0.1, radius=radius, normalize=normalize)
    ref = _reference("numba", x, y, lx, ly, **options)
    xg = x.to(dtype).cuda().requires_grad_()
    yg = y.to(dtype).cuda().requires_grad_()
    loss = mmalign.SoftDTWLoss(backend="triton", reduction="none", checkpoint=checkpoint,
                               **options)
    value = loss(xg, yg, lx.cuda(), ly.cuda())
    assert value.device.type == "cuda" and value.dtype == dtype
    value.sum().backward()
    assert xg.grad.dtype == dtype
    ours = tuple(t.detach().cpu().double() for t in (value, xg.grad, yg.grad))
    # float32: R ~ 1e2 to 1e3 rounds to ~1e-5 absolute, divided by gamma = 0.1 in the
    # backward's exp((R_next - R - C) / gamma) (and GPU exp is approximate in float32):
    # gradients are checked to 1e-2 of their largest magnitude, values to 1e-4
    tols = (1e-10, 1e-10, 1e-10) if dtype == torch.float64 else (1e-4, 1e-2, 1e-2)
    for name, a, b, tol in zip(("values", "grad_x", "grad_y"), ours, ref, tols):
        scale = b.abs().max().item()
        assert (a - b).abs().max().item() <= tol * max(scale, 1.0), name


@needs_cuda
@pytest.mark.parametrize("radius", [-1, 4])
def test_triton_launchers_on_cuda_in_small_chunks_equal_the_wavefront(radius):
    from mmalign.warping import _triton_soft as T
    from mmalign.warping import _wavefront as W

    x, y, lx, ly = (t.cuda() for t in _ragged(22, B=5, N=200, M=150, d=2))
    values, R = W.soft_forward(x, y, lx, ly, 0.5, radius, store="full")
    gx, gy, _ = W.soft_backward(x, y, R, lx, ly, 0.5, radius)
    for block in (32, 1024):
        tv, TR = T.soft_forward(x, y, lx, ly, 0.5, radius, store="full", block=block)
        tgx, tgy = T.soft_backward(x, y, TR, lx, ly, 0.5, radius, block=block)
        for a, b in ((tv, values), (tgx, gx), (tgy, gy)):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-10 * b.abs().max().item())
        nv = T.soft_forward(x, y, lx, ly, 0.5, radius, store="none", block=block)[0]
        cv, saved = T.soft_forward(x, y, lx, ly, 0.5, radius, store="checkpoint", segment=7,
                                   block=block)
        cgx, cgy = T.soft_backward(x, y, saved, lx, ly, 0.5, radius, block=block)
        assert torch.equal(nv, tv) and torch.equal(cv, tv)
        assert torch.equal(cgx, tgx) and torch.equal(cgy, tgy)
