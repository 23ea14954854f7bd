"""The demo on DuckDB and on PySpark, back to back on the same machine (issue 14: PySpark local within 3x of
DuckDB). Prints wall time and peak RSS of each run, the medians and their ratio; asserts nothing.

    python bench/demo_bench.py                       # 20,000 beneficiaries, one run per backend
    python bench/demo_bench.py --repeat 3            # three alternating pairs: compare medians
    python bench/demo_bench.py --benes 2000 20000    # two sizes: each backend's fixed and per-size cost
    python bench/demo_bench.py --spark-master local[4] --benes 5000

Runs alternate (DuckDB, PySpark, DuckDB, ...) so that a machine whose speed drifts during the bench weighs on
both backends alike. Each run is `openasm demo` in a fresh process and a fresh folder, synthetic world included.

With two or more sizes, a straight line through each backend's medians (least squares) splits its wall time
into a part that does not grow with the world (per query and per job: planning, scheduling, code generation,
JVM start) and a part per 1,000 beneficiaries (the rows), and the bench prints how each part of PySpark's
time at the largest size compares with the time a ratio limit (`--limit`, default 3) leaves it. CPU time
(user + system, the process and its children: the JVM included) says how far the limit is from the work each
backend does, whatever its idle time.
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


def fixed_and_per_thousand(medians: dict[int, float]) -> tuple[float, float]:
    """Least-squares line seconds = fixed + per_thousand * benes / 1000 through (size, median) points."""
    sizes = [benes / 1000 for benes in medians]
    mean_size, mean_seconds = statistics.fmean(sizes), statistics.fmean(medians.values())
    spread = sum((size - mean_size) ** 2 for size in sizes)
    per_thousand = sum((size - mean_size) * (seconds - mean_seconds)
                       for size, seconds in zip(sizes, medians.values())) / spread
    return mean_seconds - per_thousand * mean_size, per_thousand


def print_split(medians: dict[str, dict[int, float]], largest: int, budget: float, limit: float) -> None:
    """Each backend's fixed and per-size parts, and PySpark's parts at the `largest` size against `budget`, the
    wall time `limit` times DuckDB's leaves it there."""
    print()
    parts = {}
    for backend in BACKENDS:
        fixed, per_thousand = fixed_and_per_thousand(medians[backend])
        parts[backend] = (fixed, per_thousand * largest / 1000)
        print(f"{backend:<8} fixed {fixed:6.1f} s + {per_thousand:5.2f} s per 1,000 beneficiaries "
              f"(at {largest:,}: {parts[backend][0]:.1f} s + {parts[backend][1]:.1f} s)")
    fixed, rows = parts["pyspark"]
    print(f"{limit:g}x DuckDB at {largest:,} leaves PySpark {budget:.1f} s: its fixed part alone is "
          f"{fixed / budget:.2f}x that, its part for the rows {rows / budget:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benes", type=int, nargs="+", default=[20_000], help="world size(s)")
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs per size (medians are compared)")
    parser.add_argument("--limit", type=float, default=3.0, help="PySpark / DuckDB ratio to compare against")
    parser.add_argument("--spark-master", help="default: the demo's (local[2])")
    parser.add_argument("--work", type=Path, help="folder for the runs and the log (default: temp)")
    args = parser.parse_args()
    sizes = sorted(set(args.benes))
    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-demo-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "demo_bench.log"
    runs: dict[tuple[str, int], list[Measure]] = {(b, n): [] for b in BACKENDS for n in sizes}
    print(f"demo of {', '.join(f'{n:,}' for n in sizes)} beneficiaries, {args.repeat} pair(s) each; log: {log}")
    for round_number in range(1, args.repeat + 1):
        for benes in sizes:
            for backend in BACKENDS:
                out = work / f"{backend}-{benes}-{round_number}"
                measure = run_measured(backend, demo_argv(backend, benes, out, args.spark_master),
                                       dict(os.environ), log)
                if measure.returncode != 0:
                    sys.exit(f"{backend} demo of {benes:,} failed (exit {measure.returncode}); see {log}")
                runs[backend, benes].append(measure)
                print(f"  {backend:<8} {benes:>7,} run {round_number}: {measure.seconds:7.1f} s  CPU "
                      f"{measure.cpu_seconds:7.1f} s  peak RSS {measure.peak_rss_mb:7,.0f} MB", flush=True)
    medians = {b: {n: statistics.median(m.seconds for m in runs[b, n]) for n in sizes} for b in BACKENDS}
    print(f"\n{'benes':>7} {'backend':<8} {'median wall':>12} {'median CPU':>11} {'peak RSS':>10}")
    for benes in sizes:
        for backend in BACKENDS:
            cpu = statistics.median(m.cpu_seconds for m in runs[backend, benes])
            print(f"{benes:>7,} {backend:<8} {medians[backend][benes]:10.1f} s {cpu:9.1f} s "
                  f"{max(m.peak_rss_mb for m in runs[backend, benes]):7,.0f} MB")
        print(f"{benes:>7,} PySpark / DuckDB: {medians['pyspark'][benes] / medians['duckdb'][benes]:.2f}x")
    largest = sizes[-1]
    budget = args.limit * medians["duckdb"][largest]
    spark_cpu = statistics.median(m.cpu_seconds for m in runs["pyspark", largest])
    print(f"{args.limit:g}x DuckDB at {largest:,} is {budget:.1f} s of wall time, {budget * os.cpu_count():.0f} "
          f"CPU-seconds on {os.cpu_count()} cores; PySpark's run used {spark_cpu:.0f} "
          f"({spark_cpu / (budget * os.cpu_count()):.2f}x that)")
    if len(sizes) > 1:
        print_split(medians, largest, budget, args.limit)


if __name__ == "__main__":
    main()
