"""GTW (smooth basis warps, Gauss–Newton) beside GCTW, pairwise CTW and DTW: error, time, scaling.

Accuracy: mean absolute deviation (frames) of each pair's path from the true
warp.  (1) The CTW/GCTW papers' synthetic protocol
(:func:`mmalign.datasets.warped_multimodal`: a 2-d spiral seen through three
random linear maps of dimensions 3 / 5 / 2, random monotone warps, noise 0.05),
all three pairs of each set; GTW and GCTW align the three at once, CTW and DTW
(on the first principal component of each sequence, as both multi-set
methods start) pair by pair.  (2) BasicMotions accelerometer against the
same recording's gyroscope under a random monotone warp (the pair case).
Time: seconds per set (per pair for BasicMotions), one thread.  Scaling: GTW
and GCTW seconds for N = 2, 3, 5, 8 sequences of 150 frames and for 3
sequences of 100, 200, 400, 800 frames.
"""

from __future__ import annotations

import time

import numpy as np

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import mean_absolute_deviation as mad
from mmalign.projection.ctw import _pca_dtw_path, uniform_path

from .common import machine_info, machine_markdown, markdown_table, write_report

PAIRS = ((0, 1), (0, 2), (1, 2))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _synthetic(quick: bool):
    seeds = range(3 if quick else 10)
    errors = {m: [] for m in ("uniform", "pairwise DTW (PCA)", "pairwise CTW", "GCTW", "GTW")}
    seconds = {m: 0.0 for m in errors}
    for seed in seeds:
        data = warped_multimodal(3, lengths=(150, 120, 170), dims=(3, 5, 2), noise=0.05,
                                 warp_strength=1.0, seed=seed)
        seqs = data.sequences
        gctw, t = _timed(lambda: mmalign.GCTW().align_all(seqs))
        seconds["GCTW"] += t
        gtw, t = _timed(lambda: mmalign.GTW().align_all(seqs))
        seconds["GTW"] += t
        for a, b in PAIRS:
            ref = data.reference(a, b)
            errors["uniform"].append(mad(uniform_path(len(seqs[a]), len(seqs[b])), ref))
            path, t = _timed(lambda: _pca_dtw_path(seqs[a], seqs[b], None))
            seconds["pairwise DTW (PCA)"] += t
            errors["pairwise DTW (PCA)"].append(mad(path, ref))
            ctw, t = _timed(lambda: mmalign.CTW().align(seqs[a], seqs[b]))
            seconds["pairwise CTW"] += t
            errors["pairwise CTW"].append(mad(ctw, ref))
            errors["GCTW"].append(mad(gctw.pair(a, b), ref))
            errors["GTW"].append(mad(gtw.pair(a, b), ref))
    rows = [[m, float(np.mean(e)), float(np.median(e)), seconds[m] / len(seeds)] for m, e in errors.items()]
    table = markdown_table(["method (3 sequences, dims 3 / 5 / 2, all 3 pairs)", "mean error (frames)",
                            "median error (frames)", "seconds per set of 3"], rows)
    return table, {"errors": errors, "seconds": seconds, "seeds": list(seeds)}


def _basic_motions(quick: bool):
    recordings = range(5 if quick else 20)
    errors = {m: [] for m in ("DTW", "CTW", "GCTW", "GTW")}
    seconds = {m: 0.0 for m in errors}
    for index in recordings:
        pair = basic_motions_warped(index=index, seed=index)
        ref = pair.reference()
        for name, fn in (("DTW", lambda: mmalign.dtw_path(pair.x, pair.y)),
                         ("CTW", lambda: mmalign.CTW().align(pair.x, pair.y)),
                         ("GCTW", lambda: mmalign.GCTW().align(pair.x, pair.y)),
                         ("GTW", lambda: mmalign.GTW().align(pair.x, pair.y))):
            path, t = _timed(fn)
            seconds[name] += t
            errors[name].append(mad(path, ref))
    rows = [[m, float(np.mean(e)), float(np.median(e)), seconds[m] / len(recordings)]
            for m, e in errors.items()]
    table = markdown_table(["method (accelerometer vs warped gyroscope)", "mean error (frames)",
                            "median error (frames)", "seconds per pair"], rows)
    return table, {"errors": errors, "seconds": seconds}


def _scaling(quick: bool):
    counts = (2, 3, 5) if quick else (2, 3, 5, 8)
    lengths = (100, 200) if quick else (100, 200, 400, 800)
    rows, record = [], []
    for n_seq, length in [(n, 150) for n in counts] + [(3, L) for L in lengths]:
        data = warped_multimodal(n_seq, lengths=tuple([length] * n_seq), dims=tuple([3] * n_seq),
                                 noise=0.05, warp_strength=1.0, seed=0)
        _, t_gctw = _timed(lambda: mmalign.GCTW().align_all(data.sequences))
        gtw, t_gtw = _timed(lambda: mmalign.GTW().align_all(data.sequences))
        rows.append([n_seq, length, t_gctw, t_gtw, len(gtw.objective) - 1])
        record.append({"n_sequences": n_seq, "length": length, "gctw_s": t_gctw, "gtw_s": t_gtw,
                       "gtw_iterations": len(gtw.objective) - 1})
    table = markdown_table(["sequences", "frames each", "GCTW seconds", "GTW seconds", "GTW iterations"], rows)
    return table, record


def run(quick: bool = False) -> str:
    info = machine_info()
    synthetic_table, synthetic = _synthetic(quick)
    bm_table, bm = _basic_motions(quick)
    scaling_table, scaling = _scaling(quick)
    markdown = "\n".join([
        "# GTW beside GCTW, CTW and DTW", "", machine_markdown(info),
        f"## Three sequences of the synthetic protocol, {len(synthetic['seeds'])} seeds", "",
        synthetic_table, "",
        "## BasicMotions (aeon), accelerometer vs the same recording's gyroscope under a random monotone warp",
        "", bm_table, "",
        "## Time as the number of sequences and their length grow (one set each)", "",
        scaling_table, "",
    ])
    write_report("gtw", markdown, {"machine": info, "synthetic": synthetic, "basic_motions": bm,
                                   "scaling": scaling})
    return markdown
