"""The synthetic EHR export: deterministic, linked to the claims world, defects planted and quarantined."""

from __future__ import annotations

import hashlib
from pathlib import Path

from openasm.quality.fhir_read import read_fhir
from openasm.synth.fhir_export import generate_fhir_export

from .conftest import read


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_export_is_deterministic_and_linked_to_the_world(small_world, tmp_path: Path) -> None:
    world, _ = small_world
    first = generate_fhir_export(world, tmp_path / "a", 2027, seed=3)
    second = generate_fhir_export(world, tmp_path / "b", 2027, seed=3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert first.patients["hf"] > 0 and first.patients["lbp"] > 0
    result = read_fhir([tmp_path / "a"])
    assert result.resources_read == first.resources == second.resources
    # Every planted defect is quarantined and nothing else is.
    assert result.resources_quarantined == sum(first.defects_by_kind.values())
    # Patients are the world's beneficiaries (MBI = bene_id); practitioners are the world's clinicians.
    benes = set(read(world, "beneficiary").column("bene_id").to_pylist())
    mbis = set(result.tables["patient"].column("mbi").to_pylist())
    assert mbis and mbis <= benes
    npis = set(read(world, "clinician").column("npi").to_pylist())
    assert set(result.tables["practitioner"].column("npi").to_pylist()) <= npis


def test_copies_scale_the_export(small_world, tmp_path: Path) -> None:
    world, _ = small_world
    one = generate_fhir_export(world, tmp_path / "one", 2027)
    three = generate_fhir_export(world, tmp_path / "three", 2027, copies=3)
    assert three.patients == {c: 3 * n for c, n in one.patients.items()}
    assert three.resources > 2.5 * one.resources
