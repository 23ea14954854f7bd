"""CCLF ingest speed against canonical Parquet ingest of the same world, in the same run (prints figures;
asserts nothing). Issue 12 target: CCLF ingest at no less than half the canonical speed.

    python bench/connectors_bench.py --benes 1000000       # generate a world, write it as CCLF, ingest both
    python bench/connectors_bench.py --world path/to/world # an existing world (its CCLF written once, reused)

The CCLF delivery carries the world's enrollment and clinician tables beside it (as in the round-trip test),
so both runs check the same tables. Speed = beneficiaries (and source records) per second of ingest wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchlib import peak_rss_mb, synthesize_world

from openasm.engine import connect
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.synth.cclf_writer import write_cclf


def _timed(label: str, work) -> tuple[object, float]:
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:,.1f} s")
    return result, seconds


def _ingest(backend: str, run: Path, inputs: IngestInputs):
    engine = connect(backend, run)
    try:
        return run_ingest(engine, None, run, inputs)
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--world", type=Path, help="existing synthetic world folder")
    parser.add_argument("--benes", type=int, default=1_000_000, help="beneficiaries to generate without --world")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    parser.add_argument("--work", type=Path, help="folder for the world, CCLF files and runs (default: temp)")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="openasm-connectors-bench-"))
    world = args.world or synthesize_world(work / "world", args.benes, args.seed)
    cclf = work / "cclf"
    if not (cclf / "enrollment").exists():
        _timed("write CCLF (not part of the comparison)",
               lambda: write_cclf(world, cclf, side_tables=("clinician", "enrollment")))

    canonical, canonical_seconds = _timed("canonical Parquet ingest", lambda: _ingest(args.backend, work / "run-canonical",
                                                                                      IngestInputs(world)))
    from_cclf, cclf_seconds = _timed("CCLF ingest", lambda: _ingest(args.backend, work / "run-cclf",
                                                                    IngestInputs(cclf, "cclf")))

    benes = canonical.tables["beneficiary"].accepted
    records = sum(r["records"] or 0 for r in from_cclf.source_records)
    rows = sum(t.read for t in canonical.tables.values())
    print(f"backend: {args.backend}; beneficiaries: {benes:,}; canonical rows {rows:,}; CCLF records {records:,}")
    print(f"canonical: {benes / canonical_seconds:,.0f} beneficiaries/s ({rows / canonical_seconds:,.0f} rows/s)")
    print(f"CCLF:      {benes / cclf_seconds:,.0f} beneficiaries/s ({records / cclf_seconds:,.0f} records/s)")
    print(f"CCLF / canonical speed: {canonical_seconds / cclf_seconds:.2f} (target >= 0.50); "
          f"both reconcile: {canonical.reconciles and from_cclf.reconciles}")
    print(f"peak RSS: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
