import datetime

import numpy as np
import pytest
import torch
from babel.dates import format_date, get_month_names

from mmalign.alignment import Alignment
from mmalign.datasets import (
    DATE_FORMATS,
    DATE_LOCALES,
    Seq2SeqExample,
    Vocabulary,
    build_vocabularies,
    date_task,
    encode_batch,
    gold_alignment,
    reordering_task,
    reversal_task,
)
from mmalign.datasets.sequence_tasks import _VERBS
from mmalign.metrics import alignment_error_rate, corpus_alignment_error_rate

VERB_BASE = dict(_VERBS)


def as_tuples(examples):
    return [(e.source, e.target, e.sure, e.possible) for e in examples]


def oracle_links(ex):
    """One (source, target) link per target position the way an ideal argmax attention would
    pick: a sure link when the position has one, else a possible link, else nothing."""
    links = set()
    for t in range(len(ex.target)):
        sure = sorted(s for s, tt in ex.sure if tt == t)
        possible = sorted(s for s, tt in ex.possible if tt == t)
        if sure:
            links.add((sure[0], t))
        elif possible:
            links.add((possible[0], t))
    return links


# ------------------------------------------------------------------ vocabulary
def test_vocabulary_specials_and_round_trip():
    v = Vocabulary(["x", "y", "x"])
    assert v.itos == ("<pad>", "<bos>", "<eos>", "<unk>", "x", "y")
    assert (v.PAD, v.BOS, v.EOS, v.UNK) == (0, 1, 2, 3)
    assert v["y"] == 5 and v["nope"] == 3 and "x" in v and "nope" not in v
    ids = v.encode(["y", "x", "q"], bos=True, eos=True)
    assert ids == [1, 5, 4, 3, 2]
    assert v.decode(ids + [0, 0]) == ["y", "x", "<unk>"]
    assert v.decode(ids, strip=False)[0] == "<bos>"
    assert v.decode(torch.tensor([4, 2, 5])) == ["x"]


def test_vocabulary_errors():
    with pytest.raises(ValueError, match="special"):
        Vocabulary(["a", "<pad>"])
    with pytest.raises(ValueError, match="str"):
        Vocabulary(["a", 3])
    with pytest.raises(ValueError, match="ids"):
        Vocabulary(["a"]).decode([7])


def test_vocabulary_build_is_sorted_and_order_free():
    a = Vocabulary.build([["c", "a"], ["b"]])
    b = Vocabulary.build([["b"], ["a", "c"]])
    assert a == b and a.itos[4:] == ("a", "b", "c")


# ------------------------------------------------------------------ sample type
def test_example_adds_sure_to_possible_and_checks_links():
    # links are (source, target) pairs
    ex = Seq2SeqExample(["a", "b"], ["B"], sure={(1, 0)}, possible={(0, 0)})
    assert ex.possible == {(0, 0), (1, 0)}
    with pytest.raises(ValueError, match=r"sure: link \(1, 0\) outside \(n_source, n_target\)"):
        Seq2SeqExample(["a"], ["A", "B"], sure={(1, 0)})
    with pytest.raises(ValueError, match="possible"):
        Seq2SeqExample(["a"], ["A"], possible={(0, 5)})
    Seq2SeqExample(["a"], ["A", "B"], sure={(0, 1)})   # source 0 -> target 1
    with pytest.raises(ValueError, match="source"):
        Seq2SeqExample([], ["A"])


def test_gold_alignment_matrices():
    ex = Seq2SeqExample(["a", "b", "c"], ["C", "X"], sure={(2, 0)}, possible={(0, 1)})
    sure, possible = gold_alignment(ex)
    assert sure.shape == possible.shape == (3, 2) and sure.dtype == bool   # (n_source, n_target)
    assert sure.sum() == 1 and sure[2, 0]
    assert possible[2, 0] and possible[0, 1] and possible.sum() == 2


# ------------------------------------------------------------------ reversal
def test_reversal_is_deterministic_and_seeded():
    assert as_tuples(reversal_task(20, seed=5)) == as_tuples(reversal_task(20, seed=5))
    assert as_tuples(reversal_task(20, seed=5)) != as_tuples(reversal_task(20, seed=6))
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    assert as_tuples(reversal_task(5, seed=rng_a)) == as_tuples(reversal_task(5, seed=rng_b))


def test_reversal_gold_is_anti_diagonal():
    for ex in reversal_task(50, min_len=2, max_len=9, vocab_size=7, seed=0):
        length = len(ex.source)
        assert 2 <= length <= 9
        assert ex.target == ex.source[::-1]
        sure, possible = gold_alignment(ex)
        np.testing.assert_array_equal(sure, np.fliplr(np.eye(length, dtype=bool)))
        np.testing.assert_array_equal(possible, sure)
        assert set(ex.source) <= {f"s{k}" for k in range(7)}


def test_reversal_argument_errors():
    with pytest.raises(ValueError, match="max_len"):
        reversal_task(3, min_len=5, max_len=4)
    with pytest.raises(ValueError, match="n"):
        reversal_task(0)
    with pytest.raises(ValueError, match="seed"):
        reversal_task(3, seed=-1)
    with pytest.raises(ValueError, match="vocab_size"):
        reversal_task(3, vocab_size=1.5)


def test_perfect_attention_on_reversal_has_zero_aer():
    ex = reversal_task(1, min_len=6, max_len=6, seed=2)[0]
    sure, possible = gold_alignment(ex)
    weights = 0.05 + sure * 0.9                       # (source, target): each target column
    weights = weights / weights.sum(axis=0, keepdims=True)   # a distribution over the source
    attention = Alignment(weights=weights, distribution_over="x", monotonic=False)
    assert alignment_error_rate(attention, ex.sure) == 0.0
    # the gold matrices are the same links
    assert alignment_error_rate(attention, sure, possible) == 0.0
    # the diagonal is the worst possible guess
    diagonal = Alignment(weights=np.eye(6) + 0.01, distribution_over="x", monotonic=False)
    assert alignment_error_rate(diagonal, ex.sure) == 1.0


# ------------------------------------------------------------------ reordering
def test_reordering_is_deterministic():
    assert as_tuples(reordering_task(30, seed=1)) == as_tuples(reordering_task(30, seed=1))
    assert as_tuples(reordering_task(30, seed=1)) != as_tuples(reordering_task(30, seed=2))


def test_reordering_links_are_translations():
    exs = reordering_task(300, seed=0)
    assert any(ex.meta["negated"] for ex in exs) and any("_" in " ".join(ex.target) for ex in exs)
    for ex in exs:
        for t, tok in enumerate(ex.target):
            sure = sorted(s for s, tt in ex.sure if tt == t)
            extra = sorted(s for s, tt in ex.possible - ex.sure if tt == t)
            if tok in ("ga", "o"):
                # case markers: possible only, to a contiguous noun phrase
                assert not sure and extra == list(range(extra[0], extra[-1] + 1))
            elif tok == "NEG":
                assert [ex.source[s] for s in sure] == ["not"]
                assert [ex.source[s] for s in extra] == ["does"]
            elif "_" in tok:  # compound: sure to the head, possible to the modifier
                assert len(sure) == 1 and len(extra) == 1 and extra[0] == sure[0] - 1
                assert tok == f"{ex.source[extra[0]].upper()}_{ex.source[sure[0]].upper()}"
            else:  # 1-1 word: its translation
                assert len(sure) == 1 and not extra
                word = ex.source[sure[0]]
                assert tok == VERB_BASE.get(word, word).upper()
        # every non-determiner source word has a link; determiners only the case marker's
        marker_rows = {t for t, tok in enumerate(ex.target) if tok in ("ga", "o")}
        for s, word in enumerate(ex.source):
            rows = {t for ss, t in ex.possible if ss == s}
            if word in ("the", "a", "this"):
                assert rows and rows <= marker_rows
            else:
                assert rows - marker_rows


def test_reordering_word_order_sov_and_adjective_swap():
    for ex in reordering_task(100, seed=4, p_negation=0.0, p_compound=0.0):
        # SOV with markers: ... ga ... o VERB
        assert ex.target[-2] == "o" and "ga" in ex.target
        verb = [s for s, t in ex.sure if t == len(ex.target) - 1][0]
        obj_noun = [s for s, t in ex.sure if t == ex.target.index("ga") + 1][0]
        assert verb < obj_noun  # the verb came before the object in the source
        # noun before its adjectives in the target, after them in the source
        first_noun_src = [s for s, t in ex.sure if t == 0][0]
        adj_src = [s for s, t in ex.sure if 0 < t < ex.target.index("ga")]
        assert all(s < first_noun_src for s in adj_src)


def test_reordering_without_rules_is_monotone_one_to_one():
    for ex in reordering_task(100, seed=3, sov=False, swap_adjectives=False, merge=False,
                              case_markers=False):
        content = [w.upper() for w in ex.source if w not in ("the", "a", "this")]
        assert len(ex.target) == len(content)
        links = sorted((t, s) for s, t in ex.sure)
        assert ex.possible == ex.sure
        assert [t for t, _ in links] == list(range(len(ex.target)))
        assert all(s1 < s2 for (_, s1), (_, s2) in zip(links, links[1:]))


@pytest.mark.parametrize("mode", ["head", "all", "possible"])
def test_reordering_many_to_one_modes(mode):
    exs = reordering_task(200, seed=8, many_to_one=mode, p_negation=1.0)
    for ex in exs:
        t = ex.target.index("NEG")
        sure = {ex.source[s] for s, tt in ex.sure if tt == t}
        possible = {ex.source[s] for s, tt in ex.possible if tt == t}
        assert possible == {"does", "not"}
        assert sure == {"head": {"not"}, "all": {"does", "not"}, "possible": set()}[mode]


def test_reordering_oracle_argmax_has_zero_aer():
    exs = reordering_task(100, seed=0)
    aer = corpus_alignment_error_rate([oracle_links(e) for e in exs], [e.sure for e in exs],
                                      [e.possible for e in exs], ignore_unlinked_targets=True)
    assert aer == 0.0


def test_reordering_argument_errors():
    with pytest.raises(ValueError, match="many_to_one"):
        reordering_task(2, many_to_one="both")
    with pytest.raises(ValueError, match="p_negation"):
        reordering_task(2, p_negation=1.5)
    with pytest.raises(ValueError, match="max_adjectives"):
        reordering_task(2, max_adjectives=50)


# ------------------------------------------------------------------ dates
def test_dates_are_deterministic_and_iso():
    a, b = date_task(100, seed=7), date_task(100, seed=7)
    assert as_tuples(a) == as_tuples(b)
    assert as_tuples(a) != as_tuples(date_task(100, seed=8))
    for ex in a:
        assert "".join(ex.target) == ex.meta["date"]
        assert 1950 <= int(ex.meta["date"][:4]) <= 2049
        date = datetime.date.fromisoformat(ex.meta["date"])
        rendered = format_date(date, ex.meta["pattern"], locale=ex.meta["locale"])
        assert "".join(ex.source) == "".join(" " if c.isspace() else c for c in rendered)
    assert len({e.meta["locale"] for e in a}) > 5 and len({e.meta["format"] for e in a}) > 5


def _check_date_example(ex):
    date = datetime.date.fromisoformat(ex.meta["date"])
    src, spans = ex.source, ex.meta["spans"]
    text = {k: "".join(src[a:b]) for k, (a, b) in spans.items()}
    rows = {t: ({s for s, tt in ex.sure if tt == t}, {s for s, tt in ex.possible if tt == t})
            for t in range(10)}
    # separators: no link
    assert rows[4] == (set(), set()) and rows[7] == (set(), set())
    # year: every link lands on a digit of the rendered year; sure digits equal the target digit
    year = text["year"]
    assert year in (f"{date.year}", f"{date.year % 100:02d}")
    a, b = spans["year"]
    for t in range(4):
        sure, possible = rows[t]
        assert possible and possible <= set(range(a, b))
        assert all(src[s].isdigit() for s in possible)
        assert all(src[s] == ex.target[t] for s in sure)
        assert len(sure) == (1 if t >= 4 - len(year) else 0)
    # day, and a numeric month: right-aligned digits
    for name, first, value in (("day", 8, date.day), ("month", 5, date.month)):
        a, b = spans[name]
        if name == "month" and not text["month"].isdigit():
            # a month name of this locale, all of it possible, the first letter sure
            names = [get_month_names(w, c, locale=ex.meta["locale"])[date.month]
                     for w in ("abbreviated", "wide") for c in ("format", "stand-alone")]
            assert text["month"] in names
            for t in (5, 6):
                assert rows[t] == ({a}, set(range(a, b)))
            continue
        assert int(text[name]) == value
        for t in (first, first + 1):
            sure, possible = rows[t]
            assert possible == set(range(a, b))
            assert all(src[s] == ex.target[t] for s in sure)
        assert len(rows[first + 1][0]) == 1
        assert len(rows[first][0]) == (1 if b - a == 2 else 0)


def test_dates_gold_links_brute_force_all_locales_and_formats():
    for i, loc in enumerate(DATE_LOCALES):
        for j, fmt in enumerate(DATE_FORMATS):
            for ex in date_task(6, seed=100 * i + j, locales=[loc], formats=[fmt]):
                _check_date_example(ex)


def test_dates_other_locale_and_custom_pattern():
    exs = date_task(20, seed=0, locales=["ja_JP", "ru_RU"], formats=["long", "y MMMM d"],
                    years=(1000, 9999))
    for ex in exs:
        _check_date_example(ex)


def test_dates_oracle_argmax_has_zero_aer():
    exs = date_task(200, seed=1)
    aer = corpus_alignment_error_rate([oracle_links(e) for e in exs], [e.sure for e in exs],
                                      [e.possible for e in exs], ignore_unlinked_targets=True)
    assert aer == 0.0


def test_dates_argument_errors():
    with pytest.raises(ValueError, match="locale"):
        date_task(2, locales=["xx_NOPE"])
    with pytest.raises(ValueError, match="day"):
        date_task(2, formats=["MMMM y"])
    with pytest.raises(ValueError, match="2-digit"):
        date_task(2, formats=["dd.MM.yy"], years=(1900, 2099))
    with pytest.raises(ValueError, match="narrow"):
        date_task(2, formats=["d MMMMM y"])
    with pytest.raises(ValueError, match="week-based"):
        date_task(2, formats=["d MM YYYY"])
    with pytest.raises(ValueError, match="years"):
        date_task(2, years=(2000, 1990))
    with pytest.raises(ValueError, match="locales"):
        date_task(2, locales=[])
    # a 4-digit-only format accepts a wide year range
    assert len(date_task(3, formats=["yyyy-MM-dd"], years=(1000, 9999))) == 3


# ------------------------------------------------------------------ batching
def test_encode_batch_shapes_and_round_trip():
    exs = reordering_task(5, seed=2) + date_task(3, seed=2)
    src, tgt = build_vocabularies(exs)
    b = encode_batch(exs, src, tgt)
    B = len(exs)
    s_max = max(len(e.source) for e in exs)
    t_max = max(len(e.target) for e in exs) + 1
    assert b.source.shape == (B, s_max) and b.source.dtype == torch.long
    assert b.target_input.shape == b.target_output.shape == (B, t_max)
    assert b.sure.shape == b.possible.shape == (B, s_max, t_max) and b.sure.dtype == torch.bool
    for i, ex in enumerate(exs):
        T, S = len(ex.target), len(ex.source)
        assert b.source_lengths[i] == S and b.target_lengths[i] == T + 1
        assert src.decode(b.source[i]) == ex.source
        assert tgt.decode(b.target_output[i]) == ex.target
        assert b.target_input[i, 0] == Vocabulary.BOS and b.target_output[i, T] == Vocabulary.EOS
        assert tgt.decode(b.target_input[i, 1:]) == ex.target[: t_max - 1]
        sure, possible = gold_alignment(ex)
        np.testing.assert_array_equal(b.sure[i, :S, :T].numpy(), sure)
        np.testing.assert_array_equal(b.possible[i, :S, :T].numpy(), possible)
        assert not b.possible[i, S:].any() and not b.possible[i, :, T:].any()
        assert (b.source[i, S:] == 0).all() and (b.target_output[i, T + 1:] == 0).all()
    assert b.to("cpu").source.equal(b.source)


def test_encode_batch_source_eos_keeps_positions():
    exs = reversal_task(4, seed=0)
    src, tgt = build_vocabularies(exs)
    b = encode_batch(exs, src, tgt, source_eos=True)
    for i, ex in enumerate(exs):
        S = len(ex.source)
        assert b.source_lengths[i] == S + 1 and b.source[i, S] == Vocabulary.EOS
        assert b.sure[i, :S, : len(ex.target)].numpy().tolist() == gold_alignment(ex)[0].tolist()
        assert not b.sure[i, S].any()                  # the source EOS row has no link


def test_encode_batch_errors():
    exs = reversal_task(2, seed=0)
    src, tgt = build_vocabularies(exs)
    with pytest.raises(ValueError, match="examples"):
        encode_batch([], src, tgt)
    with pytest.raises(ValueError, match="tgt_vocab"):
        encode_batch(exs, src, None)
    with pytest.raises(ValueError, match=r"examples\[1\]"):
        encode_batch([exs[0], "x"], src, tgt)
