"""The CMS ASM participant list: intake with validation, lookup, and comparison with the computed table.

CMS publishes the list (§512.710; asm-model.md §1.2: PY2027 preliminary list of 6,637 clinicians) with the
columns NPI, FIRST_NAME, LAST_NAME, STATE, ASM_COHORT ("Heart Failure" | "Low Back Pain"),
ORGANIZATION_LEGAL_NAME, then ASM_CY<yy>_PARTICIPANT and ASM_CY<yy>_SMALLPRACTICE ("Yes" | "No" | blank) for
each performance year 2027–2031. An NPI may appear on several rows (one per organization). Headers are matched
without regard to case, spacing or order; every row must be valid or the file is rejected with the file, line
and column of each problem.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openasm.schema.formats import NPI_PATTERN, npi_check_digit

IDENTITY_COLUMNS = ("NPI", "FIRST_NAME", "LAST_NAME", "STATE", "ASM_COHORT", "ORGANIZATION_LEGAL_NAME")
LIST_YEARS = (2027, 2028, 2029, 2030, 2031)
COHORT_NAMES = {"hf": "Heart Failure", "lbp": "Low Back Pain"}  # the list's ASM_COHORT text
COHORT_LABELS = {"heart failure": "hf", "hf": "hf", "low back pain": "lbp", "back pain": "lbp", "lbp": "lbp"}
FLAG_VALUES = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False, "false": False, "0": False}
MAX_PROBLEMS_SHOWN = 10
EXTRA_FIELDS, SHORT_ROW = "_extra_fields_", "_short_row_"  # markers of a CSV row with a wrong field count
LIST_SCHEMA = pa.schema([
    ("source_line", pa.int64()), ("npi", pa.string()), ("first_name", pa.string()), ("last_name", pa.string()),
    ("state", pa.string()), ("cohort", pa.string()), ("organization_legal_name", pa.string()),
    ("performance_year", pa.int32()), ("is_participant", pa.bool_()), ("is_small_practice", pa.bool_()),
])


class ParticipantListError(ValueError):
    """The participant list file is missing, unreadable or malformed."""


def flag_column(performance_year: int, kind: str) -> str:
    """`ASM_CY27_PARTICIPANT` / `ASM_CY27_SMALLPRACTICE` for performance year 2027."""
    return f"ASM_CY{performance_year % 100:02d}_{kind}"


def _normalise_header(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.strip().upper()).strip("_")


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str | None]]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            raw = pq.read_table(path)
            rows = [{k: (None if v is None else str(v)) for k, v in r.items()} for r in raw.to_pylist()]
            return list(raw.column_names), rows
        if suffix in (".csv", ".txt"):
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), restkey=EXTRA_FIELDS)
            rows = [r | {SHORT_ROW: "1"} if None in r.values() else r for r in reader]
            return list(reader.fieldnames or []), rows
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as err:
        raise ParticipantListError(f"participant list {path}: unreadable: {err}") from err
    raise ParticipantListError(f"participant list {path}: unsupported file type '{suffix}' (use .csv or .parquet)")


def _map_header(path: Path, header: list[str]) -> tuple[dict[str, str], list[int]]:
    """Canonical column → the file's column, and the performance years whose two flag columns are present."""
    if not header:
        raise ParticipantListError(f"participant list {path}: empty file (no header row)")
    mapping: dict[str, str] = {}
    for original in header:
        canonical = _normalise_header(original)
        if canonical in mapping:
            raise ParticipantListError(
                f"participant list {path}: columns {mapping[canonical]!r} and {original!r} are the same column "
                f"{canonical} (headers are matched without regard to case and spacing)")
        mapping[canonical] = original
    missing = [c for c in IDENTITY_COLUMNS if c not in mapping]
    years, half = [], []
    for year in LIST_YEARS:
        present = [flag_column(year, k) in mapping for k in ("PARTICIPANT", "SMALLPRACTICE")]
        if all(present):
            years.append(year)
        elif any(present):
            half.append(flag_column(year, "SMALLPRACTICE" if present[0] else "PARTICIPANT"))
    if missing or half or not years:
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if half:
            problems.append(f"missing column(s) {', '.join(half)} (each year needs its PARTICIPANT and SMALLPRACTICE flag)")
        if not years:
            problems.append("no ASM_CY<yy>_PARTICIPANT / ASM_CY<yy>_SMALLPRACTICE columns for 2027-2031")
        raise ParticipantListError(f"participant list {path}: {'; '.join(problems)} (found: {', '.join(header)})")
    return mapping, years


def _npi_problem(value: str) -> str | None:
    if not re.match(NPI_PATTERN, value):
        return "is not a 10-digit NPI"
    if npi_check_digit(value[:9]) != value[9]:
        return "fails the NPI check digit"
    return None


def read_participant_list(path: Path) -> pa.Table:
    """Read and validate the CMS participant list (CSV or Parquet). Returns one row per file row and
    performance year present in the file (LIST_SCHEMA): cohort as 'hf' | 'lbp', flags as booleans (null when
    blank), `source_line` = the row's line in the file. Raises ParticipantListError naming file, line and column
    of every problem (the first ten shown)."""
    path = Path(path)
    if not path.is_file():
        raise ParticipantListError(f"participant list {path} does not exist")
    header, rows = _read_rows(path)
    mapping, years = _map_header(path, header)
    if not rows:
        raise ParticipantListError(f"participant list {path}: no data rows")
    out: dict[str, list] = {name: [] for name in LIST_SCHEMA.names}
    problems: list[str] = []

    def cell(row: dict, column: str) -> str:
        return (row.get(mapping[column]) or "").strip()

    for line, row in enumerate(rows, start=2):
        if row.get(EXTRA_FIELDS) or row.get(SHORT_ROW):
            problems.append(f"line {line}: {'more' if row.get(EXTRA_FIELDS) else 'fewer'} fields than header columns")
            continue
        npi = cell(row, "NPI")
        issue = _npi_problem(npi)
        if issue:
            problems.append(f"line {line} column {mapping['NPI']}: {npi!r} {issue}")
        cohort_text = cell(row, "ASM_COHORT")
        cohort = COHORT_LABELS.get(cohort_text.lower())
        if cohort is None:
            problems.append(f"line {line} column {mapping['ASM_COHORT']}: {cohort_text!r} is not a cohort "
                            "(Heart Failure or Low Back Pain)")
        state_text = cell(row, "STATE")
        state = state_text.upper()
        if state and not re.match(r"^[A-Z]{2}$", state):
            problems.append(f"line {line} column {mapping['STATE']}: {state_text!r} is not a 2-letter state code")
        flags: dict[int, tuple[bool | None, bool | None]] = {}
        for year in years:
            values = []
            for kind in ("PARTICIPANT", "SMALLPRACTICE"):
                column = flag_column(year, kind)
                text = cell(row, column)
                if text and text.lower() not in FLAG_VALUES:
                    problems.append(f"line {line} column {mapping[column]}: {text!r} is not Yes, No or blank")
                values.append(FLAG_VALUES.get(text.lower()) if text else None)
            flags[year] = (values[0], values[1])
        for year in years:
            out["source_line"].append(line)
            out["npi"].append(npi)
            out["first_name"].append(cell(row, "FIRST_NAME") or None)
            out["last_name"].append(cell(row, "LAST_NAME") or None)
            out["state"].append(state or None)
            out["cohort"].append(cohort)
            out["organization_legal_name"].append(cell(row, "ORGANIZATION_LEGAL_NAME") or None)
            out["performance_year"].append(year)
            out["is_participant"].append(flags[year][0])
            out["is_small_practice"].append(flags[year][1])
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"; … {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise ParticipantListError(f"participant list {path}: {len(problems)} problem(s): {shown}{more}")
    return pa.table(out, schema=LIST_SCHEMA)


def comparable_list(participant_list: pa.Table) -> pa.Table:
    """The list with blank flags as False (not flagged), ready to enter an engine as a memtable."""
    columns = {name: participant_list[name] for name in participant_list.column_names}
    for name in ("is_participant", "is_small_practice"):
        columns[name] = pc.fill_null(participant_list[name], False)
    return pa.table(columns)


def lookup_participants(
    participant_list: pa.Table, *, npi: str | None = None, name: str | None = None, org: str | None = None,
) -> list[dict]:
    """Rows of the list (one per file row) matching every criterion given: NPI exactly; name = every word
    appears in "first last" (any case); org = text appears in the organization name (any case). Each row has
    npi, first_name, last_name, state, cohort, organization_legal_name, source_line, participant_years and
    small_practice_years (performance years flagged Yes)."""
    if not (npi or name or org):
        raise ValueError("give at least one of npi, name, org")
    words = [w for w in re.split(r"[\s,]+", (name or "").lower()) if w]
    needle = (org or "").strip().lower()
    found: dict[int, dict] = {}
    for row in participant_list.to_pylist():
        if npi and row["npi"] != npi.strip():
            continue
        full = f"{row['first_name'] or ''} {row['last_name'] or ''}".lower()
        if words and not all(w in full for w in words):
            continue
        if needle and needle not in (row["organization_legal_name"] or "").lower():
            continue
        entry = found.setdefault(row["source_line"], {
            k: row[k] for k in ("npi", "first_name", "last_name", "state", "cohort", "organization_legal_name",
                                "source_line")} | {"participant_years": [], "small_practice_years": []})
        if row["is_participant"]:
            entry["participant_years"].append(row["performance_year"])
        if row["is_small_practice"]:
            entry["small_practice_years"].append(row["performance_year"])
    return [found[line] for line in sorted(found)]


def compare_with_participant_list(
    *, participant: ir.Table, participant_list: ir.Table, performance_year: int
) -> ir.Table:
    """§512.710: the computed participant table against the CMS list for one performance year. The list is
    reduced to one row per NPI (participant if any row says Yes; cohorts joined when rows disagree). Rows where
    either side has a participant; `agreement`: both | cohort_differs | computed_only | cms_only.

    Grain: NPI. Columns: performance_year, npi, agreement, computed_cohort, cms_cohort, computed_reason,
    computed_reason_detail, is_computed_small_practice, is_cms_small_practice.
    """
    cms = participant_list.filter((participant_list.performance_year == performance_year)
                                  & participant_list.is_participant.fill_null(False))
    cms = cms.group_by(_c_npi=cms.npi).agg(
        cms_cohort=cms.cohort.min(), _c_cohort_max=cms.cohort.max(),
        is_cms_small_practice=cms.is_small_practice.fill_null(False).any(),
    )
    cms = cms.mutate(cms_cohort=ibis.ifelse(cms.cms_cohort == cms._c_cohort_max, cms.cms_cohort,
                                            cms.cms_cohort + "," + cms._c_cohort_max)).drop("_c_cohort_max")
    ours = participant.filter(participant.performance_year == performance_year)
    ours = ours.select(
        _o_npi=ours.npi, _o_participant=ours.is_participant, computed_cohort=ours.cohort,
        computed_reason=ours.reason, computed_reason_detail=ours.reason_detail,
        is_computed_small_practice=ours.is_small_practice,
    )
    joined = ours.outer_join(cms, ours._o_npi == cms._c_npi)
    joined = joined.filter(joined._o_participant.fill_null(False) | joined._c_npi.notnull())
    computed_in = joined._o_participant.fill_null(False)
    cms_in = joined._c_npi.notnull()
    agreement = ibis.cases(
        (computed_in & cms_in & (joined.computed_cohort == joined.cms_cohort), "both"),
        (computed_in & cms_in, "cohort_differs"),
        (computed_in, "computed_only"),
        else_="cms_only",
    )
    return joined.select(
        performance_year=ibis.literal(performance_year, "int32"),
        npi=joined._o_npi.fill_null(joined._c_npi), agreement=agreement,
        computed_cohort=ibis.ifelse(computed_in, joined.computed_cohort, ibis.null("string")),
        cms_cohort=joined.cms_cohort, computed_reason=joined.computed_reason,
        computed_reason_detail=joined.computed_reason_detail,
        is_computed_small_practice=joined.is_computed_small_practice,
        is_cms_small_practice=joined.is_cms_small_practice,
    )
