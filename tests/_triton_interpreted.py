"""Run mmalign's Triton soft-DTW kernels in Triton's CPU interpreter; save inputs and results.

Usage: ``TRITON_INTERPRET=1 python tests/_triton_interpreted.py OUT.pt`` (the variable
must be set before triton is imported).  ``tests/test_triton_soft.py`` runs this in
a subprocess and compares what it saved against the numba and torch backends in its
own process.  Each entry of the saved dict holds the inputs, the options and the
outputs, so the comparisons never rely on this script's own judgement.
"""

from __future__ import annotations

import os
import sys

import torch

import mmalign
from mmalign.warping import _triton_soft as T


def ragged(seed: int, B: int = 5, N: int = 14, M: int = 9, d: int = 2,
           dtype=torch.float64, scale: float = 1.0):
    """x (B, N, d), y (B, M, d) padded beyond the longest lengths, lengths 1 included."""
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(B, N, d, dtype=torch.float64, generator=g)
    y = scale * torch.randn(B, M, d, dtype=torch.float64, generator=g)
    lx = torch.tensor([N - 2, N // 2, N - 2, 1, N - 5][:B])
    ly = torch.tensor([M, M, 4, M // 3, 1][:B])
    return x.to(dtype), y.to(dtype), lx, ly


def loss_case(x, y, lx, ly, **options):
    """Value and gradients of SoftDTWLoss(backend='triton', reduction='none', **options)."""
    xd = x.clone().requires_grad_()
    yd = y.clone().requires_grad_()
    value = mmalign.SoftDTWLoss(backend="triton", reduction="none", **options)(xd, yd, lx, ly)
    value.sum().backward()
    return dict(inputs=(x, y, lx, ly), options=options,
                outputs=(value.detach(), xd.grad, yd.grad))


def main(path: str) -> None:
    assert os.environ.get("TRITON_INTERPRET") == "1" and T.interpreted(), \
        "set TRITON_INTERPRET=1 before running"
    results = {}
    # float64 against numba, both stores; gamma, normalize, band (unequal lengths)
    for gamma, normalize, radius in ((1e-3, False, None), (1.0, True, 3), (100.0, False, 0),
                                     (0.3, False, 3)):
        problem = ragged(int(gamma * 1000) + 7 * (radius or 0))
        for checkpoint in (False, True):
            results[f"float64 gamma={gamma} normalize={normalize} radius={radius} "
                    f"checkpoint={checkpoint}"] = loss_case(
                *problem, gamma=gamma, normalize=normalize, radius=radius,
                checkpoint=checkpoint)
    results["float32 gamma=1.0 radius=None"] = loss_case(*ragged(5, dtype=torch.float32),
                                                         gamma=1.0)
    # costs ~1e6: no NaN / inf for extreme gamma
    for gamma in (1e-3, 1.0, 100.0):
        results[f"large costs gamma={gamma}"] = loss_case(
            *ragged(9, B=3, N=8, M=6, scale=1e3), gamma=gamma)

    # the launchers directly: chunks of 4 rows (the chunk loop runs several times per
    # diagonal), every store, several checkpoint spacings, non-contiguous x
    x, y, lx, ly = ragged(13, B=3, N=11, M=14, d=3)
    x = x.transpose(1, 2).contiguous().transpose(1, 2)  # strides (N d, 1, N)
    launch = {}
    for radius in (-1, 2):
        values, R = T.soft_forward(x, y, lx, ly, 0.7, radius, store="full", block=4)
        gx, gy = T.soft_backward(x, y, R, lx, ly, 0.7, radius, block=4)
        launch[(radius, "full")] = (values, gx, gy)
        launch[(radius, "none")] = (T.soft_forward(x, y, lx, ly, 0.7, radius, store="none",
                                                   block=4)[0],)
        for segment in (1, 2, 5):
            values, saved = T.soft_forward(x, y, lx, ly, 0.7, radius, store="checkpoint",
                                           segment=segment, block=4)
            assert isinstance(saved, T.TritonCheckpoints)
            gx, gy = T.soft_backward(x, y, saved, lx, ly, 0.7, radius, block=4)
            launch[(radius, f"checkpoint {segment}")] = (values, gx, gy)
    results["launchers"] = dict(inputs=(x, y, lx, ly), gamma=0.7, outputs=launch)
    torch.save(results, path)


if __name__ == "__main__":
    main(sys.argv[1])
