"""Intrinsic evaluation of an embedding table: neighbours, analogies, variants, similarity.

Conventions
-----------
An *embedding table* holds one vector per word: ``vectors`` of shape ``(V, d)``
and ``V`` distinct words (strings, case-sensitive: ``"Paris"`` and ``"paris"``
are different words).  :class:`EmbeddingTable` stores them as float64 and never
hands out a writable view; every function below also accepts a plain
``{word: vector}`` dict.

All similarities are **cosine** similarities, computed on unit-normalised
vectors (:attr:`EmbeddingTable.unit_vectors`); rows that are all zeros are
rejected when the table is built.  Ties in a ranking are broken by table order
(the word that comes first in the table ranks first), so results are
deterministic.

Batch evaluations (:func:`evaluate_analogies`, :func:`variant_robustness`,
:func:`similarity_correlation`) *skip* items that use a word missing from the
table and report how many they kept (``coverage``) and which they skipped;
single look-ups (:func:`nearest_neighbors`, :func:`analogy`) raise a
``ValueError`` naming the unknown word.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
from scipy import stats

from ..utils.embedding_table import EmbeddingTable
from ..utils.embedding_table import check_word as _check_word
from ..utils.embedding_table import unit_rows as _unit_rows
from ..utils.validation import as_real_array

__all__ = [
    "EmbeddingTable",
    "Neighbors",
    "AnalogyReport",
    "VariantReport",
    "SimilarityReport",
    "as_table",
    "nearest_neighbors",
    "analogy",
    "evaluate_analogies",
    "variant_robustness",
    "similarity_correlation",
]

# Levy & Goldberg (2014): 3CosMul's epsilon, against division by zero.
_COSMUL_EPS = 1e-3
# Rows of a (rows, V) score matrix computed at once: bounds memory to ~128 MB.
_SCORE_BUDGET = 1 << 24
_METHODS = ("add", "mul")


# --------------------------------------------------------------------------- helpers


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral):
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    return int(k)


def _check_method(method: Any) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")
    return method


def _chunks(n_rows: int, n_cols: int) -> Iterator[slice]:
    step = max(1, _SCORE_BUDGET // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def _word_tuples(items: Any, size: int, name: str, what: str) -> list[tuple]:
    """``items`` as a non-empty list of ``size``-tuples whose first entries are words."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValueError(f"{name} must be a sequence of {what}, got {type(items).__name__}")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, bytes)):
            raise ValueError(f"{name}[{i}] must be a tuple {what}, got the string {item!r}")
        try:
            item = tuple(item)
        except TypeError:
            raise ValueError(f"{name}[{i}] must be a tuple {what}, got {item!r}") from None
        if len(item) != size:
            raise ValueError(f"{name}[{i}] must have {size} entries {what}, got {len(item)}: {item!r}")
        out.append(item)
    if not out:
        raise ValueError(f"{name} is empty")
    return out


def as_table(table: Any, name: str = "table") -> EmbeddingTable:
    """``table`` as an :class:`EmbeddingTable` (a ``{word: vector}`` dict is converted)."""
    if isinstance(table, EmbeddingTable):
        return table
    if isinstance(table, Mapping):
        try:
            return EmbeddingTable.from_dict(table)
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    raise ValueError(f"{name} must be an EmbeddingTable or a dict word -> vector, "
                     f"got {type(table).__name__}")


def _query_vector(table: EmbeddingTable, query: Any, name: str) -> np.ndarray:
    """Unit vector of a word or of a raw vector query."""
    if isinstance(query, str):
        return table.unit_vectors[table.index(query, name)]
    v = as_real_array(query, name)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a word or a vector of shape (d,), got shape {v.shape}")
    if v.shape[0] != table.dim:
        raise ValueError(f"{name} has {v.shape[0]} dimensions, the table has {table.dim}")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    unit, zero = _unit_rows(v[None])
    if zero[0]:
        raise ValueError(f"{name} is the zero vector: its cosine is undefined")
    return unit[0]


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first, ties by index."""
    order = np.argsort(-scores, kind="stable")
    order = order[np.isfinite(scores[order])]
    return order[:k]


# --------------------------------------------------------------------------- neighbours


@dataclass(frozen=True)
class Neighbors:
    """A ranked list of words with their scores, best first.

    Iterating yields ``(word, score)`` pairs; ``len`` is the number of words.

    Attributes
    ----------
    words : tuple of str, length k
    scores : np.ndarray [float64], shape (k,)
        Cosine similarities (for an analogy: the method's score, see :func:`analogy`).
    """

    words: tuple[str, ...]
    scores: np.ndarray

    def __iter__(self) -> Iterator[tuple[str, float]]:
        return iter(zip(self.words, (float(s) for s in self.scores)))

    def __len__(self) -> int:
        return len(self.words)

    def __getitem__(self, i: int) -> tuple[str, float]:
        return self.words[i], float(self.scores[i])

    def to_list(self) -> list[tuple[str, float]]:
        return list(self)


def nearest_neighbors(
    table: EmbeddingTable | Mapping[str, Any],
    query: str | Any,
    k: int = 10,
    *,
    exclude: Iterable[str] | None = None,
) -> Neighbors:
    """The ``k`` words with the highest cosine similarity to ``query``.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    query : str or array-like / torch.Tensor, shape (d,)
        A word of the table, or any non-zero vector in the table's space.
    k : int >= 1
        Number of neighbours; fewer come back when fewer words are left.
    exclude : iterable of str or None
        Words never returned (each must be in the table).  ``None`` (default)
        excludes the query word itself when ``query`` is a word and nothing
        when it is a vector; pass ``()`` to keep the query word.

    Returns
    -------
    neighbors : Neighbors
        ``k`` words and their cosine similarities, shape ``(k,)``, in
        decreasing order (ties: table order).

    Raises
    ------
    ValueError
        Unknown query or excluded word, a vector of the wrong size, NaN / inf,
        the zero vector, ``k < 1``.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable, nearest_neighbors
    >>> table = EmbeddingTable([[1, 0], [1, 1], [0, 1], [-1, 0]], ["east", "northeast", "north", "west"])
    >>> nearest_neighbors(table, "east", k=2).words
    ('northeast', 'north')
    >>> nearest_neighbors(table, [0.0, 1.0], k=1).to_list()
    [('north', 1.0)]
    """
    table = as_table(table)
    k = _check_k(k)
    q = _query_vector(table, query, "query")
    if exclude is None:
        exclude = (query,) if isinstance(query, str) else ()
    drop = table.indices(exclude, "exclude")
    scores = table.unit_vectors @ q
    scores[drop] = -np.inf
    top = _top_k(scores, k)
    return Neighbors(tuple(table.words[i] for i in top), scores[top].copy())


# --------------------------------------------------------------------------- analogies


def _analogy_scores(U: np.ndarray, ia: np.ndarray, ib: np.ndarray, ic: np.ndarray,
                    method: str) -> np.ndarray:
    """Scores of every word as the answer of each question, shape ``(Q, V)``."""
    if method == "add":
        target = U[ib] - U[ia] + U[ic]
        norms = np.linalg.norm(target, axis=1, keepdims=True)
        norms[norms == 0] = 1.0  # b - a + c = 0 (a == b == c impossible; kept safe): all scores 0
        return (target / norms) @ U.T
    ca, cb, cc = ((U[i] @ U.T + 1.0) / 2.0 for i in (ia, ib, ic))
    return cb * cc / (ca + _COSMUL_EPS)


def analogy(
    table: EmbeddingTable | Mapping[str, Any],
    a: str,
    b: str,
    c: str,
    k: int = 1,
    *,
    method: str = "add",
    exclude_query: bool = True,
) -> Neighbors:
    """Solve ``a : b :: c : ?`` — the word ``d`` with ``d - c ≈ b - a``.

    ``method="add"`` (3CosAdd, Mikolov et al. 2013) ranks every word ``x`` by
    ``cos(x, b̂ - â + ĉ)`` (hats: unit vectors), which orders the words like
    the 3CosAdd objective ``cos(x, b) - cos(x, a) + cos(x, c)`` and is what
    gensim's ``most_similar(positive=[b, c], negative=[a])`` returns.
    ``method="mul"`` (3CosMul, Levy & Goldberg 2014) ranks by
    ``cos'(x, b) · cos'(x, c) / (cos'(x, a) + 0.001)`` with
    ``cos' = (cos + 1) / 2``.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    a, b, c : str
        The question words (all in the table).
    k : int >= 1
        Number of candidate answers returned.
    method : {"add", "mul"}
    exclude_query : bool
        Leave ``a``, ``b`` and ``c`` out of the answers (default, the standard
        protocol: otherwise ``b`` or ``c`` is very often the top answer).

    Returns
    -------
    answers : Neighbors
        The ``k`` best words and their scores (cosine for ``"add"``, the
        3CosMul ratio for ``"mul"``), best first.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable, analogy
    >>> table = EmbeddingTable([[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1.1]],
    ...                        ["man", "king", "woman", "queen"])
    >>> analogy(table, "man", "king", "woman").words
    ('queen',)
    """
    table = as_table(table)
    k = _check_k(k)
    _check_method(method)
    ia, ib, ic = (table.index(w, n) for w, n in ((a, "a"), (b, "b"), (c, "c")))
    scores = _analogy_scores(table.unit_vectors, np.array([ia]), np.array([ib]), np.array([ic]),
                             method)[0]
    if exclude_query:
        scores[[ia, ib, ic]] = -np.inf
    top = _top_k(scores, k)
    return Neighbors(tuple(table.words[i] for i in top), scores[top].copy())


@dataclass(frozen=True)
class AnalogyReport:
    """Result of :func:`evaluate_analogies`.

    Attributes
    ----------
    accuracy : float
        Correct / answered (questions whose four words are all in the table);
        NaN when no question could be answered.
    accuracy_all : float
        Correct / all questions (skipped questions count as wrong).
    n_questions, n_answered, n_correct : int
    coverage : float
        ``n_answered / n_questions``.
    answers : tuple of (str or None), length n_questions
        The top answer per question, ``None`` for skipped questions.
    correct : np.ndarray [bool], shape (n_questions,)
        False for skipped questions.
    answered : np.ndarray [bool], shape (n_questions,)
    skipped : tuple of tuple
        The questions skipped because a word is not in the table.
    method : str
    """

    accuracy: float
    accuracy_all: float
    n_questions: int
    n_answered: int
    n_correct: int
    coverage: float
    answers: tuple
    correct: np.ndarray
    answered: np.ndarray
    skipped: tuple
    method: str

    def __str__(self) -> str:
        return (f"analogies (3Cos{self.method.capitalize()}): accuracy {self.accuracy:.3f} on "
                f"{self.n_answered}/{self.n_questions} answered questions "
                f"(coverage {self.coverage:.3f}, accuracy over all {self.accuracy_all:.3f})")


def evaluate_analogies(
    table: EmbeddingTable | Mapping[str, Any],
    questions: Iterable[tuple[str, str, str, str]],
    *,
    method: str = "add",
) -> AnalogyReport:
    """Score analogy questions ``(a, b, c, d)``: is ``d`` the top answer to ``a : b :: c : ?``?

    Each question is solved as :func:`analogy` does with ``k=1`` and the query
    words excluded; questions with a word outside the table are skipped and
    counted (``coverage``), the standard protocol of the Google / BATS sets.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    questions : iterable of (a, b, c, d) tuples of str
        Non-empty.
    method : {"add", "mul"}
        3CosAdd or 3CosMul, see :func:`analogy`.

    Returns
    -------
    report : AnalogyReport
        ``accuracy`` (over answered questions), ``coverage``, per-question
        ``answers`` and ``correct``, the ``skipped`` questions.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable, evaluate_analogies
    >>> table = EmbeddingTable([[0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1.1]],
    ...                        ["man", "king", "woman", "queen"])
    >>> report = evaluate_analogies(table, [("man", "king", "woman", "queen"),
    ...                                     ("man", "king", "girl", "princess")])
    >>> report.accuracy, report.coverage, report.answers
    (1.0, 0.5, ('queen', None))
    """
    table = as_table(table)
    _check_method(method)
    qs = _word_tuples(questions, 4, "questions", "(a, b, c, d)")
    for i, q in enumerate(qs):
        for j, w in enumerate(q):
            _check_word(w, f"questions[{i}][{j}]")
    answered = np.array([all(w in table for w in q) for q in qs], dtype=bool)
    answers: list[str | None] = [None] * len(qs)
    correct = np.zeros(len(qs), dtype=bool)
    rows = np.flatnonzero(answered)
    if rows.size:
        idx = np.array([[table.index(w) for w in qs[r]] for r in rows], dtype=np.intp)
        U = table.unit_vectors
        for sl in _chunks(len(rows), len(table)):
            ia, ib, ic, id_ = idx[sl].T
            scores = _analogy_scores(U, ia, ib, ic, method)
            n = scores.shape[0]
            for col in (ia, ib, ic):
                scores[np.arange(n), col] = -np.inf
            best = np.argmax(scores, axis=1)  # first maximum: ties by table order
            for r, bi, di in zip(rows[sl], best, id_):
                answers[r] = table.words[bi]
                correct[r] = bi == di
    n_answered = int(answered.sum())
    n_correct = int(correct.sum())
    return AnalogyReport(
        accuracy=n_correct / n_answered if n_answered else float("nan"),
        accuracy_all=n_correct / len(qs),
        n_questions=len(qs),
        n_answered=n_answered,
        n_correct=n_correct,
        coverage=n_answered / len(qs),
        answers=tuple(answers),
        correct=correct,
        answered=answered,
        skipped=tuple(q for q, ok in zip(qs, answered) if not ok),
        method=method,
    )


# --------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class VariantReport:
    """Result of :func:`variant_robustness`.

    Attributes
    ----------
    pairs : tuple of (word, variant)
        The covered pairs (both words in the table), in input order.
    cosine : np.ndarray [float64], shape (n_covered,)
        ``cos(word, variant)`` per covered pair.
    rank : np.ndarray [int], shape (n_covered,)
        1-based rank of the variant among the word's neighbours (all other
        words, ties by table order): ``1`` means the variant is the nearest.
    mean_cosine, hit_rate, mean_reciprocal_rank : float
        Means over covered pairs; ``hit_rate`` is the fraction with
        ``rank <= k``.  NaN when nothing is covered.
    k : int
    n_pairs, n_covered : int
    coverage : float
    skipped : tuple of (word, variant)
        Pairs with a word not in the table.
    """

    pairs: tuple
    cosine: np.ndarray
    rank: np.ndarray
    mean_cosine: float
    hit_rate: float
    mean_reciprocal_rank: float
    k: int
    n_pairs: int
    n_covered: int
    coverage: float
    skipped: tuple

    def __str__(self) -> str:
        return (f"variants: mean cosine {self.mean_cosine:.3f}, variant in top-{self.k} "
                f"{self.hit_rate:.3f}, MRR {self.mean_reciprocal_rank:.3f} "
                f"({self.n_covered}/{self.n_pairs} pairs covered)")


def variant_robustness(
    table: EmbeddingTable | Mapping[str, Any],
    pairs: Iterable[tuple[str, str]],
    *,
    k: int = 10,
) -> VariantReport:
    """How close spelling / morphological variants lie to their base words.

    For each ``(word, variant)`` pair — ``("color", "colour")``,
    ``("walk", "walked")`` — the cosine similarity and the rank of ``variant``
    among the neighbours of ``word`` (as :func:`nearest_neighbors` ranks them:
    the variant is in ``nearest_neighbors(table, word, k)`` exactly when its
    rank is ``<= k``).  Pairs with a word outside the table are skipped and
    counted.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    pairs : iterable of (word, variant) tuples of str
        Non-empty; ``word != variant``.
    k : int >= 1
        Cut-off of ``hit_rate``.

    Returns
    -------
    report : VariantReport
        Per-pair ``cosine`` and ``rank``; summaries ``mean_cosine``,
        ``hit_rate`` (variant in the top ``k``), ``mean_reciprocal_rank``.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable, variant_robustness
    >>> table = EmbeddingTable([[1, 0], [0.9, 0.1], [0, 1], [0.2, 1]],
    ...                        ["color", "colour", "gray", "grey"])
    >>> report = variant_robustness(table, [("color", "colour"), ("gray", "grey"), ("gray", "graey")], k=1)
    >>> report.rank, report.hit_rate, report.coverage
    (array([1, 1]), 1.0, 0.6666666666666666)
    """
    table = as_table(table)
    k = _check_k(k)
    ps = _word_tuples(pairs, 2, "pairs", "(word, variant)")
    for i, (w, v) in enumerate(ps):
        _check_word(w, f"pairs[{i}][0]")
        _check_word(v, f"pairs[{i}][1]")
        if w == v:
            raise ValueError(f"pairs[{i}] pairs the word {w!r} with itself")
    covered = [p for p in ps if p[0] in table and p[1] in table]
    skipped = tuple(p for p in ps if not (p[0] in table and p[1] in table))
    n = len(covered)
    cosine = np.empty(n)
    rank = np.empty(n, dtype=np.int64)
    if n:
        iw = np.array([table.index(w) for w, _ in covered], dtype=np.intp)
        iv = np.array([table.index(v) for _, v in covered], dtype=np.intp)
        U = table.unit_vectors
        cols = np.arange(len(table))
        for sl in _chunks(n, len(table)):
            S = U[iw[sl]] @ U.T
            rows = np.arange(S.shape[0])
            target = S[rows, iv[sl]]
            S[rows, iw[sl]] = -np.inf  # the word itself is not its own neighbour
            above = (S > target[:, None]).sum(axis=1)
            tied_before = ((S == target[:, None]) & (cols[None, :] < iv[sl][:, None])).sum(axis=1)
            cosine[sl] = target
            rank[sl] = 1 + above + tied_before
    nan = float("nan")
    return VariantReport(
        pairs=tuple(covered),
        cosine=cosine,
        rank=rank,
        mean_cosine=float(cosine.mean()) if n else nan,
        hit_rate=float((rank <= k).mean()) if n else nan,
        mean_reciprocal_rank=float((1.0 / rank).mean()) if n else nan,
        k=k,
        n_pairs=len(ps),
        n_covered=n,
        coverage=n / len(ps),
        skipped=skipped,
    )


# --------------------------------------------------------------------------- similarity


@dataclass(frozen=True)
class SimilarityReport:
    """Result of :func:`similarity_correlation`.

    Attributes
    ----------
    spearman : float
        Spearman's rank correlation between cosine and human scores over the
        covered pairs (``scipy.stats.spearmanr``, ties get average ranks).
    pvalue : float
        scipy's two-sided p-value for ``spearman``.
    pairs : tuple of (w1, w2)
        Covered pairs, in input order.
    cosine, human : np.ndarray [float64], shape (n_covered,)
    n_pairs, n_covered : int
    coverage : float
    skipped : tuple of (w1, w2)
        Pairs with a word not in the table (OOV).
    """

    spearman: float
    pvalue: float
    pairs: tuple
    cosine: np.ndarray
    human: np.ndarray
    n_pairs: int
    n_covered: int
    coverage: float
    skipped: tuple

    def __str__(self) -> str:
        return (f"similarity: Spearman {self.spearman:.3f} (p = {self.pvalue:.2g}) on "
                f"{self.n_covered}/{self.n_pairs} pairs (coverage {self.coverage:.3f})")


def similarity_correlation(
    table: EmbeddingTable | Mapping[str, Any],
    triples: Iterable[tuple[str, str, float]],
) -> SimilarityReport:
    """Spearman correlation between cosine similarity and human similarity judgements.

    The protocol of WordSim-353, SimLex-999, MEN and the like: for every pair
    ``(w1, w2, score)`` whose two words are in the table, compare
    ``cos(w1, w2)`` with the human ``score``; pairs with an out-of-vocabulary
    word are skipped and reported (``coverage``, ``skipped``).

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    triples : iterable of (str, str, float)
        The user's similarity list; scores on any scale (only ranks matter).

    Returns
    -------
    report : SimilarityReport
        ``spearman`` and its ``pvalue``, the per-pair ``cosine`` and
        ``human`` arrays, ``coverage`` and the ``skipped`` pairs.

    Raises
    ------
    ValueError
        Malformed triples, a non-finite score, fewer than 3 covered pairs,
        or constant scores / cosines (the correlation is undefined).

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable, similarity_correlation
    >>> table = EmbeddingTable([[1, 0], [1, 0.2], [0.5, 1], [0, 1]], ["cup", "mug", "tea", "sky"])
    >>> report = similarity_correlation(table, [("cup", "mug", 9.0), ("cup", "tea", 5.5),
    ...                                         ("cup", "sky", 0.5), ("mug", "moon", 1.0)])
    >>> report.spearman, report.n_covered, report.skipped
    (1.0, 3, (('mug', 'moon'),))
    """
    table = as_table(table)
    ts = _word_tuples(triples, 3, "triples", "(w1, w2, score)")
    scores = np.empty(len(ts))
    for i, (w1, w2, s) in enumerate(ts):
        _check_word(w1, f"triples[{i}][0]")
        _check_word(w2, f"triples[{i}][1]")
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Real):
            raise ValueError(f"triples[{i}][2] must be a real number, got {s!r}")
        if not np.isfinite(s):
            raise ValueError(f"triples[{i}][2] is not finite: {s!r}")
        scores[i] = float(s)
    keep = np.array([w1 in table and w2 in table for w1, w2, _ in ts], dtype=bool)
    pairs = tuple((w1, w2) for (w1, w2, _), ok in zip(ts, keep) if ok)
    skipped = tuple((w1, w2) for (w1, w2, _), ok in zip(ts, keep) if not ok)
    if len(pairs) < 3:
        raise ValueError(f"triples: only {len(pairs)} of {len(ts)} pairs have both words in the "
                         "table; Spearman's correlation needs at least 3")
    human = scores[keep]
    U = table.unit_vectors
    i1 = table.indices([p[0] for p in pairs])
    i2 = table.indices([p[1] for p in pairs])
    cosine = np.einsum("ij,ij->i", U[i1], U[i2])
    if np.ptp(human) == 0:
        raise ValueError("triples: the human scores of the covered pairs are all equal; "
                         "the rank correlation is undefined")
    if np.ptp(cosine) == 0:
        raise ValueError("table: the cosines of the covered pairs are all equal; "
                         "the rank correlation is undefined")
    result = stats.spearmanr(human, cosine)
    return SimilarityReport(
        spearman=float(result.statistic),
        pvalue=float(result.pvalue),
        pairs=pairs,
        cosine=cosine,
        human=human,
        n_pairs=len(ts),
        n_covered=len(pairs),
        coverage=len(pairs) / len(ts),
        skipped=skipped,
    )
