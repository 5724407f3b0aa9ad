"""Extrinsic evaluation through frozen-feature linear probes.

A *linear probe* trains a logistic-regression classifier on fixed features
(an embedding, a CCA projection, a pretrained model's ``[CLS]`` vector) and
reports how much of a label those features make linearly readable.  Accuracy
alone flatters imbalanced label sets, so the report always carries the
**majority-class baseline** (always answering the most frequent *training*
label) and the **accuracy excluding the majority class** (accuracy on the test
items whose true label is not that class), plus macro-F1 and per-class
accuracy.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

from ..utils.validation import as_real_array

__all__ = ["ProbeReport", "linear_probe"]


def _features(x: Any, name: str) -> np.ndarray:
    arr = as_real_array(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got {arr.ndim}-d shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has no rows")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no features: shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _labels(y: Any, name: str) -> np.ndarray:
    if hasattr(y, "detach") and hasattr(y, "cpu"):
        y = y.detach().cpu().numpy()
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} cannot be read as an array of labels: {err}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == object:
        if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in arr):
            raise ValueError(f"{name} contains None or NaN labels")
        try:
            arr = arr.astype(str) if all(isinstance(v, str) for v in arr) else arr
            np.unique(arr)
        except TypeError:
            raise ValueError(f"{name} mixes label types that cannot be sorted") from None
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} holds non-integer floats: a probe needs class labels, "
                             "not continuous targets")
    elif np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold class labels, got dtype {arr.dtype}")
    return arr


@dataclass(frozen=True)
class ProbeReport:
    """Result of :func:`linear_probe`.

    Attributes
    ----------
    accuracy : float
        Fraction of test items classified correctly.
    majority_class : label
        The most frequent training label (ties: the smallest label).
    majority_baseline : float
        Test accuracy of always answering ``majority_class``.
    accuracy_excluding_majority : float
        Accuracy on the test items whose true label is not ``majority_class``
        (the majority baseline scores 0 here); NaN when every test item has
        the majority label.
    macro_f1 : float
        F1 averaged over the classes seen in training or test (unweighted).
    per_class_accuracy : dict label -> float
        For each label present in the test set, the fraction of its test items
        classified correctly (its recall).
    classes : tuple
        The training classes, sorted.
    predictions : np.ndarray, shape (n_test,)
    n_train, n_test : int
    model : sklearn.pipeline.Pipeline
        The fitted probe (``MaxAbsScaler`` and ``StandardScaler`` when
        ``standardize``, then the logistic regression).
    """

    accuracy: float
    majority_class: Any
    majority_baseline: float
    accuracy_excluding_majority: float
    macro_f1: float
    per_class_accuracy: dict
    classes: tuple
    predictions: np.ndarray
    n_train: int
    n_test: int
    model: Pipeline

    def __str__(self) -> str:
        lines = [
            f"linear probe ({self.n_train} train / {self.n_test} test, {len(self.classes)} classes)",
            f"  accuracy                     {self.accuracy:.3f}",
            f"  majority baseline            {self.majority_baseline:.3f}  "
            f"(class {self.majority_class!r})",
            f"  accuracy excluding majority  {self.accuracy_excluding_majority:.3f}",
            f"  macro-F1                     {self.macro_f1:.3f}",
        ]
        return "\n".join(lines)


def linear_probe(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    standardize: bool = True,
    class_weight: dict | str | None = None,
    seed: int = 0,
) -> ProbeReport:
    """Train a logistic-regression probe on frozen features and score it on a test split.

    The features are not changed (no gradient reaches whatever produced them);
    with ``standardize=True`` each feature is scaled to zero mean and unit
    variance using **training** statistics only, then an L2-regularised
    multinomial logistic regression (scikit-learn, lbfgs) is fitted.

    Parameters
    ----------
    train_features : array-like or torch.Tensor, shape (n_train, d)
        Frozen features (tensors are detached and moved to the CPU; a 1-d
        array is one feature).  Real and finite.
    train_labels : array-like or torch.Tensor, shape (n_train,)
        Class labels (ints or strings); at least two distinct classes.
    test_features : array-like or torch.Tensor, shape (n_test, d)
    test_labels : array-like or torch.Tensor, shape (n_test,)
        May contain labels never seen in training (always counted wrong).
    C : float > 0
        Inverse regularisation strength (scikit-learn's ``C``).
    max_iter : int >= 1
        lbfgs iterations.
    standardize : bool
        Scale features with training mean / standard deviation first, at any
        magnitude (values near 1e300 included).  A feature constant in
        training is only centred, as is one whose training values all lie below
        about ``2e-15`` in magnitude (scikit-learn's threshold).
    class_weight : dict, "balanced" or None
        Passed to ``LogisticRegression``.
    seed : int
        ``random_state`` of the classifier (lbfgs itself is deterministic).

    Returns
    -------
    report : ProbeReport
        ``accuracy``, ``majority_baseline``, ``accuracy_excluding_majority``,
        ``macro_f1``, ``per_class_accuracy``, the ``predictions`` and the
        fitted ``model``.

    Raises
    ------
    ValueError
        Mismatched lengths, different feature sizes between train and test,
        fewer than two training classes, NaN / inf, empty input, continuous
        labels, bad hyper-parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from mmalign.evaluation.probes import linear_probe
    >>> rng = np.random.default_rng(0)
    >>> y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    >>> X = rng.normal(size=(100, 5)) + 3.0 * np.eye(5)[y]
    >>> report = linear_probe(X[::2], y[::2], X[1::2], y[1::2])
    >>> report.majority_class, report.majority_baseline
    (0, 0.6)
    >>> report.accuracy > 0.9, report.accuracy_excluding_majority > 0.8
    (True, True)
    """
    Xtr = _features(train_features, "train_features")
    ytr = _labels(train_labels, "train_labels")
    Xte = _features(test_features, "test_features")
    yte = _labels(test_labels, "test_labels")
    if Xtr.shape[0] != ytr.shape[0]:
        raise ValueError(f"train_features has {Xtr.shape[0]} rows but train_labels has "
                         f"{ytr.shape[0]} entries")
    if Xte.shape[0] != yte.shape[0]:
        raise ValueError(f"test_features has {Xte.shape[0]} rows but test_labels has "
                         f"{yte.shape[0]} entries")
    if (ytr.dtype.kind in "USO") != (yte.dtype.kind in "USO"):
        raise ValueError(f"train_labels (dtype {ytr.dtype}) and test_labels (dtype {yte.dtype}) "
                         "mix string and numeric labels")
    if Xtr.shape[1] != Xte.shape[1]:
        raise ValueError(f"train_features has {Xtr.shape[1]} features but test_features has "
                         f"{Xte.shape[1]}")
    if isinstance(C, (bool, np.bool_)) or not isinstance(C, numbers.Real) or not np.isfinite(C) or C <= 0:
        raise ValueError(f"C must be a positive finite number, got {C!r}")
    if isinstance(max_iter, (bool, np.bool_)) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")

    classes, counts = np.unique(ytr, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"train_labels has a single class ({classes[0]!r}); a probe needs at least two")
    majority = classes[int(np.argmax(counts))]  # first maximum: the smallest label on ties

    # MaxAbsScaler first: the standardised features are the same, but the variances of
    # features near 1e300 (1e-300) no longer overflow (underflow) in StandardScaler
    steps = [MaxAbsScaler(), StandardScaler()] if standardize else []
    model = make_pipeline(*steps, LogisticRegression(C=float(C), max_iter=int(max_iter),
                                                     class_weight=class_weight,
                                                     random_state=int(seed)))
    model.fit(Xtr, ytr)
    pred = model.predict(Xte)

    hit = pred == yte
    outside = yte != majority
    labels = np.unique(np.concatenate([classes, np.unique(yte)]))
    per_class = {c.item() if hasattr(c, "item") else c: float(hit[yte == c].mean())
                 for c in np.unique(yte)}
    return ProbeReport(
        accuracy=float(hit.mean()),
        majority_class=majority.item() if hasattr(majority, "item") else majority,
        majority_baseline=float((yte == majority).mean()),
        accuracy_excluding_majority=float(hit[outside].mean()) if outside.any() else float("nan"),
        macro_f1=float(f1_score(yte, pred, labels=labels, average="macro", zero_division=0)),
        per_class_accuracy=per_class,
        classes=tuple(c.item() if hasattr(c, "item") else c for c in classes),
        predictions=pred,
        n_train=int(Xtr.shape[0]),
        n_test=int(Xte.shape[0]),
        model=model,
    )
