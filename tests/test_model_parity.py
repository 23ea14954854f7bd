"""The model stages give the same tables on DuckDB and PySpark for a small synthetic world: participation, the
eCQMs on the synthetic EHR export (patient-level results), aggregates, quality and final scores, payment
adjustments and dollars. The episode threshold is lowered so a world this small has participants."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from openasm.participation.run import run_participation
from openasm.participation.selected_area import load_selected_areas
from openasm.pipeline import run_ingest
from openasm.pipeline_cost import run_cost, run_episodes
from openasm.pipeline_model import ScoreInputs, run_payment, run_score
from openasm.pipeline_quality import QualityFeeds, run_fhir_ingest, run_quality
from openasm.rules import load_rules
from openasm.synth import generate_world
from openasm.synth.fhir_export import generate_fhir_export
from openasm.synth.model_feeds import generate_model_feeds

from .conftest import assert_tables_equal

OVERRIDES = {"participation.episode_volume_threshold": 3, "quality.benchmark_fallback_py": 2026}
COMPARED = ("participant", "measure_case_result", "measure_aggregate", "measure_gap", "quality_measure_score",
            "quality_category_score", "participant_score", "payment_adjustment", "adjustment_dollars")


def run_model(engine, world, run, ehr, rules, make_feeds):
    run_ingest(engine, world)
    run_episodes(engine, rules, run)
    run_cost(engine, rules, run)
    run_participation(engine, [rules], run, load_selected_areas(rules, None))
    feeds = make_feeds(run)
    run_fhir_ingest(engine, [ehr], run)
    run_quality(engine, rules, run, QualityFeeds(q220=feeds.files["q220"], q492=feeds.files["q492"]))
    run_score(engine, rules, run, ScoreInputs(attestation=feeds.files["ia_pi_attestation"]))
    run_payment(engine, rules, run)
    return {name: engine.fetch(engine.table(name)) for name in COMPARED}


@pytest.mark.spark
def test_model_stages_identical_on_duckdb_and_pyspark(tmp_path, engine_for):
    world, ehr = tmp_path / "world", tmp_path / "ehr"
    generate_world(out_dir=world, benes=1200, seed=5, first_year=2024, last_year=2027)
    generate_fhir_export(world, ehr, 2027)
    rules = load_rules(2027, OVERRIDES)
    feeds = {}

    def make_feeds(run):
        # The DuckDB run's participants drive the synthetic feeds; the PySpark run reuses the same files.
        if "feeds" not in feeds:
            feeds["feeds"] = generate_model_feeds(world, tmp_path / "feeds", 2027, rules=rules, participant=pq.read_table(
                run / "outputs" / "participant.parquet"))
        return feeds["feeds"]

    results = {backend: run_model(engine_for(backend, tmp_path / f"run-{backend}"), world,
                                  tmp_path / f"run-{backend}", ehr, rules, make_feeds)
               for backend in ("duckdb", "pyspark")}
    duck, spark = results["duckdb"], results["pyspark"]
    assert duck["measure_case_result"].num_rows > 100
    assert duck["participant_score"].num_rows > 0
    for name in COMPARED:
        assert_tables_equal(duck[name], spark[name], float_tol=1e-6, abs_tol=0.01)
