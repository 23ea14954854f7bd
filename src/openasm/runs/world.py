"""Stages run in memory on a synthetic world folder (for the synthetic feeds that need the world's
participants, and for tests that need them without a run folder)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from openasm.engine import connect
from openasm.participation.selected_area import load_selected_areas
from openasm.rules import RulesForYear
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.participation import ParticipationInputs, run_participation


def participants_of_world(world_dir: Path, rules: RulesForYear) -> pa.Table:
    """§512.710: the participant table of a world's clinicians (ingest, then participation, in memory with the
    rules' selected areas)."""
    engine = connect("duckdb")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            run_ingest(engine, rules, Path(scratch), IngestInputs(Path(world_dir)))
            run_participation(engine, rules, Path(scratch), ParticipationInputs(load_selected_areas(rules)))
        return engine.fetch(engine.table("participant"))
    finally:
        engine.close()
