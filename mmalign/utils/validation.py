"""Argument checks shared by every layer: the one place for them (numpy only, no torch import).

Every failure is a ``ValueError`` whose message starts with (or names) the argument.
The torch tensor readers are in :mod:`mmalign.utils.tensors`.
"""

from __future__ import annotations

import numbers
from typing import Any, Collection

import numpy as np

__all__ = [
    "as_real_array",
    "as_sequence",
    "check_bool",
    "check_choice",
    "check_fitted",
    "check_float",
    "check_int",
    "check_same_features",
    "check_sequence_shape",
    "check_sequences",
]


def as_real_array(x: Any, name: str) -> np.ndarray:
    """``x`` (array, nested list or torch tensor, on any device) as a numpy array of real numbers.

    No copy is made where ``np.asarray`` makes none; shapes and values are the caller's
    to check.

    Parameters
    ----------
    x : array-like or torch.Tensor
    name : str
        How messages name the argument.

    Returns
    -------
    arr : np.ndarray [integer or floating dtype]

    Raises
    ------
    ValueError
        Naming ``name``: ``x`` cannot be read as a numeric array (ragged lists,
        strings, objects), or holds booleans or complex numbers.

    Examples
    --------
    >>> as_real_array([[1, 2], [3, 4]], "x").dtype
    dtype('int64')
    >>> as_real_array([True], "x")
    Traceback (most recent call last):
    ...
    ValueError: x must hold real numbers (int or float), got dtype bool
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise ValueError(f"{name} cannot be read as a numeric array: {err}") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers (int or float), got dtype {arr.dtype}")
    return arr


def as_sequence(x: Any, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 ``(n, d)`` array (a copy when needed).

    Parameters
    ----------
    x : array-like or torch.Tensor, shape (n,) or (n, d)
        Integer or floating values; ``(n,)`` is read as univariate ``(n, 1)``.
    name : str
        How messages name the argument.

    Returns
    -------
    seq : np.ndarray [float64], shape (n, d), n >= 1, d >= 1

    Raises
    ------
    ValueError
        Naming ``name``: not numeric, not 1-d or 2-d, empty, or NaN / infinite values.

    Examples
    --------
    >>> as_sequence([1, 2, 3], "x").shape
    (3, 1)
    """
    x = as_real_array(x, name)
    if x.ndim == 1:
        x = x[:, None]
    check_sequence_shape(tuple(x.shape), name, "use cdist_dtw for collections of sequences")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_sequence_shape(shape: tuple, name: str, hint: str) -> None:
    """Refuse a sequence that is not ``(n, d)`` with ``n, d >= 1`` (1-d already lifted).

    ``hint`` ends the message for a shape with the wrong number of axes.
    """
    if len(shape) == 0:
        raise ValueError(f"{name} must be a sequence of shape (n,) or (n, d), got a 0-d scalar")
    if len(shape) != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {len(shape)}-d shape "
                         f"{shape}; {hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no time steps")
    if shape[1] == 0:
        raise ValueError(f"{name} has no features: shape {shape}")


def check_sequences(data: Any, name: str) -> None:
    """Refuse ``data`` unless it is one sequence or a collection of sequences.

    A collection is a list, tuple or 3-d array of sequences, each read as
    :func:`as_sequence` reads it; messages name ``name`` or ``name[k]``.
    """
    if data is None:
        raise ValueError(f"{name} must be a sequence or a collection of sequences, got None")
    if isinstance(data, (list, tuple)) and data and not all(
            isinstance(v, numbers.Real) for v in data):
        for k, seq in enumerate(data):
            as_sequence(seq, f"{name}[{k}]")
    elif getattr(data, "ndim", None) == 3:
        for k in range(data.shape[0]):
            as_sequence(data[k], f"{name}[{k}]")
    else:
        as_sequence(data, name)


def check_same_features(x: np.ndarray, y: np.ndarray, xname: str = "x", yname: str = "y") -> None:
    """Refuse two ``(n, d)`` sequences with different numbers of features ``d``."""
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{xname} and {yname} have different numbers of features: "
            f"{x.shape[1]} and {y.shape[1]}"
        )


def check_int(value: Any, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]`` (booleans refused).

    Examples
    --------
    >>> check_int(3, "radius")
    3
    >>> check_int(True, "radius")
    Traceback (most recent call last):
    ...
    ValueError: radius must be an integer, got True
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value: Any, name: str, low: float, high: float = np.inf, *,
                low_open: bool = False) -> float:
    """``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` with ``low_open``).

    Examples
    --------
    >>> check_float(0, "gamma", 0.0, low_open=True)
    Traceback (most recent call last):
    ...
    ValueError: gamma must lie in (0.0, inf), got 0.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < low or value > high or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}{']' if np.isfinite(high) else ')'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_choice(value: Any, name: str, choices: Collection) -> Any:
    """``value`` if it is one of ``choices``, else a ``ValueError`` listing them."""
    try:
        known = value in choices
    except TypeError:  # an unhashable value, e.g. a list
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> bool | None:
    """``value`` as a ``bool``: ``True`` or ``False`` (numpy booleans too), or ``None`` if allowed.

    Integers such as 0 and 1, and strings such as ``"yes"``, are refused.

    Examples
    --------
    >>> check_bool(True, "coverage")
    True
    >>> check_bool(1, "coverage")
    Traceback (most recent call last):
    ...
    ValueError: coverage must be a bool (True or False), got 1
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "a bool (True or False) or None" if allow_none else "a bool (True or False)"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return bool(value)


def check_fitted(estimator: Any, attribute: str, fit_call: str = "fit") -> None:
    """Refuse an estimator that has no ``attribute`` yet (set by its ``fit``).

    Parameters
    ----------
    estimator : object
    attribute : str
        A fitted attribute, e.g. ``"history_"``.
    fit_call : str
        How the message tells the user to fit, e.g. ``"fit(X, Y)"``.

    Examples
    --------
    >>> class CCA: ...
    >>> check_fitted(CCA(), "weights_", "fit(X, Y)")
    Traceback (most recent call last):
    ...
    ValueError: this CCA is not fitted yet; call fit(X, Y) first
    """
    if not hasattr(estimator, attribute):
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet; "
                         f"call {fit_call} first")
