"""Ingest + claims-summary throughput and peak memory on a synthetic world (prints figures; asserts nothing).

    python bench/ingest_bench.py --benes 200000            # generate a world, then ingest it
    python bench/ingest_bench.py --world path/to/world     # ingest an existing world
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import peak_rss_mb, synthesize_world

from openasm.engine import connect
from openasm.rules import load_rules
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.summary import run_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world", type=Path, help="existing synthetic world folder")
    parser.add_argument("--benes", type=int, default=100_000, help="beneficiaries to generate without --world")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    parser.add_argument("--work", type=Path, help="folder for the world and run (default: a temp folder)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-bench-"))
    world = args.world
    if world is None:
        world = synthesize_world(work / "world", args.benes, args.seed)

    engine = connect(args.backend, work / f"run-{args.backend}")
    started = time.perf_counter()
    result = run_ingest(engine, None, work / f"run-{args.backend}", IngestInputs(world))
    ingest_seconds = time.perf_counter() - started
    rows = sum(t.read for t in result.tables.values())
    lines = result.tables["claim_line"].read
    started = time.perf_counter()
    run_summary(engine, load_rules(2027), work / f"run-{args.backend}")
    summary_seconds = time.perf_counter() - started
    engine.close()

    print(f"backend: {args.backend}")
    print(f"rows read: {rows:,} (claim lines {lines:,}); reconciles: {result.reconciles}")
    for t in result.tables.values():
        print(f"  {t.table:16s} read {t.read:>12,}  accepted {t.accepted:>12,}  quarantined {t.quarantined:>8,}")
    print(f"ingest: {ingest_seconds:.1f} s = {rows / ingest_seconds:,.0f} rows/s ({lines / ingest_seconds:,.0f} claim lines/s)")
    print(f"final action + summaries: {summary_seconds:.1f} s = {lines / summary_seconds:,.0f} claim lines/s")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
