"""A stand-in for DistributedDataParallel that checks a model's training loss runs only
through the wrapper's forward (what DDP needs to synchronise gradients)."""

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
    """Make ``mmalign.nn.train.fit`` hand the loss function a :class:`Spy` whose submodules may
    only run inside its forward; returns the list the spies are appended to."""
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
    return spies
