"""CCW research files: world → RIF → ingest reproduces the expected world's accepted rows (final action claims
only, no standardized amounts, one revenue-centre date, no hospice/MSP months, twelve professional diagnoses);
CMS's BFD sample extract (pipe-delimited, header repeated per line, placeholder values) is read without error
and every placeholder is quarantined with its reason; MBSF monthly indicators become enrollment months."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from openasm.connectors.base import ConnectorError
from openasm.connectors.rif import read_rif
from openasm.engine import connect
from openasm.synth.rif_writer import write_rif

from .conftest import accepted_rows, expected_accepted_rows, ingest
from .expected import rif_transform, write_expected_world
from .roundtrip import differing_tables

BFD_RIF = Path(__file__).resolve().parents[3] / "shared" / "data" / "claims-formats" / "bfd-rif"
SAMPLES = ("beneficiaries", "bcarrier", "dme", "hha", "hospice", "inpatient", "outpatient", "pde", "snf")


def test_rif_round_trip_gives_the_expected_accepted_rows(connector_world):
    world = connector_world
    expected = expected_accepted_rows(world, "rif", write_expected_world(
        world.path, world.tmp / "expected-rif", rif_transform))
    folder = world.tmp / "rif"
    write_rif(world.path, folder)
    engine = connect("duckdb", world.tmp / "run-rif")
    try:
        result = ingest(engine, folder, "rif")
        assert result.reconciles and result.tables["claim_line"].accepted > 1000
        problems = differing_tables(expected, accepted_rows(engine), expected.keys())
    finally:
        engine.close()
    assert not problems, "\n".join(problems)


@pytest.mark.skipif(not BFD_RIF.is_dir(), reason="shared BFD samples not present")
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


def test_rif_folder_without_mbsf_is_a_clear_error(tmp_path, engine_for):
    shutil.copy(BFD_RIF / "sample-a-bcarrier.txt", tmp_path / "carrier.txt")
    with pytest.raises(ConnectorError, match="need an MBSF base file.*found: claims_extract"):
        read_rif(engine_for("duckdb"), tmp_path)
