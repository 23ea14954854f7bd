"""Grouper + cost scorer throughput and peak memory on a synthetic world (prints figures; asserts nothing).

    python bench/episodes_bench.py --benes 160000          # ≈ 5.4M claim lines over 2025-2027
    python bench/episodes_bench.py --world DIR --run RUN   # reuse a world (and an ingested run)

HCC flags/s for 1M beneficiaries next to hccinfhir's per-member API: bench/hcc_bench.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import peak_rss_mb, synthesize_world

from openasm.engine import connect
from openasm.rules import load_rules
from openasm.runs.cost import run_cost
from openasm.runs.episodes import run_episodes
from openasm.runs.ingest import IngestInputs, run_ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benes", type=int, default=160_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--world", type=Path)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openasm-episodes-bench-"))
    world = args.world
    if world is None:
        world = synthesize_world(work / "world", args.benes, args.seed)
    run = args.run or work / "run"
    engine = connect(args.backend, run)
    if not engine.has_table("claim_line"):
        started = time.perf_counter()
        run_ingest(engine, None, run, IngestInputs(world))
        print(f"ingest: {time.perf_counter() - started:.1f} s")
    lines = int(engine.table("claim_line").count().to_pyarrow().as_py())
    rules = load_rules(2027)

    started = time.perf_counter()
    episodes = run_episodes(engine, rules, run)
    grouper_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cost = run_cost(engine, rules, run)
    scorer_seconds = time.perf_counter() - started
    engine.close()

    total = grouper_seconds + scorer_seconds
    print(f"backend: {args.backend}; claim lines: {lines:,}")
    print(f"episodes: {episodes.row_counts.get('episode_detail', 0):,}; measure-score rows: "
          f"{cost.row_counts.get('measure_score', 0):,}")
    print(f"grouper (episodes, exclusions, cost assignment, attribution): {grouper_seconds:.1f} s "
          f"= {lines / grouper_seconds:,.0f} claim lines/s")
    print(f"scorer (HCC, risk model, specialty adjustment, scores, points): {scorer_seconds:.1f} s")
    print(f"grouper + scorer: {total:.1f} s = {lines / total:,.0f} claim lines/s")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
