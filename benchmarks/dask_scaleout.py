"""Scale-out: ``cdist_dtw(..., backend="dask")`` on a 2-worker LocalCluster against the local path.

Protocol (random standard-normal univariate series, fixed seed):

* the symmetric pairwise matrix of 2,000 series of length 48 (``--quick``: 500),
  ``N (N - 1) / 2`` pairs, no window, squared-Euclidean local cost;
* **local**: ``cdist_dtw(X, n_jobs=2)``, numba threads on the 2 cores, after an
  untimed call on a small input (compilation);
* **dask**: a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``,
  the same ``cdist_dtw(X, backend="dask", client=client)`` with the default
  ``block_size`` (256: tiles of 256 x 256 pairs, the 36 on and above the diagonal
  for N = 2,000) and with ``N / 4`` (10 tiles); the data are scattered once per call, the tiles run
  the local kernels single-threaded on the workers;
* **cluster start** is reported apart: starting the scheduler and the worker
  processes, then the workers' first import of mmalign and its numba kernels
  (an untimed call on a small input);
* **end to end**: ``cdist_dtw(X, backend="dask", n_jobs=2)`` with no client,
  which starts a LocalCluster, computes and closes it (what a one-off call costs).

Every dask result is checked for exact equality (``np.array_equal``) with the
local matrix.  Overhead = dask time / local time on the same 2 cores: the price of
the scheduler, serialisation and single-threaded tiles, which a cluster of more
machines buys back.  Times are the best of two timed calls.
"""

from __future__ import annotations

import time

import numpy as np

import mmalign
from mmalign.warping._dask import tile_grid

from .common import best_time, fmt, machine_info, machine_markdown, markdown_table, write_report

NAME = "dask_scaleout"
SEED = 20260901
LENGTH = 48
WORKERS = 2


def _series(n: int, seed: int = SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, LENGTH))


def _load() -> str:
    try:
        import os

        return f"{os.getloadavg()[0]:.1f}"
    except (AttributeError, OSError):  # not on this platform
        return "n/a"


def run(quick: bool = False) -> str:
    """Measure, write ``results/dask_scaleout.md`` / ``.json``, return the Markdown."""
    import distributed

    n = 500 if quick else 2000
    repeats = 2
    load_start = _load()
    X = _series(n)
    small = _series(40, SEED + 1)
    pairs = n * (n - 1) // 2

    # local path
    mmalign.cdist_dtw(small, n_jobs=WORKERS)  # compile
    local_result = None

    def local():
        nonlocal local_result
        local_result = mmalign.cdist_dtw(X, n_jobs=WORKERS)

    local_t = best_time(local, repeats, warmup=False)

    # cluster start, then the workers' first import and compilation
    t0 = time.perf_counter()
    cluster = distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                       dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    start_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = mmalign.cdist_dtw(small, backend="dask", client=client, block_size=10)
    warm_s = time.perf_counter() - t0
    assert np.array_equal(warm, mmalign.cdist_dtw(small))

    rows = []
    runs = []
    try:
        for block_size in (None, n // 4):
            result = {}

            def on_cluster(bs=block_size, out=result):
                out["D"] = mmalign.cdist_dtw(X, backend="dask", client=client, block_size=bs)

            t = best_time(on_cluster, repeats, warmup=False)
            equal = bool(np.array_equal(result["D"], local_result))
            size = 256 if block_size is None else block_size
            tiles = len(tile_grid(n, n, size, True))
            runs.append({"block_size": size, "tiles": tiles, "seconds": t["best"],
                         "times": t["times"], "equal_to_local": equal,
                         "overhead_vs_local": t["best"] / local_t["best"]})
            plural = "s" * (tiles > 1)
            rows.append([f"dask, 2-worker LocalCluster, block_size {size} ({tiles} tile{plural})",
                         t["best"], t["best"] / local_t["best"], pairs / t["best"],
                         "yes" if equal else "NO"])
    finally:
        t0 = time.perf_counter()
        client.close()
        cluster.close()
        close_s = time.perf_counter() - t0

    # end to end: the default with no client (start, compute, close)
    t0 = time.perf_counter()
    D = mmalign.cdist_dtw(X, backend="dask", n_jobs=WORKERS)
    cold_s = time.perf_counter() - t0
    cold_equal = bool(np.array_equal(D, local_result))

    load_end = _load()
    table_rows = [[f"local, numba threads (n_jobs={WORKERS})", local_t["best"], 1.0,
                   pairs / local_t["best"], "reference"]] + rows + [
        [f"dask end to end, no client (LocalCluster of {WORKERS} started and closed)",
         cold_s, cold_s / local_t["best"], pairs / cold_s, "yes" if cold_equal else "NO"]]
    info = machine_info()
    all_equal = all(r["equal_to_local"] for r in runs) and cold_equal
    markdown = "\n".join([
        f"# Scale-out: pairwise DTW on a dask LocalCluster{' (quick)' if quick else ''}",
        "",
        f"Symmetric `cdist_dtw` of {n:,} univariate series of length {LENGTH} "
        f"({pairs:,} pairs, {pairs * LENGTH * LENGTH:,} DP cells), no window, seed {SEED}. "
        f"Local: numba threads on {WORKERS} cores. Dask: `backend=\"dask\"` on a "
        f"`LocalCluster` of {WORKERS} single-threaded worker processes on the same cores.",
        "",
        markdown_table(["path", "seconds", "time / local", "pairs / s", "equal to local"],
                       table_rows),
        "",
        f"- Every dask matrix equals the local one exactly (`np.array_equal`): "
        f"**{'yes' if all_equal else 'NO'}**.",
        f"- Cluster start (scheduler + {WORKERS} worker processes): {fmt(start_s)} s; the "
        f"workers' first call (importing mmalign, which imports torch, and loading the numba "
        f"kernels): {fmt(warm_s)} s; closing: {fmt(close_s)} s. Not in the timed rows above "
        f"except the end-to-end one.",
        "- Overhead (time / local above 1) is the price of the scheduler, of sending the "
        "tiles' results back and of single-threaded tiles in place of numba's thread pool. "
        "Across machines the dask path buys their cores.",
        f"- Load average (1 min) at start / end: {load_start} / {load_end}; on a shared "
        "machine single calls vary.",
        "",
        machine_markdown(info),
    ])
    data = {
        "name": NAME, "quick": quick, "seed": SEED, "n_series": n, "length": LENGTH,
        "pairs": pairs, "workers": WORKERS,
        "local": {"n_jobs": WORKERS, "seconds": local_t["best"], "times": local_t["times"]},
        "cluster_start_seconds": start_s, "worker_warmup_seconds": warm_s,
        "cluster_close_seconds": close_s,
        "dask": runs,
        "end_to_end": {"seconds": cold_s, "equal_to_local": cold_equal,
                       "overhead_vs_local": cold_s / local_t["best"]},
        "all_equal": all_equal,
        "load_average_start_end": [load_start, load_end],
        "dask_version": distributed.__version__,
        "machine": info,
    }
    write_report(NAME, markdown, data)
    return markdown


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(run(quick=parser.parse_args().quick))
