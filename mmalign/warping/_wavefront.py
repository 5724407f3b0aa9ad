"""Anti-diagonal wavefront DTW and soft-DTW in torch ops, for any device (private).

Every cell of an anti-diagonal depends only on the two previous diagonals, so one
diagonal of a whole batch is a handful of tensor operations: no per-sample host
loop and no length cap.  Ragged batches and the length-widened Sakoe–Chiba band
are handled by masks; ``R`` is 1-indexed (``R[b, 0, 0] = 0``) with ``+inf`` for
unreachable cells.

Soft-DTW sweeps **row-indexed diagonal buffers**: diagonal ``k = i + j`` of a batch
is a ``(B, N + 2)`` tensor whose entry ``i`` is ``R[b, i, k - i]``, so the three
predecessors of a diagonal are contiguous slices of the two previous buffers.
Local costs are recomputed from ``x`` and ``y`` per diagonal (never an ``N x M``
cost tensor).  Between forward and backward the sweep keeps, by choice of
``store``:

* ``"full"``: ``R`` (``B x (N + 2) x (M + 2)`` values).  The forward writes
  straight into R through strided anti-diagonal views, the backward reads them:
  no copies;
* ``"checkpoint"``: every ``s``-th pair of consecutive diagonals, ``s =
  ceil(sqrt(2 K))`` for the ``K = max_b(lx_b + ly_b) - 1 <= N + M - 1`` diagonals
  swept.  The backward recomputes one segment of ``s`` diagonals at a time from
  its checkpoint, then sweeps the expected alignment back over it.  Peak values
  held: ``B (N + 2) (2 ceil(K / s) + s + 2)`` (checkpoints, one segment, two
  diagonals of the next segment) ``~ 2 sqrt(2 K) B (N + 2)``, i.e.
  ``O(B N sqrt(N + M))`` instead of ``O(B N M)`` — 16x less than R at
  4096 x 4096 — for one extra forward sweep;
* ``"none"``: nothing (no backward).

Both add about a dozen ``(B, N + 2)`` work buffers, the ``(B, L, d)`` temporaries
of one diagonal and the gradients.  Both stores give bitwise the same values and
gradients: the backward reads the same row values, which the checkpointed path
recomputes with the same operations.
"""

from __future__ import annotations

import math

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


class _Grid:
    """Geometry of one padded batch: anti-diagonal bounds, masks, local costs.

    x (B, N, d), y (B, M, d); lx, ly (B,) int64 lengths on x's device; radius -1
    (no band) or >= 0.  ``ends`` (host ints) are the diagonals ``lx_b + ly_b`` of
    the cells whose R values are the results; the sweeps stop at ``k_end``, the
    largest of them.
    """

    def __init__(self, x, y, lx, ly, radius: int):
        self.x, self.y = x, y
        self.B, self.N, self.M = x.shape[0], x.shape[1], y.shape[1]
        self.lx, self.ly = lx[:, None], ly[:, None]
        self.radius = radius
        if radius >= 0:
            self.below = -(radius + torch.clamp(lx - ly, min=0))[:, None]
            self.above = (radius + torch.clamp(ly - lx, min=0))[:, None]
        self.rows = torch.arange(self.N + 2, device=x.device)
        self.ends = (lx + ly).tolist()  # one host synchronisation per call
        self.k_end = max(self.ends)
        samples: dict[int, list[int]] = {}
        for b, k in enumerate(self.ends):
            samples.setdefault(k, []).append(b)
        # the samples whose result lies on diagonal k, as index tensors
        self.at_end = {k: torch.tensor(bs, device=x.device) for k, bs in samples.items()}

    def buffer(self, fill: float = INF) -> torch.Tensor:
        """A (B, N + 2) row-indexed diagonal buffer."""
        return torch.full((self.B, self.N + 2), fill, dtype=self.x.dtype, device=self.x.device)

    def cells(self, k: int):
        """Row bounds lo, hi (host ints) and rows i, columns j (L,) of diagonal k."""
        lo = max(1, k - self.M)
        hi = min(self.N, k - 1)
        i = self.rows[lo:hi + 1]
        return lo, hi, i, k - i

    def valid(self, i, j):
        """(B, L) mask of the cells inside each sample's lengths and band."""
        inside = (i[None, :] <= self.lx) & (j[None, :] <= self.ly)
        if self.radius >= 0:
            offset = (j - i)[None, :]
            inside &= (offset >= self.below) & (offset <= self.above)
        return inside

    def costs(self, k: int, lo: int, hi: int):
        """Squared Euclidean costs (B, L) of diagonal k, rows lo..hi (1-indexed)."""
        return ((self.x[:, lo - 1:hi] - self.y[:, k - hi - 1:k - lo].flip(1)) ** 2).sum(dim=-1)


def _soft_step(g: _Grid, k: int, d2, d1, out, gamma: float):
    """Diagonal k of R into the row buffer ``out`` from diagonals k - 2 (d2), k - 1 (d1).

    Writes rows lo..hi and the +inf borders lo - 1 and hi + 1 (cells outside the
    grid or on its 0-th row / column): every row a later diagonal reads.
    """
    lo, hi, i, j = g.cells(k)
    # predecessors (i - 1, j - 1), (i - 1, j), (i, j - 1)
    prev = torch.stack((d2[:, lo - 1:hi], d1[:, lo - 1:hi], d1[:, lo:hi + 1]))
    lowest = prev.min(dim=0).values
    unreachable = torch.isinf(lowest)
    safe = torch.where(unreachable, torch.zeros_like(lowest), lowest)
    soft = safe - gamma * torch.log(torch.exp((safe - prev) / gamma).sum(dim=0))
    value = g.costs(k, lo, hi) + torch.where(unreachable, lowest, soft)
    out[:, lo - 1] = INF
    out[:, hi + 1] = INF
    out[:, lo:hi + 1] = torch.where(g.valid(i, j), value, INF)


def default_segment(n_diagonals: int) -> int:
    """Checkpoint spacing s minimising ``2 ceil(K / s) + s`` stored diagonals: sqrt(2 K)."""
    return max(1, math.ceil(math.sqrt(2 * n_diagonals)))


def soft_memory(B: int, N: int, M: int, store: str, segment: int | None = None) -> int:
    """Values of R held between forward and backward and at the backward's peak, by store.

    ``"full"``: R, ``B (N + 2) (M + 2)``; ``"checkpoint"``: ``B (N + 2)
    (2 ceil(K / s) + s + 2)`` with ``K = N + M - 1`` diagonals, ``s`` the segment
    (default :func:`default_segment`).  Both add about ``12 B (N + 2)`` work values
    (row buffers) and the gradients.
    """
    if store == "full":
        return B * (N + 2) * (M + 2)
    K = max(N + M - 1, 1)
    s = segment or default_segment(K)
    return B * (N + 2) * (2 * math.ceil(K / s) + s + 2)


class SoftCheckpoints:
    """Pairs of consecutive R diagonals saved by a checkpointed forward (private).

    ``pairs[c]`` (2, B, N + 2) holds diagonals ``start_c - 2`` and ``start_c - 1`` of
    segment c, ``start_c = 2 + c * segment``.
    """

    def __init__(self, pairs: torch.Tensor, segment: int):
        self.pairs = pairs
        self.segment = segment


def soft_forward(x: torch.Tensor, y: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor,
                 gamma: float, radius: int, store: str = "full", segment: int | None = None):
    """Soft-DTW values (B,) of x (B, N, d) against y (B, M, d), and what the backward needs.

    Parameters
    ----------
    lx, ly : (B,) int64 lengths (``1 <= lx <= N``), on x's device.
    gamma : float > 0
    radius : int, -1 for no band
    store : {"full", "checkpoint", "none"}
        What to keep for :func:`soft_backward` (see the module docstring).
    segment : int > 0 or None
        Checkpoint spacing in diagonals; default ``ceil(sqrt(2 (N + M - 1)))``.

    Returns
    -------
    values : (B,) tensor, ``R[b, lx_b, ly_b]``
    saved : R (B, N + 2, M + 2) for ``"full"``, :class:`SoftCheckpoints` for
        ``"checkpoint"``, None for ``"none"``.
    """
    if store not in ("full", "checkpoint", "none"):
        raise ValueError(f"store must be 'full', 'checkpoint' or 'none', got {store!r}")
    g = _Grid(x, y, lx, ly, radius)
    B, N, M = g.B, g.N, g.M
    values = torch.empty(B, dtype=x.dtype, device=x.device)
    R = pairs = None
    if store == "full":
        R = torch.full((B, N + 2, M + 2), INF, dtype=x.dtype, device=x.device)
        R[:, 0, 0] = 0.0
        d2, d1, out = _diagonal_view(R, 0), _diagonal_view(R, 1), None
    else:  # three rotating row buffers
        d2, d1, out = g.buffer(), g.buffer(), g.buffer()
        d2[:, 0] = 0.0  # diagonal 0: R[0, 0] = 0; diagonal 1 is all +inf
    if store == "checkpoint":
        segment = segment or default_segment(g.k_end - 1)
        pairs = torch.empty((math.ceil((g.k_end - 1) / segment), 2, B, N + 2), dtype=x.dtype,
                            device=x.device)
    for k in range(2, g.k_end + 1):
        if pairs is not None and (k - 2) % segment == 0:
            pairs[(k - 2) // segment, 0] = d2
            pairs[(k - 2) // segment, 1] = d1
        if R is not None:
            out = _diagonal_view(R, k)  # the sweep writes into R itself
        _soft_step(g, k, d2, d1, out, gamma)
        if k in g.at_end:
            b = g.at_end[k]
            values[b] = out[b, g.lx[b, 0]]
        d2, d1, out = d1, out, d2
    if store == "full":
        return values, R
    if store == "checkpoint":
        return values, SoftCheckpoints(pairs, segment)
    return values, None


def _diagonal_view(R: torch.Tensor, k: int) -> torch.Tensor:
    """Anti-diagonal k of a contiguous R (B, N + 2, M + 2) as a (B, N + 2) row-indexed view.

    Entry i is ``R[b, i, k - i]`` for ``0 <= k - i <= M + 1``; the other entries
    alias unrelated cells of R (inside its storage) and are never used.
    """
    B, rows, cols = R.shape
    return R.as_strided((B, rows), (R.stride(0), cols - 1), R.storage_offset() + k)


class _FullRows:
    """Row-indexed views of R's diagonals in the full R (B, N + 2, M + 2): no copies."""

    def __init__(self, g: _Grid, R: torch.Tensor):
        self.g, self.R = g, R
        self.past = g.buffer()  # diagonals beyond k_end: never weighted

    def __call__(self, k: int) -> torch.Tensor:
        return self.past if k > self.g.k_end else _diagonal_view(self.R, k)


class _RecomputedRows:
    """Row buffers of R's diagonals recomputed segment by segment from checkpoints.

    Serves diagonals in decreasing order (k, then k + 1 and k + 2): when k falls
    before the current segment, the first two diagonals of the current segment
    move to ``tail`` and the segment of k is recomputed from its checkpoint into
    ``seg`` (segment x B x (N + 2) values).
    """

    def __init__(self, g: _Grid, saved: SoftCheckpoints, gamma: float):
        self.g, self.saved, self.gamma = g, saved, gamma
        s = saved.segment
        self.seg = torch.empty((s, g.B, g.N + 2), dtype=g.x.dtype, device=g.x.device)
        self.tail = torch.empty((2, g.B, g.N + 2), dtype=g.x.dtype, device=g.x.device)
        self.past = g.buffer()
        self.start = None  # first diagonal of the segment in seg
        self.stop = g.k_end + 1  # one past its last diagonal

    def __call__(self, k: int) -> torch.Tensor:
        if k > self.g.k_end:
            return self.past
        if self.start is None or k < self.start:
            self._recompute(k)
        if k < self.stop:
            return self.seg[k - self.start]
        return self.tail[k - self.stop]

    def _recompute(self, k: int) -> None:
        s = self.saved.segment
        if self.start is not None:  # keep diagonals start and start + 1 for the successors
            self.tail[1] = self(self.start + 1)  # seg[1], or tail[0] for a 1-diagonal segment
            self.tail[0] = self.seg[0]
            self.stop = self.start
        c = (k - 2) // s
        self.start = 2 + c * s
        d2, d1 = self.saved.pairs[c, 0], self.saved.pairs[c, 1]
        for t, kk in enumerate(range(self.start, self.stop)):
            _soft_step(self.g, kk, d2, d1, self.seg[t], self.gamma)
            d2, d1 = d1, self.seg[t]


def soft_backward(x: torch.Tensor, y: torch.Tensor, saved, lx: torch.Tensor,
                  ly: torch.Tensor, gamma: float, radius: int, keep_alignment: bool = False):
    """Gradients of the values with respect to x and y from what the forward kept.

    Parameters
    ----------
    x, y, lx, ly, gamma, radius : as for :func:`soft_forward`.
    saved : R (B, N + 2, M + 2) or :class:`SoftCheckpoints` from :func:`soft_forward`.
    keep_alignment : bool
        Also return the expected alignment E as a (B, N, M) tensor.

    Returns
    -------
    grad_x : (B, N, d), grad_y : (B, M, d), E : (B, N, M) or None

    The expected alignment is swept diagonal by diagonal in three row-indexed
    buffers and folded into the gradients as it goes
    (``dL/dx_i = 2 sum_j E_ij (x_i - y_j)``).
    """
    g = _Grid(x, y, lx, ly, radius)
    B, N, M = g.B, g.N, g.M
    if isinstance(saved, SoftCheckpoints):
        diagonal = _RecomputedRows(g, saved, gamma)
    else:
        diagonal = _FullRows(g, saved)
    grad_x = torch.zeros_like(x)
    grad_y = torch.zeros_like(y)
    E = torch.zeros((B, N, M), dtype=x.dtype, device=x.device) if keep_alignment else None
    # E and costs of diagonals k + 1 (e1, c1) and k + 2 (e2, c2), and a free buffer
    e2, e1, e_new = g.buffer(0.0), g.buffer(0.0), g.buffer(0.0)
    c2, c1, c_new = g.buffer(0.0), g.buffer(0.0), g.buffer(0.0)
    for k in range(g.k_end, 1, -1):
        lo, hi, i, j = g.cells(k)
        r = diagonal(k)[:, lo:hi + 1]
        r1, r2 = diagonal(k + 1), diagonal(k + 2)
        cost = g.costs(k, lo, hi)
        # successors (i + 1, j), (i, j + 1) on diagonal k + 1; (i + 1, j + 1) on k + 2
        e = (_term(e1[:, lo + 1:hi + 2], r1[:, lo + 1:hi + 2], r, c1[:, lo + 1:hi + 2], gamma)
             + _term(e1[:, lo:hi + 1], r1[:, lo:hi + 1], r, c1[:, lo:hi + 1], gamma)
             + _term(e2[:, lo + 1:hi + 2], r2[:, lo + 1:hi + 2], r, c2[:, lo + 1:hi + 2], gamma))
        if k in g.at_end:  # the seed: dR[n, m] / dR[n, m] = 1
            is_end = (i[None, :] == g.lx) & (j[None, :] == g.ly)
            e = torch.where(is_end, torch.ones_like(e), e)
        e = torch.where(g.valid(i, j) & torch.isfinite(r), e, torch.zeros_like(e))
        e_new[:, lo - 1] = 0.0
        e_new[:, hi + 1] = 0.0
        e_new[:, lo:hi + 1] = e
        c_new[:, lo:hi + 1] = cost
        e2, e1, e_new = e1, e_new, e2
        c2, c1, c_new = c1, c_new, c2
        if keep_alignment:
            E[:, i - 1, j - 1] = e
        grad = 2.0 * e[..., None] * (x[:, lo - 1:hi] - y[:, k - hi - 1:k - lo].flip(1))
        grad_x[:, lo - 1:hi] += grad
        grad_y[:, k - hi - 1:k - lo] -= grad.flip(1)  # j decreases along the diagonal
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
