"""Alignment metrics against a reference alignment.

A *reference* is either an :class:`~mmalign.alignment.Alignment` (its hard
path is used) or a ``(K, 2)`` array of possibly fractional reference pairs
``(x_position, y_position)`` in frames, e.g. ground-truth onset times already
converted to frames. For each reference pair ``(a, b)`` the estimated
y-position at x-position ``a`` is read off the estimated alignment as a
piecewise-linear function, ``np.interp(a, arange(n_x), alignment.mapping("x"))``,
and the deviation is ``|estimate - b|`` in frames of side y.  Reference
positions must lie inside the sequences, ``[0, n_x - 1]`` and ``[0, n_y - 1]``;
positions past an end by round-off only (relative ``1e-9``, e.g. times in
seconds converted to frames) count as the end, anything further is refused
with the row's index.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .alignment import Alignment, _as_numpy
from .utils.validation import check_int

__all__ = [
    "deviations",
    "mean_absolute_deviation",
    "median_absolute_deviation",
    "fraction_within",
    "area_between_paths",
    "normalized_area_between_paths",
    "alignment_error_rate",
    "corpus_alignment_error_rate",
    "precision_recall_links",
    "pointing_accuracy",
    "attention_mass_inside",
    "span_masks",
    "span_hit_rate",
    "transform_point_error",
]

# Slack for fraction_within so that deviations that equal the tolerance up to
# round-off (interpolation, frames <-> seconds) count as within, and for reference
# positions that pass a sequence's last frame by round-off only.
_TOLERANCE_SLACK = 1e-9


def _as_alignment(value: Any, name: str) -> Alignment:
    """An Alignment, or an array read as a hard path (monotone or not: any estimate)."""
    if isinstance(value, Alignment):
        return value
    try:
        return Alignment(path=value, monotonic=False)
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
    for column, (side, n) in enumerate((("x", alignment.n_x), ("y", alignment.n_y))):
        last = n - 1
        slack = _TOLERANCE_SLACK * max(last, 1)
        outside = np.flatnonzero((ref[:, column] < -slack) | (ref[:, column] > last + slack))
        if outside.size:
            k = int(outside[0])
            raise ValueError(f"reference row {k}: {side} position {ref[k, column]:g} lies outside "
                             f"[0, {last}], the frames of side {side}")
        np.clip(ref[:, column], 0, last, out=ref[:, column])
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
        Reference pairs ``(x_position, y_position)`` in frames, inside
        ``[0, n_x - 1]`` and ``[0, n_y - 1]``.

    Returns
    -------
    dev : np.ndarray [float64], shape (R,)
        ``|estimated y-position - reference y-position|`` in frames of side y.

    Raises
    ------
    ValueError
        Naming the argument, for a malformed alignment or reference, and naming
        the reference row whose position lies outside the sequences.

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
    >>> est = Alignment([[0, 0], [1, 1], [2, 2], [3, 3]], shape=(4, 6))
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


# --------------------------------------------------------------------------- word alignments
# Links are (s, t) pairs: source position s (side x, rows), target position t (side y,
# columns), the orientation of attention alignments (align(source, target): each target
# token's weights are a distribution over the source, distribution_over="x").


def _link_set(value: Any, name: str) -> tuple[set, tuple[int, int] | None]:
    """(set of (s, t) int pairs, matrix shape or None) from links, a boolean matrix or an Alignment."""
    if isinstance(value, Alignment):
        path = value.path("argmax") if value.weights is not None else value.path()
        return {(int(t), int(s)) for t, s in path}, value.shape
    if isinstance(value, (set, frozenset)):
        value = list(value)
    arr = _as_numpy(value, name)
    if arr.dtype == np.bool_:
        if arr.ndim != 2:
            raise ValueError(f"{name} as a boolean matrix must have shape (n_source, n_target), "
                             f"got {arr.shape}")
        return {(int(s), int(t)) for s, t in np.argwhere(arr)}, (int(arr.shape[0]), int(arr.shape[1]))
    if arr.size == 0:
        return set(), None
    if arr.dtype.kind not in "iu":
        hint = (" (for attention weights w of shape (n_source, n_target) pass "
                "Alignment(weights=w, distribution_over='x', monotonic=False): the argmax over the "
                "source of each target position is used)" if arr.dtype.kind == "f" else "")
        raise ValueError(f"{name} must be a set of (s, t) integer links, a boolean "
                         f"(n_source, n_target) matrix or an Alignment, got dtype {arr.dtype}{hint}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} as links must have shape (K, 2), got {arr.shape}")
    if (arr < 0).any():
        raise ValueError(f"{name} must hold non-negative positions")
    return {(int(s), int(t)) for s, t in arr}, None


def _aer_sets(predicted: Any, sure: Any, possible: Any, ignore_unlinked_targets: bool
              ) -> tuple[set, set, set]:
    a, shape_a = _link_set(predicted, "predicted")
    s, shape_s = _link_set(sure, "sure")
    if possible is None:
        p, shape_p = set(s), None
    else:
        p, shape_p = _link_set(possible, "possible")
    shapes = {k: v for k, v in (("predicted", shape_a), ("sure", shape_s), ("possible", shape_p))
              if v is not None}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"predicted, sure and possible have different shapes: {shapes}")
    p |= s  # S ⊆ P
    if ignore_unlinked_targets:
        linked = {t for _, t in p}
        a = {link for link in a if link[1] in linked}
    return a, s, p


def alignment_error_rate(
    predicted: Any,
    sure: Any,
    possible: Any = None,
    *,
    ignore_unlinked_targets: bool = False,
) -> float:
    """Alignment error rate (Och & Ney, 2003) of predicted word links.

    ``AER = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)`` with predicted links
    ``A``, sure links ``S`` and possible links ``P ⊇ S``.

    Parameters
    ----------
    predicted : set of (s, t), int array (K, 2), bool array (S, T) or Alignment
        Predicted links ``(s, t)``: source position ``s`` (side x), target
        position ``t`` (side y), the orientation of the attention aligners'
        ``align(source, target)``. An :class:`Alignment` with soft weights
        gives the links of its argmax :meth:`~mmalign.alignment.Alignment.path`
        (weights averaged over heads): with ``distribution_over="x"``
        (attention: each target position's weights over the source) one link
        per target position, ``(argmax_s w[s, t], t)``; one without weights
        gives its hard path.
    sure : set of (s, t), int array (K, 2) or bool array (S, T)
        Sure gold links, in the same orientation (e.g.
        :attr:`mmalign.datasets.Seq2SeqExample.sure`).
    possible : same forms as ``sure``, or None
        Possible gold links. Sure links are always counted as possible
        (``P := P ∪ S``). None means ``P = S``.
    ignore_unlinked_targets : bool
        Drop predicted links on target positions (side y) that have no gold
        link at all (no possible link), e.g. the ``-`` of an ISO date or
        padding steps, which an argmax of attention always links somewhere.

    Returns
    -------
    aer : float in [0, 1]
        0 for a perfect alignment, 1 when no predicted link is possible.

    Raises
    ------
    ValueError
        When ``|A| + |S| = 0`` (AER undefined), on malformed input, or when
        matrices of different shapes are mixed.

    See Also
    --------
    corpus_alignment_error_rate : AER over many sentences (counts summed).

    Examples
    --------
    >>> from mmalign.metrics import alignment_error_rate
    >>> sure = {(0, 0), (2, 1)}
    >>> possible = {(1, 1)}
    >>> alignment_error_rate({(0, 0), (2, 1)}, sure, possible)
    0.0
    >>> alignment_error_rate({(0, 0), (1, 1)}, sure, possible)  # 1 - (1 + 2) / (2 + 2)
    0.25
    >>> alignment_error_rate(set(), sure)
    1.0
    >>> import numpy as np
    >>> from mmalign.alignment import Alignment
    >>> w = np.array([[0.9, 0.1], [0.1, 0.2], [0.0, 0.7]])   # 3 source x 2 target positions
    >>> alignment_error_rate(Alignment(weights=w, distribution_over="x", monotonic=False), sure)
    0.0
    """
    a, s, p = _aer_sets(predicted, sure, possible, ignore_unlinked_targets)
    if len(a) + len(s) == 0:
        raise ValueError("AER is undefined with no predicted and no sure links")
    return 1.0 - (len(a & s) + len(a & p)) / (len(a) + len(s))


def corpus_alignment_error_rate(
    predicted: Any,
    sure: Any,
    possible: Any = None,
    *,
    ignore_unlinked_targets: bool = False,
) -> float:
    """Alignment error rate of a corpus: link counts summed over sentences.

    This is the usual way AER is reported (not the mean of per-sentence AERs).

    Parameters
    ----------
    predicted : sequence of per-sentence predictions
        Each in any form :func:`alignment_error_rate` accepts.
    sure : sequence of per-sentence sure links, same length
    possible : sequence of per-sentence possible links, or None
    ignore_unlinked_targets : bool
        As in :func:`alignment_error_rate`, per sentence.

    Returns
    -------
    aer : float in [0, 1]

    Examples
    --------
    >>> from mmalign.metrics import corpus_alignment_error_rate
    >>> corpus_alignment_error_rate([{(0, 0)}, {(1, 0)}], [{(0, 0)}, {(0, 0)}])
    0.5
    """
    predicted, sure = _sentences(predicted, "predicted"), _sentences(sure, "sure")
    possible = [None] * len(sure) if possible is None else _sentences(possible, "possible")
    if not (len(predicted) == len(sure) == len(possible)):
        raise ValueError(f"predicted, sure and possible must have the same number of sentences, "
                         f"got {len(predicted)}, {len(sure)} and {len(possible)}")
    if not sure:
        raise ValueError("sure must hold at least one sentence")
    n_a = n_s = hits = 0
    for k, (pr, su, po) in enumerate(zip(predicted, sure, possible)):
        try:
            a, s, p = _aer_sets(pr, su, po, ignore_unlinked_targets)
        except ValueError as err:
            raise ValueError(f"sentence {k}: {err}") from None
        n_a, n_s, hits = n_a + len(a), n_s + len(s), hits + len(a & s) + len(a & p)
    if n_a + n_s == 0:
        raise ValueError("AER is undefined with no predicted and no sure links")
    return 1.0 - hits / (n_a + n_s)


def _sentences(value: Any, name: str) -> list:
    """The per-sentence entries of a corpus argument, as a list."""
    if value is None or isinstance(value, (str, bytes)):
        raise ValueError(f"{name} must be a sequence of per-sentence links, got {value!r}")
    try:
        return list(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of per-sentence links, got "
                         f"{type(value).__name__}") from None


def precision_recall_links(
    predicted: Any,
    sure: Any,
    possible: Any = None,
    *,
    ignore_unlinked_targets: bool = False,
) -> tuple[float, float]:
    """Precision against possible links and recall of sure links (Och & Ney, 2003).

    ``precision = |A ∩ P| / |A|`` and ``recall = |A ∩ S| / |S|``.

    Parameters
    ----------
    predicted, sure, possible, ignore_unlinked_targets
        As in :func:`alignment_error_rate`.

    Returns
    -------
    precision : float in [0, 1]
        0.0 when there is no predicted link.
    recall : float in [0, 1]
        1.0 when there is no sure link.

    Examples
    --------
    >>> from mmalign.metrics import precision_recall_links
    >>> precision_recall_links({(0, 0), (1, 1), (0, 2)}, {(0, 0), (2, 1)}, {(1, 1)})
    (0.6666666666666666, 0.5)
    """
    a, s, p = _aer_sets(predicted, sure, possible, ignore_unlinked_targets)
    precision = len(a & p) / len(a) if a else 0.0
    recall = len(a & s) / len(s) if s else 1.0
    return precision, recall


# --------------------------------------------------------------------------- pointing


def _per_step_weights(weights: Any) -> Any:
    """An Alignment's soft weights with one row per target step (the side that attends): its
    columns when it records ``distribution_over="x"`` (the attention aligners' convention),
    else its rows; arrays and tensors pass through."""
    if not isinstance(weights, Alignment):
        return weights
    if weights.weights is None:
        raise ValueError("weights: the Alignment has no soft weights")
    w = weights.matrix()
    return w.T if weights.distribution_over == "x" else w


def _weights_and_masks(weights: Any, masks: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (T, N) float64, masks (T, N) bool, rows with a non-empty mask) validated."""
    weights = _per_step_weights(weights)
    w = _as_numpy(weights, "weights")
    if w.dtype.kind not in "iuf":
        raise ValueError(f"weights must hold real numbers, got dtype {w.dtype}")
    if w.ndim < 2:
        raise ValueError(f"weights must have shape (n_target, ...) with at least 2 axes, got {w.shape}")
    if w.size == 0:
        raise ValueError(f"weights must not be empty, got shape {w.shape}")
    w = w.astype(np.float64).reshape(w.shape[0], -1)
    if not np.isfinite(w).all():
        raise ValueError("weights contains NaN or inf")
    m = _as_numpy(masks, "masks")
    if m.dtype != np.bool_:
        raise ValueError(f"masks must be boolean, got dtype {m.dtype}")
    if m.shape != _as_numpy(weights, "weights").shape:
        raise ValueError(f"masks must have the shape of weights {np.shape(weights)}, got {m.shape}")
    m = m.reshape(m.shape[0], -1)
    rows = m.any(axis=1)
    if not rows.any():
        raise ValueError("masks is empty for every target step: nothing to score")
    return w, m, rows


def pointing_accuracy(weights: Any, masks: Any) -> float:
    """Fraction of target steps whose attention argmax falls inside the gold region.

    Serves sequence spans (``weights (T, n)``: is the most attended source
    frame inside the word's span?) and image regions (``weights (T, H, W)``:
    is the most attended location inside the object's box?).

    Parameters
    ----------
    weights : array-like, torch.Tensor or Alignment, shape (T, ...)
        Attention of each target step over source positions (any trailing
        shape, e.g. ``(n,)`` or ``(H, W)``), one row per step. Average heads
        beforehand. An :class:`~mmalign.alignment.Alignment` gives its
        :meth:`~mmalign.alignment.Alignment.matrix` with one row per step:
        transposed when it records ``distribution_over="x"`` (the attention
        aligners' order, source positions / grid cells on side x, target
        steps on side y), as it is otherwise.
    masks : bool array-like, shape (T, ...) like the per-step weights
        Gold region of each target step. Steps whose mask is empty (no gold
        region) are skipped.

    Returns
    -------
    accuracy : float in [0, 1]
        Over target steps with a non-empty mask; ties go to the first
        maximal location in C order.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.metrics import pointing_accuracy
    >>> w = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]])
    >>> masks = np.array([[True, True, False], [False, False, True]])
    >>> pointing_accuracy(w, masks)
    0.5
    """
    w, m, rows = _weights_and_masks(weights, masks)
    hit = m[np.arange(len(w)), np.argmax(w, axis=1)]
    return float(hit[rows].mean())


def attention_mass_inside(weights: Any, masks: Any) -> float:
    """Mean fraction of each target step's attention mass inside its gold region.

    Parameters
    ----------
    weights : array-like, torch.Tensor or Alignment, shape (T, ...)
        Non-negative attention weights, one row per target step; each row is
        normalised by its sum. An Alignment is read as in :func:`pointing_accuracy`.
    masks : bool array-like, shape (T, ...) like the per-step weights
        Gold region of each target step; steps with an empty mask are skipped.

    Returns
    -------
    mass : float in [0, 1]
        Mean over target steps with a non-empty mask.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.metrics import attention_mass_inside
    >>> w = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]])
    >>> masks = np.array([[True, True, False], [False, False, True]])
    >>> round(attention_mass_inside(w, masks), 6)  # (0.9 + 0.4) / 2
    0.65
    """
    w, m, rows = _weights_and_masks(weights, masks)
    if (w < 0).any():
        raise ValueError("weights must be non-negative")
    total = w.sum(axis=1)
    if (total[rows] <= 0).any():
        raise ValueError("weights has a target step with zero total weight")
    inside = np.where(m, w, 0.0).sum(axis=1)
    return float(np.mean(inside[rows] / total[rows]))


# --------------------------------------------------------------------------- word spans


def _as_spans(spans: Any, name: str = "spans") -> np.ndarray:
    if hasattr(spans, "detach") and hasattr(spans, "cpu"):
        spans = spans.detach().cpu().numpy()
    arr = np.asarray(spans)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer frame indices, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (T_text, 2), got {arr.shape}")
    return arr.astype(np.int64)


def span_masks(spans: Any, n_frames: int) -> np.ndarray:
    """Boolean masks of word spans over a stream's frames.

    Parameters
    ----------
    spans : int array-like or torch.Tensor, shape (T_text, 2)
        ``[start, end)`` frames per word; rows with ``end <= start`` (padding)
        give empty masks.
    n_frames : int >= 1
        Frames of the stream.

    Returns
    -------
    masks : np.ndarray [bool], shape (T_text, n_frames)
        What :func:`pointing_accuracy` and :func:`attention_mass_inside` take.

    Examples
    --------
    >>> from mmalign.metrics import span_masks
    >>> span_masks([[0, 2], [3, 4]], 5).astype(int)
    array([[1, 1, 0, 0, 0],
           [0, 0, 0, 1, 0]])
    """
    arr = _as_spans(spans)
    n_frames = check_int(n_frames, "n_frames", 1)
    if (arr < 0).any() or (arr > n_frames).any():
        raise ValueError(f"spans must lie in [0, n_frames = {n_frames}], got {arr.min()}..{arr.max()}")
    frames = np.arange(n_frames)
    return (frames[None, :] >= arr[:, :1]) & (frames[None, :] < arr[:, 1:])


def span_hit_rate(weights: Any, spans: Any) -> float:
    """Fraction of words whose crossmodal attention argmax lies inside the word's true span.

    Parameters
    ----------
    weights : array-like, torch.Tensor or Alignment, shape (T_text, T_src) or (..., T_text, T_src)
        Attention of each word (query) over the frames of one stream (keys)
        for ONE sample, without padding: one row per word. Leading axes
        (heads, layers) are averaged. An :class:`~mmalign.alignment.Alignment`
        contributes its soft weights (:meth:`~mmalign.alignment.Alignment.matrix`),
        oriented by its ``distribution_over``: with ``"x"`` (the attention
        aligners' convention: the stream's frames on side x, the words on side
        y, each word's weights a distribution over x) the words are its
        columns, so it is transposed; otherwise (``"y"`` or None) the words are
        its rows (side x).
    spans : int array-like, shape (T_text, 2)
        True ``[start, end)`` frames per word, e.g. ``ds.audio_spans[i]``.
        Rows with ``end <= start`` (padding) are skipped.

    Returns
    -------
    rate : float in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.metrics import span_hit_rate
    >>> w = np.array([[0.1, 0.8, 0.1, 0.0], [0.6, 0.0, 0.1, 0.3]])
    >>> span_hit_rate(w, [[0, 2], [2, 4]])
    0.5
    >>> from mmalign.alignment import Alignment
    >>> span_hit_rate(Alignment(weights=w.T, distribution_over="x"), [[0, 2], [2, 4]])
    0.5
    """
    if isinstance(weights, Alignment):
        if weights.weights is None:
            raise ValueError("weights: the Alignment has no soft weights")
        w = weights.matrix()
        if weights.distribution_over == "x":  # words on side y: one column per word
            w = w.T
    else:
        if hasattr(weights, "detach") and hasattr(weights, "cpu"):
            weights = weights.detach().cpu().numpy()
        w = np.asarray(weights)
        if w.dtype.kind not in "iuf":
            raise ValueError(f"weights must hold real numbers, got dtype {w.dtype}")
        if w.ndim < 2:
            raise ValueError(f"weights must have shape (T_text, T_src), got {w.shape}")
        if w.ndim > 2:
            w = w.reshape((-1,) + w.shape[-2:]).mean(axis=0)
    arr = _as_spans(spans)
    if len(arr) != w.shape[0]:
        raise ValueError(f"spans has {len(arr)} words but weights has {w.shape[0]} rows")
    return pointing_accuracy(w, span_masks(arr, w.shape[1]))


# --------------------------------------------------------------------------- geometric transforms

# The 4 corners and the centre of the normalised square [-1, 1]^2.
_FRAME_POINTS = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]])


def _transform_or_points(value: Any, name: str) -> tuple[str, np.ndarray]:
    arr = _as_numpy(value, name)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name} must have shape (n, 3, 3), (n, 2, 3) or (n, K, 2), got {arr.shape}")
    if arr.shape[1:] == (3, 3):
        return "matrix", arr
    if arr.shape[1:] == (2, 3):
        bottom = np.broadcast_to(np.array([0.0, 0.0, 1.0]), (arr.shape[0], 1, 3))
        return "matrix", np.concatenate([arr, bottom], axis=1)
    if arr.shape[2] == 2:
        return "points", arr
    raise ValueError(f"{name} must have shape (n, 3, 3), (n, 2, 3) or (n, K, 2), got {arr.shape}")


def _map_points(matrices: np.ndarray, points: np.ndarray, name: str) -> np.ndarray:
    """(n, P, 2) images of the points; refused (naming ``name``) where one goes to infinity."""
    homog = np.concatenate([points, np.ones((points.shape[0], 1))], axis=1)      # (P, 3)
    mapped = np.einsum("nij,pj->npi", matrices, homog)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = mapped[..., :2] / mapped[..., 2:]
    bad = np.argwhere(~np.isfinite(out).all(axis=-1))
    if bad.size:
        n, k = (int(v) for v in bad[0])
        raise ValueError(f"{name} sample {n} maps point ({points[k, 0]:g}, {points[k, 1]:g}) to "
                         f"infinity or beyond the float64 range (homogeneous coordinate "
                         f"{mapped[n, k, 2]:g}): the point error is undefined")
    return out


def transform_point_error(
    pred: Any, true: Any, points: Any = None, *, image_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Mean 2-D distance between points mapped by a predicted and a true transform.

    The pose metric of spatial transformers: map a few points by both
    transforms and average the Euclidean distances between the two images of
    each point.  Both transforms act on homogeneous column vectors of
    normalised ``[-1, 1]`` coordinates (``align_corners=False``, ``x`` along
    columns, ``y`` down the rows), with the homogeneous divide for projective
    matrices.  With :attr:`mmalign.datasets.DistortedDigits.stn_theta` as
    ``true`` (source digit frame → distorted image), the default points are the
    4 corners and the centre of the digit's frame, and the error is measured in
    the distorted image.

    Parameters
    ----------
    pred, true : array-like or torch.Tensor, shape (n, 3, 3), (n, 2, 3) or (n, K, 2)
        Matrices (affine ``(n, 2, 3)`` as ``torch.nn.functional.affine_grid``
        takes them, or ``(n, 3, 3)``; a single ``(3, 3)`` / ``(2, 3)`` matrix is
        taken as ``n = 1``), or points already mapped — e.g. the ``K``
        thin-plate-spline control points a TPS spatial transformer predicts,
        against :attr:`~mmalign.datasets.DistortedDigits.tps_displaced`.  The two
        may mix affine and projective matrices; points go with points.
    points : array-like, shape (P, 2), or None
        Normalised points to map (matrices only); ``None``: the corners
        ``(±1, ±1)`` and the centre ``(0, 0)``.
    image_size : (int, int) or None
        ``(H, W)`` of the image the transforms map *into*: the error is then in
        pixels of that image (``dx · W / 2``, ``dy · H / 2``); ``None``: in
        normalised units.

    Returns
    -------
    error : np.ndarray [float64], shape (n,)
        Per-sample mean distance; average it for a data set.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.metrics import transform_point_error
    >>> true = np.eye(3)[None]
    >>> shifted = np.array([[[1.0, 0.0, 0.1], [0.0, 1.0, 0.0]]])   # 0.1 to the right
    >>> transform_point_error(shifted, true)
    array([0.1])
    >>> transform_point_error(shifted, true, image_size=(42, 42))   # in pixels
    array([2.1])
    """
    kind_p, p = _transform_or_points(pred, "pred")
    kind_t, t = _transform_or_points(true, "true")
    if p.shape[0] != t.shape[0]:
        raise ValueError(f"pred and true hold different numbers of samples: {p.shape[0]} and {t.shape[0]}")
    if kind_p != kind_t:
        raise ValueError(
            f"pred is {'a set of points' if kind_p == 'points' else 'a matrix'} but true is "
            f"{'a set of points' if kind_t == 'points' else 'a matrix'}; pass matrices with matrices, "
            "points with points"
        )
    if kind_p == "points":
        if points is not None:
            raise ValueError("points applies to matrices only; pred and true are already points")
        if p.shape != t.shape:
            raise ValueError(f"pred and true must have the same shape, got {p.shape} and {t.shape}")
        mapped_p, mapped_t = p, t
    else:
        if points is None:
            pts = _FRAME_POINTS
        else:
            pts = _as_numpy(points, "points")
            if pts.dtype.kind not in "iuf" or pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] == 0:
                raise ValueError(f"points must be a non-empty real array of shape (P, 2), got {pts.shape}")
            pts = pts.astype(np.float64)
            if not np.isfinite(pts).all():
                raise ValueError("points contains NaN or inf")
        mapped_p, mapped_t = _map_points(p, pts, "pred"), _map_points(t, pts, "true")
    diff = mapped_p - mapped_t
    if image_size is not None:
        try:
            h, w = (float(v) for v in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"image_size must be a pair (H, W), got {image_size!r}") from None
        if not (h > 0 and w > 0 and np.isfinite(h) and np.isfinite(w)):
            raise ValueError(f"image_size must be positive, got {image_size!r}")
        diff = diff * np.array([w / 2.0, h / 2.0])
    return np.hypot(diff[..., 0], diff[..., 1]).mean(axis=1)
