"""Every explicit aligner on the same ground-truth warping tasks, side by side.

``python -m benchmarks alignment_quality [--quick]``

DTW, soft-DTW (the monotone path through its expected alignment), CTW, GCTW
(run on the pair) and DCTW align the same pairs; each pair has a known true
correspondence, so every method is scored by the same numbers: mean absolute
deviation of its path from the truth (frames of y, averaged over the frames of
x) and the fraction of frames of x matched within 3 frames.

Tasks (all from :mod:`mmalign.datasets`):

- ``spiral, linear``: :func:`~mmalign.datasets.warped_multimodal`, two 3-d
  views (150 / 120 frames) of a warped 2-d spiral under random linear maps,
  noise 0.1 -- the CTW paper's synthetic protocol;
- ``spiral, linear, 3-d vs 5-d``: the same with views of different
  dimension (DTW and soft-DTW need equal dimensions: not applicable);
- ``spiral, nonlinear``: 2-layer tanh maps, noise 0.05 (the DCTW setting);
- ``BasicMotions``: a real accelerometer recording vs the same recording's
  gyroscope under a random monotone warp
  (:func:`~mmalign.datasets.basic_motions_warped`).

Hyper-parameters are every class's defaults except soft-DTW's ``gamma`` (two
values shown) and DCTW's training length (4 alternations x 30 epochs, as in the
``projection`` benchmark). Seeds 0 .. n-1 (10 full, 3 quick).
"""

from __future__ import annotations

import time
import warnings
from typing import Callable

import numpy as np

import mmalign
from mmalign.datasets import basic_motions_warped, warped_multimodal
from mmalign.metrics import fraction_within, mean_absolute_deviation
from mmalign.projection.ctw import uniform_path

from .common import machine_info, machine_markdown, markdown_table, write_report

NAME = "alignment_quality"
TOLERANCE = 3  # frames, for the "within" column


def _tasks() -> dict[str, Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    def spiral(dims, map_, noise):
        def make(seed):
            data = warped_multimodal(2, lengths=(150, 120), dims=dims, noise=noise, map=map_,
                                     seed=seed)
            x, y = data.sequences
            return x, y, data.reference(0, 1)
        return make

    def motions(seed):
        pair = basic_motions_warped(index=seed, seed=seed)
        return pair.x, pair.y, pair.reference()

    return {
        "spiral, linear": spiral((3, 3), "linear", 0.1),
        "spiral, linear, 3-d vs 5-d": spiral((3, 5), "linear", 0.1),
        "spiral, nonlinear": spiral((3, 3), "nonlinear", 0.05),
        "BasicMotions": motions,
    }


def _methods(seed: int) -> dict[str, Callable[[np.ndarray, np.ndarray], object]]:
    return {
        "uniform (no alignment)": lambda x, y: uniform_path(len(x), len(y)),
        "DTW": lambda x, y: mmalign.DTW().align(x, y),
        "soft-DTW, gamma 0.1": lambda x, y: mmalign.SoftDTW(gamma=0.1).align(x, y).path("monotone"),
        "soft-DTW, gamma 1": lambda x, y: mmalign.SoftDTW(gamma=1.0).align(x, y).path("monotone"),
        "CTW": lambda x, y: mmalign.CTW().align(x, y),
        "GCTW": lambda x, y: mmalign.GCTW().align(x, y),
        "DCTW": lambda x, y: mmalign.DCTW(n_outer=4, epochs_per_step=30, train={"seed": seed}).fit(x, y).align(x, y),
    }


_NEEDS_EQUAL_DIMS = ("DTW", "soft-DTW, gamma 0.1", "soft-DTW, gamma 1")


def run(quick: bool = False) -> str:
    info = machine_info()
    n_seeds = 3 if quick else 10
    seeds = list(range(n_seeds))
    tasks = _tasks()
    method_names = list(_methods(0))
    results: dict[str, dict[str, dict]] = {m: {} for m in method_names}
    t_start = time.perf_counter()
    for task, make in tasks.items():
        per_method = {m: {"mad": [], "within": [], "seconds": 0.0} for m in method_names}
        for seed in seeds:
            x, y, ref = make(seed)
            for method, fn in _methods(seed).items():
                if method in _NEEDS_EQUAL_DIMS and x.shape[1] != y.shape[1]:
                    continue
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = fn(x, y)
                per_method[method]["seconds"] += time.perf_counter() - t0
                per_method[method]["mad"].append(mean_absolute_deviation(result, ref))
                per_method[method]["within"].append(fraction_within(result, ref, TOLERANCE))
        for method, r in per_method.items():
            results[method][task] = r if r["mad"] else None

    def cell(method: str, task: str, key: str):
        r = results[method][task]
        if r is None:
            return "n/a"
        return float(np.mean(r[key])) if key != "seconds" else r["seconds"] / len(r["mad"])

    task_names = list(tasks)
    mad_rows = [[m, *[cell(m, t, "mad") for t in task_names]] for m in method_names]
    within_rows = [[m, *[cell(m, t, "within") for t in task_names]] for m in method_names]
    time_rows = [[m, *[cell(m, t, "seconds") for t in task_names]] for m in method_names]
    wall = time.perf_counter() - t_start
    md = "\n".join([
        f"# Alignment quality of every explicit aligner{' (quick)' if quick else ''}", "",
        machine_markdown(info),
        f"`python -m benchmarks {NAME}{' --quick' if quick else ''}`: {n_seeds} seeds per task "
        f"(seeds {seeds[0]}..{seeds[-1]}), {wall:.0f} s in all. Every method sees the same pairs. "
        "n/a: the method needs equal feature dimensions.", "",
        "## Mean absolute deviation from the true warp (frames of y; lower is better)", "",
        markdown_table(["method", *task_names], mad_rows), "",
        f"## Fraction of frames of x matched within {TOLERANCE} frames (higher is better)", "",
        markdown_table(["method", *task_names], within_rows), "",
        "## Seconds per pair (fit included for DCTW)", "",
        markdown_table(["method", *task_names], time_rows), "",
    ])
    write_report(NAME, md, {"quick": quick, "seeds": seeds, "tolerance_frames": TOLERANCE,
                            "results": results, "wall_seconds": wall, "machine": info})
    return md
