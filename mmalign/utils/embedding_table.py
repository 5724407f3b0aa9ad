"""A table of word vectors (:class:`EmbeddingTable`): the type that data sets build and
evaluations read, so it sits below both (numpy only).

The table stores its vectors as a read-only float64 copy, with their unit-norm rows
(all similarities in mmalign are cosine similarities); ``mmalign.evaluation.embeddings``
re-exports it.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .validation import as_real_array

__all__ = ["EmbeddingTable", "check_word", "unit_rows"]


def check_word(word: Any, name: str) -> str:
    """``word`` if it is a ``str``, else a ``ValueError`` naming ``name``."""
    if not isinstance(word, str):
        raise ValueError(f"{name} must be a word (str), got {type(word).__name__} {word!r}")
    return word


def unit_rows(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows scaled to unit Euclidean norm, at any magnitude.

    Parameters
    ----------
    arr : np.ndarray [shape=(n, d), float64]
        Finite.

    Returns
    -------
    unit : np.ndarray [shape=(n, d)]
        ``arr[i] / ||arr[i]||``; all-zero rows stay zero.
    zero : np.ndarray [shape=(n,), bool]
        The all-zero rows, whose direction (and cosine) is undefined.
    """
    # divided by its largest magnitude first, a row's squared norm neither overflows
    # (values near 1e300) nor underflows (near 1e-300)
    top = np.abs(arr).max(axis=1, keepdims=True)
    zero = top[:, 0] == 0
    scaled = arr / np.where(top > 0, top, 1.0)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return scaled / np.where(norms > 0, norms, 1.0), zero


class EmbeddingTable:
    """A table of word vectors: ``V`` distinct words, each with a ``d``-dimensional vector.

    Parameters
    ----------
    vectors : array-like or torch.Tensor, shape (V, d)
        One row per word; real, finite, no all-zero row (cosine would be
        undefined).  Stored as a float64 **copy** that is read-only, so neither
        the caller's array nor the table can be changed afterwards.
    words : sequence of str, length V
        The words, in row order; distinct, case-sensitive.

    Attributes
    ----------
    words : tuple of str, length V
    vectors : np.ndarray [float64], shape (V, d), read-only
    unit_vectors : np.ndarray [float64], shape (V, d), read-only
        ``vectors`` with every row scaled to unit Euclidean norm.
    dim : int
        ``d``.

    See Also
    --------
    EmbeddingTable.from_dict : build from a ``{word: vector}`` mapping.

    Examples
    --------
    >>> from mmalign.utils.embedding_table import EmbeddingTable
    >>> table = EmbeddingTable([[3.0, 4.0], [1.0, 0.0]], ["cat", "dog"])
    >>> len(table), table.dim, "cat" in table, table.index("dog")
    (2, 2, True, 1)
    >>> table.unit("cat")
    array([0.6, 0.8])
    """

    def __init__(self, vectors: Any, words: Sequence[str]):
        arr = as_real_array(vectors, "vectors")
        if arr.ndim != 2:
            raise ValueError(f"vectors must have shape (V, d), got {arr.ndim}-d shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError("vectors is empty: the table needs at least one word")
        if arr.shape[1] == 0:
            raise ValueError(f"vectors has no dimensions: shape {arr.shape}")
        arr = np.array(arr, dtype=np.float64, copy=True)
        if not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise ValueError(f"vectors contains NaN or infinite values (first in row {bad})")
        if isinstance(words, (str, bytes)):
            raise ValueError("words must be a sequence of str, got a single string")
        try:
            words = tuple(words)
        except TypeError:
            raise ValueError(f"words must be a sequence of str, got {type(words).__name__}") from None
        if len(words) != arr.shape[0]:
            raise ValueError(f"vectors has {arr.shape[0]} rows but words has {len(words)} entries")
        index: dict[str, int] = {}
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise ValueError(f"words[{i}] must be a str, got {type(w).__name__} {w!r}")
            if w in index:
                raise ValueError(f"words has duplicates: {w!r} at positions {index[w]} and {i}")
            index[w] = i
        unit, zero = unit_rows(arr)
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise ValueError(f"vectors row {i} (word {words[i]!r}) is all zeros: its cosine is undefined")
        arr.flags.writeable = False
        unit.flags.writeable = False
        self._vectors = arr
        self._unit = unit
        self._words = words
        self._index = index

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "EmbeddingTable":
        """Build a table from ``{word: vector}`` (insertion order becomes row order).

        Examples
        --------
        >>> from mmalign.utils.embedding_table import EmbeddingTable
        >>> EmbeddingTable.from_dict({"a": [1.0, 0.0], "b": [0.0, 2.0]}).words
        ('a', 'b')
        """
        if not isinstance(mapping, Mapping):
            raise ValueError(f"mapping must be a dict word -> vector, got {type(mapping).__name__}")
        if not mapping:
            raise ValueError("mapping is empty: the table needs at least one word")
        words = list(mapping.keys())
        rows = []
        dim = None
        for w in words:
            v = as_real_array(mapping[w], f"mapping[{w!r}]")
            if v.ndim != 1:
                raise ValueError(f"mapping[{w!r}] must be a vector of shape (d,), got shape {v.shape}")
            if dim is None:
                dim = v.shape[0]
            elif v.shape[0] != dim:
                raise ValueError(f"mapping[{w!r}] has {v.shape[0]} dimensions, the first vector has {dim}")
            rows.append(v)
        return cls(np.stack(rows), words)

    # ----------------------------------------------------------------- access

    @property
    def words(self) -> tuple[str, ...]:
        return self._words

    @property
    def vectors(self) -> np.ndarray:
        return self._vectors

    @property
    def unit_vectors(self) -> np.ndarray:
        return self._unit

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def __len__(self) -> int:
        return len(self._words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._words)

    def __repr__(self) -> str:
        head = ", ".join(repr(w) for w in self._words[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"EmbeddingTable(n_words={len(self)}, dim={self.dim}, words=({head}{more}))"

    def index(self, word: str, name: str = "word") -> int:
        """Row of ``word``; ``ValueError`` naming ``name`` if it is not in the table."""
        check_word(word, name)
        try:
            return self._index[word]
        except KeyError:
            raise ValueError(f"{name} {word!r} is not in the table ({len(self)} words)") from None

    def indices(self, words: Iterable[str], name: str = "words") -> np.ndarray:
        """Rows of ``words``, shape ``(n,)``; ``ValueError`` naming ``name`` for unknown words."""
        if isinstance(words, str):
            raise ValueError(f"{name} must be a sequence of words, got the single string {words!r}")
        try:
            words = list(words)
        except TypeError:
            raise ValueError(f"{name} must be a sequence of words, got {type(words).__name__}") from None
        unknown = [w for w in words if not (isinstance(w, str) and w in self._index)]
        if unknown:
            for i, w in enumerate(words):
                check_word(w, f"{name}[{i}]")
            shown = ", ".join(repr(w) for w in unknown[:10])
            raise ValueError(f"{name} has {len(unknown)} word(s) not in the table: {shown}")
        return np.array([self._index[w] for w in words], dtype=np.intp)

    def vector(self, word: str) -> np.ndarray:
        """A copy of the vector of ``word``, shape ``(d,)``."""
        return self._vectors[self.index(word)].copy()

    __getitem__ = vector

    def unit(self, word: str) -> np.ndarray:
        """A copy of the unit-norm vector of ``word``, shape ``(d,)``."""
        return self._unit[self.index(word)].copy()

    def subset(self, words: Iterable[str]) -> "EmbeddingTable":
        """A new table with only ``words`` (in the given order)."""
        words = list(words) if not isinstance(words, str) else words
        rows = self.indices(words)
        return EmbeddingTable(self._vectors[rows], [self._words[i] for i in rows])

    def with_vectors(self, vectors: Any) -> "EmbeddingTable":
        """A new table with the same words and new ``vectors`` of shape ``(V, d')``."""
        return EmbeddingTable(vectors, self._words)

    def to_dict(self) -> dict[str, np.ndarray]:
        """``{word: vector copy}`` in table order."""
        return {w: self._vectors[i].copy() for i, w in enumerate(self._words)}
