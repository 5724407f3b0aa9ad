"""Numba kernels of soft-DTW (Cuturi & Blondel 2017) for ragged batches (private).

Conventions shared with the torch wavefront in ``_wavefront.py``:

* ``D`` is ``(B, N, M)``, sample b valid on ``[:n_b, :m_b]``.
* ``R`` is ``(B, N + 2, M + 2)``, 1-indexed: ``R[b, i, j]`` is the soft accumulated
  cost of the prefix pair ending at cell ``(i - 1, j - 1)``; ``R[b, 0, 0] = 0`` and
  every cell that is unreachable (outside the lengths or the band) holds ``+inf``.
* The band is the length-widened Sakoe–Chiba band of ``mmalign.warping.windows``
  (``radius < 0``: no band).
* ``E`` (``(B, N, M)``) is the expected alignment ``dR[n, m] / dD``, zero outside.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.inf


@njit(cache=True, nogil=True, inline="always")
def band_limits(n, m, radius):
    """(below, above): cell (i, j) is in the band iff -below <= j - i <= above."""
    if radius < 0:
        return n + m, n + m
    return radius + max(0, n - m), radius + max(0, m - n)


@njit(cache=True, nogil=True, inline="always")
def softmin3(a, b, c, gamma):
    """-gamma * log(exp(-a / gamma) + exp(-b / gamma) + exp(-c / gamma)), stably."""
    lowest = min(a, min(b, c))
    if lowest == INF:
        return INF
    total = np.exp((lowest - a) / gamma) + np.exp((lowest - b) / gamma) + np.exp(
        (lowest - c) / gamma)
    return lowest - gamma * np.log(total)


@njit(cache=True, nogil=True)
def soft_forward_one(D, n, m, gamma, radius, R):
    """Fill R (N + 2, M + 2) for one sample; returns R[n, m]."""
    below, above = band_limits(n, m, radius)
    R[:, :] = INF
    R[0, 0] = 0.0
    for i in range(1, n + 1):
        j_lo = max(1, i - below)
        j_hi = min(m, i + above)
        for j in range(j_lo, j_hi + 1):
            R[i, j] = D[i - 1, j - 1] + softmin3(R[i - 1, j - 1], R[i - 1, j], R[i, j - 1], gamma)
    return R[n, m]


@njit(cache=True, nogil=True)
def soft_backward_one(D, R, n, m, gamma, radius, E):
    """Expected alignment E (N, M) of one sample from its R; E must arrive zeroed."""
    below, above = band_limits(n, m, radius)
    N2, M2 = R.shape
    # G holds E 1-indexed with a zero border: G[n + 1, m + 1] seeds the recursion
    G = np.zeros((n + 2, m + 2))
    G[n + 1, m + 1] = 1.0
    end = R[n, m]
    for i in range(n, 0, -1):
        j_lo = max(1, i - below)
        j_hi = min(m, i + above)
        for j in range(j_hi, j_lo - 1, -1):
            r = R[i, j]
            if r == INF:
                continue
            total = 0.0
            # successors: (i + 1, j), (i, j + 1), (i + 1, j + 1); the virtual cell
            # (n + 1, m + 1) carries R[n, m] and a zero cost
            if i < n and G[i + 1, j] != 0.0:
                total += G[i + 1, j] * np.exp((R[i + 1, j] - r - D[i, j - 1]) / gamma)
            if j < m and G[i, j + 1] != 0.0:
                total += G[i, j + 1] * np.exp((R[i, j + 1] - r - D[i - 1, j]) / gamma)
            if i < n and j < m:
                if G[i + 1, j + 1] != 0.0:
                    total += G[i + 1, j + 1] * np.exp((R[i + 1, j + 1] - r - D[i, j]) / gamma)
            elif i == n and j == m:
                total += G[n + 1, m + 1] * np.exp((end - r) / gamma)
            G[i, j] = total
            E[i - 1, j - 1] = total


@njit(cache=True, parallel=True)
def soft_forward(D, lx, ly, gamma, radius, R, out):
    """Batched forward: D (B, N, M), R (B, N + 2, M + 2) filled, out (B,) = R[b, n_b, m_b]."""
    for b in prange(D.shape[0]):
        out[b] = soft_forward_one(D[b], lx[b], ly[b], gamma, radius, R[b])


@njit(cache=True, parallel=True)
def soft_backward(D, R, lx, ly, gamma, radius, E):
    """Batched backward: E (B, N, M) zero-initialised, filled with the expected alignments."""
    for b in prange(D.shape[0]):
        soft_backward_one(D[b], R[b], lx[b], ly[b], gamma, radius, E[b])


@njit(cache=True, parallel=True)
def sqeuclidean_batch(x, y, lx, ly, D):
    """D[b, i, j] = |x[b, i] - y[b, j]|^2 on each sample's valid block, 0 elsewhere."""
    d = x.shape[2]
    for b in prange(x.shape[0]):
        D[b, :, :] = 0.0
        for i in range(lx[b]):
            for j in range(ly[b]):
                c = 0.0
                for f in range(d):
                    diff = x[b, i, f] - y[b, j, f]
                    c += diff * diff
                D[b, i, j] = c
