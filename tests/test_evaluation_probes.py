import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from mmalign.evaluation.probes import linear_probe

# Three well-separated training clusters; two test items sit in the wrong cluster on purpose.
CENTRES = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
TRAIN_Y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
TRAIN_X = CENTRES[TRAIN_Y] + np.array([[0.3, 0.1], [-0.2, 0.3], [0.1, -0.3], [-0.1, -0.1],
                                       [0.2, 0.2], [-0.3, 0.1], [0.1, -0.2], [0.2, -0.1],
                                       [-0.2, 0.2]])
TEST_Y = np.array([0, 0, 1, 1, 2, 2])
#                  ok  -> 1  ok  -> 0  ok  ok
TEST_X = CENTRES[[0, 1, 1, 0, 2, 2]]


def test_hand_checked_report():
    r = linear_probe(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y)
    assert r.predictions.tolist() == [0, 1, 1, 0, 2, 2]
    assert r.accuracy == pytest.approx(4 / 6)
    assert r.majority_class == 0  # 4 of the 9 training labels
    assert r.majority_baseline == pytest.approx(2 / 6)  # test items labelled 0
    # items whose true label is not 0: [1 -> 1 ok, 1 -> 0 wrong, 2 ok, 2 ok]
    assert r.accuracy_excluding_majority == pytest.approx(3 / 4)
    assert r.per_class_accuracy == pytest.approx({0: 0.5, 1: 0.5, 2: 1.0})
    # class 0: P = R = 1/2; class 1: P = R = 1/2; class 2: 1  -> macro-F1 2/3
    assert r.macro_f1 == pytest.approx(2 / 3)
    assert r.macro_f1 == pytest.approx(f1_score(TEST_Y, r.predictions, average="macro"))
    assert r.classes == (0, 1, 2) and r.n_train == 9 and r.n_test == 6
    assert "majority baseline" in str(r)


def test_majority_comes_from_train_labels_and_ties_pick_smallest():
    y_train = np.array(["b", "b", "a", "a", "c"])
    x_train = np.array([[0.0], [0.1], [5.0], [5.1], [10.0]])
    r = linear_probe(x_train, y_train, [[0.0], [10.0], [10.1]], ["b", "c", "c"])
    assert r.majority_class == "a"  # tie a/b: the smallest label
    assert r.majority_baseline == 0.0  # no test item is labelled "a"
    r = linear_probe(TRAIN_X, TRAIN_Y, TEST_X[:2], [0, 0])
    assert np.isnan(r.accuracy_excluding_majority) and r.majority_baseline == 1.0


def test_separable_data_and_torch_inputs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=400)
    X = rng.normal(size=(400, 16)) + 6.0 * np.eye(16)[y]
    r = linear_probe(X[:300], y[:300], X[300:], y[300:])
    assert r.accuracy == 1.0 and r.macro_f1 == 1.0
    assert r.majority_baseline < 0.4
    Xt = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    yt = torch.tensor(y)
    X_before = X.copy()
    rt = linear_probe(Xt[:300], yt[:300], Xt[300:], yt[300:])
    assert rt.accuracy == 1.0
    np.testing.assert_array_equal(rt.predictions, r.predictions)
    np.testing.assert_array_equal(X, X_before)


def test_chance_level_when_features_carry_no_label():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 8))
    y = (rng.random(600) < 0.7).astype(int)  # 70 % ones, independent of X
    r = linear_probe(X[:400], y[:400], X[400:], y[400:])
    assert r.majority_class == 1
    assert abs(r.accuracy - r.majority_baseline) < 0.08
    assert r.accuracy_excluding_majority < 0.2


@pytest.mark.parametrize("args, match", [
    ((TRAIN_X[:5], TRAIN_Y, TEST_X, TEST_Y), "train_features has 5 rows but train_labels has 9"),
    ((TRAIN_X, TRAIN_Y, TEST_X, TEST_Y[:3]), "test_features has 6 rows but test_labels has 3"),
    ((TRAIN_X, np.zeros(9, int), TEST_X, TEST_Y), "single class"),
    ((np.where(TRAIN_X > 7, np.nan, TRAIN_X), TRAIN_Y, TEST_X, TEST_Y), "train_features contains NaN"),
    ((TRAIN_X, TRAIN_Y, TEST_X + np.inf, TEST_Y), "test_features contains NaN or infinite"),
    ((TRAIN_X, TRAIN_Y, TEST_X[:, :1], TEST_Y), "2 features but test_features has 1"),
    ((TRAIN_X, TRAIN_Y + 0.5, TEST_X, TEST_Y), "non-integer floats"),
    ((TRAIN_X, np.where(TRAIN_Y == 2, np.nan, TRAIN_Y), TEST_X, TEST_Y), "train_labels contains NaN"),
    ((np.zeros((0, 2)), [], TEST_X, TEST_Y), "train_features is empty"),
    ((TRAIN_X[None], TRAIN_Y, TEST_X, TEST_Y), r"shape \(n, d\)"),
    ((TRAIN_X, TRAIN_Y[:, None], TEST_X, TEST_Y), r"train_labels must have shape \(n,\)"),
    ((TRAIN_X, TRAIN_Y, TEST_X, TEST_Y.astype(str)), "mix string and numeric"),
])
def test_errors(args, match):
    with pytest.raises(ValueError, match=match):
        linear_probe(*args)


def test_hyperparameter_errors():
    with pytest.raises(ValueError, match="C must be a positive"):
        linear_probe(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y, C=0)
    with pytest.raises(ValueError, match="max_iter must be"):
        linear_probe(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y, max_iter=0)


@pytest.mark.parametrize("scale", [1e300, 2.0 ** 1000, 1e-10])
def test_standardised_probe_is_the_same_at_any_scale(scale):
    want = linear_probe(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y)
    got = linear_probe(TRAIN_X * scale, TRAIN_Y, TEST_X * scale, TEST_Y)
    assert got.predictions.tolist() == want.predictions.tolist()
    np.testing.assert_allclose(got.model.predict_proba(TEST_X * scale),
                               want.model.predict_proba(TEST_X), rtol=1e-6)


def test_a_constant_feature_is_centred_not_divided_by_zero():
    with_constant = np.c_[TRAIN_X, np.full(len(TRAIN_X), 3.0)]
    got = linear_probe(with_constant, TRAIN_Y, np.c_[TEST_X, np.full(len(TEST_X), 3.0)], TEST_Y)
    want = linear_probe(TRAIN_X, TRAIN_Y, TEST_X, TEST_Y)
    assert got.predictions.tolist() == want.predictions.tolist()
