"""Anti-diagonal wavefront DTW and soft-DTW in torch ops, for any device (private).

Every cell of an anti-diagonal depends only on the two previous diagonals, so one
diagonal of a whole batch is a handful of tensor operations: no per-sample host
loop and no length cap.  Ragged batches and the length-widened Sakoe–Chiba band
are handled by masks; conventions (1-indexed ``R``, ``+inf`` for unreachable
cells) are those of ``_soft_kernels.py``.  ``R`` is kept whole,
``B x (N + 2) x (M + 2)`` values, because the backward pass reads it.
"""

from __future__ import annotations

import torch

INF = float("inf")


def _diagonal(k: int, N: int, M: int, device):
    """Rows i (1-indexed) of anti-diagonal i + j = k inside the N x M grid."""
    lo = max(1, k - M)
    hi = min(N, k - 1)
    i = torch.arange(lo, hi + 1, device=device)
    return i, k - i


def _valid(i, j, lx, ly, radius):
    """(B, L) mask of cells (i, j) inside each sample's lengths and band."""
    inside = (i[None, :] <= lx[:, None]) & (j[None, :] <= ly[:, None])
    if radius >= 0:
        below = radius + torch.clamp(lx - ly, min=0)
        above = radius + torch.clamp(ly - lx, min=0)
        offset = (j - i)[None, :]
        inside &= (offset >= -below[:, None]) & (offset <= above[:, None])
    return inside


def soft_forward(D: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor, gamma: float,
                 radius: int):
    """R (B, N + 2, M + 2) and the values R[b, n_b, m_b] (B,)."""
    B, N, M = D.shape
    R = torch.full((B, N + 2, M + 2), INF, dtype=D.dtype, device=D.device)
    R[:, 0, 0] = 0.0
    for k in range(2, N + M + 1):
        i, j = _diagonal(k, N, M, D.device)
        prev = torch.stack((R[:, i - 1, j - 1], R[:, i - 1, j], R[:, i, j - 1]))
        lowest = prev.min(dim=0).values
        safe = torch.where(torch.isinf(lowest), torch.zeros_like(lowest), lowest)
        soft = safe - gamma * torch.log(torch.exp((safe - prev) / gamma).sum(dim=0))
        value = D[:, i - 1, j - 1] + torch.where(torch.isinf(lowest), lowest, soft)
        R[:, i, j] = torch.where(_valid(i, j, lx, ly, radius), value, INF)
    batch = torch.arange(B, device=D.device)
    return R, R[batch, lx, ly]


def soft_backward(D: torch.Tensor, R: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor,
                  gamma: float, radius: int) -> torch.Tensor:
    """Expected alignments E (B, N, M) from the forward's R."""
    B, N, M = D.shape
    batch = torch.arange(B, device=D.device)
    # border conventions of Cuturi & Blondel: unreachable cells -inf, zero costs
    # outside, and a virtual end cell (n + 1, m + 1) carrying R[n, m]
    Rb = torch.where(torch.isinf(R), torch.full_like(R, -INF), R)
    Rb[batch, lx + 1, ly + 1] = R[batch, lx, ly]
    Dp = torch.zeros((B, N + 2, M + 2), dtype=D.dtype, device=D.device)
    Dp[:, 1:N + 1, 1:M + 1] = D
    G = torch.zeros_like(Rb)
    G[batch, lx + 1, ly + 1] = 1.0
    for k in range(N + M, 1, -1):
        i, j = _diagonal(k, N, M, D.device)
        r = Rb[:, i, j]
        # the seed cell (n + 1, m + 1) may lie inside the grid: only valid cells update
        reachable = torch.isfinite(r) & _valid(i, j, lx, ly, radius)
        r = torch.where(reachable, r, torch.zeros_like(r))
        a = torch.exp((Rb[:, i + 1, j] - r - Dp[:, i + 1, j]) / gamma)
        b = torch.exp((Rb[:, i, j + 1] - r - Dp[:, i, j + 1]) / gamma)
        c = torch.exp((Rb[:, i + 1, j + 1] - r - Dp[:, i + 1, j + 1]) / gamma)
        total = G[:, i + 1, j] * a + G[:, i, j + 1] * b + G[:, i + 1, j + 1] * c
        G[:, i, j] = torch.where(reachable, total, G[:, i, j])
    G[batch, lx + 1, ly + 1] = 0.0  # the seed is no cell of the sample
    return G[:, 1:N + 1, 1:M + 1]


def hard_forward(D: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor, radius: int,
                 keep_directions: bool):
    """DTW (symmetric1) accumulated costs (B,) and, on request, direction codes (B, N, M).

    Codes: 0 from (i - 1, j - 1), 1 from (i - 1, j), 2 from (i, j - 1); ties prefer
    that order, as the CPU kernels do.
    """
    B, N, M = D.shape
    R = torch.full((B, N + 2, M + 2), INF, dtype=D.dtype, device=D.device)
    R[:, 0, 0] = 0.0
    dirs = torch.zeros((B, N, M), dtype=torch.uint8, device=D.device) if keep_directions \
        else None
    for k in range(2, N + M + 1):
        i, j = _diagonal(k, N, M, D.device)
        prev = torch.stack((R[:, i - 1, j - 1], R[:, i - 1, j], R[:, i, j - 1]))
        best, code = prev.min(dim=0)  # min returns the first index among equal values
        value = D[:, i - 1, j - 1] + best
        R[:, i, j] = torch.where(_valid(i, j, lx, ly, radius), value, INF)
        if keep_directions:
            dirs[:, i - 1, j - 1] = code.to(torch.uint8)
    batch = torch.arange(B, device=D.device)
    return R[batch, lx, ly], dirs
