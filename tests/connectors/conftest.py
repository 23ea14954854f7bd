"""A small synthetic world and its canonical model run, shared by the connector round trips (one per session).

The round trip of a format compares the connector's run with the canonical run of the *expected* world: the
world with what the format cannot carry removed (`expected.py`). The quality results (EHR-based, independent of
the claims format) of the reference run are reused by each connector run, so only claims-driven stages rerun.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ibis
import pyarrow.parquet as pq
import pytest

from openasm.engine import connect
from openasm.participation.run import run_participation
from openasm.participation.selected_area import load_selected_areas
from openasm.pipeline import run_claims_summary, run_ingest
from openasm.pipeline_cost import run_cost, run_episodes
from openasm.pipeline_model import ScoreInputs, run_payment, run_score
from openasm.pipeline_quality import QualityFeeds, run_fhir_ingest, run_quality
from openasm.rules import load_rules
from openasm.synth import generate_world
from openasm.synth.fhir_export import generate_fhir_export
from openasm.synth.model_feeds import generate_model_feeds

OVERRIDES = {"participation.episode_volume_threshold": 3, "quality.benchmark_fallback_py": 2026}
PY = 2027
COMPARED = ("episode", "episode_exclusion", "episode_attribution", "episode_cost_line", "measure_score",
            "participant", "participant_score", "payment_adjustment", "adjustment_dollars")


@dataclass
class World:
    path: Path
    tmp: Path
    rules: object
    feeds: object = None
    measure_aggregate: object = None


@pytest.fixture(scope="session")
def connector_world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("connector-world")
    world = tmp / "world"
    generate_world(out_dir=world, benes=600, seed=5, first_year=PY - 3, last_year=PY)
    return World(world, tmp, load_rules(PY, OVERRIDES))


def run_claims_stages(engine, run: Path, world: World) -> dict:
    """Every claims-driven stage after ingest; quality results come from the reference run."""
    rules = world.rules
    run_claims_summary(engine, rules, run)
    run_episodes(engine, rules, run)
    run_cost(engine, rules, run)
    run_participation(engine, [rules], run, load_selected_areas(rules, None))
    if world.measure_aggregate is None:
        ehr = world.tmp / "ehr"
        generate_fhir_export(world.path, ehr, PY)
        world.feeds = generate_model_feeds(world.path, world.tmp / "feeds", PY, rules=rules,
                                           participant=pq.read_table(run / "outputs" / "participant.parquet"))
        run_fhir_ingest(engine, [ehr], run)
        run_quality(engine, rules, run, QualityFeeds(q220=world.feeds.files["q220"], q492=world.feeds.files["q492"]))
        world.measure_aggregate = engine.fetch(engine.table("measure_aggregate"))
    else:
        engine.save("measure_aggregate", ibis.memtable(world.measure_aggregate))
    run_score(engine, rules, run, ScoreInputs(attestation=world.feeds.files["ia_pi_attestation"]))
    run_payment(engine, rules, run)
    return {name: engine.fetch(engine.table(name)) for name in COMPARED}


def canonical_run(world: World, folder: Path, name: str) -> dict:
    """Ingest a canonical folder and run every claims-driven stage."""
    run = world.tmp / f"run-{name}"
    engine = connect("duckdb", run)
    try:
        run_ingest(engine, folder)
        return {"tables": run_claims_stages(engine, run, world), "accepted": _accepted(engine)}
    finally:
        engine.close()


def _accepted(engine) -> dict:
    from openasm.pipeline import ensure_final_action

    claims, fills = ensure_final_action(engine)
    final = claims.filter(claims.final_action_status == "final").drop(
        "final_action_status", "family_id", "original_claim_id", "claim_adjustment_type")
    out = {name: engine.fetch(engine.table(name)) for name in ("beneficiary", "enrollment", "clinician")}
    out["final_claim_line"] = engine.fetch(final)
    final_ids = final.select("claim_id").distinct()
    dx = engine.table("claim_diagnosis")
    out["final_claim_diagnosis"] = engine.fetch(dx.semi_join(final_ids, "claim_id"))
    out["final_pharmacy_claim"] = engine.fetch(fills.filter(fills.final_action_status == "final").drop(
        "final_action_status", "family_id", "original_claim_id", "claim_adjustment_type"))
    return out


def connector_run(world: World, name: str, ingest) -> dict:
    """`ingest(engine)` loads the connector's tables; then every claims-driven stage."""
    run = world.tmp / f"run-{name}"
    engine = connect("duckdb", run)
    try:
        result = ingest(engine)
        return {"tables": run_claims_stages(engine, run, world), "accepted": _accepted(engine), "ingest": result}
    finally:
        engine.close()
