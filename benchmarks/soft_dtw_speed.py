"""Soft-DTW loss speed: ``mmalign.SoftDTWLoss`` against tslearn, forward and backward, in one run.

Cases (random standard-normal data, fixed seed, gamma = 1, squared-Euclidean costs):

* batch of B = 64 pairs, 256 x 256, d = 12, float64 on CPU: forward ``loss(x, y)`` and
  forward + backward ``loss(x, y).sum().backward()`` of ``SoftDTWLoss(reduction="none")``
  (numba kernels, parallel over the batch), of ``SoftDTWLoss(backend="torch")`` (the
  device-agnostic torch wavefront, here on CPU) and of two tslearn peers:
  ``tslearn.metrics.SoftDTWLossPyTorch`` on the same tensors, and tslearn's numba
  kernel called per pair in a Python loop (``soft_dtw`` forward; ``SquaredEuclidean``
  + ``SoftDTW.compute`` + ``SoftDTW.grad`` [+ ``jacobian_product``] for the gradient);
* a ragged batch of the same shape, lengths drawn in [128, 256] (mmalign only: tslearn
  has no ragged batches), cells counted inside each pair's lengths only;
* a long case, B = 4, 2048 x 2048, d = 2, forward + backward, in a fresh subprocess
  that reports its peak resident-memory growth (R is one float64 per cell, no n x m
  cost matrix is formed);
* on a CUDA device, if there is one (else the section records "skipped: no CUDA
  device"): B = 512, 256 x 256, d = 2 in float32 and float64, forward and forward +
  backward of ``SoftDTWLoss()`` (torch wavefront on the GPU) against ``pysdtw.SoftDTW``
  (numba.cuda kernels) in the same run, ratio = pysdtw / mmalign; the same for
  ``SoftDTWLoss(backend="triton")`` (fused Triton kernels), whose rows give its time
  over the wavefront's, each pysdtw timing appearing a second time against it, and a
  summary line naming the fastest mmalign backend per case; and a ragged batch,
  B = 8, padded 4096 x 4096, lengths in [2048, 4096], float32, which mmalign runs
  (checkpointed backward) and pysdtw is tried on (recorded as "fails: <error>" if it
  cannot).  Peak GPU memory per row.

Before a peer is timed its values are checked against mmalign's (relative difference
at most 1e-6, values and gradients with respect to x).  Every function is called
untimed for about ``WARMUP_S`` seconds (at least twice: numba compiles on its first
call), then the best of several timed calls is reported.  glibc is told to keep freed
memory in the process (``hold_freed_memory``), for every library alike: see there.
``cells`` = B * n * m DP cells (features not counted; valid cells only for ragged
batches); forward + backward rows count the same cells once.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import torch

import mmalign
from mmalign.warping.soft_loss import use_checkpoints

from .common import best_time, machine_info, machine_markdown, markdown_table, \
    relative_difference, usable_cores, write_report

NAME = "soft_dtw_speed"
SEED = 20240611
TOLERANCE = 1e-6
GAMMA = 1.0
TARGET = 5.0  # from the issue: forward and forward + backward at least 5x tslearn
WARMUP_S = 0.5  # untimed calls of each function for about this long before timing

REF_2 = "numba, all cores"
REF_1 = "numba, 1 thread"


class _Report:
    """Collects timed rows and value checks."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.repeats = 2 if quick else 5
        self.rows: list[dict] = []
        self.checks: list[dict] = []
        self.notes: list[str] = []

    def check(self, case: str, peer: str, quantity: str, ours, theirs, *,
              tolerance: float = TOLERANCE, scaled: bool = False) -> bool:
        """Record whether a peer's value agrees with mmalign's; return the verdict.

        Elementwise relative difference by default; ``scaled``: max |a - b| / max |a|, |b|
        (float32 sanity checks of gradients, whose small entries carry no relative accuracy).
        """
        a = np.asarray(ours, dtype=float)
        b = np.asarray(theirs, dtype=float)
        rel = relative_difference(a, b)
        if a.shape == b.shape and a.size:
            abs_diff = float(np.max(np.abs(a - b)))
            scale = float(max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))
        else:
            abs_diff, scale = math.inf, 1.0
        ok = (abs_diff / scale if scaled else rel) <= tolerance
        self.checks.append(dict(case=case, peer=peer, quantity=quantity, mmalign=_show(a),
                                peer_value=_show(b), max_rel_diff=rel,
                                max_abs_diff=abs_diff, abs_over_max=abs_diff / scale,
                                tolerance=tolerance, scaled=scaled, ok=ok))
        return ok

    def time(self, fn, *, slow: bool = False, repeats: int | None = None, sync=None) -> dict:
        """Warm up for about WARMUP_S seconds, then ``best_time`` (best of ``repeats``)."""
        if sync is not None:
            def timed():
                fn()
                sync()
        else:
            timed = fn
        calls = _warm_up(timed, WARMUP_S / 2 if self.quick else WARMUP_S)
        # slow peers: at most ~20 s of timed calls (at least one), ~8 s in quick mode
        timing = best_time(timed, repeats or self.repeats, warmup=False,
                           budget_s=(8.0 if self.quick else 20.0) if slow else None)
        timing["warmup_calls"] = calls
        return timing

    def row(self, library: str, case: str, timing: dict, cells: float, *, threads: str,
            reference: dict | None = None, reference_name: str = "", target: float | None = None,
            agrees: bool = True, verdict_note: str = "", note: str = "") -> None:
        seconds = timing["best"]
        ratio = None if reference is None else seconds / reference["best"]
        if not agrees:
            verdict = "DISAGREE (values differ; ratio not comparable)"
        elif target is None or ratio is None:
            verdict = ""
        else:
            verdict = "PASS" if ratio >= target else "FAIL"
        if verdict_note and verdict:
            verdict = f"{verdict} ({verdict_note})"
        self.rows.append(dict(library=library, case=case, threads=threads, seconds=seconds,
                              cells=cells, mcells_per_s=cells / seconds / 1e6, ratio=ratio,
                              reference=reference_name if reference is not None else "",
                              target=target, result=verdict, repeats=timing["repeats"],
                              times=timing["times"], warmup_calls=timing.get("warmup_calls"),
                              first_call=timing.get("first_call"), note=note))


def _warm_up(fn, seconds: float, min_calls: int = 2, max_calls: int = 30) -> int:
    """Untimed calls of ``fn`` for about ``seconds`` (at least min_calls, at most max_calls).

    The first call compiles (numba) and grows the heap; the later ones settle the
    allocator.  Every function, mmalign's and the peers', gets the same rule.
    """
    end = time.perf_counter() + seconds
    calls = 0
    while True:
        fn()
        calls += 1
        if calls >= max_calls or (calls >= min_calls and time.perf_counter() >= end):
            return calls


def hold_freed_memory() -> str:
    """Ask glibc to keep freed memory in the process (no mmap for large blocks, no trim).

    Every call of these losses allocates tens to hundreds of MB (R, E, cost tensors)
    and frees them.  glibc serves blocks above 32 MiB by mmap and unmaps them on
    free; on this VM pages returned to the kernel are handed back to the host and
    re-faulted on the next allocation, which made timings bimodal (a B=64 forward
    took 25 ms or 65 ms for seconds at a time, the difference all kernel time).
    With ``M_MMAP_MAX = 0`` and ``M_TRIM_THRESHOLD = 2**31 - 1`` freed blocks are reused
    instead, for every library in the process alike.  Returns what was done.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        if libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1:
            return "glibc mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2**31-1): freed memory reused"
    except (OSError, AttributeError):
        pass
    return "allocator defaults (mallopt unavailable)"


def _show(value) -> str:
    value = np.asarray(value, dtype=float)
    if value.ndim == 0:
        return f"{float(value):.12g}"
    return f"{value.size} values, sum {float(np.sum(value)):.12g}"


def _grad(fn, x: torch.Tensor) -> np.ndarray:
    """Gradient of ``fn().sum()`` with respect to x, as float64 numpy."""
    x.grad = None
    fn().sum().backward()
    g = x.grad.detach().cpu().numpy().astype(np.float64)
    x.grad = None
    return g


# --------------------------------------------------------------------------- tslearn per pair

def _ts_pair_forward(xn: np.ndarray, yn: np.ndarray, lx=None, ly=None) -> np.ndarray:
    """tslearn's numba soft-DTW, one ``soft_dtw`` call per pair (Python loop)."""
    from tslearn.metrics import soft_dtw

    out = np.empty(len(xn))
    for b in range(len(xn)):
        n = xn.shape[1] if lx is None else int(lx[b])
        m = yn.shape[1] if ly is None else int(ly[b])
        out[b] = soft_dtw(xn[b, :n], yn[b, :m], gamma=GAMMA)
    return out


def _ts_pair_grad_d(xn: np.ndarray, yn: np.ndarray) -> list:
    """Per pair: cost matrix, forward, gradient w.r.t. the cost matrix (E); no chain rule."""
    from tslearn.metrics import SoftDTW
    from tslearn.metrics.softdtw_variants import SquaredEuclidean

    out = []
    for b in range(len(xn)):
        sdtw = SoftDTW(SquaredEuclidean(xn[b], yn[b]).compute(), gamma=GAMMA)
        sdtw.compute()
        out.append(sdtw.grad())
    return out


def _ts_pair_grad_x(xn: np.ndarray, yn: np.ndarray, lx=None, ly=None) -> np.ndarray:
    """Per pair: as ``_ts_pair_grad_d`` plus the chain rule to x (numba jacobian_product)."""
    from tslearn.metrics import SoftDTW
    from tslearn.metrics.softdtw_variants import SquaredEuclidean

    out = np.zeros(xn.shape)
    for b in range(len(xn)):
        n = xn.shape[1] if lx is None else int(lx[b])
        m = yn.shape[1] if ly is None else int(ly[b])
        cost = SquaredEuclidean(xn[b, :n], yn[b, :m])
        sdtw = SoftDTW(cost.compute(), gamma=GAMMA)
        sdtw.compute()
        out[b, :n] = cost.jacobian_product(sdtw.grad())
    return out


def _ts_loss_internals_grad(ts_loss, x: torch.Tensor, y: torch.Tensor, *,
                            round_r_to_float32: bool) -> np.ndarray:
    """SoftDTWLossPyTorch's own kernels step by step, optionally without its float32 round trip.

    tslearn 0.10's ``_SoftDTWLossPyTorch`` converts R (and E) with ``torch.Tensor(ndarray)``,
    which makes float32 tensors before ``.type(float64)``; the backward then reads the
    rounded R.  This reproduces its gradient with R kept in float64 (or rounded as it does).
    """
    from tslearn.metrics import soft_dtw_loss_pytorch as tsl

    xd = x.detach().clone().requires_grad_(True)
    D = ts_loss._euclidean_squared_dist(xd, y)
    Dn = D.detach().cpu().numpy().astype(np.float64)
    mask = tsl._njit_compute_mask(Dn.shape[1], Dn.shape[2], 0, None, None)
    R = tsl._njit_soft_dtw_batch(Dn, GAMMA, mask)
    if round_r_to_float32:
        R = R.astype(np.float32).astype(np.float64)
    E = tsl._njit_soft_dtw_grad_batch(Dn, R, GAMMA)
    if round_r_to_float32:
        E = E.astype(np.float32).astype(np.float64)
    (g,) = torch.autograd.grad(D, xd, grad_outputs=torch.from_numpy(E).to(D.dtype))
    return g.detach().cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------- cases

def _batch(rep: _Report, rng: np.random.Generator, B: int, n: int, m: int, d: int) -> None:
    from tslearn.metrics import SoftDTWLossPyTorch

    xn = rng.standard_normal((B, n, d))
    yn = rng.standard_normal((B, m, d))
    x = torch.tensor(xn, requires_grad=True)
    y = torch.tensor(yn)
    cells = float(B) * n * m
    cores = usable_cores()
    numba.set_num_threads(cores)
    tthreads = torch.get_num_threads()
    fwd = f"forward, B={B}, {n}x{m}, d={d}, float64"
    fb = f"forward+backward, B={B}, {n}x{m}, d={d}, float64"

    loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none")

    def mm_fwd():
        return loss(x, y)

    def mm_fb():
        x.grad = None
        loss(x, y).sum().backward()

    ours = mm_fwd().detach().numpy()
    ours_grad = _grad(mm_fwd, x)

    # ---- value checks (the peers' checking calls are their warm-ups)
    theirs = _ts_pair_forward(xn, yn)
    ok_pair_fwd = rep.check(fwd, "tslearn soft_dtw per pair", "values", ours, theirs)
    theirs_gx = _ts_pair_grad_x(xn, yn)
    ok_pair_fb = rep.check(fb, "tslearn SoftDTW.grad + jacobian_product per pair", "dL/dx",
                           ours_grad, theirs_gx)

    ts_loss = SoftDTWLossPyTorch(gamma=GAMMA)
    ts_values = ts_loss(x, y).detach().numpy()  # numba compiles here
    ok_ts_fwd = rep.check(fwd, "tslearn SoftDTWLossPyTorch", "values", ours, ts_values)
    ts_grad = _grad(lambda: ts_loss(x, y), x)
    ok_ts_fb = rep.check(fb, "tslearn SoftDTWLossPyTorch", "dL/dx", ours_grad, ts_grad)
    # where a SoftDTWLossPyTorch disagreement comes from: its kernels with R kept in float64,
    # then with R and E rounded through float32 as its torch.Tensor(ndarray) calls do
    ok_internal = rep.check(fb, "SoftDTWLossPyTorch's kernels, R kept float64 (diagnostic)",
                            "dL/dx", ours_grad,
                            _ts_loss_internals_grad(ts_loss, x, y, round_r_to_float32=False))
    rounded = _ts_loss_internals_grad(ts_loss, x, y, round_r_to_float32=True)
    rep.check(fb, "SoftDTWLossPyTorch's kernels, R, E rounded to float32 (diagnostic, vs "
              "SoftDTWLossPyTorch itself, not mmalign)", "dL/dx", ts_grad, rounded)
    ts_fb_agrees = ok_ts_fb or ok_internal  # see the verdict note below

    torch_loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none", backend="torch")
    torch_values = torch_loss(x, y).detach().numpy()
    ok_torch = rep.check(fwd, "mmalign backend='torch' (CPU)", "values", ours, torch_values)
    ok_torch &= rep.check(fb, "mmalign backend='torch' (CPU)", "dL/dx", ours_grad,
                          _grad(lambda: torch_loss(x, y), x))

    # ---- forward
    ref = rep.time(mm_fwd)
    rep.row("mmalign SoftDTWLoss", fwd, ref, cells, threads=f"{cores} (numba prange)",
            note="reduction='none', backend auto = numba on CPU")
    numba.set_num_threads(1)
    ref1 = rep.time(mm_fwd)
    numba.set_num_threads(cores)
    rep.row("mmalign SoftDTWLoss", fwd, ref1, cells, threads="1",
            note="same, numba.set_num_threads(1): reference for the 1-core peer")
    timing = rep.time(lambda: torch_loss(x, y), slow=True)
    rep.row("mmalign SoftDTWLoss(backend='torch')", fwd, timing, cells,
            threads=f"{tthreads} (torch)", reference=ref, reference_name=REF_2, agrees=ok_torch,
            note="EXTRA mmalign row, not a peer: torch wavefront on CPU; ratio = its time / "
                 "numba's")
    timing = rep.time(lambda: ts_loss(x, y), slow=True, repeats=2)
    rep.row("tslearn SoftDTWLossPyTorch", fwd, timing, cells,
            threads=f"{cores} (numba prange) + {tthreads} (torch)", reference=ref,
            reference_name=REF_2, target=TARGET, agrees=ok_ts_fwd,
            note="torch (B, n, m, d) broadcast for D, numba prange over the batch for R")
    timing = rep.time(lambda: _ts_pair_forward(xn, yn), slow=True)
    rep.row("tslearn soft_dtw per pair", fwd, timing, cells, threads="1", reference=ref,
            reference_name=REF_2, target=TARGET, agrees=ok_pair_fwd,
            note="Python loop over the batch of tslearn.metrics.soft_dtw(x[b], y[b], gamma=1)")
    rep.row("tslearn soft_dtw per pair", fwd, timing, cells, threads="1", reference=ref1,
            reference_name=REF_1, agrees=ok_pair_fwd,
            note="same timing; same-core comparison, information only")

    # ---- forward + backward
    ref = rep.time(mm_fb)
    rep.row("mmalign SoftDTWLoss", fb, ref, cells, threads=f"{cores} (numba prange)",
            note="loss(x, y).sum().backward(); kernels return dL/dx and dL/dy")
    numba.set_num_threads(1)
    ref1 = rep.time(mm_fb)
    numba.set_num_threads(cores)
    rep.row("mmalign SoftDTWLoss", fb, ref1, cells, threads="1",
            note="same, numba.set_num_threads(1): reference for the 1-core peer")

    def torch_fb():
        x.grad = None
        torch_loss(x, y).sum().backward()

    timing = rep.time(torch_fb, slow=True)
    rep.row("mmalign SoftDTWLoss(backend='torch')", fb, timing, cells,
            threads=f"{tthreads} (torch)", reference=ref, reference_name=REF_2, agrees=ok_torch,
            note="EXTRA mmalign row, not a peer: torch wavefront on CPU; ratio = its time / "
                 "numba's")

    def ts_fb():
        x.grad = None
        ts_loss(x, y).sum().backward()

    timing = rep.time(ts_fb, slow=True, repeats=2)
    rep.row("tslearn SoftDTWLossPyTorch", fb, timing, cells,
            threads=f"{cores} (numba prange) + {tthreads} (torch)", reference=ref,
            reference_name=REF_2, target=TARGET, agrees=ts_fb_agrees,
            verdict_note="" if ok_ts_fb else "its dL/dx DISAGREES with mmalign beyond 1e-6: "
            "tslearn rounds R through float32, see the checks",
            note="backward: E by numba prange, then torch autograd through the (B, n, m, d) "
                 "broadcast D")
    timing = rep.time(lambda: _ts_pair_grad_d(xn, yn), slow=True)
    rep.row("tslearn SoftDTW per pair, dL/dD only", fb, timing, cells, threads="1",
            reference=ref, reference_name=REF_2, target=TARGET, agrees=ok_pair_fb,
            note="per pair: D = SquaredEuclidean(x_b, y_b).compute(); s = SoftDTW(D, 1.0); "
                 "s.compute(); s.grad() (n x m E). NO chain rule to x: less work than mmalign")
    timing_x = rep.time(lambda: _ts_pair_grad_x(xn, yn), slow=True)
    rep.row("tslearn SoftDTW per pair, dL/dx", fb, timing_x, cells, threads="1",
            reference=ref, reference_name=REF_2, target=TARGET, agrees=ok_pair_fb,
            note="as above + SquaredEuclidean.jacobian_product(E) (numba): the quantity "
                 "mmalign returns")
    rep.row("tslearn SoftDTW per pair, dL/dx", fb, timing_x, cells, threads="1",
            reference=ref1, reference_name=REF_1, agrees=ok_pair_fb,
            note="same timing; same-core comparison, information only")


def _ragged(rep: _Report, rng: np.random.Generator, B: int, n: int, m: int, d: int,
            lo: int) -> None:
    xn = rng.standard_normal((B, n, d))
    yn = rng.standard_normal((B, m, d))
    lx = rng.integers(lo, n + 1, size=B)
    ly = rng.integers(lo, m + 1, size=B)
    x = torch.tensor(xn, requires_grad=True)
    y = torch.tensor(yn)
    tlx, tly = torch.from_numpy(lx), torch.from_numpy(ly)
    cells = float(np.sum(lx * ly))
    cores = usable_cores()
    numba.set_num_threads(cores)
    case = (f"ragged forward+backward, B={B}, padded {n}x{m}, lengths in [{lo}, {n}], "
            f"d={d}, float64")
    fcase = case.replace("forward+backward", "forward")
    loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none")
    torch_loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none", backend="torch")

    def mm_fwd():
        return loss(x, y, tlx, tly)

    def mm_fb():
        x.grad = None
        loss(x, y, tlx, tly).sum().backward()

    ours = mm_fwd().detach().numpy()
    ours_grad = _grad(mm_fwd, x)
    ok = rep.check(fcase, "tslearn soft_dtw per pair on the unpadded pairs", "values", ours,
                   _ts_pair_forward(xn, yn, lx, ly))
    ok &= rep.check(case, "tslearn SoftDTW.grad + jacobian_product per unpadded pair "
                    "(padding: 0)", "dL/dx", ours_grad, _ts_pair_grad_x(xn, yn, lx, ly))
    ok_torch = rep.check(fcase, "mmalign backend='torch' (CPU)", "values", ours,
                         torch_loss(x, y, tlx, tly).detach().numpy())
    ok_torch &= rep.check(case, "mmalign backend='torch' (CPU)", "dL/dx", ours_grad,
                          _grad(lambda: torch_loss(x, y, tlx, tly), x))

    note = (f"valid cells only: {int(cells):,} of {B * n * m:,} padded; "
            "tslearn has no ragged batches")
    rep.row("mmalign SoftDTWLoss", fcase, rep.time(mm_fwd), cells, threads=f"{cores} (numba)",
            agrees=ok, note=note)
    ref = rep.time(mm_fb)
    rep.row("mmalign SoftDTWLoss", case, ref, cells, threads=f"{cores} (numba)", agrees=ok,
            note=note)

    def torch_fb():
        x.grad = None
        torch_loss(x, y, tlx, tly).sum().backward()

    rep.row("mmalign SoftDTWLoss(backend='torch')", case, rep.time(torch_fb, slow=True), cells,
            threads=f"{torch.get_num_threads()} (torch)", reference=ref, reference_name=REF_2,
            agrees=ok_torch, note="EXTRA mmalign row: torch wavefront on CPU sweeps the padded "
                                  "grid; ratio = its time / numba's")


# --------------------------------------------------------------------------- long case (subprocess)

def _rss_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _long_child(B: int, n: int, d: int, repeats: int, seed: int) -> dict:
    """Run in a fresh interpreter: time forward+backward and measure peak RSS growth."""
    import resource

    allocator = hold_freed_memory()
    cores = usable_cores()
    numba.set_num_threads(cores)
    loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none")
    # compile (or load from cache) on a small problem first
    xs = torch.randn(B, 64, d, dtype=torch.float64, requires_grad=True)
    loss(xs, torch.randn(B, 64, d, dtype=torch.float64)).sum().backward()

    rng = np.random.default_rng(seed)
    xn = rng.standard_normal((B, n, d))
    yn = rng.standard_normal((B, n, d))
    x = torch.tensor(xn, requires_grad=True)
    y = torch.tensor(yn)

    def fb():
        x.grad = None
        loss(x, y).sum().backward()

    # peak RSS: reset the high-water mark (Linux >= 4.0) where possible
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        method = "VmHWM after resetting it via /proc/self/clear_refs, minus VmRSS before"
    except OSError:
        method = "ru_maxrss after minus VmRSS before (peak may be masked by earlier peaks)"
    rss_before = _rss_kib("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    fb()
    first = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") if method.startswith("VmHWM") else None
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if peak is None:
        peak = maxrss_after
    values = loss(x, y).detach().numpy()
    _warm_up(lambda: loss(x, y), WARMUP_S)
    fwd = best_time(lambda: loss(x, y), repeats, warmup=False)
    _warm_up(fb, WARMUP_S)
    timing = best_time(fb, repeats, warmup=False)
    timing["first_call"] = first

    # check pair 0 against tslearn's kernel (value and dL/dx)
    fb()
    grad = x.grad.detach().numpy()
    return dict(B=B, n=n, d=d, cores=cores, allocator=allocator, forward=fwd,
                forward_backward=timing,
                rss_before_kib=rss_before, peak_kib=peak, ru_maxrss_before_kib=maxrss_before,
                ru_maxrss_after_kib=maxrss_after, method=method,
                values0=float(values[0]), ts_value0=float(_ts_pair_forward(xn[:1], yn[:1])[0]),
                grad0=grad[0].tolist(), ts_grad0=_ts_pair_grad_x(xn[:1], yn[:1])[0].tolist())


def _long(rep: _Report, B: int, n: int, d: int) -> dict | None:
    root = Path(__file__).resolve().parent.parent
    code = (f"import json; from benchmarks.soft_dtw_speed import _long_child; "
            f"print('@@' + json.dumps(_long_child({B}, {n}, {d}, {rep.repeats}, {SEED + 1})))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    if proc.returncode != 0 or not lines:
        rep.notes.append(f"- **Long case failed** (exit {proc.returncode}): "
                         f"{proc.stderr.strip().splitlines()[-1:] or ''}")
        return None
    res = json.loads(lines[-1][2:])
    case = f"long forward+backward, B={B}, {n}x{n}, d={d}, float64"
    fcase = case.replace("forward+backward", "forward")
    cells = float(B) * n * n
    ok = rep.check(case, "tslearn soft_dtw, pair 0", "value", res["values0"], res["ts_value0"])
    ok &= rep.check(case, "tslearn SoftDTW.grad + jacobian_product, pair 0", "dL/dx",
                    res["grad0"], res["ts_grad0"])
    r_bytes = cells * 8
    growth = (res["peak_kib"] - res["rss_before_kib"]) * 1024.0
    res.update(r_bytes=r_bytes, peak_growth_bytes=growth)
    mem = (f"first (cold) call {res['forward_backward']['first_call']:.3g} s; "
           f"peak RSS growth during it {growth / 2**20:,.0f} MiB; "
           f"R = B·n·m float64 = {r_bytes / 2**20:,.0f} MiB; an n×m cost matrix would add "
           f"another {r_bytes / 2**20:,.0f} MiB (and E as much again)")
    rep.row("mmalign SoftDTWLoss", fcase, res["forward"], cells, threads=f"{res['cores']} (numba)",
            agrees=ok, note="fresh subprocess")
    rep.row("mmalign SoftDTWLoss", case, res["forward_backward"], cells,
            threads=f"{res['cores']} (numba)", agrees=ok, note=mem)
    return res


# --------------------------------------------------------------------------- GPU

def _gpu(rep: _Report, rng: np.random.Generator) -> str:
    if not torch.cuda.is_available():
        return "skipped: no CUDA device"
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    status = _gpu_cases(rep, rng, dev, name, sync=torch.cuda.synchronize,
                        reset_peak=lambda: torch.cuda.reset_peak_memory_stats(dev),
                        peak=lambda: torch.cuda.max_memory_allocated(dev))
    return f"ran on {name}; " + "; ".join(status)


def _pysdtw(dev):
    """pysdtw's ``SoftDTW`` (numba.cuda kernels on CUDA, its numba CPU kernels otherwise)."""
    import pysdtw

    return pysdtw.SoftDTW(gamma=GAMMA, use_cuda=dev.type == "cuda")


def _packed(t: torch.Tensor, lengths: torch.Tensor | None):
    """pysdtw takes ragged batches as PackedSequence (padded tensors: full length)."""
    if lengths is None:
        return t
    return torch.nn.utils.rnn.pack_padded_sequence(t, lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)


def _failure(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"fails: {type(exc).__name__}: {text[:300]}"


def _gpu_cases(rep: _Report, rng: np.random.Generator, dev, name: str, *, sync, reset_peak,
               peak, sizes: dict | None = None) -> list[str]:
    """The CUDA cases against pysdtw; returns one status line per pysdtw case.

    ``dev``, the memory hooks and ``sizes`` are parameters so that the path can be
    dry-run on CPU at small sizes (pysdtw then runs its CPU kernels).  Default sizes:
    B = 512, 256 x 256, d = 2 in float32 and float64 (forward and forward+backward,
    mmalign and pysdtw); B = 8 (2 with ``--quick``) ragged in a padded 4096 x 4096,
    lengths in [2048, 4096], d = 2, float32 (pysdtw's kernels use one block of at
    most 1024 threads per pair: its attempt is recorded, with the error if it fails).
    """
    sizes = sizes or dict(batch=(512, 256, 2),
                          ragged=(2 if rep.quick else 8, 4096, 2048, 2))
    status = []
    B, n, d = sizes["batch"]
    for dtype in (torch.float32, torch.float64):
        status.append(_gpu_case(rep, rng, dev, name, B, n, d, None, dtype, sync=sync,
                                reset_peak=reset_peak, peak=peak))
    B, n, lo, d = sizes["ragged"]
    status.append(_gpu_case(rep, rng, dev, name, B, n, d, lo, torch.float32, sync=sync,
                            reset_peak=reset_peak, peak=peak))
    return status


def _gpu_case(rep: _Report, rng: np.random.Generator, dev, name: str, B: int, n: int, d: int,
              lengths_lo: int | None, dtype, *, sync, reset_peak, peak) -> str:
    """One CUDA case: checks, mmalign forward / forward+backward, pysdtw the same."""
    f64 = dtype == torch.float64
    kind = "float64" if f64 else "float32"
    xn = rng.standard_normal((B, n, d))
    yn = rng.standard_normal((B, n, d))
    if lengths_lo is None:
        lx = ly = None
        cells = float(B) * n * n
        shape = f"B={B}, {n}x{n}, d={d}, {kind}"
    else:
        lx = torch.from_numpy(rng.integers(lengths_lo, n + 1, size=B))
        ly = torch.from_numpy(rng.integers(lengths_lo, n + 1, size=B))
        lx[0] = ly[0] = n  # one pair spans the padded size
        cells = float((lx * ly).sum())
        shape = f"ragged B={B}, padded {n}x{n}, lengths in [{lengths_lo}, {n}], d={d}, {kind}"
    fwd, fb = f"GPU forward, {shape}", f"GPU forward+backward, {shape}"
    x = torch.tensor(xn, dtype=dtype, device=dev, requires_grad=True)
    y = torch.tensor(yn, dtype=dtype, device=dev)
    glx = None if lx is None else lx.to(dev)
    gly = None if ly is None else ly.to(dev)
    # mmalign on the device: the torch wavefront (forced on CPU for a dry run); R kept or
    # checkpointed as "auto" decides by size, the other choice timed as an extra row
    backend = "auto" if dev.type == "cuda" else "torch"
    loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none", backend=backend)
    auto_ckpt = use_checkpoints(
        B, n if lx is None else int(lx.max()), n if ly is None else int(ly.max()),
        x.element_size(), None)

    # checks against mmalign's numba kernels on CPU in float64: to 1e-6 in float64; in
    # float32 a sanity check (values 1e-4 relative, gradients 5e-2 of their largest
    # magnitude: the backward's exp(R[i+1, j] - R[i, j] - D) cancels in float32)
    per_pair = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none")
    xc = torch.tensor(xn, requires_grad=True)
    yc = torch.tensor(yn)
    cpu_values = per_pair(xc, yc, lx, ly).detach().numpy()
    cpu_grad = _grad(lambda: per_pair(xc, yc, lx, ly), xc)
    ours = loss(x, y, glx, gly).detach().cpu().numpy()
    ours_grad = _grad(lambda: loss(x, y, glx, gly), x)
    vtol, gtol = (TOLERANCE, TOLERANCE) if f64 else (1e-4, 5e-2)
    ok = rep.check(fwd, "mmalign numba on CPU, float64", "values", ours, cpu_values,
                   tolerance=vtol)
    ok &= rep.check(fb, "mmalign numba on CPU, float64", "dL/dx", ours_grad, cpu_grad,
                    tolerance=gtol, scaled=not f64)

    def mm_fwd():
        return loss(x, y, glx, gly)

    def mm_fb():
        x.grad = None
        loss(x, y, glx, gly).sum().backward()

    store = "checkpointed R" if auto_ckpt else "full R"
    reset_peak()
    ref_fwd = rep.time(mm_fwd, sync=sync, slow=True)
    mem_fwd = peak()
    rep.row("mmalign SoftDTWLoss (CUDA)", fwd, ref_fwd, cells, threads=name, agrees=ok,
            note=f"torch wavefront, {store} (auto); x requires grad; peak GPU memory "
                 f"{mem_fwd / 2**20:,.0f} MiB")
    reset_peak()
    ref_fb = rep.time(mm_fb, sync=sync, slow=True)
    mem_fb = peak()
    rep.row("mmalign SoftDTWLoss (CUDA)", fb, ref_fb, cells, threads=name, agrees=ok,
            note=f"torch wavefront, {store} (auto); peak GPU memory {mem_fb / 2**20:,.0f} MiB")
    other = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none", backend=backend,
                                checkpoint=not auto_ckpt)

    def other_fb():
        x.grad = None
        other(x, y, glx, gly).sum().backward()

    reset_peak()
    timing = rep.time(other_fb, sync=sync, slow=True)
    rep.row(f"mmalign SoftDTWLoss(checkpoint={not auto_ckpt}) (CUDA)", fb, timing, cells,
            threads=name, reference=ref_fb, reference_name="mmalign auto", agrees=ok,
            note=f"EXTRA mmalign row: {'checkpointed' if not auto_ckpt else 'full'} R forced; "
                 f"peak GPU memory {peak() / 2**20:,.0f} MiB; ratio = its time / auto's")

    # mmalign's fused Triton kernels (backend="triton"): one launch per direction
    tri = _triton_rows(rep, dev, name, x, y, glx, gly, fwd, fb, cells, cpu_values, cpu_grad,
                       vtol, gtol, f64, store, ref_fwd, ref_fb, sync=sync,
                       reset_peak=reset_peak, peak=peak)

    # pysdtw: default pairwise_l2_squared (|x|^2 + |y|^2 - 2 x.y, its fast path)
    try:
        sdtw = _pysdtw(dev)
        px, py = _packed(x, lx), _packed(y, ly)
        theirs = sdtw(px, py).detach().cpu().numpy()

        def pf():
            return sdtw(_packed(x, lx), _packed(y, ly))

        theirs_grad = _grad(pf, x)
    except Exception as exc:  # noqa: BLE001 - a peer's failure is a result
        if dev.type == "cuda":
            torch.cuda.empty_cache()
        return f"pysdtw on {shape}: {_failure(exc)}"
    ok_p = rep.check(fwd, "pysdtw SoftDTW", "values", ours, theirs, tolerance=vtol)
    ok_p &= rep.check(fb, "pysdtw SoftDTW", "dL/dx", ours_grad, theirs_grad, tolerance=gtol,
                      scaled=not f64)

    def p_fb():
        x.grad = None
        pf().sum().backward()

    note = ("numba.cuda kernel, one block per pair; costs by |x|^2 + |y|^2 - 2 x.y (its "
            "default); ragged input as PackedSequence" if lx is not None else
            "numba.cuda kernel, one block per pair; costs by |x|^2 + |y|^2 - 2 x.y (its default)")
    for case, fn, ref in ((fwd, pf, ref_fwd), (fb, p_fb, ref_fb)):
        reset_peak()
        timing = rep.time(fn, sync=sync, slow=True)
        memory = f"peak GPU memory {peak() / 2**20:,.0f} MiB"
        rep.row("pysdtw SoftDTW", case, timing, cells, threads=name, reference=ref,
                reference_name="mmalign auto", agrees=ok_p, note=f"{note}; {memory}")
        if tri is not None:  # the same timing against mmalign's Triton kernels
            rep.row("pysdtw SoftDTW", case, timing, cells, threads=name,
                    reference=tri[case], reference_name="mmalign backend='triton'",
                    agrees=ok_p and tri["ok"],
                    note=f"same pysdtw timing, ratio against mmalign backend='triton'; {memory}")
    return f"pysdtw on {shape}: runs" + ("" if ok_p else " (values disagree)")


def triton_usable(dev) -> str | None:
    """Why backend='triton' cannot run on ``dev`` here, or None if it can.

    CUDA devices need triton; CPU devices (dry runs) also ``TRITON_INTERPRET=1`` set
    before triton was imported.
    """
    try:
        from mmalign.warping import _triton_soft
    except (ImportError, RuntimeError) as exc:
        return f"triton cannot be imported: {exc}"
    if dev.type != "cuda" and not (os.environ.get("TRITON_INTERPRET") == "1"
                                   and _triton_soft.interpreted()):
        return "CPU dry run without TRITON_INTERPRET=1"
    return None


def _triton_rows(rep: _Report, dev, name: str, x, y, glx, gly, fwd: str, fb: str,
                 cells: float, cpu_values, cpu_grad, vtol: float, gtol: float, f64: bool,
                 store: str, ref_fwd: dict, ref_fb: dict, *, sync, reset_peak, peak):
    """Rows of SoftDTWLoss(backend='triton') beside the wavefront's; their timings or None.

    Checked against mmalign's numba kernels on CPU like the wavefront; ratio = its
    time / the wavefront's (``mmalign auto``), so < 1 means Triton is faster.  A note
    names the faster mmalign backend for the case.
    """
    why = triton_usable(dev)
    if why is not None:
        rep.notes.append(f"- backend='triton' not run on {fwd}: {why}")
        return None
    loss = mmalign.SoftDTWLoss(gamma=GAMMA, reduction="none", backend="triton")
    try:
        ours = loss(x, y, glx, gly).detach().cpu().numpy()
        ours_grad = _grad(lambda: loss(x, y, glx, gly), x)
    except Exception as exc:  # noqa: BLE001 - a failure is a result
        rep.notes.append(f"- **backend='triton' failed** on {fwd}: {_failure(exc)}")
        return None
    ok = rep.check(fwd, "mmalign backend='triton' vs numba on CPU, float64", "values", ours,
                   cpu_values, tolerance=vtol)
    ok &= rep.check(fb, "mmalign backend='triton' vs numba on CPU, float64", "dL/dx",
                    ours_grad, cpu_grad, tolerance=gtol, scaled=not f64)

    def t_fwd():
        return loss(x, y, glx, gly)

    def t_fb():
        x.grad = None
        loss(x, y, glx, gly).sum().backward()

    out = {"ok": ok}
    for case, fn, ref in ((fwd, t_fwd, ref_fwd), (fb, t_fb, ref_fb)):
        reset_peak()
        timing = rep.time(fn, sync=sync, slow=True)
        out[case] = timing
        rep.row("mmalign SoftDTWLoss(backend='triton') (CUDA)", case, timing, cells,
                threads=name, reference=ref, reference_name="mmalign auto", agrees=ok,
                note=f"EXTRA mmalign row: fused Triton kernels, one program per pair, "
                     f"{store} (auto); ratio = its time / the torch wavefront's (< 1: Triton "
                     f"faster); peak GPU memory {peak() / 2**20:,.0f} MiB")
        fastest = "backend='triton'" if timing["best"] < ref["best"] else \
            "torch wavefront (backend='auto')"
        rep.notes.append(f"- Fastest mmalign backend on {case}: **{fastest}** (Triton "
                         f"{timing['best']:.4g} s, wavefront {ref['best']:.4g} s)")
    return out


# --------------------------------------------------------------------------- report

def run(quick: bool = False) -> str:
    """Run every case, write ``results/soft_dtw_speed.md|json`` and return the Markdown."""
    allocator = hold_freed_memory()
    rng = np.random.default_rng(SEED)
    rep = _Report(quick)
    threads_before = numba.get_num_threads()
    B = 16 if quick else 64
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _batch(rep, rng, B, 256, 256, 12)
            _ragged(rep, rng, B, 256, 256, 12, 128)
            long_res = _long(rep, 4, 1024 if quick else 2048, 2)
            gpu = _gpu(rep, rng)
    finally:
        numba.set_num_threads(threads_before)

    info = machine_info()
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    info["allocator"] = allocator
    table = markdown_table(
        ["library", "case", "threads", "seconds", "M cells/s", "ratio (peer / mmalign)",
         "vs mmalign", "target", "result", "notes"],
        [[r["library"], r["case"], r["threads"], r["seconds"], r["mcells_per_s"],
          "ref" if r["ratio"] is None else f"{r['ratio']:.2f}", r["reference"] or "—",
          "—" if r["target"] is None else f"≥ {r['target']:g}", r["result"] or "—", r["note"]]
         for r in rep.rows])
    checks = markdown_table(
        ["case", "compared with", "quantity", "mmalign", "other", "max rel. diff (elementwise)",
         "max abs diff / max abs", "tolerance", "verdict"],
        [[c["case"], c["peer"], c["quantity"], c["mmalign"], c["peer_value"],
          f"{c['max_rel_diff']:.1e}", f"{c['abs_over_max']:.1e}",
          f"{c['tolerance']:g}" + (" of max abs" if c["scaled"] else " elementwise"),
          "ok" if c["ok"] else "DISAGREE"] for c in rep.checks])

    failed = [r for r in rep.rows if r["result"].startswith("FAIL")]
    disagreements = [c for c in rep.checks if not c["ok"]]
    summary = [f"- **Target missed (FAIL)**: {r['library']} on {r['case']}: ratio "
               f"{r['ratio']:.2f} < {r['target']:g}" for r in failed]
    summary += [f"- **Values disagree**: {c['peer']} on {c['case']} ({c['quantity']}): "
                f"max rel. diff {c['max_rel_diff']:.1e} elementwise, max abs diff / max abs "
                f"{c['abs_over_max']:.1e}" for c in disagreements]
    if not failed:
        summary.append("- Every ≥ 5× target met.")
    if not disagreements:
        summary.append("- Every compared value agrees with mmalign to 1e-6 relative.")
    slower = [r for r in rep.rows if r["ratio"] is not None and r["ratio"] < 1.0
              and "EXTRA" not in r["note"]]
    summary += [f"- **mmalign slower than a peer**: {r['library']} on {r['case']} takes "
                f"{r['ratio']:.2f}x the time of mmalign ({r['reference']})" for r in slower]
    summary += rep.notes

    markdown = "\n".join([
        f"# Soft-DTW loss speed{' (quick)' if quick else ''}",
        "",
        machine_markdown(info).rstrip("\n") + f"; torch {torch.__version__} "
        f"({torch.get_num_threads()} intra-op threads)\n",
        "Random standard-normal data (seed %d), gamma = 1, squared-Euclidean costs. Every "
        "function, mmalign's and the peers', is called untimed for about %g s first (at "
        "least twice), then the best of up to %d timed calls is reported (2 for "
        "SoftDTWLossPyTorch; fewer for calls slower than a few seconds; the JSON keeps "
        "every time and the number of warm-up calls). Cells = B·n·m DP cells (features "
        "not counted; ragged: cells inside each pair's lengths only); forward+backward "
        "counts them once. "
        "ratio = other seconds / seconds of the mmalign row named in `vs mmalign` on the "
        "same computation: > 1 means mmalign is faster. The PASS/FAIL target (≥ 5×, from "
        "the issue) is judged against mmalign on all cores (its default); the per-pair "
        "tslearn loop runs on one core, so the same timing is also shown against mmalign "
        "on one numba thread (information only). Allocator: %s, in this process and the "
        "long case's subprocess (without it, memory freed by one call and re-faulted from "
        "the host by the next made timings on this VM bimodal, up to 2.7x apart; see "
        "benchmarks/README.md)."
        % (SEED, WARMUP_S / 2 if quick else WARMUP_S, rep.repeats, allocator),
        "",
        table,
        "",
        f"GPU section: {gpu}.",
        "",
        "## Value checks (before timing)",
        "",
        checks,
        "",
        "tslearn 0.10's `SoftDTWLossPyTorch` has no per-sample Python loop: it builds the "
        "cost tensor by a `(B, n, m, d)` broadcast in torch and runs numba `prange` over the "
        "batch (`_njit_soft_dtw_batch`, `_njit_soft_dtw_grad_batch`). It converts R and E "
        "with `torch.Tensor(ndarray)`, i.e. through float32, before casting back to float64; "
        "its values keep ~1e-7 relative accuracy, but its backward reads the rounded R, so "
        "its gradients are only float32-accurate. The two diagnostic rows above run its own "
        "kernels with R kept in float64 (compared with mmalign) and with R, E rounded "
        "(compared with SoftDTWLossPyTorch itself).",
        "",
        "## Summary",
        "",
        *summary,
    ])
    write_report(NAME, markdown, dict(name=NAME, quick=quick, seed=SEED, gamma=GAMMA,
                                      machine=info, tolerance=TOLERANCE, target=TARGET,
                                      rows=rep.rows, checks=rep.checks, long_case=long_res,
                                      gpu=gpu))
    return markdown


if __name__ == "__main__":
    print(run())
