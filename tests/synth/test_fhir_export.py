"""The synthetic EHR export: deterministic, linked to the world, defects planted and accounted for, and every
population of every eCQM reached."""

from __future__ import annotations

import hashlib
import copy
from pathlib import Path

import ibis
import pytest

from openasm.quality.clinical import ClinicalTables
from openasm.quality.evaluate import evaluate_measures
from openasm.quality.fhir_read import read_fhir
from openasm.quality.measures.common import POPULATION_FLAGS
from openasm.quality.value_sets import value_set_codes
from openasm.rules import load_rules
from openasm.synth.fhir_export import generate_fhir_export

from .conftest import read

# Measures without a denominator-exception population in their 2025 CQL.
NO_EXCEPTIONS = {"CMS156", "CMS165", "CMS90"}


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
    # Every planted defect is accounted for and nothing else is: an invalid date is nulled (the resource kept),
    # the other defects make the resource unreadable; no patient or resource is duplicated.
    defects = dict(first.defects_by_kind)
    assert result.elements_nulled == defects.pop("bad_date", 0)
    assert result.resources_quarantined == sum(defects.values())
    # Patients are the world's beneficiaries (MBI = bene_id); practitioners are the world's clinicians.
    benes = set(read(world, "beneficiary").column("bene_id").to_pylist())
    mbis = set(result.tables["patient"].column("mbi").to_pylist())
    assert mbis and mbis <= benes
    npis = set(read(world, "clinician").column("npi").to_pylist())
    assert set(result.tables["practitioner"].column("npi").to_pylist()) <= npis
    # Times carry the patients' UTC offsets (mostly US zones); some values are written as dates only.
    offsets = set(result.tables["encounter"].column("period_start_offset").to_pylist())
    assert {-300.0, None} <= offsets


def test_copies_scale_the_export(small_world, tmp_path: Path) -> None:
    world, _ = small_world
    one = generate_fhir_export(world, tmp_path / "one", 2027)
    three = generate_fhir_export(world, tmp_path / "three", 2027, copies=3)
    assert three.patients == {c: 3 * n for c, n in one.patients.items()}
    assert three.resources > 2.5 * one.resources


@pytest.fixture(scope="module")
def dense_export(small_world, tmp_path_factory) -> tuple[Path, object]:
    """The small world's export with every scenario and edge three times as frequent (so a ~100-patient export
    reaches every population)."""
    world, _ = small_world
    rules = load_rules(2027)
    care = copy.deepcopy(rules.value("synth.fhir_care"))
    for group in ("scenarios", "edges"):
        care[group] = {name: min(1.0, 3 * share) for name, share in care[group].items()}
    out = tmp_path_factory.mktemp("dense") / "fhir"
    return out, generate_fhir_export(world, out, 2027, seed=5, rules=rules.with_overrides({"synth.fhir_care": care}))


def test_every_population_of_every_measure_is_reached(dense_export) -> None:
    out, summary = dense_export
    rules = load_rules(2027)
    clinical = ClinicalTables.from_arrow(read_fhir([out]).tables)
    result = evaluate_measures(clinical=clinical, value_set_code=ibis.memtable(value_set_codes(rules)), rules=rules)
    rows = result.filter(result.population_group == 1).to_pyarrow().to_pylist()
    reached = {(row["ecqm_id"], flag) for row in rows for flag in POPULATION_FLAGS if row[flag]}
    missing = {(measure, flag) for measure in {row["ecqm_id"] for row in rows} for flag in POPULATION_FLAGS
               if (measure, flag) not in reached
               and not (flag == "is_denominator_exception" and measure in NO_EXCEPTIONS)}
    assert len({row["ecqm_id"] for row in rows}) == 7
    assert not missing, sorted(missing)
    assert set(summary.scenarios) == set(load_rules(2027).value("synth.fhir_care")["scenarios"]) | set(
        load_rules(2027).value("synth.fhir_care")["edges"])
