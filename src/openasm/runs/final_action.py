"""Final action of claims and fills (CCLF convention, `ingest.final_action`): resolved once per ingest and kept as run tables, which every
later claims stage reads; ingest drops them so they are recomputed from the new claims."""

from __future__ import annotations

import ibis.expr.types as ir

from openasm.engine import Engine
from openasm.ingest.final_action import resolve_final_action

FINAL_ACTION_TABLES = {"claim_line_status": "claim_line", "pharmacy_claim_status": "pharmacy_claim"}


def ensure_final_action(engine: Engine) -> tuple[ir.Table, ir.Table]:
    """Claims and fills with their final-action status (resolved on first use after an ingest)."""
    for name, source in FINAL_ACTION_TABLES.items():
        if not engine.has_table(name):
            engine.save(name, resolve_final_action(claims=engine.table(source)))
    return engine.table("claim_line_status"), engine.table("pharmacy_claim_status")
