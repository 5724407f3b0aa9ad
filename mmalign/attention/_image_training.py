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
    """Train ``model`` with :func:`mmalign.nn.train.fit` using its ``max_epochs``,
    ``batch_size``, ``lr``, ``seed`` and ``device``; with ``regenerate``, epoch
    ``e >= 1`` trains on ``make_dataset(*regenerate(e))`` (one run: the
    optimiser's state carries over). ``param_groups`` is passed on to
    :func:`mmalign.nn.train.fit`.

    Returns the history as ``{"train_loss": [...], "val_metric": [...]}``.
    """
    from ..nn.train import TrainConfig, fit as train_fit

    metric = error if val is not None else None
    config = TrainConfig(max_epochs=int(model.max_epochs), batch_size=int(model.batch_size), lr=float(model.lr),
                         seed=int(model.seed), device=model.device, progress=False)
    fresh = None if regenerate is None else (lambda epoch: make_dataset(*regenerate(epoch)))
    h = train_fit(model, loss_fn, data, config=config, val_data=val, val_metric=metric,
                  param_groups=param_groups, regenerate=fresh)
    return {"train_loss": list(h.train_loss), "val_metric": list(h.val_metric)}
