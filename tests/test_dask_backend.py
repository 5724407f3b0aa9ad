"""cdist_dtw / KNeighborsDTW with backend="dask": bit-identical to the local path."""

import sys

import numpy as np
import pytest

import mmalign
from mmalign.warping._dask import tile_grid

distributed = pytest.importorskip(
    "distributed", reason="needs mmalign[dask] / [test] (dask.distributed)")


@pytest.fixture(scope="module")
def cluster():
    # threads in this process: starts in a fraction of a second; the tiles still
    # travel through the scheduler, the scatter and the futures as on a real cluster
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cl:
        yield cl


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


def ragged(rng, n, d=2, lengths=(9, 10, 14)):
    """Mostly 3 lengths (groups of >= 8 pairs: the SIMD-lane kernel) plus odd ones
    (groups of a few pairs: the one-pair kernel); cut into tiles, groups change size."""
    out = [rng.standard_normal((lengths[k % len(lengths)], d)) for k in range(n - 3)]
    return out + [rng.standard_normal((m, d)) for m in (5, 17, 23)]


OPTIONS = [
    {},
    {"window": 0.2},
    {"radius": 2, "metric": "cityblock"},
    {"metric": "euclidean", "window": 0.1},
    {"metric": "cosine"},
]


@pytest.mark.parametrize("kw", OPTIONS)
def test_symmetric_ragged_equals_local_exactly(client, kw):
    X = ragged(np.random.default_rng(0), 29)
    local = mmalign.cdist_dtw(X, **kw)
    for block_size in (7, 29, 100):
        got = mmalign.cdist_dtw(X, backend="dask", client=client, block_size=block_size, **kw)
        assert np.array_equal(got, local), (kw, block_size)
    assert np.array_equal(got, got.T) and not np.diag(got).any()


@pytest.mark.parametrize("kw", OPTIONS[:3])
def test_rectangular_ragged_equals_local_exactly(client, kw):
    rng = np.random.default_rng(1)
    X, Y = ragged(rng, 23), ragged(rng, 12, lengths=(10, 12))
    local = mmalign.cdist_dtw(X, Y, **kw)
    got = mmalign.cdist_dtw(X, Y, backend="dask", client=client, block_size=5, **kw)
    assert got.shape == (23, 12)
    assert np.array_equal(got, local)


def test_other_routes_equal_local_exactly(client):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((19, 12, 3))  # a 3-d array: one length, every pair in lanes
    B = rng.standard_normal((6, 12, 3))
    mask = mmalign.window_mask(12, 12, radius=3)
    for kw in ({}, {"mask": mask}, {"itakura_slope": 2.0}, {"step_pattern": "symmetric2"},
               {"step_pattern": "asymmetric", "radius": 4},
               {"metric": lambda a, b: float(np.abs(a - b).max())}):
        for Y in (None, B):
            local = mmalign.cdist_dtw(A, Y, **kw)
            got = mmalign.cdist_dtw(A, Y, backend="dask", client=client, block_size=4, **kw)
            assert np.array_equal(got, local), kw


def test_one_sequence_and_one_by_one_tiles(client):
    X = ragged(np.random.default_rng(3), 11)
    assert np.array_equal(mmalign.cdist_dtw(X[:1], backend="dask", client=client), np.zeros((1, 1)))
    assert np.array_equal(mmalign.cdist_dtw(X, backend="dask", client=client, block_size=1),
                          mmalign.cdist_dtw(X))


def test_tile_grid_covers_each_pair_once():
    for n_rows, n_cols, size in ((10, 10, 3), (7, 4, 2), (5, 5, 8), (1, 1, 1)):
        for symmetric in (True, False) if n_rows == n_cols else (False,):
            seen = np.zeros((n_rows, n_cols), int)
            for r0, r1, c0, c1 in tile_grid(n_rows, n_cols, size, symmetric):
                assert 0 <= r0 < r1 <= n_rows and 0 <= c0 < c1 <= n_cols
                seen[r0:r1, c0:c1] += 1
                if symmetric:
                    assert c0 >= r0 and (c0 > r0 or c1 == r1)  # above or square on the diagonal
                    if c0 > r0:
                        seen[c0:c1, r0:r1] += 1  # the mirror image, filled on assembly
            assert np.array_equal(seen, np.ones_like(seen))


def test_scheduler_address(cluster):
    X = ragged(np.random.default_rng(4), 13)
    got = mmalign.cdist_dtw(X, backend="dask", scheduler=cluster.scheduler_address, block_size=4)
    assert np.array_equal(got, mmalign.cdist_dtw(X))


def test_a_failing_tile_raises_here(client):
    def metric(a, b):
        raise RuntimeError("metric failed on a worker")

    with pytest.raises(RuntimeError, match="metric failed on a worker"):
        mmalign.cdist_dtw(np.zeros((6, 4)), backend="dask", client=client, block_size=2,
                          metric=metric)


@pytest.mark.parametrize("k", [1, 3])
def test_kneighbors_cascade_and_brute_force_equal_local(client, k):
    rng = np.random.default_rng(5 + k)
    Xtr, Xte = rng.standard_normal((30, 16)), rng.standard_normal((13, 16))
    ytr = rng.integers(0, 3, 30)
    for Xq, Xt in ((Xte, Xtr), (ragged(rng, 9, d=1), ragged(rng, 14, d=1))):  # cascade; ragged
        y = ytr[:len(Xt)]
        local = mmalign.KNeighborsDTW(k, window=0.1).fit(Xt, y)
        dask = mmalign.KNeighborsDTW(k, window=0.1, backend="dask", client=client,
                                     block_size=4).fit(Xt, y)
        d0, i0 = local.kneighbors(Xq)
        d1, i1 = dask.kneighbors(Xq)
        assert np.array_equal(d0, d1) and np.array_equal(i0, i1)
        assert local.n_dtw_computed_ == dask.n_dtw_computed_
        assert np.array_equal(local.predict(Xq), dask.predict(Xq))


def test_knn_with_a_client_clones_and_shares_it(client):
    from sklearn.base import clone

    clf = mmalign.KNeighborsDTW(2, radius=1, backend="dask", client=client, block_size=3)
    twin = clone(clf)
    assert twin.client is client and twin.get_params()["block_size"] == 3
    X = np.random.default_rng(9).standard_normal((8, 6))
    assert np.array_equal(twin.fit(X, [0, 1] * 4).predict(X), clf.fit(X, [0, 1] * 4).predict(X))


def test_own_local_cluster_of_processes_is_started_and_closed(monkeypatch):
    started = []

    class Recording(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(distributed, "LocalCluster", Recording)
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((40, 12)), rng.standard_normal((30, 12))
    got = mmalign.cdist_dtw(X, Y, window=0.1, backend="dask", n_jobs=2, block_size=16)
    assert np.array_equal(got, mmalign.cdist_dtw(X, Y, window=0.1))
    (cl,) = started
    assert cl.status.name == "closed"


def test_errors(client, monkeypatch):
    def no_cluster(*args, **kwargs):
        raise AssertionError("a bad argument must fail before a cluster starts")

    monkeypatch.setattr(distributed, "LocalCluster", no_cluster)
    X = np.zeros((3, 4))
    for kw in ({"radius": -1}, {"window": 1.5}, {"mask": np.ones((2, 2), bool)},
               {"metric": "manhattan"}, {"step_pattern": "foo"}):
        with pytest.raises(ValueError, match=next(iter(kw)).replace("_", ".")):
            mmalign.cdist_dtw(X, backend="dask", **kw)
    with pytest.raises(ValueError, match="backend"):
        mmalign.cdist_dtw(X, backend="spark")
    for bad in (0, -3, 2.5, True, "8"):
        with pytest.raises(ValueError, match="block_size"):
            mmalign.cdist_dtw(X, backend="dask", client=client, block_size=bad)
    for name, value in (("block_size", 8), ("client", client), ("scheduler", "tcp://x:1")):
        with pytest.raises(ValueError, match=f"{name} is a backend='dask' option"):
            mmalign.cdist_dtw(X, **{name: value})
    with pytest.raises(ValueError, match="client and scheduler"):
        mmalign.cdist_dtw(X, backend="dask", client=client, scheduler="tcp://x:1")
    with pytest.raises(ValueError, match="client must be a dask.distributed.Client"):
        mmalign.cdist_dtw(X, backend="dask", client="tcp://x:1")
    with pytest.raises(ValueError, match="scheduler must be a scheduler address"):
        mmalign.cdist_dtw(X, backend="dask", scheduler=8786)
    with pytest.raises(ValueError, match="device"):
        mmalign.cdist_dtw(X, backend="dask", client=client, device="cpu")
    with pytest.raises(ValueError, match="n_jobs"):
        mmalign.cdist_dtw(X, backend="dask", n_jobs=0)
    with pytest.raises(ValueError, match="X holds no sequences"):
        mmalign.cdist_dtw([], backend="dask", client=client)
    with pytest.raises(ValueError, match="backend"):
        mmalign.KNeighborsDTW(backend="ray").fit(X, [0, 1, 1])
    with pytest.raises(ValueError, match="block_size"):
        mmalign.KNeighborsDTW(backend="dask", block_size=0).fit(X, [0, 1, 1])
    with pytest.raises(ValueError, match="client is a backend='dask' option"):
        mmalign.KNeighborsDTW(client=client).fit(X, [0, 1, 1])


def test_missing_dask_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'mmalign\[dask\]'"):
        mmalign.cdist_dtw(np.zeros((3, 4)), backend="dask")
    with pytest.raises(ImportError, match=r"pip install 'mmalign\[dask\]'"):
        mmalign.KNeighborsDTW(backend="dask").fit(np.zeros((3, 4)), [0, 1, 1])
    assert np.array_equal(mmalign.cdist_dtw(np.zeros((3, 4))), np.zeros((3, 3)))  # local is fine
