"""mmalign.nn.train.fit under DistributedDataParallel: 2 CPU processes (gloo) train the same
model as 1 process with the same global batch; the DDP recipe runs under torchrun."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from mmalign.nn.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 16
N = 96  # a multiple of 2 x GLOBAL_BATCH: no padded or short batch on any rank

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="needs torch.distributed with the gloo backend")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- the trainings

def train_mlp(world: int) -> dict:
    """A float64 MLP regression (loss: a mean over samples, so W ranks x batch b is the
    same objective as one process with batch W x b), Adam, clipping, shuffling, validation."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, generator=g, dtype=torch.float64)
    y = torch.sin(x @ torch.randn(5, 2, generator=g, dtype=torch.float64))
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                                torch.nn.Linear(16, 2)).double()

    def mse(m, batch):
        return torch.nn.functional.mse_loss(m(batch[0]), batch[1])

    config = TrainConfig(max_epochs=4, batch_size=GLOBAL_BATCH // world, lr=0.02, device="cpu",
                         seed=3, grad_clip=1.0, shuffle=True)
    history = fit(model, mse, (x, y), config=config, val_data=(x[:32], y[:32]))
    return {"state": model.state_dict(), "train_loss": history.train_loss,
            "val_metric": history.val_metric, "best_epoch": history.best_epoch}


def cca_views() -> tuple[np.ndarray, np.ndarray]:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(N, 2, generator=g, dtype=torch.float64)
    X = torch.cat([z, torch.randn(N, 3, generator=g, dtype=torch.float64)], 1)
    Y = torch.cat([torch.tanh(z), torch.randn(N, 2, generator=g, dtype=torch.float64)], 1)
    return X.numpy(), Y.numpy()


def deep_cca():
    """DeepCCA with the MLPs it would build itself (seeds 0 and 1), in float64."""
    from mmalign import DeepCCA
    from mmalign.projection.deep_cca import mlp_encoder

    encoders = []
    for seed, dim in ((0, 5), (1, 4)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoders.append(mlp_encoder(dim, 2, hidden=(8,)).double())
    return DeepCCA(*encoders, n_components=2, x_dim=5, y_dim=4,
                   train={"max_epochs": 3, "batch_size": GLOBAL_BATCH // 2, "lr": 1e-2,
                          "device": "cpu"})


def train_deep_cca() -> dict:
    """DeepCCA.fit under DDP (2 ranks x GLOBAL_BATCH / 2 rows per step)."""
    model = deep_cca().fit(*cca_views())
    return {"state": {k: v.detach().clone() for k, v in model.module_.state_dict().items()},
            "correlations": np.asarray(model.correlations_)}


def deep_cca_single_process_equivalent() -> dict:
    """Deep CCA's loss is a batch statistic (covariances): 2 ranks x b rows are one process
    with batch 2b whose loss is the mean of the losses of the two rank sub-batches
    (rank r gets rows r, r + 2, ... of each global batch)."""
    from mmalign.projection.deep_cca import DeepCCAModule, cca_loss

    estimator = deep_cca()
    model = DeepCCAModule(estimator.encoder_x, estimator.encoder_y)  # the network it trains

    def loss_fn(m, batch):
        hx, hy = m(*batch)
        return (cca_loss(hx[0::2], hy[0::2], n_components=2)
                + cca_loss(hx[1::2], hy[1::2], n_components=2)) / 2

    X, Y = cca_views()
    fit(model, loss_fn, (torch.from_numpy(X), torch.from_numpy(Y)),
        config=TrainConfig(max_epochs=3, batch_size=GLOBAL_BATCH, lr=1e-2, seed=0, device="cpu"))
    return {"state": model.state_dict()}


class Branchy(torch.nn.Module):
    """A model with a branch its configuration leaves idle (no gradient for ``unused``)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.used = torch.nn.Linear(5, 2).double()
        self.unused = torch.nn.Linear(5, 2).double()

    def forward(self, x):
        return self.used(x)


def train_branchy() -> dict:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(N, 5, generator=g, dtype=torch.float64)
    model = Branchy()
    fit(model, lambda m, b: m(b[0]).square().mean(), (x,),
        config=TrainConfig(max_epochs=2, batch_size=8, lr=0.01, device="cpu"))
    return {"state": model.state_dict()}


def worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank (``torch.multiprocessing.spawn`` entry point)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save({"mlp": train_mlp(world), "dcca": train_deep_cca(), "branchy": train_branchy()},
                   os.path.join(out, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------- the tests

def launch(world: int, out: Path, timeout: float = 240.0) -> None:
    """Run ``worker`` on ``world`` ranks.  Forked where the platform allows (the ranks
    start at once, this process has imported torch and mmalign already), else spawned;
    a rank that fails or a run past ``timeout`` seconds fails the test."""
    import multiprocessing as mp
    import time

    method = "fork" if "fork" in mp.get_all_start_methods() and sys.platform == "linux" else "spawn"
    context = torch.multiprocessing.start_processes(
        worker, args=(world, free_port(), str(out)), nprocs=world, join=False,
        start_method=method)
    deadline = time.monotonic() + timeout
    try:
        while not context.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail(f"the {world} DDP ranks did not finish in {timeout:.0f} s")
    finally:
        for p in context.processes:
            if p.is_alive():
                p.terminate()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    launch(2, out)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.fixture(scope="module")
def one_process():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {"mlp": train_mlp(world=1), "dcca": deep_cca_single_process_equivalent()}
    finally:
        torch.set_num_threads(threads)


def test_two_processes_train_the_model_of_one_process(one_process, two_ranks):
    ref = one_process["mlp"]
    for rank in two_ranks:
        got = rank["mlp"]
        for name, value in ref["state"].items():
            np.testing.assert_allclose(got["state"][name].numpy(), value.numpy(),
                                       rtol=0, atol=1e-10, err_msg=name)
        # the reported loss is the mean over all ranks' samples, as in one process
        np.testing.assert_allclose(got["train_loss"], ref["train_loss"], rtol=1e-12)
        np.testing.assert_allclose(got["val_metric"], ref["val_metric"], rtol=1e-12)
        assert got["best_epoch"] == ref["best_epoch"]
    # training moved the weights: the comparison is not between two untrained models
    torch.manual_seed(1)
    init = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                               torch.nn.Linear(16, 2)).double().state_dict()
    assert max(float((ref["state"][k] - init[k]).abs().max()) for k in init) > 1e-2


def test_deep_cca_under_ddp_is_its_single_process_equivalent(one_process, two_ranks):
    ref = one_process["dcca"]["state"]
    for rank in two_ranks:
        got = rank["dcca"]["state"]
        assert got.keys() == ref.keys()
        for name in ref:
            np.testing.assert_allclose(got[name].numpy(), ref[name].numpy(), rtol=0, atol=1e-8,
                                       err_msg=name)
    assert two_ranks[0]["dcca"]["correlations"][0] > 0.5  # it learned the shared latent


def test_replicas_stay_identical(two_ranks):
    # "branchy" has a parameter without gradient: DDP needs find_unused_parameters
    assert torch.equal(two_ranks[0]["branchy"]["state"]["unused.weight"], Branchy().unused.weight)
    for key in ("mlp", "dcca", "branchy"):
        a, b = two_ranks[0][key]["state"], two_ranks[1][key]["state"]
        assert a.keys() == b.keys() and len(a) > 0
        for name in a:
            assert torch.equal(a[name], b[name]), (key, name)
    np.testing.assert_array_equal(two_ranks[0]["dcca"]["correlations"],
                                  two_ranks[1]["dcca"]["correlations"])


def run_recipe(tmp_path, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}",
           str(ROOT / "recipes" / "ddp_training.py"), "--quick", "--out", str(tmp_path), *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_recipe_runs_under_torchrun(tmp_path):
    import json

    proc = run_recipe(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "ddp_training.json").read_text())
    assert report["world_size"] == 2
    assert report["replicas_identical"] is True
    assert report["equivalence"]["max_abs_weight_difference"] < 1e-5
    assert report["test_canonical_correlations"][0] > 0.5
    assert "world size 2" in proc.stdout
