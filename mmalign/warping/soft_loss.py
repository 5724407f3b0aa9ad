"""``SoftDTWLoss``: soft-DTW as a torch loss for ragged batches, on CPU and CUDA."""

from __future__ import annotations

import numba
import numpy as np
import torch

from ..utils.validation import check_bool, check_choice, check_int
from . import _extremes as ext
from . import _soft_kernels as S
from . import _wavefront as W
from ._threads import keep_torch_threads
from .soft import check_gamma
from .windows import band_radius


class _SoftDTWFunction(torch.autograd.Function):
    """Soft-DTW of squared-Euclidean costs; gradients by the expected alignment E.

    All backends recompute local costs and accumulate
    ``dL/dx_i = 2 sum_j E_ij (x_i - y_j)`` (and symmetrically for y) diagonal by
    diagonal: numba kernels on CPU tensors, the torch wavefront on any device, fused
    Triton kernels (one launch per direction) on CUDA.  Between forward and backward
    the numba path keeps R (one value per cell); the torch and Triton paths keep R
    or, for large problems (``checkpoint``), only every s-th pair of anti-diagonals
    and recompute the rest in the backward (:mod:`mmalign.warping._wavefront`,
    :mod:`mmalign.warping._triton_soft`).  Nothing is kept when no input needs a
    gradient (torch and Triton paths).
    """

    @staticmethod
    def forward(ctx, x, y, lx, ly, gamma, radius, backend, checkpoint):
        ctx.options = (gamma, radius, backend)
        ctx.save_for_backward(x, y, lx, ly)
        if backend == "numba":
            xn, yn = _as_float64(x), _as_float64(y)
            lxn, lyn = lx.cpu().numpy(), ly.cpu().numpy()
            values = np.empty(len(xn))
            chunks = []
            with keep_torch_threads():
                for lo, hi in _chunks(lxn * lyn):
                    cells = lxn[lo:hi] * lyn[lo:hi]
                    r_start = np.concatenate(([0], np.cumsum(cells)[:-1])).astype(np.int64)
                    R = np.empty(int(cells.sum()))
                    S.soft_forward_batch(xn[lo:hi], yn[lo:hi], lxn[lo:hi], lyn[lo:hi], gamma,
                                         radius, R, r_start, values[lo:hi])
                    chunks.append((lo, hi, R, r_start))
            ctx.saved = (xn, yn, lxn, lyn, chunks)
            return torch.from_numpy(values).to(device=x.device, dtype=x.dtype)
        # trim the padding beyond the longest sequences: the sweep stops there anyway
        n, m = int(lx.max()), int(ly.max())
        xd, yd = x.detach()[:, :n], y.detach()[:, :m]
        store = "none"
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            store = "checkpoint" if use_checkpoints(x.shape[0], n, m, x.element_size(),
                                                    checkpoint) else "full"
        sweep = _triton().soft_forward if backend == "triton" else W.soft_forward
        values, saved = sweep(xd, yd, lx, ly, gamma, radius, store=store)
        ctx.saved = (saved, n, m)
        return values

    @staticmethod
    def backward(ctx, grad_out):
        x, y, lx, ly = ctx.saved_tensors
        gamma, radius, backend = ctx.options
        if backend == "numba":
            xn, yn, lxn, lyn, chunks = ctx.saved
            gx = np.zeros(xn.shape)
            gy = np.zeros(yn.shape)
            weights = grad_out.detach().cpu().numpy().astype(np.float64)
            with keep_torch_threads():
                for lo, hi, R, r_start in chunks:
                    S.soft_backward_batch(xn[lo:hi], yn[lo:hi], lxn[lo:hi], lyn[lo:hi], gamma,
                                          radius, R, r_start, weights[lo:hi], gx[lo:hi], gy[lo:hi])
            if not (np.isfinite(gx).all() and np.isfinite(gy).all()):
                raise ext.soft_precision_error("gradient", gamma)
            return (torch.from_numpy(gx).to(x.dtype), torch.from_numpy(gy).to(y.dtype),
                    None, None, None, None, None, None)
        saved, n, m = ctx.saved
        sweep = _triton().soft_backward if backend == "triton" else W.soft_backward
        gx, gy = sweep(x.detach()[:, :n], y.detach()[:, :m], saved, lx, ly, gamma, radius)[:2]
        if not bool(torch.isfinite(gx).all() & torch.isfinite(gy).all()):
            raise ext.soft_precision_error("gradient", gamma)
        scale = grad_out[:, None, None]
        grad_x = torch.zeros_like(x)
        grad_y = torch.zeros_like(y)
        grad_x[:, :n] = gx * scale
        grad_y[:, :m] = gy * scale
        return grad_x, grad_y, None, None, None, None, None, None


# R is kept in pieces of at most this many values (8 MiB): glibc returns larger blocks
# to the system on every free, and re-faulting them cost more than the kernels on
# the machines measured (benchmarks/README.md); smaller blocks are reused
R_CHUNK_VALUES = 1 << 20


# the torch path checkpoints R (recomputing it in the backward) from this size of the
# full R on: below it keeping R is faster and small (benchmarks/README.md)
CHECKPOINT_ABOVE_BYTES = 256 * 2**20


def use_checkpoints(B: int, n: int, m: int, itemsize: int, checkpoint: bool | None) -> bool:
    """Whether the torch (and Triton) path checkpoints R for a (B, n, m) problem.

    ``checkpoint`` True / False forces the choice; None (auto) checkpoints when R
    would exceed ``CHECKPOINT_ABOVE_BYTES`` and the checkpoints are smaller.
    """
    if checkpoint is not None:
        return bool(checkpoint)
    full = W.soft_memory(B, n, m, "full")
    return (full * itemsize > CHECKPOINT_ABOVE_BYTES
            and W.soft_memory(B, n, m, "checkpoint") < full)


def _triton():
    """:mod:`mmalign.warping._triton_soft`, or a ValueError naming the backend if unusable."""
    try:
        from . import _triton_soft
    except (ImportError, RuntimeError) as exc:
        raise ValueError(f"backend='triton' needs the triton package, which cannot be "
                         f"imported: {exc}") from exc
    return _triton_soft


def _chunks(cells: np.ndarray):
    """Consecutive sample ranges whose R fits a chunk, each with samples for every thread."""
    threads = numba.get_num_threads()
    lo = 0
    while lo < len(cells):
        hi = lo + 1
        total = int(cells[lo])
        while hi < len(cells) and (hi - lo < threads or total + cells[hi] <= R_CHUNK_VALUES):
            total += int(cells[hi])
            hi += 1
        yield lo, hi
        lo = hi


def _as_float64(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)


class SoftDTWLoss(torch.nn.Module):
    """Soft-DTW loss between batches of sequences, ragged batches included.

    Parameters
    ----------
    gamma : float > 0
        Smoothing of the soft minimum.
    normalize : bool
        Return the soft-DTW divergence ``sdtw(x, y) - (sdtw(x, x) + sdtw(y, y)) / 2``
        (Blondel, Mensch & Vert 2021): 0 at ``x = y``, non-negative.
    radius : int >= 0 or None
        Sakoe–Chiba band, widened by each pair's length difference; a radius of
        the longest length or more means no band.
    reduction : {"mean", "sum", "none"}
    backend : {"auto", "numba", "torch", "triton"}
        ``"auto"``: numba kernels (parallel over the batch) for CPU tensors, the
        torch anti-diagonal wavefront on other devices; ``"torch"`` forces the
        wavefront (also on CPU); ``"triton"``: fused Triton kernels, one program per
        pair and one launch per direction (CUDA tensors; CPU tensors only under
        ``TRITON_INTERPRET=1``, for testing).  ``"auto"`` does not pick Triton yet:
        that default is to be switched only after a GPU benchmark against the
        wavefront (``benchmarks/soft_dtw_speed.py``).
    checkpoint : bool or None
        Torch wavefront and Triton only: memory of the backward.  ``False`` keeps R
        between forward and backward, ``B (n + 2) (m + 2)`` values; ``True`` keeps every
        s-th pair of anti-diagonals (``s = ceil(sqrt(2 (n + m - 1)))``) and
        recomputes each segment of R in the backward, about
        ``2 sqrt(2 (n + m)) B (n + 2)`` values at the peak, for one extra forward
        sweep; ``None`` (default) checkpoints when R would exceed
        ``CHECKPOINT_ABOVE_BYTES`` (256 MiB).  ``n``, ``m`` are the longest
        lengths in the batch.  Values and gradients are bitwise the same.

    Shapes
    ------
    x : (B, N, d), y : (B, M, d), float16, bfloat16, float32 or float64, same device.
        Half precision (float16, bfloat16) is computed in float32 and the loss
        returned in the input's dtype, as are the gradients.
    x_lengths, y_lengths : (B,) integer tensors or None (full length).
    Output: (B,) with ``reduction="none"``, else a scalar.

    Raises
    ------
    ValueError
        Bad input; values too large for soft-DTW in the computing precision
        (float64 for float64 input, float32 otherwise): with ``s = max|x_b| +
        max|y_b|`` within the lengths, ``(n_b + m_b - 1) * d * s**2`` must stay
        below ``2**1023`` (about 9e307) in float64 and ``2**127`` (about 1.7e38)
        in float32 (divide x and y by ``c`` and ``gamma`` by ``c**2``); a loss
        beyond float16's / bfloat16's range; or, in the backward, gradients that
        float64 / float32 cannot resolve (costs far too large relative to ``gamma``).

    Examples
    --------
    >>> import torch, mmalign
    >>> x = torch.randn(4, 30, 2, dtype=torch.float64, requires_grad=True)
    >>> y = torch.randn(4, 25, 2, dtype=torch.float64)
    >>> loss = mmalign.SoftDTWLoss(gamma=0.1, normalize=True)(x, y, y_lengths=torch.tensor([25, 20, 25, 9]))
    >>> loss.backward()
    >>> bool(loss >= 0), x.grad.shape
    (True, torch.Size([4, 30, 2]))
    """

    def __init__(self, gamma: float = 1.0, normalize: bool = False, radius: int | None = None,
                 reduction: str = "mean", backend: str = "auto",
                 checkpoint: bool | None = None):
        super().__init__()
        self.gamma = check_gamma(gamma)
        self.normalize = bool(normalize)
        self.radius = None if radius is None else check_int(radius, "radius", 0)
        self.reduction = check_choice(reduction, "reduction", {"mean", "sum", "none"})
        self.backend = check_choice(backend, "backend", {"auto", "numba", "torch", "triton"})
        if self.backend == "triton":
            _triton()  # fail at construction if triton cannot be imported
        check_bool(checkpoint, "checkpoint", allow_none=True)
        self.checkpoint = checkpoint

    def forward(self, x: torch.Tensor, y: torch.Tensor, x_lengths=None,
                y_lengths=None) -> torch.Tensor:
        x, y, lx, ly = _check_batch(x, y, x_lengths, y_lengths)
        out_dtype = x.dtype
        if out_dtype in (torch.float16, torch.bfloat16):
            # numpy has no bfloat16, and half-precision costs overflow at 65504
            x, y = x.float(), y.float()
        _check_range(x, y, lx, ly, self.normalize)
        backend = self.backend
        if backend == "auto":
            backend = "numba" if x.device.type == "cpu" else "torch"
        if backend == "triton":
            _triton().check_tensors_device(x)
        radius = band_radius(self.radius, max(x.shape[1], y.shape[1]))
        radius = -1 if radius is None else radius
        options = (self.gamma, radius, backend, self.checkpoint)
        value = _SoftDTWFunction.apply(x, y, lx, ly, *options)
        if self.normalize:
            value = value - 0.5 * (_SoftDTWFunction.apply(x, x, lx, lx, *options)
                                   + _SoftDTWFunction.apply(y, y, ly, ly, *options))
        if self.reduction == "mean":
            value = value.mean()
        elif self.reduction == "sum":
            value = value.sum()
        if value.dtype != out_dtype:
            value = value.to(out_dtype)
            if not bool(torch.isfinite(value).all()):
                raise ValueError(
                    f"the soft-DTW loss exceeds the range of {_name(out_dtype)} (largest "
                    f"finite value {torch.finfo(out_dtype).max:.4g}); pass float32 tensors "
                    "or rescale x, y and gamma")
        return value

    def extra_repr(self) -> str:
        return (f"gamma={self.gamma}, normalize={self.normalize}, radius={self.radius}, "
                f"reduction={self.reduction!r}, backend={self.backend!r}, "
                f"checkpoint={self.checkpoint}")


def _check_batch(x, y, x_lengths, y_lengths):
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape (B, n, d), got {type(t)}")
        if t.ndim != 3:
            raise ValueError(f"{name} must have shape (B, n, d), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be float32 or float64, got {t.dtype}")
        if t.numel() == 0:
            raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y have different batch sizes: {x.shape[0]} and {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise ValueError(f"x and y have different numbers of features: {x.shape[2]} and "
                         f"{y.shape[2]}")
    if x.device != y.device:
        raise ValueError(f"x and y are on different devices: {x.device} and {y.device}")
    if x.dtype != y.dtype:
        y = y.to(x.dtype)
    lx = _lengths(x_lengths, "x_lengths", x)
    ly = _lengths(y_lengths, "y_lengths", y)
    return x, y, lx, ly


def _check_range(x: torch.Tensor, y: torch.Tensor, lx: torch.Tensor, ly: torch.Tensor,
                 normalize: bool) -> None:
    """ValueError for pairs whose squared costs could overflow the computing dtype
    (:func:`mmalign.warping._extremes.soft_range_error`), looking within the lengths
    only; with ``normalize`` the pairs (x, x) and (y, y) as well."""
    def peaks(t, lengths):
        valid = torch.arange(t.shape[1], device=t.device)[None, :] < lengths[:, None]
        frames = t.detach().abs().amax(dim=-1)
        return torch.where(valid, frames, torch.zeros_like(frames)).amax(dim=-1)

    # one host transfer: the peaks of x and y and the lengths, per pair
    px, py, nx, ny = torch.stack([peaks(x, lx).double(), peaks(y, ly).double(),
                                  lx.double(), ly.double()]).cpu().numpy()
    nx, ny = nx.astype(np.int64), ny.astype(np.int64)
    pairs = [(px, py, nx + ny - 1, ("x", "y"))]
    if normalize:
        pairs += [(px, px, 2 * nx - 1, ("x", "x")), (py, py, 2 * ny - 1, ("y", "y"))]
    wide = x.dtype == torch.float64
    for a, b, cells, names in pairs:
        error = ext.soft_range_error(a, b, cells, x.shape[2],
                                     max_exponent=1024 if wide else 128,
                                     dtype="float64" if wide else "float32", names=names)
        if error is not None:
            raise error


def _name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _lengths(lengths, name, t):
    B, n = t.shape[0], t.shape[1]
    if lengths is None:
        return torch.full((B,), n, dtype=torch.int64, device=t.device)
    lengths = torch.as_tensor(lengths, device=t.device)
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"{name} must hold integers, got {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"{name} must have shape ({B},), got {tuple(lengths.shape)}")
    if (lengths < 1).any() or (lengths > n).any():
        raise ValueError(f"{name} must lie in [1, {n}], got {lengths.tolist()}")
    return lengths.to(torch.int64)
