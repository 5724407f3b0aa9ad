"""Plumbing shared by the image classifiers with attention
(:class:`~mmalign.attention.SpatialTransformer`, :class:`~mmalign.attention.GlimpseAttention`):
reading images and labels, and the training run through
:meth:`~mmalign.nn.estimator.TorchEstimator._fit_module`."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..utils.tensors import as_tensor


def image_batch(value: Any, name: str, in_channels: int,
                image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """A batch ``(B, C, H, W)`` of images, as given (dtype kept).

    ``value`` is a batch ``(B, C, H, W)``; with one channel, a batch ``(B, H, W)`` of grey
    images; or one image ``(H, W)`` (one channel) or ``(C, H, W)`` (several channels), a
    batch of one. With ``image_size`` the images must have that size.
    """
    t = as_tensor(value, name)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[:, None] if int(in_channels) == 1 else t[None]
    elif t.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), (C, H, W) or (H, W), "
                         f"got {tuple(t.shape)}")
    return _check_images(t, name, in_channels, image_size)


def one_image(value: Any, name: str, in_channels: int,
              image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """One image ``(C, H, W)`` or ``(H, W)`` as a batch of one ``(1, C, H, W)`` (dtype kept)."""
    t = as_tensor(value, name)
    if t.ndim == 2:
        t = t[None, None]
    elif t.ndim == 3:
        t = t[None]
    else:
        hint = "; align_batch takes a batch" if t.ndim == 4 else ""
        raise ValueError(f"{name} must be one image, (C, H, W) or (H, W), got shape "
                         f"{tuple(t.shape)}{hint}")
    return _check_images(t, name, in_channels, image_size)


def image_list(value: Any, name: str, in_channels: int,
               image_size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """The images of ``align_batch``: batches ``(1, C, H, W)`` of one, in order.

    ``value`` is a batch (see :func:`image_batch`: 4-d, or 3-d with one channel) or a
    list / tuple of single images (arrays or tensors, ``(C, H, W)`` or ``(H, W)``; each
    named ``name[i]`` in messages)."""
    if isinstance(value, (list, tuple)) and len(value) > 0 \
            and all(isinstance(v, (np.ndarray, torch.Tensor)) for v in value):
        return [one_image(v, f"{name}[{i}]", in_channels, image_size) for i, v in enumerate(value)]
    if isinstance(value, (list, tuple)) and len(value) == 0:
        raise ValueError(f"{name} must not be empty")
    t = as_tensor(value, name)
    if t.ndim == 4 or (t.ndim == 3 and int(in_channels) == 1):
        batch = image_batch(t, name, in_channels, image_size)
        return list(batch.split(1))
    raise ValueError(f"{name} must be a batch of images, (B, C, H, W)"
                     f"{' or (B, H, W)' if int(in_channels) == 1 else ''}, or a list of images; "
                     f"got shape {tuple(t.shape)} (align takes one image)")


def _check_images(t: torch.Tensor, name: str, in_channels: int,
                  image_size: tuple[int, int] | None) -> torch.Tensor:
    if image_size is not None:
        if tuple(t.shape[1:]) != (int(in_channels), *image_size):
            raise ValueError(f"{name} must have shape (B, {in_channels}, {image_size[0]}, "
                             f"{image_size[1]}), got {tuple(t.shape)}")
    elif t.shape[1] != in_channels:
        raise ValueError(f"{name} have {t.shape[1]} channels, in_channels={in_channels}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    return t


def same_size_batches(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """``images`` (batches of one) joined into runs of equal size, in order."""
    runs: list[list[torch.Tensor]] = []
    for image in images:
        if runs and runs[-1][0].shape == image.shape:
            runs[-1].append(image)
        else:
            runs.append([image])
    return [torch.cat(run) if len(run) > 1 else run[0] for run in runs]


def labelled_images(images: torch.Tensor, labels: Any, n_classes: int,
                    name: str = "Y") -> tuple[torch.Tensor, torch.Tensor]:
    """``(images on the CPU, int64 labels)`` after checking ``labels`` (named ``name``)
    against ``images``."""
    if labels is None:
        raise ValueError(f"{name} (the labels) is required")
    y = torch.as_tensor(np.asarray(labels))
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.ndim != 1 \
            or y.shape[0] != images.shape[0]:
        raise ValueError(f"{name}: the labels must be {images.shape[0]} integers, got "
                         f"{tuple(y.shape)} {y.dtype}")
    if int(y.min()) < 0 or int(y.max()) >= int(n_classes):
        raise ValueError(f"{name}: the labels must lie in [0, {n_classes})")
    return images.cpu(), y.long()


def fit_classifier(estimator: Any, loss_fn: Callable, error: Callable, data: tuple, *,
                   validation: tuple | None, regenerate: Callable[[int], tuple] | None,
                   make_dataset: Callable[..., tuple], param_groups: Any = None) -> None:
    """Train ``estimator.module_`` with its ``train`` configuration
    (:meth:`~mmalign.nn.estimator.TorchEstimator._fit_module`): the validation metric is
    ``error`` on ``validation`` (early stopping with ``train.patience``, best weights
    restored); with ``regenerate``, epoch ``e >= 1`` trains on
    ``make_dataset(*regenerate(e))`` (one run: the optimiser's state carries over).
    ``param_groups`` is passed on to :func:`mmalign.nn.train.fit`."""
    metric = error if validation is not None else None
    fresh = None if regenerate is None else (lambda epoch: make_dataset(*regenerate(epoch)))
    estimator._fit_module(loss_fn, data, validation=validation, val_metric=metric,
                          param_groups=param_groups, regenerate=fresh)
