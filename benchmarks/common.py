"""Shared pieces of the benchmarks: timing, machine description, report writing.

Every benchmark module exposes ``run(quick=False) -> str`` that measures, writes
``benchmarks/results/<name>.md`` and ``benchmarks/results/<name>.json``, and
returns the Markdown text it wrote.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

# where reports go: ``python -m benchmarks --out DIR`` (and ``--quick``, which defaults to
# ``results/quick``) passes the directory to each benchmark's process through this variable
RESULTS_DIR = Path(os.environ.get("MMALIGN_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")

# distributions whose versions the reports record (distribution names, as pip knows them)
LIBRARIES = ("mmalign", "numpy", "numba", "scipy", "scikit-learn", "dtaidistance", "tslearn",
             "aeon", "librosa", "dtw-python")


# --------------------------------------------------------------------------- timing

def best_time(fn: Callable[[], object], repeats: int = 5, *, warmup: bool = True,
              budget_s: float | None = None) -> dict:
    """Best wall-clock time of ``fn()`` over ``repeats`` calls, after one untimed warm-up.

    Parameters
    ----------
    fn : callable taking no arguments
    repeats : int
        Timed calls (at most).
    warmup : bool
        Call ``fn`` once, untimed, before timing (numba compiles on its first call).
        Pass ``False`` when the caller has just called ``fn`` itself (e.g. for the
        agreement check), which then served as the warm-up.
    budget_s : float or None
        If given, cut the number of timed calls so that they take about this many
        seconds in all (never fewer than one): for slow peers.

    Returns
    -------
    dict with ``best`` (seconds), ``times`` (every timed call, seconds), ``repeats``.
    """
    if warmup:
        fn()
    times: list[float] = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if budget_s is not None and sum(times) + times[-1] > budget_s:
            break
    return {"best": min(times), "times": times, "repeats": len(times)}


def relative_difference(a, b) -> float:
    """max |a - b| / max(|a|, |b|, tiny), elementwise for arrays, 0 where both are equal."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return math.inf
    same = (a == b)  # also covers equal infinities
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    rel = np.where(same, 0.0, np.abs(a - b) / scale)
    return float(np.max(rel)) if rel.size else 0.0


def clearly_lower(wrong, reference_wrong, z: float = 2.0) -> bool:
    """Whether a model's mean error rate lies below a reference model's by more than
    ``z`` standard errors, from per-image mistakes on one shared test set.

    ``wrong`` and ``reference_wrong`` are ``(seeds, n_test)`` arrays, 1 where a run
    (one training seed) misclassified a test image.  The standard error of the
    difference of the two mean error rates adds

    * the seed-to-seed variance of each model's error rate, divided by its number of
      seeds (0 for a single seed): the randomness of training;
    * the variance over test images of the paired per-image difference (each image's
      error averaged over a model's seeds, minus the reference's), divided by
      ``n_test``: the sampling of the test set, paired because both models see the
      same images (with one seed each, the normal approximation of McNemar's test).
    """
    import numpy as np

    a = np.atleast_2d(np.asarray(wrong, dtype=float))
    b = np.atleast_2d(np.asarray(reference_wrong, dtype=float))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"both models must be scored on the same test images: {a.shape[1]} and {b.shape[1]}")
    rates_a, rates_b = a.mean(axis=1), b.mean(axis=1)
    var = sum(r.var(ddof=1) / len(r) if len(r) > 1 else 0.0 for r in (rates_a, rates_b))
    var += (a.mean(axis=0) - b.mean(axis=0)).var(ddof=1) / a.shape[1]
    return bool(rates_b.mean() - rates_a.mean() > z * math.sqrt(var))


def mistakes(predicted, labels) -> str:
    """Per-image mistakes as a compact string of '0' / '1' (for the JSON reports)."""
    import numpy as np

    return "".join("1" if w else "0" for w in np.asarray(predicted) != np.asarray(labels))


def mistakes_array(runs: list[str]):
    """``(runs, n_test)`` 0 / 1 array from :func:`mistakes` strings."""
    import numpy as np

    return np.array([[c == "1" for c in r] for r in runs], dtype=float)


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of seed results."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def mean_sd_text(mean: float, sd: float, *, scale: float = 1.0, digits: int = 1, spread: bool = True) -> str:
    """``"12.3 ± 0.4"`` — a mean over seeds as the reports print it (``scale``: 100 for a
    fraction shown in %); ``spread=False`` (one seed) prints the mean alone."""
    text = f"{scale * mean:.{digits}f}"
    return f"{text} ± {scale * sd:.{digits}f}" if spread else text


# --------------------------------------------------------------------------- machine

def device_text(device: str) -> str:
    """``"cpu"``, or ``"cuda:0 (NVIDIA H100 ...)"`` for a CUDA device torch can see."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return str(device)


def to_cpu(model):
    """Move a trained model to the CPU for testing (the metrics read numpy arrays); models
    with a ``device`` setting (the mmalign estimators) get ``device = "cpu"`` as well."""
    model.cpu()
    if hasattr(model, "device"):
        model.device = "cpu"
    return model


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags of interest that /proc/cpuinfo lists."""
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl")
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info() -> dict:
    info = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cores": usable_cores(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
    }
    try:
        import numba

        info["numba_threading_layer_default"] = numba.config.THREADING_LAYER
        info["numba_max_threads"] = numba.config.NUMBA_NUM_THREADS
    except Exception:  # noqa: BLE001 - informational only
        pass
    return info


def machine_markdown(info: dict) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in info["libraries"].items())
    flags = " ".join(info["cpu_flags"]) or "n/a"
    return (
        f"- Machine: {info['cpu']} ({flags}); {info['usable_cores']} usable cores "
        f"of {info['logical_cpus']} logical CPUs; Python {info['python']} on {info['platform']}\n"
        f"- Libraries: {libs}\n"
        f"- Finished: {info['date']}\n"
    )


# --------------------------------------------------------------------------- reports

def fmt(value, digits: int = 4) -> str:
    """Compact number formatting for tables: ``digits`` significant figures; strings pass through."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def write_report(name: str, markdown: str, data: dict) -> tuple[Path, Path]:
    """Write ``results/<name>.md`` and ``results/<name>.json``; return both paths."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    md_path = RESULTS_DIR / f"{name}.md"
    json_path = RESULTS_DIR / f"{name}.json"
    md_path.write_text(markdown.rstrip() + "\n")
    json_path.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    return md_path, json_path


def _json_default(obj):
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
