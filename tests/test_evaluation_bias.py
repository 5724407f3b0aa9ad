import itertools

import numpy as np
import pytest
from sklearn.decomposition import PCA

from mmalign.datasets.planted_embeddings import planted_embeddings
from mmalign.evaluation.bias import bias_direction, extreme_items, hard_debias, project, weat
from mmalign.evaluation.embeddings import EmbeddingTable


@pytest.fixture(scope="module")
def biased():
    return planted_embeddings(seed=0, bias_strength=0.3)


def run_weat(data, **kw):
    return weat(data.table, data.career_words, data.family_words, data.male_names,
                data.female_names, **kw)


def random_table(n, dim, seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)]
    return EmbeddingTable(rng.normal(size=(n, dim)), words), words


# ----------------------------------------------------------------------------- directions


def test_bias_direction_hand_built_and_sign():
    table = EmbeddingTable([[1, 1, 0], [-1, 1, 0], [2, 0, 2], [-2, 0, 2], [0, 0, 1]],
                           ["he", "she", "man", "woman", "doctor"])
    for method in ("pca", "mean"):
        g = bias_direction(table, [("he", "she"), ("man", "woman")], method=method)
        np.testing.assert_allclose(g, [1, 0, 0], atol=1e-12)
        flipped = bias_direction(table, [("she", "he"), ("woman", "man")], method=method)
        np.testing.assert_allclose(flipped, [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(project(table, ["he", "she", "doctor"], [5.0, 0, 0]),
                               [np.sqrt(0.5), -np.sqrt(0.5), 0.0], atol=1e-15)
    np.testing.assert_allclose(project(table, None, [1.0, 0, 0]), table.unit_vectors[:, 0])


def test_bias_direction_pca_matches_sklearn_and_mean_by_hand():
    table, words = random_table(12, 6, seed=3)
    pairs = [(words[2 * i], words[2 * i + 1]) for i in range(6)]
    U = table.unit_vectors
    a, b = U[0::2], U[1::2]
    mu = (a + b) / 2
    centred = np.vstack([a - mu, b - mu])
    pc = PCA(n_components=1).fit(centred).components_[0]
    g = bias_direction(table, pairs, method="pca")
    assert abs(abs(g @ pc) - 1) < 1e-10 and np.linalg.norm(g) == pytest.approx(1)
    assert (a - b).mean(axis=0) @ g > 0
    d = (a - b) / np.linalg.norm(a - b, axis=1, keepdims=True)
    np.testing.assert_allclose(bias_direction(table, pairs, method="mean"),
                               d.mean(0) / np.linalg.norm(d.mean(0)))


def test_bias_direction_recovers_planted_axis(biased):
    for method in ("pca", "mean"):
        g = bias_direction(biased.table, biased.gender_pairs, method=method)
        assert g @ biased.direction > 0.99


def test_bias_direction_errors():
    t = EmbeddingTable([[1, 0], [2, 0], [0, 1]], ["a", "b", "c"])
    with pytest.raises(ValueError, match="same direction"):
        bias_direction(t, [("a", "b")])
    with pytest.raises(ValueError, match="with itself"):
        bias_direction(t, [("a", "a")])
    with pytest.raises(ValueError, match="pairs has 1 word"):
        bias_direction(t, [("a", "zz")])
    with pytest.raises(ValueError, match="method must be one of"):
        bias_direction(t, [("a", "c")], method="svd")
    with pytest.raises(ValueError, match="pairs is empty"):
        bias_direction(t, [])
    with pytest.raises(ValueError, match="direction has 3 dimensions"):
        project(t, ["a"], [1.0, 0, 0])
    with pytest.raises(ValueError, match="direction is the zero vector"):
        project(t, ["a"], [0.0, 0])
    with pytest.raises(ValueError, match="direction contains NaN"):
        project(t, ["a"], [np.nan, 0])


# ----------------------------------------------------------------------------- extreme items


def test_extreme_items_hand_built():
    t = EmbeddingTable([[1, 1], [-1, 1], [0.1, 1], [2, 0.1], [-0.5, 1]],
                       ["engineer", "nurse", "doctor", "pilot", "dancer"])
    report = extreme_items(t, [1.0, 0.0], k=2)
    assert report.positive.words == ("pilot", "engineer")
    assert report.negative.words == ("nurse", "dancer")
    np.testing.assert_allclose(report.negative.scores, [-np.sqrt(0.5), -0.5 / np.sqrt(1.25)])
    only = extreme_items(t, [1.0, 0.0], k=10, words=["doctor", "dancer"])
    assert only.positive.words == ("doctor", "dancer") and only.negative.words == ("dancer", "doctor")
    assert "pilot" in str(report) and "nurse" in str(report)


def test_extreme_items_planted_occupations(biased):
    g = bias_direction(biased.table, biased.gender_pairs)
    occupations = biased.male_occupations + biased.female_occupations + biased.neutral_occupations
    report = extreme_items(biased.table, g, k=8, words=occupations)
    assert set(report.positive.words) == set(biased.male_occupations)
    assert set(report.negative.words) == set(biased.female_occupations)


# ----------------------------------------------------------------------------- WEAT


def test_weat_effect_size_by_hand():
    table, words = random_table(14, 5, seed=0)
    X, Y, A, B = words[:3], words[3:6], words[6:10], words[10:14]

    def cos(u, v):
        u, v = table.vector(u), table.vector(v)
        return u @ v / np.linalg.norm(u) / np.linalg.norm(v)

    s = {w: np.mean([cos(w, a) for a in A]) - np.mean([cos(w, b) for b in B]) for w in X + Y}
    sx, sy = [s[w] for w in X], [s[w] for w in Y]
    expected = (np.mean(sx) - np.mean(sy)) / np.std(sx + sy, ddof=1)
    result = weat(table, X, Y, A, B)
    assert result.effect_size == pytest.approx(expected, abs=1e-12)
    assert result.statistic == pytest.approx(sum(sx) - sum(sy), abs=1e-12)
    assert result.std == pytest.approx(np.std(sx + sy, ddof=1))
    for w in X + Y:
        assert result.associations[w] == pytest.approx(s[w], abs=1e-12)


@pytest.mark.parametrize("nx, ny, seed", [(3, 3, 1), (2, 4, 2), (4, 3, 5)])
def test_weat_exact_p_matches_brute_force(nx, ny, seed):
    table, words = random_table(nx + ny + 6, 4, seed=seed)
    X, Y = words[:nx], words[nx:nx + ny]
    A, B = words[nx + ny:nx + ny + 3], words[nx + ny + 3:]
    result = weat(table, X, Y, A, B)
    s = result.associations
    observed = np.mean([s[w] for w in X]) - np.mean([s[w] for w in Y])
    union = X + Y
    hits = total = 0
    for Xi in itertools.combinations(union, nx):  # every re-partition, brute force
        Yi = [w for w in union if w not in Xi]
        stat = np.mean([s[w] for w in Xi]) - np.mean([s[w] for w in Yi])
        hits += stat >= observed - 1e-12
        total += 1
    assert result.exact and result.n_partitions == total == result.n_permutations
    assert result.p_value == pytest.approx(hits / total, abs=1e-15)


def test_weat_random_permutations_formula_and_seed():
    table, words = random_table(16, 4, seed=7)
    X, Y, A, B = words[:5], words[5:10], words[10:13], words[13:]
    exact = weat(table, X, Y, A, B, n_permutations=252)  # C(10, 5) = 252 partitions
    assert exact.exact
    approx = weat(table, X, Y, A, B, n_permutations=251, seed=3)
    assert not approx.exact and approx.n_permutations == 251
    count = round(approx.p_value * 252) - 1  # p = (count + 1) / (n + 1)
    assert approx.p_value == pytest.approx((count + 1) / 252, abs=1e-15)
    assert weat(table, X, Y, A, B, n_permutations=251, seed=3).p_value == approx.p_value
    many = weat(table, X, Y, A, B, n_permutations=200, seed=0)
    assert abs(many.p_value - exact.p_value) < 0.1


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_weat_detects_planted_bias_and_not_the_control(seed):
    biased = run_weat(planted_embeddings(seed=seed, bias_strength=0.3))
    assert biased.effect_size > 1.5 and biased.p_value < 0.01
    weak = run_weat(planted_embeddings(seed=seed, bias_strength=0.05))
    assert weak.effect_size > 1.0 and weak.p_value < 0.01
    control = run_weat(planted_embeddings(seed=seed, bias_strength=0.0))
    assert abs(control.effect_size) < 0.2 and control.p_value > 0.05
    assert not control.exact and control.n_permutations == 10_000  # C(16, 8) = 12870 > 10000


def test_weat_errors():
    t, w = random_table(8, 3, seed=0)
    with pytest.raises(ValueError, match="X and Y must be disjoint"):
        weat(t, w[:2], w[1:3], w[4:6], w[6:8])
    with pytest.raises(ValueError, match="A and B must be disjoint"):
        weat(t, w[:2], w[2:4], w[4:6], w[5:7])
    with pytest.raises(ValueError, match="Y is empty"):
        weat(t, w[:2], [], w[4:6], w[6:8])
    with pytest.raises(ValueError, match="A has 1 word"):
        weat(t, w[:2], w[2:4], ["nope"], w[6:8])
    with pytest.raises(ValueError, match="X lists 'w0' twice"):
        weat(t, [w[0], w[0]], w[2:4], w[4:6], w[6:8])
    with pytest.raises(ValueError, match="n_permutations must be a positive integer"):
        weat(t, w[:2], w[2:4], w[4:6], w[6:8], n_permutations=0)
    with pytest.raises(ValueError, match="seed must be"):
        weat(t, w[:2], w[2:4], w[4:6], w[6:8], seed=-1)
    with pytest.raises(ValueError, match="single string"):
        weat(t, "w0", w[2:4], w[4:6], w[6:8])


def test_weat_refuses_targets_whose_associations_are_all_equal():
    # every target word has the same vector: s is the same for all, its std is 0
    words = ["x1", "x2", "y1", "y2", "a1", "a2", "b1", "b2"]
    vectors = [[1, 0.5, 0]] * 4 + [[1, 0, 0], [1, 0.1, 0], [0, 0, 1], [0, 0.1, 1]]
    with pytest.raises(ValueError, match=r"X and Y: .*same association.*undefined"):
        weat(EmbeddingTable(vectors, words), ["x1", "x2"], ["y1", "y2"], ["a1", "a2"],
             ["b1", "b2"])


# ----------------------------------------------------------------------------- hard debiasing


def test_hard_debias_by_hand():
    t = EmbeddingTable([[0.6, 0.8, 0], [0.8, 0, 0.6], [-0.6, 0, 0.8], [0, 1, 0]],
                       ["nurse", "he", "she", "tree"])
    result = hard_debias(t, [2.0, 0, 0], ["nurse"], [("he", "she")])
    new = result.table
    np.testing.assert_allclose(new.vector("nurse"), [0, 1, 0], atol=1e-15)
    nu = np.array([0, 0, 0.7])  # mean of he and she without its first coordinate
    z = np.sqrt(1 - 0.49)
    np.testing.assert_allclose(new.vector("he"), nu + [z, 0, 0], atol=1e-15)
    np.testing.assert_allclose(new.vector("she"), nu - [z, 0, 0], atol=1e-15)
    np.testing.assert_allclose(new.vector("tree"), [0, 1, 0])  # untouched (already unit)
    np.testing.assert_allclose(result.neutral_before, [0.6])
    np.testing.assert_allclose(result.equalize_before, [[0.8, -0.6]])
    np.testing.assert_allclose(result.equalize_after, [[z, -z]])
    # each word stays on its side whatever the pair order
    swapped = hard_debias(t, [2.0, 0, 0], ["nurse"], [("she", "he")])
    np.testing.assert_allclose(swapped.equalize_after, [[-z, z]])
    np.testing.assert_allclose(swapped.table.vectors, new.vectors, atol=1e-15)
    # the input is untouched
    np.testing.assert_array_equal(t.vectors[0], [0.6, 0.8, 0])


def test_hard_debias_planted(biased):
    before = biased.table.vectors.copy()
    g = bias_direction(biased.table, biased.gender_pairs)
    result = hard_debias(biased.table, g, biased.neutral_words, biased.gender_pairs)
    np.testing.assert_array_equal(biased.table.vectors, before)  # input untouched
    assert result.table is not biased.table
    assert np.abs(result.neutral_before).max() > 0.15  # the leaning occupations
    assert np.abs(result.neutral_after).max() < 1e-10
    np.testing.assert_allclose(project(result.table, biased.neutral_words, g), 0, atol=1e-10)
    after = result.equalize_after
    assert np.all(after[:, 0] > 0.3)
    np.testing.assert_allclose(after[:, 0], -after[:, 1], atol=1e-12)
    U = result.table.unit_vectors
    np.testing.assert_allclose(np.linalg.norm(result.table.vectors, axis=1), 1, atol=1e-12)
    neutral = U[result.table.indices(biased.neutral_words)]
    for a, b in biased.gender_pairs:
        da = np.linalg.norm(neutral - result.table.vector(a), axis=1)
        db = np.linalg.norm(neutral - result.table.vector(b), axis=1)
        np.testing.assert_allclose(da, db, atol=1e-12)
    # names are neither neutralised nor equalised: unchanged up to normalisation
    np.testing.assert_allclose(result.table.vector("john"), biased.table.unit("john"))
    # the career / family association with names is gone after debiasing
    after_weat = weat(result.table, biased.career_words, biased.family_words,
                      biased.male_names, biased.female_names)
    assert abs(after_weat.effect_size) < 0.5 and after_weat.p_value > 0.05
    assert "equalised pairs" in str(result)


def test_hard_debias_errors_and_skip():
    t = EmbeddingTable([[1, 0, 0], [0.6, 0.8, 0], [0.8, 0, 0.6], [-0.6, 0, 0.8]],
                       ["axis", "nurse", "he", "she"])
    g = [1.0, 0, 0]
    with pytest.raises(ValueError, match="'axis' lies along the direction"):
        hard_debias(t, g, ["axis"], [])
    with pytest.raises(ValueError, match="share words"):
        hard_debias(t, g, ["he"], [("he", "she")])
    with pytest.raises(ValueError, match="appears in pairs 0 and 1"):
        hard_debias(t, g, [], [("he", "she"), ("he", "nurse")])
    with pytest.raises(ValueError, match="neutral_words has 1 word"):
        hard_debias(t, g, ["doctor"], [])
    with pytest.raises(ValueError, match="direction has 2 dimensions"):
        hard_debias(t, [1.0, 0], ["nurse"], [])
    with pytest.raises(ValueError, match="with itself"):
        hard_debias(t, g, [], [("he", "he")])
    result = hard_debias(t, g, ["nurse", "doctor"], [("he", "she"), ("king", "queen")],
                         skip_unknown=True)
    assert result.neutral_words == ("nurse",) and result.equalize_pairs == (("he", "she"),)
    assert result.skipped == ("doctor", ("king", "queen"))
