"""Rebuild the shipped eCQM value-set code lists from FHIR ValueSet expansions.

Usage: python scripts/build_value_sets.py ../shared/data/valuesets
Writes src/openasm/rules/codes/quality__value_set_codes.csv (oid, system, code) and quality__value_sets.csv
(oid, name, version, url, code_count). Codes and systems only: CPT descriptions are AMA property.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from openasm.quality.value_sets import read_value_set_file, read_value_set_folder

CODES_DIR = Path(__file__).resolve().parents[1] / "src" / "openasm" / "rules" / "codes"


def build(folder: Path) -> tuple[int, int]:
    summaries = [read_value_set_file(path)[0] for path in sorted(folder.glob("*.json"))]
    codes = read_value_set_folder(folder)
    with (CODES_DIR / "quality__value_set_codes.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(codes.column_names)
        writer.writerows(zip(*(codes.column(c).to_pylist() for c in codes.column_names)))
    with (CODES_DIR / "quality__value_sets.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["oid", "name", "version", "url", "code_count"],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(summaries, key=lambda s: s["oid"]))
    return len(summaries), codes.num_rows


if __name__ == "__main__":
    print("value sets: %d, codes: %d" % build(Path(sys.argv[1])))
