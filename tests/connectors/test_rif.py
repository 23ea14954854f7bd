"""CCW research files: world → RIF → ingest reproduces the canonical path on the expected world (final action claims
only, no standardized amounts, one revenue-centre date, no hospice/MSP months, twelve professional diagnoses):
the same accepted rows, episodes, cost measure scores, participants, final scores and payment;
CMS's BFD sample extract (pipe-delimited, header repeated per line, placeholder values) is read without error
and every placeholder is quarantined with its reason; MBSF monthly indicators become enrollment months."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from openasm.connectors.base import ConnectorError
from openasm.connectors.rif import read_rif
from openasm.synth.rif_writer import write_rif

from .conftest import expected_model_run, ingest, model_run
from .expected import rif_transform
from .roundtrip import assert_round_trip

BFD_RIF = Path(__file__).resolve().parents[3] / "shared" / "data" / "claims-formats" / "bfd-rif"
SAMPLES = ("beneficiaries", "bcarrier", "dme", "hha", "hospice", "inpatient", "outpatient", "pde", "snf")


def test_rif_round_trip_matches_the_canonical_path(connector_world):
    world = connector_world
    expected = expected_model_run(world, "rif", rif_transform)
    folder = world.tmp / "rif"
    write_rif(world.path, folder)
    actual = model_run(world, "rif", folder, "rif")
    result = actual["ingest"]
    assert result.reconciles and result.source_format == "rif" and result.tables["claim_line"].accepted > 1000
    assert_round_trip(expected, actual)


NEEDS_SAMPLES = pytest.mark.skipif(not BFD_RIF.is_dir(), reason="shared BFD samples not present")


@NEEDS_SAMPLES
def test_bfd_sample_extract_quarantines_placeholders(tmp_path, engine_for, backend):
    for name in SAMPLES:
        shutil.copy(BFD_RIF / f"sample-a-{name}.txt", tmp_path / f"sample-a-{name}.txt")
    engine = engine_for(backend)
    result = ingest(engine, tmp_path, "rif")
    assert result.reconciles
    assert result.tables["claim_line"].read == 7 and result.tables["enrollment"].read == 12
    reasons = {(r["table_name"], r["column_name"]) for r in engine.table("quarantine").to_pyarrow().to_pylist()}
    assert ("claim_line", "hcpcs_code") in reasons  # hand-made codes such as M55
    assert ("pharmacy_claim", "ndc_code") in reasons  # NDC 000000000


@NEEDS_SAMPLES
def test_rif_folder_without_mbsf_is_a_clear_error(tmp_path, engine_for):
    shutil.copy(BFD_RIF / "sample-a-bcarrier.txt", tmp_path / "carrier.txt")
    with pytest.raises(ConnectorError, match="need an MBSF base file.*found: claims_extract"):
        read_rif(engine_for("duckdb"), tmp_path)


@NEEDS_SAMPLES
def test_truncated_extract_record_is_quarantined_with_file_and_record(tmp_path, engine_for):
    """A pipe-delimited extract cut inside its last record: that record has fewer fields than the header, so it is
    quarantined naming the file and record (never read with values under the wrong names); the rest reconciles."""
    for name in ("beneficiaries", "bcarrier-multiple-lines"):
        shutil.copy(BFD_RIF / f"sample-a-{name}.txt", tmp_path / f"sample-a-{name}.txt")
    carrier = tmp_path / "sample-a-bcarrier-multiple-lines.txt"
    lines = carrier.read_text().splitlines()
    fields = len(lines[0].split("|"))
    lines[-1] = "|".join(lines[-1].split("|")[:40])[:-1]
    kept = len(lines[-1].split("|"))
    carrier.write_text("\n".join(lines))
    engine = engine_for("duckdb")
    result = ingest(engine, tmp_path, "rif")
    assert result.reconciles
    record = result.tables["claim_line"]
    assert record.read == len(lines) - 1 and record.quarantined >= 1
    truncated = [r for r in engine.table("quarantine").to_pyarrow().to_pylist() if r["column_name"] == "(record)"]
    assert [(r["source_file"], r["row_number"], r["table_name"]) for r in truncated] == [
        (str(carrier), len(lines) - 1, "claim_line")]
    assert truncated[0]["reason"] == f"record has {kept} fields, the header {fields} (truncated record or another layout)"
    assert truncated[0]["raw_value"] is None
