"""User data read as torch tensors of real, finite numbers (torch is imported here only).

Every failure is a ``ValueError`` whose message starts with (or names) the argument.
The plain (numpy) argument checks are in :mod:`mmalign.utils.validation`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

__all__ = ["as_float", "as_tensor", "check_finite", "torch_readable"]


def torch_readable(arr: np.ndarray) -> np.ndarray:
    """``arr``, or a copy in native byte order with positive strides where torch needs one
    (``torch.as_tensor`` refuses the others)."""
    if not arr.dtype.isnative or any(stride < 0 for stride in arr.strides):
        return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
    return arr


def as_tensor(value: Any, name: str) -> torch.Tensor:
    """``value`` (tensor, array or nested list) as a detached tensor of real numbers.

    Floating-point, signed integer and ``uint8`` data keep their dtype; no copy is
    made where torch can read ``value`` as it is. Big-endian, negatively strided and
    read-only arrays are read like any other; the caller's data is never modified.
    Shapes and values are the caller's to check.

    Parameters
    ----------
    value : torch.Tensor, np.ndarray or array-like
    name : str
        How messages name the argument, e.g. ``"x"`` or ``"x['audio']"``.

    Returns
    -------
    tensor : torch.Tensor

    Raises
    ------
    ValueError
        Naming ``name``: ``value`` cannot be read as a numeric array (None, strings,
        objects, ragged lists), or holds booleans, complex or unsigned (other than
        ``uint8``) numbers.

    Examples
    --------
    >>> import numpy as np
    >>> as_tensor(np.arange(3, dtype=">f8"), "x")
    tensor([0., 1., 2.], dtype=torch.float64)
    >>> as_tensor(np.array(["a"]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x cannot be read as a numeric array: dtype <U1
    """
    if isinstance(value, torch.Tensor):
        t = value.detach()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as err:  # ragged nested lists and the like
            raise ValueError(f"{name} cannot be read as a numeric array: {err}") from None
        if arr.dtype.kind not in "biufc":
            raise ValueError(f"{name} cannot be read as a numeric array: dtype {arr.dtype}")
        try:
            with warnings.catch_warnings():  # read-only arrays: never written to here
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                t = torch.as_tensor(torch_readable(arr))
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} cannot be read as a numeric array: {err}") from None
    if t.dtype == torch.bool or t.is_complex() or not (t.is_floating_point() or t.dtype.is_signed
                                                       or t.dtype == torch.uint8):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError("<name> contains NaN or infinite values")`` unless ``t`` is finite."""
    if (t.is_floating_point() or t.is_complex()) and not _all_finite(t):
        raise ValueError(f"{name} contains NaN or infinite values")


def _all_finite(t: torch.Tensor) -> bool:
    # One reduction instead of an elementwise mask: NaN and inf propagate into the sum, so a
    # finite sum means a finite tensor; only an overflowing sum of finite values needs the mask.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def as_float(t: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """``t`` in the floating-point ``dtype`` (a model's), checked on the way.

    Raises
    ------
    ValueError
        Naming ``name``: ``t`` holds NaN or infinite values, or finite values beyond
        the range of ``dtype`` (values near 1e300 in float32), which would become inf.

    Examples
    --------
    >>> import torch
    >>> as_float(torch.tensor([1e300], dtype=torch.float64), torch.float32, "x")
    Traceback (most recent call last):
    ...
    ValueError: x has values too large for float32 (largest magnitude 1e+300); rescale it
    """
    check_finite(t, name)
    out = t.to(dtype)
    if out.dtype != t.dtype and out.is_floating_point() and not _all_finite(out):
        raise ValueError(f"{name} has values too large for {str(dtype).removeprefix('torch.')} "
                         f"(largest magnitude {float(t.abs().max()):.3g}); rescale it")
    return out
