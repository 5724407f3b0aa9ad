"""Tests for mmalign.nn.train: the shared training loop."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmalign.nn.train import History, TrainConfig, fit, resolve_device

W_TRUE = torch.tensor([[1.5], [-2.0], [0.5]])


def _data(n: int = 256, dtype: torch.dtype = torch.float32, noise: float = 0.0):
    g = torch.Generator().manual_seed(123)
    x = torch.randn(n, 3, generator=g, dtype=dtype)
    y = x @ W_TRUE.to(dtype) + 0.3 + noise * torch.randn(n, 1, generator=g, dtype=dtype)
    return x, y


def _model(seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.nn.Linear:
    torch.manual_seed(seed)
    return torch.nn.Linear(3, 1).to(dtype)


def _mse(model, batch):
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def _cfg(**kw) -> TrainConfig:
    base = dict(max_epochs=20, batch_size=32, lr=0.05, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_linear_regression_converges_and_history_lengths():
    model = _model()
    x, y = _data()
    hist = fit(model, _mse, (x, y), config=_cfg(max_epochs=40))
    assert isinstance(hist, History)
    assert hist.epochs_run == 40 == len(hist.train_loss)
    assert hist.val_metric == []
    assert hist.best_epoch == 39 and not hist.stopped_early
    assert hist.train_loss[-1] < 1e-4 < hist.train_loss[0]
    torch.testing.assert_close(model.weight.data, W_TRUE.T, atol=1e-2, rtol=0)
    d = hist.as_dict()
    assert set(d) == {"train_loss", "val_metric", "best_epoch", "epochs_run", "stopped_early"}


def test_numpy_tuple_and_validation_default_metric():
    x, y = _data(noise=0.1)
    model = _model()
    hist = fit(model, _mse, (x.numpy(), y.numpy()), config=_cfg(max_epochs=5),
               val_data=(x[:50].numpy(), y[:50].numpy()))
    assert len(hist.val_metric) == len(hist.train_loss) == 5
    with torch.no_grad():
        assert abs(_mse(model, (x[:50], y[:50])).item() - min(hist.val_metric)) < 1e-6


def test_seeded_runs_identical():
    x, y = _data(noise=0.1)
    results = []
    for _ in range(2):
        model = _model(seed=7)
        hist = fit(model, _mse, (x, y), config=_cfg(max_epochs=5, seed=3), val_data=(x[:40], y[:40]))
        results.append((_weights(model), hist.as_dict()))
    (w1, h1), (w2, h2) = results
    assert h1 == h2
    for k in w1:
        assert torch.equal(w1[k], w2[k])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_regenerate_keeps_the_optimiser_state(optimizer):
    """Regenerating the same data every epoch is one run on that data: the optimiser's state carries over."""
    x, y = _data(noise=0.1)
    cfg = _cfg(max_epochs=6, seed=3, optimizer=optimizer, scheduler="cosine")
    one = _model(seed=7)
    fit(one, _mse, (x, y), config=cfg)
    calls = []

    def regenerate(epoch):
        calls.append(epoch)
        return (x.clone(), y.clone())

    again = _model(seed=7)
    fit(again, _mse, (x, y), config=cfg, regenerate=regenerate)
    assert calls == [1, 2, 3, 4, 5]
    for k, v in _weights(one).items():
        assert torch.equal(v, _weights(again)[k])
    # different data per epoch is used: epoch e trains on the rows regenerate(e) returns
    seen = []
    fit(_model(), lambda m, b: (seen.append(float(b[1].sum())) or _mse(m, b)), (x[:32], y[:32]),
        config=_cfg(max_epochs=3, batch_size=32), regenerate=lambda e: (x[32 * e:32 * e + 32], y[32 * e:32 * e + 32]))
    assert np.allclose(seen, [float(y[32 * e:32 * e + 32].sum()) for e in range(3)], atol=1e-4)
    with pytest.raises(ValueError, match="regenerate"):
        fit(_model(), _mse, (x, y), config=_cfg(max_epochs=2), regenerate="yes")
    with pytest.raises(ValueError, match=r"regenerate\(1\)"):
        fit(_model(), _mse, (x, y), config=_cfg(max_epochs=2), regenerate=lambda e: (x, y[:5]))


def test_early_stopping_restores_best_weights():
    x, y = _data()
    snapshots: list[dict] = []

    def worsening(model, val_batch):
        # record the weights seen at each epoch; metric improves for 3 epochs then gets worse
        snapshots.append(_weights(model))
        epoch = len(snapshots) - 1
        return float(abs(epoch - 2))

    model = _model()
    hist = fit(model, _mse, (x, y), config=_cfg(max_epochs=50, patience=3),
               val_data=(x[:20], y[:20]), val_metric=worsening)
    assert hist.stopped_early
    assert hist.best_epoch == 2
    assert hist.epochs_run == 6 == len(hist.val_metric) == len(hist.train_loss)
    for k, v in _weights(model).items():
        assert torch.equal(v, snapshots[2][k])
    assert not torch.equal(snapshots[2]["weight"], snapshots[-1]["weight"])


def test_checkpoint_written_and_resume_continues(tmp_path):
    x, y = _data(noise=0.1)
    ckpt = str(tmp_path / "sub" / "model.pt")
    m1 = _model()
    h1 = fit(m1, _mse, (x, y), config=_cfg(max_epochs=3, optimizer="adam", scheduler="cosine", checkpoint=ckpt))
    assert os.path.exists(ckpt) and h1.epochs_run == 3
    saved = torch.load(ckpt, weights_only=True)
    assert saved["epoch"] == 2 and set(saved) >= {"model", "optimizer", "epoch"}

    m2 = _model(seed=99)  # different init: resume must overwrite it
    cfg = _cfg(max_epochs=6, optimizer="adam", scheduler="cosine", checkpoint=ckpt, resume=True)
    h2 = fit(m2, _mse, (x, y), config=cfg)
    assert h2.epochs_run == 6 and len(h2.train_loss) == 6
    assert h2.train_loss[:3] == h1.train_loss
    assert h2.train_loss[-1] < h2.train_loss[2]
    assert torch.load(ckpt, weights_only=True)["epoch"] == 5


def test_resume_exact_without_scheduler(tmp_path):
    x, y = _data(noise=0.1)
    ckpt = str(tmp_path / "m.pt")
    full_model = _model()
    full = fit(full_model, _mse, (x, y), config=_cfg(max_epochs=6))
    fit(_model(), _mse, (x, y), config=_cfg(max_epochs=3, checkpoint=ckpt))
    m = _model(seed=5)
    resumed = fit(m, _mse, (x, y), config=_cfg(max_epochs=6, checkpoint=ckpt, resume=True))
    assert resumed.train_loss == full.train_loss
    for k, v in _weights(full_model).items():
        assert torch.equal(v, m.state_dict()[k])


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("scheduler", [None, "cosine", "plateau"])
def test_optimizers_schedulers_grad_clip(optimizer, scheduler):
    x, y = _data(n=64)
    model = _model()
    hist = fit(model, _mse, (x, y),
               config=_cfg(max_epochs=3, lr=0.01, optimizer=optimizer, scheduler=scheduler,
                           grad_clip=0.5, weight_decay=1e-4, progress=True),
               val_data=(x[:16], y[:16]))
    assert hist.epochs_run == 3
    assert all(np.isfinite(hist.train_loss))


def test_grad_clip_limits_step():
    x, y = _data(n=32)
    y = y * 1000.0  # huge gradients
    model = _model()
    w0 = _weights(model)
    fit(model, _mse, (x, y), config=_cfg(max_epochs=1, batch_size=32, lr=1.0, optimizer="sgd",
                                         grad_clip=1e-3, shuffle=False))
    delta = torch.cat([(model.state_dict()[k] - w0[k]).flatten() for k in w0])
    assert delta.norm() <= 1e-3 + 1e-7


def test_dataset_input_and_drop_last():
    x, y = _data(n=70)
    ds = torch.utils.data.TensorDataset(x, y)
    hist = fit(_model(), _mse, ds, config=_cfg(max_epochs=2, batch_size=32, drop_last=True))
    assert hist.epochs_run == 2


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu-ish")
    with pytest.raises(ValueError, match="device"):
        resolve_device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA available")
def test_resolve_device_cuda_unavailable():
    with pytest.raises(ValueError, match="device"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_device("cuda:1")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(scheduler="step"), "scheduler"),
        (dict(lr=0.0), "lr"),
        (dict(lr=-1.0), "lr"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(grad_clip=0.0), "grad_clip"),
        (dict(device="nope"), "device"),
        (dict(patience=2), "patience"),  # no val_data
    ],
)
def test_bad_config_raises(kwargs, match):
    x, y = _data(n=16)
    with pytest.raises(ValueError, match=match):
        fit(_model(), _mse, (x, y), config=_cfg(**kwargs))


def test_bad_data_raises():
    x, y = _data(n=16)
    with pytest.raises(ValueError, match="data"):
        fit(_model(), _mse, (x, y[:10]), config=_cfg())
    with pytest.raises(ValueError, match="data"):
        fit(_model(), _mse, (x[:0], y[:0]), config=_cfg())
    with pytest.raises(ValueError, match="data"):
        fit(_model(), _mse, (), config=_cfg())
    with pytest.raises(ValueError, match="val_data"):
        fit(_model(), _mse, (x, y), config=_cfg(), val_data=(x, y[:3]))
    with pytest.raises(ValueError, match="val_metric"):
        fit(_model(), _mse, (x, y), config=_cfg(), val_metric=lambda m, b: 0.0)
    with pytest.raises(ValueError, match="batch_size"):
        fit(_model(), _mse, (x, y), config=_cfg(batch_size=32, drop_last=True))


# --------------------------------------------------------------------------- DDP on CPU


_DDP_EPOCHS = 4


def _ddp_worker(rank: int, world: int, out: str, ckpt: str, rendezvous: str) -> None:
    # a file rendezvous: no TCP port that another process could take in between
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank,
                            world_size=world)
    try:
        x, y = _data(n=128, dtype=torch.float64, noise=0.1)
        model = _model(dtype=torch.float64)
        cfg = _cfg(max_epochs=_DDP_EPOCHS, batch_size=16, lr=0.05, optimizer="sgd",
                   shuffle=False, checkpoint=ckpt)
        hist = fit(model, _mse, (x, y), config=cfg, val_data=(x[:32], y[:32]))
        if rank == 0:
            torch.save({"weights": _weights(model), "history": hist.as_dict()}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="no gloo")
def test_ddp_two_processes_match_single_process(tmp_path):
    out = str(tmp_path / "ddp.pt")
    ckpt = str(tmp_path / "ddp_ckpt.pt")
    rendezvous = str(tmp_path / "rendezvous")
    mp.spawn(_ddp_worker, args=(2, out, ckpt, rendezvous), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    assert os.path.exists(ckpt)

    x, y = _data(n=128, dtype=torch.float64, noise=0.1)
    model = _model(dtype=torch.float64)
    cfg = _cfg(max_epochs=_DDP_EPOCHS, batch_size=32, lr=0.05, optimizer="sgd", shuffle=False)
    hist = fit(model, _mse, (x, y), config=cfg, val_data=(x[:32], y[:32]))

    for k, v in _weights(model).items():
        torch.testing.assert_close(ddp["weights"][k], v, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ddp["history"]["train_loss"], hist.train_loss, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ddp["history"]["val_metric"], hist.val_metric, rtol=1e-9, atol=1e-9)
    assert ddp["history"]["best_epoch"] == hist.best_epoch
