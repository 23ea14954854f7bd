"""The demo on DuckDB and on PySpark, back to back on the same machine (issue 14: PySpark local within 3x of
DuckDB). Prints wall time and peak RSS of each run, the medians and their ratio; asserts nothing.

    python bench/demo_bench.py                       # 20,000 beneficiaries, one run per backend
    python bench/demo_bench.py --repeat 3            # three alternating pairs: compare medians
    python bench/demo_bench.py --spark-master local[4] --benes 5000

Runs alternate (DuckDB, PySpark, DuckDB, ...) so that a machine whose speed drifts during the bench weighs on
both backends alike. Each run is `openasm demo` in a fresh process and a fresh folder, synthetic world included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from scale_bench import Measure, run_measured

BACKENDS = ("duckdb", "pyspark")


def demo_argv(backend: str, benes: int, out: Path, spark_master: str | None) -> list[str]:
    argv = [sys.executable, "-m", "openasm.cli", "demo", "--benes", str(benes), "--backend", backend,
            "--out", str(out)]
    return argv + (["--spark-master", spark_master] if spark_master and backend == "pyspark" else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (medians are compared)")
    parser.add_argument("--spark-master", help="default: the demo's (local[2])")
    parser.add_argument("--work", type=Path, help="folder for the runs and the log (default: temp)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-demo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "demo_bench.log"
    runs: dict[str, list[Measure]] = {backend: [] for backend in BACKENDS}
    print(f"demo of {args.benes:,} beneficiaries, {args.repeat} pair(s); log: {log}")
    for round_number in range(1, args.repeat + 1):
        for backend in BACKENDS:
            out = work / f"{backend}-{round_number}"
            measure = run_measured(backend, demo_argv(backend, args.benes, out, args.spark_master),
                                   dict(os.environ), log)
            if measure.returncode != 0:
                sys.exit(f"{backend} demo failed (exit {measure.returncode}); see {log}")
            runs[backend].append(measure)
            print(f"  {backend:<8} run {round_number}: {measure.seconds:7.1f} s  peak RSS "
                  f"{measure.peak_rss_mb:7,.0f} MB", flush=True)
    medians = {backend: statistics.median(m.seconds for m in measured) for backend, measured in runs.items()}
    print(f"\n{'backend':<8} {'median wall':>12} {'peak RSS':>10}")
    for backend in BACKENDS:
        print(f"{backend:<8} {medians[backend]:10.1f} s {max(m.peak_rss_mb for m in runs[backend]):7,.0f} MB")
    print(f"PySpark / DuckDB: {medians['pyspark'] / medians['duckdb']:.2f}x")


if __name__ == "__main__":
    main()
