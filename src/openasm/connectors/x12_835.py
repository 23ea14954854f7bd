"""X12 835 (005010X221A1) remittance advice → `remittance_line`, and the Part B base it gives a practice.

Parsed with pyx12 (maintained, BSD; walks each file against the 005010X221A1 implementation guide map, so loops
come out as the guide defines them and structural errors are collected rather than guessed around). Per
service line (loop 2110) of each claim payment (loop 2100): the payer claim control number (CLP07), claim
status (CLP02; 22 = reversal of a previous payment), patient member id (NM1*QC, the MBI on Medicare
remittances), rendering NPI (NM1*82, else the payee NPI of N1*PE), payee TIN (REF*TJ), service date (DTM*472,
else the claim's DTM*232), HCPCS and modifiers (SVC01), units (SVC05), charge (SVC02), paid (SVC03) and allowed
(AMT*B6); the remittance date is BPR16. Lines are checked against `REMITTANCE_LINE` by the canonical row checks,
so bad values are quarantined with the file and the service line number.

`compute_remittance_part_b_base` applies the payment rules' covered-services definition (§512.705,
§512.750(a): professional services outside `payment.non_pfs_hcpcs_ranges`, in the service year, paid by the
end of `payment.claims_runout_days`) to the paid amounts, netting reversals: the Part B base for the projection
of a practice that has its remittances and no claims feed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.payment.part_b_base import non_pfs_category, service_year_of
from openasm.rules import RulesForYear
from openasm.schema.contract import Column, TableContract

REMITTANCE_LINE = TableContract(
    name="remittance_line",
    grain="one row per service line of an 835 claim payment",
    description="Medicare remittance advice (X12 835) service lines.",
    key=("payer_claim_id", "claim_status_code", "line_number"),
    columns=(
        Column("payer_claim_id", "string", True, "Payer claim control number (CLP07)."),
        Column("claim_status_code", "string", True, "CLP02: 1-4 processed, 22 reversal of a previous payment."),
        Column("line_number", "int32", True, "Service line number within the claim payment."),
        Column("bene_id", "string", False, "Patient member id (NM1*QC), the MBI on Medicare remittances."),
        Column("rendering_npi", "string", True, "Rendering NPI (NM1*82, else the payee NPI).", check="npi"),
        Column("billing_tin", "string", False, "Payee TIN (REF*TJ).", check="tin"),
        Column("service_date", "date", True, "DTM*472, else the claim's DTM*232."),
        Column("remittance_date", "date", False, "BPR16 (payment effective date)."),
        Column("hcpcs_code", "string", True, "SVC01-2 procedure code.", check="hcpcs"),
        Column("hcpcs_modifier_1", "string", False, "SVC01-3.", check="hcpcs_modifier"),
        Column("hcpcs_modifier_2", "string", False, "SVC01-4.", check="hcpcs_modifier"),
        Column("service_units", "float64", False, "SVC05 units paid."),
        Column("charge_amount", "float64", False, "SVC02 line charge."),
        Column("allowed_amount", "float64", False, "AMT*B6 allowed actual."),
        Column("paid_amount", "float64", True, "SVC03 provider payment (negative on reversals)."),
    ),
)


class RemittanceError(ValueError):
    """An 835 file cannot be read at all."""


@dataclass
class Remittances:
    rows: list[dict] = field(default_factory=list)
    structure_errors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _date(text: str | None) -> str | None:
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if text and len(text) == 8 and text.isdigit() else text


def _procedure(composite: str | None, separator: str) -> list[str | None]:
    parts = (composite or "").split(separator)
    return (parts[1:] + [None] * 4)[:4] if parts and parts[0] in ("HC", "AD", "ER", "IV", "WK") else [None] * 4


def read_835(paths: list[Path]) -> Remittances:
    """Every service line of every 835 file (see the module docstring)."""
    import pyx12.error_handler
    import pyx12.params
    import pyx12.x12context

    out = Remittances()
    params = pyx12.params.params()
    for path in paths:
        errh = pyx12.error_handler.errh_list()
        state: dict[str, str | None] = {"tin": None, "payee_npi": None, "remit": None}
        try:
            with open(path, encoding="utf-8") as handle, pyx12.x12context.X12ContextReader(params, errh, handle) as src:
                separator = src.src.subele_term or ":"
                for node in src.iter_segments("2100"):
                    if node.id == "2100":
                        _claim(node, state, separator, str(path), out)
                    else:
                        _header(node, state)
        except Exception as err:  # pyx12 raises its own error types on files it cannot walk
            raise RemittanceError(f"{path}: not a readable X12 835 file: {err}") from err
        for kind in ("err_isa", "err_gs", "err_st", "err_seg", "err_ele"):
            out.structure_errors.extend(f"{path}: {error}" for error in getattr(errh, kind, []))
        out.files.append(str(path))
    return out


def _header(node, state: dict) -> None:
    seg = node.id
    if seg == "BPR":
        state["remit"] = _date(node.get_value("BPR16"))
    elif seg == "N1" and node.get_value("N101") == "PE":
        state["payee_npi"] = node.get_value("N104") if node.get_value("N103") == "XX" else None
    elif seg == "REF" and node.get_value("REF01") == "TJ":
        state["tin"] = node.get_value("REF02")


def _claim(loop, state: dict, separator: str, path: str, out: Remittances) -> None:
    claim_id, status = loop.get_value("CLP07"), loop.get_value("CLP02")
    patient = None
    rendering = None
    claim_date = None
    for seg in loop.iterate_segments():
        if seg["id"] == "NM1":
            data = seg["segment"]
            if data.get_value("NM101") == "QC":
                patient = data.get_value("NM109")
            elif data.get_value("NM101") == "82":
                rendering = data.get_value("NM109")
        elif seg["id"] == "DTM" and seg["segment"].get_value("DTM01") == "232":
            claim_date = _date(seg["segment"].get_value("DTM02"))
    for number, line in enumerate(loop.select("2110"), start=1):
        codes = _procedure(line.get_value("SVC01"), separator)
        allowed = next((a.get_value("AMT02") for a in line.select("AMT") if a.get_value("AMT01") == "B6"), None)
        served = next((d.get_value("DTM02") for d in line.select("DTM") if d.get_value("DTM01") in ("472", "150")),
                      None)
        out.rows.append({
            "payer_claim_id": claim_id, "claim_status_code": status, "line_number": str(number),
            "bene_id": patient, "rendering_npi": rendering or state["payee_npi"], "billing_tin": state["tin"],
            "service_date": _date(served) or claim_date, "remittance_date": state["remit"],
            "hcpcs_code": codes[0], "hcpcs_modifier_1": codes[1], "hcpcs_modifier_2": codes[2],
            "service_units": line.get_value("SVC05"), "charge_amount": line.get_value("SVC02"),
            "allowed_amount": allowed, "paid_amount": line.get_value("SVC03"),
            "_row_number": len(out.rows) + 1, "_source_file": path})


def remittance_table(remittances: Remittances) -> ir.Table:
    """The service lines as a raw table (text values, provenance columns) for the row checks."""
    names = [c.name for c in REMITTANCE_LINE.columns]
    columns = {n: pa.array([r[n] for r in remittances.rows], pa.string()) for n in names}
    columns["_row_number"] = pa.array([r["_row_number"] for r in remittances.rows], pa.int64())
    columns["_source_file"] = pa.array([r["_source_file"] for r in remittances.rows], pa.string())
    return ibis.memtable(pa.table(columns))


def compute_remittance_part_b_base(*, remittance_line: ir.Table, rules: RulesForYear,
                                   service_year: str = "performance_year") -> ir.Table:
    """§512.705, §512.750(a): paid amounts of covered professional services per (NPI, TIN) in the service
    year, reversals netted, remitted by Dec 31 + `payment.claims_runout_days` (performance year only).
    Grain: (npi, billing_tin). Columns: service_year, npi, billing_tin, part_b_paid_amount, line_count,
    reversal_line_count."""
    year = service_year_of(rules, service_year)
    runout = int(rules.value("payment.claims_runout_days"))
    cutoff = dt.date(year, 12, 31) + dt.timedelta(days=runout)
    r = remittance_line
    counted = r.filter(
        r.service_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31))
        & non_pfs_category(r.hcpcs_code, rules).isnull()
        & (ibis.literal(service_year != "performance_year") | r.remittance_date.isnull()
           | (r.remittance_date <= ibis.literal(cutoff)))
    )
    return counted.group_by(npi=counted.rendering_npi, billing_tin=counted.billing_tin).agg(
        part_b_paid_amount=counted.paid_amount.sum(), line_count=counted.count(),
        reversal_line_count=(counted.claim_status_code == "22").cast("int64").sum(),
    ).mutate(service_year=ibis.literal(year, "int32"))
