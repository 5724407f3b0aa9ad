import numpy as np
import pytest

from mmalign.datasets.planted_embeddings import PLANTED_N_WORDS_RANGE, planted_embeddings
from mmalign.evaluation.embeddings import nearest_neighbors, similarity_correlation


@pytest.fixture(scope="module")
def data():
    return planted_embeddings(seed=0)


def test_deterministic_and_seed_dependent():
    a, b = planted_embeddings(seed=4), planted_embeddings(seed=4)
    np.testing.assert_array_equal(a.table.vectors, b.table.vectors)
    assert a.similarity == b.similarity
    assert not np.allclose(a.table.vectors, planted_embeddings(seed=5).table.vectors)


def test_vocabulary(data):
    lo, hi = PLANTED_N_WORDS_RANGE
    assert len(data.table) == 400 and data.table.dim == 100
    assert len(planted_embeddings(n_words=lo).table) == lo
    assert len(planted_embeddings(n_words=hi, dim=40).table) == hi
    assert all(w.isalpha() and w.islower() for w in data.table.words)
    listed = (data.male_names + data.female_names + data.career_words + data.family_words
              + data.male_occupations + data.female_occupations + data.neutral_occupations
              + data.neutral_words)
    listed += tuple(w for pairs in data.relations.values() for p in pairs for w in p)
    listed += tuple(w for p in data.spelling_variants + data.morphological_variants for w in p)
    assert all(w in data.table for w in listed)
    assert set(data.topics) == set(data.table.words)
    assert len(data.analogy_questions["capital"]) == 20 * 19
    assert ("france", "paris", "japan", "tokyo") in data.analogy_questions["capital"]
    assert len(data.all_analogy_questions) == sum(len(q) for q in data.analogy_questions.values())
    gendered = {w for p in data.gender_pairs for w in p} | set(data.male_names + data.female_names)
    assert not gendered & set(data.neutral_words)
    assert len(gendered) + len(data.neutral_words) == len(data.table)


def test_control_has_no_gender_component_and_matched_targets():
    control = planted_embeddings(seed=2, bias_strength=0.0)
    t, g = control.table, control.direction
    np.testing.assert_allclose(t.vectors[t.indices(control.neutral_words)] @ g, 0, atol=1e-12)
    U = t.unit_vectors
    names = U[t.indices(control.male_names + control.female_names)]
    for career, family in zip(control.career_words, control.family_words):
        np.testing.assert_allclose(names @ t.unit(career), names @ t.unit(family), atol=1e-12)


def test_bias_is_planted_along_the_axis(data):
    t, g, b = data.table, data.direction, data.bias_strength
    np.testing.assert_allclose(t.vectors[t.indices(data.career_words)] @ g, b, atol=1e-12)
    np.testing.assert_allclose(t.vectors[t.indices(data.family_words)] @ g, -b, atol=1e-12)
    np.testing.assert_allclose(t.vectors[t.indices(data.male_occupations)] @ g, b, atol=1e-12)
    np.testing.assert_allclose(t.vectors[t.indices(data.female_occupations)] @ g, -b, atol=1e-12)
    np.testing.assert_allclose(t.vectors[t.indices(data.neutral_occupations)] @ g, 0, atol=1e-12)
    assert all(t.vector(m) @ g > 0 > t.vector(f) @ g for m, f in data.gender_pairs)


def test_spelling_variants_are_nearest(data):
    for word, variant in data.spelling_variants:
        assert nearest_neighbors(data.table, word, k=1).words == (variant,)


def test_similarity_list_is_informative_but_noisy(data):
    assert len(data.similarity) == 300
    assert len({frozenset(p[:2]) for p in data.similarity}) == 300
    scores = np.array([s for _, _, s in data.similarity])
    assert scores.min() >= 0 and scores.max() <= 10 and scores.std() > 1
    rho = similarity_correlation(data.table, data.similarity).spearman
    assert 0.8 < rho < 0.98
    # a random table knows nothing about it
    shuffled = data.table.with_vectors(np.random.default_rng(0).permutation(data.table.vectors))
    assert abs(similarity_correlation(shuffled, data.similarity).spearman) < 0.2


@pytest.mark.parametrize("kwargs, match", [
    ({"n_words": 10}, "n_words must lie in"),
    ({"n_words": 10_000}, "n_words must lie in"),
    ({"dim": 8}, "dim must be >= 40"),
    ({"bias_strength": -0.1}, "bias_strength must lie in"),
    ({"noise": float("nan")}, "noise must lie in"),
    ({"seed": True}, "seed must be an integer"),
    ({"n_similarity": 2}, "n_similarity must be >= 3"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        planted_embeddings(**kwargs)
