"""One tiny synthetic world per test session, shared by every connector round trip, and one reference model run
(the canonical path on the world as CCLF can carry it), shared by the CCLF round trip and the remittance tests.

A round trip compares a connector's result with the canonical path on the *expected* world: the world with
what the format cannot carry removed (`expected.py`). Every round trip (CCLF, research files, BCDA, Blue Button)
runs every claims-driven stage on both and compares the accepted canonical rows, episodes, cost measure scores,
participants, final scores and payment. The canonical run of each expected world is made once per session.
Quality results (EHR-based, independent of the claims format) are computed once and reused by every run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openasm.engine import connect
from openasm.participation.selected_area import load_selected_areas
from openasm.rules import load_rules
from openasm.runs.cost import run_cost
from openasm.runs.episodes import run_episodes
from openasm.runs.execute import execute_stage
from openasm.runs.fhir_ingest import FhirInputs, run_fhir_ingest
from openasm.runs.final_action import ensure_final_action
from openasm.runs.ingest import IngestInputs, IngestResult, run_ingest
from openasm.runs.participation import ParticipationInputs, run_participation
from openasm.runs.payment import run_payment
from openasm.runs.quality import QualityFeeds, run_quality
from openasm.runs.score import ScoreInputs, run_score
from openasm.synth import generate_world
from openasm.synth.fhir_export import generate_fhir_export
from openasm.synth.model_feeds import generate_model_feeds

# The episode threshold is lowered so a world this small has participants and scores.
OVERRIDES = {"participation.episode_volume_threshold": 3, "quality.benchmark_fallback_py": 2026}
PY = 2027
BENES = 400
COMPARED = ("episode", "episode_exclusion", "episode_attribution", "episode_cost_line", "measure_score",
            "participant", "participant_score", "payment_adjustment", "adjustment_dollars")
VERSION_COLUMNS = ("final_action_status", "family_id", "original_claim_id", "claim_adjustment_type")


@dataclass
class World:
    path: Path
    tmp: Path
    rules: object
    feeds: object = None
    measure_aggregate: pa.Table | None = None
    expected_runs: dict = field(default_factory=dict)


@pytest.fixture(scope="session")
def connector_world(tmp_path_factory) -> World:
    """The world, PY-3 to PY."""
    tmp = tmp_path_factory.mktemp("connector-world")
    world = World(tmp / "world", tmp, load_rules(PY, OVERRIDES))
    generate_world(out_dir=world.path, benes=BENES, seed=5, first_year=PY - 3, last_year=PY)
    return world


@pytest.fixture(scope="session")
def reference_run(connector_world) -> dict:
    """The canonical model run of the world with CCLF's losses applied (`expected.cclf_transform`): the CCLF
    round trip's expectation, and a scored run folder (`path`) for the remittance tests to copy."""
    from .expected import cclf_transform

    return {**expected_model_run(connector_world, "cclf", cclf_transform),
            "path": connector_world.tmp / "run-expected-cclf"}


def ingest(engine, folder: Path, source_format: str = "canonical") -> IngestResult:
    """`run_ingest` of a folder in a format into the engine's run folder (recorded in its manifest)."""
    return execute_stage(run_ingest, engine, None, engine.run_dir, IngestInputs(Path(folder), source_format))


def run_claims_stages(engine, run: Path, world: World) -> dict:
    """Every claims-driven stage after ingest, each executed and recorded as the CLI does; quality results come
    from the first run that computed them."""
    rules = world.rules

    def stage(runner, inputs=None):
        return execute_stage(runner, engine, rules, run, inputs)

    stage(run_episodes)
    stage(run_cost)
    stage(run_participation, ParticipationInputs(load_selected_areas(rules, None)))
    if world.measure_aggregate is None:
        ehr = world.tmp / "ehr"
        generate_fhir_export(world.path, ehr, PY)
        world.feeds = generate_model_feeds(world.path, world.tmp / "feeds", PY, rules=rules,
                                           participant=pq.read_table(run / "outputs" / "participant.parquet"))
        stage(run_fhir_ingest, FhirInputs((ehr,)))
        stage(run_quality, QualityFeeds(q220=world.feeds.files["q220"], q492=world.feeds.files["q492"]))
        world.measure_aggregate = engine.fetch(engine.table("measure_aggregate"))
    else:
        engine.save("measure_aggregate", ibis.memtable(world.measure_aggregate))
    stage(run_score, ScoreInputs(attestation=world.feeds.files["ia_pi_attestation"]))
    stage(run_payment)
    return {name: engine.fetch(engine.table(name)) for name in COMPARED}


def accepted_rows(engine) -> dict[str, pa.Table]:
    """The accepted people and practice tables, and the final-action claims, diagnoses and fills."""
    claims, fills = ensure_final_action(engine)
    final = claims.filter(claims.final_action_status == "final").drop(*VERSION_COLUMNS)
    out = {name: engine.fetch(engine.table(name)) for name in ("beneficiary", "enrollment", "clinician")}
    out["final_claim_line"] = engine.fetch(final)
    dx = engine.table("claim_diagnosis")
    out["final_claim_diagnosis"] = engine.fetch(dx.semi_join(final.select("claim_id").distinct(), "claim_id"))
    out["final_pharmacy_claim"] = engine.fetch(fills.filter(fills.final_action_status == "final").drop(
        *VERSION_COLUMNS))
    return out


def expected_model_run(world: World, name: str, transform) -> dict:
    """The canonical model run of the world with a format's losses applied (`expected.py`), made once per
    session and format: the expectation of that format's round trip."""
    from .expected import write_expected_world

    if name not in world.expected_runs:
        folder = write_expected_world(world.path, world.tmp / f"expected-{name}", transform)
        world.expected_runs[name] = model_run(world, f"expected-{name}", folder)
    return world.expected_runs[name]


def model_run(world: World, name: str, folder: Path, source_format: str = "canonical") -> dict:
    """Ingest a folder in a format, then every claims-driven stage; the claim lines with their final-action
    status are returned too."""
    run = world.tmp / f"run-{name}"
    engine = connect("duckdb", run)
    try:
        result = ingest(engine, folder, source_format)
        tables = run_claims_stages(engine, run, world)
        claims, _ = ensure_final_action(engine)
        return {"tables": tables, "accepted": accepted_rows(engine), "ingest": result,
                "claim_line_status": engine.fetch(claims)}
    finally:
        engine.close()
