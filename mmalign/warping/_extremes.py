"""Values at the extremes of float64: one place for the DTW family's range rules (private).

**Hard DTW** is homogeneous.  Multiplying both sequences by ``c`` multiplies
every local cost of the built-in metrics by ``c`` (``c**2`` for the squared
Euclidean cost, whose square root is reported; cosine costs do not change), so
the optimal path stays the same and the reported distance is multiplied by
``c``.  A pair whose largest magnitude lies outside ``[2**-400, 2**400]`` is
therefore multiplied by a power of two that brings it into ``[0.5, 1)``,
solved, and the distance multiplied back; a distance beyond float64 is a
``ValueError``.  Powers of two change exponents only, so the scaled problem is
the original one exactly (values far below the pair's largest, under
``2**-1074`` of it, round to zero), and inside the range nothing is scaled:
ordinary inputs give the same bits as before.  Inside the range the squared
costs (at most ``4 d 2**800``), summed over any path, cannot overflow, and the
squares of differences of the size of the values cannot underflow.

A precomputed or callable cost matrix needs no scaling: an accumulated cost
that float64 can hold is computed exactly as it is; one that it cannot hold
is reported as a ``ValueError`` (:func:`too_large`).

**Soft-DTW** is not homogeneous (``gamma`` is an absolute scale), so it is not
rescaled: inputs whose local costs, summed along a path, could overflow are
refused by :func:`soft_range_error` with a message that says how to rescale.
"""

from __future__ import annotations

import math

import numpy as np

SAFE_EXPONENT = 400
SAFE_LOW = 2.0 ** -SAFE_EXPONENT
SAFE_HIGH = 2.0 ** SAFE_EXPONENT
FLOAT64_MAX = float(np.finfo(np.float64).max)


def peak(x) -> float:
    """Largest magnitude of an array (0 for an empty one)."""
    return float(np.max(np.abs(x))) if np.size(x) else 0.0


def exponent(value: float) -> int:
    """``e`` such that ``value * 2**-e`` lies in ``[0.5, 1)``; 0 when ``value`` needs no scaling.

    ``value`` is the largest magnitude of a pair; 0 (all zero) needs no scaling either.
    """
    if value == 0 or SAFE_LOW <= value <= SAFE_HIGH:
        return 0
    return math.frexp(value)[1]


def exponents(values: np.ndarray) -> np.ndarray:
    """:func:`exponent` of each entry, as an int64 array."""
    values = np.asarray(values, dtype=np.float64)
    safe = (values == 0) | ((values >= SAFE_LOW) & (values <= SAFE_HIGH))
    return np.where(safe, 0, np.frexp(values)[1]).astype(np.int64)


def factors(e):
    """Two powers of two whose product is ``2**-e`` (each a normal float64 for any ``e``
    of a float64 magnitude, where ``2**-e`` alone may not be: ``2**1074`` is not)."""
    e = np.asarray(e, dtype=np.int64)
    first = (-e) // 2
    return np.ldexp(1.0, first), np.ldexp(1.0, -e - first)


def scale(x, e: int):
    """``x * 2**-e``, exact for the values that stay normal; ``x`` itself when ``e == 0``.

    Works on numpy arrays and torch tensors alike (two IEEE multiplications, the
    same bits on every device).
    """
    if e == 0:
        return x
    first, second = factors(e)
    return x * float(first) * float(second)


def unscale(value: float, e: int, what: str) -> float:
    """``value * 2**e``, or a ValueError naming ``what`` when that is beyond float64."""
    if e == 0 or value == 0 or not math.isfinite(value):
        return float(value)
    if math.frexp(value)[1] + e > 1024:
        raise too_large(what, math.log10(abs(value)) + e * math.log10(2.0))
    return math.ldexp(value, e)


def unscale_many(values: np.ndarray, e, what: str) -> np.ndarray:
    """:func:`unscale` of each entry; ``e`` a scalar or one exponent per entry."""
    e = np.asarray(e, dtype=np.int64)
    if not e.any():
        return values
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values) & (values != 0)
    over = finite & (np.frexp(values)[1] + e > 1024)
    if over.any():
        k = int(np.argmax(over))
        ek = int(e) if e.ndim == 0 else int(e[k])
        raise too_large(what, math.log10(abs(values[k])) + ek * math.log10(2.0))
    return np.ldexp(values, e)


def too_large(what: str, log10_value: float) -> ValueError:
    """The error for a result of about ``10**log10_value``, beyond float64's range."""
    return ValueError(f"{what} is about {_decimal(log10_value)}, beyond the float64 range "
                      f"(largest finite value {FLOAT64_MAX:.4g}); rescale the inputs")


def accumulated_overflows(log2_cost: float, n_cells: int) -> bool:
    """Whether ``n_cells`` local costs of ``2**log2_cost`` could sum beyond float64
    (with a factor 2 for symmetric2's doubled diagonal and 2 of margin)."""
    return log2_cost + math.log2(4 * n_cells) >= 1024


def _decimal(log10_value: float) -> str:
    whole = math.floor(log10_value)
    return f"{10 ** (log10_value - whole):.2f}e+{whole}"


# ------------------------------------------------------------------------- soft-DTW

SOFT_METRICS_SQUARED = ("sqeuclidean", "euclidean")


def soft_log2_bound(peak_x, peak_y, n_cells, d, metric: str = "sqeuclidean"):
    """log2 of a bound on every soft-DTW value ``R`` (and on the sums inside a local cost).

    With ``s = max|x| + max|y|``, each feature difference is at most ``s``: a local
    cost is at most ``d s**2`` (squared Euclidean; also the sum inside the
    Euclidean cost), ``sqrt(d) s`` (Euclidean) or ``d s`` (cityblock), and any
    ``R`` at most ``n_cells`` of them (the soft minimum is below the minimum).
    Works elementwise on arrays.
    """
    s = np.asarray(peak_x, dtype=np.float64) + np.asarray(peak_y, dtype=np.float64)
    with np.errstate(divide="ignore", over="ignore"):
        log_s = np.log2(s)
        log_cells = np.log2(np.asarray(n_cells, dtype=np.float64))
        log_d = math.log2(d)
        if metric == "sqeuclidean":
            return 2 * log_s + log_d + log_cells
        if metric == "euclidean":
            return np.maximum(2 * log_s + log_d, log_s + 0.5 * log_d + log_cells)
        return log_s + log_d + log_cells


def soft_range_error(peak_x, peak_y, n_cells, d, *, metric: str = "sqeuclidean",
                     max_exponent: int = 1024, dtype: str = "float64",
                     names: tuple[str, str] = ("x", "y")) -> ValueError | None:
    """The ValueError for soft-DTW inputs whose costs could overflow, else None.

    Refused when the bound of :func:`soft_log2_bound` reaches half the largest
    finite value of the computing dtype (``2**max_exponent``: 1024 for float64,
    128 for float32).  Array arguments: the first offending entry is reported.
    """
    bound = np.atleast_1d(soft_log2_bound(peak_x, peak_y, n_cells, d, metric))
    over = bound >= max_exponent - 1
    if not over.any():
        return None
    k = int(np.argmax(over))
    largest = float(max(np.atleast_1d(peak_x)[k], np.atleast_1d(peak_y)[k]))
    if np.ndim(peak_x) > 0:
        names = (f"{names[0]}[{k}]", f"{names[1]}[{k}]")
    cells = int(np.atleast_1d(n_cells)[k])
    cost = "squared differences" if metric in SOFT_METRICS_SQUARED else "differences"
    half = _decimal((max_exponent - 1) * math.log10(2.0))
    return ValueError(
        f"{names[0]} and {names[1]} hold values up to {largest:.3g} in magnitude: too large "
        f"for soft-DTW in {dtype}, whose local costs ({cost} over {d} features), summed "
        f"along paths of up to {cells} cells, could overflow.  Supported: (n + m - 1) * d * "
        f"(max|x| + max|y|)**2 below 2**{max_exponent - 1} (about {half}) for the squared "
        f"Euclidean cost.  Soft-DTW is not scale-free (gamma sets the scale): divide x and "
        f"y by a factor c and gamma by c**2 (the value is then divided by c**2)")


def soft_precision_error(what: str, gamma: float) -> ValueError:
    """The error for an expected alignment or gradient that float64 could not resolve."""
    return ValueError(
        f"the soft-DTW {what} is not finite: the accumulated costs are too large relative to "
        f"gamma={gamma:g} for float64 to resolve their soft minimum (differences of costs "
        f"divided by gamma overflow exp); divide x and y by a factor c and gamma by c**2, "
        f"or use a larger gamma")
