"""Issue 14: on DuckDB the final-action status of the few claims that are not final of their own family is written
into two columns of the checked rows in place, and `claim_line_status` / `pharmacy_claim_status` are views of
them. They must hold exactly what resolving every claim gives, and a new ingest must leave nothing of the old
resolution behind."""

from __future__ import annotations

import pyarrow.parquet as pq

from openasm.ingest.final_action import STATUS_COLUMN, resolve_final_action
from openasm.ingest.validate import checked_rows_table
from openasm.runs.final_action import FINAL_ACTION_TABLES, ensure_final_action
from openasm.synth import generate_world

from ..conftest import ingest_folder, sort_table


def _resolved_everywhere(engine, source: str):
    """The lines of `source` resolved over every claim (the stored path Spark takes)."""
    return sort_table(engine.fetch(resolve_final_action(claims=engine.table(source))))


def test_views_hold_what_resolving_every_claim_gives(tmp_path, engine_for):
    world = tmp_path / "world"
    generate_world(out_dir=world, benes=600, seed=5, first_year=2025, last_year=2027)
    engine = engine_for("duckdb")
    ingest_folder(engine, world)
    claim_status, fill_status = ensure_final_action(engine)
    for name, source in FINAL_ACTION_TABLES.items():
        assert engine.is_view(name), name
    for view, source in ((claim_status, "claim_line"), (fill_status, "pharmacy_claim")):
        got = sort_table(engine.fetch(view))
        assert got.equals(_resolved_everywhere(engine, source)), source
        statuses = set(got.column(STATUS_COLUMN).to_pylist())
        assert {"final", "superseded", "cancelled", "cancel_record"} <= statuses, source  # chains do occur
    # The in-place columns stay out of the published accepted rows.
    assert "_final_action_status" not in engine.table("claim_line").columns


def test_a_new_ingest_resolves_again_from_its_own_claims(tmp_path, engine_for):
    world = tmp_path / "world"
    generate_world(out_dir=world, benes=400, seed=8, first_year=2025, last_year=2027)
    engine = engine_for("duckdb")
    ingest_folder(engine, world)
    ensure_final_action(engine)
    # Drop every adjustment and cancel from the claim lines: every remaining claim is final of its own family.
    for part in sorted((world / "claim_line").glob("*.parquet")):
        lines = pq.read_table(part)
        kind = lines.column("claim_adjustment_type").to_pylist()
        keep = [k in (None, "original") for k in kind]
        pq.write_table(lines.filter(keep), part)
    ingest_folder(engine, world)
    assert not engine.has_table("claim_line_status")
    claim_status, _ = ensure_final_action(engine)
    statuses = set(engine.fetch(claim_status.select(STATUS_COLUMN).distinct()).column(0).to_pylist())
    assert statuses == {"final"}
    family = engine.fetch(claim_status.filter(claim_status.family_id != claim_status.claim_id).count().as_table())
    assert family.column(0)[0].as_py() == 0
    rows = engine.table(checked_rows_table("claim_line"))
    assert engine.fetch(rows.filter(rows._final_action_status.notnull()).count().as_table()).column(0)[0].as_py() == 0
