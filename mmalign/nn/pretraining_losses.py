"""Losses of the masked pretraining objectives, each scored on the positions it names.

:func:`masked_token_loss` (cross-entropy on the masked words),
:func:`masked_frame_loss` (squared error on the masked frames / patches) and
:func:`pair_matching_loss` (binary cross-entropy of "aligned"). The positions
come from :mod:`mmalign.nn.masking`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["masked_token_loss", "masked_frame_loss", "pair_matching_loss"]


def masked_token_loss(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``targets`` under ``logits`` on the ``selected`` positions only.

    Parameters
    ----------
    logits : torch.Tensor [shape=(B, T, V)]
    targets : torch.LongTensor [shape=(B, T)]
        Original ids.
    selected : torch.BoolTensor [shape=(B, T)]

    Returns
    -------
    loss : torch.Tensor [shape=()]
        Mean over the selected positions; 0 (with a gradient path) when none is.

    Examples
    --------
    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)
    >>> sel = torch.tensor([[True, False, False]])
    >>> round(float(masked_token_loss(logits, torch.tensor([[1, 2, 3]]), sel)), 4)  # log 4
    1.3863
    """
    if logits.ndim != 3 or tuple(targets.shape) != tuple(logits.shape[:2]) \
            or tuple(selected.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"logits (B, T, V), targets and selected (B, T) disagree: "
                         f"{tuple(logits.shape)}, {tuple(targets.shape)}, {tuple(selected.shape)}")
    if not bool(selected.any()):
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits[selected], targets[selected])


def masked_frame_loss(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean squared error on the ``masked`` frames only (averaged over their features).

    Parameters
    ----------
    prediction, target : torch.Tensor [shape=(B, T, d)]
    masked : torch.BoolTensor [shape=(B, T)]

    Returns
    -------
    loss : torch.Tensor [shape=()]
        0 (with a gradient path) when nothing is masked.

    Examples
    --------
    >>> import torch
    >>> pred, target = torch.zeros(1, 3, 2), torch.tensor([[[1.0, 1.0], [5.0, 5.0], [2.0, 0.0]]])
    >>> float(masked_frame_loss(pred, target, torch.tensor([[True, False, True]])))
    1.5
    """
    if prediction.shape != target.shape or prediction.ndim != 3 \
            or tuple(masked.shape) != tuple(prediction.shape[:2]):
        raise ValueError(f"prediction, target (B, T, d) and masked (B, T) disagree: "
                         f"{tuple(prediction.shape)}, {tuple(target.shape)}, {tuple(masked.shape)}")
    if not bool(masked.any()):
        return prediction.sum() * 0.0
    return nn.functional.mse_loss(prediction[masked], target[masked].to(prediction.dtype))


def pair_matching_loss(logits: torch.Tensor, aligned: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of "aligned" from one logit per pair.

    Parameters
    ----------
    logits : torch.Tensor [shape=(B,)]
    aligned : torch.BoolTensor [shape=(B,)]

    Returns
    -------
    loss : torch.Tensor [shape=()]

    Examples
    --------
    >>> import torch
    >>> round(float(pair_matching_loss(torch.zeros(2), torch.tensor([True, False]))), 4)
    0.6931
    """
    if logits.ndim != 1 or tuple(aligned.shape) != tuple(logits.shape):
        raise ValueError(f"logits and aligned must both have shape (B,), got "
                         f"{tuple(logits.shape)} and {tuple(aligned.shape)}")
    return nn.functional.binary_cross_entropy_with_logits(logits, aligned.to(logits.dtype))
