"""Write a synthetic world as CCW research files (`layouts/rif.yaml`): MBSF base, base claim + line /
revenue-centre files per setting, and Part D events, as CSV with CCW variable names and DD-MON-YYYY dates.

Research files hold final action claims (CCW applies final action processing): only the versions that are
final under the canonical model's resolution are written (`openasm.ingest.final_action`). Institutional
revenue centres carry the payment and the patient's responsibility (allowed − paid). What the layouts cannot
hold (a thirteenth month, an exact repeat of an enrollment month, a diagnosis row of another beneficiary or a
repeat of a position) is counted in the summary.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from openasm.ingest.final_action import STATUS_COLUMN, resolve_final_action

SETTINGS = {"carrier": ("carrier", "71"), "dme": ("dme", "81"), "inpatient": ("inpatient", "60"),
            "outpatient": ("outpatient", "40"), "snf": ("snf", "20"), "home_health": ("hha", "10"),
            "hospice": ("hospice", "50")}
PROFESSIONAL = ("carrier", "dme")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEPT", "OCT", "NOV", "DEC")


@dataclass
class RifWriteSummary:
    out_dir: Path
    records: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)


def ccw_date(values) -> pa.Array:
    """DD-MON-YYYY, as CCW SAS exports and BFD extracts print dates."""
    return pc.utf8_upper(pc.strftime(pc.cast(values, pa.timestamp("s")), format="%d-%b-%Y"))


def _write(table: pa.Table, path: Path, summary: RifWriteSummary) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, path)
    summary.records[path.stem] = summary.records.get(path.stem, 0) + table.num_rows


def final_versions(world: Path, table: str) -> pa.Table:
    """The world's rows of claims that are final action (and everything that is not a version: junk rows are
    originals of their own)."""
    con = ibis.duckdb.connect()
    rows = con.read_parquet(str(Path(world) / table / "*.parquet"))
    rows = rows.mutate(_order=ibis.row_number())
    status = resolve_final_action(claims=rows)
    return status.filter(status[STATUS_COLUMN] == "final").order_by("_order").drop(
        "_order", "family_id", STATUS_COLUMN).to_pyarrow()


def write_rif(world: Path, out: Path, side_tables: tuple[str, ...] = ("clinician",)) -> RifWriteSummary:
    """The world in `world` as research files in `out` (plus canonical `side_tables`)."""
    world, out = Path(world), Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    summary = RifWriteSummary(out)
    import pyarrow.parquet as pq

    beneficiary = pq.read_table(world / "beneficiary")
    enrollment = pq.read_table(world / "enrollment")
    last_year = json.loads((world / "synth_manifest.json").read_text())["parameters"]["last_year"]
    _write(mbsf_rows(beneficiary, enrollment, last_year, summary), out / "mbsf_abcd_base.csv", summary)
    lines = final_versions(world, "claim_line")
    diagnosis = pq.read_table(world / "claim_diagnosis")
    for claim_type, (stem, code) in SETTINGS.items():
        rows = lines.filter(pc.equal(lines["claim_type"], claim_type))
        if rows.num_rows:
            base, detail = claim_files(rows, diagnosis, code, claim_type in PROFESSIONAL, summary)
            _write(base, out / f"{stem}_claims.csv", summary)
            _write(detail, out / f"{stem}_{'line' if claim_type in PROFESSIONAL else 'revenue'}.csv", summary)
    _write(pde_rows(final_versions(world, "pharmacy_claim")), out / "pde.csv", summary)
    for name in side_tables:
        shutil.copytree(world / name, out / name)
    return summary


def mbsf_rows(beneficiary: pa.Table, enrollment: pa.Table, last_year: int, summary: RifWriteSummary) -> pa.Table:
    """One MBSF row per beneficiary row and reference year of its enrollment (the last year for a beneficiary
    without enrollment), with the twelve monthly indicator sets."""
    months: dict[tuple[str, str], dict] = {}
    dropped = 0
    for row in enrollment.to_pylist():
        text = row["year_month"] or ""
        if len(text) != 7 or not text[5:7].isdigit() or not 1 <= int(text[5:7]) <= 12:
            dropped += 1
            continue
        slot = months.setdefault((row["bene_id"], text[:4]), {})
        if text[5:7] in slot:
            dropped += 1
            continue
        slot[text[5:7]] = row
    summary.dropped["enrollment_rows"] = dropped
    years: dict[str, list[str]] = {}
    for bene, year in months:
        years.setdefault(bene, []).append(year)
    out = []
    for bene in beneficiary.to_pylist():
        for year in sorted(years.get(bene["bene_id"], [str(last_year)])):
            out.append(_mbsf_row(bene, year, months.get((bene["bene_id"], year), {})))
    known = set(beneficiary["bene_id"].to_pylist())
    for (bene_id, year), slot in months.items():  # enrollment of beneficiaries the beneficiary table lacks
        if bene_id not in known:
            out.append(_mbsf_row({"bene_id": bene_id}, year, slot))
    return pa.Table.from_pylist(out)


def _flag(value, yes: str, no: str):
    return None if value is None else (yes if value else no)


def _mbsf_row(bene: dict, year: str, slot: dict) -> dict:
    row = {"BENE_ID": bene.get("bene_id"), "BENE_ENROLLMT_REF_YR": year,
           "BENE_BIRTH_DT": _day(bene.get("birth_date")), "SEX_IDENT_CD": {"M": "1", "F": "2", "U": "0"}.get(
               bene.get("sex"), bene.get("sex")), "BENE_DEATH_DT": _day(bene.get("death_date")),
           "ENTLMT_RSN_ORIG": bene.get("orec"), "ESRD_IND": _flag(bene.get("is_esrd"), "Y", "0"),
           "ZIP_CD": bene.get("zip5"), "BENE_RACE_CD": bene.get("race_code")}
    fips = (bene.get("state_fips") or "") + (bene.get("county_fips") or "")
    for number in range(1, 13):
        month = f"{number:02d}"
        m = slot.get(month)
        a, b = (m or {}).get("has_part_a"), (m or {}).get("has_part_b")
        buyin = None if m is None or a is None or b is None else {(True, True): "3", (True, False): "1",
                                                                   (False, True): "2", (False, False): "0"}[(a, b)]
        row[f"MDCR_ENTLMT_BUYIN_IND_{month}"] = buyin
        row[f"HMO_IND_{month}"] = None if m is None else _flag(m["is_medicare_advantage"], "C", "0")
        row[f"PTD_CNTRCT_ID_{month}"] = None if m is None else _flag(m["has_part_d"], "S0001", "N")
        row[f"DUAL_STUS_CD_{month}"] = None if m is None else m["dual_status_code"]
        row[f"MDCR_STATUS_CODE_{month}"] = None if m is None else _flag(m["is_esrd"], "11", "10")
        row[f"STATE_CNTY_FIPS_CD_{month}"] = fips or None
    return row


def _day(value) -> str | None:
    return None if value is None else value.strftime("%d-%b-%Y").upper()


def claim_files(rows: pa.Table, diagnosis: pa.Table, code: str, professional: bool,
                summary: RifWriteSummary) -> tuple[pa.Table, pa.Table]:
    """(base file: one row per claim with its diagnoses, line or revenue-centre file)."""
    firsts = rows.group_by("claim_id", use_threads=False).aggregate([("line_number", "min")])
    heads = rows.join(firsts.rename_columns({"line_number_min": "line_number"}), ["claim_id", "line_number"])
    heads = heads.sort_by("claim_id")
    keep = pc.not_equal(heads["claim_id"][1:], heads["claim_id"][:-1]) if heads.num_rows > 1 else None
    if keep is not None:
        heads = heads.filter(pa.concat_arrays([pa.array([True]), keep.combine_chunks() if isinstance(
            keep, pa.ChunkedArray) else keep]))
    tob = pc.fill_null(heads["type_of_bill_code"], "")
    base = {"BENE_ID": heads["bene_id"], "CLM_ID": heads["claim_id"], "NCH_CLM_TYPE_CD": pa.array([code] * heads.num_rows),
            "CLM_FROM_DT": ccw_date(heads["claim_from_date"]), "CLM_THRU_DT": ccw_date(heads["claim_thru_date"]),
            "NCH_WKLY_PROC_DT": ccw_date(heads["claim_processed_date"])}
    if professional:
        base["CARR_CLM_CNTL_NUM"] = heads["claim_id"]
    else:
        base.update({"PRVDR_NUM": heads["facility_ccn"], "CLM_FAC_TYPE_CD": pc.utf8_slice_codeunits(tob, 0, 1),
                     "CLM_SRVC_CLSFCTN_TYPE_CD": pc.utf8_slice_codeunits(tob, 1, 2),
                     "CLM_FREQ_CD": pc.utf8_slice_codeunits(tob, 2, 3), "CLM_DRG_CD": heads["drg_code"],
                     "CLM_ADMSN_DT": ccw_date(heads["admission_date"]),
                     "NCH_BENE_DSCHRG_DT": ccw_date(heads["discharge_date"]),
                     "NCH_PRMRY_PYR_CD": heads["primary_payer_code"]})
    base.update(_diagnosis_columns(heads, diagnosis, 12 if professional else 25, summary))
    return pa.table(base), _detail(rows, professional)


def _diagnosis_columns(heads: pa.Table, diagnosis: pa.Table, positions: int, summary: RifWriteSummary) -> dict:
    mine = diagnosis.filter(pc.is_in(diagnosis["claim_id"], value_set=heads["claim_id"]))
    out, held = {}, 0
    for n in range(1, positions + 1):
        at = mine.filter(pc.equal(mine["dx_position"], n))
        same = at.join(heads.select(["claim_id", "bene_id"]), ["claim_id", "bene_id"], join_type="inner")
        firsts = same.group_by("claim_id", use_threads=False).aggregate([("icd10_code", "first"),
                                                                         ("present_on_admission", "first")])
        index = pc.index_in(heads["claim_id"], value_set=firsts["claim_id"])
        out[f"ICD_DGNS_CD{n}"] = pc.take(firsts["icd10_code_first"], index)
        if positions > 12:
            out[f"CLM_POA_IND_SW{n}"] = pc.take(firsts["present_on_admission_first"], index)
        held += pc.sum(pc.is_valid(firsts["icd10_code_first"])).as_py() or 0
    summary.dropped["diagnosis_rows"] = summary.dropped.get("diagnosis_rows", 0) + mine.num_rows - held
    return out


def _detail(rows: pa.Table, professional: bool) -> pa.Table:
    common = {"BENE_ID": rows["bene_id"], "CLM_ID": rows["claim_id"], "HCPCS_CD": rows["hcpcs_code"],
              "HCPCS_1ST_MDFR_CD": rows["hcpcs_modifier_1"], "HCPCS_2ND_MDFR_CD": rows["hcpcs_modifier_2"]}
    if professional:
        return pa.table({**common, "LINE_NUM": rows["line_number"], "PRF_PHYSN_NPI": rows["rendering_npi"],
                         "TAX_NUM": rows["billing_tin"], "PRVDR_SPCLTY": rows["provider_specialty_code"],
                         "LINE_PLACE_OF_SRVC_CD": rows["place_of_service_code"],
                         "LINE_1ST_EXPNS_DT": ccw_date(rows["line_from_date"]),
                         "LINE_LAST_EXPNS_DT": ccw_date(rows["line_thru_date"]), "LINE_SRVC_CNT": rows["service_units"],
                         "LINE_NCH_PMT_AMT": rows["paid_amount"], "LINE_ALOWD_CHRG_AMT": rows["allowed_amount"],
                         "LINE_ICD_DGNS_CD": rows["line_dx_code"], "LINE_BENE_PRMRY_PYR_CD": rows["primary_payer_code"]})
    responsibility = pc.round(pc.subtract(rows["allowed_amount"], pc.fill_null(rows["paid_amount"], 0.0)), 2)
    return pa.table({**common, "CLM_LINE_NUM": rows["line_number"], "REV_CNTR": rows["revenue_center_code"],
                     "REV_CNTR_DT": ccw_date(rows["line_from_date"]), "HCPCS_3RD_MDFR_CD": rows["hcpcs_modifier_3"],
                     "REV_CNTR_UNIT_CNT": rows["service_units"], "REV_CNTR_PMT_AMT_AMT": rows["paid_amount"],
                     "REV_CNTR_PTNT_RSPNSBLTY_PMT": responsibility})


def pde_rows(fills: pa.Table) -> pa.Table:
    return pa.table({
        "PDE_ID": fills["claim_id"], "BENE_ID": fills["bene_id"], "SRVC_DT": ccw_date(fills["fill_date"]),
        "PROD_SRVC_ID": fills["ndc_code"], "QTY_DSPNSD_NUM": fills["quantity_dispensed"],
        "DAYS_SUPLY_NUM": fills["days_supply"],
        "PRSCRBR_ID_QLFYR_CD": pc.if_else(pc.is_valid(fills["prescriber_npi"]), "01", pa.scalar(None, pa.string())),
        "PRSCRBR_ID": fills["prescriber_npi"], "TOT_RX_CST_AMT": fills["allowed_amount"],
        "CVRD_D_PLAN_PD_AMT": fills["paid_amount"]})
