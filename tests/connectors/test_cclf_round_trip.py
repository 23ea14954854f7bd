"""World → CCLF → ingest reproduces the canonical path exactly, once the documented CCLF losses are applied to
the world (tests/connectors/expected.py: no Part D cost in CCLF7, paid amount as institutional allowed, no
standardized amounts, no DME supplier TIN/specialty or diagnoses, twelve carrier diagnoses, 13-digit claim ids):
the same final-action claims and fills, the same episodes, cost measure scores, participants, final scores and
payment adjustments. Run with the world's enrollment beside the CCLF files (a supported input); the derived
enrollment is checked on its own."""

from __future__ import annotations

from openasm.connectors.base import ingest_source_tables
from openasm.connectors.cclf import read_cclf
from openasm.synth.cclf_writer import write_cclf

from .conftest import canonical_run, connector_run
from .expected import cclf_transform, write_expected_world
from .roundtrip import assert_round_trip


def test_cclf_round_trip_matches_the_canonical_path(connector_world):
    world = connector_world
    expected_world = write_expected_world(world.path, world.tmp / "expected-cclf", cclf_transform)
    expected = canonical_run(world, expected_world, "expected-cclf")
    folder = world.tmp / "cclf"
    summary = write_cclf(world.path, folder, side_tables=("clinician", "enrollment"))
    assert summary.records["CCLF9"] > 0 and any("ZC5R" in name for name in summary.files)

    actual = connector_run(world, "cclf", lambda engine: ingest_source_tables(
        engine, read_cclf(engine, folder), str(folder)))
    result = actual["ingest"]
    assert result.reconciles and result.source_format == "cclf"
    assert result.tables["pharmacy_claim"].read > 0 and result.tables["pharmacy_claim"].accepted == 0
    assert any(item["table"] == "pharmacy_claim" and "COST_HF_1" in item["consequence"]
               for item in result.limitations)
    assert expected["tables"]["episode"].num_rows > 50 and expected["tables"]["participant_score"].num_rows > 0
    assert_round_trip(expected, actual)
