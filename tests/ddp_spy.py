"""A stand-in for DistributedDataParallel that checks a model's training loss runs only
through the wrapper's forward (what DDP needs to synchronise gradients), and a two-process
gloo run of a model's real DDP training."""

import pytest
import torch


class Spy(torch.nn.Module):
    """Wraps a module like DDP does: only its forward may run the wrapped model."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        self.inside = False
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        self.inside = True
        try:
            return self.module(*args, **kwargs)
        finally:
            self.inside = False


def spy_on_training(monkeypatch) -> list:
    """Make ``mmalign.nn.train.fit`` (also as the neural estimators' base calls it) hand the loss
    function a :class:`Spy` whose submodules may only run inside its forward; returns the list the
    spies are appended to."""
    import mmalign.nn.estimator
    import mmalign.nn.train

    real_fit = mmalign.nn.train.fit
    spies = []

    def fit(module, loss_fn, data, **kw):
        spy = Spy(module)
        spies.append(spy)

        def check(mod, args):
            assert spy.inside, f"{type(mod).__name__} ran outside the wrapper's forward"
        hooks = [m.register_forward_pre_hook(check) for m in module.modules()]
        try:
            return real_fit(module, lambda m, b: loss_fn(spy, b), data, **kw)
        finally:
            for h in hooks:
                h.remove()

    monkeypatch.setattr(mmalign.nn.train, "fit", fit)
    monkeypatch.setattr(mmalign.nn.estimator, "train_fit", fit)  # TorchEstimator._fit_module's
    return spies


# a two-process run needs the gloo backend
needs_gloo = pytest.mark.skipif(not (torch.distributed.is_available()
                                     and torch.distributed.is_gloo_available()), reason="no gloo")


def _rank(rank: int, world: int, train, rendezvous: str, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    try:
        torch.save(train(), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def run_two_ranks(train, tmp_path) -> tuple[dict, dict]:
    """Run ``train()`` (a module-level function returning a dict of tensors: it trains a model,
    each rank on its half of the data) in two gloo processes; returns the two dicts."""
    import torch.multiprocessing as mp

    out = str(tmp_path / "weights")
    mp.spawn(_rank, args=(2, train, str(tmp_path / "rendezvous"), out), nprocs=2, join=True)
    return tuple(torch.load(f"{out}.{r}", weights_only=True) for r in (0, 1))
