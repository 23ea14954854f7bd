"""Every stage gives the same tables on DuckDB and PySpark for a small synthetic world (one run per backend):
ingest, the grouper and the cost scorer, participation, the eCQMs on the synthetic EHR export (patient-level
results), aggregates, quality and final scores, payment adjustments and dollars. The episode threshold is lowered
so a world this small has participants."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from openasm.participation.selected_area import load_selected_areas
from openasm.rules import load_rules
from openasm.runs.cost import run_cost
from openasm.runs.episodes import run_episodes
from openasm.runs.fhir_ingest import FhirInputs, run_fhir_ingest
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.participation import ParticipationInputs, run_participation
from openasm.runs.payment import run_payment
from openasm.runs.quality import QualityFeeds, run_quality
from openasm.runs.score import ScoreInputs, run_score
from openasm.runs.summary import run_summary
from openasm.synth import generate_world
from openasm.synth.fhir_export import generate_fhir_export
from openasm.synth.model_feeds import generate_model_feeds

from .conftest import assert_tables_equal
from .test_backend_parity import COMPARED as INGEST_AND_SUMMARY

OVERRIDES = {"participation.episode_volume_threshold": 3, "quality.benchmark_fallback_py": 2026}
COST = ("episode", "episode_exclusion", "episode_attribution", "clinician_specialty", "episode_detail",
        "episode_cost_line", "episode_hcc", "episode_expected", "measure_score")
MODEL = ("participant", "measure_case_result", "measure_aggregate", "measure_gap", "quality_measure_score",
            "quality_category_score", "participant_score", "payment_adjustment", "adjustment_dollars")
COMPARED = INGEST_AND_SUMMARY + COST + MODEL


def run_model(engine, world, run, ehr, rules, make_feeds):
    run_ingest(engine, rules, run, IngestInputs(world))
    run_summary(engine, rules, run)
    run_episodes(engine, rules, run)
    run_cost(engine, rules, run)
    run_participation(engine, rules, run, ParticipationInputs(load_selected_areas(rules, None)))
    feeds = make_feeds(run)
    run_fhir_ingest(engine, rules, run, FhirInputs((ehr,)))
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
    assert duck["participant_score"].num_rows > 0 and duck["episode"].num_rows > 50
    differing = []
    for name in COMPARED:
        # Sums run in a different order on each backend and least squares amplifies last-bit differences:
        # agree to 1e-5 relative (under a dime on a $15,000 score) or a cent.
        try:
            assert_tables_equal(duck[name], spark[name], float_tol=1e-5, abs_tol=0.01)
        except AssertionError as err:
            differing.append(f"{name}: {err}")
    assert not differing, "\n".join(differing)
