"""BCDA bulk NDJSON and Blue Button per-patient Bundles: world → FHIR → ingest reproduces the canonical path on
the expected world (final action claims, no standardized amounts, no county/entitlement/ESRD, no hospice/MSP
months): the same accepted rows, episodes, cost measure scores, participants, final scores and payment; claims split
across EOBs are one claim, CMS's BFD sample responses are read with their placeholders quarantined, and an
unknown EOB type or a malformed NDJSON line is quarantined naming the file and record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from openasm.synth.bcda_people import write_bcda, write_bluebutton

from .conftest import expected_model_run, ingest, model_run
from .expected import fhir_transform
from .roundtrip import assert_round_trip

BFD_FHIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "claims-formats" / "bfd-v2-fhir"


@pytest.mark.parametrize("source_format", ["bcda", "bluebutton"])
def test_fhir_round_trip_matches_the_canonical_path(connector_world, source_format):
    world = connector_world
    expected = expected_model_run(world, "fhir", fhir_transform)
    folder = world.tmp / source_format
    writer = write_bcda if source_format == "bcda" else write_bluebutton
    summary = writer(world.path, folder)
    assert summary.resources["ExplanationOfBenefit"] > 1000
    actual = model_run(world, source_format, folder, source_format)
    assert actual["ingest"].reconciles and actual["ingest"].source_format == source_format
    assert_round_trip(expected, actual)
    split = [r for r in (folder.rglob("*.ndjson") if source_format == "bcda" else folder.rglob("eob-page-*.json"))]
    assert split and any("-part-2" in p.read_text() for p in split)  # some claims arrive in two EOBs


NEEDS_SAMPLES = pytest.mark.skipif(not BFD_FHIR.is_dir(), reason="shared BFD samples not present")


@NEEDS_SAMPLES
def test_bfd_samples_are_read_and_placeholders_quarantined(tmp_path, engine_for):
    for name in ("eobReadCarrierWithTaxNumbers", "eobReadDme", "eobReadInpatient", "eobReadOutpatient", "eobReadSnf",
                 "eobReadHha", "eobReadHospice", "eobReadPde", "patientRead", "coverageSearchByPatientId"):
        shutil.copy(BFD_FHIR / f"{name}.json", tmp_path / f"{name}.json")
    engine = engine_for("duckdb")
    result = ingest(engine, tmp_path, "bluebutton")
    assert result.reconciles and result.tables["claim_line"].read >= 7
    reasons = {(r["table_name"], r["column_name"]) for r in engine.table("quarantine").to_pyarrow().to_pylist()}
    assert ("pharmacy_claim", "ndc_code") in reasons and ("claim_line", "hcpcs_code") in reasons


@NEEDS_SAMPLES
def test_unknown_eob_type_and_bad_json_line_are_quarantined(tmp_path, engine_for, backend):
    carrier = json.loads((BFD_FHIR / "eobReadCarrier.json").read_text())
    unknown = json.loads(json.dumps(carrier))
    unknown["type"]["coding"][1]["code"] = "CLINIC"
    patient = json.loads((BFD_FHIR / "patientRead.json").read_text())
    path = tmp_path / "ExplanationOfBenefit.ndjson"
    path.write_text("\n".join([json.dumps(carrier), json.dumps(unknown), '{"resourceType": "Explanat']) + "\n")
    (tmp_path / "Patient.ndjson").write_text(json.dumps(patient) + "\n")
    engine = engine_for(backend)
    result = ingest(engine, tmp_path, "bcda")
    assert result.reconciles
    rows = {r["row_number"]: r for r in engine.table("quarantine").to_pyarrow().to_pylist()
            if r["source_file"] == str(path) and r["column_name"] == "(resource)"}
    assert "unknown ExplanationOfBenefit type 'CLINIC'" in rows[2]["reason"]
    assert rows[3]["reason"].startswith("malformed JSON")
