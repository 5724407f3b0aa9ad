"""Reading user data as real, finite tensors (shared by CCA and deep CCA)."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def as_real_tensor(X, name: str) -> torch.Tensor:
    """``X`` as a detached tensor of real numbers, shape ``(n, ...)`` (1-d becomes ``(n, 1)``).

    Integer data become float64; floating data keep their dtype. Big-endian,
    negatively strided and read-only arrays are read like any other. Raises a
    ``ValueError`` naming ``name`` for non-numeric, boolean, complex, empty,
    NaN or infinite input. The caller's array is never modified.
    """
    if isinstance(X, torch.Tensor):
        T = X.detach()
    else:
        try:
            with warnings.catch_warnings():  # read-only arrays: never written to here
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                T = torch.as_tensor(torch_readable(np.asarray(X)))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} cannot be read as a numeric array: {err}") from None
    if T.dtype == torch.bool or T.is_complex() or not (T.is_floating_point()
                                                        or T.dtype.is_signed or T.dtype == torch.uint8):
        raise ValueError(f"{name} must hold real numbers, got dtype {T.dtype}")
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
    if not torch.isfinite(T).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return T


def torch_readable(arr: np.ndarray) -> np.ndarray:
    """``arr``, or a copy in native byte order with positive strides where torch needs one
    (``torch.as_tensor`` refuses the others)."""
    if not arr.dtype.isnative or any(stride < 0 for stride in arr.strides):
        return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    return arr
