"""Run mmalign's Triton hard-DTW kernel in Triton's CPU interpreter; save inputs and results.

Usage: ``TRITON_INTERPRET=1 python tests/_triton_hard_interpreted.py OUT.pt`` (the
variable must be set before triton is imported).  ``tests/test_triton_hard.py`` runs
this in a subprocess and compares what it saved against the CPU numba kernels and the
torch wavefront in its own process.  Each entry holds the inputs, the options and the
outputs, so the comparisons never rely on this script's own judgement.
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import torch

import mmalign
from mmalign.warping import _triton_hard as T
from mmalign.warping import _wavefront as W
from mmalign.warping import batch as TB

dtw_module = importlib.import_module("mmalign.warping.dtw")

# what the tests compare: the options each case ran with
CDIST_OPTIONS = [{}, {"radius": 0}, {"radius": 3}, {"window": 0.2}, {"metric": "euclidean"},
                 {"metric": "cityblock"}, {"metric": "cityblock", "radius": 3},
                 {"metric": "euclidean", "radius": 0}, {"metric": "cosine"}]
TWO_SET_OPTIONS = [{}, {"metric": "cityblock", "radius": 3}]
PATH_OPTIONS = [{}, {"radius": 0}, {"radius": 3}, {"metric": "euclidean"},
                {"metric": "cityblock", "radius": 3}]
SOLVE_ON_DEVICE_OPTIONS = [{}, {"window": 0.1}, {"radius": 3, "metric": "cityblock"},
                           {"metric": "cosine"}]


def integer_series(rng, lengths, d=2, low=0):
    """Small integers: many exactly tied predecessors, a test of the tie rule."""
    return [rng.integers(low, low + 3, (n, d)).astype(np.float64) for n in lengths]


def main(path: str) -> None:
    # the test module imports this file for its option lists; only main needs the interpreter
    assert os.environ.get("TRITON_INTERPRET") == "1" and T.interpreted(), \
        "set TRITON_INTERPRET=1 before running (before triton is imported)"
    calls = []
    original = T.hard_dtw

    def counted(*args, **kwargs):
        calls.append(args[7])  # the metric code
        return original(*args, **kwargs)

    def refused(*args, **kwargs):
        raise AssertionError("the torch wavefront ran instead of the Triton kernel")

    T.hard_dtw = counted
    W.hard_forward = refused
    TB.DEVICE_KERNEL = "triton"
    rng = np.random.default_rng(11)
    results = {}

    # cdist_dtw(device="cpu"): ragged lengths 1 included, one set and two sets (N != M)
    X = integer_series(rng, [1, 7, 10, 4])
    Y = integer_series(rng, [6, 1, 3])
    Xc = integer_series(rng, [5, 1, 8, 3], low=1)  # no all-zero frames for the cosine
    for options in CDIST_OPTIONS:
        A = Xc if options.get("metric") == "cosine" else X
        results[f"cdist {options}"] = dict(inputs=(A, None), options=options,
                                           outputs=mmalign.cdist_dtw(A, device="cpu", **options))
    for options in TWO_SET_OPTIONS:
        results[f"cdist two sets {options}"] = dict(
            inputs=(X, Y), options=options, outputs=mmalign.cdist_dtw(X, Y, device="cpu",
                                                                      **options))
    Z = [rng.standard_normal((n, 3)) for n in (8, 3, 6)]  # not only integers
    results["cdist float {}"] = dict(inputs=(Z, None), options={},
                                     outputs=mmalign.cdist_dtw(Z, device="cpu"))
    TB.MAX_TRITON_PAIRS = 4  # 6 pairs: two launches
    results["cdist in launches of 4 pairs {}"] = dict(
        inputs=(X, None), options={}, outputs=mmalign.cdist_dtw(X, device="cpu"))
    TB.MAX_TRITON_PAIRS = 2**22

    # batch_dtw with paths (the host backtracks the kernel's direction bytes)
    B_, N, M = 6, 11, 8
    x = torch.from_numpy(rng.integers(0, 3, (B_, N, 2)).astype(np.float64))
    y = torch.from_numpy(rng.integers(0, 3, (B_, M, 2)).astype(np.float64))
    lx = torch.tensor([N, 1, 7, N, 3, 5])
    ly = torch.tensor([M, 4, 1, 2, M, 5])
    for options in PATH_OPTIONS:
        values, paths = TB.batch_dtw(x, y, x_lengths=lx, y_lengths=ly, return_paths=True,
                                     **options)
        results[f"paths {options}"] = dict(inputs=(x, y, lx, ly), options=options,
                                           outputs=(values, paths))
    TB.MAX_CHUNK_BYTES = 2 * (N + 2) * (M + 2) * 8  # launches of at most 2 pairs
    results["paths in chunks {}"] = dict(
        inputs=(x, y, lx, ly), options={},
        outputs=TB.batch_dtw(x, y, x_lengths=lx, y_lengths=ly, return_paths=True))

    # dtw / dtw_path on tensors through solve_on_device (the CUDA route, here on CPU)
    dtw_module._on_one_cuda_device = lambda a, b: (isinstance(a, torch.Tensor)
                                                   and isinstance(b, torch.Tensor))
    a = rng.integers(0, 3, (13, 2)).astype(np.float64) + 1
    b = rng.integers(0, 3, (9, 2)).astype(np.float64) + 1
    ta, tb = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    for options in SOLVE_ON_DEVICE_OPTIONS:
        results[f"solve_on_device {options}"] = dict(
            inputs=(a, b), options=options,
            outputs=(mmalign.dtw(ta, tb, **options), mmalign.dtw_path(ta, tb, **options).path()))

    # the launcher directly: 4 rows per chunk (diagonals up to 11 rows: several chunks),
    # 3 programs for 7 pairs (buffers reused across pairs), per-pair radii, strided X
    P, Q, N, M = 4, 3, 11, 13
    Xl = torch.from_numpy(rng.integers(0, 3, (P, N, 3)).astype(np.float64))
    Xl = Xl.transpose(1, 2).contiguous().transpose(1, 2)  # strides (N d, 1, N)
    Yl = torch.from_numpy(rng.integers(0, 3, (Q, M, 3)).astype(np.float64))
    ia = np.array([0, 1, 2, 3, 0, 1, 2])
    ib = np.array([0, 1, 2, 0, 1, 2, 0])
    n = np.array([11, 1, 9, 11, 5, 10, 2])
    m = np.array([13, 6, 1, 9, 13, 3, 13])
    radii = np.array([-1, -1, 2, 0, 3, -1, 1])
    launch = {}
    for metric in T.METRIC_CODES:
        launch[metric] = T.hard_dtw(Xl, Yl, ia, ib, n, m, radii, metric, want_dirs=True,
                                    block=4, programs=3)
    # without directions: the same values (and no direction tensor)
    launch["no dirs"] = T.hard_dtw(Xl, Yl, ia, ib, n, m, radii, T.METRIC_CODES[0], block=4,
                                   programs=2)
    results["launcher"] = dict(inputs=(Xl, Yl, ia, ib, n, m, radii), outputs=launch)
    results["kernel calls"] = calls
    torch.save(results, path)


if __name__ == "__main__":
    main(sys.argv[1])
