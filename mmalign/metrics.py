"""Alignment metrics against a reference alignment.

A *reference* is either an :class:`~mmalign.alignment.Alignment` (its hard
path is used) or a ``(K, 2)`` array of possibly fractional reference pairs
``(x_position, y_position)`` in frames, e.g. ground-truth onset times already
converted to frames. For each reference pair ``(a, b)`` the estimated
y-position at x-position ``a`` is read off the estimated alignment as a
piecewise-linear function, ``np.interp(a, arange(n_x), alignment.mapping("x"))``
(x-positions outside ``[0, n_x - 1]`` are clamped to the ends), and the
deviation is ``|estimate - b|`` in frames of side y.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .alignment import Alignment, _as_numpy

__all__ = [
    "deviations",
    "mean_absolute_deviation",
    "median_absolute_deviation",
    "fraction_within",
    "area_between_paths",
    "normalized_area_between_paths",
]

# Slack for fraction_within so that deviations that equal the tolerance up to
# round-off (interpolation, frames <-> seconds) count as within.
_TOLERANCE_SLACK = 1e-9


def _as_alignment(value: Any, name: str) -> Alignment:
    if isinstance(value, Alignment):
        return value
    try:
        return Alignment(path=value)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def _reference_pairs(reference: Any, alignment: Alignment) -> np.ndarray:
    if isinstance(reference, Alignment):
        if reference.shape != alignment.shape:
            raise ValueError(
                f"reference has shape {reference.shape}, but alignment has shape {alignment.shape}"
            )
        return reference.path().astype(np.float64)
    ref = _as_numpy(reference, "reference")
    if ref.dtype.kind not in "iuf":
        raise ValueError(f"reference must hold real numbers, got dtype {ref.dtype}")
    if ref.ndim != 2 or ref.shape[1] != 2:
        raise ValueError(f"reference must have shape (K, 2), got {ref.shape}")
    if ref.shape[0] == 0:
        raise ValueError("reference must not be empty")
    ref = ref.astype(np.float64)  # a copy: the caller's array is never touched
    if not np.isfinite(ref).all():
        raise ValueError("reference contains NaN or inf")
    return ref


def _frames_per_unit(frame_rate: Any) -> float:
    """1.0 for frames, or the frame rate to convert deviations to seconds."""
    if frame_rate is None:
        return 1.0
    if isinstance(frame_rate, bool) or not isinstance(frame_rate, numbers.Real):
        raise ValueError(f"frame_rate must be a positive number, got {frame_rate!r}")
    if not np.isfinite(frame_rate) or frame_rate <= 0:
        raise ValueError(f"frame_rate must be positive and finite, got {frame_rate!r}")
    return float(frame_rate)


def deviations(alignment: Alignment | Any, reference: Alignment | Any) -> np.ndarray:
    """Absolute deviation of an estimated alignment from each reference pair.

    Parameters
    ----------
    alignment : Alignment or array-like, shape (K, 2)
        Estimated alignment (an array is taken as a hard path).
    reference : Alignment or array-like, shape (R, 2)
        Reference pairs ``(x_position, y_position)`` in frames.

    Returns
    -------
    dev : np.ndarray [float64], shape (R,)
        ``|estimated y-position - reference y-position|`` in frames of side y.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.alignment import Alignment
    >>> from mmalign.metrics import deviations
    >>> est = Alignment(np.stack([np.arange(5), np.arange(5)], axis=1))
    >>> deviations(est, [[1.0, 2.0], [2.5, 2.5]])
    array([1., 0.])
    """
    alignment = _as_alignment(alignment, "alignment")
    ref = _reference_pairs(reference, alignment)
    estimate = np.interp(ref[:, 0], np.arange(alignment.n_x), alignment.mapping("x"))
    return np.abs(estimate - ref[:, 1])


def mean_absolute_deviation(
    alignment: Alignment | Any, reference: Alignment | Any, *, frame_rate: float | None = None
) -> float:
    """Mean absolute deviation from the reference.

    Parameters
    ----------
    alignment : Alignment or array-like, shape (K, 2)
        Estimated alignment.
    reference : Alignment or array-like, shape (R, 2)
        Reference pairs ``(x_position, y_position)`` in frames.
    frame_rate : float or None
        Frames per second of side y. If given the result is in seconds.

    Returns
    -------
    mad : float
        In frames of side y, or seconds when ``frame_rate`` is given.

    Examples
    --------
    >>> from mmalign.alignment import Alignment
    >>> from mmalign.metrics import mean_absolute_deviation
    >>> est = Alignment([[0, 0], [1, 1], [2, 2]])
    >>> mean_absolute_deviation(est, [[0, 1], [2, 2]], frame_rate=10.0)
    0.05
    """
    rate = _frames_per_unit(frame_rate)
    return float(np.mean(deviations(alignment, reference)) / rate)


def median_absolute_deviation(
    alignment: Alignment | Any, reference: Alignment | Any, *, frame_rate: float | None = None
) -> float:
    """Median absolute deviation from the reference.

    Parameters
    ----------
    alignment : Alignment or array-like, shape (K, 2)
        Estimated alignment.
    reference : Alignment or array-like, shape (R, 2)
        Reference pairs ``(x_position, y_position)`` in frames.
    frame_rate : float or None
        Frames per second of side y. If given the result is in seconds.

    Returns
    -------
    median : float
        In frames of side y, or seconds when ``frame_rate`` is given.

    Examples
    --------
    >>> from mmalign.alignment import Alignment
    >>> from mmalign.metrics import median_absolute_deviation
    >>> est = Alignment([[0, 0], [1, 1], [2, 2]])
    >>> median_absolute_deviation(est, [[0, 0], [1, 1], [2, 0]])
    0.0
    """
    rate = _frames_per_unit(frame_rate)
    return float(np.median(deviations(alignment, reference)) / rate)


def fraction_within(
    alignment: Alignment | Any,
    reference: Alignment | Any,
    tolerance: float,
    *,
    frame_rate: float | None = None,
) -> float:
    """Fraction of reference pairs whose deviation is at most ``tolerance``.

    Parameters
    ----------
    alignment : Alignment or array-like, shape (K, 2)
        Estimated alignment.
    reference : Alignment or array-like, shape (R, 2)
        Reference pairs ``(x_position, y_position)`` in frames.
    tolerance : float >= 0
        In frames of side y, or seconds when ``frame_rate`` is given.
        Deviations equal to the tolerance (up to round-off) count as within.
    frame_rate : float or None
        Frames per second of side y.

    Returns
    -------
    fraction : float in [0, 1]

    Examples
    --------
    >>> from mmalign.alignment import Alignment
    >>> from mmalign.metrics import fraction_within
    >>> est = Alignment([[0, 0], [1, 1], [2, 2], [3, 3]])
    >>> fraction_within(est, [[0, 0], [1, 2], [2, 5], [3, 3]], 1)
    0.75
    """
    rate = _frames_per_unit(frame_rate)
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise ValueError(f"tolerance must be a non-negative number, got {tolerance!r}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be non-negative and finite, got {tolerance!r}")
    limit = float(tolerance) * rate
    dev = deviations(alignment, reference)
    return float(np.mean(dev <= limit * (1 + _TOLERANCE_SLACK) + _TOLERANCE_SLACK))


def _warping_path(value: Any, name: str) -> np.ndarray:
    """Validated monotone continuous path starting at (0, 0), as int64 (K, 2)."""
    if isinstance(value, Alignment):
        p = value.path()
        if tuple(p[-1]) != (value.n_x - 1, value.n_y - 1):
            raise ValueError(
                f"{name} must end at (n_x - 1, n_y - 1) = {(value.n_x - 1, value.n_y - 1)}, "
                f"got {tuple(int(v) for v in p[-1])}"
            )
    else:
        p = _as_alignment(value, name).path()
    if tuple(p[0]) != (0, 0):
        raise ValueError(f"{name} must start at (0, 0), got {tuple(int(v) for v in p[0])}")
    steps = np.diff(p, axis=0)
    valid = ((steps == 0) | (steps == 1)).all(axis=1) & (steps.sum(axis=1) > 0)
    if not valid.all():
        k = int(np.argmin(valid))
        raise ValueError(
            f"{name} must be monotone and continuous (steps (1,0), (0,1), (1,1)); "
            f"step {k} goes from {tuple(int(v) for v in p[k])} to {tuple(int(v) for v in p[k + 1])}"
        )
    return p


def _signed_gap_integral(d: np.ndarray) -> float:
    """Exact integral of |f| for f piecewise linear with values ``d`` at 0, 1, 2, ..."""
    d0, d1 = d[:-1], d[1:]
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    with np.errstate(invalid="ignore", divide="ignore"):
        # Sign change inside the unit interval: two triangles meeting at the zero crossing.
        crossing = (d0**2 + d1**2) / (2 * (a0 + a1))
    return float(np.sum(np.where(same_sign, (a0 + a1) / 2, crossing)))


def area_between_paths(p: Alignment | Any, q: Alignment | Any) -> float:
    """Exact area between two monotone continuous warping paths.

    Paths are polylines through cell centres. Both must start at ``(0, 0)``
    and end at the same ``(n_x - 1, n_y - 1)``.

    Parameters
    ----------
    p, q : Alignment or array-like of int, shape (K, 2)
        Warping paths of ``(i, j)`` pairs with steps (1, 0), (0, 1), (1, 1).

    Returns
    -------
    area : float
        Area enclosed between the two paths, in cells² (frames x frames).

    Notes
    -----
    In rotated coordinates ``u = i + j``, ``v = j - i`` each path is a
    piecewise-linear function ``v(u)`` on the integers ``0 .. (n_x-1)+(n_y-1)``
    (``u`` strictly increases along the path). The map has Jacobian 2, so
    the area is ``(1/2) ∫ |v_p(u) - v_q(u)| du``, integrated exactly,
    including sign changes inside a unit interval.

    Examples
    --------
    >>> from mmalign.metrics import area_between_paths
    >>> area_between_paths([[0, 0], [1, 0], [1, 1]], [[0, 0], [0, 1], [1, 1]])
    1.0
    >>> area_between_paths([[0, 0], [1, 1]], [[0, 0], [1, 0], [1, 1]])
    0.5
    """
    pp = _warping_path(p, "p")
    qq = _warping_path(q, "q")
    if tuple(pp[-1]) != tuple(qq[-1]):
        raise ValueError(
            f"p and q must share their end point, got {tuple(int(v) for v in pp[-1])} "
            f"and {tuple(int(v) for v in qq[-1])}"
        )
    u_end = int(pp[-1].sum())
    grid = np.arange(u_end + 1)
    v_p = np.interp(grid, pp.sum(axis=1), pp[:, 1] - pp[:, 0])
    v_q = np.interp(grid, qq.sum(axis=1), qq[:, 1] - qq[:, 0])
    if u_end == 0:
        return 0.0
    return 0.5 * _signed_gap_integral(v_p - v_q)


def normalized_area_between_paths(p: Alignment | Any, q: Alignment | Any) -> float:
    """Area between two warping paths divided by ``n_x + n_y``.

    Parameters
    ----------
    p, q : Alignment or array-like of int, shape (K, 2)
        Warping paths ending at the same ``(n_x - 1, n_y - 1)``.

    Returns
    -------
    area : float
        :func:`area_between_paths` divided by ``n_x + n_y`` (a length in frames;
        comparable across sequence lengths).

    Examples
    --------
    >>> from mmalign.metrics import normalized_area_between_paths
    >>> normalized_area_between_paths([[0, 0], [1, 0], [1, 1]], [[0, 0], [0, 1], [1, 1]])
    0.25
    """
    area = area_between_paths(p, q)
    n_x, n_y = (int(v) + 1 for v in _warping_path(p, "p")[-1])
    return area / (n_x + n_y)
