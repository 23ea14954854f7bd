"""Stages run in memory on a synthetic world folder (for the synthetic feeds and remittances that need the world's
participants or final-action claims, and for tests that need them without a run folder)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from openasm.engine import connect
from openasm.participation.selected_area import load_selected_areas
from openasm.rules import RulesForYear
from openasm.runs.final_action import ensure_final_action
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.participation import ParticipationInputs, run_participation
from openasm.synth.formats import FORMATS, write_format

WORLD_FORMATS = (*FORMATS, "x12-835")


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


def final_claim_lines_of_world(world_dir: Path) -> pa.Table:
    """A world's accepted claim lines with their final-action status (ingest in memory)."""
    engine = connect("duckdb")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            run_ingest(engine, None, Path(scratch), IngestInputs(Path(world_dir)))
            claims, _ = ensure_final_action(engine)
            return engine.fetch(claims)
    finally:
        engine.close()


def write_world_format(world_dir: Path, source_format: str, out: Path | None = None) -> Path:
    """`synth --format`: the world written as `source_format` into `out` (default `<world>/<format>`); x12-835
    remittances are written from its final-action carrier claims."""
    if source_format not in WORLD_FORMATS:
        raise ValueError(f"unknown format {source_format!r}; choose one of {', '.join(WORLD_FORMATS)}")
    if source_format != "x12-835":
        return write_format(world_dir, source_format, out)
    from openasm.synth.x12_writer import write_835

    folder = Path(out) if out is not None else Path(world_dir) / source_format
    write_835(final_claim_lines_of_world(world_dir), folder)
    return folder
