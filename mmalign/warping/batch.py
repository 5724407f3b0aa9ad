"""Hard DTW on any torch device: batches of tensors through the anti-diagonal wavefront.

:func:`batch_dtw` aligns ``B`` pairs at once on the device the tensors live on.
The same machinery serves ``cdist_dtw(..., device=...)`` and ``dtw`` / ``dtw_path``
on CUDA tensors.  Conventions are those of :func:`mmalign.dtw`: ``symmetric1``
steps, squared Euclidean local cost by default with the square root of the
accumulated cost returned, the length-widened Sakoe–Chiba ``radius``.

Local costs are summed one feature at a time in the order of the CPU kernels, so
that costs, values and tie-breaking (diagonal, then ``(i - 1, j)``, then
``(i, j - 1)``) are the CPU kernels' bit for bit.  Everything runs in float64.
"""

from __future__ import annotations

import numpy as np
import torch

from ..utils.validation import check_choice, check_sequence_shape
from . import _extremes as ext
from . import _kernels as K
from . import _wavefront as W
from .windows import band_radius, resolve_radius

# bytes of the accumulated-cost tensor R, B x (N + 2) x (M + 2) float64, per wavefront
# call; the cost tensor and its temporary add about as much again
MAX_CHUNK_BYTES = 2**30
# how solve_pairs runs on CUDA tensors: "torch" (the wavefront of _wavefront.hard_forward
# on a cost tensor) or "triton" (one fused kernel of _triton_hard, also used on CPU
# tensors when Triton's interpreter is on).  Stays "torch" until a GPU benchmark
# (benchmarks/dtw_speed.py, GPU section) has measured both.
DEVICE_KERNEL = "torch"
# pairs per Triton launch without paths: bounds the (K,) index and length arrays
MAX_TRITON_PAIRS = 2**22
BATCH_METRICS = {
    "sqeuclidean": K.METRIC_SQEUCLIDEAN,
    "euclidean": K.METRIC_EUCLIDEAN,
    "cityblock": K.METRIC_CITYBLOCK,
    "cosine": K.METRIC_SQEUCLIDEAN,  # on unit vectors, 1 - cos = |a - b|^2 / 2
}


def batch_dtw(x, y, *, x_lengths=None, y_lengths=None, radius: int | None = None,
              metric: str = "sqeuclidean", return_paths: bool = False):
    """DTW distances of ``B`` pairs ``(x[b], y[b])`` at once, on the tensors' device.

    Parameters
    ----------
    x : torch.Tensor [shape=(B, N, d) or (B, N)]
        First sequences, time first, padded to a common length ``N``; ``(B, N)``
        means univariate.  Any real dtype (computation in float64), any device
        (a numpy array is taken as a CPU tensor).
    y : torch.Tensor [shape=(B, M, d) or (B, M)]
        Second sequences, same batch size, features and device as ``x``.
    x_lengths, y_lengths : (B,) integer tensor / array / list, or None
        Valid length of each sequence, in ``[1, N]`` (``[1, M]``); ``None``: full
        length.  Padding beyond a length is ignored and may hold anything.
    radius : int >= 0 or None
        Sakoe–Chiba radius in samples, widened per pair by its length difference;
        ``max(N, M)`` or more means no band.
    metric : {"sqeuclidean", "euclidean", "cityblock", "cosine"}
        Local cost, as in :func:`mmalign.dtw`.
    return_paths : bool
        Also return each pair's optimal warping path (backtracked on the CPU).

    Returns
    -------
    distances : torch.Tensor [shape=(B,), dtype=float64]
        On the device of ``x``: ``sqrt`` of the accumulated cost for
        ``"sqeuclidean"``, the accumulated cost otherwise (half of it for
        ``"cosine"``), equal to ``mmalign.dtw(x[b, :n_b], y[b, :m_b], ...)``.
        Not differentiable (see :class:`mmalign.SoftDTWLoss`).
    paths : list of np.ndarray [shape=(K_b, 2), dtype=int64]
        Only with ``return_paths=True``: the paths ``mmalign.dtw_path`` gives.

    Raises
    ------
    ValueError
        Bad input, or a distance beyond float64 (about 1.8e308).

    Notes
    -----
    Values of any finite size work, as in :func:`mmalign.dtw`: a pair whose
    largest magnitude (within its lengths) is outside ``[2**-400, 2**400]`` is
    solved multiplied by a power of two and its distance multiplied back.

    One anti-diagonal of the whole batch is a few tensor operations, so a batch
    costs ``N + M - 1`` steps whatever ``B``; memory is
    ``B x (N + 2) x (M + 2)`` float64 whatever the radius.  Large batches run in
    chunks of at most ``MAX_CHUNK_BYTES`` (1 GiB) of accumulated costs, pairs of
    similar lengths together.  On a GPU a single pair is bound by kernel launches
    (the CPU ``mmalign.dtw`` is faster); batches are where the device pays.

    Examples
    --------
    >>> import torch, mmalign
    >>> from mmalign.warping.batch import batch_dtw
    >>> x = torch.tensor([[0., 1., 2., 3.], [0., 1., 1., 9.]])
    >>> y = torch.tensor([[0., 0., 1., 2., 3.], [1., 2., 3., 0., 0.]])
    >>> batch_dtw(x, y, y_lengths=[5, 3])       # the second pair: x[1] against [1., 2., 3.]
    tensor([0.0000, 6.1644], dtype=torch.float64)
    >>> _, paths = batch_dtw(x, y, return_paths=True)
    >>> paths[0].tolist()
    [[0, 0], [0, 1], [1, 2], [2, 3], [3, 4]]
    """
    x = _as_batch(x, "x")
    y = _as_batch(y, "y")
    if x.device != y.device:
        raise ValueError(f"y must be on the device of x ({x.device}), got {y.device}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y have different batch sizes: {x.shape[0]} and {y.shape[0]}")
    if x.shape[2] != y.shape[2]:
        raise ValueError(f"x and y have different numbers of features: {x.shape[2]} and "
                         f"{y.shape[2]}")
    check_choice(metric, "metric", BATCH_METRICS)
    r = band_radius(radius, max(x.shape[1], y.shape[1]))
    lx = _check_lengths(x_lengths, "x_lengths", x)
    ly = _check_lengths(y_lengths, "y_lengths", y)
    x = _clean(x, lx, "x", metric)
    y = _clean(y, ly, "y", metric)
    # the padding is zero now: the peaks are those within the lengths
    e = ext.exponents(torch.maximum(x.abs().amax(dim=(1, 2)), y.abs().amax(dim=(1, 2)))
                      .cpu().numpy())
    if e.any():
        x, y = scale_pairs(x, e), scale_pairs(y, e)
    pairs = np.arange(x.shape[0])
    radii = np.full(len(pairs), -1 if r is None else r)
    acc, paths = solve_pairs(x, y, pairs, pairs, lx, ly, radii, BATCH_METRICS[metric],
                             want_paths=bool(return_paths))
    values = ext.unscale_many(finalize_many(acc, metric), e, "a DTW distance")
    distances = torch.from_numpy(values).to(x.device)
    return (distances, paths) if return_paths else distances


# --------------------------------------------------------------------------- internals
# shared with cdist_dtw(device=...) and with dtw / dtw_path on CUDA tensors


def resolve_device(device) -> torch.device:
    """A usable ``torch.device`` from a string or device, else a ValueError naming ``device``."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda:0', "
                         f"got {device!r}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asks for CUDA, which is not available here; "
                             "use device='cpu' or device=None")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) are available")
    if dev.type == "meta":
        raise ValueError("device='meta' holds no data; use 'cpu' or 'cuda'")
    try:  # other backends (mps, xpu, ...): float64 support varies, so probe it
        torch.zeros(1, dtype=torch.float64, device=dev)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} cannot hold float64 tensors: {err}") from None
    return dev


def solve_on_device(x: torch.Tensor, y: torch.Tensor, *, radius, window, itakura_slope, mask,
                    metric, step_pattern, open_begin, open_end, want_path):
    """``dtw._solve``'s ``(value, path, shape)`` for two tensors on one device.

    Returns None when an option needs the CPU kernels (Itakura slope, mask,
    callable metric, other step patterns, open ends): the caller falls back.
    """
    if (itakura_slope is not None or mask is not None or callable(metric)
            or step_pattern != "symmetric1" or open_begin or open_end):
        return None
    check_choice(metric, "metric", BATCH_METRICS)
    xs = as_device_sequence(x, "x")
    ys = as_device_sequence(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y have different numbers of features: {xs.shape[1]} and "
                         f"{ys.shape[1]}")
    n, m = len(xs), len(ys)
    r = resolve_radius(radius, window, n, m)
    if metric == "cosine":
        xs, ys = unit_rows(xs, "x"), unit_rows(ys, "y")
    e = ext.exponent(float(torch.maximum(xs.abs().max(), ys.abs().max())))
    xs, ys = ext.scale(xs, e), ext.scale(ys, e)
    one = np.zeros(1, np.int64)
    acc, paths = solve_pairs(xs[None], ys[None], one, one, np.array([n]), np.array([m]),
                             np.array([-1 if r is None else r]), BATCH_METRICS[metric],
                             want_paths=want_path)
    value = ext.unscale(float(finalize_many(acc, metric)[0]), e, "the DTW distance")
    return value, (paths[0] if want_path else None), (n, m)


def as_device_sequence(x: torch.Tensor, name: str) -> torch.Tensor:
    """``as_sequence`` for a tensor that stays on its device: float64 ``(n, d)``."""
    _check_dtype(x, name)
    if x.ndim == 1:
        x = x[:, None]
    check_sequence_shape(tuple(x.shape), name, "use cdist_dtw or batch_dtw for collections of sequences")
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def unit_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    """Frames ``(..., d)`` scaled to unit norm (see :func:`dtw.unit_rows`)."""
    x = _rows_in_range(x)
    norms = torch.sqrt((x * x).sum(dim=-1, keepdim=True))
    if bool((norms == 0).any()):
        raise ValueError(f"{name} has all-zero frames, where the cosine distance is undefined")
    return x / norms


def _rows_in_range(x: torch.Tensor) -> torch.Tensor:
    """``x`` with each frame (last axis) whose largest magnitude is outside the safe range
    multiplied by a power of two that brings it into ``[0.5, 1)``, so that the squares
    of a norm neither overflow nor underflow; ``x`` itself when no frame needs it."""
    peaks = x.abs().amax(dim=-1)
    nonzero = peaks > 0
    if not bool(((peaks > ext.SAFE_HIGH) | (nonzero & (peaks < ext.SAFE_LOW))).any()):
        return x
    e = ext.exponents(peaks.cpu().numpy())
    first, second = ext.factors(e)
    first = torch.from_numpy(np.asarray(first)).to(x.device)[..., None]
    second = torch.from_numpy(np.asarray(second)).to(x.device)[..., None]
    return x * first * second


def scale_pairs(t: torch.Tensor, e: np.ndarray) -> torch.Tensor:
    """``t[b] * 2**-e[b]`` for a batch ``(B, n, d)`` (the products of :func:`_extremes.scale`)."""
    first, second = ext.factors(e)
    first = torch.from_numpy(np.asarray(first)).to(t.device)[:, None, None]
    second = torch.from_numpy(np.asarray(second)).to(t.device)[:, None, None]
    return t * first * second


def finalize_many(acc: np.ndarray, metric: str) -> np.ndarray:
    """``dtw.finalize`` over an array of raw accumulated costs."""
    if metric == "sqeuclidean":
        return np.sqrt(acc)
    if metric == "cosine":
        return 0.5 * acc
    return acc


def cost_tensor(X: torch.Tensor, Y: torch.Tensor, metric_code: int) -> torch.Tensor:
    """Local costs ``(B, N, M)`` of ``X (B, N, d)`` against ``Y (B, M, d)``, float64.

    Summed feature by feature from 0, as ``_kernels._diagonal_costs`` does, so the
    costs equal the CPU kernels' exactly (``torch.cdist`` differs in the last bits,
    enough to break ties the other way on integer-valued data).
    """
    B, N, d = X.shape
    M = Y.shape[1]
    D = torch.zeros((B, N, M), dtype=torch.float64, device=X.device)
    diff = torch.empty_like(D)
    for f in range(d):
        torch.sub(X[:, :, f, None], Y[:, None, :, f], out=diff)
        if metric_code == K.METRIC_CITYBLOCK:
            diff.abs_()
        else:
            diff.mul_(diff)  # not addcmul: a fused multiply-add would round differently
        D.add_(diff)
    if metric_code == K.METRIC_EUCLIDEAN:
        D.sqrt_()
    return D


def solve_pairs(X: torch.Tensor, Y: torch.Tensor, ia: np.ndarray, ib: np.ndarray,
                lx: np.ndarray, ly: np.ndarray, radii: np.ndarray, metric_code: int,
                want_paths: bool = False):
    """Raw accumulated costs of the pairs ``(X[ia[k]], Y[ib[k]])``, chunked.

    X (P, N, d), Y (Q, M, d) float64 on one device, padded; lx (P,), ly (Q,) the
    lengths; radii (len(ia),) a radius per pair (-1: none).  Returns the costs
    (len(ia),) float64 numpy and, with ``want_paths``, the list of paths.

    ``DEVICE_KERNEL = "triton"`` runs the fused kernel of ``_triton_hard`` instead of
    the torch wavefront (same results, bit for bit) where it can run.
    """
    n_pairs = len(ia)
    acc = np.empty(n_pairs)
    paths: list | None = [None] * n_pairs if want_paths else None
    n_of = np.asarray(lx, np.int64)[ia]
    m_of = np.asarray(ly, np.int64)[ib]
    device = X.device
    triton_kernel = _triton_kernel(device)
    if triton_kernel is not None:
        _solve_pairs_triton(triton_kernel, X, Y, np.asarray(ia, np.int64),
                            np.asarray(ib, np.int64), n_of, m_of,
                            np.asarray(radii, np.int64), metric_code, acc, paths)
        return acc, paths
    for r in np.unique(radii):
        members = np.flatnonzero(radii == r)
        # similar lengths together keep the padding of each chunk small
        members = members[np.lexsort((m_of[members], n_of[members]))]
        for chunk in _chunks(members, n_of, m_of):
            N, M = int(n_of[chunk].max()), int(m_of[chunk].max())
            rows = torch.as_tensor(ia[chunk], device=device)
            cols = torch.as_tensor(ib[chunk], device=device)
            D = cost_tensor(X[rows, :N], Y[cols, :M], metric_code)
            lxc = torch.as_tensor(n_of[chunk], device=device)
            lyc = torch.as_tensor(m_of[chunk], device=device)
            values, dirs = W.hard_forward(D, lxc, lyc, int(r), want_paths)
            del D
            acc[chunk] = values.cpu().numpy()
            if want_paths:
                dirs = dirs.cpu().numpy()
                for s, k in enumerate(chunk):
                    paths[k] = K.backtrack_general(dirs[s], int(n_of[k]) - 1, int(m_of[k]) - 1, False)
    return acc, paths


def _triton_kernel(device: torch.device):
    """The ``_triton_hard`` module when ``DEVICE_KERNEL`` asks for it and it can run here.

    That is on CUDA tensors, or on CPU tensors under Triton's interpreter; None
    otherwise (other devices, no triton installed): the torch wavefront then runs.
    """
    if DEVICE_KERNEL not in ("torch", "triton"):
        raise ValueError(f"DEVICE_KERNEL must be 'torch' or 'triton', got {DEVICE_KERNEL!r}")
    if DEVICE_KERNEL == "torch" or device.type not in ("cuda", "cpu"):
        return None
    try:
        from . import _triton_hard
    except ImportError:
        return None
    if device.type == "cpu" and not _triton_hard.interpreted():
        return None
    return _triton_hard


def _solve_pairs_triton(T, X: torch.Tensor, Y: torch.Tensor, ia: np.ndarray, ib: np.ndarray,
                        n_of: np.ndarray, m_of: np.ndarray, radii: np.ndarray,
                        metric_code: int, acc: np.ndarray, paths: list | None) -> None:
    """``solve_pairs`` by the Triton kernel ``T.hard_dtw``, filling ``acc`` and ``paths``.

    Without paths all pairs go in one launch (the kernel's memory does not grow
    with the number of pairs), the largest first so that the programs of the
    persistent grid finish together.  With paths the ``(K, N, M)`` direction bytes
    are bounded by chunks as in the torch path, then backtracked on the host.
    """
    if paths is None:
        order = np.argsort(-(n_of * m_of), kind="stable")
        for start in range(0, len(order), MAX_TRITON_PAIRS):
            part = order[start:start + MAX_TRITON_PAIRS]
            values, _ = T.hard_dtw(X, Y, ia[part], ib[part], n_of[part], m_of[part],
                                   radii[part], metric_code)
            acc[part] = values.cpu().numpy()
        return
    members = np.lexsort((m_of, n_of))
    for chunk in _chunks(members, n_of, m_of):
        values, dirs = T.hard_dtw(X, Y, ia[chunk], ib[chunk], n_of[chunk], m_of[chunk],
                                  radii[chunk], metric_code, want_dirs=True)
        acc[chunk] = values.cpu().numpy()
        dirs = dirs.cpu().numpy()
        for s, k in enumerate(chunk):
            paths[k] = K.backtrack_general(dirs[s], int(n_of[k]) - 1, int(m_of[k]) - 1, False)


def _chunks(members: np.ndarray, n_of: np.ndarray, m_of: np.ndarray):
    """Consecutive runs of ``members`` whose padded R stays within MAX_CHUNK_BYTES."""
    start = 0
    N = M = 0
    for pos, k in enumerate(members):
        N2, M2 = max(N, int(n_of[k])), max(M, int(m_of[k]))
        if pos > start and (pos - start + 1) * (N2 + 2) * (M2 + 2) * 8 > MAX_CHUNK_BYTES:
            yield members[start:pos]
            start = pos
            N2, M2 = int(n_of[k]), int(m_of[k])
        N, M = N2, M2
    if start < len(members):
        yield members[start:]


def _check_dtype(t: torch.Tensor, name: str) -> None:
    if t.dtype == torch.bool or t.is_complex():  # what remains is float or integer
        raise ValueError(f"{name} must hold real numbers (int or float), got dtype {t.dtype}")


def _as_batch(t, name: str) -> torch.Tensor:
    if isinstance(t, np.ndarray):
        if t.dtype == np.bool_ or not (np.issubdtype(t.dtype, np.floating)
                                       or np.issubdtype(t.dtype, np.integer)):
            raise ValueError(f"{name} must hold real numbers (int or float), got dtype {t.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(t))
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, n, d), got {type(t)}")
    _check_dtype(t, name)
    if t.ndim == 2:
        t = t[:, :, None]
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (B, n, d) or (B, n), got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    return t.detach()


def _check_lengths(lengths, name: str, t: torch.Tensor) -> np.ndarray:
    B, n = t.shape[0], t.shape[1]
    if lengths is None:
        return np.full(B, n, np.int64)
    if isinstance(lengths, torch.Tensor):
        lengths = lengths.detach().cpu().numpy()
    try:
        lengths = np.asarray(lengths)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} cannot be read as an integer array: {err}") from None
    if lengths.dtype == np.bool_ or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"{name} must have shape ({B},), got {lengths.shape}")
    if (lengths < 1).any() or (lengths > n).any():
        raise ValueError(f"{name} must lie in [1, {n}], got {lengths.tolist()}")
    return lengths.astype(np.int64)


def _clean(t: torch.Tensor, lengths: np.ndarray, name: str, metric: str) -> torch.Tensor:
    """float64 copy with the padding zeroed, after checking the valid steps are finite."""
    t = t.to(torch.float64)
    steps = torch.arange(t.shape[1], device=t.device)
    valid = steps[None, :] < torch.as_tensor(lengths, device=t.device)[:, None]  # (B, n)
    if not bool((torch.isfinite(t).all(dim=2) | ~valid).all()):
        raise ValueError(f"{name} contains NaN or infinite values within its lengths")
    t = torch.where(valid[:, :, None], t, torch.zeros((), dtype=t.dtype, device=t.device))
    if metric == "cosine":
        t = _rows_in_range(t)
        norms = torch.sqrt((t * t).sum(dim=-1, keepdim=True))
        if bool(((norms[:, :, 0] == 0) & valid).any()):
            raise ValueError(f"{name} has all-zero frames, where the cosine distance is "
                             "undefined")
        t = t / torch.where(norms == 0, torch.ones_like(norms), norms)
    return t
