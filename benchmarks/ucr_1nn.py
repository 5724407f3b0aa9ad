"""1-NN DTW test error on UCR data sets that ship offline, against the published UCR 2018 values.

Protocol (Dau et al. 2019, "The UCR time series archive", IEEE/CAA J. Autom. Sinica
6(6)): the archive's fixed train/test split, every series z-normalised on its own
(``(x - mean) / std``, population std, ddof = 0), 1-nearest-neighbour under DTW
(squared-Euclidean local cost, Sakoe–Chiba radius ``round(w * L)``) or Euclidean
distance, error = fraction of misclassified test series.

mmalign runs ``KNeighborsDTW(1, window=w)`` (``window=None``: no window) with its
lower-bound cascade on all cores; the table also shows the fraction of the
``n_test * n_train`` DTW computations the cascade pruned and checks that the
cascade predicts exactly what brute force (``lower_bounds=False``) predicts.
"""

from __future__ import annotations

import numpy as np

import mmalign

from .common import best_time, machine_info, machine_markdown, markdown_table, write_report

NAME = "ucr_1nn"

# published UCR 2018 1-NN test errors (Dau et al. 2019, archive web page / DataSummary.csv)
PUBLISHED_DTW = [  # (data set, window fraction or None for full, error)
    ("GunPoint", None, 0.0933),
    ("ArrowHead", None, 0.2971),
    ("ItalyPowerDemand", None, 0.0496),
    ("Trace", None, 0.0000),
    ("Trace", 0.03, 0.0100),
]
PUBLISHED_EUCLIDEAN = {"GunPoint": 0.0867, "ArrowHead": 0.2000, "ItalyPowerDemand": 0.0447,
                       "Trace": 0.2400}
SOURCES = {
    "GunPoint": "aeon.datasets.load_gunpoint",
    "ArrowHead": "aeon.datasets.load_arrow_head",
    "ItalyPowerDemand": "aeon.datasets.load_italy_power_demand",
    "Trace": 'tslearn CachedDatasets().load_dataset("Trace")',
}


def load(name: str):
    """``X_train, y_train, X_test, y_test`` as 2-d float64 arrays (series, time) and label arrays."""
    if name == "Trace":
        from tslearn.datasets import CachedDatasets

        X_train, y_train, X_test, y_test = CachedDatasets().load_dataset("Trace")
    else:
        from aeon import datasets

        loader = {"GunPoint": datasets.load_gunpoint, "ArrowHead": datasets.load_arrow_head,
                  "ItalyPowerDemand": datasets.load_italy_power_demand}[name]
        X_train, y_train = loader(split="train")
        X_test, y_test = loader(split="test")
    squeeze = lambda X: np.asarray(X, dtype=np.float64).reshape(len(X), -1)  # noqa: E731 - univariate
    return squeeze(X_train), np.asarray(y_train), squeeze(X_test), np.asarray(y_test)


def znormalise(X: np.ndarray) -> np.ndarray:
    """Each row ``(x - mean) / std`` with the population std (ddof = 0); constant rows become 0."""
    mean = X.mean(axis=1, keepdims=True)
    std = X.std(axis=1, keepdims=True)
    return (X - mean) / np.where(std > 0, std, 1.0)


def euclidean_1nn(X_train, y_train, X_test) -> np.ndarray:
    """1-NN under Euclidean distance; ties go to the lower training index."""
    d2 = ((X_test[:, None, :] - X_train[None, :, :]) ** 2).sum(axis=2)
    return y_train[np.argmin(d2, axis=1)]


def _window_label(w) -> str:
    return "full" if w is None else f"w={w:g}"


def run(quick: bool = False) -> str:
    """Measure every data set, write ``results/ucr_1nn.md|json`` and return the Markdown."""
    repeats = 1 if quick else 3
    cache = {}
    rows = []
    for name, w, published in PUBLISHED_DTW:
        if name not in cache:
            X_train, y_train, X_test, y_test = load(name)
            cache[name] = (znormalise(X_train), y_train, znormalise(X_test), y_test)
        X_train, y_train, X_test, y_test = cache[name]
        clf = mmalign.KNeighborsDTW(1, window=w).fit(X_train, y_train)
        clf.predict(X_test[:2])  # warm-up: numba compiles on the first call
        predicted = None

        def fit_predict():
            nonlocal predicted
            predicted = clf.fit(X_train, y_train).predict(X_test)

        timing = best_time(fit_predict, repeats, warmup=False)
        computed = int(clf.n_dtw_computed_)
        total = len(X_test) * len(X_train)
        brute = mmalign.KNeighborsDTW(1, window=w, lower_bounds=False).fit(X_train, y_train)
        same_as_brute = bool(np.array_equal(brute.predict(X_test), predicted))
        error = float(np.mean(predicted != y_test))
        rows.append(dict(dataset=name, method="DTW", window=_window_label(w),
                         radius=None if w is None else int(round(w * X_train.shape[1])),
                         error=error, published=published,
                         match=round(error, 4) == round(published, 4), seconds=timing["best"],
                         n_train=len(X_train), n_test=len(X_test), length=X_train.shape[1],
                         dtw_computed=computed, dtw_total=total, pruned=1 - computed / total,
                         same_as_brute_force=same_as_brute, source=SOURCES[name]))

    for name, published in PUBLISHED_EUCLIDEAN.items():
        X_train, y_train, X_test, y_test = cache[name]
        timing = best_time(lambda: euclidean_1nn(X_train, y_train, X_test), repeats)
        error = float(np.mean(euclidean_1nn(X_train, y_train, X_test) != y_test))
        rows.append(dict(dataset=name, method="Euclidean", window="Euclidean", radius=0,
                         error=error, published=published,
                         match=round(error, 4) == round(published, 4), seconds=timing["best"],
                         n_train=len(X_train), n_test=len(X_test), length=X_train.shape[1],
                         dtw_computed=None, dtw_total=None, pruned=None,
                         same_as_brute_force=None, source=SOURCES[name]))

    info = machine_info()
    table = markdown_table(
        ["data set", "window", "our error", "published", "match", "seconds",
         "DTW pruned by cascade", "= brute force", "train / test × length"],
        [[r["dataset"],
          r["window"] + ("" if r["radius"] in (None, 0) else f" (r={r['radius']})"),
          f"{r['error']:.4f}", f"{r['published']:.4f}", "yes" if r["match"] else "**NO**",
          r["seconds"],
          "—" if r["pruned"] is None else
          f"{r['pruned']:.1%} ({r['dtw_computed']:,} of {r['dtw_total']:,} computed)",
          "—" if r["same_as_brute_force"] is None else
          ("yes" if r["same_as_brute_force"] else "**NO**"),
          f"{r['n_train']} / {r['n_test']} × {r['length']}"]
         for r in rows])
    mismatches = [r for r in rows if not r["match"] or r["same_as_brute_force"] is False]
    summary = ([f"- **Mismatch**: {r['dataset']} {r['window']}: error {r['error']:.4f} vs "
                f"published {r['published']:.4f}"
                + ("" if r["same_as_brute_force"] is not False else
                   "; cascade predictions differ from brute force")
                for r in mismatches]
               or ["- Every error matches the published value to 4 decimals, and the cascade "
                   "predicts exactly what brute force predicts."])
    markdown = "\n".join([
        f"# UCR 1-NN test error{' (quick)' if quick else ''}",
        "",
        machine_markdown(info),
        "Fixed UCR train/test splits; every series z-normalised on its own (population std). "
        "DTW: `mmalign.KNeighborsDTW(1, window=w)`, squared-Euclidean local cost, radius "
        "r = round(w·L), all cores; seconds = fit + predict of the whole test set, best of "
        f"{repeats} after a warm-up. Euclidean: brute-force numpy. Published values: UCR 2018 "
        "archive (Dau et al. 2019).",
        "",
        table,
        "",
        "## Summary",
        "",
        *summary,
    ])
    write_report(NAME, markdown, dict(name=NAME, quick=quick, machine=info, rows=rows,
                                      reference="Dau et al. 2019, The UCR time series archive"))
    return markdown


if __name__ == "__main__":
    print(run())
