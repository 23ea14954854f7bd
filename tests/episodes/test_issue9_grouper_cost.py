"""Issue 9, "Episodes and cost": a hand-built claims world run through the real runners (ingest → episodes →
cost), with every figure worked out by hand below.

World (all carrier lines $100 unless noted, heart-failure diagnosis I50.22, E/M 99214):
- H1 (born 1950) managed by cardiology TIN A (NPI 1, specialty 06): trigger 2026-02-01, confirm 2026-02-15,
  reaffirm 2026-05-01 and 2027-03-01 → TAW 2026-02-01…2028-02-28 (2027-03-01 + 364); episode 0 =
  2026-02-01…2027-01-31 ends in 2027 → the PY2027 episode (episode 1 ends 2028-01-31, in PY2028). Other lines
  with the HF diagnosis inside episode 0:
    * orthopedic surgeon (specialty 20, TIN B) E/M 2026-06-01, $80 → NOT assigned (ebcm.md §10.3: HF carrier
      E/M only from cardiology and primary care);
    * internist (specialty 11, TIN C) E/M 2026-07-01, $70 → assigned (primary care);
    * echocardiogram 93306 by a radiologist (specialty 30, TIN D) 2026-08-01, $200 → assigned (no specialty
      condition on echocardiography).
  O_raw = 3 × 100 + 70 + 200 = 570 (the orthopedist's $80 used to make it 650).
  Part D fills in the episode: loop diuretic 00054429725 $50 (mapped) and NDC 99999999999 $150 (not in the
  drug-class map) → unmapped share of Part D dollars = 150 / 200 = 0.75; one fill before the episode
  (2025-06-01, unmapped) is outside every episode and not counted.
- H2 (born 1957) at TIN A: E/M 2024-12-20, 2025-01-10, 2026-01-05, 2026-01-20, 2026-06-01, 2027-03-01.
  ebcm.md §3.2: for PY2027 the TAW is built from claims on or after 2027-01-01 − 730 days = 2025-01-01, so the
  2024-12-20 trigger is not seen. 2025-01-10 has no confirming claim within 180 days, so the first confirmed
  trigger is 2026-01-05 (confirmed 2026-01-20); the chain 2025-01-10 → 2026-01-05 (360 days ≤ 364) keeps one
  TAW that starts there → PY2027 episode 2026-01-05…2027-01-04, O_raw = 300 (01-05, 01-20, 06-01).
  Reading the 2024 claim instead opens the TAW on 2024-12-20 and the PY2027 episode becomes
  2026-12-20…2027-12-19 with O_raw = 100 (2027-03-01).
- Two HF episodes and ~4 risk features: far below the minimum regression sample (10 episodes per feature), so
  the cost stage says so and the expected cost of both episodes is the mean winsorized observed cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from openasm.engine import connect
from openasm.rules import RulesError, load_rules
from openasm.runs.cost import run_cost
from openasm.runs.episodes import run_episodes
from openasm.runs.ingest import IngestInputs, run_ingest
from openasm.runs.execute import execute_stage
from openasm.schema import CANONICAL_TABLES

from .factory import bene, d, ffs_months, npi, visit

TIN_A, TIN_B, TIN_C, TIN_D = "111111111", "222222222", "333333333", "444444444"
HF = {"hcpcs": "99214", "dx": "I5022", "specialty": "06", "tin": TIN_A, "npi_n": 1}
MAPPED_NDC, UNMAPPED_NDC = "00054429725", "99999999999"


def _fill(claim_id: str, bene_id: str, date: str, ndc: str, amount: float) -> dict:
    return {"claim_id": claim_id, "bene_id": bene_id, "fill_date": d(date), "ndc_code": ndc,
            "allowed_amount": amount, "prescriber_npi": npi(1)}


def world_tables() -> dict[str, list[dict]]:
    h1 = [visit("H1", day, **HF) for day in ("2026-02-01", "2026-02-15", "2026-05-01", "2027-03-01")]
    h1 += [
        visit("H1", "2026-06-01", hcpcs="99213", dx="I5022", specialty="20", tin=TIN_B, npi_n=2, allowed=80.0),
        visit("H1", "2026-07-01", hcpcs="99213", dx="I5022", specialty="11", tin=TIN_C, npi_n=3, allowed=70.0),
        visit("H1", "2026-08-01", hcpcs="93306", dx="I5022", specialty="30", tin=TIN_D, npi_n=4, allowed=200.0),
    ]
    h2 = [visit("H2", day, **HF) for day in
          ("2024-12-20", "2025-01-10", "2026-01-05", "2026-01-20", "2026-06-01", "2027-03-01")]
    benes = [bene("H1", birth="1950-06-01"), bene("H2", birth="1957-06-01")]
    for row in benes:
        row["state_fips"] = "24"
    return {
        "beneficiary": benes,
        "enrollment": [m for b in benes for m in ffs_months(b["bene_id"], first="2024-01")],
        "claim_line": h1 + h2,
        "pharmacy_claim": [_fill("P1", "H1", "2026-03-01", MAPPED_NDC, 50.0),
                           _fill("P2", "H1", "2026-04-01", UNMAPPED_NDC, 150.0),
                           _fill("P3", "H1", "2025-06-01", UNMAPPED_NDC, 999.0)],
    }


def write_world(folder: Path) -> Path:
    """Each table as Parquet with the canonical column types (unset columns null)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in world_tables().items():
        schema = CANONICAL_TABLES[name].ibis_schema().to_pyarrow()
        columns = {f.name: [row.get(f.name) for row in rows] for f in schema}
        pq.write_table(pa.table(columns, schema=schema), folder / f"{name}.parquet")
    return folder


def run_world(tmp: Path, performance_year: int) -> dict:
    """Ingest the world and run episodes and cost for one performance year through the runners."""
    world, run_dir = write_world(tmp / "world"), tmp / f"run-{performance_year}"
    rules = load_rules(performance_year)
    engine = connect("duckdb", run_dir)
    try:
        execute_stage(run_ingest, engine, rules, run_dir, IngestInputs(world))
        episodes = execute_stage(run_episodes, engine, rules, run_dir)
        cost = execute_stage(run_cost, engine, rules, run_dir)
        tables = {name: engine.fetch(engine.table(name)).to_pylist() if engine.has_table(name) else []
                  for name in ("episode_detail", "episode_cost_line", "episode_expected", "risk_model_coefficient",
                               "part_d_drug_class_gap")}
    finally:
        engine.close()
    return {"episodes": episodes, "cost": cost, "tables": tables,
            "manifest": json.loads((run_dir / "manifest.json").read_text())}


@pytest.fixture(scope="module")
def py2027(tmp_path_factory) -> dict:
    return run_world(tmp_path_factory.mktemp("issue9"), 2027)


@pytest.fixture(scope="module")
def py2026(tmp_path_factory) -> dict:
    """A MIPS year: the payment rules (keyed from PY2027 / PaY2029) have no value."""
    return run_world(tmp_path_factory.mktemp("issue9"), 2026)


def _episode(result: dict, bene_id: str) -> dict:
    (row,) = [r for r in result["tables"]["episode_detail"]
              if r["bene_id"] == bene_id and r["measure_id"] == "COST_HF_1"]
    return row


# ------------------------------------------------------------------------------ E/M specialty (ebcm §10.3)
def test_hf_em_is_assigned_only_from_cardiology_and_primary_care(py2027) -> None:
    episode = _episode(py2027, "H1")
    assert (episode["episode_start_date"], episode["episode_end_date"]) == (d("2026-02-01"), d("2027-01-31"))
    lines = [r for r in py2027["tables"]["episode_cost_line"]
             if r["episode_id"] == episode["episode_id"] and r["source_table"] == "claim_line"]
    assert sorted((r["billing_tin"], r["hcpcs_code"], r["std_cost_amount"]) for r in lines) == [
        (TIN_A, "99214", 100.0), (TIN_A, "99214", 100.0), (TIN_A, "99214", 100.0),
        (TIN_C, "99213", 70.0), (TIN_D, "93306", 200.0)]
    assert episode["observed_raw_amount"] - 50.0 == pytest.approx(570.0)  # + the mapped Part D fill
    used = {row["name"] for row in py2027["manifest"]["code_lists_used"]}
    assert "codes:cost__specialty_groups" in used


# ------------------------------------------------------------------------------ 730-day history (ebcm §3.2)
def test_claims_before_the_730_day_history_do_not_open_a_window(py2027) -> None:
    episode = _episode(py2027, "H2")
    assert (episode["taw_start_date"], episode["episode_start_date"], episode["episode_end_date"]) == (
        d("2026-01-05"), d("2026-01-05"), d("2027-01-04"))
    assert episode["observed_raw_amount"] == pytest.approx(300.0)
    used = {row["name"]: row for row in py2027["manifest"]["rules_used"]}
    assert used["episodes.history_lookback_days"]["value"] == "730"


def test_history_limit_is_relative_to_the_performance_year(py2026) -> None:
    # PY2026: history from 2026-01-01 − 730 days = 2024-01-02, so the 2024-12-20 trigger counts: TAW 2024-12-20,
    # episode 1 = 2025-12-20…2026-12-19 ends in 2026.
    episode = _episode(py2026, "H2")
    assert (episode["taw_start_date"], episode["episode_start_date"], episode["episode_end_date"]) == (
        d("2024-12-20"), d("2025-12-20"), d("2026-12-19"))
    # 2026-01-05, 01-20, 06-01 are in the episode: 300.
    assert episode["observed_raw_amount"] == pytest.approx(300.0)


# ------------------------------------------------------------------------------ Part D drug-class gap
def test_part_d_fills_without_a_drug_class_are_counted_and_reported(py2027) -> None:
    gap = {r["measure_id"]: r for r in py2027["tables"]["part_d_drug_class_gap"]}
    hf = gap["COST_HF_1"]
    assert (hf["part_d_fill_count"], hf["unmapped_fill_count"], hf["unmapped_ndc_count"]) == (2, 1, 1)
    assert (hf["part_d_amount"], hf["unmapped_amount"]) == (pytest.approx(200.0), pytest.approx(150.0))
    assert hf["unmapped_share"] == pytest.approx(0.75)
    notes = " ".join(py2027["episodes"].notes)
    assert "COST_HF_1" in notes and "75.0%" in notes and "drug-class map" in notes
    recorded = {r["measure_id"]: r for r in py2027["manifest"]["episodes"]["part_d_drug_class_gap"]}
    assert recorded["COST_HF_1"]["unmapped_share"] == pytest.approx(0.75)


# ------------------------------------------------------------------------------ minimum regression sample
def test_small_sample_falls_back_to_the_mean_and_says_so(py2027) -> None:
    expected = [r for r in py2027["tables"]["episode_expected"] if r["measure_id"] == "COST_HF_1"]
    assert len(expected) == 2
    mean_y = sum(r["winsorized_cost"] for r in expected) / 2
    assert expected[0]["winsorized_cost"] != pytest.approx(expected[1]["winsorized_cost"])
    for row in expected:
        assert row["expected_cost"] == pytest.approx(mean_y)
    coefficients = [r for r in py2027["tables"]["risk_model_coefficient"] if r["measure_id"] == "COST_HF_1"]
    assert {r["feature"] for r in coefficients if r["is_in_model"]} == {"intercept"}
    assert len(coefficients) > 1 and all(r["fit_episode_count"] == 2 for r in coefficients)
    notes = " ".join(py2027["cost"].notes)
    assert "COST_HF_1" in notes and "cost.ra_min_episodes_per_feature" in notes and "mean" in notes
    (fit,) = [r for r in py2027["manifest"]["cost"]["risk_model_fit"] if r["measure_id"] == "COST_HF_1"]
    assert (fit["fit_episode_count"], fit["model"]) == (2, "intercept_only")
    assert "cost.ra_min_episodes_per_feature" in {r["name"] for r in py2027["manifest"]["rules_used"]}


# ------------------------------------------------------------------------------ MIPS years without payment rules
def test_grouping_and_cost_run_for_a_mips_year_without_payment_rules(py2026) -> None:
    result = py2026
    assert result["manifest"]["performance_year"] == 2026
    assert result["tables"]["episode_detail"] and result["tables"]["episode_expected"]
    used = {row["name"] for row in result["manifest"]["rules_used"]}
    assert not {name for name in used if name.startswith("payment.")}


@pytest.mark.parametrize("year", [2024, 2025, 2026])
def test_a_parameter_without_a_value_fails_only_when_read_and_names_itself(year: int) -> None:
    rules = load_rules(year)
    assert rules.value("episodes.history_lookback_days") == 730
    with pytest.raises(RulesError, match=r"payment\.risk_level"):
        rules.value("payment.risk_level")
    with pytest.raises(RulesError, match=r"cost\.weight has no value on or before " + str(year)):
        rules.value("cost.weight")


def test_rules_command_lists_what_resolves_and_what_has_no_value(wide_console) -> None:
    from openasm.cli import app

    result = CliRunner().invoke(app, ["rules", "--py", "2026"])
    assert result.exit_code == 0, result.output
    assert "episodes.history_lookback_days" in result.output
    assert "no value for performance year 2026" in result.output
    assert "payment.risk_level" in result.output and "cost.weight" in result.output
