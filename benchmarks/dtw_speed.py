"""DTW speed: mmalign against dtaidistance, tslearn, aeon, librosa and dtw-python, in one run.

Cases (random standard-normal data, fixed seed):

* one pair, univariate, 2000 x 2000, no window, one core;
* the same at 4000 x 4000 (mmalign and dtaidistance only);
* DTW with the warping path, 2000 x 2000, one core;
* all pairs of 300 univariate series of length 256 (upper triangle), two cores;
* one pair, 12 features, 1000 x 1000, one core;
* on a CUDA device only (else recorded as skipped): all pairs of 512 series of length
  256 with 2 features, ``cdist_dtw(device="cuda")`` by the torch wavefront and by the
  fused Triton kernel (``batch.DEVICE_KERNEL``), against numba on two cores.

Before a peer is timed its value is checked against mmalign's (relative difference
at most 1e-8 once the peers' conventions are reconciled); the checks are part of
the report.  Every function is called once untimed (numba compiles on its first
call), then the best of several timed calls is reported.  ``cells`` counts DP cells
``n * m`` per pair (not multiplied by the number of features), summed over pairs;
the symmetric pairwise case counts the ``N (N - 1) / 2`` pairs of one triangle.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
from numba.core.errors import NumbaTypeSafetyWarning

import mmalign

from .common import best_time, machine_info, machine_markdown, markdown_table, \
    relative_difference, write_report

NAME = "dtw_speed"
SEED = 20240607
TOLERANCE = 1e-8

# targets from the issue: peer time / mmalign time must reach these
TARGET_DISTANCE = 4.0   # vs dtaidistance dtw.distance_fast, 2000 x 2000
TARGET_PATH = 3.0       # vs dtaidistance dtw.warping_path_fast, 2000 x 2000
TARGET_PAIRWISE = 6.0   # vs dtaidistance dtw.distance_matrix_fast(parallel=True), 300 x 256


class _Report:
    """Collects timed rows and value checks."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.repeats = 2 if quick else 5
        self.rows: list[dict] = []
        self.checks: list[dict] = []
        self.gpu: list[str] = []  # the GPU section's findings, one line each

    def check(self, case: str, peer: str, quantity: str, ours, theirs, *,
              exact: bool = False) -> bool:
        """Record whether a peer's value agrees with mmalign's; return the verdict."""
        if exact:  # warping paths: identical index pairs
            a, b = np.asarray(ours), np.asarray(theirs)
            ok = a.shape == b.shape and bool(np.array_equal(a, b))
            rel = 0.0 if ok else math.inf
            shown_ours, shown_theirs = f"{len(a)} pairs", f"{len(b)} pairs"
        else:
            rel = relative_difference(ours, theirs)
            ok = rel <= TOLERANCE
            shown_ours, shown_theirs = _show(ours), _show(theirs)
        self.checks.append(dict(case=case, peer=peer, quantity=quantity, mmalign=shown_ours,
                                peer_value=shown_theirs, max_rel_diff=rel, ok=ok))
        return ok

    def time(self, fn, *, slow: bool = False) -> dict:
        # slow peers: at most ~20 s of timed calls (at least one), ~8 s in quick mode
        return best_time(fn, self.repeats, budget_s=rep_budget(self) if slow else None)

    def row(self, library: str, case: str, timing: dict, cells: float, *,
            reference: dict | None = None, target: float | None = None, agrees: bool = True,
            note: str = "") -> None:
        seconds = timing["best"]
        ratio = None if reference is None else seconds / reference["best"]
        if not agrees:
            verdict = "DISAGREE (values differ; ratio not comparable)"
        elif target is None or ratio is None:
            verdict = ""
        else:
            verdict = "PASS" if ratio >= target else "FAIL"
        self.rows.append(dict(library=library, case=case, seconds=seconds,
                              mcells_per_s=cells / seconds / 1e6, ratio=ratio, target=target,
                              result=verdict, repeats=timing["repeats"], times=timing["times"],
                              note=note))


def _show(value) -> str:
    value = np.asarray(value, dtype=float)
    if value.ndim == 0:
        return f"{float(value):.12g}"
    return f"{value.size} values, sum {float(np.sum(value)):.12g}"


# --------------------------------------------------------------------------- cases

def _single_pair(rep: _Report, rng: np.random.Generator, n: int, *, all_peers: bool) -> None:
    from dtaidistance import dtw as dtai

    x = rng.standard_normal(n)
    y = rng.standard_normal(n)
    case = f"dtw 1 pair {n}x{n}, 1 core"
    cells = float(n) * n
    numba.set_num_threads(1)

    ours = mmalign.dtw(x, y)
    ref = rep.time(lambda: mmalign.dtw(x, y))
    rep.row("mmalign", case, ref, cells, note="sqeuclidean, sqrt of the sum")

    ok = rep.check(case, "dtaidistance distance_fast", "distance", ours, dtai.distance_fast(x, y))
    rep.row("dtaidistance (C)", case, rep.time(lambda: dtai.distance_fast(x, y)), cells,
            reference=ref, target=TARGET_DISTANCE if all_peers else None, agrees=ok,
            note="dtw.distance_fast")
    if not all_peers:
        return

    from aeon.distances import dtw_distance
    from tslearn.metrics import dtw as ts_dtw

    ok = rep.check(case, "tslearn dtw", "distance", ours, ts_dtw(x, y))
    rep.row("tslearn", case, rep.time(lambda: ts_dtw(x, y)), cells, reference=ref, agrees=ok,
            note="tslearn.metrics.dtw")
    ok = rep.check(case, "aeon dtw_distance", "sqrt(distance)", ours, math.sqrt(dtw_distance(x, y)))
    rep.row("aeon", case, rep.time(lambda: dtw_distance(x, y)), cells, reference=ref, agrees=ok,
            note="returns the squared sum (no sqrt)")

    # librosa: unsquared Euclidean (|x_i - y_j| for one feature) on a precomputed cost matrix
    import librosa
    from scipy.spatial.distance import cdist

    ours_abs = mmalign.dtw(x, y, metric="euclidean")
    ref_abs = rep.time(lambda: mmalign.dtw(x, y, metric="euclidean"))
    rep.row("mmalign", case + ", metric=euclidean", ref_abs, cells,
            note="reference for librosa: sum of abs(x_i - y_j), no sqrt")

    def librosa_with_c():
        C = cdist(x[:, None], y[:, None])
        return librosa.sequence.dtw(C=C, backtrack=False)[-1, -1]

    C = cdist(x[:, None], y[:, None])
    ok = rep.check(case, "librosa sequence.dtw", "D[-1, -1] (euclidean)", ours_abs,
                   librosa_with_c())
    rep.row("librosa", case + ", metric=euclidean", rep.time(librosa_with_c), cells,
            reference=ref_abs, agrees=ok,
            note="C = scipy cdist, built inside the timed call; backtrack=False")
    rep.row("librosa", case + ", metric=euclidean", rep.time(
        lambda: librosa.sequence.dtw(C=C, backtrack=False)), cells, reference=ref_abs,
        agrees=ok, note="C precomputed, NOT in the time; backtrack=False")

    if rep.quick:
        return
    # dtw-python: its own defaults (symmetric2 steps, unsquared Euclidean), distance only
    from dtw import dtw as dtwpy

    ours_s2 = mmalign.dtw(x, y, metric="euclidean", step_pattern="symmetric2")
    ref_s2 = rep.time(lambda: mmalign.dtw(x, y, metric="euclidean", step_pattern="symmetric2"))
    rep.row("mmalign", case + ", euclidean, symmetric2", ref_s2, cells,
            note="reference for dtw-python's defaults")
    ok = rep.check(case, "dtw-python dtw", "distance (euclidean, symmetric2)", ours_s2,
                   dtwpy(x, y, distance_only=True).distance)
    rep.row("dtw-python", case + ", euclidean, symmetric2",
            rep.time(lambda: dtwpy(x, y, distance_only=True), slow=True), cells,
            reference=ref_s2, agrees=ok, note="dtw(x, y, distance_only=True); cost matrix by scipy")


def _path(rep: _Report, rng: np.random.Generator, n: int) -> None:
    from dtaidistance import dtw as dtai
    from tslearn.metrics import dtw_path as ts_dtw_path

    x = rng.standard_normal(n)
    y = rng.standard_normal(n)
    case = f"dtw_path 1 pair {n}x{n}, 1 core"
    cells = float(n) * n
    numba.set_num_threads(1)

    alignment = mmalign.dtw_path(x, y)
    ours_path, ours_cost = alignment.path(), alignment.cost
    ref = rep.time(lambda: mmalign.dtw_path(x, y).path())
    rep.row("mmalign", case, ref, cells, note="dtw_path(x, y).path()")

    path, dist = dtai.warping_path_fast(x, y, include_distance=True)
    ok = rep.check(case, "dtaidistance warping_path_fast", "distance", ours_cost, dist)
    ok &= rep.check(case, "dtaidistance warping_path_fast", "path", ours_path, path, exact=True)
    rep.row("dtaidistance (C)", case, rep.time(lambda: dtai.warping_path_fast(x, y)), cells,
            reference=ref, target=TARGET_PATH, agrees=ok, note="dtw.warping_path_fast")

    path, dist = ts_dtw_path(x, y)
    ok = rep.check(case, "tslearn dtw_path", "distance", ours_cost, dist)
    ok &= rep.check(case, "tslearn dtw_path", "path", ours_path, path, exact=True)
    rep.row("tslearn", case, rep.time(lambda: ts_dtw_path(x, y)), cells, reference=ref,
            agrees=ok, note="tslearn.metrics.dtw_path")


def _pairwise(rep: _Report, rng: np.random.Generator, n_series: int, length: int) -> None:
    from aeon.distances import dtw_pairwise_distance
    from dtaidistance import dtw as dtai
    from tslearn.metrics import cdist_dtw as ts_cdist

    X = rng.standard_normal((n_series, length))
    case = f"cdist_dtw {n_series} series x {length}, 2 cores"
    cells = n_series * (n_series - 1) / 2 * float(length) ** 2
    upper = np.triu_indices(n_series, k=1)
    numba.set_num_threads(2)

    ours = mmalign.cdist_dtw(X, n_jobs=2)
    ref = rep.time(lambda: mmalign.cdist_dtw(X, n_jobs=2))
    rep.row("mmalign", case, ref, cells, note="n_jobs=2 (numba threads)")

    # the value checks are the peers' warm-up calls, so best_time skips its own
    theirs = dtai.distance_matrix_fast(X, parallel=True)
    ok = rep.check(case, "dtaidistance distance_matrix_fast", "upper triangle", ours[upper],
                   theirs[upper])
    timing = best_time(lambda: dtai.distance_matrix_fast(X, parallel=True), rep.repeats,
                       warmup=False, budget_s=rep_budget(rep))
    rep.row("dtaidistance (C)", case, timing, cells, reference=ref, target=TARGET_PAIRWISE,
            agrees=ok, note="distance_matrix_fast(parallel=True), OpenMP on all (2) cores")

    theirs = ts_cdist(X, n_jobs=2)
    ok = rep.check(case, "tslearn cdist_dtw", "upper triangle", ours[upper], theirs[upper])
    timing = best_time(lambda: ts_cdist(X, n_jobs=2), rep.repeats, warmup=False,
                       budget_s=rep_budget(rep))
    rep.row("tslearn", case, timing, cells, reference=ref, agrees=ok, note="cdist_dtw(n_jobs=2)")

    theirs = np.sqrt(dtw_pairwise_distance(X, n_jobs=2))
    ok = rep.check(case, "aeon dtw_pairwise_distance", "sqrt, upper triangle", ours[upper],
                   theirs[upper])
    timing = best_time(lambda: dtw_pairwise_distance(X, n_jobs=2), rep.repeats, warmup=False,
                       budget_s=rep_budget(rep))
    rep.row("aeon", case, timing, cells, reference=ref, agrees=ok,
            note="dtw_pairwise_distance(n_jobs=2); squared sums")
    numba.set_num_threads(1)


def rep_budget(rep: _Report) -> float:
    return 8.0 if rep.quick else 20.0


def _multivariate(rep: _Report, rng: np.random.Generator, n: int, d: int) -> None:
    from aeon.distances import dtw_distance
    from dtaidistance import dtw_ndim
    from tslearn.metrics import dtw as ts_dtw

    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, d))
    case = f"dtw 1 pair {n}x{n}, d={d}, 1 core"
    cells = float(n) * n
    numba.set_num_threads(1)

    ours = mmalign.dtw(x, y)
    ref = rep.time(lambda: mmalign.dtw(x, y))
    rep.row("mmalign", case, ref, cells, note="(n, d) layout")

    if hasattr(dtw_ndim, "distance_fast"):
        ok = rep.check(case, "dtaidistance dtw_ndim.distance_fast", "distance", ours,
                       dtw_ndim.distance_fast(x, y))
        rep.row("dtaidistance (C)", case, rep.time(lambda: dtw_ndim.distance_fast(x, y)), cells,
                reference=ref, agrees=ok, note="dtw_ndim.distance_fast")
    ok = rep.check(case, "tslearn dtw", "distance", ours, ts_dtw(x, y))
    rep.row("tslearn", case, rep.time(lambda: ts_dtw(x, y)), cells, reference=ref, agrees=ok,
            note="tslearn.metrics.dtw")
    xt, yt = np.ascontiguousarray(x.T), np.ascontiguousarray(y.T)
    ok = rep.check(case, "aeon dtw_distance", "sqrt(distance)", ours,
                   math.sqrt(dtw_distance(xt, yt)))
    rep.row("aeon", case, rep.time(lambda: dtw_distance(xt, yt)), cells, reference=ref,
            agrees=ok, note="(d, n) layout; squared sum")


def _gpu(rep: _Report, rng: np.random.Generator, n_series: int, length: int, d: int, *,
         device: str = "cuda") -> None:
    """cdist_dtw on a GPU: the torch wavefront against the Triton kernel, numba for reference.

    ``device="cpu"`` (under ``TRITON_INTERPRET=1``, tiny sizes) is a dry run of this code.
    """
    import torch

    from mmalign.warping import batch as TB

    case = f"cdist_dtw {n_series} series x {length}, d={d}, {device}"
    if device == "cuda" and not torch.cuda.is_available():
        rep.gpu.append(f"{case}: skipped: no CUDA device")
        return
    try:
        import triton  # noqa: F401
    except ImportError:
        rep.gpu.append(f"{case}: skipped: triton is not installed")
        return
    X = rng.standard_normal((n_series, length, d))
    cells = n_series * (n_series - 1) / 2 * float(length) ** 2
    numba.set_num_threads(2)
    ours = mmalign.cdist_dtw(X, n_jobs=2)
    ref = rep.time(lambda: mmalign.cdist_dtw(X, n_jobs=2), slow=True)
    rep.row("mmalign", case, ref, cells, note="numba, n_jobs=2 (CPU reference)")
    before = TB.DEVICE_KERNEL
    timings = {}
    try:
        for kernel in ("torch", "triton"):
            TB.DEVICE_KERNEL = kernel
            values = mmalign.cdist_dtw(X, device=device)  # also the warm-up (compilation)
            ok = rep.check(case, f"mmalign device={device}, {kernel}", "matrix", values, ours)
            exact = bool(np.array_equal(values, ours))
            timing = best_time(lambda: mmalign.cdist_dtw(X, device=device), rep.repeats,
                               warmup=False, budget_s=rep_budget(rep))
            timings[kernel] = timing["best"]
            rep.row("mmalign", case, timing, cells, agrees=ok,
                    note=f"device={device}, DEVICE_KERNEL={kernel!r}; "
                         f"{ref['best'] / timing['best']:.1f}x numba; "
                         f"{'bitwise equal' if exact else 'NOT bitwise equal'} to numba")
            if not exact:
                rep.gpu.append(f"{case}: DEVICE_KERNEL={kernel!r} is not bitwise equal to numba")
    finally:
        TB.DEVICE_KERNEL = before
    rep.gpu.append(f"{case}: torch wavefront {timings['torch']:.3g} s, Triton kernel "
                   f"{timings['triton']:.3g} s ({timings['torch'] / timings['triton']:.1f}x), "
                   f"numba on 2 cores {ref['best']:.3g} s")
    numba.set_num_threads(1)


# --------------------------------------------------------------------------- report

def run(quick: bool = False) -> str:
    """Run every case, write ``results/dtw_speed.md|json`` and return the Markdown."""
    rng = np.random.default_rng(SEED)
    rep = _Report(quick)
    threads_before = numba.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaTypeSafetyWarning)  # aeon's kernels compiling
            _single_pair(rep, rng, 2000, all_peers=True)
            if not quick:
                _single_pair(rep, rng, 4000, all_peers=False)
            _path(rep, rng, 2000)
            _pairwise(rep, rng, 100 if quick else 300, 256)
            _multivariate(rep, rng, 1000, 12)
            _gpu(rep, rng, 128 if quick else 512, 256, 2)
    finally:
        numba.set_num_threads(threads_before)

    info = machine_info()
    table = markdown_table(
        ["library", "case", "seconds", "M cells/s", "ratio (peer / mmalign)", "target",
         "result", "notes"],
        [[r["library"], r["case"], r["seconds"], r["mcells_per_s"],
          "ref" if r["ratio"] is None else f"{r['ratio']:.2f}",
          "—" if r["target"] is None else f"≥ {r['target']:g}", r["result"] or "—", r["note"]]
         for r in rep.rows])
    checks = markdown_table(
        ["case", "peer", "quantity", "mmalign", "peer", "max rel. diff", f"≤ {TOLERANCE:g}"],
        [[c["case"], c["peer"], c["quantity"], c["mmalign"], c["peer_value"],
          f"{c['max_rel_diff']:.1e}", "ok" if c["ok"] else "DISAGREE"] for c in rep.checks])
    failed_targets = [r for r in rep.rows if r["result"] == "FAIL"]
    disagreements = [c for c in rep.checks if not c["ok"]]
    summary = []
    if failed_targets:
        summary += [f"- **Target missed**: {r['library']} on {r['case']}: ratio {r['ratio']:.2f} "
                    f"< {r['target']:g}" for r in failed_targets]
    if disagreements:
        summary += [f"- **Values disagree**: {c['peer']} on {c['case']} ({c['quantity']}): "
                    f"max rel. diff {c['max_rel_diff']:.1e}" for c in disagreements]
    if not summary:
        summary = ["- Every target met; every peer value agrees with mmalign to 1e-8 relative."]
    slower = [r for r in rep.rows if r["ratio"] is not None and r["ratio"] < 1.0]
    summary += [f"- **mmalign slower than a peer** (no target set): {r['library']} on {r['case']} "
                f"takes {r['ratio']:.2f}x mmalign's time" for r in slower]

    markdown = "\n".join([
        f"# DTW speed{' (quick)' if quick else ''}",
        "",
        machine_markdown(info),
        "Random standard-normal data (seed %d). One untimed warm-up call per function, then "
        "the best of up to %d timed calls (fewer for peers slower than a few seconds; see "
        "the JSON for every time). Cells = n·m DP cells per pair (features not counted), "
        "summed over pairs; pairwise counts one triangle. ratio = peer seconds / mmalign "
        "seconds on the same computation (the mmalign row above it marked `ref`)."
        % (SEED, rep.repeats),
        "",
        table,
        "",
        "## Value checks (before timing)",
        "",
        checks,
        "",
        "## GPU (cdist_dtw on CUDA: torch wavefront vs Triton kernel)",
        "",
        *[f"- {line}" for line in rep.gpu],
        "",
        "## Summary",
        "",
        *summary,
    ])
    write_report(NAME, markdown, dict(name=NAME, quick=quick, seed=SEED, machine=info,
                                      tolerance=TOLERANCE, rows=rep.rows, checks=rep.checks,
                                      gpu=rep.gpu))
    return markdown


if __name__ == "__main__":
    print(run())
