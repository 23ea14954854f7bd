"""Tiny canonical tables for grouper golden cases (every unspecified column is null)."""

from __future__ import annotations

import datetime as dt
import itertools

import ibis
import pyarrow as pa

from openasm.schema import CANONICAL_TABLES
from openasm.schema.formats import npi_check_digit

TIN_A = "111111111"
TIN_B = "222222222"


def npi(n: int) -> str:
    base = f"1{n:08d}"
    return base + npi_check_digit(base)


def table(name: str, rows: list[dict]) -> ibis.Table:
    schema = CANONICAL_TABLES[name].ibis_schema().to_pyarrow()
    columns = {field.name: [row.get(field.name) for row in rows] for field in schema}
    return ibis.memtable(pa.table(columns, schema=schema))


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


_claim_ids = itertools.count(1)


def visit(bene: str, date: str, tin: str = TIN_A, npi_n: int = 1, hcpcs: str = "99213", dx: str = "M5450",
          claim_type: str = "carrier", pos: str = "11", specialty: str = "72", allowed: float = 100.0) -> dict:
    """One carrier line on its own claim."""
    return {
        "claim_id": f"C{next(_claim_ids)}", "line_number": 1, "bene_id": bene, "claim_type": claim_type,
        "claim_from_date": d(date), "claim_thru_date": d(date), "line_from_date": d(date), "hcpcs_code": hcpcs,
        "place_of_service_code": pos, "rendering_npi": npi(npi_n), "billing_tin": tin,
        "provider_specialty_code": specialty, "line_dx_code": dx, "allowed_amount": allowed,
        "paid_amount": allowed * 0.8,
    }


def bene(bene_id: str, death: str | None = None, birth: str = "1950-06-01") -> dict:
    return {"bene_id": bene_id, "birth_date": d(birth), "sex": "F", "death_date": d(death) if death else None}


def ffs_months(bene_id: str, first: str = "2023-01", last: str = "2028-12", gaps: tuple[str, ...] = ()) -> list[dict]:
    """Monthly enrollment rows: Part A+B FFS with Part D, except months in `gaps` (Medicare Advantage)."""
    year, month = map(int, first.split("-"))
    end = tuple(map(int, last.split("-")))
    rows = []
    while (year, month) <= end:
        ym = f"{year:04d}-{month:02d}"
        rows.append({"bene_id": bene_id, "year_month": ym, "has_part_a": True, "has_part_b": True,
                     "has_part_d": True, "is_medicare_advantage": ym in gaps})
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return rows


def world(lines: list[dict], benes: list[dict], enrollment: list[dict] | None = None,
          diagnoses: list[dict] | None = None) -> dict[str, ibis.Table]:
    enrollment = enrollment if enrollment is not None else [m for b in benes for m in ffs_months(b["bene_id"])]
    return {
        "claim_line": table("claim_line", lines),
        "claim_diagnosis": table("claim_diagnosis", diagnoses or []),
        "beneficiary": table("beneficiary", benes),
        "enrollment": table("enrollment", enrollment),
    }
