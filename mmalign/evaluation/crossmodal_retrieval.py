"""Cross-modal retrieval in a coordinated space: recall@k, ranks and MRR, both directions.

Two views ``a`` ``(n, d)`` and ``b`` ``(n, d)`` hold **paired rows**: row ``i`` of
``a`` and row ``i`` of ``b`` describe the same item (an image and its caption, an
accelerometer window and the gyroscope window recorded at the same time), e.g. the
canonical variates of a fitted :class:`~mmalign.CCA` or :class:`~mmalign.DeepCCA`.
Every row of ``a`` is used as a query against all ``n`` rows of ``b`` (direction
``a → b``) and every row of ``b`` against all rows of ``a`` (``b → a``); the
correct answer of query ``i`` is candidate ``i``.

Conventions (state them when quoting numbers; peers differ):

- **Scores**: ``"cosine"`` similarity, ``"dot"`` product, or ``"euclidean"``
  (smaller distance = better); or a callable ``metric(queries_a, candidates_b)``
  returning an ``(len(queries_a), len(candidates_b))`` tensor of scores where
  larger means more similar.
- **Ranks are 1-based**: rank 1 is a perfect hit.
- **Ties are pessimistic** by default: the rank of query ``i`` is
  ``1 + #{j != i : s_ij >= s_ii}``, so a candidate that scores exactly as well as
  the true partner counts as ranked above it (a collapsed embedding where every
  score is equal gets rank ``n``, never a perfect score).  ``ties="optimistic"``
  counts only strictly better candidates, ``1 + #{j : s_ij > s_ii}``.
- **recall@k** is the fraction of queries whose rank is ``<= k``; median rank
  (``numpy.median``, so possibly a half-integer), mean rank and mean reciprocal
  rank (MRR, mean of ``1 / rank``) complete the report.  Chance levels for a
  random pairing are reported beside them: recall@k ``k / n``, median and mean
  rank ``(n + 1) / 2``, MRR ``H_n / n`` (``H_n`` the n-th harmonic number).
- Scores are computed in float64 on the device of the input tensors (CPU or
  CUDA), ``block_size`` query rows at a time, so memory stays at
  ``block_size × n`` scores rather than ``n × n`` (by default about ``2**24``
  scores, 128 MiB, per block).

:func:`component_correlations` gives the Pearson correlation of each pair of
columns (the quantity CCA maximises per component); :func:`retrieval` includes
it when both views have the same width.  :func:`retrieval_from_model` runs a
fitted two-view or multi-view model's ``transform`` first.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch

from ..utils.tensors import as_tensor, check_finite

__all__ = ["RetrievalReport", "RetrievalScores", "component_correlations", "retrieval",
           "retrieval_from_model", "retrieval_ranks"]

METRICS = ("cosine", "euclidean", "dot")
TIES = ("pessimistic", "optimistic")
# block_size=None: score at most this many (query, candidate) pairs at once (128 MiB in float64)
AUTO_BLOCK_ELEMENTS = 2 ** 24
Metric = Union[str, Callable[[torch.Tensor, torch.Tensor], Any]]


# --------------------------------------------------------------------------- input checks

def _as_matrix(X: Any, name: str) -> torch.Tensor:
    """``X`` as a detached real 2-D tensor (no copy where none is needed; never written to)."""
    T = as_tensor(X, name)
    if T.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) (one row per item), got shape "
                         f"{tuple(T.shape)}")
    if T.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(T.shape)}")
    if T.shape[1] == 0:
        raise ValueError(f"{name} has no features: shape {tuple(T.shape)}")
    check_finite(T, name)
    return T


def _pair(a: Any, b: Any, *, same_width: bool, min_rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views as float64 tensors on one device, rows (and optionally widths) checked."""
    A, B = _as_matrix(a, "a"), _as_matrix(b, "b")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"a and b must have the same number of rows (paired items): "
                         f"{A.shape[0]} and {B.shape[0]}")
    if A.shape[0] < min_rows:
        raise ValueError(f"a and b need at least {min_rows} paired rows, got {A.shape[0]}")
    if same_width and A.shape[1] != B.shape[1]:
        raise ValueError(f"a and b must have the same number of columns (dimensions of the "
                         f"shared space), got {A.shape[1]} and {B.shape[1]}; project both "
                         f"views first (e.g. CCA.transform) or pass a callable metric")
    a_dev = isinstance(a, torch.Tensor)
    b_dev = isinstance(b, torch.Tensor)
    if a_dev and b_dev and A.device != B.device:
        raise ValueError(f"a is on {A.device}, b on {B.device}: put both on one device")
    device = A.device if a_dev else B.device
    return A.to(device=device, dtype=torch.float64), B.to(device=device, dtype=torch.float64)


def _check_ks(ks: Any, n: int) -> tuple[int, ...]:
    if isinstance(ks, numbers.Integral) and not isinstance(ks, (bool, np.bool_)):
        ks = (ks,)
    try:
        values = list(ks)
    except TypeError:
        raise ValueError(f"ks must be an int or a sequence of ints, got {ks!r}") from None
    if not values:
        raise ValueError("ks must hold at least one cut-off k")
    out = []
    for k in values:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
            raise ValueError(f"ks must hold integers, got {k!r}")
        if not 1 <= int(k) <= n:
            raise ValueError(f"ks must lie in [1, n] = [1, {n}] (n paired rows), got {int(k)}")
        out.append(int(k))
    return tuple(sorted(set(out)))


def _check_metric(metric: Any) -> Metric:
    if callable(metric):
        return metric
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(repr(m) for m in METRICS)} or a "
                         f"callable, got {metric!r}")
    return metric


def _check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, "
                         f"got {value!r}")
    return value


def _check_block_size(block_size: Any, n: int) -> int:
    if block_size is None:
        return max(1, min(n, AUTO_BLOCK_ELEMENTS // n))
    if isinstance(block_size, (bool, np.bool_)) or not isinstance(block_size, numbers.Integral) \
            or int(block_size) < 1:
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    return int(block_size)


# --------------------------------------------------------------------------- scores

class _Scorer:
    """Scores between rows of A and rows of B for one metric, in blocks."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor, metric: Metric):
        self.metric = metric
        if metric == "cosine":
            A, B = _unit_rows(A, "a"), _unit_rows(B, "b")
        elif not callable(metric):
            # Euclidean and dot-product ranks do not change when both views are divided by
            # one power of two (exact), which keeps values near 1e300 (1e-300) from
            # overflowing (underflowing) in the products
            top = max(float(A.abs().max()), float(B.abs().max()))
            if top > 0:
                scale = math.ldexp(1.0, math.frexp(top)[1] - 1)  # |A / scale| < 2
                A, B = A / scale, B / scale
        if metric == "euclidean":
            self.sq_a = (A * A).sum(dim=1)
            self.sq_b = (B * B).sum(dim=1)
        self.A, self.B = A, B

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Scores of queries ``a[start:stop]`` against every ``b``: ``(stop - start, n)``.

        For the Euclidean metric the query's own squared norm is left out (it is the
        same for every candidate of the row, so the order is unchanged and no precision
        is lost to it): the score is ``2 a_i·b_j - |b_j|^2 = |a_i|^2 - |a_i - b_j|^2``.
        """
        if callable(self.metric):
            return self._call(self.A[start:stop], self.B)
        S = self.A[start:stop] @ self.B.T
        if self.metric == "euclidean":
            S = 2.0 * S - self.sq_b[None, :]
        return S

    def columns(self, start: int, stop: int) -> torch.Tensor:
        """Scores of every ``a`` against queries ``b[start:stop]``: ``(n, stop - start)``."""
        if callable(self.metric):
            return self._call(self.A, self.B[start:stop])
        S = self.A @ self.B[start:stop].T
        if self.metric == "euclidean":
            S = 2.0 * S - self.sq_a[:, None]
        return S

    def _call(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        try:
            S = self.metric(A, B)
        except Exception as err:  # noqa: BLE001 - re-raised with context
            raise ValueError(f"metric (callable) failed on ({tuple(A.shape)}, {tuple(B.shape)}) "
                             f"tensors: {type(err).__name__}: {err}") from err
        S = torch.as_tensor(S.detach() if isinstance(S, torch.Tensor) else np.asarray(S))
        if tuple(S.shape) != (A.shape[0], B.shape[0]):
            raise ValueError(f"metric (callable) must return scores of shape "
                             f"{(A.shape[0], B.shape[0])}, got {tuple(S.shape)}")
        S = S.to(device=A.device, dtype=torch.float64)
        if not torch.isfinite(S).all():
            raise ValueError("metric (callable) returned NaN or infinite scores")
        return S


def _unit_rows(T: torch.Tensor, name: str) -> torch.Tensor:
    """Rows scaled to unit norm; divided by their largest magnitude first, so that the
    squared norms of values near 1e300 (1e-300) neither overflow nor underflow."""
    top = T.abs().amax(dim=1, keepdim=True)
    zero = torch.nonzero(top[:, 0] == 0)
    if zero.numel():
        raise ValueError(f"{name} row {int(zero[0, 0])} is all zeros: its cosine "
                         f"similarity is undefined (use metric='euclidean' or 'dot')")
    T = T / top
    return T / torch.linalg.vector_norm(T, dim=1, keepdim=True)


def _count(S: torch.Tensor, diag: torch.Tensor, dim: int, ties: str) -> torch.Tensor:
    """Ranks from a block of scores; ``diag`` the true partner's score, broadcastable."""
    if ties == "pessimistic":
        # >= counts the true partner itself once: rank = 1 + others scoring >= it
        return (S >= diag).sum(dim=dim)
    return 1 + (S > diag).sum(dim=dim)


def retrieval_ranks(a: Any, b: Any, *, metric: Metric = "cosine", block_size: Union[int, None] = None,
                    ties: str = "pessimistic") -> tuple[np.ndarray, np.ndarray]:
    """1-based rank of each query's true partner, in both directions.

    Parameters
    ----------
    a : np.ndarray or torch.Tensor [shape=(n, d)]
    b : np.ndarray or torch.Tensor [shape=(n, d)]
        Paired rows: row ``i`` of ``a`` belongs with row ``i`` of ``b``.  ``d`` may
        differ between the views only for a callable ``metric``.
    metric : {"cosine", "euclidean", "dot"} or callable
        A callable is called as ``metric(a_rows, b_rows)`` on float64 tensors of shapes
        ``(p, d_a)`` and ``(q, d_b)`` (always ``a`` first) and returns ``(p, q)``
        scores, larger = more similar.
    block_size : int >= 1 or None
        Queries scored at once: peak memory about ``block_size × n`` float64 scores
        (plus as many booleans).  None: ``2**24 // n`` queries (about 128 MiB of
        scores), all ``n`` at once for ``n <= 4096``.
    ties : {"pessimistic", "optimistic"}
        ``"pessimistic"``: rank ``1 + #{j != i : s_ij >= s_ii}``;
        ``"optimistic"``: rank ``1 + #{j : s_ij > s_ii}``.

    Returns
    -------
    ranks_a_to_b : np.ndarray [shape=(n,), dtype=int64]
        Rank of ``b[i]`` among all rows of ``b`` for the query ``a[i]``.
    ranks_b_to_a : np.ndarray [shape=(n,), dtype=int64]
        Rank of ``a[i]`` among all rows of ``a`` for the query ``b[i]``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.evaluation import retrieval_ranks
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> b = np.array([[1.0, 0.1], [1.0, 0.0], [1.0, 1.0]])
    >>> retrieval_ranks(a, b)
    (array([2, 3, 1]), array([1, 3, 1]))
    """
    metric = _check_metric(metric)
    ties = _check_choice(ties, "ties", TIES)
    A, B = _pair(a, b, same_width=not callable(metric))
    n = A.shape[0]
    block_size = _check_block_size(block_size, n)
    scorer = _Scorer(A, B, metric)
    ab = torch.empty(n, dtype=torch.int64, device=A.device)
    ba = torch.empty(n, dtype=torch.int64, device=A.device)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        idx = torch.arange(stop - start, device=A.device)
        S = scorer.rows(start, stop)                      # queries a[start:stop]
        ab[start:stop] = _count(S, S[idx, start + idx][:, None], 1, ties)
        S = scorer.columns(start, stop)                   # queries b[start:stop]
        ba[start:stop] = _count(S, S[start + idx, idx][None, :], 0, ties)
    return ab.cpu().numpy(), ba.cpu().numpy()


# --------------------------------------------------------------------------- correlations

def component_correlations(a: Any, b: Any) -> Union[np.ndarray, torch.Tensor]:
    """Pearson correlation of each pair of columns ``a[:, c]``, ``b[:, c]``.

    For canonical variates (``CCA.transform``) these are the canonical
    correlations on the data given, the quantity CCA maximises per component.

    Parameters
    ----------
    a : np.ndarray or torch.Tensor [shape=(n, d)]
    b : np.ndarray or torch.Tensor [shape=(n, d)]
        Paired rows, ``n >= 2``, same number of columns.

    Returns
    -------
    correlations : [shape=(d,), float64]
        In ``[-1, 1]``.  numpy in, numpy out; a tensor ``a`` gives a tensor on
        its device.

    Raises
    ------
    ValueError
        Naming the view and the column, when a column is constant in either
        view (its correlation is undefined), besides the input checks of
        :func:`retrieval`.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.evaluation import component_correlations
    >>> t = np.arange(5.0)
    >>> a = np.c_[t, t ** 2]
    >>> b = np.c_[2 * t + 1, -t]
    >>> np.round(component_correlations(a, b), 3)
    array([ 1.   , -0.959])
    """
    A, B = _pair(a, b, same_width=True)
    for T, name in ((A, "a"), (B, "b")):
        constant = torch.nonzero(_constant_columns(T))
        if constant.numel():
            raise ValueError(f"{name} column {int(constant[0, 0])} is constant: its correlation "
                             "is undefined")
    r = _pearson(A, B)
    return r if isinstance(a, torch.Tensor) else r.cpu().numpy()


def _constant_columns(T: torch.Tensor) -> torch.Tensor:
    return T.amax(dim=0) == T.amin(dim=0)


def _pearson(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson correlations of float64 (n, d) tensors; NaN where a column of
    either is constant."""
    constant = _constant_columns(A) | _constant_columns(B)
    # r is scale-invariant: columns scaled to at most 1 in magnitude keep values near
    # 1e300 (or 1e-300) from overflowing (underflowing) in the sums of squares
    ones = torch.ones_like(constant, dtype=A.dtype)
    A = A / torch.where(constant, ones, A.abs().amax(dim=0))
    B = B / torch.where(constant, ones, B.abs().amax(dim=0))
    Ac, Bc = A - A.mean(dim=0), B - B.mean(dim=0)
    num = (Ac * Bc).sum(dim=0)
    den = torch.sqrt((Ac * Ac).sum(dim=0)) * torch.sqrt((Bc * Bc).sum(dim=0))
    r = (num / torch.where(constant, ones, den)).clamp(-1.0, 1.0)
    return torch.where(constant, torch.full_like(r, float("nan")), r)


# --------------------------------------------------------------------------- report

def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.array(x, copy=True)
    x.setflags(write=False)
    return x


@dataclass(frozen=True, eq=False)
class RetrievalScores:
    """Retrieval scores of one direction (queries from one view, candidates from the other).

    Attributes
    ----------
    recall : dict int -> float
        recall@k for each requested ``k``: the fraction of queries whose true partner
        ranks ``<= k``.
    median_rank, mean_rank : float
        Of the 1-based ranks.
    mrr : float
        Mean reciprocal rank, ``mean(1 / rank)`` in ``(0, 1]``.
    ranks : np.ndarray [shape=(n,), int64], read-only
        Rank of each query's true partner.
    """

    recall: dict
    median_rank: float
    mean_rank: float
    mrr: float
    ranks: np.ndarray = field(repr=False)

    @classmethod
    def from_ranks(cls, ranks: np.ndarray, ks: Sequence[int]) -> "RetrievalScores":
        ranks = np.asarray(ranks, dtype=np.int64)
        return cls(recall={int(k): float(np.mean(ranks <= k)) for k in ks},
                   median_rank=float(np.median(ranks)), mean_rank=float(np.mean(ranks)),
                   mrr=float(np.mean(1.0 / ranks)), ranks=_readonly(ranks))

    def as_dict(self, ranks: bool = False) -> dict:
        out = {f"recall@{k}": v for k, v in self.recall.items()}
        out.update(median_rank=self.median_rank, mean_rank=self.mean_rank, mrr=self.mrr)
        if ranks:
            out["ranks"] = self.ranks.tolist()
        return out


@dataclass(frozen=True, eq=False)
class RetrievalReport:
    """Cross-modal retrieval in both directions, chance levels and per-component correlations.

    Attributes
    ----------
    n : int
        Paired rows (queries per direction, candidates per query).
    ks : tuple of int
        The recall cut-offs, increasing.
    metric : str
        ``"cosine"``, ``"euclidean"``, ``"dot"``, or the callable's name.
    ties : str
        ``"pessimistic"`` or ``"optimistic"`` (see :func:`retrieval_ranks`).
    a_to_b, b_to_a : RetrievalScores
        Queries from ``a`` against candidates ``b``, and the reverse.
    chance : RetrievalScores
        Expected scores of a random pairing: recall@k ``k / n``, median and mean rank
        ``(n + 1) / 2``, MRR ``H_n / n``; its ``ranks`` is empty.
    correlations : np.ndarray [shape=(d,)] or None
        :func:`component_correlations` of the two views, except that a column
        constant in either view (a collapsed embedding, which retrieval still
        ranks) gets NaN, its correlation being undefined (``None`` in
        :meth:`as_dict`); None for views of different widths (callable metric).
    """

    n: int
    ks: tuple
    metric: str
    ties: str
    a_to_b: RetrievalScores
    b_to_a: RetrievalScores
    chance: RetrievalScores
    correlations: Union[np.ndarray, None] = field(repr=False)

    def as_dict(self, ranks: bool = False) -> dict:
        """Plain-Python (JSON-ready) nested dict; ``ranks=True`` adds every query's rank."""
        chance = self.chance.as_dict()
        return {
            "n": self.n, "ks": list(self.ks), "metric": self.metric, "ties": self.ties,
            "a_to_b": self.a_to_b.as_dict(ranks), "b_to_a": self.b_to_a.as_dict(ranks),
            "chance": chance,
            "correlations": None if self.correlations is None
            else [None if math.isnan(c) else float(c) for c in self.correlations],
        }

    def to_markdown(self, names: tuple[str, str] = ("a", "b")) -> str:
        """A Markdown table: one row per direction and one for chance, then the correlations."""
        x, y = names
        cols = [f"R@{k}" for k in self.ks] + ["median rank", "mean rank", "MRR"]
        lines = ["| direction | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
        for label, s in ((f"{x} → {y}", self.a_to_b), (f"{y} → {x}", self.b_to_a),
                         ("chance", self.chance)):
            cells = [f"{s.recall[k]:.3f}" for k in self.ks]
            cells += [f"{s.median_rank:g}", f"{s.mean_rank:.1f}", f"{s.mrr:.3f}"]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        text = "\n".join(lines)
        text += f"\n\n{self.n} pairs, metric {self.metric}, ties {self.ties}"
        if self.correlations is not None:
            c = self.correlations
            shown = ", ".join("nan" if math.isnan(v) else f"{v:.3f}" for v in c[:8])
            more = f", … ({len(c)} in all)" if len(c) > 8 else ""
            text += (f"; per-component correlations {shown}{more}"
                     f" (mean {np.nanmean(c) if np.isfinite(c).any() else float('nan'):.3f})")
        return text + "."

    def __str__(self) -> str:
        return self.to_markdown()


def _chance(n: int, ks: Sequence[int]) -> RetrievalScores:
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return RetrievalScores(recall={k: k / n for k in ks}, median_rank=(n + 1) / 2,
                           mean_rank=(n + 1) / 2, mrr=harmonic / n,
                           ranks=_readonly(np.zeros(0, dtype=np.int64)))


def retrieval(a: Any, b: Any, *, metric: Metric = "cosine", ks: Union[int, Sequence[int]] = (1, 5, 10),
              block_size: Union[int, None] = None, ties: str = "pessimistic") -> RetrievalReport:
    """Cross-modal retrieval between paired rows, in both directions.

    Each row of ``a`` queries all rows of ``b`` (and each row of ``b`` all rows of
    ``a``); the true partner of query ``i`` is row ``i`` of the other view.

    Parameters
    ----------
    a : np.ndarray or torch.Tensor [shape=(n, d)]
    b : np.ndarray or torch.Tensor [shape=(n, d)]
        Paired rows, ``n >= 2``, finite; float32 / float64 / integers, CPU or CUDA
        (both tensors on one device; an array beside a tensor moves to its device).
        ``d`` may differ only for a callable ``metric``.  Never modified.
    metric : {"cosine", "euclidean", "dot"} or callable
        See :func:`retrieval_ranks`.  Cosine needs rows that are not all zeros.
    ks : int or sequence of int
        recall@k cut-offs, each in ``[1, n]``; sorted and de-duplicated.
    block_size : int >= 1 or None
        Queries scored at once (memory about ``block_size × n`` float64); None
        chooses it so that a block holds about ``2**24`` scores (128 MiB).
    ties : {"pessimistic", "optimistic"}
        How candidates scoring exactly as well as the true partner count
        (see :func:`retrieval_ranks`); pessimistic by default.

    Returns
    -------
    RetrievalReport
        ``a_to_b`` / ``b_to_a`` scores (recall@k, median / mean rank, MRR, ranks),
        ``chance`` levels, per-component ``correlations``; ``as_dict()``,
        ``to_markdown()``.

    Raises
    ------
    ValueError
        Naming the argument: NaN / inf, empty or non-2-D input, different row
        counts, different widths (built-in metrics), bad ``ks`` / ``metric`` /
        ``ties`` / ``block_size``.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.evaluation import retrieval
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((200, 8))
    >>> a = z + 0.3 * rng.standard_normal((200, 8))
    >>> b = z + 0.3 * rng.standard_normal((200, 8))
    >>> report = retrieval(a, b, ks=(1, 5))
    >>> report.a_to_b.recall[1], report.chance.recall[1]
    (0.875, 0.005)
    >>> sorted(report.as_dict()["b_to_a"])
    ['mean_rank', 'median_rank', 'mrr', 'recall@1', 'recall@5']
    """
    metric = _check_metric(metric)
    ties = _check_choice(ties, "ties", TIES)
    A, B = _pair(a, b, same_width=not callable(metric))
    n = int(A.shape[0])
    block_size = _check_block_size(block_size, n)
    ks = _check_ks(ks, n)
    ab, ba = retrieval_ranks(A, B, metric=metric, block_size=block_size, ties=ties)
    correlations = None
    if A.shape[1] == B.shape[1]:
        correlations = _readonly(_pearson(A, B).cpu().numpy())
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "callable")
    return RetrievalReport(n=n, ks=ks, metric=name, ties=ties,
                           a_to_b=RetrievalScores.from_ranks(ab, ks),
                           b_to_a=RetrievalScores.from_ranks(ba, ks),
                           chance=_chance(n, ks), correlations=correlations)


# --------------------------------------------------------------------------- models

def _check_views(views: Any, n_views: int) -> tuple[int, int]:
    try:
        i, j = views
    except (TypeError, ValueError):
        raise ValueError(f"views must be a pair of view indices (i, j), got {views!r}") from None
    for v in (i, j):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) \
                or not 0 <= int(v) < n_views:
            raise ValueError(f"views must hold indices in [0, {n_views - 1}], got {views!r}")
    if int(i) == int(j):
        raise ValueError(f"views must name two different views, got {views!r}")
    return int(i), int(j)


def retrieval_from_model(model: Any, X: Any, Y: Any = None, *, views: Union[tuple, None] = None,
                         **kwargs: Any) -> RetrievalReport:
    """Project paired data with a fitted model's ``transform``, then run :func:`retrieval`.

    Two-view models (:class:`~mmalign.CCA`, :class:`~mmalign.DeepCCA`, anything whose
    ``transform(X, Y)`` returns the pair ``(zx, zy)``): pass ``X`` and ``Y``.
    Multi-view models (:class:`~mmalign.projection.DeepMCCA`, anything whose
    ``transform(views)`` returns one array per view): pass the list of views as
    ``X``, leave ``Y`` out, and pick the two views to retrieve between with
    ``views``.  A fitted :class:`~mmalign.DCTW` is evaluated through its deep CCA
    (``model_``, with ``X`` and ``Y``) or its multi-set model (``multi_model_``,
    with a list of views), on frames that are already paired.

    Parameters
    ----------
    model : fitted estimator
    X : array [shape=(n, d_x)] or list of arrays [shape=(n, d_j)]
    Y : array [shape=(n, d_y)] or None
        Rows paired with ``X``'s; None for a multi-view model.
    views : (int, int) or None
        Which two outputs of ``transform`` to compare, as ``(a, b)``; default
        ``(0, 1)``.  With a two-view model ``(1, 0)`` swaps the roles.
    **kwargs
        Passed to :func:`retrieval` (``metric``, ``ks``, ``block_size``, ``ties``).

    Returns
    -------
    RetrievalReport
        ``a`` is view ``views[0]``'s projection, ``b`` view ``views[1]``'s.

    Examples
    --------
    >>> import numpy as np, mmalign
    >>> from mmalign.evaluation import retrieval_from_model
    >>> rng = np.random.default_rng(0)
    >>> z = rng.standard_normal((300, 3))
    >>> X = z @ rng.standard_normal((3, 6)) + 0.1 * rng.standard_normal((300, 6))
    >>> Y = z @ rng.standard_normal((3, 4)) + 0.1 * rng.standard_normal((300, 4))
    >>> model = mmalign.CCA(n_components=3).fit(X[:200], Y[:200])
    >>> report = retrieval_from_model(model, X[200:], Y[200:], ks=(1, 10))
    >>> report.n, report.a_to_b.recall[10] > 0.9
    (100, True)
    """
    multi = Y is None
    if not hasattr(model, "transform"):
        inner = "multi_model_" if multi else "model_"
        if hasattr(model, inner):          # DCTW: its fitted (multi-set) deep CCA
            model = getattr(model, inner)
        else:
            raise ValueError(f"model must be a fitted estimator with a transform method, got "
                             f"{type(model).__name__}")
    if multi:
        if isinstance(X, (np.ndarray, torch.Tensor)) or not isinstance(X, Sequence):
            raise ValueError("with Y=None, X must be a list of views for a multi-view model; "
                             "for a two-view model pass X and Y")
        out = model.transform(list(X))
    else:
        out = model.transform(X, Y)
    if isinstance(out, (np.ndarray, torch.Tensor)) or not isinstance(out, Sequence) or len(out) < 2:
        raise ValueError(f"{type(model).__name__}.transform returned {type(out).__name__}, not "
                         f"one projected array per view; "
                         + ("pass a list of views to a multi-view model" if multi else
                            "pass X and Y to a two-view model whose transform(X, Y) returns "
                            "(zx, zy)"))
    i, j = _check_views((0, 1) if views is None else views, len(out))
    return retrieval(out[i], out[j], **kwargs)
