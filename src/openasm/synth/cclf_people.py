"""CCLF8 (beneficiary demographics) and CCLF9 (MBI cross-walk) from a synthetic world's beneficiaries.

CCLF8 fields come from the canonical beneficiary row and the world's monthly enrollment: the first month with
Part A / Part B as the entitlement begin dates, the latest dual status, the first hospice range, the Medicare
status code from the entitlement reason and ESRD (CCLF packet Appendix B, BENE_MDCR_STUS_CD). A share of
beneficiaries changed MBI on `switch_date` (Jan 1 of the world's last year): CCLF8 carries the current MBI,
CCLF9 one row per change (§2.4.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from openasm.synth.cclf_claims import _code_of, recode
from openasm.synth.fixed_width import date_text, format_records, write_lines
from openasm.synth.ids import mbi_ids

PREVIOUS_MBI_BASE = 4_000_000_000
PART_SPAN = 1_000_000


@dataclass(frozen=True)
class MbiChanges:
    """Beneficiaries whose MBI changed: current and previous ids (aligned) and the change date."""

    current: pa.Array
    previous: pa.Array
    switch_date: dt.date


def mbi_changes(beneficiary: pa.Table, part: int, seed: int, share: float, last_year: int) -> MbiChanges:
    """Every k-th distinct beneficiary (k = 1 / share) gets a previous MBI, fresh and never used elsewhere."""
    benes = pc.unique(beneficiary["bene_id"]).drop_null()
    step = max(int(round(1 / share)), 1) if share > 0 else len(benes) + 1
    picked = np.arange(0, len(benes), step)
    previous = mbi_ids(PREVIOUS_MBI_BASE + part * PART_SPAN + picked, seed)
    return MbiChanges(benes.take(pa.array(picked, pa.int64())), previous, dt.date(last_year, 1, 1))


def _first_month(enrollment: pa.Table, flag: str) -> pa.Table:
    on = enrollment.filter(pc.fill_null(enrollment[flag], False))
    firsts = on.group_by("bene_id", use_threads=False).aggregate([("year_month", "min")])
    return firsts.rename_columns({"year_month_min": f"_{flag}"})


def _enrollment_facts(enrollment: pa.Table) -> pa.Table:
    """Per beneficiary: first Part A and Part B months, first hospice range, latest dual status."""
    facts = pa.table({"bene_id": pc.unique(enrollment["bene_id"])})
    for flag in ("has_part_a", "has_part_b"):
        facts = facts.join(_first_month(enrollment, flag), "bene_id")
    hospice = enrollment.filter(pc.fill_null(enrollment["is_hospice"], False))
    span = hospice.group_by("bene_id", use_threads=False).aggregate([("year_month", "min"), ("year_month", "max")])
    facts = facts.join(span, "bene_id")
    dual = enrollment.filter(pc.is_valid(enrollment["dual_status_code"])).sort_by(
        [("bene_id", "ascending"), ("year_month", "descending")])
    latest = dual.group_by("bene_id", use_threads=False).aggregate([("dual_status_code", "first")])
    return facts.join(latest, "bene_id")


def _month_start(year_month: pa.ChunkedArray) -> pa.Array:
    return pc.binary_join_element_wise(year_month, "01", "-")


def _month_end(year_month: pa.ChunkedArray) -> pa.Array:
    values = []
    for text in year_month.to_pylist():
        if text is None:
            values.append(None)
            continue
        year, month = int(text[:4]), int(text[5:7])
        nxt = dt.date(year + month // 12, month % 12 + 1, 1)
        values.append((nxt - dt.timedelta(days=1)).isoformat())
    return pa.array(values, pa.string())


def _medicare_status(beneficiary: pa.Table) -> pa.Array:
    """BENE_MDCR_STUS_CD: 10/11 aged, 20/21 disabled, 31 ESRD only (second digit 1 = with ESRD)."""
    orec = pc.fill_null(beneficiary["orec"], "0")
    esrd = pc.fill_null(beneficiary["is_esrd"], False)
    base = pc.if_else(pc.is_in(orec, value_set=pa.array(["1", "3"])), "2", "1")
    status = pc.binary_join_element_wise(base, pc.if_else(esrd, "1", "0"), "")
    return pc.if_else(pc.and_(pc.equal(orec, "2"), esrd), "31", status)


def write_people(beneficiary: pa.Table, enrollment: pa.Table, changes: MbiChanges, layouts, out, cclf8_name: str,
                 cclf9_name: str, summary) -> None:
    facts = _enrollment_facts(enrollment)
    rows = beneficiary.append_column("_order", pa.array(np.arange(beneficiary.num_rows)))
    rows = rows.join(facts, "bene_id", join_type="left outer").sort_by("_order")
    columns = {
        "BENE_MBI_ID": rows["bene_id"], "BENE_FIPS_STATE_CD": rows["state_fips"],
        "BENE_FIPS_CNTY_CD": rows["county_fips"], "BENE_ZIP_CD": rows["zip5"], "GEO_ZIP5_CD": rows["zip5"],
        "BENE_DOB": date_text(rows["birth_date"]), "BENE_SEX_CD": recode(rows["sex"], _code_of("sex")),
        "BENE_RACE_CD": rows["race_code"], "BENE_MDCR_STUS_CD": _medicare_status(rows),
        "BENE_DUAL_STUS_CD": rows["dual_status_code_first"], "BENE_DEATH_DT": date_text(rows["death_date"]),
        "BENE_RNG_BGN_DT": _month_start(rows["year_month_min"]), "BENE_RNG_END_DT": _month_end(rows["year_month_max"]),
        "BENE_ORGNL_ENTLMT_RSN_CD": rows["orec"],
        "BENE_PART_A_ENRLMT_BGN_DT": _month_start(rows["_has_part_a"]),
        "BENE_PART_B_ENRLMT_BGN_DT": _month_start(rows["_has_part_b"]),
    }
    layout = layouts["CCLF8"]
    records = format_records(layout, columns, rows.num_rows, ("BENE_DEATH_DT", "BENE_RNG_END_DT"))
    summary.records["CCLF8"] = summary.records.get("CCLF8", 0) + write_lines(out / cclf8_name, records)
    summary.files.append(cclf8_name)
    n = len(changes.current)
    xref = {"HICN_MBI_XREF_IND": pa.array(["M"] * n), "CRNT_NUM": changes.current, "PRVS_NUM": changes.previous,
            "PRVS_ID_OBSLT_DT": pa.array([(changes.switch_date - dt.timedelta(days=1)).isoformat()] * n)}
    records = format_records(layouts["CCLF9"], xref, n)
    summary.records["CCLF9"] = summary.records.get("CCLF9", 0) + write_lines(out / cclf9_name, records)
    summary.files.append(cclf9_name)
