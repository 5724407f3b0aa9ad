"""Hard-DTW Triton kernel: run in Triton's CPU interpreter against the CPU kernels.

``TRITON_INTERPRET=1`` must be set before triton is imported, so the kernel runs in a
subprocess (``tests/_triton_hard_interpreted.py``) that saves its inputs and outputs;
the comparisons with the numba kernels and the torch wavefront happen here, and must
be exact (values bit for bit, identical paths).  The kernel is also compiled for a
Hopper GPU (no GPU needed).  The ``cuda`` tests run it on a GPU (``pytest -k cuda``).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mmalign
from mmalign.warping import _wavefront as W
from mmalign.warping import batch as TB

pytest.importorskip("triton")
pytest.importorskip("numba")

HERE = Path(__file__).resolve().parent
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA is not available")


def _script():
    sys.path.insert(0, str(HERE))
    try:
        import _triton_hard_interpreted as script
    finally:
        sys.path.remove(str(HERE))
    return script


S = _script()


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    """The dict saved by tests/_triton_hard_interpreted.py (one interpreter run per module)."""
    out = tmp_path_factory.mktemp("triton_hard") / "results.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-W", "ignore",
                           str(HERE / "_triton_hard_interpreted.py"), str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return torch.load(out, weights_only=False)


def _band_mask(n: int, m: int, radius: int) -> np.ndarray:
    """(n, m) cells inside the length-widened band (all of them for radius -1)."""
    offset = np.arange(m)[None, :] - np.arange(n)[:, None]
    if radius < 0:
        return np.ones((n, m), bool)
    return (offset >= -(radius + max(n - m, 0))) & (offset <= radius + max(m - n, 0))


def _reference(X, Y, ia, ib, n, m, radius, metric):
    """Pair ``(X[ia, :n], Y[ib, :m])`` by the torch wavefront: value (1,), codes (1, n, m).

    The costs are ``cost_tensor``'s, except that the Euclidean square root is numpy's:
    torch's CPU ``sqrt`` (SLEEF) is not correctly rounded (``sqrt(2.)`` comes out one
    ulp low), whereas the numba kernels and the GPU take the IEEE square root.
    """
    D = TB.cost_tensor(X[ia:ia + 1, :n], Y[ib:ib + 1, :m],
                       0 if metric == 1 else metric)
    if metric == 1:
        D = torch.from_numpy(np.sqrt(D.cpu().numpy())).to(D.device)
    lengths = (torch.tensor([n], device=D.device), torch.tensor([m], device=D.device))
    return W.hard_forward(D, *lengths, radius, True)


# --------------------------------------------------------------------------- interpreter

def test_the_kernel_ran_for_every_metric(interpreted):
    # the script made the torch wavefront raise, so every result below is the kernel's
    assert set(interpreted["kernel calls"]) == {0, 1, 2}


CDIST_CASES = ([f"cdist {o}" for o in S.CDIST_OPTIONS]
               + [f"cdist two sets {o}" for o in S.TWO_SET_OPTIONS]
               + ["cdist float {}", "cdist in launches of 4 pairs {}"])


@pytest.mark.parametrize("case", CDIST_CASES)
def test_cdist_values_equal_the_cpu_kernels_exactly(interpreted, case):
    result = interpreted[case]
    A, B = result["inputs"]
    lengths = [len(s) for s in A] + ([] if B is None else [len(s) for s in B])
    assert len(set(lengths)) > 2 and (min(lengths) == 1 or "float" in case)
    expected = mmalign.cdist_dtw(A, B, **result["options"])
    got = result["outputs"]
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("case", [f"paths {o}" for o in S.PATH_OPTIONS] + ["paths in chunks {}"])
def test_batch_paths_and_values_equal_dtw_path(interpreted, case):
    result = interpreted[case]
    options = result["options"]
    x, y, lx, ly = result["inputs"]
    values, paths = result["outputs"]
    assert values.dtype == torch.float64 and len(paths) == len(lx)
    for b in range(len(lx)):
        xb, yb = x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy()
        assert values[b].item() == mmalign.dtw(xb, yb, **options)
        np.testing.assert_array_equal(paths[b], mmalign.dtw_path(xb, yb, **options).path())


@pytest.mark.parametrize("options", S.SOLVE_ON_DEVICE_OPTIONS, ids=str)
def test_dtw_and_dtw_path_on_tensors_equal_the_cpu(interpreted, monkeypatch, options):
    result = interpreted[f"solve_on_device {options}"]
    a, b = result["inputs"]
    value, path = result["outputs"]
    cpu = mmalign.dtw(a, b, **options)
    np.testing.assert_array_equal(path, mmalign.dtw_path(a, b, **options).path())
    if options.get("metric") == "cosine":  # unit rows by torch, not numpy: last bits differ
        assert value == pytest.approx(cpu, rel=1e-12)
    else:
        assert value == cpu
    # the torch wavefront on the same route (same unit rows) gives the same bits
    dtw_module = sys.modules["mmalign.warping.dtw"]
    monkeypatch.setattr(dtw_module, "_on_one_cuda_device", lambda x, y: True)
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    assert value == mmalign.dtw(ta, tb, **options)


@pytest.mark.parametrize("metric", [0, 1, 2])
def test_launcher_in_small_chunks_equals_the_wavefront(interpreted, metric):
    result = interpreted["launcher"]
    X, Y, ia, ib, n, m, radii = result["inputs"]
    values, dirs = result["outputs"][metric]
    # 4 rows per chunk against diagonals of up to 11 rows; 3 programs for 7 pairs
    assert min(X.shape[1], Y.shape[1]) > 2 * 4 and len(ia) > 2 * 3
    assert not X.is_contiguous()
    assert dirs.shape == (len(ia), n.max(), m.max()) and dirs.dtype == torch.uint8
    for k in range(len(ia)):
        value, codes = _reference(X, Y, ia[k], ib[k], n[k], m[k], int(radii[k]), metric)
        assert values[k].item() == value.item(), k
        inside = _band_mask(int(n[k]), int(m[k]), int(radii[k]))
        np.testing.assert_array_equal(dirs[k, :n[k], :m[k]].numpy()[inside],
                                      codes[0].numpy()[inside])
    # ties are present: the codes check the tie rule, not only the minimum
    assert (dirs == 0).any() and (dirs == 1).any() and (dirs == 2).any()


def test_launcher_without_directions_gives_the_same_values(interpreted):
    values, dirs = interpreted["launcher"]["outputs"]["no dirs"]
    assert dirs is None
    assert torch.equal(values, interpreted["launcher"]["outputs"][0][0])


# --------------------------------------------------------------------------- switch

def test_switch_defaults_to_torch_and_checks_its_value(monkeypatch):
    assert TB.DEVICE_KERNEL == "torch"
    X = [np.arange(4.0), np.arange(6.0) % 3]
    monkeypatch.setattr(TB, "DEVICE_KERNEL", "cuda")
    with pytest.raises(ValueError, match="DEVICE_KERNEL"):
        mmalign.cdist_dtw(X, device="cpu")
    # CPU tensors without the interpreter: the torch wavefront runs
    monkeypatch.setattr(TB, "DEVICE_KERNEL", "triton")
    np.testing.assert_array_equal(mmalign.cdist_dtw(X, device="cpu"), mmalign.cdist_dtw(X))


def test_cpu_tensors_without_the_interpreter_are_refused():
    from mmalign.warping import _triton_hard as T

    if T.interpreted():
        pytest.skip("kernel was built by the interpreter in this process")
    X = torch.zeros(1, 3, 1, dtype=torch.float64)
    one = np.array([0])
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        T.hard_dtw(X, X, one, one, np.array([3]), np.array([3]), np.array([-1]), 0)


def test_launch_disables_fp_fusion(monkeypatch):
    from triton.backends.nvidia.compiler import CUDAOptions

    from mmalign.warping import _triton_hard as T

    assert "enable_fp_fusion" in CUDAOptions.__dataclass_fields__  # a launch option
    launches = []

    class Recorder:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append((grid, kwargs))

    monkeypatch.setattr(T, "_hard_kernel", Recorder())
    monkeypatch.setattr(T, "check_device", lambda *args: None)   # CPU tensors, no interpreter
    X = torch.zeros(2, 5, 1, dtype=torch.float64)
    T.hard_dtw(X, X, np.array([0, 1, 1]), np.array([1, 0, 1]), np.array([5, 4, 3]),
               np.array([2, 5, 5]), np.array([-1, 0, 2]), 1, programs=2)
    (grid, kwargs), = launches
    assert grid == (2,)
    assert kwargs["enable_fp_fusion"] is False and kwargs["METRIC"] == 1
    assert kwargs["DIRS"] is False and kwargs["BLOCK"] == 16


# --------------------------------------------------------------------------- compiler

# The interpreter runs kernels as Python and accepts what the compiler rejects (e.g. a
# non-constexpr global): compiling every variant for a Hopper GPU (PTX and cubin, with
# the ptxas that ships in triton's wheel) needs no GPU.
def test_kernel_compiles_for_hopper_without_fused_multiply_adds():
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from mmalign.warping import _triton_hard as T

    if T.interpreted():
        pytest.skip("kernel was built by the interpreter in this process")
    kernel = T._hard_kernel
    signature = {name: "constexpr" if name in ("METRIC", "DIRS", "BLOCK")
                 else "*u8" if name == "dirs_ptr"
                 else "*i64" if name in ("ia_ptr", "ib_ptr", "n_ptr", "m_ptr", "radius_ptr")
                 else "*fp64" if name.endswith("_ptr") else "i32" for name in kernel.arg_names}

    def ptx(metric, dirs, fusion):
        source = ASTSource(fn=kernel, signature=signature,
                           constexprs={"METRIC": metric, "DIRS": dirs, "BLOCK": 256})
        compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32),
                                  options={"num_warps": 4, "num_stages": 1,
                                           "enable_fp_fusion": fusion})
        assert compiled.asm["cubin"]
        return compiled.asm["ptx"]

    for metric in T.METRIC_CODES:
        for dirs in (False, True):
            text = ptx(metric, dirs, False)
            assert "bar.sync" in text and "ld.global.cg" in text, (metric, dirs)
            assert "fma.rn.f64" not in text, (metric, dirs)
            assert ("sqrt.rn.f64" in text) == (metric == 1), (metric, dirs)
            assert ("st.global.b8" in text) == dirs, (metric, dirs)
    # the check above can fail: with fusion on, the compiler does contract x * x + acc
    assert "fma.rn.f64" in ptx(0, False, True)


# --------------------------------------------------------------------------- CUDA

@needs_cuda
@pytest.mark.parametrize("options", [{}, {"radius": 0}, {"radius": 5}, {"window": 0.1},
                                     {"metric": "euclidean"}, {"metric": "cityblock"},
                                     {"metric": "cosine"}], ids=str)
def test_triton_cdist_on_cuda_equals_the_cpu_kernels(monkeypatch, options):
    rng = np.random.default_rng(31)
    lengths = [1, 40, 300, 257, 33, 1200, 90, 300, 2]
    X = S.integer_series(rng, lengths, d=3, low=1)
    X[2] += 0.25 * rng.standard_normal(X[2].shape)  # not only integers
    expected = mmalign.cdist_dtw(X, **options)
    monkeypatch.setattr(TB, "DEVICE_KERNEL", "triton")
    np.testing.assert_array_equal(mmalign.cdist_dtw(X, device="cuda", **options), expected)
    Y = S.integer_series(rng, [5, 1100, 64], d=3, low=1)
    np.testing.assert_array_equal(mmalign.cdist_dtw(X, Y, device="cuda", **options),
                                  mmalign.cdist_dtw(X, Y, **options))


@needs_cuda
@pytest.mark.parametrize("options", S.PATH_OPTIONS, ids=str)
def test_triton_paths_on_cuda_equal_dtw_path(monkeypatch, options):
    rng = np.random.default_rng(32)
    B, N, M = 5, 150, 1300
    x = torch.from_numpy(rng.integers(0, 3, (B, N, 2)).astype(np.float64))
    y = torch.from_numpy(rng.integers(0, 3, (B, M, 2)).astype(np.float64))
    lx, ly = torch.tensor([N, 1, 80, 149, 7]), torch.tensor([M, 3, 1, 1200, 90])
    monkeypatch.setattr(TB, "DEVICE_KERNEL", "triton")
    values, paths = TB.batch_dtw(x.cuda(), y.cuda(), x_lengths=lx, y_lengths=ly,
                                 return_paths=True, **options)
    assert values.device.type == "cuda"
    for b in range(B):
        xb, yb = x[b, :lx[b]].numpy(), y[b, :ly[b]].numpy()
        assert values[b].item() == mmalign.dtw(xb, yb, **options)
        np.testing.assert_array_equal(paths[b], mmalign.dtw_path(xb, yb, **options).path())
    # dtw / dtw_path of CUDA tensors
    a, c = x[0].numpy(), y[0, :400].numpy()
    assert mmalign.dtw(x[0].cuda(), y[0, :400].cuda(), **options) == mmalign.dtw(a, c, **options)
    np.testing.assert_array_equal(
        mmalign.dtw_path(x[0].cuda(), y[0, :400].cuda(), **options).path(),
        mmalign.dtw_path(a, c, **options).path())


@needs_cuda
@pytest.mark.parametrize("block, programs", [(32, 3), (1024, None)])
def test_triton_launcher_on_cuda_equals_the_wavefront(block, programs):
    from mmalign.warping import _triton_hard as T

    rng = np.random.default_rng(33)
    X = torch.from_numpy(rng.integers(0, 3, (3, 200, 2)).astype(np.float64)).cuda()
    Y = torch.from_numpy(rng.integers(0, 3, (2, 170, 2)).astype(np.float64)).cuda()
    ia, ib = np.array([0, 1, 2, 0, 2]), np.array([0, 1, 0, 1, 1])
    n, m, radii = np.array([200, 1, 120, 199, 37]), np.array([170, 9, 1, 170, 160]), \
        np.array([-1, 0, 3, 10, -1])
    for metric in T.METRIC_CODES:
        values, dirs = T.hard_dtw(X, Y, ia, ib, n, m, radii, metric, want_dirs=True,
                                  block=block, programs=programs)
        for k in range(len(ia)):
            value, codes = _reference(X, Y, ia[k], ib[k], n[k], m[k], int(radii[k]), metric)
            assert values[k].item() == value.item()
            inside = _band_mask(int(n[k]), int(m[k]), int(radii[k]))
            np.testing.assert_array_equal(dirs[k, :n[k], :m[k]].cpu().numpy()[inside],
                                          codes[0].cpu().numpy()[inside])
