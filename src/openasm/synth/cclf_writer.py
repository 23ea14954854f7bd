"""Write a synthetic world as a CCLF delivery (CCLF1, 2, 4, 5, 6, 7, 8, 9) in CMS's fixed-width layouts.

What an ACO receives (CCLF Information Packet v38): one file per type and world chunk, named
`P.A9999.ACO.ZC<n>Y<yy>.D<yymmdd>.T<part>`; claims processed after the last world year go to run-out files
(`ZC<n>R<yy>`, §3.4). Versions follow the packet's debit/credit form (§4.4, §5.2): an adjustment of a claim is
written as a cancellation (an unsigned copy of the original, processed with the adjustment) plus the new
version, an adjustment claim in Part A and a new original in Part B (CCLF5/6 have no adjustment claims); a
cancellation is an unsigned copy. Related claims share their natural key (Part B: the claim control number,
here the original's id; Part D: the prescription reference). A share of beneficiaries changed MBI: their
claims before the change carry the previous MBI and CCLF9 cross-walks it (§3.1, §5.1.1).

`cclf_people` writes CCLF8 and CCLF9; what the layouts cannot hold is counted in the summary (`dropped`).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openasm.connectors.layout import fixed_width_layouts
from openasm.synth.cclf_claims import part_a_columns, part_a_headers, part_b_columns, part_d_columns
from openasm.synth.cclf_people import MbiChanges, mbi_changes, write_people
from openasm.synth.fixed_width import format_records, write_lines

ACO = "A9999"
CANCEL_COPY_PREFIX = "5"


@dataclass
class CclfWriteSummary:
    out_dir: Path
    records: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def file_name(file_type: str, year: int, runout: bool, part: int) -> str:
    """CCLF packet §4.2 name of one file of the delivery made in January after the world's last year."""
    yy = year % 100
    kind = "R" if runout else "Y"
    delivered = f"{(year + 1) % 100:02d}{'04' if runout else '01'}10"
    return f"P.{ACO}.ACO.ZC{file_type[4:]}{kind}{yy:02d}.D{delivered}.T{part:07d}"


def world_parts(world: Path, table: str) -> list[Path]:
    return sorted((Path(world) / table).glob("part-*.parquet"))


def write_cclf(world: Path, out: Path, side_tables: tuple[str, ...] = ("clinician",),
               mbi_change_share: float = 0.03) -> CclfWriteSummary:
    """The world in `world` (canonical Parquet from `generate_world`) as a CCLF delivery in `out`, plus the
    canonical `side_tables` CCLF has no file for (the practice roster `clinician`; `enrollment` for a run that
    should use the world's own monthly enrollment)."""
    world, out = Path(world), Path(out)
    manifest = json.loads((world / "synth_manifest.json").read_text())
    last_year, seed = manifest["parameters"]["last_year"], manifest["parameters"]["seed"]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    summary = CclfWriteSummary(out)
    layouts = fixed_width_layouts("cclf_records")
    for part, bene_path in enumerate(world_parts(world, "beneficiary")):
        beneficiary = pq.read_table(bene_path)
        changes = mbi_changes(beneficiary, part, seed, mbi_change_share, last_year)
        lines = _previous_mbis(cclf_claim_ids(pq.read_table(world / "claim_line" / bene_path.name)), changes)
        diagnosis = _previous_mbis(cclf_claim_ids(pq.read_table(world / "claim_diagnosis" / bene_path.name)), changes)
        fills = _previous_mbis(cclf_claim_ids(pq.read_table(world / "pharmacy_claim" / bene_path.name)), changes)
        versions = debit_credit(lines)
        institutional = versions.filter(pc.invert(pc.is_in(versions["claim_type"], value_set=pa.array(
            ["carrier", "dme"]))))
        headers = part_a_headers(institutional)
        _emit(headers, part_a_columns("CCLF1", diagnosis), "CCLF1", layouts, out, last_year, part, summary)
        _emit(institutional, part_a_columns("CCLF2", diagnosis), "CCLF2", layouts, out, last_year, part, summary)
        dx_a = _part_a_diagnoses(headers, diagnosis)
        _emit(dx_a, part_a_columns("CCLF4", diagnosis), "CCLF4", layouts, out, last_year, part, summary)
        for claim_type, file_type in (("carrier", "CCLF5"), ("dme", "CCLF6")):
            rows = versions.filter(pc.equal(versions["claim_type"], claim_type))
            columns, dropped = part_b_columns(file_type, rows, diagnosis)
            summary.dropped[f"{file_type}_diagnosis_rows"] = summary.dropped.get(
                f"{file_type}_diagnosis_rows", 0) + dropped
            _emit(rows, columns, file_type, layouts, out, last_year, part, summary)
        _emit(fills.append_column("control_number", pc.if_else(pc.is_valid(fills["original_claim_id"]),
                                                                fills["original_claim_id"], fills["claim_id"])),
              part_d_columns, "CCLF7", layouts, out, last_year, part, summary, date_col="fill_date")
        write_people(beneficiary, pq.read_table(world / "enrollment" / bene_path.name), changes, layouts, out,
                     file_name("CCLF8", last_year, False, part), file_name("CCLF9", last_year, False, part), summary)
    for name in side_tables:
        shutil.copytree(world / name, out / name)
        summary.files.append(name)
    return summary


def cclf_claim_ids(table: pa.Table) -> pa.Table:
    """World claim ids are a one-character kind prefix + 13 digits; CUR_CLM_UNIQ_ID is 13 digits, so the
    prefix is dropped (claims and Part D events live in separate files)."""
    for name in ("claim_id", "original_claim_id"):
        if name in table.column_names:
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pc.utf8_slice_codeunits(table[name], 1, 14))
    return table


def _previous_mbis(table: pa.Table, changes: MbiChanges) -> pa.Table:
    """Rows dated before a beneficiary's MBI change carry the previous MBI (what older deliveries held)."""
    date_col = "claim_from_date" if "claim_from_date" in table.column_names else (
        "fill_date" if "fill_date" in table.column_names else None)
    if date_col is None:
        return table
    index = pc.index_in(table["bene_id"], value_set=changes.current)
    changed = pc.is_valid(index)
    before = pc.and_(changed, pc.less(table[date_col], pa.scalar(changes.switch_date)))
    previous = pc.take(changes.previous, pc.fill_null(index, 0))
    bene = pc.if_else(pc.fill_null(before, False), previous, table["bene_id"])
    return table.set_column(table.schema.get_field_index("bene_id"), "bene_id", bene)


def debit_credit(lines: pa.Table) -> pa.Table:
    """Canonical versions in CCLF's debit/credit form: every adjustment gets a cancellation copy of the claim it
    replaces (claim id `5` + the adjustment's id, processed with it). Adds `control_number` (the family's
    original claim id) for the natural keys."""
    kind = lines["claim_adjustment_type"]
    control = pc.if_else(pc.is_valid(lines["original_claim_id"]), lines["original_claim_id"], lines["claim_id"])
    lines = lines.append_column("control_number", control)
    adjust = lines.filter(pc.equal(pc.fill_null(kind, ""), "adjustment"))
    claims = adjust.group_by(["claim_id", "original_claim_id"]).aggregate([("claim_processed_date", "max")])
    if claims.num_rows == 0:
        return lines
    # Every line of each replaced original, once per adjustment of it (a vectorised join, not a loop).
    pairs = claims.rename_columns({"claim_id": "_adjustment_id", "original_claim_id": "claim_id",
                                   "claim_processed_date_max": "_adjusted_on"})
    copies = lines.append_column("_order", pa.array(range(lines.num_rows))).join(pairs, "claim_id",
                                                                                   join_type="inner")
    copies = copies.sort_by([("_adjustment_id", "ascending"), ("_order", "ascending")])
    n = copies.num_rows
    copies = copies.set_column(copies.schema.get_field_index("claim_id"), "claim_id", pc.binary_join_element_wise(
        pa.array([CANCEL_COPY_PREFIX] * n), pc.utf8_slice_codeunits(copies["_adjustment_id"], 1, 13), ""))
    copies = copies.set_column(copies.schema.get_field_index("claim_adjustment_type"), "claim_adjustment_type",
                               pa.array(["cancel"] * n))
    copies = copies.set_column(copies.schema.get_field_index("claim_processed_date"), "claim_processed_date",
                               copies["_adjusted_on"])
    copies = copies.select(lines.column_names)
    return pa.concat_tables([lines, copies])


def _runout_mask(table: pa.Table, date_col: str, last_year: int) -> np.ndarray:
    import datetime as dt

    late = pc.greater(table[date_col], pa.scalar(dt.date(last_year, 12, 31)))
    return pc.fill_null(late, False).to_numpy(zero_copy_only=False)


def _emit(table: pa.Table, columns_of, file_type: str, layouts, out: Path, last_year: int, part: int,
          summary: CclfWriteSummary, date_col: str = "claim_processed_date",
          high_dates: tuple[str, ...] = ()) -> None:
    """Write `table` as `file_type` records, split between the monthly and the run-out file."""
    if table.num_rows == 0:
        return
    late = _runout_mask(table, date_col, last_year) if date_col in table.column_names else np.zeros(table.num_rows, bool)
    for runout in (False, True):
        rows = table.filter(pa.array(late == runout))
        if rows.num_rows == 0:
            continue
        records = format_records(layouts[file_type], columns_of(rows), rows.num_rows, high_dates)
        name = file_name(file_type, last_year, runout, part)
        summary.records[file_type] = summary.records.get(file_type, 0) + write_lines(out / name, records)
        summary.files.append(name)




def _part_a_diagnoses(headers: pa.Table, diagnosis: pa.Table) -> pa.Table:
    """CCLF4 rows: the diagnoses of every Part A claim; a cancellation copy repeats its original's."""
    source = pc.if_else(pc.starts_with(headers["claim_id"], CANCEL_COPY_PREFIX), headers["control_number"],
                        headers["claim_id"])
    keys = pa.table({"claim_id": headers["claim_id"], "_source": source, "_type": headers["claim_type"],
                     "claim_from_date": headers["claim_from_date"], "claim_thru_date": headers["claim_thru_date"],
                     "claim_processed_date": headers["claim_processed_date"]})
    dx = diagnosis.rename_columns([c if c != "claim_id" else "_source" for c in diagnosis.column_names])
    joined = dx.join(keys, "_source", join_type="inner")
    return joined.sort_by([("claim_id", "ascending"), ("dx_position", "ascending")])
