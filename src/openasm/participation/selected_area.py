"""Where a clinician practices, and whether that is a selected ASM area (§512.710(b); asm-model.md §2.2 item 3).

CMS selected CBSAs / metropolitan divisions by stratified random sampling; the list is data
(`participation.selected_areas_file`). The location is where services are rendered
(`participation.geography_basis` = service_location): the canonical clinician table carries the practice CBSA
per TIN × NPI, and the engine uses the row of the TIN that billed the plurality of the NPI's Part B lines in
the eligibility year. A row with a ZIP and no CBSA is placed through the HUD ZIP-CBSA crosswalk before this
step (`participation.zip_cbsa`, rule `participation.zip_cbsa_method`, ties and unplaced ZIPs reported); a row
still without a CBSA is reported as `missing_cbsa`, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from openasm.episodes.specialty import plurality_basis, plurality_weight
from openasm.participation.specialty_plurality import PLURALITY_RULE, select_part_b_lines
from openasm.rules import RulesForYear
from openasm.schema.formats import CBSA_PATTERN

SHIPPED_AREA_LIST = "participation__selected_areas"
AREA_COLUMN_ALIASES = ("cbsa_code", "cbsa", "cbsa_md_code", "metropolitan_division_code", "cbsa_or_md_code")
GEOGRAPHY_BASES = ("service_location",)


class SelectedAreaError(ValueError):
    """A selected-area file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class SelectedAreas:
    """The selected areas in force and where they came from."""

    table: pa.Table  # one column: cbsa_code
    source: str
    evidence: str  # default | override


def _normalise_header(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def read_selected_area_file(path: Path) -> pa.Table:
    """A user file of selected areas: CSV or Parquet with one column named cbsa_code (or cbsa,
    metropolitan_division_code; any case). Every value must be a 5-digit CBSA / metropolitan division code;
    errors name the file, line and column. Returns the distinct codes (column cbsa_code)."""
    path = Path(path)
    if not path.is_file():
        raise SelectedAreaError(f"selected areas file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            raw = pq.read_table(path)
            header = list(raw.column_names)
            rows = [{k: (None if v is None else str(v)) for k, v in r.items()} for r in raw.to_pylist()]
        elif suffix in (".csv", ".txt"):
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
            header = list(reader.fieldnames or [])
            rows = list(reader)
        else:
            raise SelectedAreaError(f"selected areas file {path}: unsupported file type '{suffix}' (use .csv or .parquet)")
    except (OSError, UnicodeDecodeError, pa.ArrowException) as err:
        raise SelectedAreaError(f"selected areas file {path}: unreadable: {err}") from err
    by_norm = {_normalise_header(h): h for h in header}
    column = next((by_norm[a] for a in AREA_COLUMN_ALIASES if a in by_norm), None)
    if column is None:
        raise SelectedAreaError(
            f"selected areas file {path}: no CBSA column; expected one of {', '.join(AREA_COLUMN_ALIASES)} "
            f"(found: {', '.join(header) or 'no header'})"
        )
    if not rows:
        raise SelectedAreaError(f"selected areas file {path}: no rows")
    codes, problems = [], []
    for line, row in enumerate(rows, start=2):
        value = (row.get(column) or "").strip()
        if not re.match(CBSA_PATTERN, value):
            problems.append(f"line {line} column {column}: {value!r} is not a 5-digit CBSA / metropolitan division code")
        codes.append(value)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SelectedAreaError(f"selected areas file {path}: {shown}")
    return pa.table({"cbsa_code": pa.array(sorted(set(codes)), pa.string())})


def load_selected_areas(rules: RulesForYear, path: Path | None = None) -> SelectedAreas:
    """asm-model §2.2 item 3: the selected areas, from (first found) `path`, the file named by
    `participation.selected_areas_file`, or the shipped list `participation__selected_areas` (an illustrative
    default, NOT the CMS list; replaceable through a code-list folder)."""
    if path is not None:
        return SelectedAreas(read_selected_area_file(path), str(path), "override")
    configured = rules.value("participation.selected_areas_file")
    if configured:
        return SelectedAreas(read_selected_area_file(Path(configured)), str(configured), "override")
    shipped = rules.code_list(SHIPPED_AREA_LIST)
    origin = rules.code_list_rows()
    row = next((r for r in origin if r["name"] == f"codes:{SHIPPED_AREA_LIST}"), None)
    evidence = row["evidence"] if row else "default"
    source = f"codes/{SHIPPED_AREA_LIST}.csv" if evidence != "override" else str(row["value"])
    return SelectedAreas(shipped.select(["cbsa_code"]), source, evidence)


def locate_practice(*, claim_line: ir.Table, clinician: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b), asm-model §2.2 item 3: each NPI's practice row. Among the NPI's clinician-table rows, the
    TIN with the largest Part B weight (`participation.specialty_plurality_basis`) in the eligibility year,
    ties and no claims going to the lower TIN (tin_source claims | clinician_table). An NPI with lines but no
    clinician row keeps its plurality TIN and no location (tin_source claims_only).

    Grain: NPI. Columns: npi, tin, tin_source, has_clinician_record, practice_zip5, cbsa_code, is_physician,
    is_rhc_fqhc.
    """
    basis = plurality_basis(rules, PLURALITY_RULE)
    lines = select_part_b_lines(claim_line=claim_line, rules=rules)
    tallies = lines.group_by("npi", "tin").agg(_weight=plurality_weight(lines, basis))
    weights = tallies.select(_w_npi=tallies.npi, _w_tin=tallies.tin, _w_weight=tallies._weight)
    rows = clinician.left_join(weights, (clinician.npi == weights._w_npi) & (clinician.tin == weights._w_tin))
    rows = rows.mutate(_rank=ibis.row_number().over(ibis.window(
        group_by="npi", order_by=[ibis.desc(rows._w_weight.fill_null(-1.0)), "tin"])))
    chosen = rows.filter(rows._rank == 0)
    with_record = chosen.select(
        "npi", "tin",
        tin_source=ibis.ifelse(chosen._w_weight.notnull(), "claims", "clinician_table"),
        has_clinician_record=ibis.literal(True),
        practice_zip5=chosen.practice_zip5, cbsa_code=chosen.practice_cbsa_code,
        is_physician=chosen.is_physician, is_rhc_fqhc=chosen.is_rhc_fqhc,
    )
    known = clinician.select(_k_npi=clinician.npi).distinct()
    orphan = tallies.anti_join(known, tallies.npi == known._k_npi)
    orphan = orphan.mutate(_rank=ibis.row_number().over(ibis.window(
        group_by="npi", order_by=[ibis.desc("_weight"), "tin"])))
    orphan = orphan.filter(orphan._rank == 0)
    without_record = orphan.select(
        "npi", "tin", tin_source=ibis.literal("claims_only"), has_clinician_record=ibis.literal(False),
        practice_zip5=ibis.null("string"), cbsa_code=ibis.null("string"),
        is_physician=ibis.null("boolean"), is_rhc_fqhc=ibis.null("boolean"),
    )
    return with_record.union(without_record)


def flag_selected_area(*, practice: ir.Table, selected_area: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(b), asm-model §2.2 item 3: `is_in_selected_area` = the practice CBSA is on the selected-area
    list (null when the CBSA is unknown). Only `participation.geography_basis` = service_location is
    supported: the canonical clinician table carries the practice (service) location, not a billing address.

    Grain: NPI. Input columns: npi, cbsa_code, … Output adds is_in_selected_area.
    """
    basis = rules.value("participation.geography_basis")
    if basis not in GEOGRAPHY_BASES:
        raise ValueError(
            f"participation.geography_basis: {basis!r} is not supported; the canonical clinician table carries "
            "the practice (service) location only"
        )
    areas = selected_area.select(_a_code=selected_area.cbsa_code).distinct()
    joined = practice.left_join(areas, practice.cbsa_code == areas._a_code)
    flag = ibis.ifelse(joined.cbsa_code.isnull(), ibis.null("boolean"), joined._a_code.notnull())
    return joined.mutate(is_in_selected_area=flag).drop("_a_code")


def count_practice_clinicians(*, claim_line: ir.Table, clinician: ir.Table, rules: RulesForYear) -> ir.Table:
    """§414.1305 via §512.705 (small practice): the clinicians of each TIN — distinct NPIs on its Part B lines
    in the eligibility year or on its clinician-table rows — and whether that is at most
    `participation.small_practice_max_clinicians`.

    Grain: TIN. Columns: tin, tin_clinician_count, is_small_practice.
    """
    limit = int(rules.value("participation.small_practice_max_clinicians"))
    lines = select_part_b_lines(claim_line=claim_line, rules=rules)
    pairs = lines.filter(lines.tin.notnull()).select("tin", "npi").union(clinician.select("tin", "npi")).distinct()
    counts = pairs.group_by("tin").agg(tin_clinician_count=pairs.npi.nunique().cast("int64"))
    return counts.mutate(is_small_practice=counts.tin_clinician_count <= limit)
