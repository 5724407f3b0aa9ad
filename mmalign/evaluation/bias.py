"""Bias probes for embedding tables: bias directions, projections, WEAT and hard debiasing.

Conventions
-----------
Everything is computed on **unit-normalised** word vectors
(:attr:`~mmalign.evaluation.embeddings.EmbeddingTable.unit_vectors`), as in
Bolukbasi et al. (2016) and Caliskan et al. (2017).  A *direction* is a
vector of shape ``(d,)``; functions scale it to unit norm, so the projection of
a word onto it is the cosine between the word and the direction, in
``[-1, 1]``.  Directions built from word pairs ``(x, y)`` point from the
second word of each pair to the first: with ``[("he", "she"), ...]``, positive
projections lean towards *he*.

References
----------
Bolukbasi, Chang, Zou, Saligrama, Kalai. "Man is to computer programmer as
woman is to homemaker? Debiasing word embeddings." NeurIPS 2016.

Caliskan, Bryson, Narayanan. "Semantics derived automatically from language
corpora contain human-like biases." Science 356 (2017).
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..utils.validation import as_real_array
from .embeddings import EmbeddingTable, Neighbors, _check_k, _unit_rows, _word_tuples, as_table

__all__ = [
    "bias_direction",
    "project",
    "extreme_items",
    "ExtremeItems",
    "weat",
    "WEATResult",
    "hard_debias",
    "DebiasResult",
]

_DIRECTION_METHODS = ("pca", "mean")
# Permutations scored per block in the random WEAT test (bounds memory).
_PERMUTATION_BLOCK = 8192


# --------------------------------------------------------------------------- helpers


def _unit_direction(direction: Any, dim: int, name: str = "direction") -> np.ndarray:
    v = as_real_array(direction, name)
    if v.ndim != 1:
        raise ValueError(f"{name} must be a vector of shape (d,), got shape {v.shape}")
    if v.shape[0] != dim:
        raise ValueError(f"{name} has {v.shape[0]} dimensions, the table has {dim}")
    v = v.astype(np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    unit, zero = _unit_rows(v[None])
    if zero[0]:
        raise ValueError(f"{name} is the zero vector")
    return unit[0]


def _word_list(words: Any, name: str, *, allow_empty: bool = False) -> list[str]:
    if isinstance(words, str):
        raise ValueError(f"{name} must be a sequence of words, got the single string {words!r}")
    try:
        out = list(words)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of words, got {type(words).__name__}") from None
    for i, w in enumerate(out):
        if not isinstance(w, str):
            raise ValueError(f"{name}[{i}] must be a word (str), got {type(w).__name__} {w!r}")
    if not out and not allow_empty:
        raise ValueError(f"{name} is empty")
    seen: set[str] = set()
    for w in out:
        if w in seen:
            raise ValueError(f"{name} lists {w!r} twice")
        seen.add(w)
    return out


def _pair_indices(table: EmbeddingTable, pairs: Any, name: str) -> np.ndarray:
    """``(P, 2)`` rows of word pairs, each pair of two different known words."""
    ps = _word_tuples(pairs, 2, name, "(word, word)")
    for i, (x, y) in enumerate(ps):
        for j, w in enumerate((x, y)):
            if not isinstance(w, str):
                raise ValueError(f"{name}[{i}][{j}] must be a word (str), got {w!r}")
        if x == y:
            raise ValueError(f"{name}[{i}] pairs the word {x!r} with itself")
    flat = table.indices([w for p in ps for w in p], name)
    return flat.reshape(-1, 2)


# --------------------------------------------------------------------------- directions


def bias_direction(
    table: EmbeddingTable | Mapping[str, Any],
    pairs: Iterable[tuple[str, str]],
    *,
    method: str = "pca",
) -> np.ndarray:
    """A unit bias direction defined by word pairs such as ``[("he", "she"), ("man", "woman")]``.

    ``method="pca"`` (Bolukbasi et al. 2016): centre each pair on its mean,
    ``x̂ - μ`` and ``ŷ - μ`` with ``μ = (x̂ + ŷ) / 2``, stack the ``2P`` centred
    vectors and take their first principal component.  ``method="mean"``: the
    mean of the normalised differences ``(x̂ - ŷ) / ||x̂ - ŷ||``, scaled to unit
    norm.  Hats are unit word vectors.  The sign is chosen so that the first
    words of the pairs project higher on average.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    pairs : iterable of (word, word)
        Non-empty; two different words of the table per pair.
    method : {"pca", "mean"}

    Returns
    -------
    direction : np.ndarray [float64], shape (d,)
        Unit norm.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable
    >>> from mmalign.evaluation.bias import bias_direction
    >>> table = EmbeddingTable([[1, 1, 0], [-1, 1, 0], [1, 0, 1], [-1, 0, 1]],
    ...                        ["he", "she", "man", "woman"])
    >>> bias_direction(table, [("he", "she"), ("man", "woman")])
    array([1., 0., 0.])
    """
    table = as_table(table)
    if method not in _DIRECTION_METHODS:
        raise ValueError(f"method must be one of {list(_DIRECTION_METHODS)}, got {method!r}")
    idx = _pair_indices(table, pairs, "pairs")
    U = table.unit_vectors
    diff = U[idx[:, 0]] - U[idx[:, 1]]
    norms = np.linalg.norm(diff, axis=1)
    if (norms == 0).any():
        i = int(np.flatnonzero(norms == 0)[0])
        raise ValueError(f"pairs[{i}]: the two words have the same direction, their difference is zero")
    if method == "mean":
        v = (diff / norms[:, None]).mean(axis=0)
        if np.linalg.norm(v) == 0:
            raise ValueError("pairs: the normalised differences cancel out; no mean direction")
    else:
        mu = (U[idx[:, 0]] + U[idx[:, 1]]) / 2
        centred = np.concatenate([U[idx[:, 0]] - mu, U[idx[:, 1]] - mu])
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        v = vt[0].copy()
    v /= np.linalg.norm(v)
    lean = float(diff.mean(axis=0) @ v)
    if lean < 0 or (lean == 0 and v[np.flatnonzero(v)[0]] < 0):
        v = -v
    return v


def project(
    table: EmbeddingTable | Mapping[str, Any],
    words: Sequence[str] | None,
    direction: Any,
) -> np.ndarray:
    """Scalar projections of unit word vectors onto a direction (their cosines with it).

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    words : sequence of str, or None
        Words of the table; ``None`` for every word, in table order.
    direction : array-like, shape (d,)
        Scaled to unit norm first.

    Returns
    -------
    projections : np.ndarray [float64], shape (n_words,)
        ``ŵ · direction / ||direction||``, in ``[-1, 1]``.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable
    >>> from mmalign.evaluation.bias import project
    >>> table = EmbeddingTable([[3, 4], [0, 2]], ["nurse", "doctor"])
    >>> project(table, ["nurse", "doctor"], [2.0, 0.0])
    array([0.6, 0. ])
    """
    table = as_table(table)
    g = _unit_direction(direction, table.dim)
    if words is None:
        return table.unit_vectors @ g
    rows = table.indices(_word_list(words, "words"), "words")
    return table.unit_vectors[rows] @ g


@dataclass(frozen=True)
class ExtremeItems:
    """Result of :func:`extreme_items`.

    Attributes
    ----------
    positive : Neighbors
        The ``k`` words with the largest projections, largest first.
    negative : Neighbors
        The ``k`` words with the smallest projections, most negative first.
    """

    positive: Neighbors
    negative: Neighbors

    def __str__(self) -> str:
        width = max([len(w) for w in self.positive.words + self.negative.words] + [8])
        lines = [f"{'positive':<{width}}  {'proj':>7}    {'negative':<{width}}  {'proj':>7}"]
        for i in range(max(len(self.positive), len(self.negative))):
            left = (f"{self.positive.words[i]:<{width}}  {self.positive.scores[i]:+7.3f}"
                    if i < len(self.positive) else " " * (width + 9))
            right = (f"{self.negative.words[i]:<{width}}  {self.negative.scores[i]:+7.3f}"
                     if i < len(self.negative) else "")
            lines.append(f"{left}    {right}".rstrip())
        return "\n".join(lines)


def extreme_items(
    table: EmbeddingTable | Mapping[str, Any],
    direction: Any,
    k: int = 10,
    words: Sequence[str] | None = None,
) -> ExtremeItems:
    """The ``k`` most positive and ``k`` most negative words along a direction.

    The *extreme-items report* of Bolukbasi et al. (their occupations
    projected onto *he − she*).  Projections are those of :func:`project`;
    ties are broken by table order (by ``words`` order when given).

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    direction : array-like, shape (d,)
    k : int >= 1
        Words per end; fewer when there are fewer words.
    words : sequence of str or None
        Restrict the report to these words (e.g. occupations); ``None``: all.

    Returns
    -------
    report : ExtremeItems
        ``positive`` and ``negative`` lists of ``(word, projection)``;
        ``print(report)`` shows them side by side.

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable
    >>> from mmalign.evaluation.bias import extreme_items
    >>> table = EmbeddingTable([[1, 1], [-1, 1], [0.1, 1]], ["engineer", "nurse", "doctor"])
    >>> report = extreme_items(table, [1.0, 0.0], k=1)
    >>> report.positive.words, report.negative.words
    (('engineer',), ('nurse',))
    """
    table = as_table(table)
    k = _check_k(k)
    g = _unit_direction(direction, table.dim)
    names = list(table.words) if words is None else _word_list(words, "words")
    proj = project(table, names, g)
    up = np.argsort(-proj, kind="stable")[:k]
    down = np.argsort(proj, kind="stable")[:k]
    return ExtremeItems(
        positive=Neighbors(tuple(names[i] for i in up), proj[up].copy()),
        negative=Neighbors(tuple(names[i] for i in down), proj[down].copy()),
    )


# --------------------------------------------------------------------------- WEAT


@dataclass(frozen=True)
class WEATResult:
    """Result of :func:`weat`.

    Attributes
    ----------
    effect_size : float
        ``(mean_x s - mean_y s) / std_{X ∪ Y} s`` with the sample standard
        deviation (``ddof=1``); :func:`weat` refuses targets whose ``s`` are all
        equal.
    p_value : float
        One-sided permutation p-value (large ``effect_size`` is the
        alternative), see :func:`weat`.
    statistic : float
        Caliskan's test statistic ``Σ_x s(x) - Σ_y s(y)``.
    mean_x, mean_y, std : float
        The parts of the effect size.
    associations : dict str -> float
        ``s(w, A, B)`` for every target word.
    n_partitions : int
        Number of ways to split ``X ∪ Y`` into sets of sizes ``|X|``, ``|Y|``.
    n_permutations : int
        Partitions scored: all of them when ``exact``, else the random ones.
    exact : bool
        Whether every partition was enumerated.
    """

    effect_size: float
    p_value: float
    statistic: float
    mean_x: float
    mean_y: float
    std: float
    associations: dict
    n_partitions: int
    n_permutations: int
    exact: bool

    def __str__(self) -> str:
        kind = "exact" if self.exact else f"{self.n_permutations} random permutations"
        return f"WEAT effect size {self.effect_size:+.3f}, one-sided p = {self.p_value:.4g} ({kind})"


def weat(
    table: EmbeddingTable | Mapping[str, Any],
    X: Sequence[str],
    Y: Sequence[str],
    A: Sequence[str],
    B: Sequence[str],
    *,
    n_permutations: int = 10_000,
    seed: int | np.random.Generator = 0,
) -> WEATResult:
    """Word Embedding Association Test (Caliskan et al. 2017) with a permutation p-value.

    Targets ``X``, ``Y`` (e.g. career vs family words) and attributes ``A``,
    ``B`` (e.g. male vs female names).  For each target word
    ``s(w, A, B) = mean_{a ∈ A} cos(w, a) - mean_{b ∈ B} cos(w, b)``.

    * **effect size** ``d = (mean_{x ∈ X} s(x) - mean_{y ∈ Y} s(y)) / std_{w ∈ X ∪ Y} s(w)``,
      the standard deviation being the **sample** one (``ddof=1``, as in
      Caliskan et al.'s code; ``ddof=0`` would give ``d`` larger by
      ``sqrt(n / (n - 1))``, ``n = |X| + |Y|``).
    * **p-value**, one-sided: the fraction of re-partitions ``(X_i, Y_i)`` of
      ``X ∪ Y`` into sets of sizes ``|X|`` and ``|Y|`` whose statistic
      ``mean_{X_i} s - mean_{Y_i} s`` is ``>=`` the observed one (for
      ``|X| = |Y|`` the same ordering as Caliskan's ``Σ_X s - Σ_Y s``).
      When the number of partitions ``C(|X| + |Y|, |X|)`` is at most
      ``n_permutations`` every partition is enumerated and
      ``p = count / C`` exactly (the observed partition counts, so
      ``p >= 1 / C``).  Otherwise ``n_permutations`` random partitions are
      drawn (with replacement, from ``seed``) and
      ``p = (count + 1) / (n_permutations + 1)``, which counts the observed
      partition once and is never 0.  Small p: ``X`` is more associated with
      ``A`` than ``Y`` is; swap ``X`` and ``Y`` for the other tail.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    X, Y : sequence of str
        Target words; non-empty, no repeats, ``X`` and ``Y`` disjoint.
    A, B : sequence of str
        Attribute words; non-empty, no repeats, disjoint.
    n_permutations : int >= 1
        Exact test up to this many partitions, else this many random ones.
    seed : int or np.random.Generator
        For the random partitions.

    Returns
    -------
    result : WEATResult
        ``effect_size``, ``p_value``, ``statistic``, per-word ``associations``.

    Raises
    ------
    ValueError
        Naming the argument: unknown, repeated or shared words, bad
        ``n_permutations`` / ``seed``; naming ``X and Y`` when every target
        word has the same association (the effect size is then 0 / 0).

    Examples
    --------
    >>> from mmalign.evaluation.embeddings import EmbeddingTable
    >>> from mmalign.evaluation.bias import weat
    >>> words = ["salary", "office", "home", "family", "john", "paul", "amy", "lisa"]
    >>> vectors = [[1, 0.2, 1], [1, -0.1, 1], [-1, 0.1, 1], [-1, 0.3, 1],
    ...            [1, 0, 0.5], [1, 0.1, 0.5], [-1, 0, 0.5], [-1, 0.1, 0.5]]
    >>> result = weat(EmbeddingTable(vectors, words), ["salary", "office"], ["home", "family"],
    ...               ["john", "paul"], ["amy", "lisa"])
    >>> round(result.effect_size, 3), result.p_value, result.n_partitions, result.exact
    (1.732, 0.16666666666666666, 6, True)
    """
    table = as_table(table)
    sets = {}
    for name, words in (("X", X), ("Y", Y), ("A", A), ("B", B)):
        sets[name] = _word_list(words, name)
        table.indices(sets[name], name)
    for p, q in (("X", "Y"), ("A", "B")):
        both = sorted(set(sets[p]) & set(sets[q]))
        if both:
            raise ValueError(f"{p} and {q} must be disjoint, both contain {both[:5]}")
    if isinstance(n_permutations, (bool, np.bool_)) or not isinstance(n_permutations, numbers.Integral) \
            or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    elif isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        rng = None  # created only if needed
    else:
        raise ValueError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")

    U = table.unit_vectors
    targets = sets["X"] + sets["Y"]
    T = U[table.indices(targets)]
    s = (T @ U[table.indices(sets["A"])].T).mean(axis=1) - (T @ U[table.indices(sets["B"])].T).mean(axis=1)
    nx, ny = len(sets["X"]), len(sets["Y"])
    n = nx + ny
    sx, sy = s[:nx], s[nx:]
    observed = sx.mean() - sy.mean()
    std = float(s.std(ddof=1))
    total = s.sum()
    # Partition statistics equal to the observed one up to round-off count as ">=".
    tol = 1e-12 * (1.0 + np.abs(s).sum())
    if std <= tol:  # the effect size would be round-off divided by round-off
        raise ValueError(f"X and Y: every target word has the same association s(w, A, B) = "
                         f"{float(s[0]):.6g} (up to round-off); the effect size, divided by their "
                         "standard deviation, is undefined")
    effect = float(observed / std)

    def stats_of(sum_x: np.ndarray) -> np.ndarray:
        return sum_x / nx - (total - sum_x) / ny

    n_partitions = math.comb(n, nx)
    if n_partitions <= n_permutations:
        combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), nx)),
                             dtype=np.intp, count=n_partitions * nx).reshape(n_partitions, nx)
        count = int((stats_of(s[combos].sum(axis=1)) >= observed - tol).sum())
        p_value = count / n_partitions
        exact, used = True, n_partitions
    else:
        if rng is None:
            rng = np.random.default_rng(int(seed))
        count = 0
        done = 0
        while done < n_permutations:
            m = min(_PERMUTATION_BLOCK, n_permutations - done)
            pick = np.argsort(rng.random((m, n)), axis=1)[:, :nx]
            count += int((stats_of(s[pick].sum(axis=1)) >= observed - tol).sum())
            done += m
        p_value = (count + 1) / (n_permutations + 1)
        exact, used = False, int(n_permutations)
    return WEATResult(
        effect_size=effect,
        p_value=float(p_value),
        statistic=float(sx.sum() - sy.sum()),
        mean_x=float(sx.mean()),
        mean_y=float(sy.mean()),
        std=std,
        associations={w: float(v) for w, v in zip(targets, s)},
        n_partitions=n_partitions,
        n_permutations=used,
        exact=exact,
    )


# --------------------------------------------------------------------------- hard debiasing


@dataclass(frozen=True)
class DebiasResult:
    """Result of :func:`hard_debias`.

    Attributes
    ----------
    table : EmbeddingTable
        The debiased table (a new object; every row has unit norm).
    direction : np.ndarray [float64], shape (d,)
        The unit bias direction used.
    neutral_words : tuple of str
        The neutralised words (unknown ones dropped when ``skip_unknown``).
    neutral_before, neutral_after : np.ndarray [float64], shape (n_neutral,)
        Their projections onto ``direction`` before and after.
    equalize_pairs : tuple of (str, str)
    equalize_before, equalize_after : np.ndarray [float64], shape (n_pairs, 2)
        Projections of both words of each pair before and after.
    skipped : tuple
        Neutral words and pairs left out because they are not in the table.
    """

    table: EmbeddingTable
    direction: np.ndarray
    neutral_words: tuple
    neutral_before: np.ndarray
    neutral_after: np.ndarray
    equalize_pairs: tuple
    equalize_before: np.ndarray
    equalize_after: np.ndarray
    skipped: tuple

    def __str__(self) -> str:
        def mean_abs(v: np.ndarray) -> float:
            return float(np.abs(v).mean()) if v.size else float("nan")

        lines = [
            f"hard debiasing: {len(self.neutral_words)} neutral words, "
            f"{len(self.equalize_pairs)} equalised pairs",
            f"  neutral words  mean |projection| {mean_abs(self.neutral_before):.4f} -> "
            f"{mean_abs(self.neutral_after):.2e}",
        ]
        for (a, b), before, after in zip(self.equalize_pairs, self.equalize_before,
                                         self.equalize_after):
            lines.append(f"  {a}/{b}: {before[0]:+.3f}/{before[1]:+.3f} -> "
                         f"{after[0]:+.3f}/{after[1]:+.3f}")
        if self.skipped:
            lines.append(f"  skipped (not in table): {list(self.skipped)}")
        return "\n".join(lines)


def hard_debias(
    table: EmbeddingTable | Mapping[str, Any],
    direction: Any,
    neutral_words: Sequence[str],
    equalize_pairs: Iterable[tuple[str, str]] = (),
    *,
    skip_unknown: bool = False,
) -> DebiasResult:
    """Hard debiasing (Bolukbasi et al. 2016): neutralise, then equalise.

    All vectors are first scaled to unit norm (the method is defined on unit
    vectors; the returned table keeps them unit).  With ``g`` the unit
    direction:

    * **neutralise** each neutral word: ``w ← (w - (w·g) g) / ||w - (w·g) g||``,
      so its projection onto ``g`` becomes 0;
    * **equalise** each pair ``(a, b)``: with ``μ = (a + b) / 2`` and
      ``ν = μ - (μ·g) g``, set ``a ← ν + z g`` and ``b ← ν - z g`` with
      ``z = sqrt(1 - ||ν||²)``, its sign chosen so that ``a`` stays on the side
      it was on (``(a - b)·g >= 0`` gives ``z >= 0``).  The two words then have
      opposite projections of equal size and the same distance to every
      neutralised word.

    The input table is not modified.

    Parameters
    ----------
    table : EmbeddingTable or dict word -> vector
    direction : array-like, shape (d,)
        E.g. from :func:`bias_direction`; scaled to unit norm.
    neutral_words : sequence of str
        Words that should carry no component along ``direction``
        (occupations, ...).  May be empty.
    equalize_pairs : iterable of (str, str)
        Definitional pairs (``("he", "she")``, ``("king", "queen")``); a word
        may appear in one pair only and not among ``neutral_words``.
    skip_unknown : bool
        Drop neutral words and pairs not in the table (and list them in
        ``skipped``) instead of raising.

    Returns
    -------
    result : DebiasResult
        The new ``table`` and the projections before / after
        (``print(result)`` for a summary).

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.evaluation.embeddings import EmbeddingTable
    >>> from mmalign.evaluation.bias import hard_debias
    >>> table = EmbeddingTable([[0.6, 0.8, 0], [0.8, 0, 0.6], [-0.4, 0, 0.9]], ["nurse", "he", "she"])
    >>> result = hard_debias(table, [1.0, 0, 0], ["nurse"], [("he", "she")])
    >>> np.round(result.neutral_after, 12), np.round(result.equalize_after, 3)
    (array([0.]), array([[ 0.654, -0.654]]))
    """
    table = as_table(table)
    g = _unit_direction(direction, table.dim)
    neutral = _word_list(neutral_words, "neutral_words", allow_empty=True)
    if isinstance(equalize_pairs, (str, bytes)):
        raise ValueError("equalize_pairs must be a sequence of (word, word) pairs, got a string")
    pairs = list(equalize_pairs)
    if pairs:
        pairs = _word_tuples(pairs, 2, "equalize_pairs", "(word, word)")
    for i, (a, b) in enumerate(pairs):
        for j, w in enumerate((a, b)):
            if not isinstance(w, str):
                raise ValueError(f"equalize_pairs[{i}][{j}] must be a word (str), got {w!r}")
        if a == b:
            raise ValueError(f"equalize_pairs[{i}] pairs the word {a!r} with itself")
    skipped: list = []
    if skip_unknown:
        skipped = [w for w in neutral if w not in table]
        skipped += [p for p in pairs if not (p[0] in table and p[1] in table)]
        neutral = [w for w in neutral if w in table]
        pairs = [p for p in pairs if p[0] in table and p[1] in table]
    seen: dict[str, int] = {}
    for i, (a, b) in enumerate(pairs):
        for w in (a, b):
            if w in seen:
                raise ValueError(f"equalize_pairs: {w!r} appears in pairs {seen[w]} and {i}")
            seen[w] = i
    overlap = sorted(set(neutral) & set(seen))
    if overlap:
        raise ValueError(f"neutral_words and equalize_pairs share words: {overlap[:5]}")
    n_idx = table.indices(neutral, "neutral_words")
    p_idx = (table.indices([w for p in pairs for w in p], "equalize_pairs").reshape(-1, 2)
             if pairs else np.empty((0, 2), dtype=np.intp))

    E = table.unit_vectors.copy()
    neutral_before = E[n_idx] @ g
    equalize_before = (E[p_idx] @ g).reshape(-1, 2)

    if n_idx.size:
        rest = E[n_idx] - np.outer(E[n_idx] @ g, g)
        norms = np.linalg.norm(rest, axis=1)
        tiny = norms <= 1e-12
        if tiny.any():
            w = neutral[int(np.flatnonzero(tiny)[0])]
            raise ValueError(f"neutral_words: {w!r} lies along the direction; nothing is left "
                             "after removing it")
        E[n_idx] = rest / norms[:, None]
    for ia, ib in p_idx:
        mu = (E[ia] + E[ib]) / 2
        nu = mu - (mu @ g) * g
        z = math.sqrt(max(0.0, 1.0 - float(nu @ nu)))
        if (E[ia] - E[ib]) @ g < 0:
            z = -z
        E[ia] = nu + z * g
        E[ib] = nu - z * g
    new = table.with_vectors(E)
    U = new.unit_vectors
    return DebiasResult(
        table=new,
        direction=g,
        neutral_words=tuple(neutral),
        neutral_before=neutral_before,
        neutral_after=U[n_idx] @ g,
        equalize_pairs=tuple(tuple(p) for p in pairs),
        equalize_before=equalize_before,
        equalize_after=(U[p_idx] @ g).reshape(-1, 2),
        skipped=tuple(skipped),
    )
