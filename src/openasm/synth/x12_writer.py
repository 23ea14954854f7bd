"""Write a synthetic world's Medicare remittances as X12 835 (005010X221A1) files, one per billing TIN.

Each file holds one transaction (ST/SE) per remittance date (the claim's processing date): BPR (payment, BPR16
the date), TRN, N1*PR payer, N1*PE payee with its NPI and REF*TJ TIN, then per final action carrier claim a
CLP (CLP07 the claim id) with the patient (NM1*QC, the MBI), the rendering NPI (NM1*82), the claim date, and per
line SVC (procedure, charge, paid, units), DTM*472, the contractual adjustment (CAS*CO*45) and AMT*B6 allowed.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc


def _amount(value) -> str:
    return f"{(value or 0.0):.2f}"


def _day(value) -> str:
    return value.strftime("%Y%m%d")


def _transaction(number: int, date, tin: str, payee_npi: str, claims: dict[str, list[dict]]) -> list[str]:
    total = sum((line["paid_amount"] or 0.0) for lines in claims.values() for line in lines)
    segments = [f"ST*835*{number:04d}", f"BPR*I*{total:.2f}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*"
                f"999999999*DA*123456*{_day(date)}", f"TRN*1*{number:09d}*1512345678", f"DTM*405*{_day(date)}",
                "N1*PR*MEDICARE", "N3*PO BOX 1", "N4*BALTIMORE*MD*21244", "PER*BL*MAC*TE*8005551212",
                f"N1*PE*PRACTICE {tin}*XX*{payee_npi}", "N3*1 MAIN ST", "N4*ANYTOWN*NY*10016", f"REF*TJ*{tin}",
                "LX*1"]
    for claim_id, lines in claims.items():
        head = lines[0]
        charge = sum((line["allowed_amount"] or 0.0) for line in lines)
        paid = sum((line["paid_amount"] or 0.0) for line in lines)
        segments += [f"CLP*{claim_id}*1*{charge:.2f}*{paid:.2f}**MB*{claim_id}*11*1",
                     f"NM1*QC*1*PATIENT*A****MI*{head['bene_id']}",
                     f"NM1*82*1*CLINICIAN*A****XX*{head['rendering_npi']}",
                     f"DTM*232*{_day(head['claim_from_date'])}"]
        for line in lines:
            mods = "".join(f":{line[f'hcpcs_modifier_{i}']}" for i in (1, 2) if line[f"hcpcs_modifier_{i}"])
            allowed, paid_line = line["allowed_amount"] or 0.0, line["paid_amount"] or 0.0
            served = line["line_from_date"] or line["claim_from_date"]
            segments += [f"SVC*HC:{line['hcpcs_code']}{mods}*{allowed:.2f}*{paid_line:.2f}**{line['service_units']:g}",
                         f"DTM*472*{_day(served)}", f"CAS*CO*45*{allowed - paid_line:.2f}", f"AMT*B6*{allowed:.2f}"]
    segments.append(f"SE*{len(segments) + 1}*{number:04d}")
    return segments


def write_835(lines: pa.Table, out: Path, tins: set[str] | None = None) -> dict[str, int]:
    """One 835 file per billing TIN of the final action carrier `lines` (a world's accepted claim lines with
    their final-action status, `runs.world.final_claim_lines_of_world`: a remittance pays the claims the carrier
    processed, not the defective rows planted for ingest to catch) with a rendering NPI, HCPCS and paid amount
    (what a remittance carries), optionally only `tins`; returns lines written per file."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lines = lines.filter(pc.equal(lines["final_action_status"], "final")).to_pylist()
    by_tin: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for line in lines:
        if (line["claim_type"] == "carrier" and line["billing_tin"] and line["rendering_npi"] and line["hcpcs_code"]
                and line["paid_amount"] is not None and line["claim_processed_date"] is not None
                and len(line["billing_tin"]) == 9 and (tins is None or line["billing_tin"] in tins)):
            by_tin[line["billing_tin"]][line["claim_processed_date"]][line["claim_id"]].append(line)
    written = {}
    for tin, by_date in sorted(by_tin.items()):
        payee_npi = next(iter(next(iter(by_date.values())).values()))[0]["rendering_npi"]
        body = []
        for number, (date, claims) in enumerate(sorted(by_date.items()), start=1):
            body += _transaction(number, date, tin, payee_npi, claims)
        segments = ["ISA*00*          *00*          *ZZ*MEDICARE       *ZZ*" + f"{tin:<15}" + "*250110*1200*^*00501*"
                    "000000001*0*P*:", f"GS*HP*MEDICARE*{tin}*20250110*1200*1*X*005010X221A1", *body,
                    f"GE*{len(by_date)}*1", "IEA*1*000000001"]
        path = out / f"remit-{tin}.835"
        path.write_text("~\n".join(segments) + "~\n", encoding="utf-8")
        written[path.name] = sum(len(c) for claims in by_date.values() for c in claims.values())
    return written
