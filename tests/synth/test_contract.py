"""Every file has the contract's Arrow schema; manifest counts match the files; only injected rows are bad."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from openasm.schema import CANONICAL_TABLES
from openasm.schema.formats import is_valid_npi
from openasm.synth.tables import TRUTH_SCHEMA

from .conftest import SMALL, read


def _manifest(world):
    return json.loads((world / "synth_manifest.json").read_text())


def test_every_file_has_the_contract_schema(small_world):
    world, _ = small_world
    for name, contract in CANONICAL_TABLES.items():
        expected = contract.ibis_schema().to_pyarrow()
        files = sorted((world / name).glob("part-*.parquet"))
        assert files, name
        for path in files:
            assert pq.read_schema(path).remove_metadata().equals(expected), path
    for path in (world / "truth").glob("part-*.parquet"):
        assert pq.read_schema(path).remove_metadata().equals(TRUTH_SCHEMA)


def test_manifest_counts_match_files(small_world):
    world, summary = small_world
    manifest = _manifest(world)
    assert manifest["parameters"]["benes"] == SMALL["benes"]
    assert manifest["parameters"]["years"] == [2025, 2026, 2027]
    for name, count in manifest["row_counts"].items():
        assert read(world, name).num_rows == count, name
        assert summary.row_counts[name] == count
        assert all((world / rel).is_file() for rel in manifest["files"][name])
    assert summary.invalid_rows == manifest["invalid_rows"]
    assert summary.elapsed_seconds > 0
    for table, kinds in manifest["invalid_rows"].items():
        assert all(v >= 1 for v in kinds.values()), (table, kinds)  # chunk 0 carries every kind
        assert manifest["invalid_row_totals"][table] == sum(kinds.values())
    versions = manifest["claim_versions"]["claim_line"]
    assert versions["adjustment_claims"] > 0 and versions["cancel_claims"] > 0
    rules = {row["name"]: row for row in manifest["rules"]}
    assert rules["synth.mixture"]["evidence"] == "default"
    assert rules["synth.target_mean_cost"]["evidence"] == "secondary"


def test_beneficiaries_and_enrollment_months(small_world):
    world, _ = small_world
    bene = read(world, "beneficiary")
    ids = pc.unique(bene["bene_id"])
    dup = _manifest(world)["invalid_rows"]["beneficiary"]["duplicate_row"]
    assert len(ids) == bene.num_rows - dup
    enrollment = read(world, "enrollment").to_pandas()
    real = enrollment[enrollment.year_month.str.match(r"^202[5-7]-(0[1-9]|1[0-2])$")]
    real = real[real.has_part_a.notna()].drop_duplicates(["bene_id", "year_month"])
    per_bene = real.groupby("bene_id").size()
    assert (per_bene.loc[per_bene.index.isin(bene["bene_id"].to_pylist())] == 36).all()
    assert len(per_bene) >= SMALL["benes"]


def test_npis_valid_except_injected(small_world):
    world, _ = small_world
    invalid = _manifest(world)["invalid_rows"]
    for table, column in (("claim_line", "rendering_npi"), ("pharmacy_claim", "prescriber_npi"),
                          ("clinician", "npi")):
        values = read(world, table)[column].drop_null().to_pylist()
        bad = sum(1 for v in values if not is_valid_npi(v))
        assert bad == invalid[table]["bad_npi_check_digit"], table
    clinicians = read(world, "clinician")
    assert set(pc.unique(clinicians["specialty_code"]).to_pylist()) >= {"06", "20", "65", "35", "30", "93"}


def test_ingest_quarantines_exactly_the_injected_rows(small_world, tmp_path):
    from openasm.engine import connect
    from openasm.runs.ingest import IngestInputs, run_ingest

    world, _ = small_world
    manifest = _manifest(world)
    engine = connect("duckdb", tmp_path / "run")
    try:
        result = run_ingest(engine, None, tmp_path / "run", IngestInputs(world))
        for name, record in result.tables.items():
            assert record.read == manifest["row_counts"][name], name
            assert record.quarantined == manifest["invalid_row_totals"][name], name
        assert result.ignored_entries == ["synth_manifest.json", "truth"]
    finally:
        engine.close()


@pytest.mark.parametrize("benes,first,last", [(1, 2025, 2027), (12, 2027, 2027), (40, 2024, 2025)])
def test_tiny_and_short_worlds(tmp_path, benes, first, last):
    from openasm.synth import generate_world

    summary = generate_world(tmp_path / "w", benes=benes, seed=1, first_year=first, last_year=last, chunk_benes=9)
    months = 12 * (last - first + 1)
    enrollment = read(tmp_path / "w", "enrollment")
    assert enrollment.num_rows == summary.row_counts["enrollment"] >= benes * months
    assert summary.row_counts["beneficiary"] >= benes


def test_bad_arguments_are_refused(tmp_path):
    from openasm.synth import generate_world

    with pytest.raises(ValueError):
        generate_world(tmp_path / "w", benes=0, seed=1, first_year=2025, last_year=2027)
    with pytest.raises(ValueError):
        generate_world(tmp_path / "w", benes=10, seed=1, first_year=2027, last_year=2025)
