"""Reading user data as real, finite tensors (shared by CCA and deep CCA)."""

from __future__ import annotations

import torch

from ..utils.tensors import as_tensor, check_finite

__all__ = ["as_real_tensor"]


def as_real_tensor(X, name: str) -> torch.Tensor:
    """``X`` as a detached tensor of real numbers, shape ``(n, ...)`` (1-d becomes ``(n, 1)``).

    Integer data become float64; floating data keep their dtype. Big-endian,
    negatively strided and read-only arrays are read like any other. Raises a
    ``ValueError`` naming ``name`` for non-numeric, boolean, complex, empty,
    NaN or infinite input. The caller's array is never modified.
    """
    T = as_tensor(X, name)
    if T.ndim == 1:
        T = T[:, None]
    if T.ndim < 2:
        raise ValueError(f"{name} must have shape (n, ...), got {tuple(T.shape)}")
    if T.numel() == 0:
        if T.ndim == 2 and T.shape[0] > 0:
            raise ValueError(f"{name} has no features")
        raise ValueError(f"{name} is empty, shape {tuple(T.shape)}")
    if not T.is_floating_point():
        T = T.double()
    check_finite(T, name)
    return T
