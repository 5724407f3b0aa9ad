"""Elastic distances: agreement with aeon, pairwise speed against aeon, 1-NN quality.

One run, three tables:

* **Agreement**: ``mmalign.distance(x, y, metric)`` against
  ``aeon.distances.distance(x.T, y.T, method=metric)`` on random pairs of unequal
  lengths, univariate and multivariate, without a window and with aeon's
  ``window=0.1`` (passed to mmalign as aeon's bounding matrix, ``mask=``; see
  ``mmalign.warping.elastic``); mmalign's dtw is squared first (mmalign returns the
  square root).  Paths: ``mmalign.distance_path`` against aeon's
  ``<metric>_alignment_path``, equal index pairs.
* **Speed**: the symmetric pairwise matrix of one collection, ``mmalign.cdist``
  against ``aeon.distances.pairwise_distance``, both on one thread (``n_jobs=1``),
  calls interleaved (mmalign, aeon, mmalign, ...), median and range of the repeats,
  after an untimed warm-up of each (numba compiles).  The matrices are compared too.
* **Quality**: 1-NN test error per metric at its default parameters (no window) on
  UCR sets that ship with aeon, ``mmalign.KNeighborsTimeSeries(metric=...)`` next to
  aeon's ``KNeighborsTimeSeriesClassifier(distance=...)``; the predictions must be
  equal.
"""

from __future__ import annotations

import time

import numpy as np

import mmalign
from mmalign.warping import elastic as E

from .common import machine_info, machine_markdown, markdown_table, write_report

NAME = "elastic_distances"
EXTRA = {}  # default parameters everywhere


def _aeon_value(A, metric, x, y, w):
    kw = {} if w is None else {"window": w}
    return A.distance(np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), method=metric, **kw)


def _window(metric, n, m, w):
    if w is None:
        return {}
    from aeon.distances.elastic._bounding_matrix import create_bounding_matrix

    if metric in ("ddtw", "wddtw"):
        n, m = n - 2, m - 2
    return {"mask": create_bounding_matrix(n, m, w)}


def agreement(quick: bool) -> list[dict]:
    import aeon.distances as A

    rng = np.random.default_rng(0)
    pairs = 4 if quick else 20
    rows = []
    for d in (1, 3):
        for w in (None, 0.1):
            data = []
            for _ in range(pairs):
                n, m = (int(v) for v in rng.integers(30, 80, 2))
                data.append((rng.normal(size=(n, d)), rng.normal(size=(m, d))))
            for metric in E.METRICS:
                if metric == "euclidean" and w is not None:
                    continue
                worst, same_paths, n_paths = 0.0, 0, 0
                for x, y in data:
                    if metric == "euclidean":
                        y = y[:len(x)] if len(y) >= len(x) else y
                        x = x[:len(y)]
                    win = _window(metric, len(x), len(y), w)
                    ours = E.distance(x, y, metric, **win)
                    ours = ours**2 if metric == "dtw" else ours
                    theirs = _aeon_value(A, metric, x, y, w)
                    worst = max(worst, abs(ours - theirs) / max(abs(theirs), 1e-300))
                    # aeon's compute_lcss_return_path loops forever once its trace leaves
                    # the window (it only moves inside it): not called with a window
                    if metric in E.PATH_METRICS and not (metric == "lcss" and w is not None):
                        kw = {} if w is None else {"window": w}
                        path, _ = getattr(A, f"{metric}_alignment_path")(
                            np.ascontiguousarray(x.T), np.ascontiguousarray(y.T), **kw)
                        try:
                            mine = E.distance_path(x, y, metric, **win).path().tolist()
                        except ValueError:  # lcss with no match: an empty path
                            mine = []
                        n_paths += 1
                        same_paths += [tuple(p) for p in mine] == [tuple(p) for p in path]
                rows.append(dict(metric=metric, d=d, window="none" if w is None else f"aeon {w}",
                                 pairs=len(data), max_rel_diff=worst,
                                 paths_equal=f"{same_paths}/{n_paths}" if n_paths else
                                 ("no path" if metric == "euclidean" else
                                  "not compared (aeon's trace loops)")))
    return rows


def speed(quick: bool) -> list[dict]:
    import aeon.distances as A

    rng = np.random.default_rng(1)
    N, L = (30, 100) if quick else (100, 150)
    repeats = 3 if quick else 5
    X = rng.normal(size=(N, L))
    rows = []
    for metric in E.METRICS:
        ours_fn = lambda: mmalign.cdist(X, metric=metric, n_jobs=1)  # noqa: E731
        aeon_fn = lambda: A.pairwise_distance(X, method=metric, n_jobs=1)  # noqa: E731
        ours_D, aeon_D = ours_fn(), aeon_fn()  # warm-up (compilation) and agreement
        if metric == "dtw":
            ours_D = ours_D**2
        diff = float(np.max(np.abs(ours_D - aeon_D) / np.maximum(np.abs(aeon_D), 1e-300)))
        t_ours, t_aeon = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            ours_fn()
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            aeon_fn()
            t_aeon.append(time.perf_counter() - t0)
        rows.append(dict(metric=metric, n_series=N, length=L, pairs=N * (N - 1) // 2,
                         mmalign_s=float(np.median(t_ours)), aeon_s=float(np.median(t_aeon)),
                         mmalign_range=(min(t_ours), max(t_ours)),
                         aeon_range=(min(t_aeon), max(t_aeon)),
                         speedup=float(np.median(t_aeon) / np.median(t_ours)),
                         max_rel_diff=diff, times_mmalign=t_ours, times_aeon=t_aeon))
    return rows


DATASETS = {"GunPoint": "load_gunpoint", "ArrowHead": "load_arrow_head",
            "ItalyPowerDemand": "load_italy_power_demand"}


def quality(quick: bool) -> list[dict]:
    from aeon import datasets
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    names = ["ItalyPowerDemand"] if quick else list(DATASETS)
    metrics = ("dtw", "msm", "lcss", "twe") if quick else E.METRICS
    rows = []
    for name in names:
        loader = getattr(datasets, DATASETS[name])
        Xtr, ytr = loader(split="train")
        Xte, yte = loader(split="test")
        Xtr, Xte = np.asarray(Xtr, float), np.asarray(Xte, float)  # (N, 1, L)
        if quick:
            Xte, yte = Xte[:100], yte[:100]
        for metric in metrics:
            t0 = time.perf_counter()
            ours = mmalign.KNeighborsTimeSeries(metric=metric).fit(Xtr[:, 0], ytr).predict(
                Xte[:, 0])
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            theirs = KNeighborsTimeSeriesClassifier(distance=metric, n_jobs=1).fit(
                Xtr, ytr).predict(Xte)
            t_aeon = time.perf_counter() - t0
            # aeon breaks ties among equally near training series by np.argpartition's
            # order, mmalign by the lower index: a differing prediction is a tie when a
            # training series of aeon's label lies at the nearest distance too
            D = mmalign.cdist(Xte[:, 0], Xtr[:, 0], metric=metric)
            differ = np.flatnonzero(ours != theirs)
            ties = sum(bool(np.any(ytr[D[q] == D[q].min()] == theirs[q])) for q in differ)
            rows.append(dict(dataset=name, metric=metric, n_train=len(Xtr), n_test=len(Xte),
                             length=Xtr.shape[-1], error=float(np.mean(ours != yte)),
                             aeon_error=float(np.mean(theirs != yte)),
                             same_predictions=bool(np.array_equal(ours, theirs)),
                             n_differ=len(differ), n_differ_ties=int(ties),
                             mmalign_s=t_ours, aeon_s=t_aeon))
    return rows


def run(quick: bool = False) -> str:
    agree = agreement(quick)
    fast = speed(quick)
    qual = quality(quick)
    info = machine_info()
    t1 = markdown_table(
        ["metric", "d", "window", "pairs", "max relative difference", "paths equal"],
        [[r["metric"], r["d"], r["window"], r["pairs"], f"{r['max_rel_diff']:.1e}",
          r["paths_equal"]] for r in agree])
    t2 = markdown_table(
        ["metric", "series × length", "mmalign s (median, range)", "aeon s (median, range)",
         "speed-up", "max rel. diff"],
        [[r["metric"], f"{r['n_series']} × {r['length']}",
          f"{r['mmalign_s']:.3f} ({r['mmalign_range'][0]:.3f}–{r['mmalign_range'][1]:.3f})",
          f"{r['aeon_s']:.3f} ({r['aeon_range'][0]:.3f}–{r['aeon_range'][1]:.3f})",
          f"{r['speedup']:.1f}x", f"{r['max_rel_diff']:.1e}"] for r in fast])
    t3 = markdown_table(
        ["data set", "metric", "train / test × length", "mmalign error", "aeon error",
         "same predictions", "mmalign s", "aeon s"],
        [[r["dataset"], r["metric"], f"{r['n_train']} / {r['n_test']} × {r['length']}",
          f"{r['error']:.4f}", f"{r['aeon_error']:.4f}",
          "yes" if r["same_predictions"] else
          (f"{r['n_differ']} differ, all at tied distances" if r["n_differ"] == r["n_differ_ties"]
           else f"**NO** ({r['n_differ']} differ, {r['n_differ_ties']} at ties)"),
          f"{r['mmalign_s']:.2f}",
          f"{r['aeon_s']:.2f}"] for r in qual])
    worst = max(r["max_rel_diff"] for r in agree)
    paths_bad = [r for r in agree if "/" in r["paths_equal"]
                 and r["paths_equal"].split("/")[0] != r["paths_equal"].split("/")[1]]
    slow = [r["metric"] for r in fast if r["speedup"] < 5]
    qual_bad = [f"{r['dataset']} {r['metric']}" for r in qual
                if r["n_differ"] != r["n_differ_ties"]]
    qual_ties = [f"{r['dataset']} {r['metric']} ({r['n_differ']})" for r in qual
                 if r["n_differ"] and r["n_differ"] == r["n_differ_ties"]]
    summary = [
        f"- Largest relative difference to aeon over every metric, layout and window: "
        f"{worst:.1e} (target 1e-8: {'met' if worst <= 1e-8 else '**missed**'}).",
        "- Paths equal to aeon's in every case." if not paths_bad else
        "- **Paths differ**: " + ", ".join(f"{r['metric']} d={r['d']} {r['window']}"
                                          for r in paths_bad),
        f"- Pairwise speed-up over aeon (one thread each): "
        f"{min(r['speedup'] for r in fast):.1f}x to {max(r['speedup'] for r in fast):.1f}x; "
        + ("every metric at 5x or more." if not slow else
           f"below the 5x target: {', '.join(slow)}."),
        ("- 1-NN predictions equal to aeon's for every metric and data set"
         + ("." if not qual_ties else
            ", except test series whose nearest training series tie in distance across "
            "labels (aeon takes np.argpartition's pick among them, mmalign the lowest "
            "index): " + ", ".join(qual_ties) + ".")) if not qual_bad
        else "- **1-NN predictions differ beyond ties**: " + ", ".join(qual_bad),
    ]
    markdown = "\n".join([
        f"# Elastic distances against aeon{' (quick)' if quick else ''}",
        "",
        machine_markdown(info),
        "## Agreement (values and paths)",
        "",
        "Random normal pairs, lengths 30–79 drawn independently (unequal), `d` features; "
        "aeon's `window=0.1` given to mmalign as aeon's bounding matrix (`mask=`). dtw "
        "compared squared (mmalign returns the square root). lcss paths with a window are "
        "not compared: aeon's `compute_lcss_return_path` never ends once its trace reaches a "
        "cell outside the window (mmalign's stops there).",
        "",
        t1,
        "",
        "## Speed: pairwise matrix, one thread each",
        "",
        "`mmalign.cdist(X, metric=m, n_jobs=1)` against "
        "`aeon.distances.pairwise_distance(X, method=m, n_jobs=1)`, random normal series, "
        f"calls interleaved, median (range) of {fast[0]['times_mmalign'].__len__()} repeats "
        "after a warm-up. The machine was shared with other jobs while this ran.",
        "",
        t2,
        "",
        "## Quality: 1-NN test error at default parameters",
        "",
        "UCR sets as aeon ships them (fixed splits, no further normalisation), no window; "
        "`mmalign.KNeighborsTimeSeries(metric=m)` (all cores) against aeon's "
        "`KNeighborsTimeSeriesClassifier(distance=m, n_jobs=1)`; seconds include aeon's numba "
        "compilation on its first call of each metric.",
        "",
        t3,
        "",
        "## Summary",
        "",
        *summary,
    ])
    write_report(NAME, markdown, dict(name=NAME, quick=quick, machine=info, agreement=agree,
                                      speed=fast, quality=qual))
    return markdown


if __name__ == "__main__":
    print(run())
