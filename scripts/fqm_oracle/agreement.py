"""The agreement table of the fqm-execution differential: for each variant folder written by
../shared/tools/fqm-oracle/diff.sh (its `cmp_rows.csv`), patients x measure groups compared, agreements, and every
kind of disagreement with its count and the one-line reason it is argued (ARGUED below); a kind without a reason is
printed as UNEXPLAINED and the script exits 1.

    python scripts/fqm_oracle/agreement.py WORK/d_base WORK/d_boundary WORK/d_dateonly
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

# (measure, kind) -> why the engines differ there and why openasm is kept as it is. `kind` as compare.py writes it:
# population:OF flags, O = openasm counts the patient, F = fqm-execution does; "fqm error" = fqm-execution threw.
_NOT_DONE_PROCEDURE = (
    "a follow-up Procedure with status not-done (ProcedureNotDone's fixed status) is no intervention for openasm; "
    "the bundle builder declares every Procedure a positive qicore-procedure and the CQL of \"High BMI Interventions "
    "Performed\" tests no status, so fqm-execution counts it; declared ProcedureNotDone, fqm-execution agrees "
    "(checked) (tests/quality/test_cms69.py::test_a_follow_up_procedure_not_done_is_no_intervention)")
ARGUED: dict[tuple[str, str], str] = {
    ("CMS2", "numer:-F"): (
        "two date-only screenings on one day tie in `sort by start of effective`; CQL leaves ties unordered and "
        "fqm-execution's comparator makes the first in the Bundle the `Last` (swapping them flips its result); "
        "openasm picks the greatest resource id whatever the input order "
        "(tests/quality/test_cms2.py::test_same_day_screenings_tie_independently_of_input_order)"),
    ("CMS69", "numer:-F"): _NOT_DONE_PROCEDURE,
    ("CMS69", "numer:-F denexcep:O-"): _NOT_DONE_PROCEDURE,
}


def _rows(folder: Path) -> list[dict]:
    with open(folder / "cmp_rows.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def variant_table(name: str, rows: list[dict]) -> tuple[list[str], int]:
    patients = {r["patient_id"] for r in rows}
    groups = {(r["measure"], r["group"]) for r in rows}
    agree = sum(r["agree"] == "True" for r in rows)
    kinds = Counter((r["measure"], r["kind"]) for r in rows if r["agree"] != "True")
    lines = [f"| {name} | {len(patients):,} | {len(groups)} | {len(rows):,} | {agree:,} | {len(rows) - agree:,} |"]
    unexplained = 0
    details = []
    for (measure, kind), count in sorted(kinds.items()):
        reason = ARGUED.get((measure, kind))
        unexplained += reason is None
        details.append(f"| {name} | {measure} | `{kind}` | {count} | {reason or 'UNEXPLAINED'} |")
    return lines + details, unexplained


def main(folders: list[str]) -> int:
    summary = ["| variant | patients | measure groups | patient x group rows | agree | disagree |",
               "|---|---:|---:|---:|---:|---:|"]
    kinds = ["| variant | measure | kind (O = openasm yes, F = fqm-execution yes) | rows | reason |",
             "|---|---|---|---:|---|"]
    unexplained = 0
    for folder in map(Path, folders):
        name = folder.name.removeprefix("d_")
        lines, missing = variant_table(name, _rows(folder))
        summary.append(lines[0])
        kinds.extend(lines[1:])
        unexplained += missing
    print("\n".join(summary + [""] + kinds))
    print(f"\nunexplained kinds: {unexplained}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
