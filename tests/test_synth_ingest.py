"""Ingest of a synthetic world: every deliberately broken row the generator planted is quarantined with the
matching reason, counted exactly by kind, and nothing else is rejected."""

from __future__ import annotations

import json

from openasm.synth import generate_world

from .conftest import ingest_folder

# Generator defect kind -> the quarantine reason ingest must give.
REASON_OF_KIND = {
    "bad_sex": "not one of M, F, U",
    "bad_zip5": "not a valid zip5 code shape",
    "death_before_birth": "death_date is before birth_date",
    "bad_year_month": "not a valid year_month code shape",
    "bad_hcpcs_shape": "not a valid hcpcs code shape",
    "bad_icd10_shape": "not a valid icd10cm code shape",
    "bad_npi_check_digit": "NPI check digit is wrong",
    "bad_tin": "not a valid tin code shape",
    "bad_ndc_shape": "not a valid ndc code shape",
    "missing_required": "required value missing",
    "negative_amount_on_original": "negative amount on an original claim",
    "thru_before_from": "claim_thru_date is before claim_from_date",
    "unknown_bene": "unknown bene_id (not in beneficiary)",
}
DUPLICATE_KINDS = ("duplicate_row", "duplicate_line")


def test_planted_defects_are_quarantined_exactly(tmp_path, engine_for):
    world = tmp_path / "world"
    generate_world(out_dir=world, benes=1500, seed=11, first_year=2025, last_year=2027)
    planted = json.loads((world / "synth_manifest.json").read_text())["invalid_rows"]
    engine = engine_for("duckdb")
    result = ingest_folder(engine, world)
    assert result.reconciles
    quarantine = engine.fetch(engine.table("quarantine")).to_pylist()
    for table, kinds in planted.items():
        got: dict[str, int] = {}
        for row in quarantine:
            if row["table_name"] == table:
                reason = "duplicate" if row["reason"].startswith("duplicate key") else row["reason"]
                got[reason] = got.get(reason, 0) + 1
        expected: dict[str, int] = {}
        for kind, count in kinds.items():
            reason = "duplicate" if kind in DUPLICATE_KINDS else REASON_OF_KIND[kind]
            expected[reason] = expected.get(reason, 0) + count
        assert got == expected, table
        assert result.tables[table].quarantined == sum(kinds.values())
    assert set(result.ignored_entries) == {"synth_manifest.json", "truth"}
