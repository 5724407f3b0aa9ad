"""Anti-diagonal wavefront DTW and soft-DTW in torch ops, for any device (private).

Every cell of an anti-diagonal depends only on the two previous diagonals, so one
diagonal of a whole batch is a handful of tensor operations: no per-sample host
loop and no length cap.  Ragged batches and the length-widened Sakoe–Chiba band
are handled by masks; ``R`` is 1-indexed (``R[b, 0, 0] = 0``) with ``+inf`` for
unreachable cells.  For soft-DTW, ``R`` (``B x (N + 2) x (M + 2)`` values) is the
only tensor of that size: local costs are recomputed per diagonal and the
backward keeps three diagonals of the expected alignment.
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


def _diagonal_costs(x, y, i, j):
    """Squared Euclidean costs (B, L) of cells (i, j) (1-indexed) of one diagonal."""
    return ((x[:, i - 1] - y[:, j - 1]) ** 2).sum(dim=-1)


def soft_forward(x: torch.Tensor, y: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor,
                 gamma: float, radius: int):
    """R (B, N + 2, M + 2) and the values R[b, n_b, m_b] (B,) for x (B, N, d), y (B, M, d).

    Local costs are computed diagonal by diagonal and not kept: R is the only
    ``B x N x M`` tensor.
    """
    B, N, M = x.shape[0], x.shape[1], y.shape[1]
    R = torch.full((B, N + 2, M + 2), INF, dtype=x.dtype, device=x.device)
    R[:, 0, 0] = 0.0
    for k in range(2, N + M + 1):
        i, j = _diagonal(k, N, M, x.device)
        prev = torch.stack((R[:, i - 1, j - 1], R[:, i - 1, j], R[:, i, j - 1]))
        lowest = prev.min(dim=0).values
        safe = torch.where(torch.isinf(lowest), torch.zeros_like(lowest), lowest)
        soft = safe - gamma * torch.log(torch.exp((safe - prev) / gamma).sum(dim=0))
        value = _diagonal_costs(x, y, i, j) + torch.where(torch.isinf(lowest), lowest, soft)
        R[:, i, j] = torch.where(_valid(i, j, lx, ly, radius), value, INF)
    batch = torch.arange(B, device=x.device)
    return R, R[batch, lx, ly]


def soft_backward(x: torch.Tensor, y: torch.Tensor, R: torch.Tensor, lx: torch.Tensor,
                  ly: torch.Tensor, gamma: float, radius: int, keep_alignment: bool = False):
    """Gradients of the values with respect to x and y from the forward's R.

    The expected alignment E is swept diagonal by diagonal in three row-indexed
    buffers and folded into the gradients as it goes
    (``dL/dx_i = 2 sum_j E_ij (x_i - y_j)``); with ``keep_alignment`` it is also
    returned as a (B, N, M) tensor.
    """
    B, N, M = x.shape[0], x.shape[1], y.shape[1]
    grad_x = torch.zeros_like(x)
    grad_y = torch.zeros_like(y)
    E = torch.zeros((B, N, M), dtype=x.dtype, device=x.device) if keep_alignment else None
    # successors of diagonal k: (i + 1, j), (i, j + 1) on k + 1; (i + 1, j + 1) on k + 2
    e1 = torch.zeros((B, N + 2), dtype=x.dtype, device=x.device)
    e2 = torch.zeros_like(e1)
    c1 = torch.zeros_like(e1)
    c2 = torch.zeros_like(e1)
    for k in range(N + M, 1, -1):
        i, j = _diagonal(k, N, M, x.device)
        valid = _valid(i, j, lx, ly, radius)
        r = R[:, i, j]
        cost = _diagonal_costs(x, y, i, j)
        e = (_term(e1[:, i + 1], R[:, i + 1, j], r, c1[:, i + 1], gamma)
             + _term(e1[:, i], R[:, i, j + 1], r, c1[:, i], gamma)
             + _term(e2[:, i + 1], R[:, i + 1, j + 1], r, c2[:, i + 1], gamma))
        is_end = (i[None, :] == lx[:, None]) & (j[None, :] == ly[:, None])
        e = torch.where(is_end, torch.ones_like(e), e)  # the seed: dR[n, m] / dR[n, m]
        e = torch.where(valid & torch.isfinite(r), e, torch.zeros_like(e))
        e_new = torch.zeros_like(e1)
        c_new = torch.zeros_like(c1)
        e_new[:, i] = e
        c_new[:, i] = cost
        e2, e1, c2, c1 = e1, e_new, c1, c_new
        if keep_alignment:
            E[:, i - 1, j - 1] = e
        g = 2.0 * e[..., None] * (x[:, i - 1] - y[:, j - 1])  # (B, L, d)
        grad_x[:, i[0] - 1:i[-1]] += g
        grad_y[:, j[-1] - 1:j[0]] -= g.flip(1)  # j decreases along the diagonal
    return grad_x, grad_y, E


def _term(e_next, r_next, r, c_next, gamma):
    """E_next * exp((R_next - R - C_next) / gamma), 0 where the successor carries no weight."""
    safe = torch.where(e_next > 0, r_next - r - c_next, torch.zeros_like(r))
    return torch.where(e_next > 0, e_next * torch.exp(safe / gamma), torch.zeros_like(r))


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
