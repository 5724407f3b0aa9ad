import numpy as np
import pytest
import torch
from scipy import stats

from mmalign.datasets.planted_embeddings import planted_embeddings
from mmalign.evaluation.embeddings import (
    EmbeddingTable,
    analogy,
    evaluate_analogies,
    nearest_neighbors,
    similarity_correlation,
    variant_robustness,
)


@pytest.fixture(scope="module")
def planted():
    return planted_embeddings(seed=0)


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


# ----------------------------------------------------------------------------- the table


def test_table_copies_and_is_read_only():
    vectors = np.array([[3.0, 4.0], [0.0, 2.0]])
    table = EmbeddingTable(vectors, ["a", "b"])
    vectors[0, 0] = 100.0  # the caller's array is not shared
    assert table.vectors[0, 0] == 3.0
    with pytest.raises(ValueError):
        table.vectors[0, 0] = 1.0
    with pytest.raises(ValueError):
        table.unit_vectors[0, 0] = 1.0
    v = table.vector("a")
    v[:] = 0  # a copy
    np.testing.assert_array_equal(table.vector("a"), [3.0, 4.0])
    np.testing.assert_allclose(table.unit("a"), [0.6, 0.8])
    np.testing.assert_allclose(np.linalg.norm(table.unit_vectors, axis=1), 1.0)


def test_table_from_dict_torch_and_subset():
    t = EmbeddingTable.from_dict({"x": [1.0, 0.0], "y": torch.tensor([0.0, 2.0])})
    assert t.words == ("x", "y") and t.dim == 2 and len(t) == 2
    assert "x" in t and "z" not in t and 3 not in t
    t2 = EmbeddingTable(torch.tensor([[1.0, 2.0]], requires_grad=True), ["w"])
    assert t2.vectors.dtype == np.float64
    sub = t.subset(["y"])
    assert sub.words == ("y",) and sub.vector("y").tolist() == [0.0, 2.0]
    assert list(t.to_dict()) == ["x", "y"]
    assert t.with_vectors([[0.0, 1.0], [1.0, 1.0]]).words == t.words


@pytest.mark.parametrize("vectors, words, match", [
    ([[1.0, 0.0], [0.0, 1.0]], ["a", "a"], "duplicates"),
    ([[1.0, np.nan]], ["a"], "NaN"),
    ([[1.0, np.inf]], ["a"], "NaN or infinite"),
    ([[0.0, 0.0], [1.0, 0.0]], ["a", "b"], "all zeros"),
    ([[1.0, 0.0]], ["a", "b"], "1 rows but words has 2"),
    ([1.0, 0.0], ["a"], r"shape \(V, d\)"),
    (np.zeros((0, 3)), [], "empty"),
    (np.zeros((2, 0)), ["a", "b"], "no dimensions"),
    ([[1.0, 0.0]], [7], r"words\[0\] must be a str"),
    ([["a", "b"]], ["a"], "real numbers"),
    ([[1.0, 0.0]], "a", "single string"),
])
def test_table_errors(vectors, words, match):
    with pytest.raises(ValueError, match=match):
        EmbeddingTable(vectors, words)


def test_table_unknown_word_errors():
    t = EmbeddingTable(np.eye(2), ["a", "b"])
    with pytest.raises(ValueError, match="'zz' is not in the table"):
        t.vector("zz")
    with pytest.raises(ValueError, match="words has 2 word"):
        t.indices(["a", "q", "r"])
    with pytest.raises(ValueError, match="mapping is empty"):
        EmbeddingTable.from_dict({})
    with pytest.raises(ValueError, match="has 3 dimensions"):
        EmbeddingTable.from_dict({"a": [1, 2], "b": [1, 2, 3]})


# ----------------------------------------------------------------------------- neighbours

COMPASS = EmbeddingTable(
    [[1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [0, -1], [2, 0.1]],
    ["east", "northeast", "north", "northwest", "west", "south", "eastish"],
)


def test_nearest_neighbors_exact():
    nn = nearest_neighbors(COMPASS, "east", k=3)
    assert nn.words == ("eastish", "northeast", "north")
    np.testing.assert_allclose(nn.scores, [unit([2, 0.1])[0], np.sqrt(0.5), 0.0], atol=1e-15)
    # north and south tie at cosine 0: table order decides
    assert nearest_neighbors(COMPASS, "east", k=4).words[2:] == ("north", "south")
    assert nearest_neighbors(COMPASS, "south", k=2).words == ("east", "west")  # tie at 0
    assert nearest_neighbors(COMPASS, "east", k=1, exclude=()).words == ("east",)
    assert nearest_neighbors(COMPASS, "east", k=2, exclude=["east", "eastish"]).words == (
        "northeast", "north")
    vec = nearest_neighbors(COMPASS, np.array([-3.0, 0.0]), k=2)
    assert vec.words == ("west", "northwest")
    assert nearest_neighbors(COMPASS, torch.tensor([0.0, 5.0]), k=1).to_list() == [("north", 1.0)]
    # k larger than the vocabulary: everything but the query, all sorted
    everything = nearest_neighbors(COMPASS, "west", k=100)
    assert len(everything) == 6 and "west" not in everything.words
    assert np.all(np.diff(everything.scores) <= 0)


def test_nearest_neighbors_accepts_dict_and_errors():
    d = {"a": [1.0, 0.0], "b": [0.9, 0.1], "c": [0.0, 1.0]}
    assert nearest_neighbors(d, "a", k=1).words == ("b",)
    with pytest.raises(ValueError, match="query 'zebra' is not in the table"):
        nearest_neighbors(COMPASS, "zebra")
    with pytest.raises(ValueError, match="query has 3 dimensions"):
        nearest_neighbors(COMPASS, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="query is the zero vector"):
        nearest_neighbors(COMPASS, [0.0, 0.0])
    with pytest.raises(ValueError, match="query contains NaN"):
        nearest_neighbors(COMPASS, [np.nan, 1.0])
    with pytest.raises(ValueError, match="k must be >= 1"):
        nearest_neighbors(COMPASS, "east", k=0)
    with pytest.raises(ValueError, match="exclude has 1 word"):
        nearest_neighbors(COMPASS, "east", exclude=["nowhere"])
    with pytest.raises(ValueError, match="table must be an EmbeddingTable"):
        nearest_neighbors([[1.0, 0.0]], "a")


# ----------------------------------------------------------------------------- analogies

# king is almost man, so b - a + c is almost c = woman itself: the query word must be excluded.
ROYAL = EmbeddingTable(
    [[1.0, 0.0, 0.0], [1.0, 0.05, 0.0], [0.0, 1.0, 0.0], [0.2, 1.0, 0.5], [0.0, 0.0, 1.0]],
    ["man", "king", "woman", "queen", "castle"],
)


def test_analogy_excludes_query_words():
    U = ROYAL.unit_vectors
    target = U[1] - U[0] + U[2]
    cos = U @ unit(target)
    assert np.argmax(cos) == 2  # woman, a query word, is the closest to b - a + c
    kept = analogy(ROYAL, "man", "king", "woman", k=5, exclude_query=False)
    assert kept.words[0] == "woman"
    ans = analogy(ROYAL, "man", "king", "woman", k=5)
    assert ans.words == ("queen", "castle")
    np.testing.assert_allclose(ans.scores, [cos[3], cos[4]])


def test_analogy_cosmul_by_hand():
    U = ROYAL.unit_vectors
    cp = (U @ U.T + 1) / 2
    ratio = cp[:, 1] * cp[:, 2] / (cp[:, 0] + 1e-3)
    ans = analogy(ROYAL, "man", "king", "woman", k=2, method="mul")
    assert ans.words == ("queen", "castle")
    np.testing.assert_allclose(ans.scores, ratio[[3, 4]])


def test_analogy_errors():
    with pytest.raises(ValueError, match="c 'duchess' is not in the table"):
        analogy(ROYAL, "man", "king", "duchess")
    with pytest.raises(ValueError, match="method must be one of"):
        analogy(ROYAL, "man", "king", "woman", method="cos")
    with pytest.raises(ValueError, match="a must be a word"):
        analogy(ROYAL, 3, "king", "woman")


def test_evaluate_analogies_matches_single_and_counts_coverage():
    questions = [("man", "king", "woman", "queen"), ("woman", "queen", "man", "king"),
                 ("man", "king", "woman", "castle"), ("man", "emperor", "woman", "empress")]
    for method in ("add", "mul"):
        report = evaluate_analogies(ROYAL, questions, method=method)
        assert report.n_questions == 4 and report.n_answered == 3
        assert report.coverage == 0.75
        assert report.skipped == (("man", "emperor", "woman", "empress"),)
        for q, answer in zip(questions[:3], report.answers[:3]):
            assert answer == analogy(ROYAL, *q[:3], method=method).words[0]
        assert report.answers[3] is None
        assert report.correct.tolist() == [a == q[3] for q, a in zip(questions, report.answers)]
        assert report.accuracy == report.n_correct / 3
        assert report.accuracy_all == report.n_correct / 4
    assert evaluate_analogies(ROYAL, questions).correct.tolist() == [True, True, False, False]


def test_evaluate_analogies_all_skipped_and_errors():
    report = evaluate_analogies(ROYAL, [("a", "b", "c", "d")])
    assert np.isnan(report.accuracy) and report.coverage == 0.0
    with pytest.raises(ValueError, match="questions is empty"):
        evaluate_analogies(ROYAL, [])
    with pytest.raises(ValueError, match=r"questions\[0\] must have 4 entries"):
        evaluate_analogies(ROYAL, [("man", "king", "woman")])
    with pytest.raises(ValueError, match=r"questions\[1\]\[2\] must be a word"):
        evaluate_analogies(ROYAL, [("man", "king", "woman", "queen"), ("a", "b", None, "d")])
    with pytest.raises(ValueError, match="questions must be a sequence"):
        evaluate_analogies(ROYAL, "man king woman queen")


def test_planted_relations_recovered_and_shuffled_table_fails(planted):
    rng = np.random.default_rng(1)
    shuffled = EmbeddingTable(planted.table.vectors[rng.permutation(len(planted.table))],
                              planted.table.words)
    for relation, questions in planted.analogy_questions.items():
        good = evaluate_analogies(planted.table, questions)
        bad = evaluate_analogies(shuffled, questions)
        assert good.coverage == 1.0 and good.accuracy >= 0.95, relation
        assert bad.accuracy <= 0.05, relation
        assert evaluate_analogies(planted.table, questions, method="mul").accuracy >= 0.95


# ----------------------------------------------------------------------------- variants


def test_variant_robustness_ranks_by_hand():
    table = EmbeddingTable(
        [[1, 0], [0.9, 0.3], [0.95, 0.1], [0, 1], [0.1, 1]],
        ["color", "colour", "hue", "gray", "grey"],
    )
    report = variant_robustness(table, [("color", "colour"), ("gray", "grey"), ("colour", "hue"),
                                        ("color", "kolor")], k=1)
    # neighbours of color: hue (0.994), colour (0.949), ...  -> colour has rank 2
    assert report.rank.tolist() == [2, 1, 1]
    np.testing.assert_allclose(report.cosine, [unit([0.9, 0.3])[0], unit([0.1, 1])[1],
                                               unit([0.9, 0.3]) @ unit([0.95, 0.1])])
    assert report.hit_rate == pytest.approx(2 / 3)
    assert report.mean_reciprocal_rank == pytest.approx((0.5 + 1 + 1) / 3)
    assert report.mean_cosine == pytest.approx(report.cosine.mean())
    assert report.n_pairs == 4 and report.n_covered == 3 and report.skipped == (("color", "kolor"),)
    with pytest.raises(ValueError, match="with itself"):
        variant_robustness(table, [("gray", "gray")])
    with pytest.raises(ValueError, match="pairs is empty"):
        variant_robustness(table, [])


def test_variant_rank_agrees_with_nearest_neighbors(planted):
    pairs = planted.spelling_variants + planted.morphological_variants
    report = variant_robustness(planted.table, pairs, k=3)
    for (word, variant), rank in zip(report.pairs, report.rank):
        top = nearest_neighbors(planted.table, word, k=rank).words
        assert top[-1] == variant and variant not in top[:-1]
    spelling = variant_robustness(planted.table, planted.spelling_variants, k=1)
    assert spelling.hit_rate == 1.0 and spelling.mean_cosine > 0.9


# ----------------------------------------------------------------------------- similarity


def test_similarity_correlation_matches_scipy(planted):
    triples = list(planted.similarity[:60]) + [("color", "unobtainium", 3.0)]
    report = similarity_correlation(planted.table, triples)
    U = planted.table.unit_vectors
    cos = [U[planted.table.index(a)] @ U[planted.table.index(b)] for a, b, _ in triples[:60]]
    human = [s for _, _, s in triples[:60]]
    expected = stats.spearmanr(human, cos)
    assert report.spearman == pytest.approx(expected.statistic, abs=1e-12)
    assert report.pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    np.testing.assert_allclose(report.cosine, cos)
    assert report.n_pairs == 61 and report.n_covered == 60
    assert report.skipped == (("color", "unobtainium"),)


def test_similarity_correlation_errors():
    t = EmbeddingTable([[1, 0], [1, 0.5], [0, 1], [1, 1]], ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="only 2 of 3 pairs"):
        similarity_correlation(t, [("a", "b", 1.0), ("a", "c", 2.0), ("a", "zz", 3.0)])
    with pytest.raises(ValueError, match="human scores .* all equal"):
        similarity_correlation(t, [("a", "b", 1.0), ("a", "c", 1.0), ("a", "d", 1.0)])
    with pytest.raises(ValueError, match=r"triples\[1\]\[2\] is not finite"):
        similarity_correlation(t, [("a", "b", 1.0), ("a", "c", np.nan), ("a", "d", 1.0)])
    with pytest.raises(ValueError, match=r"triples\[0\] must have 3 entries"):
        similarity_correlation(t, [("a", "b")])
    with pytest.raises(ValueError, match=r"triples\[0\]\[2\] must be a real number"):
        similarity_correlation(t, [("a", "b", "high")])


def test_cosines_at_the_extremes_are_right_and_tiny_vectors_are_not_zero():
    table = EmbeddingTable([[1e300, 1e300], [1e-200, 0.0], [3.0, 4.0], [-3e-310, -4e-310]],
                           ["big", "tiny", "plain", "subnormal"])
    np.testing.assert_allclose(table.unit_vectors,
                               [[0.5 ** 0.5, 0.5 ** 0.5], [1, 0], [0.6, 0.8], [-0.6, -0.8]],
                               rtol=1e-12)
    near = nearest_neighbors(table, np.array([1e300, 0.0]), k=1)
    assert near.words == ("tiny",) and near.scores[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="query is the zero vector"):
        nearest_neighbors(table, np.zeros(2))


def test_projection_on_a_huge_direction_is_the_cosine():
    from mmalign.evaluation.bias import project

    table = EmbeddingTable([[3.0, 4.0]], ["w"])
    np.testing.assert_allclose(project(table, ["w"], [1e300, 0.0]), [0.6], rtol=1e-12)
