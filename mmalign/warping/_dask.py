"""Pairwise and nearest-neighbour DTW in blocks on a ``dask.distributed`` cluster (private).

The public doors are ``cdist_dtw(..., backend="dask")`` and
``KNeighborsDTW(..., backend="dask")``.  The work is cut into tiles of rows and
columns (rows only for the nearest-neighbour search, whose pruning needs every
training series), the inputs are scattered once to every worker, each tile runs
the numba kernels of the local path single-threaded on a worker, and the tiles
are assembled on the caller's side.  Every pair goes through the same kernel with
the same operations as locally, so the results are bit-identical.

Cluster: a given ``dask.distributed.Client`` (left open), a scheduler address
(connected to for the call), or a ``LocalCluster`` of single-threaded worker
processes started for the call and closed afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np

from ..utils.validation import check_int

DEFAULT_BLOCK_SIZE = 256
INSTALL_HINT = ("backend='dask' needs dask.distributed: pip install 'mmalign[dask]' "
                "(or pip install 'dask[distributed]')")

Tile = tuple[int, int, int, int]  # r0, r1, c0, c1 (half-open)


def import_distributed():
    """The ``distributed`` module, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return distributed


def check_block_size(block_size) -> int:
    """``block_size`` as a positive int (``None``: the default); ValueError otherwise."""
    if block_size is None:
        return DEFAULT_BLOCK_SIZE
    return check_int(block_size, "block_size", 1)


def tile_grid(n_rows: int, n_cols: int, block_size: int, symmetric: bool) -> list[Tile]:
    """Tiles covering an ``(n_rows, n_cols)`` matrix; in the symmetric case only those
    on and above the diagonal (the diagonal tiles are square)."""
    rows = [(r, min(r + block_size, n_rows)) for r in range(0, n_rows, block_size)]
    cols = rows if symmetric else [(c, min(c + block_size, n_cols))
                                   for c in range(0, n_cols, block_size)]
    return [(r0, r1, c0, c1) for i, (r0, r1) in enumerate(rows)
            for j, (c0, c1) in enumerate(cols) if not symmetric or j >= i]


@contextmanager
def connect(client=None, scheduler: str | None = None, n_workers: int = 1) -> Iterator:
    """A ``distributed.Client`` for the duration of the block: ``client`` itself, a
    connection to ``scheduler``, or a new ``LocalCluster`` of ``n_workers``
    single-threaded processes; what this function opened, it closes."""
    distributed = import_distributed()
    if client is not None and scheduler is not None:
        raise ValueError("client and scheduler: give one of them, not both")
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise ValueError(f"client must be a dask.distributed.Client, got "
                             f"{type(client).__name__}")
        if client.status not in ("running", "connecting", "newly-created"):
            raise ValueError(f"client is {client.status!r}; pass a running Client")
        yield client
        return
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ValueError("scheduler must be a scheduler address such as "
                             f"'tcp://127.0.0.1:8786', got {scheduler!r}")
        with distributed.Client(scheduler, set_as_default=False) as own:
            yield own
        return
    n_workers = check_int(n_workers, "n_jobs", 1)
    with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as own:
        yield own


def run_tiles(client, task: Callable, payload,
              tiles: Sequence[Tile]) -> Iterator[tuple[Tile, object]]:
    """Scatter ``payload`` once to every worker, run ``task(payload, *tile)`` for every
    tile, and yield ``(tile, result)`` as the results arrive.  A tile's result is
    released on the cluster once yielded; a failure re-raises here and cancels the
    tiles still running."""
    distributed = import_distributed()
    [data] = client.scatter([payload], broadcast=True, hash=False)
    futures = [client.submit(task, data, *tile, pure=False) for tile in tiles]
    tile_of = {future.key: tile for future, tile in zip(futures, tiles)}
    arriving = distributed.as_completed(futures, loop=client.loop, with_results=True)
    del futures  # as_completed holds each future until it is yielded
    try:
        for future, result in arriving:
            yield tile_of.pop(future.key), result
    finally:
        client.cancel([*arriving.futures, data])


# --------------------------------------------------------------------------- cdist

def cdist_blocks(xs: list[np.ndarray], ys: list[np.ndarray] | None, *, metric, step_pattern: str,
                 options: dict, client=None, scheduler: str | None = None,
                 block_size: int | None = None, n_workers: int = 1) -> np.ndarray:
    """``cdist_dtw`` of validated sequences on a cluster; ``ys=None``: within ``xs``."""
    size = check_block_size(block_size)
    import_distributed()
    symmetric = ys is None
    n_x = len(xs)
    n_y = n_x if symmetric else len(ys)
    out = np.zeros((n_x, n_y))
    tiles = tile_grid(n_x, n_y, size, symmetric)
    payload = (xs, ys, metric, step_pattern, options)
    with connect(client, scheduler, n_workers) as c:
        for (r0, r1, c0, c1), block in run_tiles(c, _cdist_tile, payload, tiles):
            out[r0:r1, c0:c1] = block
            if symmetric and r0 != c0:
                out[c0:c1, r0:r1] = block.T
    return out


def _cdist_tile(payload, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Distances of one tile, on a worker; a diagonal tile of the symmetric case is
    filled on both sides of its diagonal, each pair computed once as ``(a, b), a < b``."""
    from .cdist import pair_indices, pair_values

    xs, ys, metric, step_pattern, options = payload
    symmetric = ys is None
    rows = xs[r0:r1]
    cols = (xs if symmetric else ys)[c0:c1]
    within = symmetric and r0 == c0
    ia, ib = pair_indices(len(rows), len(cols), within)
    values = pair_values(rows, cols, ia, ib, metric, step_pattern, options, parallel=False)
    block = np.zeros((len(rows), len(cols)))
    block[ia, ib] = values
    if within:
        block[ib, ia] = values
    return block


# --------------------------------------------------------------------------- k-NN

def knn_blocks(arrays: dict, n_queries: int, k: int, *, client=None,
               scheduler: str | None = None, block_size: int | None = None,
               n_workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lower-bound cascade of ``KNeighborsDTW`` over blocks of queries.

    ``arrays`` holds the inputs of ``neighbors._knn_cascade`` by name; the query
    arrays (``Q``, ``Q_t``, ``upQ``, ``loQ``) are sliced per block.  Returns the raw
    distances ``(n_queries, k)``, indices and per-query DTW counts.
    """
    size = check_block_size(block_size)
    import_distributed()
    dist = np.empty((n_queries, k))
    ind = np.empty((n_queries, k), np.int64)
    computed = np.zeros(n_queries, np.int64)
    tiles = [(r0, min(r0 + size, n_queries), 0, 0) for r0 in range(0, n_queries, size)]
    with connect(client, scheduler, n_workers) as c:
        for (r0, r1, _, _), (d, i, n) in run_tiles(c, _knn_tile, (arrays, k), tiles):
            dist[r0:r1], ind[r0:r1], computed[r0:r1] = d, i, n
    return dist, ind, computed


def _knn_tile(payload, r0: int, r1: int, c0: int, c1: int):
    """The cascade for queries ``r0:r1`` against every training series, on a worker."""
    from .neighbors import _knn_cascade_serial

    a, k = payload
    rows = slice(r0, r1)
    n = r1 - r0
    dist = np.empty((n, k))
    ind = np.empty((n, k), np.int64)
    computed = np.zeros(n, np.int64)
    _knn_cascade_serial(a["Q"][rows], a["Q_t"][rows], a["T"], a["T_rev"], a["upT"], a["loT"],
                        a["upQ"][rows], a["loQ"][rows], a["lo"], a["hi"], k, a["metric"],
                        a["use_bounds"], dist, ind, computed)
    return dist, ind, computed

