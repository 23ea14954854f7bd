"""X12 835 (005010X221A1) remittance advice → `remittance_line`, and the Part B base it gives a practice.

Parsed with pyx12 (maintained, BSD; walks each file against the 005010X221A1 implementation guide map, so loops
come out as the guide defines them and structural errors are collected rather than guessed around). Per
service line (loop 2110) of each claim payment (loop 2100): the payer claim control number (CLP07), claim
status (CLP02; 22 = reversal of a previous payment), patient member id (NM1*QC, the MBI on Medicare
remittances), rendering NPI (NM1*82, else the payee NPI of N1*PE), payee TIN (REF*TJ), service date (DTM*472,
else the claim's DTM*232), HCPCS and modifiers (SVC01), units (SVC05), charge (SVC02), paid (SVC03) and allowed
(AMT*B6); the remittance date is BPR16. Lines are checked against `REMITTANCE_LINE` by the canonical row checks,
so bad values are quarantined with the file and the service line number. `payment.remittance_base` turns the
accepted lines into the practice's Part B base.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.schema.remittance import REMITTANCE_LINE


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
        rows_before, last, claims = len(out.rows), None, 0
        try:
            with open(path, encoding="utf-8") as handle, pyx12.x12context.X12ContextReader(params, errh, handle) as src:
                separator = src.src.subele_term or ":"
                for node in src.iter_segments("2100"):
                    last = node.id
                    if node.id == "2100":
                        claims += 1
                        _claim(node, state, separator, str(path), out, len(out.rows) - rows_before)
                    else:
                        _header(node, state)
        except Exception as err:  # pyx12 raises its own error types on files it cannot walk
            raise RemittanceError(f"{path}: not a readable X12 835 file: {err}") from err
        if last != "IEA":
            # pyx12 drops an unfinished claim payment loop without an error: without the trailer the file is
            # incomplete and its base would silently miss lines, so the whole file is refused.
            raise RemittanceError(f"{path}: truncated X12 835 file: it ends without the interchange trailer (IEA) "
                                  f"after {claims} complete claim payment(s) and segment {last or 'none'}; "
                                  "request the remittance again")
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


def _claim(loop, state: dict, separator: str, path: str, out: Remittances, lines_before: int) -> None:
    """The service lines of one claim payment; `_row_number` counts service lines within the file."""
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
            "_row_number": lines_before + number, "_source_file": path})


def remittance_table(remittances: Remittances) -> ir.Table:
    """The service lines as a raw table (text values, provenance columns) for the row checks."""
    names = [c.name for c in REMITTANCE_LINE.columns]
    columns = {n: pa.array([r[n] for r in remittances.rows], pa.string()) for n in names}
    columns["_row_number"] = pa.array([r["_row_number"] for r in remittances.rows], pa.int64())
    columns["_source_file"] = pa.array([r["_source_file"] for r in remittances.rows], pa.string())
    return ibis.memtable(pa.table(columns))
