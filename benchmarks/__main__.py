"""``python -m benchmarks [NAME ...] [--quick] [--out DIR] [--device DEV]``: run the benchmark suite.

Every benchmark runs in its own Python process (thread settings and memory of
one never leak into the next; a failure is recorded and the suite goes on) and
writes ``<DIR>/<name>.md`` and ``<name>.json``. The suite then writes
``<DIR>/SUITE.md`` and ``suite.json``: machine, library versions, the seeds
each benchmark recorded, wall time and status per benchmark, and every
benchmark's tables.

``DIR`` defaults to ``benchmarks/results`` for full runs and
``benchmarks/results/quick`` for ``--quick`` runs, so a smoke test never
overwrites the reported numbers.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = ("dtw_speed", "ucr_1nn", "soft_dtw_speed", "projection", "alignment_quality",
              "seq2seq_attention", "multimodal_alignment", "spatial_transformer",
              "glimpse_attention", "show_attend_tell", "retrieval", "pretraining", "dask_scaleout",
              "forced_alignment_real", "music_sync", "score_alignment", "gtw", "subsequence_search",
              "elastic_distances", "clustering", "transformer_seq2seq")

# benchmarks whose models train on a chosen device (``--device``; they test on the CPU)
DEVICE_BENCHMARKS = ("spatial_transformer", "glimpse_attention", "show_attend_tell")
_HERE = Path(__file__).resolve().parent
RESULTS_ENV = "MMALIGN_BENCH_RESULTS"  # read by benchmarks.common


def default_out(quick: bool) -> Path:
    return _HERE / "results" / "quick" if quick else _HERE / "results"


def _run_one(name: str, quick: bool, out: Path, device: str | None = None) -> None:
    """Run one benchmark in this process and print its Markdown."""
    os.environ[RESULTS_ENV] = str(out)
    module = importlib.import_module(f"benchmarks.{name}")
    t0 = time.perf_counter()
    markdown = module.run(quick=quick) if device is None else module.run(quick=quick, device=device)
    print(markdown)
    print(f"\n_({name}: {time.perf_counter() - t0:.0f} s; written to {out}/{name}.md and .json)_\n",
          flush=True)


def _run_child(name: str, quick: bool, out: Path, device: str | None = None) -> dict:
    """Run one benchmark in a child process; return its status record."""
    cmd = [sys.executable, "-m", "benchmarks", name, "--single", "--out", str(out)]
    if quick:
        cmd.append("--quick")
    if device is not None:
        cmd += ["--device", device]
    print(f"== {name}{' --quick' if quick else ''} ...", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=_HERE.parent, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    print(f"   {status} in {seconds:.0f} s", flush=True)
    record = {"name": name, "status": status, "seconds": seconds}
    if proc.returncode != 0:
        record["stderr_tail"] = proc.stderr[-4000:]
        print(record["stderr_tail"], file=sys.stderr)
    return record


def _seeds(data, path: str = "") -> dict:
    """Every ``seed`` / ``seeds`` entry of a benchmark's JSON, keyed by where it sits."""
    found = {}
    if isinstance(data, dict):
        for key, value in data.items():
            where = f"{path}.{key}" if path else key
            if key in ("seed", "seeds", "SEED", "SEEDS") and not isinstance(value, dict):
                found[where] = value
            elif key != "machine":
                found.update(_seeds(value, where))
    return found


def _write_suite(records: list[dict], quick: bool, out: Path, wall: float) -> Path:
    from benchmarks.common import machine_info, machine_markdown, markdown_table

    info = machine_info()
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"], info["cuda"] = None, None
    sections, rows = [], []
    for rec in records:
        md_path, json_path = out / f"{rec['name']}.md", out / f"{rec['name']}.json"
        if rec["status"] == "ok" and json_path.exists():
            rec["seeds"] = _seeds(json.loads(json_path.read_text()))
        if rec["status"] == "ok" and md_path.exists():
            body = md_path.read_text().strip().split("\n")
            # demote the benchmark's headings one level under the suite's
            sections.append("\n".join("#" + line if line.startswith("#") else line for line in body))
        else:
            sections.append(f"## {rec['name']}\n\n**{rec['status']}**\n\n```\n"
                            f"{rec.get('stderr_tail', '')}\n```")
        rows.append([rec["name"], rec["status"], rec["seconds"],
                     "; ".join(f"{k} = {v}" for k, v in rec.get("seeds", {}).items()) or "—"])
    mode = "quick" if quick else "full"
    md = "\n".join([
        f"# mmalign benchmark suite ({mode})", "",
        machine_markdown(info).rstrip(),
        f"- torch {info['torch']}; GPU: {info['cuda'] or 'none'}",
        f"- Command: `python -m benchmarks{' --quick' if quick else ''}`; total {wall:.0f} s", "",
        markdown_table(["benchmark", "status", "seconds", "seeds"], rows), "",
        *sections, "",
    ])
    out.mkdir(parents=True, exist_ok=True)
    (out / "SUITE.md").write_text(md)
    (out / "suite.json").write_text(json.dumps(
        {"mode": mode, "wall_seconds": wall, "machine": info, "benchmarks": records},
        indent=2, default=str) + "\n")
    return out / "SUITE.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, smaller or skipped slow cases (a smoke test; written "
                             "to benchmarks/results/quick unless --out is given)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="where reports go (default: benchmarks/results, or "
                             "benchmarks/results/quick with --quick)")
    parser.add_argument("--device", default=None, metavar="DEV",
                        help=f"where the models of {', '.join(DEVICE_BENCHMARKS)} train (e.g. cuda; "
                             "default cpu); only with those benchmarks named")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if args.device is not None:
        other = [n for n in names if n not in DEVICE_BENCHMARKS]
        if other:
            parser.error(f"--device applies to {', '.join(DEVICE_BENCHMARKS)} only; name them "
                         f"(got {', '.join(other)})")
        if args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                parser.error(f"--device {args.device}: torch sees no CUDA device")
    out = (args.out or default_out(args.quick)).resolve()
    if args.single or len(names) == 1:
        for name in names:
            _run_one(name, args.quick, out, args.device)
        return 0
    t0 = time.perf_counter()
    records = [_run_child(name, args.quick, out, args.device) for name in names]
    suite = _write_suite(records, args.quick, out, time.perf_counter() - t0)
    print(f"\nSuite report: {suite}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
