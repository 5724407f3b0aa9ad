"""Training a deep aligner on several processes with torch DDP (``torchrun``): deep CCA.

Run it with ``torchrun`` (or ``python -m torch.distributed.run``), one process per
GPU or, on CPU, per core::

    torchrun --nproc_per_node=2 recipes/ddp_training.py --out /tmp/ddp
    python recipes/ddp_training.py --out /tmp/ddp              # the same, one process

What the script does, and what any mmalign training script needs under DDP:

1. ``torch.distributed.init_process_group`` (``"nccl"`` on CUDA, ``"gloo"`` on CPU)
   with the environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``MASTER_*``).
2. The usual ``fit`` call.  Every deep aligner of mmalign trains through
   :func:`mmalign.nn.train.fit`, which sees the initialised process group and wraps
   the model in ``DistributedDataParallel``: each rank reads its share of the
   data through a ``DistributedSampler``, gradients are averaged across ranks
   after every step, the replicas start from rank 0's weights and stay identical.
   ``batch_size`` is **per rank**: the global batch is ``world_size x batch_size``.
   On CUDA, ``device="cuda"`` (or ``"auto"``) means ``cuda:$LOCAL_RANK``.
3. Rank 0 reports and writes files; every rank holds the same model.

The model is :class:`mmalign.DeepCCA` (two MLP encoders trained with the deep CCA
objective, then linear CCA on their outputs; the core of DCTW) on synthetic
two-view data with a known shared latent: ``z`` (2-d) drives both views through
different nonlinear maps, each view with its own noise dimensions.  Reported:
the canonical correlations on held-out rows, against linear CCA on the raw views.

**Batch statistics.**  The deep CCA loss is a statistic of the whole batch
(covariances), not a mean over samples.  Under DDP each rank computes it on its
own ``batch_size`` rows and the gradients are averaged, so ``W`` ranks x ``b`` rows
is *not* one process with batch ``W x b`` (unlike a mean-over-samples loss such as
MSE / cross-entropy, where it is).  It is exactly one process with batch ``W x b``
whose loss is the mean of the per-rank losses on the rank sub-batches (rank ``r``
gets rows ``r, r + W, ...`` of each global batch).  After the DDP run, rank 0
retrains that single-process equivalent with :func:`mmalign.nn.train.fit` and reports
the largest weight difference (float64: rounding only).  Keep ``batch_size`` per
rank large enough for stable covariances (a few times the encoder's output size
at least).

``--quick`` trains on fewer rows for fewer epochs (for the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

import mmalign
from mmalign.projection.deep_cca import DeepCCAModule, cca_loss, mlp_encoder
from mmalign.nn.train import TrainConfig, fit


def two_views(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired rows of two views of a 2-d latent ``z``: nonlinear, noisy, with private dims."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-2.0, 2.0, (n, 2))
    x_shared = np.column_stack([np.sin(z[:, 0]), np.cos(z[:, 1]), z[:, 0] * z[:, 1] / 2,
                                np.tanh(z[:, 0] - z[:, 1])])
    y_shared = np.column_stack([z[:, 0] ** 3 / 4, np.sin(2 * z[:, 1]), np.exp(-z[:, 0] ** 2)])
    X = np.column_stack([x_shared @ rng.standard_normal((4, 6)), rng.standard_normal((n, 2))])
    Y = np.column_stack([y_shared @ rng.standard_normal((3, 5)), rng.standard_normal((n, 2))])
    X += 0.1 * rng.standard_normal(X.shape)
    Y += 0.1 * rng.standard_normal(Y.shape)
    return X, Y


def correlations(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Per-column Pearson correlation of paired canonical variates."""
    return [float(np.corrcoef(a[:, j], b[:, j])[0, 1]) for j in range(a.shape[1])]


def make_model(args, d_x: int, d_y: int) -> mmalign.DeepCCA:
    """The same initial weights on every call, in float64: the two MLPs DeepCCA would build
    (seeds 0 and 1), given as its encoders after ``.double()``."""
    encoders = []
    for seed, dim in ((0, d_x), (1, d_y)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoders.append(mlp_encoder(dim, 2, hidden=(32, 32)).double())
    return mmalign.DeepCCA(*encoders, n_components=2, x_dim=d_x, y_dim=d_y,
                           train={"max_epochs": args.epochs, "batch_size": args.batch_size,
                                  "lr": args.lr, "seed": 0, "device": args.device})


def single_process_equivalent(args, X: np.ndarray, Y: np.ndarray, world: int) -> torch.nn.Module:
    """What ``world`` DDP ranks compute, in one process: global batch ``world x b``, the
    loss the mean of the deep CCA losses of the ``world`` interleaved rank sub-batches."""
    estimator = make_model(args, X.shape[1], Y.shape[1])
    model = DeepCCAModule(estimator.encoder_x, estimator.encoder_y)  # the network DeepCCA trains

    def loss_fn(m, batch):
        hx, hy = m(*batch)
        k = min(2, hx.shape[1], hy.shape[1])
        return torch.stack([cca_loss(hx[r::world], hy[r::world], n_components=k)
                            for r in range(world)]).mean()

    # the TrainConfig DeepCCA.fit uses, with the global batch (no short batch:
    # the number of rows is a multiple of world x batch_size)
    config = TrainConfig(max_epochs=args.epochs, batch_size=world * args.batch_size, lr=args.lr,
                         seed=0, device=args.device, progress=False, drop_last=False)
    fit(model, loss_fn, (torch.from_numpy(X), torch.from_numpy(Y)), config=config)
    return model


def flat_weights(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double().cpu() for p in model.parameters()])


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=".", help="folder for ddp_training.json (default: .)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128, help="rows per rank and step")
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per epoch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the single-process equivalence check")
    parser.add_argument("--quick", action="store_true", help="a small, short run (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.batch_size, args.steps = 5, 32, 4
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    args.device = "cuda" if cuda else "cpu"

    # 1. the process group, when started by torchrun
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    if distributed:
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if not cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))

    # the same data on every rank (the sampler hands each rank its share)
    n_train = args.steps * world * args.batch_size
    X, Y = two_views(n_train + 1000, seed=0)
    Xtr, Ytr, Xte, Yte = X[:n_train], Y[:n_train], X[n_train:], Y[n_train:]

    # 2. the usual fit: DDP inside mmalign.nn.train.fit
    t0 = time.perf_counter()
    model = make_model(args, X.shape[1], Y.shape[1]).fit(Xtr, Ytr)
    train_s = time.perf_counter() - t0

    # every replica holds the same weights
    identical = True
    if distributed:
        mine = flat_weights(model.module_).to("cuda" if cuda else "cpu")
        gathered = [torch.empty_like(mine) for _ in range(world)]
        dist.all_gather(gathered, mine)
        identical = all(torch.equal(g, gathered[0]) for g in gathered)
        dist.destroy_process_group()
    if rank != 0:
        return None

    # 3. rank 0: held-out correlations, the linear baseline, the equivalence check
    zx, zy = model.transform(Xte, Yte)
    deep = correlations(zx, zy)
    wx, wy, _, mx, my = mmalign.cca(Xtr, Ytr, 2)
    linear = correlations((Xte - mx) @ wx, (Yte - my) @ wy)
    equivalence = None
    if world > 1 and not args.no_check:
        reference = single_process_equivalent(args, Xtr, Ytr, world)
        diff = float((flat_weights(reference) - flat_weights(model.module_)).abs().max())
        equivalence = {"reference": f"1 process, batch {world * args.batch_size}, mean of "
                                    f"{world} sub-batch losses",
                       "max_abs_weight_difference": diff}
    report = {
        "world_size": world,
        "backend": ("nccl" if cuda else "gloo") if distributed else None,
        "device": args.device,
        "rows_train": n_train, "rows_test": len(Xte),
        "batch_size_per_rank": args.batch_size, "global_batch": world * args.batch_size,
        "epochs": args.epochs,
        "train_seconds": train_s,
        "replicas_identical": identical,
        "test_canonical_correlations": deep,
        "linear_cca_test_correlations": linear,
        "final_train_loss": model.history_["train_loss"][-1],
        "equivalence": equivalence,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ddp_training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"DeepCCA, world size {world} ({report['backend'] or 'no process group'}, "
          f"{args.device}), global batch {world * args.batch_size}, {args.epochs} epochs, "
          f"{train_s:.1f} s")
    print("| model | test canonical correlations |")
    print("|---|---|")
    label = f"DDP x{world}" if distributed else "1 process"
    print(f"| DeepCCA ({label}) | {', '.join(f'{c:.3f}' for c in deep)} |")
    print(f"| linear CCA | {', '.join(f'{c:.3f}' for c in linear)} |")
    print(f"replicas identical: {identical}")
    if equivalence is not None:
        print(f"single-process equivalent ({equivalence['reference']}): max |weight difference| "
              f"{equivalence['max_abs_weight_difference']:.2e}")
    return report


if __name__ == "__main__":
    main()
