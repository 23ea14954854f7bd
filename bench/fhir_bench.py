"""FHIR ingest and eCQM evaluation throughput (prints figures; asserts nothing).

    python bench/fhir_bench.py                       # ≥ 1M resources: a 20k world's EHR export, repeated
    python bench/fhir_bench.py --resources 2000000 --backend duckdb

Reports FHIR resources/s ingested (parse + flatten + load into the engine), patients/s evaluated through all seven
eCQMs — through `quality.evaluate.evaluate_measures` with each measure materialised, the path `run_quality` takes —
and peak RSS.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import ibis
from benchlib import peak_rss_mb, synthesize_world

from openasm.engine import connect
from openasm.pipeline_quality import run_fhir_ingest
from openasm.quality.clinical import ClinicalTables
from openasm.quality.evaluate import evaluate_measures
from openasm.quality.value_sets import value_set_codes
from openasm.rules import load_rules
from openasm.synth.fhir_export import generate_fhir_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=1_000_000, help="at least this many resources")
    parser.add_argument("--benes", type=int, default=20_000)
    parser.add_argument("--py", type=int, default=2027)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openasm-fhir-bench-"))
    world = synthesize_world(work / "world", args.benes, 1)
    probe = generate_fhir_export(world, work / "probe", args.py)
    # A little spare: practitioners and practices are written once, and defects vary by copy.
    copies = max(1, math.ceil(1.02 * args.resources / probe.resources))
    started = time.perf_counter()
    export = generate_fhir_export(world, work / "fhir", args.py, copies=copies)
    print(f"synthetic export: {export.resources:,} resources, {sum(export.patients.values()):,} patients "
          f"({copies} copies) in {time.perf_counter() - started:.1f} s")

    engine = connect(args.backend, work / "run")
    started = time.perf_counter()
    ingest = run_fhir_ingest(engine, [work / "fhir"], work / "run")
    seconds = time.perf_counter() - started
    print(f"ingest: {ingest.resources_read:,} resources in {seconds:.1f} s = {ingest.resources_read / seconds:,.0f} "
          f"resources/s; accepted {ingest.resources_accepted:,}, quarantined {ingest.resources_quarantined:,}")

    rules = load_rules(args.py)
    clinical = ClinicalTables.from_backend(engine.table)
    patients = engine.fetch(clinical.patient.count().as_table()).column(0)[0].as_py()
    started = time.perf_counter()
    results = engine.save("measure_case_result", evaluate_measures(
        clinical=clinical, value_set_code=engine.save("value_set_code", ibis.memtable(value_set_codes(rules))),
        rules=rules, materialise=engine.save))
    rows = engine.fetch(results.count().as_table()).column(0)[0].as_py()
    seconds = time.perf_counter() - started
    print(f"evaluate: {patients:,} patients through 7 eCQMs in {seconds:.1f} s = {patients / seconds:,.0f} "
          f"patients/s ({rows:,} patient-level result rows)")
    print(f"peak RSS {peak_rss_mb():,.0f} MB ({args.backend})")
    engine.close()


if __name__ == "__main__":
    main()
