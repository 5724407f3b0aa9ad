"""Pairwise DTW distance matrices, vectorised across pairs and parallel across cores
(or, with ``backend="dask"``, across the workers of a ``dask.distributed`` cluster)."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import TYPE_CHECKING

import numba
import numpy as np

from ..utils.validation import as_sequence, check_choice, check_int
from . import _extremes as ext
from . import _kernels as K
from ._threads import numba_threads
from .dtw import METRICS, STEP_PATTERNS, Metric, _solve, finalize, general_solve, unit_rows
from .windows import band_radius, resolve_radius, resolve_window

if TYPE_CHECKING:  # the dask backend is optional
    from distributed import Client

BACKENDS = ("local", "dask")
LANES = 32  # pairs per SIMD block: enough to fill AVX-512 registers and hide latency
MIN_LANE_GROUP = 8  # fewer equal-length pairs than this go through the one-pair kernel


def cdist_dtw(X, Y=None, *, radius: int | None = None, window: float | None = None,
              itakura_slope: float | None = None, mask=None, metric: Metric = "sqeuclidean",
              step_pattern: str = "symmetric1", n_jobs: int = -1,
              device=None, backend: str = "local", client: Client | None = None,
              scheduler: str | None = None, block_size: int | None = None) -> np.ndarray:
    """DTW distances between every sequence of ``X`` and every sequence of ``Y``.

    Parameters
    ----------
    X : np.ndarray [shape=(N, n) or (N, n, d)] or list of (n_k,) / (n_k, d) arrays
        A collection of sequences; a list may mix lengths.
    Y : same as X, or None
        With ``None``, distances within ``X``: each pair is computed once (as
        ``dtw(X[a], X[b])`` with ``a < b``) and the diagonal is 0.
    radius, window, itakura_slope, mask, metric, step_pattern
        As in :func:`mmalign.dtw`; ``window`` is resolved per pair from its lengths,
        ``mask`` needs all sequences of ``X`` (and of ``Y``) to share one length.
    n_jobs : int
        Threads to use; ``-1`` for all cores (the numba path; a torch ``device``
        uses torch's own threads).  With ``backend="dask"`` and neither ``client``
        nor ``scheduler``: the number of single-threaded workers of the
        ``LocalCluster`` started for the call.
    device : None, str or torch.device
        ``None`` (default): the numba kernels below.  A torch device (``"cuda"``,
        ``"cuda:1"``, ``"cpu"``, ...): the pairs run in batches through the torch
        anti-diagonal wavefront on that device, equal to the numba values to
        rounding (the same local costs, summed in the same order).  Supports
        ``radius`` / ``window`` (resolved per pair), the string metrics and
        ``symmetric1`` steps; ``itakura_slope``, ``mask``, a callable metric or
        another ``step_pattern`` raise a ValueError (CPU only).
    backend : {"local", "dask"}
        ``"local"`` (default): this process, as above.  ``"dask"``: the matrix is cut
        into ``block_size x block_size`` tiles (in the symmetric case only the tiles
        on and above the diagonal), the sequences are scattered once to every
        worker of a ``dask.distributed`` cluster, each tile runs the same numba
        kernels there (single-threaded; the cluster provides the parallelism) and
        the tiles are assembled here.  The result is bit-identical to
        ``backend="local"``.  Needs ``pip install 'mmalign[dask]'``; not with a
        ``device``.
    client : dask.distributed.Client or None
        ``backend="dask"`` only: the cluster to use (left open afterwards).
    scheduler : str or None
        ``backend="dask"`` only: the address of a running scheduler
        (``"tcp://host:8786"``), connected to for the call.  With neither
        ``client`` nor ``scheduler``, a ``LocalCluster`` of ``n_jobs`` worker
        processes is started for the call and closed afterwards.
    block_size : int > 0 or None
        ``backend="dask"`` only: rows and columns per tile; ``None``: 256.

    Returns
    -------
    distances : np.ndarray [shape=(len(X), len(Y))]

    Raises
    ------
    ValueError
        Bad input, or a distance beyond float64 (about 1.8e308).

    Notes
    -----
    Values of any finite size work, as in :func:`mmalign.dtw`: a pair whose
    largest magnitude is outside ``[2**-400, 2**400]`` is solved multiplied by a
    power of two (the pairs grouped by that power, so the fast kernels still
    run) and its distance multiplied back; other pairs are untouched.

    Equal-length pairs of the default setting run 32 at a time in SIMD lanes, the
    pair index innermost; the rest run pair by pair with the anti-diagonal kernel.
    With a ``device``, pairs of similar lengths are padded into batches whose
    accumulated costs, ``B x (n + 2) x (m + 2)`` float64, stay under 1 GiB; each
    batch takes ``n + m - 1`` wavefront steps whatever the radius.

    With ``backend="dask"`` every pair is computed by the same kernel, with the
    same operations in the same order, as on the local path (the SIMD-lane and
    the one-pair kernels give identical bits), so the two matrices are equal
    exactly, not only to rounding.  Starting a ``LocalCluster`` takes seconds
    (worker processes import mmalign); reuse a ``client`` across calls.  Its
    workers are spawned processes, which import the calling script: guard a
    script's top level with ``if __name__ == "__main__":``.  On one machine the
    dask path is no faster than the local one (see ``benchmarks/dask_scaleout.py``);
    it pays off with workers on several machines.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> X = np.array([[0., 1., 2.], [0., 1., 1.], [2., 2., 2.]])
    >>> mmalign.cdist_dtw(X).round(3)
    array([[0.   , 1.   , 2.236],
           [1.   , 0.   , 2.449],
           [2.236, 2.449, 0.   ]])
    >>> np.allclose(mmalign.cdist_dtw(X, device="cpu"), mmalign.cdist_dtw(X))
    True
    """
    check_choice(backend, "backend", BACKENDS)
    if backend == "local":
        for name, value in (("client", client), ("scheduler", scheduler),
                            ("block_size", block_size)):
            if value is not None:
                raise ValueError(f"{name} is a backend='dask' option; pass backend='dask' "
                                 f"or drop {name}")
    elif device is not None:
        raise ValueError("device runs with backend='local' only; drop device or the dask backend")
    check_choice(step_pattern, "step_pattern", STEP_PATTERNS)
    if not callable(metric):
        check_choice(metric, "metric", METRICS)
    n_jobs = _resolve_jobs(n_jobs)
    xs = as_collection(X, "X", metric)
    symmetric = Y is None
    ys = xs if symmetric else as_collection(Y, "Y", metric)
    if xs[0].shape[1] != ys[0].shape[1]:
        raise ValueError(
            f"X and Y have different numbers of features: {xs[0].shape[1]} and {ys[0].shape[1]}"
        )
    if mask is not None and len({len(s) for s in xs} | {len(s) for s in ys}) > 1:
        raise ValueError("mask needs every sequence of X and Y to have the same length")
    options = dict(radius=radius, window=window, itakura_slope=itakura_slope, mask=mask)
    if backend == "dask":
        from ._dask import cdist_blocks

        resolve_window(len(xs[0]), len(ys[0]), **options)  # bad options fail here, not remotely

        return cdist_blocks(xs, None if symmetric else ys, metric=metric,
                            step_pattern=step_pattern, options=options, client=client,
                            scheduler=scheduler, block_size=block_size, n_workers=n_jobs)
    out = np.zeros((len(xs), len(ys)))
    ia, ib = pair_indices(len(xs), len(ys), symmetric)
    if device is not None:
        values = _device_pairs(xs, ys, ia, ib, metric, step_pattern, device, options)
        out[ia, ib] = values
        if symmetric:
            out[ib, ia] = values
        return out
    with numba_threads(n_jobs):
        values = pair_values(xs, ys, ia, ib, metric, step_pattern, options)
    out[ia, ib] = values
    if symmetric:
        out[ib, ia] = values
    return out


def pair_indices(n_x: int, n_y: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the pairs to compute: ``a < b`` when symmetric, else all."""
    if symmetric:
        return np.triu_indices(n_x, k=1)
    ia, ib = (g.ravel() for g in np.meshgrid(np.arange(n_x), np.arange(n_y), indexing="ij"))
    return ia, ib


def pair_values(xs: list[np.ndarray], ys: list[np.ndarray], ia: np.ndarray, ib: np.ndarray,
                metric: Metric, step_pattern: str, options: dict, *,
                parallel: bool = True) -> np.ndarray:
    """Finalised DTW distances of the pairs ``(xs[ia[k]], ys[ib[k]])`` by the numba kernels.

    The one routine behind both backends (the dask tiles call it with
    ``parallel=False``: serial kernels, safe in any worker thread).  Pairs beyond
    the safe range are solved scaled (:func:`scaled_groups`).
    """
    values = np.empty(len(ia))
    for xs_k, ys_k, members, e in scaled_groups(xs, ys, ia, ib, metric):
        raw = _pair_values(xs_k, ys_k, ia[members], ib[members], metric, step_pattern, options,
                           parallel)
        values[members] = ext.unscale_many(raw, e, "a DTW distance")
    return values


def scaled_groups(xs, ys, ia: np.ndarray, ib: np.ndarray, metric: Metric):
    """The pairs ``(xs[ia[k]], ys[ib[k]])`` grouped by the power of two ``2**-e`` that
    brings each into the safe range (:mod:`mmalign.warping._extremes`).

    Yields ``(xs_e, ys_e, members, e)``: the positions ``members`` into ``ia`` / ``ib``
    of a group and the sequences with those of the group multiplied by ``2**-e``.
    Ordinary pairs form the group ``e = 0`` with ``xs`` and ``ys`` themselves; a
    callable metric is never scaled.
    """
    ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
    everyone = np.arange(len(ia))
    if callable(metric) or len(ia) == 0:
        yield xs, ys, everyone, 0
        return
    px = np.array([ext.peak(s) for s in xs])
    py = px if ys is xs else np.array([ext.peak(s) for s in ys])
    e = ext.exponents(np.maximum(px[ia], py[ib]))
    if not e.any():
        yield xs, ys, everyone, 0
        return
    for k in np.unique(e):
        members = np.flatnonzero(e == k)
        if k == 0:
            yield xs, ys, members, 0
            continue
        if ys is xs:
            xs_k = _scaled(xs, np.union1d(ia[members], ib[members]), int(k))
            ys_k = xs_k
        else:
            xs_k = _scaled(xs, np.unique(ia[members]), int(k))
            ys_k = _scaled(ys, np.unique(ib[members]), int(k))
        yield xs_k, ys_k, members, int(k)


def _scaled(seqs: list[np.ndarray], used: np.ndarray, e: int) -> list[np.ndarray]:
    """``seqs`` with the sequences at ``used`` multiplied by ``2**-e``."""
    out = list(seqs)
    for i in used:
        out[i] = ext.scale(seqs[i], e)
    return out


def _pair_values(xs, ys, ia, ib, metric, step_pattern, options, parallel) -> np.ndarray:
    """:func:`pair_values` of pairs in the safe range (or a callable metric)."""
    if not callable(metric) and step_pattern == "symmetric1":
        values = _fast_pairs(xs, ys, ia, ib, METRICS[metric], options, parallel=parallel)
        return np.array([finalize(v, metric) for v in values]) if len(values) else values
    return np.array([
        _solve(xs[a], ys[b], metric=metric, step_pattern=step_pattern, open_begin=False,
               open_end=False, want_path=False, **options)[0]
        for a, b in zip(ia, ib)
    ])


def as_collection(X, name: str, metric: Metric = "sqeuclidean") -> list[np.ndarray]:
    """A list of validated float64 ``(n_k, d)`` sequences from a 2-d/3-d array or a list."""
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    if isinstance(X, np.ndarray):
        if X.ndim not in (2, 3):
            raise ValueError(
                f"{name} must be a (N, n) or (N, n, d) array or a list of sequences, "
                f"got shape {X.shape}"
            )
        if X.ndim == 2:
            X = X[:, :, None]
        items = list(X)
    else:
        try:
            items = list(X)
        except TypeError:
            raise ValueError(f"{name} must be an array or a list of sequences") from None
    if not items:
        raise ValueError(f"{name} holds no sequences")
    seqs = [as_sequence(s, f"{name}[{k}]") for k, s in enumerate(items)]
    d = seqs[0].shape[1]
    for k, s in enumerate(seqs):
        if s.shape[1] != d:
            raise ValueError(f"{name}[{k}] has {s.shape[1]} features, {name}[0] has {d}")
    if metric == "cosine":
        seqs = [unit_rows(s, f"{name}[{k}]") for k, s in enumerate(seqs)]
    return seqs


def _resolve_jobs(n_jobs) -> int:
    n_jobs = check_int(n_jobs, "n_jobs", -(2**31))
    cores = numba.config.NUMBA_NUM_THREADS
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive number of threads or -1, got 0")
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return min(n_jobs, cores)


def _device_pairs(xs, ys, ia, ib, metric, step_pattern, device, options) -> np.ndarray:
    """Finalised distances of the pairs (ia[k], ib[k]) by the torch wavefront on ``device``."""
    for name in ("itakura_slope", "mask"):
        if options[name] is not None:
            raise ValueError(f"{name} runs on CPU only; drop it or use device=None")
    if callable(metric):
        raise ValueError("a callable metric runs on CPU only; use device=None")
    if step_pattern != "symmetric1":
        raise ValueError(f"step_pattern={step_pattern!r} runs on CPU only; use device=None "
                         "(a device supports 'symmetric1')")
    import torch

    from . import batch as TB

    dev = TB.resolve_device(device)
    if len(ia) == 0:
        return np.empty(0)
    lx = np.array([len(s) for s in xs], np.int64)
    ly = np.array([len(s) for s in ys], np.int64)
    ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
    resolve_radius(options["radius"], options["window"], 1, 1)  # validates both
    if options["window"] is not None:  # round(w * max(n, m)) per pair, halves up
        longest = np.maximum(lx[ia], ly[ib])
        radii = np.floor(float(options["window"]) * longest + 0.5).astype(np.int64)
    else:  # a radius beyond every length: no band (and no int64 overflow)
        r = band_radius(options["radius"], int(max(lx.max(), ly.max())))
        radii = np.full(len(ia), -1 if r is None else r, np.int64)
    values = np.empty(len(ia))
    for xs_k, ys_k, members, e in scaled_groups(xs, ys, ia, ib, metric):
        Xt = torch.from_numpy(_pad(xs_k)).to(dev)
        Yt = Xt if ys_k is xs_k else torch.from_numpy(_pad(ys_k)).to(dev)
        acc, _ = TB.solve_pairs(Xt, Yt, ia[members], ib[members], lx, ly, radii[members],
                                METRICS[metric])
        values[members] = ext.unscale_many(TB.finalize_many(acc, metric), e, "a DTW distance")
    return values


def _pad(seqs: list[np.ndarray]) -> np.ndarray:
    """(len(seqs), max length, d) float64, zeros after each sequence's end."""
    out = np.zeros((len(seqs), max(len(s) for s in seqs), seqs[0].shape[1]))
    for k, s in enumerate(seqs):
        out[k, :len(s)] = s
    return out


def _fast_pairs(xs, ys, ia, ib, metric_code: int, options, parallel: bool = True) -> np.ndarray:
    """Raw accumulated costs of the pairs (ia[k], ib[k]), grouped by their two lengths."""
    values = np.empty(len(ia))
    groups = defaultdict(list)
    for k, (a, b) in enumerate(zip(ia, ib)):
        groups[(len(xs[a]), len(ys[b]))].append(k)
    singles = []
    for (n, m), members in groups.items():
        win = resolve_window(n, m, **options)
        members = np.asarray(members)
        if not win.feasible:
            values[members] = np.inf
            continue
        if not win.is_band:  # a mask that is no band: the general kernel, pair by pair
            for k in members:
                C = K.cost_matrix(xs[ia[k]], ys[ib[k]], metric_code)
                values[k] = general_solve(C, win, "symmetric1", False, False, False)[0]
            continue
        if len(members) >= MIN_LANE_GROUP:
            values[members] = _lane_group(xs, ys, ia[members], ib[members], win, metric_code,
                                          parallel)
        else:
            singles.append((members, win))
    if singles:
        _single_pairs(xs, ys, ia, ib, singles, metric_code, values, parallel)
    return values


# bytes of stacked pair copies a lane group holds at once: the pairs are copied into SIMD-lane
# arrays before the kernel; chunking keeps that copy small (a 2,000-series matrix would
# otherwise stack gigabytes) without changing any result: each block is computed alike
LANE_CHUNK_BYTES = 64 * 2 ** 20


def _lane_group(xs, ys, ia, ib, win, metric_code, parallel: bool = True) -> np.ndarray:
    n, d = xs[ia[0]].shape
    m = ys[ib[0]].shape[0]
    per_block = LANES * (n + m) * d * 8 * 2  # stacked and lane-transposed copies of one block
    chunk = LANES * max(1, LANE_CHUNK_BYTES // per_block)
    out = np.empty(len(ia))
    for start in range(0, len(ia), chunk):
        stop = min(start + chunk, len(ia))
        out[start:stop] = _lane_chunk(xs, ys, ia[start:stop], ib[start:stop], win, metric_code,
                                      parallel)
    return out


def _lane_chunk(xs, ys, ia, ib, win, metric_code, parallel: bool) -> np.ndarray:
    n_pairs = len(ia)
    n_blocks = -(-n_pairs // LANES)
    pad = n_blocks * LANES - n_pairs
    ia = np.concatenate([ia, np.full(pad, ia[0])])
    ib = np.concatenate([ib, np.full(pad, ib[0])])
    X = np.stack([xs[a] for a in ia])  # (P, n, d)
    Y = np.stack([ys[b] for b in ib])
    n, d = X.shape[1:]
    m = Y.shape[1]
    xl = np.ascontiguousarray(X.reshape(n_blocks, LANES, n, d).transpose(0, 2, 3, 1))
    yl = np.ascontiguousarray(Y.reshape(n_blocks, LANES, m, d).transpose(0, 2, 3, 1))
    del X, Y
    out = np.empty((n_blocks, LANES))
    if parallel:
        K.lanes_dtw_many(xl, yl, win.lo, win.hi, metric_code, out)
    else:  # the same per-block kernel, without numba's thread pool
        for blk in range(n_blocks):
            K.lanes_dtw(xl[blk], yl[blk], win.lo, win.hi, metric_code, out[blk])
    return out.ravel()[:n_pairs]


def _single_pairs(xs, ys, ia, ib, singles, metric_code, values, parallel: bool = True) -> None:
    """Pairs of rare length combinations, one anti-diagonal kernel call each, in threads."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(k, win) for members, win in singles for k in members]

    def run(job):
        k, win = job
        x, y = xs[ia[k]], ys[ib[k]]
        acc, _, _, _ = K.diagonal_dtw(np.ascontiguousarray(x.T), np.ascontiguousarray(y[::-1].T),
                                      win.lo, win.hi, metric_code, False, np.inf)
        values[k] = acc

    threads = numba.get_num_threads()
    if threads == 1 or len(jobs) < 4 or not parallel:
        for job in jobs:
            run(job)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, os.cpu_count() or 1)) as pool:
            list(pool.map(run, jobs))
