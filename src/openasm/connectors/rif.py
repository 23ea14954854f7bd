"""CCW research identifiable files (RIF) → canonical tables (variables and codes in `layouts/rif.yaml`).

- MBSF base: one row per beneficiary and reference year. The latest year's row is the `beneficiary` row; every
  row gives twelve `enrollment` months from the monthly indicators (buy-in → Part A / B, HMO indicator →
  Medicare Advantage, Part D contract → Part D, dual status, Medicare status → ESRD, county FIPS).
- Claims: base (header) files joined to their line / revenue-centre files on CLM_ID, or extract files where the
  header repeats on every line; claim type from NCH_CLM_TYPE_CD. Diagnoses from ICD_DGNS_CD1..25 with
  present-on-admission switches. Institutional allowed = revenue-centre payment + patient responsibility.
- PDE: Part D events with total drug cost (gross and allowed) and plan-paid amounts.
Research files hold final action claims; a row marked FINAL_ACTION = N is quarantined as a superseded version.
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir

from openasm.connectors.base import ConnectorError, Limitation, SourceTables, add_side_tables
from openasm.connectors.layout import load_layout, map_codes, rejected_rows
from openasm.connectors.rif_files import FIRST_TABLE, find_rif_files, iso_date, pick, read_research_file
from openasm.engine import ROW_NUMBER, SOURCE_FILE, Engine
from openasm.schema.windows import with_group_max

FORMAT = "rif"
SIDE_TABLES = ("clinician",)
DATE_COLUMNS = ("claim_from_date", "claim_thru_date", "claim_processed_date", "admission_date", "discharge_date",
                "line_from_date", "line_thru_date", "birth_date", "death_date", "fill_date")

RIF_LIMITATIONS = (
    Limitation("claim_line", "claim_adjustment_type, original_claim_id",
               "Research files hold final action claims only; earlier versions and cancellations are not in them.",
               "Claim version counts cannot be reported; costs use the final action claims as CMS does."),
    Limitation("claim_line", "standardized_amount", "Base research claim files carry no standardized amounts.",
               "Costs fall back to allowed amounts wherever the cost basis asks for standardized ones."),
    Limitation("claim_line", "line_thru_date (institutional)",
               "A revenue centre carries one date (REV_CNTR_DT).",
               "Institutional lines have a service date and no line through date."),
    Limitation("enrollment", "is_hospice, is_msp", "The MBSF base segment has no hospice or MSP months.",
               "The hospice and Medicare-secondary-payer exclusions cannot use enrollment."),
)


def read_rif(engine: Engine, folder: Path) -> SourceTables:
    """Every research file in `folder` mapped to raw canonical tables (module docstring)."""
    files, not_read = find_rif_files(engine, folder)
    kinds = {f.kind for f in files}
    if "mbsf" not in kinds or not kinds & {"claims_base", "claims_extract"}:
        raise ConnectorError(f"{folder}: research files need an MBSF base file and claims files (found: "
                             f"{', '.join(sorted(kinds)) or 'no research files'})")
    layout = load_layout("rif")
    tables = SourceTables(FORMAT, not_read=not_read)
    tables.limitations.extend(RIF_LIMITATIONS)
    raw = {}
    for f in files:
        raw[f.path], unreadable = read_research_file(engine, f)
        if unreadable is not None:
            tables.add_rejected(FIRST_TABLE[f.kind], unreadable)
    for f in files:
        tables.source_records.append({"file": str(f.path), "file_type": f.kind, "records": None})
    by_kind = lambda kind: [(f, raw[f.path]) for f in files if f.kind == kind]  # noqa: E731
    _beneficiary_and_enrollment(engine, by_kind("mbsf"), layout, tables)
    _claims(engine, by_kind, layout, tables)
    for f, table in by_kind("pde"):
        tables.add_part("pharmacy_claim", _pde(table, layout), [str(f.path)])
    add_side_tables(engine, Path(folder), tables, SIDE_TABLES)
    return tables


def _mapped(table: ir.Table, columns: dict[str, list[str]]) -> dict[str, ir.Value]:
    out = {name: pick(table, names) for name, names in columns.items()}
    return {name: iso_date(value) if name in DATE_COLUMNS else value for name, value in out.items()}


def _provenance(table: ir.Table) -> dict[str, ir.Value]:
    return {ROW_NUMBER: table[ROW_NUMBER], SOURCE_FILE: table[SOURCE_FILE]}


def _beneficiary_and_enrollment(engine: Engine, parts, layout: dict, tables: SourceTables) -> None:
    spec, codes = layout["files"]["mbsf"], layout["codes"]
    for f, table in parts:
        rows = tables.stage(engine, table.select(**_mapped(table, spec["columns"]), **_months(table, spec, layout),
                                                 **_provenance(table)))
        rows = with_group_max(rows, rows._reference_year, rows.bene_id, "_latest")
        bene = rows.filter((rows._reference_year == rows._latest) | rows._latest.isnull())
        fips = ibis.coalesce(*[bene[f"_fips_{m}"] for m in reversed(layout["months"])])
        bene = bene.mutate(
            sex=map_codes(bene.sex, codes["sex"]),
            is_esrd=ibis.ifelse(bene._esrd_indicator.isnull(), ibis.null("string"),
                                ibis.ifelse(bene._esrd_indicator.isin(codes["esrd_indicator_yes"]), "true", "false")),
            state_fips=fips.substr(0, 2), county_fips=fips.substr(2, 3))
        tables.add_part("beneficiary", bene, [str(f.path)])
        tables.add_part("enrollment", _enrollment(rows, layout), [str(f.path)])


def _months(table: ir.Table, spec: dict, layout: dict) -> dict[str, ir.Value]:
    out = {}
    for number, (month, name) in enumerate(zip(layout["months"], layout["month_names"]), start=1):
        for var, patterns in spec["monthly"].items():
            names = [p.format(month=month, month_name=name, month_number=number) for p in patterns]
            out[f"{var}_{month}"] = pick(table, names)
    return out


def _enrollment(rows: ir.Table, layout: dict) -> ir.Table:
    """Twelve rows per MBSF record (one per month of its reference year)."""
    codes = layout["codes"]

    def flag(value: ir.StringValue, truthy: list[str]) -> ir.StringValue:
        return ibis.ifelse(value.isnull(), ibis.null("string"), ibis.ifelse(value.isin(truthy), "true", "false"))

    parts = []
    for month in layout["months"]:
        contract = rows[f"_part_d_contract_{month}"]
        status = rows[f"_status_{month}"]
        parts.append(rows.select(
            bene_id=rows.bene_id, year_month=rows._reference_year + ibis.literal(f"-{month}"),
            has_part_a=flag(rows[f"_buyin_{month}"], codes["part_a_buyin"]),
            has_part_b=flag(rows[f"_buyin_{month}"], codes["part_b_buyin"]),
            is_medicare_advantage=flag(rows[f"_hmo_{month}"], codes["medicare_advantage_hmo"]),
            has_part_d=ibis.ifelse(contract.isnull(), ibis.null("string"),
                                   ibis.ifelse(contract.isin(codes["part_d_no_contract"]), "false", "true")),
            dual_status_code=rows[f"_dual_{month}"],
            is_esrd=ibis.ifelse(status.isnull(), ibis.null("string"),
                                ibis.ifelse(status.isin(codes["esrd_status"]), "true", "false")),
            **_provenance(rows)))
    return ibis.union(*parts)


def _claims(engine: Engine, by_kind, layout: dict, tables: SourceTables) -> None:
    """Headers (base files, or the first row of each claim in extracts) joined to their lines."""
    header_spec, line_spec = layout["header"], layout["line"]
    headers, lines = [], []
    for kind in ("claims_base", "claims_extract"):
        for _f, table in by_kind(kind):
            headers.append(table.select(**_mapped(table, header_spec), **_diagnoses(table, layout),
                                        **_provenance(table)))
    for kind in ("claims_line", "claims_extract"):
        for _f, table in by_kind(kind):
            lines.append(table.select(**_mapped(table, line_spec), **_provenance(table)))
    files = [str(f.path) for kind in ("claims_base", "claims_extract", "claims_line") for f, _ in by_kind(kind)]
    header = tables.stage(engine, ibis.union(*headers) if len(headers) > 1 else headers[0])
    first = ibis.row_number().over(ibis.window(group_by=header.claim_id, order_by=[header[SOURCE_FILE],
                                                                                    header[ROW_NUMBER]]))
    header = tables.stage(engine, header.mutate(_first=first).filter(ibis._._first == 0).mutate(
        claim_type=map_codes(ibis._.claim_type, layout["codes"]["claim_type"]),
        drg_code=ibis.ifelse((ibis._.drg_code.length() == 4) & ibis._.drg_code.startswith("0"),
                             ibis._.drg_code.substr(1, 3), ibis._.drg_code),
        type_of_bill_code=ibis._._tob_facility.fill_null("") + ibis._._tob_classification.fill_null("")
        + ibis._._tob_frequency.fill_null("")))
    line = tables.stage(engine, ibis.union(*lines) if len(lines) > 1 else lines[0])
    h = header.rename({f"_h_{c}": c for c in header.columns})
    joined = line.join(h, line.claim_id == h._h_claim_id)
    keep = [c for c in header.columns if c not in line.columns and not c.startswith("_dx")]
    # A variable on both (primary payer: line on carrier claims, header on institutional) takes the line's value
    # when it has one.
    both = [c for c in header.columns if c in line.columns and c not in ("claim_id", "bene_id", ROW_NUMBER,
                                                                          SOURCE_FILE)]
    rows = joined.select(*[c for c in line.columns if c not in both],
                         **{c: joined[c].fill_null(joined[f"_h_{c}"]) for c in both},
                         **{c: joined[f"_h_{c}"] for c in keep})
    resp = rows._patient_responsibility.try_cast("float64")
    paid = rows.paid_amount.try_cast("float64")
    derived = ibis.ifelse(resp.notnull(), (paid.fill_null(0) + resp).round(2).cast("string"), ibis.null("string"))
    rows = rows.mutate(allowed_amount=rows.allowed_amount.fill_null(derived))
    superseded = rows._final_action.fill_null("F").upper() == "N"
    tables.add_rejected("claim_line", rejected_rows(rows.filter(superseded), "claim_line", "claim_id",
                                                    "FINAL_ACTION = N: a superseded claim version"))
    tables.add_part("claim_line", rows.filter(~superseded), files)
    tables.add_rejected("claim_line", rejected_rows(line.anti_join(header, line.claim_id == header.claim_id),
                                                    "claim_line", "claim_id", "line without its base claim record"))
    tables.add_rejected("claim_line", rejected_rows(header.anti_join(line, header.claim_id == line.claim_id),
                                                    "claim_line", "claim_id",
                                                    "base claim record without line or revenue-centre records"))
    tables.add_part("claim_diagnosis", _diagnosis_rows(header, layout), files)


def _diagnoses(table: ir.Table, layout: dict) -> dict[str, ir.Value]:
    spec = layout["diagnosis"]
    out = {}
    for n in range(1, spec["positions"] + 1):
        out[f"_dx_{n}"] = pick(table, [spec["code"].format(n=n)])
        out[f"_dx_poa_{n}"] = pick(table, [spec["present_on_admission"].format(n=n)])
    return out


def _diagnosis_rows(header: ir.Table, layout: dict) -> ir.Table:
    """One row per claim and filled diagnosis position (the base record's number and file)."""
    parts = []
    for n in range(1, layout["diagnosis"]["positions"] + 1):
        code = header[f"_dx_{n}"]
        rows = header.filter(code.notnull())
        parts.append(rows.select(claim_id=rows.claim_id, bene_id=rows.bene_id, dx_position=ibis.literal(str(n)),
                                 icd10_code=rows[f"_dx_{n}"], present_on_admission=rows[f"_dx_poa_{n}"],
                                 **_provenance(rows)))
    return ibis.union(*parts)


def _pde(table: ir.Table, layout: dict) -> ir.Table:
    rows = table.select(**_mapped(table, layout["files"]["pde"]["columns"]), **_provenance(table))
    return rows.mutate(prescriber_npi=ibis.ifelse(rows._prescriber_qualifier == "01", rows._prescriber_id,
                                                  ibis.null("string")))
