"""Tiny claim-line fixtures for the Part B base and dollar tests (canonical claim_line, then final action)."""

from __future__ import annotations

import datetime as dt

import ibis

from openasm.ingest.final_action import resolve_final_action
from tests.episodes.factory import npi, table

TIN_A, TIN_B, TIN_C = "111111111", "222222222", "333333333"
P1, P2, P9 = npi(1), npi(2), npi(9)


def line(claim_id: str, service: str | None, paid: float | None, *, who: str = P1, tin: str = TIN_A,
         hcpcs: str = "99214", claim_type: str = "carrier", processed: str | None = None, line_number: int = 1,
         adjustment: str | None = None, modifies: str | None = None, claim_date: str | None = None) -> dict:
    """One claim line; `service` is the line date (None: only the claim from-date, `claim_date`, is known)."""
    claim_from = dt.date.fromisoformat(claim_date or service)
    return {
        "claim_id": claim_id, "line_number": line_number, "bene_id": "B1", "claim_type": claim_type,
        "claim_from_date": claim_from, "claim_thru_date": claim_from,
        "line_from_date": dt.date.fromisoformat(service) if service else None,
        "claim_processed_date": dt.date.fromisoformat(processed) if processed else None,
        "claim_adjustment_type": adjustment, "original_claim_id": modifies, "hcpcs_code": hcpcs,
        "rendering_npi": who, "billing_tin": tin, "allowed_amount": (paid or 0.0) * 1.25, "paid_amount": paid,
    }


def claim_status(engine, rows: list[dict]) -> ibis.Table:
    """Stored claim lines with their final-action status (the ingest → final action path of a run)."""
    claims = engine.save("claim_line", table("claim_line", rows))
    return engine.save("claim_line_status", resolve_final_action(claims=claims))
