"""Sequence-to-sequence benchmark tasks with gold word alignments.

Three offline tasks for attention aligners (additive / Bahdanau attention),
each generated from a seed and each sample carrying its gold alignment:

- :func:`reversal_task` -- the target is the reversed source; the gold
  alignment is the anti-diagonal.
- :func:`reordering_task` -- a small synthetic grammar translated from an
  English-like SVO language into an SOV language with post-nominal adjectives,
  many-to-one merges (``"does not" -> "NEG"``, compound nouns -> one token) and
  target case markers with no source word.
- :func:`date_task` -- dates rendered by Babel (CLDR locale data) in many
  locales and formats, character by character, to ISO ``YYYY-MM-DD``; gold
  links come from the character spans of the rendered year, month and day
  fields.

Conventions
-----------
*Links* are ``(s, t)`` pairs: position ``s`` of the **source** and position
``t`` of the **target**, both 0-based indices into
:attr:`Seq2SeqExample.source` and :attr:`Seq2SeqExample.target` (no BOS/EOS).
This is the orientation of the :class:`mmalign.alignment.Alignment` that
attention aligners return from ``align(source, target)``: source on side x
(rows), target on side y (columns), so a gold matrix is
``(n_source, n_target)``.

Gold links follow Och & Ney (2003): *sure* links ``S`` and *possible* links
``P`` with ``S ⊆ P`` (every sure link is also possible; the sample type
enforces it). Target tokens with no link at all (date separators ``-``) are
meant to be left out of the scoring, see
:func:`mmalign.metrics.alignment_error_rate` (``ignore_unlinked_targets``).

*Vocabulary ids*: ``0 = <pad>``, ``1 = <bos>``, ``2 = <eos>``, ``3 = <unk>``,
then the symbols (see :class:`Vocabulary`). :func:`encode_batch` appends EOS
after the target (and optionally after the source), so gold positions are
unchanged by encoding: the decoder step that predicts ``target_output[:, t]``
attends for target position ``t`` (column ``t`` of an alignment).
"""

from __future__ import annotations

import datetime as _dt
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..utils.validation import check_int

__all__ = [
    "Vocabulary",
    "Seq2SeqExample",
    "Seq2SeqBatch",
    "reversal_task",
    "reordering_task",
    "date_task",
    "build_vocabularies",
    "encode_batch",
    "gold_alignment",
    "DATE_LOCALES",
    "DATE_FORMATS",
]

Link = tuple[int, int]  # (source position, target position)


# --------------------------------------------------------------------------- helpers


def _as_rng(seed: Any, name: str = "seed") -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise ValueError(f"{name} must be a non-negative integer or a numpy Generator, got {seed!r}")


# --------------------------------------------------------------------------- vocabulary


class Vocabulary:
    """Token <-> id mapping with four reserved ids.

    ``0 = <pad>``, ``1 = <bos>``, ``2 = <eos>``, ``3 = <unk>``; the symbols
    follow in the order given (duplicates dropped, first occurrence kept).

    Parameters
    ----------
    symbols : iterable of str
        The tokens. Must not contain the special tokens themselves.

    Attributes
    ----------
    itos : tuple of str
        Id -> token, specials first; ``len(vocab) == len(itos)``.

    Examples
    --------
    >>> from mmalign.datasets import Vocabulary
    >>> v = Vocabulary(["a", "b", "c"])
    >>> len(v), v["a"], v["zzz"]
    (7, 4, 3)
    >>> v.encode(["a", "c"], bos=True, eos=True)
    [1, 4, 6, 2]
    >>> v.decode([1, 4, 6, 2, 0, 0])
    ['a', 'c']
    """

    PAD = 0
    BOS = 1
    EOS = 2
    UNK = 3
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")

    def __init__(self, symbols: Iterable[str]) -> None:
        itos = list(self.SPECIALS)
        stoi = {s: i for i, s in enumerate(itos)}
        try:
            items = list(symbols)
        except TypeError:
            raise ValueError(f"symbols must be an iterable of str, got {symbols!r}") from None
        for s in items:
            if not isinstance(s, str):
                raise ValueError(f"symbols must hold str, got {s!r}")
            if s in self.SPECIALS:
                raise ValueError(f"symbols must not contain the special token {s!r}")
            if s not in stoi:
                stoi[s] = len(itos)
                itos.append(s)
        self.itos: tuple[str, ...] = tuple(itos)
        self._stoi = stoi

    @classmethod
    def build(cls, *token_lists: Iterable[Sequence[str]]) -> "Vocabulary":
        """Vocabulary of every token in the given lists of sequences, sorted.

        Sorting makes the ids independent of sample order and sample count.

        Examples
        --------
        >>> from mmalign.datasets import Vocabulary
        >>> Vocabulary.build([["b", "a"]], [["c", "a"]]).itos[4:]
        ('a', 'b', 'c')
        """
        seen: set[str] = set()
        for seqs in token_lists:
            for seq in seqs:
                seen.update(seq)
        return cls(sorted(seen))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __getitem__(self, token: str) -> int:
        return self._stoi.get(token, self.UNK)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocabulary({len(self) - len(self.SPECIALS)} symbols + 4 specials)"

    def encode(self, tokens: Iterable[str], *, bos: bool = False, eos: bool = False) -> list[int]:
        """Token ids; unknown tokens map to ``<unk>`` (3).

        Parameters
        ----------
        tokens : iterable of str
        bos, eos : bool
            Prepend ``<bos>`` / append ``<eos>``.

        Returns
        -------
        ids : list of int
        """
        ids = [self._stoi.get(t, self.UNK) for t in tokens]
        return ([self.BOS] if bos else []) + ids + ([self.EOS] if eos else [])

    def decode(self, ids: Iterable[int], *, strip: bool = True) -> list[str]:
        """Tokens of ``ids`` (a list, numpy array or 1-D tensor).

        Parameters
        ----------
        ids : iterable of int
        strip : bool
            If True, stop at the first ``<eos>`` and drop ``<pad>`` and
            ``<bos>``; ``<unk>`` is kept. If False, map every id.

        Returns
        -------
        tokens : list of str
        """
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"ids: id {i} is outside the vocabulary of size {len(self.itos)}")
            if strip:
                if i == self.EOS:
                    break
                if i in (self.PAD, self.BOS):
                    continue
            out.append(self.itos[i])
        return out


# --------------------------------------------------------------------------- sample types


@dataclass
class Seq2SeqExample:
    """One source/target pair with gold sure and possible links.

    Attributes
    ----------
    source : list of str, length S
    target : list of str, length T
    sure : frozenset of (s, t)
        Sure links, source position first (side x), then target position (side y).
    possible : frozenset of (s, t)
        Possible links; always a superset of ``sure`` (sure links are added
        on construction).
    meta : dict
        Task-specific details (e.g. for dates: locale, format, pattern, the
        date, the character spans of the fields).

    Examples
    --------
    >>> from mmalign.datasets import Seq2SeqExample
    >>> ex = Seq2SeqExample(["a", "b", "c"], ["C", "B"], sure={(2, 0), (1, 1)})
    >>> sorted(ex.possible)
    [(1, 1), (2, 0)]
    """

    source: list[str]
    target: list[str]
    sure: frozenset = frozenset()
    possible: frozenset = frozenset()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = list(self.source)
        self.target = list(self.target)
        if not self.source:
            raise ValueError("source must not be empty")
        if not self.target:
            raise ValueError("target must not be empty")
        self.sure = self._links(self.sure, "sure")
        self.possible = self._links(self.possible, "possible") | self.sure

    def _links(self, links: Iterable, name: str) -> frozenset:
        out = set()
        for link in links:
            try:
                s, t = (int(v) for v in link)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: links must be (s, t) pairs of ints, got {link!r}") from None
            if not (0 <= s < len(self.source) and 0 <= t < len(self.target)):
                raise ValueError(
                    f"{name}: link {(s, t)} outside (n_source, n_target) = "
                    f"({len(self.source)}, {len(self.target)})"
                )
            out.add((s, t))
        return frozenset(out)


def gold_alignment(example: Seq2SeqExample) -> tuple[np.ndarray, np.ndarray]:
    """Gold links of one example as boolean matrices.

    Parameters
    ----------
    example : Seq2SeqExample

    Returns
    -------
    sure, possible : np.ndarray [bool], shape (n_source, n_target)
        ``sure[s, t]`` is True for a sure link; ``possible ⊇ sure``.

    Examples
    --------
    >>> from mmalign.datasets import reversal_task, gold_alignment
    >>> ex = reversal_task(1, min_len=3, max_len=3, seed=0)[0]
    >>> sure, possible = gold_alignment(ex)
    >>> sure.astype(int)
    array([[0, 0, 1],
           [0, 1, 0],
           [1, 0, 0]])
    """
    shape = (len(example.source), len(example.target))
    sure = np.zeros(shape, dtype=bool)
    possible = np.zeros(shape, dtype=bool)
    for s, t in example.sure:
        sure[s, t] = True
    for s, t in example.possible:
        possible[s, t] = True
    return sure, possible


# --------------------------------------------------------------------------- reversal


def reversal_task(
    n: int,
    min_len: int = 3,
    max_len: int = 12,
    vocab_size: int = 20,
    seed: int | np.random.Generator = 0,
) -> list[Seq2SeqExample]:
    """Sequence reversal: the target is the source read backwards.

    Parameters
    ----------
    n : int >= 1
        Number of examples.
    min_len, max_len : int
        Source lengths are drawn uniformly from ``[min_len, max_len]``.
    vocab_size : int >= 1
        Symbols are ``"s0" .. "s{vocab_size-1}"``, drawn uniformly with
        replacement. Source and target share the symbols.
    seed : int or np.random.Generator

    Returns
    -------
    examples : list of Seq2SeqExample
        ``target[t] = source[L - 1 - t]``; sure (= possible) links
        ``{(L - 1 - t, t)}`` -- the anti-diagonal.

    Examples
    --------
    >>> from mmalign.datasets import reversal_task
    >>> ex = reversal_task(2, min_len=4, max_len=4, vocab_size=5, seed=1)[0]
    >>> ex.source, ex.target
    (['s2', 's2', 's3', 's4'], ['s4', 's3', 's2', 's2'])
    >>> sorted(ex.sure)
    [(0, 3), (1, 2), (2, 1), (3, 0)]
    """
    n = check_int(n, "n", 1)
    min_len = check_int(min_len, "min_len", 1)
    max_len = check_int(max_len, "max_len", 1)
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len = {min_len}, got {max_len}")
    vocab_size = check_int(vocab_size, "vocab_size", 1)
    rng = _as_rng(seed)
    out = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len + 1))
        src = [f"s{k}" for k in rng.integers(0, vocab_size, size=length)]
        links = {(length - 1 - t, t) for t in range(length)}
        out.append(Seq2SeqExample(src, src[::-1], sure=links, meta={"task": "reversal"}))
    return out


# --------------------------------------------------------------------------- reordering grammar

_DETERMINERS = ("the", "a", "this")
_ADJECTIVES = ("big", "small", "red", "old", "happy", "quick", "green", "tall", "young", "angry")
_NOUNS = ("dog", "cat", "man", "woman", "bird", "car", "book", "apple", "child", "teacher",
          "horse", "ice", "fire")
# (modifier, head) -> one target token; "apple", "ice" and "fire" also occur alone.
_COMPOUNDS = (("ice", "cream"), ("fire", "truck"), ("apple", "pie"), ("police", "officer"),
              ("tea", "cup"))
# (3rd-person form, base form after "does not")
_VERBS = (("sees", "see"), ("likes", "like"), ("eats", "eat"), ("finds", "find"),
          ("chases", "chase"), ("helps", "help"), ("pushes", "push"), ("calls", "call"))
_SUBJECT_MARKER = "ga"
_OBJECT_MARKER = "o"
_NEGATION = "NEG"
_MANY_TO_ONE = ("head", "all", "possible")


def _translate(word: str) -> str:
    return word.upper()


def _noun_phrase(rng: np.random.Generator, max_adjectives: int, p_compound: float,
                 p_determiner: float) -> dict:
    det = str(rng.choice(_DETERMINERS)) if rng.random() < p_determiner else None
    n_adj = int(rng.integers(0, max_adjectives + 1))
    adjs = [str(a) for a in rng.choice(_ADJECTIVES, size=n_adj, replace=False)] if n_adj else []
    if rng.random() < p_compound:
        noun = tuple(str(w) for w in _COMPOUNDS[int(rng.integers(len(_COMPOUNDS)))])
    else:
        noun = (str(rng.choice(_NOUNS)),)
    return {"det": det, "adjs": adjs, "noun": noun}


def reordering_task(
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    max_adjectives: int = 2,
    p_negation: float = 0.3,
    p_compound: float = 0.2,
    p_determiner: float = 0.7,
    sov: bool = True,
    swap_adjectives: bool = True,
    merge: bool = True,
    case_markers: bool = True,
    many_to_one: str = "head",
) -> list[Seq2SeqExample]:
    """Translation in a small synthetic grammar that reorders words.

    Source sentences (English-like, SVO)::

        [det] adj* noun  (verb | "does not" verb-base)  [det] adj* noun

    where a noun is one word or a two-word compound (``"ice cream"``).
    Translation rules (each can be switched off):

    - ``sov``: SVO -> SOV, the verb moves to the end;
    - ``swap_adjectives``: adjective-noun swap, ``"big red dog" -> "DOG BIG RED"``;
    - ``merge``: many-to-one, ``"does not" -> "NEG"`` (placed after the verb)
      and a compound noun -> one token (``"ice cream" -> "ICE_CREAM"``);
      without it the words are translated one by one (``"DOES NOT"``);
    - ``case_markers``: the target marks the subject with ``"ga"`` and the
      object with ``"o"`` (after the noun phrase), words with no source word.

    Words are translated by upper-casing; determiners are dropped (source
    words with no link). So with every rule on,
    ``"the big dog does not see a cat" -> "DOG BIG ga CAT o SEE NEG"``.

    Gold links
    ----------
    - 1-1 correspondences (nouns, adjectives, verbs): sure.
    - Many-to-one (``NEG`` <- ``does not``; a compound token <- its two words),
      set by ``many_to_one``: ``"head"`` (default) -- sure to the head word
      (``"not"``; the second word of the compound, ``"cream"``) and possible
      to the other word; ``"all"`` -- sure to every word; ``"possible"`` --
      possible to every word, no sure link.
    - Case markers: possible links to every source word of the noun phrase
      they mark (determiner, adjectives, noun words), no sure link.
    - Determiners: no link.

    Parameters
    ----------
    n : int >= 1
        Number of sentences.
    seed : int or np.random.Generator
    max_adjectives : int >= 0
        Adjectives per noun phrase are drawn from ``[0, max_adjectives]``
        (distinct within a phrase).
    p_negation, p_compound, p_determiner : float in [0, 1]
        Probability of a negated verb, of a compound noun (per phrase), of a
        determiner (per phrase).
    sov, swap_adjectives, merge, case_markers : bool
        The rules above.
    many_to_one : {"head", "all", "possible"}
        Link convention of many-to-one targets.

    Returns
    -------
    examples : list of Seq2SeqExample
        ``meta`` holds ``"task": "reordering"``.

    Examples
    --------
    >>> from mmalign.datasets import reordering_task
    >>> ex = reordering_task(1, seed=29)[0]
    >>> " ".join(ex.source)
    'a red book does not chase the fire truck'
    >>> " ".join(ex.target)
    'BOOK RED ga FIRE_TRUCK o CHASE NEG'
    >>> sorted(ex.sure)  # "not" (4) sure to NEG (6), "truck" (8) to FIRE_TRUCK (3)
    [(1, 1), (2, 0), (4, 6), (5, 5), (8, 3)]
    >>> sorted(ex.possible - ex.sure)  # "a red book" to "ga" (2), "the fire truck" to "o" (4)
    [(0, 2), (1, 2), (2, 2), (3, 6), (6, 4), (7, 3), (7, 4), (8, 4)]
    """
    n = check_int(n, "n", 1)
    max_adjectives = check_int(max_adjectives, "max_adjectives", 0)
    if max_adjectives > len(_ADJECTIVES):
        raise ValueError(f"max_adjectives must be <= {len(_ADJECTIVES)}, got {max_adjectives}")
    for name, p in (("p_negation", p_negation), ("p_compound", p_compound),
                    ("p_determiner", p_determiner)):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    if many_to_one not in _MANY_TO_ONE:
        raise ValueError(f"many_to_one must be one of {_MANY_TO_ONE}, got {many_to_one!r}")
    rng = _as_rng(seed)

    examples = []
    for _ in range(n):
        subj = _noun_phrase(rng, max_adjectives, p_compound, p_determiner)
        verb3, verb_base = _VERBS[int(rng.integers(len(_VERBS)))]
        negated = bool(rng.random() < p_negation)
        obj = _noun_phrase(rng, max_adjectives, p_compound, p_determiner)

        # ---- source, remembering positions
        source: list[str] = []

        def emit_np(np_: dict) -> dict:
            pos: dict = {}
            if np_["det"] is not None:
                pos["det"] = len(source)
                source.append(np_["det"])
            pos["adjs"] = []
            for a in np_["adjs"]:
                pos["adjs"].append(len(source))
                source.append(a)
            pos["noun"] = list(range(len(source), len(source) + len(np_["noun"])))
            source.extend(np_["noun"])
            return pos

        subj_pos = emit_np(subj)
        if negated:
            neg_pos = [len(source), len(source) + 1]
            source.extend(["does", "not"])
            verb_pos = len(source)
            source.append(verb_base)
        else:
            neg_pos = []
            verb_pos = len(source)
            source.append(verb3)
        obj_pos = emit_np(obj)

        # ---- target as (token, sure source positions, possible source positions)
        target: list[tuple[str, list[int], list[int]]] = []

        def group(words: Sequence[str], positions: Sequence[int]) -> list:
            """Many-to-one target item(s) for a multi-word source group (head last)."""
            if len(words) == 1:
                return [(_translate(words[0]), [positions[0]], [])]
            if not merge:
                return [(_translate(w), [p], []) for w, p in zip(words, positions)]
            token = "_".join(_translate(w) for w in words)
            if many_to_one == "head":
                return [(token, [positions[-1]], list(positions[:-1]))]
            if many_to_one == "all":
                return [(token, list(positions), [])]
            return [(token, [], list(positions))]

        def np_target(np_: dict, pos: dict, marker: str) -> None:
            noun_items = group(np_["noun"], pos["noun"])
            adj_items = [(_translate(a), [p], []) for a, p in zip(np_["adjs"], pos["adjs"])]
            target.extend(noun_items + adj_items if swap_adjectives else adj_items + noun_items)
            if case_markers:
                phrase = ([pos["det"]] if "det" in pos else []) + pos["adjs"] + pos["noun"]
                target.append((marker, [], phrase))

        neg_items = group(["does", "not"], neg_pos) if negated else []
        if negated and merge:
            neg_items = [(_NEGATION,) + tuple(neg_items[0][1:])]
        verb_items = [(_translate(verb_base), [verb_pos], [])]

        np_target(subj, subj_pos, _SUBJECT_MARKER)
        if sov:
            np_target(obj, obj_pos, _OBJECT_MARKER)
            # SOV: negation is a verb suffix when merged, keeps its place before the verb otherwise
            target.extend(verb_items + neg_items if merge else neg_items + verb_items)
        else:
            target.extend(neg_items + verb_items)
            np_target(obj, obj_pos, _OBJECT_MARKER)

        sure = {(s, t) for t, (_, ss, _) in enumerate(target) for s in ss}
        possible = {(s, t) for t, (_, _, ps) in enumerate(target) for s in ps}
        examples.append(Seq2SeqExample(
            source, [tok for tok, _, _ in target], sure=sure, possible=possible,
            meta={"task": "reordering", "negated": negated},
        ))
    return examples


# --------------------------------------------------------------------------- dates

DATE_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR",
                "sv_SE", "pl_PL", "da_DK", "fi_FI")
"""Default locales of :func:`date_task` (all write Latin digits)."""

DATE_FORMATS = ("short", "medium", "long", "full",
                "d MMMM y", "MMM d, y", "dd.MM.yyyy", "y/M/d", "EEE, d MMM yy", "yyyyMMdd")
"""Default formats of :func:`date_task`: the four CLDR widths of each locale and
six custom patterns (month and weekday names localised)."""

_CLDR_WIDTHS = ("short", "medium", "long", "full")
_YEAR, _MONTH, _DAY = "year", "month", "day"
_FIELD_OF = {"y": _YEAR, "M": _MONTH, "L": _MONTH, "d": _DAY}
_UNSUPPORTED = {"Y": "week-based year", "u": "extended year", "U": "cyclic year",
                "r": "related Gregorian year"}


def _pattern_tokens(locale: str, fmt: str) -> tuple[str, list]:
    """(pattern string, babel tokens) of a CLDR width or a custom pattern, validated."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import tokenize_pattern

    try:
        loc = Locale.parse(locale)
    except (UnknownLocaleError, ValueError, TypeError) as err:
        raise ValueError(f"locales: unknown locale {locale!r} ({err})") from None
    if not isinstance(fmt, str) or not fmt:
        raise ValueError(f"formats: each format must be a non-empty str, got {fmt!r}")
    pattern = loc.date_formats[fmt].pattern if fmt in _CLDR_WIDTHS else fmt
    try:
        tokens = tokenize_pattern(pattern)
    except Exception as err:  # babel raises plain exceptions on bad patterns
        raise ValueError(f"formats: cannot parse pattern {pattern!r}: {err}") from None
    seen: dict[str, int] = {}
    for kind, value in tokens:
        if kind != "field":
            continue
        char, count = value
        if char in _UNSUPPORTED:
            raise ValueError(
                f"formats: pattern {pattern!r} ({locale}) uses {char!r} ({_UNSUPPORTED[char]}); "
                "use 'y' for the calendar year"
            )
        if char in ("M", "L") and count == 5:
            raise ValueError(f"formats: pattern {pattern!r} uses a narrow month name (5 letters), "
                             "which does not identify the month")
        if char in _FIELD_OF:
            f = _FIELD_OF[char]
            seen[f] = seen.get(f, 0) + 1
    for f in (_YEAR, _MONTH, _DAY):
        if seen.get(f, 0) != 1:
            raise ValueError(
                f"formats: pattern {pattern!r} ({locale}) must render the {f} exactly once, "
                f"found {seen.get(f, 0)} times"
            )
    return pattern, tokens


def _render_with_spans(date: _dt.date, locale: str, tokens: list) -> tuple[str, dict]:
    """Render field by field; spans are [start, end) character offsets of year/month/day."""
    from babel.dates import DateTimeFormat

    fmt = DateTimeFormat(date, locale)
    parts: list[str] = []
    spans: dict[str, tuple[int, int, str, int]] = {}
    pos = 0
    for kind, value in tokens:
        if kind == "chars":
            text = value
        else:
            char, count = value
            text = fmt[char * count]
            if char in _FIELD_OF:
                spans[_FIELD_OF[char]] = (pos, pos + len(text), char, count)
        parts.append(text)
        pos += len(text)
    return "".join(parts), spans


def _numeric_links(t_first: int, width: int, start: int, end: int) -> tuple[set, set]:
    """Right-aligned positional sure links ``(s, t)`` of a ``width``-digit target field to a
    numeric span; target digits beyond the rendered ones (zero padding, century) are possible
    to the span."""
    sure, possible = set(), set()
    for k in range(width):
        for s in range(start, end):
            possible.add((s, t_first + k))
        s_pos = end - (width - k)  # right-aligned
        if s_pos >= start:
            sure.add((s_pos, t_first + k))
    return sure, possible


def _normalise_space(text: str) -> str:
    return "".join(" " if ch.isspace() else ch for ch in text)


def date_task(
    n: int,
    seed: int | np.random.Generator = 0,
    *,
    locales: Sequence[str] = DATE_LOCALES,
    formats: Sequence[str] = DATE_FORMATS,
    years: tuple[int, int] = (1950, 2049),
) -> list[Seq2SeqExample]:
    """Date normalisation: a date rendered by Babel, character by character, to ISO 8601.

    Each example draws a date uniformly from ``years``, a locale and a format;
    the source is the date rendered with :func:`babel.dates.format_date` split
    into characters (every Unicode space normalised to ``" "``), the target is
    the 10 characters of ``YYYY-MM-DD``.

    Gold links come from the character spans of the year, month and day
    fields, found by rendering the pattern field by field with Babel (and
    checked against ``format_date``):

    - **numeric fields** (year, ``M``/``MM``, ``d``/``dd``): each target digit
      is a *sure* link to the source digit in the same place counted from the
      right (``"2024" -> 2024``, ``"3" -> 03``: ``3`` links to ``3``), and a
      *possible* link to every digit of the field. Target digits with no
      rendered counterpart -- the leading zero of a 1-digit month or day, the
      century of a 2-digit year (``yy``) -- have possible links only.
    - **month names** (``MMM``, ``MMMM``): both target month digits are
      possible to every character of the name and sure to its first
      character.
    - the two ``-`` separators have no link: leave them out of the scoring
      (``ignore_unlinked_targets=True`` in
      :func:`mmalign.metrics.alignment_error_rate`).
    - literal text and weekday names have no link.

    Parameters
    ----------
    n : int >= 1
        Number of examples.
    seed : int or np.random.Generator
    locales : sequence of str
        Babel / CLDR locale identifiers. Locales that write non-Latin digits
        work but give non-ASCII source digits.
    formats : sequence of str
        ``"short"``, ``"medium"``, ``"long"``, ``"full"`` (the locale's CLDR
        pattern) or a custom CLDR pattern (e.g. ``"dd.MM.yyyy"``). Each must
        render the year (``y``), the month (``M``/``L``, not the 5-letter
        narrow name) and the day (``d``) exactly once.
    years : (int, int)
        Inclusive range of years, within ``[1000, 9999]``. When a pattern
        writes a 2-digit year the range may span at most 100 years, so that
        the century is determined by the two digits.

    Returns
    -------
    examples : list of Seq2SeqExample
        ``meta`` holds ``locale``, ``format``, ``pattern``, ``date`` (ISO
        string), ``rendered`` (the source string) and ``spans``:
        ``{"year" | "month" | "day": (start, end)}`` character offsets into
        the source, end exclusive.

    Notes
    -----
    Locale data: the Unicode CLDR, shipped with Babel (Unicode licence).
    Outputs depend on the installed Babel / CLDR version; pin it for
    published numbers.

    Examples
    --------
    >>> from mmalign.datasets import date_task
    >>> ex = date_task(1, seed=0, locales=["en_US"], formats=["long"])[0]
    >>> ex.meta["rendered"], "".join(ex.target)
    ('January 24, 2035', '2035-01-24')
    >>> ex.meta["spans"]
    {'month': (0, 7), 'day': (8, 10), 'year': (12, 16)}
    >>> sorted(ex.sure)  # "J" (0) sure to the month digits (5, 6); "-" (4, 7) unlinked
    [(0, 5), (0, 6), (8, 8), (9, 9), (12, 0), (13, 1), (14, 2), (15, 3)]
    """
    from babel.dates import format_date

    n = check_int(n, "n", 1)
    rng = _as_rng(seed)
    locales = list(locales) if not isinstance(locales, str) else [locales]
    formats = list(formats) if not isinstance(formats, str) else [formats]
    if not locales:
        raise ValueError("locales must not be empty")
    if not formats:
        raise ValueError("formats must not be empty")
    try:
        y0, y1 = (check_int(v, "years", 1000) for v in years)
    except TypeError:
        raise ValueError(f"years must be a pair (first, last), got {years!r}") from None
    if y1 < y0 or y1 > 9999:
        raise ValueError(f"years must satisfy 1000 <= first <= last <= 9999, got {years!r}")

    table = {}
    for loc in locales:
        for fmt in formats:
            pattern, tokens = _pattern_tokens(loc, fmt)
            two_digit = any(k == "field" and v[0] == "y" and v[1] == 2 for k, v in tokens)
            if two_digit and y1 - y0 >= 100:
                raise ValueError(
                    f"years: pattern {pattern!r} ({loc}) writes a 2-digit year, so years must "
                    f"span at most 100 years, got {years!r}"
                )
            table[(loc, fmt)] = (pattern, tokens)

    first, last = _dt.date(y0, 1, 1).toordinal(), _dt.date(y1, 12, 31).toordinal()
    examples = []
    for _ in range(n):
        date = _dt.date.fromordinal(int(rng.integers(first, last + 1)))
        loc = locales[int(rng.integers(len(locales)))]
        fmt = formats[int(rng.integers(len(formats)))]
        pattern, tokens = table[(loc, fmt)]
        rendered, spans = _render_with_spans(date, loc, tokens)
        reference = format_date(date, pattern, locale=loc)
        if rendered != reference:  # pragma: no cover - guards against a Babel change
            raise RuntimeError(f"field-by-field rendering {rendered!r} differs from "
                               f"babel's {reference!r} ({loc}, {pattern!r})")
        source = list(_normalise_space(rendered))
        target = list(date.isoformat())

        sure: set[Link] = set()
        possible: set[Link] = set()
        for fname, t_first, width in ((_YEAR, 0, 4), (_MONTH, 5, 2), (_DAY, 8, 2)):
            start, end, char, count = spans[fname]
            if fname == _MONTH and count >= 3:  # a month name
                for k in range(width):
                    sure.add((start, t_first + k))
                    possible.update((s, t_first + k) for s in range(start, end))
            else:
                s_, p_ = _numeric_links(t_first, width, start, end)
                sure |= s_
                possible |= p_
        examples.append(Seq2SeqExample(
            source, target, sure=sure, possible=possible,
            meta={"task": "dates", "locale": loc, "format": fmt, "pattern": pattern,
                  "date": date.isoformat(), "rendered": "".join(source),
                  "spans": {k: (v[0], v[1]) for k, v in spans.items()}},
        ))
    return examples


# --------------------------------------------------------------------------- batching


def build_vocabularies(*example_lists: Sequence[Seq2SeqExample]) -> tuple[Vocabulary, Vocabulary]:
    """Source and target vocabularies covering every token of the given example lists.

    Pass every split (train, validation, test) so that no token is unknown;
    ids are sorted by token and so do not depend on sample order.

    Returns
    -------
    src_vocab, tgt_vocab : Vocabulary

    Examples
    --------
    >>> from mmalign.datasets import reversal_task, build_vocabularies
    >>> src, tgt = build_vocabularies(reversal_task(50, vocab_size=6, seed=0))
    >>> src.itos[4:]
    ('s0', 's1', 's2', 's3', 's4', 's5')
    """
    exs = [ex for lst in example_lists for ex in lst]
    return (Vocabulary.build([ex.source for ex in exs]),
            Vocabulary.build([ex.target for ex in exs]))


@dataclass
class Seq2SeqBatch:
    """Padded tensors of a batch of :class:`Seq2SeqExample` (see :func:`encode_batch`).

    Attributes
    ----------
    source : torch.LongTensor, shape (B, S_max)
        Source ids, padded with 0 (``+ <eos>`` if ``source_eos``).
    source_lengths : torch.LongTensor, shape (B,)
    target_input : torch.LongTensor, shape (B, T_max + 1)
        ``<bos> + target`` (teacher forcing input), padded with 0.
    target_output : torch.LongTensor, shape (B, T_max + 1)
        ``target + <eos>`` (what to predict), padded with 0.
    target_lengths : torch.LongTensor, shape (B,)
        ``len(target) + 1``.
    sure, possible : torch.BoolTensor, shape (B, S_max, T_max + 1)
        Gold links ``[b, s, t]``, source position ``s`` by target position
        ``t`` (the orientation of an alignment: column ``t`` is the decoder
        step predicting ``target_output[:, t]``). The EOS column, the source
        EOS row and padding have no link.
    """

    source: Any
    source_lengths: Any
    target_input: Any
    target_output: Any
    target_lengths: Any
    sure: Any
    possible: Any

    def to(self, device: Any) -> "Seq2SeqBatch":
        """The same batch with every tensor moved to ``device``."""
        return Seq2SeqBatch(**{k: v.to(device) for k, v in self.__dict__.items()})


def encode_batch(
    examples: Sequence[Seq2SeqExample],
    src_vocab: Vocabulary,
    tgt_vocab: Vocabulary,
    *,
    source_eos: bool = False,
) -> Seq2SeqBatch:
    """Encode and pad a list of examples into torch tensors.

    Parameters
    ----------
    examples : sequence of Seq2SeqExample, length B >= 1
    src_vocab, tgt_vocab : Vocabulary
    source_eos : bool
        Append ``<eos>`` to each source (after the last token, so source
        positions of the gold links do not move).

    Returns
    -------
    batch : Seq2SeqBatch
        ``source``, ``source_lengths``, ``target_input``, ``target_output``,
        ``target_lengths``, ``sure``, ``possible``; all on the CPU, use
        ``batch.to(device)``.

    Examples
    --------
    >>> from mmalign.datasets import reversal_task, build_vocabularies, encode_batch
    >>> exs = reversal_task(3, min_len=2, max_len=4, vocab_size=5, seed=0)
    >>> src, tgt = build_vocabularies(exs)
    >>> b = encode_batch(exs, src, tgt)
    >>> tuple(b.source.shape), b.source_lengths.tolist(), tuple(b.sure.shape)
    ((3, 4), [4, 2, 2], (3, 4, 5))
    >>> tgt.decode(b.target_output[0]) == exs[0].target
    True
    """
    import torch

    if isinstance(examples, Seq2SeqExample):
        examples = [examples]
    examples = list(examples)
    if not examples:
        raise ValueError("examples must not be empty")
    for name, v in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        if not isinstance(v, Vocabulary):
            raise ValueError(f"{name} must be a Vocabulary, got {type(v).__name__}")
    for k, ex in enumerate(examples):
        if not isinstance(ex, Seq2SeqExample):
            raise ValueError(f"examples[{k}] must be a Seq2SeqExample, got {type(ex).__name__}")
    src_ids = [src_vocab.encode(ex.source, eos=source_eos) for ex in examples]
    tgt_ids = [tgt_vocab.encode(ex.target) for ex in examples]
    b = len(examples)
    s_max = max(len(s) for s in src_ids)
    t_max = max(len(t) for t in tgt_ids) + 1
    source = torch.zeros((b, s_max), dtype=torch.long)
    target_input = torch.zeros((b, t_max), dtype=torch.long)
    target_output = torch.zeros((b, t_max), dtype=torch.long)
    sure = torch.zeros((b, s_max, t_max), dtype=torch.bool)
    possible = torch.zeros((b, s_max, t_max), dtype=torch.bool)
    for i, (s, t, ex) in enumerate(zip(src_ids, tgt_ids, examples)):
        source[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        target_input[i, : len(t) + 1] = torch.tensor([Vocabulary.BOS] + t, dtype=torch.long)
        target_output[i, : len(t) + 1] = torch.tensor(t + [Vocabulary.EOS], dtype=torch.long)
        g_sure, g_possible = gold_alignment(ex)
        sure[i, : g_sure.shape[0], : g_sure.shape[1]] = torch.from_numpy(g_sure)
        possible[i, : g_possible.shape[0], : g_possible.shape[1]] = torch.from_numpy(g_possible)
    return Seq2SeqBatch(
        source=source,
        source_lengths=torch.tensor([len(s) for s in src_ids], dtype=torch.long),
        target_input=target_input,
        target_output=target_output,
        target_lengths=torch.tensor([len(t) + 1 for t in tgt_ids], dtype=torch.long),
        sure=sure,
        possible=possible,
    )
