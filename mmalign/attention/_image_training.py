"""Training plumbing shared by the image classifiers with attention
(:class:`~mmalign.attention.SpatialTransformer`, :class:`~mmalign.attention.GlimpseAttention`)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch


def labelled_images(images: torch.Tensor, labels: Any, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images on the CPU, int64 labels)`` after checking ``labels`` against ``images``."""
    if labels is None:
        raise ValueError("labels are required")
    y = torch.as_tensor(np.asarray(labels))
    if y.dtype.is_floating_point or y.ndim != 1 or y.shape[0] != images.shape[0]:
        raise ValueError(f"labels must be {images.shape[0]} integers, got {tuple(y.shape)} {y.dtype}")
    if int(y.min()) < 0 or int(y.max()) >= int(n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    return images.cpu(), y.long()


def fit_epochs(model: Any, loss_fn: Callable, error: Callable, data: tuple, *,
               val: tuple | None, regenerate: Callable[[int], tuple] | None,
               make_dataset: Callable[..., tuple], param_groups: Any = None) -> dict:
    """Train ``model`` with :func:`mmalign.train.fit` using its ``max_epochs``,
    ``batch_size``, ``lr``, ``seed`` and ``device``; with ``regenerate``, one
    call per epoch on ``make_dataset(*regenerate(epoch))`` (seed ``seed + epoch``).
    ``param_groups`` is passed on to :func:`mmalign.train.fit`.

    Returns the history as ``{"train_loss": [...], "val_metric": [...]}``.
    """
    from ..train import TrainConfig, fit as train_fit

    metric = error if val is not None else None

    def run(train_data: tuple, epochs: int, seed: int):
        config = TrainConfig(max_epochs=epochs, batch_size=int(model.batch_size), lr=float(model.lr),
                             seed=seed, device=model.device, progress=False)
        return train_fit(model, loss_fn, train_data, config=config, val_data=val, val_metric=metric,
                         param_groups=param_groups)

    if regenerate is None:
        h = run(data, int(model.max_epochs), int(model.seed))
        return {"train_loss": list(h.train_loss), "val_metric": list(h.val_metric)}
    history: dict = {"train_loss": [], "val_metric": []}
    for epoch in range(int(model.max_epochs)):
        data = data if epoch == 0 else make_dataset(*regenerate(epoch))
        h = run(data, 1, int(model.seed) + epoch)
        history["train_loss"] += list(h.train_loss)
        history["val_metric"] += list(h.val_metric)
    return history
