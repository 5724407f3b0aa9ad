"""CCA speed against scikit-learn; CTW / GCTW / DCTW accuracy against DTW and tslearn.

Multi-set DCTW (``DCTW.align_all``) is compared with GCTW and pairwise DTW / CTW on
three sequences with nonlinear maps.

Speed: closed-form ``mmalign.cca`` and scikit-learn's NIPALS ``CCA`` (its
defaults) on 5000 x 40 / 30 with k = 10, same data, canonical correlations
compared.  Accuracy: mean absolute deviation (frames) of the estimated path
from the true warp on :func:`mmalign.datasets.warped_multimodal` (the CTW/GCTW
papers' synthetic protocol: a 2-d spiral, random monotone warps, random linear
maps, noise) over 20 seeds, and on BasicMotions accelerometer vs a warped
gyroscope of the same recording.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad
from mmalign.projection.ctw import uniform_path

from .common import best_time, machine_info, machine_markdown, markdown_table, write_report


def _cca_speed(quick: bool):
    from sklearn.cross_decomposition import CCA as SklearnCCA

    rng = np.random.default_rng(0)
    n, k = 5000, 10
    z = rng.standard_normal((n, k))
    X = z @ rng.standard_normal((k, 40)) + rng.standard_normal((n, 40))
    Y = z @ rng.standard_normal((k, 30)) + rng.standard_normal((n, 30))
    ours = best_time(lambda: mmalign.cca(X, Y, k), repeats=3 if quick else 10)
    theirs = best_time(lambda: SklearnCCA(k).fit(X, Y), repeats=1 if quick else 3,
                       budget_s=20)
    _, _, rho, _, _ = mmalign.cca(X, Y, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        u, v = SklearnCCA(k).fit(X, Y).transform(X, Y)
    theirs_rho = np.sort([np.corrcoef(u[:, i], v[:, i])[0, 1] for i in range(k)])[::-1]
    rows = [
        ["mmalign.cca (closed form)", ours["best"], "ref", f"{rho[0]:.6f} … {rho[-1]:.6f}"],
        ["scikit-learn CCA (NIPALS, defaults)", theirs["best"], theirs["best"] / ours["best"],
         f"{theirs_rho[0]:.6f} … {theirs_rho[-1]:.6f}"],
    ]
    table = markdown_table(["library", "seconds", "ratio (peer / mmalign)",
                            "canonical correlations 1 … 10"], rows)
    return table, {"mmalign": ours, "sklearn": theirs, "rho": rho, "sklearn_rho": theirs_rho,
                   "max_rho_difference": float(np.abs(rho - theirs_rho).max())}


def _ctw_accuracy(quick: bool):
    from tslearn.metrics import ctw_path

    seeds = range(5 if quick else 20)
    errors = {name: [] for name in ("uniform", "DTW", "tslearn ctw_path", "mmalign CTW")}
    times = {name: 0.0 for name in errors}
    for seed in seeds:
        data = warped_multimodal(2, lengths=(150, 120), dims=(3, 3), noise=0.1, seed=seed)
        x, y = data.sequences
        ref = data.reference(0, 1)
        for name, fn in (
            ("uniform", lambda: uniform_path(len(x), len(y))),
            ("DTW", lambda: mmalign.dtw_path(x, y)),
            ("tslearn ctw_path", lambda: np.array(ctw_path(x, y)[0])),
            ("mmalign CTW", lambda: mmalign.CTW().align(x, y)),
        ):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fn()
            times[name] += time.perf_counter() - t0
            errors[name].append(mad(result, ref))
    rows = [[name, float(np.mean(e)), float(np.median(e)), times[name] / len(seeds)]
            for name, e in errors.items()]
    table = markdown_table(["method", "mean error (frames)", "median error (frames)",
                            "seconds per pair"], rows)
    return table, {"errors": errors, "seeds": list(seeds)}


def _gctw_accuracy(quick: bool):
    seeds = range(3 if quick else 10)
    errors = {"uniform": [], "pairwise mmalign CTW": [], "mmalign GCTW": []}
    for seed in seeds:
        data = warped_multimodal(3, lengths=(150, 120, 170), dims=(3, 5, 2), noise=0.05,
                                 warp_strength=1.0, seed=seed)
        result = mmalign.GCTW().align_all(data.sequences)
        for a, b in ((0, 1), (0, 2), (1, 2)):
            ref = data.reference(a, b)
            xa, xb = data.sequences[a], data.sequences[b]
            errors["uniform"].append(mad(uniform_path(len(xa), len(xb)), ref))
            errors["pairwise mmalign CTW"].append(mad(mmalign.CTW().align(xa, xb), ref))
            errors["mmalign GCTW"].append(mad(result.pair(a, b), ref))
    rows = [[name, float(np.mean(e)), float(np.median(e))] for name, e in errors.items()]
    table = markdown_table(["method (3 sequences, dims 3 / 5 / 2, all 3 pairs)",
                            "mean error (frames)", "median error (frames)"], rows)
    return table, {"errors": errors, "seeds": list(seeds)}


def _basic_motions(quick: bool):
    recordings = range(5 if quick else 20)
    errors = {"DTW": [], "mmalign CTW": []}
    for index in recordings:
        pair = basic_motions_warped(index=index, seed=index)
        ref = pair.reference()
        errors["DTW"].append(mad(mmalign.dtw_path(pair.x, pair.y), ref))
        errors["mmalign CTW"].append(mad(mmalign.CTW().align(pair.x, pair.y), ref))
    rows = [[name, float(np.mean(e)), float(np.median(e))] for name, e in errors.items()]
    table = markdown_table(["method (accelerometer vs warped gyroscope)",
                            "mean error (frames)", "median error (frames)"], rows)
    return table, {"errors": errors}


def _deep(quick: bool):
    seeds = range(3 if quick else 10)
    errors = {"DTW": [], "mmalign CTW": [], "mmalign DCTW": []}
    t_dctw = 0.0
    for seed in seeds:
        data = warped_multimodal(2, lengths=(150, 120), dims=(3, 3), noise=0.05,
                                 map="nonlinear", seed=seed)
        x, y = data.sequences
        ref = data.reference(0, 1)
        errors["DTW"].append(mad(mmalign.dtw_path(x, y), ref))
        errors["mmalign CTW"].append(mad(mmalign.CTW().align(x, y), ref))
        t0 = time.perf_counter()
        model = mmalign.DCTW(n_outer=4, epochs_per_step=30, train={"seed": seed}).fit([(x, y)])
        errors["mmalign DCTW"].append(mad(model.align(x, y), ref))
        t_dctw += time.perf_counter() - t0
    real = {"mmalign CTW": [], "mmalign DCTW": []}
    for index in range(4 if quick else 8):
        pair = basic_motions_warped(index=index, seed=index)
        ref = pair.reference()
        real["mmalign CTW"].append(mad(mmalign.CTW().align(pair.x, pair.y), ref))
        model = mmalign.DCTW(n_outer=3, epochs_per_step=30, train={"seed": index}).fit(pair.x, pair.y)
        real["mmalign DCTW"].append(mad(model.align(pair.x, pair.y), ref))
    rows = [[name, float(np.mean(e)), float(np.median(e))] for name, e in errors.items()]
    rows += [[f"BasicMotions: {name}", float(np.mean(e)), float(np.median(e))]
             for name, e in real.items()]
    table = markdown_table(["method", "mean error (frames)", "median error (frames)"], rows)
    return table, {"errors": errors, "basic_motions": real, "seeds": list(seeds),
                   "dctw_seconds_per_pair": t_dctw / len(seeds)}


def _deep_multiset(quick: bool):
    """Three sequences, nonlinear maps: GCTW vs multi-set DCTW vs pairwise DTW / CTW."""
    seeds = range(5 if quick else 10)
    errors = {"pairwise DTW": [], "pairwise mmalign CTW": [], "mmalign GCTW": [],
              "mmalign DCTW.align_all (multi-set)": []}
    t_multi = 0.0
    for seed in seeds:
        data = warped_multimodal(3, lengths=(150, 120, 170), dims=3, noise=0.05,
                                 map="nonlinear", seed=seed)
        seqs = data.sequences
        gctw = mmalign.GCTW().align_all(seqs)
        t0 = time.perf_counter()
        multi = mmalign.DCTW(n_outer=4, epochs_per_step=30, train={"seed": seed}).align_all(seqs)
        t_multi += time.perf_counter() - t0
        for a, b in ((0, 1), (0, 2), (1, 2)):
            ref = data.reference(a, b)
            errors["pairwise DTW"].append(mad(mmalign.dtw_path(seqs[a], seqs[b]), ref))
            errors["pairwise mmalign CTW"].append(mad(mmalign.CTW().align(seqs[a], seqs[b]), ref))
            errors["mmalign GCTW"].append(mad(gctw.pair(a, b), ref))
            errors["mmalign DCTW.align_all (multi-set)"].append(mad(multi.pair(a, b), ref))
    rows = [[name, float(np.mean(e)), float(np.median(e))] for name, e in errors.items()]
    table = markdown_table(["method (3 sequences, nonlinear maps, all 3 pairs)",
                            "mean error (frames)", "median error (frames)"], rows)
    return table, {"errors": errors, "seeds": list(seeds),
                   "dctw_multiset_seconds_per_set": t_multi / len(seeds)}


def run(quick: bool = False) -> str:
    info = machine_info()
    cca_table, cca_data = _cca_speed(quick)
    ctw_table, ctw_data = _ctw_accuracy(quick)
    gctw_table, gctw_data = _gctw_accuracy(quick)
    bm_table, bm_data = _basic_motions(quick)
    deep_table, deep_data = _deep(quick)
    multi_table, multi_data = _deep_multiset(quick)
    markdown = "\n".join([
        "# Projection aligners: CCA speed, CTW / GCTW accuracy", "",
        machine_markdown(info),
        "## CCA, 5000 rows, 40 / 30 features, k = 10 (best of repeated calls)", "",
        cca_table, "",
        f"Largest difference between the two sets of canonical correlations: "
        f"{cca_data['max_rho_difference']:.1e}.", "",
        "## CTW, two 3-d views of a warped spiral (150 / 120 frames, noise 0.1), "
        f"{len(ctw_data['seeds'])} seeds", "",
        ctw_table, "",
        f"## GCTW, {len(gctw_data['seeds'])} seeds", "",
        gctw_table, "",
        "## BasicMotions (aeon), accelerometer vs the same recording's gyroscope under a "
        "random monotone warp", "",
        bm_table, "",
        f"## DCTW, nonlinear maps (2-layer tanh networks), {len(deep_data['seeds'])} seeds, "
        "and BasicMotions (8 recordings)", "",
        deep_table, "",
        f"DCTW (4 alternations x 30 epochs, CPU): {deep_data['dctw_seconds_per_pair']:.1f} s "
        "per pair.", "",
        f"## Multi-set DCTW, 3 sequences (150 / 120 / 170 frames, 3-d nonlinear views), "
        f"{len(multi_data['seeds'])} seeds", "",
        multi_table, "",
        f"Multi-set DCTW (4 alternations x 30 epochs, CPU): "
        f"{multi_data['dctw_multiset_seconds_per_set']:.1f} s per set of 3.", "",
    ])
    write_report("projection", markdown, {"machine": info, "cca": cca_data, "ctw": ctw_data,
                                          "gctw": gctw_data, "basic_motions": bm_data,
                                          "deep": deep_data, "deep_multiset": multi_data})
    return markdown
