"""FHIR ingest and eCQM evaluation throughput (prints figures; asserts nothing).

    python bench/fhir_bench.py                       # ≥ 1M resources: a 20k world's EHR export, repeated
    python bench/fhir_bench.py --resources 2000000 --backend duckdb
    python bench/fhir_bench.py --fhir DIR            # an existing export (e.g. one kept by --keep), so two versions
                                                    # of the engine can be timed on the same files

Reports FHIR resources/s ingested (parse + flatten + load into the engine), patients/s evaluated through all seven
eCQMs, and peak RSS.
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

from benchlib import peak_rss_mb, synthesize_world

from openasm.engine import connect
from openasm.quality.clinical import ClinicalTables
from openasm.rules import load_rules
from openasm.runs.fhir_ingest import FhirInputs, run_fhir_ingest
from openasm.runs.quality import evaluate_ecqms
from openasm.synth.fhir_export import generate_fhir_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=1_000_000, help="at least this many resources")
    parser.add_argument("--benes", type=int, default=20_000)
    parser.add_argument("--py", type=int, default=2027)
    parser.add_argument("--backend", default="duckdb", choices=("duckdb", "pyspark"))
    parser.add_argument("--fhir", type=Path, help="read this FHIR export instead of generating one")
    parser.add_argument("--keep", action="store_true", help="print and keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="openasm-fhir-bench-"))
    fhir = args.fhir or work / "fhir"
    if args.fhir is None:
        world = synthesize_world(work / "world", args.benes, 1)
        probe = generate_fhir_export(world, work / "probe", args.py)
        # A little spare: practitioners and practices are written once, and defects vary by copy.
        copies = max(1, math.ceil(1.02 * args.resources / probe.resources))
        started = time.perf_counter()
        export = generate_fhir_export(world, fhir, args.py, copies=copies)
        print(f"synthetic export: {export.resources:,} resources, {sum(export.patients.values()):,} patients "
              f"({copies} copies) in {time.perf_counter() - started:.1f} s")

    engine = connect(args.backend, work / "run")
    started = time.perf_counter()
    ingest = run_fhir_ingest(engine, None, work / "run", FhirInputs((fhir,)))
    seconds = time.perf_counter() - started
    print(f"ingest: {ingest.resources_read:,} resources in {seconds:.1f} s = {ingest.resources_read / seconds:,.0f} "
          f"resources/s; accepted {ingest.resources_accepted:,}, quarantined {ingest.resources_quarantined:,}")

    rules = load_rules(args.py)
    clinical = ClinicalTables.from_backend(engine.table)
    patients = engine.fetch(clinical.patient.count().as_table()).column(0)[0].as_py()
    started = time.perf_counter()
    # The same path as `openasm quality`: each measure materialised, then their union.
    results = evaluate_ecqms(engine, rules, clinical)
    rows = engine.fetch(results.count().as_table()).column(0)[0].as_py()
    seconds = time.perf_counter() - started
    print(f"evaluate: {patients:,} patients through 7 eCQMs in {seconds:.1f} s = {patients / seconds:,.0f} "
          f"patients/s ({rows:,} patient-level result rows)")
    print(f"peak RSS {peak_rss_mb():,.0f} MB ({args.backend})")
    engine.close()
    if args.keep:
        print(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
