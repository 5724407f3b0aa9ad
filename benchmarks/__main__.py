"""``python -m benchmarks [NAME ...] [--quick]``: run benchmarks and print their tables.

Each benchmark also writes ``benchmarks/results/<name>.md`` and ``<name>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

BENCHMARKS = ("dtw_speed", "ucr_1nn", "soft_dtw_speed", "projection", "seq2seq_attention",
              "multimodal_alignment", "spatial_transformer", "glimpse_attention", "show_attend_tell")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, smaller or skipped slow cases (a smoke test)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        markdown = module.run(quick=args.quick)
        print(markdown)
        print(f"\n_({name}: {time.perf_counter() - t0:.0f} s; written to "
              f"benchmarks/results/{name}.md and .json)_\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
