"""Input checks shared by the DTW family: every failure is a ValueError naming the argument."""

from __future__ import annotations

import numbers

import numpy as np


def as_sequence(x, name: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous float64 ``(n, d)`` array (a copy when needed).

    Accepts ``(n,)`` (univariate) or ``(n, d)`` arrays, lists and torch tensors
    of integer or floating dtype.
    """
    x = _to_numpy(x, name)
    if x.ndim == 1:
        x = x[:, None]
    check_sequence_shape(tuple(x.shape), name, "use cdist_dtw for collections of sequences")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_sequence_shape(shape: tuple, name: str, hint: str) -> None:
    """Errors for a sequence that is not ``(n, d)`` with ``n, d >= 1`` (1-d already lifted)."""
    if len(shape) == 0:
        raise ValueError(f"{name} must be a sequence of shape (n,) or (n, d), got a 0-d scalar")
    if len(shape) != 2:
        raise ValueError(f"{name} must have shape (n,) or (n, d), got {len(shape)}-d shape "
                         f"{shape}; {hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no time steps")
    if shape[1] == 0:
        raise ValueError(f"{name} has no features: shape {shape}")


def _to_numpy(x, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists and the like
        raise ValueError(f"{name} cannot be read as a numeric array: {err}") from None
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers (int or float), got dtype {x.dtype}")
    return x


def check_same_features(x: np.ndarray, y: np.ndarray, xname: str = "x", yname: str = "y") -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{xname} and {yname} have different numbers of features: "
            f"{x.shape[1]} and {y.shape[1]}"
        )


def check_int(value, name: str, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, name: str, low: float, high: float = np.inf, *,
                low_open: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value < low or value > high or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}{']' if np.isfinite(high) else ')'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return value


def check_choice(value, name: str, choices) -> str:
    try:
        known = value in choices
    except TypeError:  # an unhashable value, e.g. a list
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_sequences(data, name: str) -> None:
    """ValueError naming ``name`` (or ``name[k]``) unless ``data`` is one sequence or a
    collection (list, tuple, 3-d array) of sequences, each as :func:`as_sequence` reads it."""
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
