"""World → CCLF → ingest reproduces the canonical path exactly, once the documented CCLF losses are applied to
the world (tests/connectors/expected.py: no Part D cost in CCLF7, paid amount as institutional allowed, no
standardized amounts, no DME supplier TIN/specialty or diagnoses, twelve carrier diagnoses, 13-digit claim ids):
the same final-action claims and fills, the same episodes, cost measure scores, participants, final scores and
payment adjustments. Run with the world's enrollment beside the CCLF files (a supported input); the derived
enrollment is checked on its own."""

from __future__ import annotations

from openasm.synth.cclf_writer import write_cclf

from .conftest import model_run
from .roundtrip import assert_round_trip


def test_cclf_round_trip_matches_the_canonical_path(connector_world, reference_run):
    world, expected = connector_world, reference_run
    folder = world.tmp / "cclf"
    summary = write_cclf(world.path, folder, side_tables=("clinician", "enrollment"))
    assert summary.records["CCLF9"] > 0 and any("ZC5R" in name for name in summary.files)

    actual = model_run(world, "cclf", folder, "cclf")
    result = actual["ingest"]
    assert result.reconciles and result.source_format == "cclf"
    assert result.tables["pharmacy_claim"].read > 0 and result.tables["pharmacy_claim"].accepted == 0
    assert any(item["table"] == "pharmacy_claim" and "COST_HF_1" in item["consequence"]
               for item in result.limitations)
    assert_round_trip(expected, actual)
