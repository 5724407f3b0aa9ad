"""Published 1-NN DTW test errors of the UCR 2018 archive (Dau et al. 2019), reproduced.

Series are z-normalised per series; windows are r = round(w * L) as in the archive.
"""

import numpy as np
import pytest

import mmalign


def znorm(X):
    X = np.asarray(X, dtype=np.float64)
    return (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)


def aeon_split(loader):
    X_train, y_train = loader(split="train")
    X_test, y_test = loader(split="test")
    return znorm(X_train[:, 0, :]), y_train, znorm(X_test[:, 0, :]), y_test


def trace_split():
    from tslearn.datasets import CachedDatasets

    X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    return znorm(X_train[:, :, 0]), y_train, znorm(X_test[:, :, 0]), y_test


def load(name):
    if name == "Trace":
        return trace_split()
    from aeon import datasets

    loaders = {"GunPoint": datasets.load_gunpoint, "ArrowHead": datasets.load_arrow_head,
               "ItalyPowerDemand": datasets.load_italy_power_demand}
    return aeon_split(loaders[name])


@pytest.mark.parametrize("name, window, published", [
    ("GunPoint", None, 0.0933),
    ("ArrowHead", None, 0.2971),
    ("ItalyPowerDemand", None, 0.0496),
    ("Trace", None, 0.0000),
    ("Trace", 0.03, 0.0100),
])
def test_one_nn_dtw_error_matches_the_ucr_archive(name, window, published):
    X_train, y_train, X_test, y_test = load(name)
    clf = mmalign.KNeighborsDTW(1, window=window).fit(X_train, y_train)
    error = np.mean(clf.predict(X_test) != np.asarray(y_test))
    assert round(error, 4) == published


@pytest.mark.parametrize("name, published", [("GunPoint", 0.0867), ("Trace", 0.2400)])
def test_zero_window_is_euclidean_one_nn(name, published):
    X_train, y_train, X_test, y_test = load(name)
    clf = mmalign.KNeighborsDTW(1, radius=0).fit(X_train, y_train)
    assert round(np.mean(clf.predict(X_test) != np.asarray(y_test)), 4) == published
