"""Final action of claims and fills (CCLF convention, `ingest.final_action`): resolved once per ingest and kept as
run tables, which every later claims stage reads; ingest drops them so they are recomputed from the new claims.

On DuckDB, where ingest published the accepted rows as a view of its checked rows, the few claims whose status is
not the default (`status_exceptions`) are written into two columns of those checked rows in place, and
`<table>_status` is a view of them: storing a second copy of every line took 21 s and 300 MB of the run folder at
250k beneficiaries (8.5M lines), the in-place update about a second, and reads stay plain scans (a view joining
the exceptions made every later stage pay a join per read). Elsewhere (Spark, or rows not ingested that way) the
resolved lines are stored.
"""

from __future__ import annotations

import ibis.expr.types as ir

from openasm.engine import Engine
from openasm.ingest.final_action import (STATUS_COLUMN, final_action_columns, status_exceptions,
                                        with_final_action)
from openasm.ingest.validate import accepted_rows, checked_rows_table
from openasm.schema.canonical import CANONICAL_TABLES

FINAL_ACTION_TABLES = {"claim_line_status": "claim_line", "pharmacy_claim_status": "pharmacy_claim"}
# Columns of the checked rows holding a claim's family and status where they are not the default (else null).
FAMILY_IN_PLACE, STATUS_IN_PLACE = "_family_id", "_final_action_status"


def ensure_final_action(engine: Engine) -> tuple[ir.Table, ir.Table]:
    """Claims and fills with their final-action status (resolved on first use after an ingest)."""
    for name, source in FINAL_ACTION_TABLES.items():
        if not engine.has_table(name):
            _resolve(engine, name, source)
    return engine.table("claim_line_status"), engine.table("pharmacy_claim_status")


def _resolve(engine: Engine, name: str, source: str) -> None:
    claims, checked = engine.table(source), checked_rows_table(source)
    if not (engine.changes_in_place and engine.is_view(source) and engine.has_table(checked)):
        # Spark stores the few exceptions first: the lines then join a small stored table, not the plan of chains
        # and ranks that finds them (DuckDB plans that inside the one query).
        exceptions_name = f"{name}__exception"
        exceptions = engine.for_one_reader(exceptions_name, status_exceptions(claims=claims))
        engine.save(name, with_final_action(claims=claims, exceptions=exceptions))
        engine.drop(exceptions_name)
        return
    exceptions = engine.save(f"{name}__exception", status_exceptions(claims=claims), scratch=True)
    engine.set_columns(checked, exceptions, ("claim_id", "_status_claim_id"),
                       {FAMILY_IN_PLACE: "family_id", STATUS_IN_PLACE: STATUS_COLUMN})
    engine.drop(exceptions.get_name())
    accepted = accepted_rows(checked=engine.table(checked), duplicates=None, contract=CANONICAL_TABLES[source],
                             also=(FAMILY_IN_PLACE, STATUS_IN_PLACE))
    engine.save_view(name, final_action_columns(lines=accepted, family=FAMILY_IN_PLACE, status=STATUS_IN_PLACE))
