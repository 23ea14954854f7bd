"""Build `rules/codes/quality__mips_benchmarks.csv` and `rules/codes/quality__measure_spec.csv` from the
CMSgov/qpp-measures-data snapshot in ../shared/data/qpp-measures-data (quality.md §1, §3, §7).

    .venv/bin/python scripts/build_quality_code_lists.py [--data ../shared/data/qpp-measures-data]
        [--exclusion-reasons benchmarks/2026/benchmark-exclusion-reasons.json ...]

Benchmark records go through the same validation as a user file (`parse_benchmark_records`). A measure ×
collection type of the measures data without a benchmark record gets its exclusion reason from the
exclusion-reasons files given, else from KNOWN_EXCLUSIONS (the snapshot does not ship those files), else
`no_record`. Numbers are written as published.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from openasm.scoring.benchmark_file import parse_benchmark_records, parse_exclusion_records
from openasm.scoring.quality_points import PERCENTILE_KEYS, pcol

REPO = Path(__file__).resolve().parents[1]
CODES = REPO / "src" / "openasm" / "rules" / "codes"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "qpp-measures-data"
BENCHMARK_YEARS = (2025, 2026)
SPEC_YEARS = (2026, 2027)
ASM_MEASURES = ("005", "008", "128", "134", "220", "236", "238", "377", "492")
# quality.md §2.1: Q220 counts treatment episodes; every other ASM measure is patient-based.
EPISODE_MEASURES = {"220"}
# CMSgov/qpp-measures-data benchmarks/2026/benchmark-exclusion-reasons.json (commit e6312747ccb9): the only ASM
# measure × collection type of PY2025-2026 without a benchmark record. (PY, measure, method) -> (codes, BY).
KNOWN_EXCLUSIONS = {(2026, "128", "claims"): ("BR-009", 2024)}

BENCHMARK_COLUMNS = (
    ["performance_year", "benchmark_year", "measure_id", "collection_type", "metric_type", "is_inverse",
     "is_topped_out", "is_topped_out_by_program", "is_flat", "average_performance_rate"]
    + [pcol(k) for k in PERCENTILE_KEYS] + ["exclusion_reason"]
)
SPEC_COLUMNS = [
    "performance_year", "measure_id", "collection_type", "ecqm_id", "ecqm_version", "metric_type", "measure_type",
    "is_inverse", "is_high_priority", "scored_stratum", "strata", "overall_algorithm", "is_seven_point_cap_removed",
    "case_unit", "spec_url",
]


def text(value) -> str:
    """CSV text: '' for null, true/false, numbers as published (no trailing .0)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def quality_measures(data: Path, year: int) -> list[dict]:
    records = json.loads((data / "measures" / f"{year}-asm-measures.json").read_text(encoding="utf-8"))
    return [r for r in records if r.get("category") == "quality" and r["measureId"] in ASM_MEASURES]


def spec_rows(data: Path) -> list[dict]:
    rows = []
    for year in SPEC_YEARS:
        for m in quality_measures(data, year):
            strata = [s["name"] for s in (m.get("strata") or [])]
            if strata and m.get("overallAlgorithm") != "overallStratumOnly":
                raise SystemExit(f"measure {m['measureId']} PY{year}: overallAlgorithm {m.get('overallAlgorithm')!r} "
                                 "is not supported (only overallStratumOnly)")
            ecqm, _, version = (m.get("eMeasureId") or "").partition("v")
            urls = m.get("measureSpecification") or {}
            for method in m["submissionMethods"]:
                is_ehr = method == "electronicHealthRecord"
                rows.append({
                    "performance_year": year, "measure_id": m["measureId"], "collection_type": method,
                    "ecqm_id": ecqm if is_ehr else None, "ecqm_version": version if is_ehr and version else None,
                    "metric_type": m["metricType"], "measure_type": m["measureType"], "is_inverse": m["isInverse"],
                    "is_high_priority": m["isHighPriority"], "scored_stratum": "overall", "strata": "|".join(strata),
                    "overall_algorithm": m.get("overallAlgorithm"),
                    "is_seven_point_cap_removed": bool(m.get("isSevenPointCapRemoved")),
                    "case_unit": "episode" if m["measureId"] in EPISODE_MEASURES else "patient",
                    "spec_url": urls.get(method) or urls.get("default"),
                })
    return sorted(rows, key=lambda r: (r["performance_year"], r["measure_id"], r["collection_type"]))


def benchmark_rows(data: Path, exclusion_files: list[Path]) -> list[dict]:
    excluded = {key: value for key, value in KNOWN_EXCLUSIONS.items()}
    for path in exclusion_files:
        for row in parse_exclusion_records(json.loads(path.read_text(encoding="utf-8")), file_label=str(path)):
            key = (row["performance_year"], row["measure_id"], row["collection_type"])
            excluded[key] = (row["exclusion_reason"], row["benchmark_year"])
    spec = {(m["measureId"], method): m for m in quality_measures(data, min(SPEC_YEARS))
            for method in m["submissionMethods"]}
    rows = []
    for year in BENCHMARK_YEARS:
        path = data / "benchmarks" / f"{year}.json"
        parsed = parse_benchmark_records(json.loads(path.read_text(encoding="utf-8")), file_label=str(path))
        found = {(r["measure_id"], r["collection_type"]): r for r in parsed if r["measure_id"] in ASM_MEASURES}
        rows.extend(found.values())
        for (measure, method), m in spec.items():
            if (measure, method) in found:
                continue
            reason, benchmark_year = excluded.get((year, measure, method), ("no_record", None))
            rows.append({
                "performance_year": year, "benchmark_year": benchmark_year, "measure_id": measure,
                "collection_type": method, "metric_type": m["metricType"], "is_inverse": m["isInverse"],
                "is_topped_out": False, "is_topped_out_by_program": False, "is_flat": False,
                "average_performance_rate": None, **{pcol(k): None for k in PERCENTILE_KEYS},
                "exclusion_reason": reason,
            })
    return sorted(rows, key=lambda r: (r["performance_year"], r["measure_id"], r["collection_type"]))


def write(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([text(row[c]) for c in columns])
    print(f"wrote {path} ({len(rows)} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--exclusion-reasons", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    write(CODES / "quality__mips_benchmarks.csv", BENCHMARK_COLUMNS, benchmark_rows(args.data, args.exclusion_reasons))
    write(CODES / "quality__measure_spec.csv", SPEC_COLUMNS, spec_rows(args.data))


if __name__ == "__main__":
    main()
