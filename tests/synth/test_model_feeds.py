"""The synthetic model feeds (Q220 FOTO episodes, Q492 CMS results, IA/PI attestation, CMS participant list):
same inputs → same bytes; each file is read by its engine reader with exactly the planted defects quarantined or
rejected and the rest accepted; TINs/NPIs are the world's clinicians; rates land in their bands."""

from __future__ import annotations

import hashlib
import math
import statistics
from datetime import date, timedelta
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from openasm.participation.participant_list import (
    comparable_list,
    compare_with_participant_list,
    read_participant_list,
)
from openasm.quality.q220 import (
    aggregate_q220_results,
    evaluate_q220_episodes,
    read_q220_file,
)
from openasm.quality.q492 import read_q492_file
from openasm.rules import load_rules
from openasm.runs.world import participants_of_world
from openasm.scoring.ia_pi_attestation import (
    COMPONENT_NOT_MET,
    ROW_REJECTED,
    read_attestation,
)
from openasm.scoring.ia_pi_deductions import compute_ia_pi_deductions
from openasm.synth import model_feeds
from openasm.synth.model_feeds import (
    FILES,
    _q220_rows,
    _q492_rows,
    generate_model_feeds,
)

PY = 2027
RULES = load_rules(PY)
PARAMS = RULES.value("synth.model_feeds")


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def participant(small_world) -> pa.Table:
    """The participation stage's own result on the small world (ingest + §512.710; the slow part, run once)."""
    world, _ = small_world
    return participants_of_world(world, RULES)


@pytest.fixture(scope="module")
def feeds(small_world, participant, tmp_path_factory):
    world, _ = small_world
    return generate_model_feeds(world, tmp_path_factory.mktemp("feeds"), PY, seed=7, participant=participant)


@pytest.fixture(scope="module")
def clinicians(small_world) -> dict[tuple[str, str], str]:
    """(tin, npi) → specialty of the world's valid clinician rows."""
    world, _ = small_world
    return {(c["tin"], c["npi"]): c["specialty_code"] for c in model_feeds._clinicians(world)}


def test_same_inputs_same_bytes(small_world, participant, feeds, tmp_path) -> None:
    world, _ = small_world
    again = generate_model_feeds(world, tmp_path / "again", PY, seed=7, participant=participant)
    assert digest(feeds.out_dir) == digest(tmp_path / "again") and again.rows == feeds.rows
    assert sorted(p.name for p in feeds.out_dir.iterdir()) == sorted(FILES.values())
    generate_model_feeds(world, tmp_path / "other", PY, seed=8, participant=participant)
    assert digest(tmp_path / "other")[FILES["q220"]] != digest(feeds.out_dir)[FILES["q220"]]


def test_q220_file_quarantines_exactly_the_planted_defects(feeds) -> None:
    read = read_q220_file(feeds.files["q220"])
    assert read.reconciles and read.rows_read == feeds.rows["q220"] > 20
    assert feeds.defects["q220"] == {"bad_date": 1, "unknown_result_code": 1}
    problems = sorted((r["column"], r["reason"]) for r in read.quarantine.to_pylist())
    assert [c for c, _ in problems] == ["initial_eval_dt", "result_code"]
    assert "2027-02-30" in problems[0][1] and "G8662" in problems[1][1]
    assert read.rows.num_rows == feeds.rows["q220"] - 2
    # Every accepted row's kind is as planted: residual rows carry scores whose arithmetic holds.
    rows = read.rows.to_pylist()
    assert sum(r["result_code"] in ("M1122", "G9733") for r in rows) == feeds.planted["q220"].get("exclusion", 0)
    assert sum(r["discharge_dt"] is None for r in rows) == feeds.planted["q220"].get("open", 0)
    for r in rows:
        if r["residual"] is not None:
            assert r["discharge_fs"] - r["intake_fs"] - r["predicted_change"] == pytest.approx(r["residual"], abs=1e-9)
            assert r["result_code"] in (None, "G8659" if r["residual"] >= 0 else "G8660")


def test_q220_rates_through_the_engine(feeds, backend, engine_for) -> None:
    engine = engine_for(backend)
    read = read_q220_file(feeds.files["q220"])
    episodes = evaluate_q220_episodes(treatment_episode=ibis.memtable(read.rows), rules=RULES)
    rows = engine.fetch(aggregate_q220_results(q220_episode_result=episodes, rules=RULES)).to_pylist()
    assert rows and all(r["source"] == "q220_file" and r["cohort"] == "lbp" for r in rows)
    met = sum(r["performance_met"] for r in rows)
    decided = sum(r["performance_met"] + r["performance_not_met"] for r in rows)
    # met_share 0.85 per clinician (Beta spread), G8661 rows count as not met: pooled rate well inside 60-97%.
    assert 0.60 <= met / decided <= 0.97


def test_q220_shares_on_a_large_panel() -> None:
    """The generator's shares, on 3,000 synthetic patients of 30 clinicians (binomial noise ≈ 1 point)."""
    start = date(PY, 1, 5)
    patients = [{"tin": f"{100000000 + i % 30}", "npi": f"{1000000000 + i % 30}", "bene_id": f"B{i:05d}",
                 "first_visit": start + timedelta(days=i % 200), "birth_date": date(1950, 1, 1)} for i in range(3000)]
    rows, kinds, defects = _q220_rows(patients, PARAMS["q220"], np.random.default_rng(5), PY)
    p = PARAMS["q220"]
    assert dict(defects) == {"bad_date": 1, "unknown_result_code": 1}
    assert len(rows) == sum(kinds.values()) + 2
    assert len({r["episode_id"] for r in rows}) == len(rows)
    assert abs(kinds["exclusion"] / len(rows) - p["exclusion_share"]) < 0.015
    assert abs(kinds["result_code_only"] / len(rows) - p["result_code_only_share"]) < 0.015
    scored = [r for r in rows if r.get("residual") is not None]
    met = sum(float(r["residual"]) >= 0 for r in scored) / len(scored)
    assert abs(met - p["met_share"]) < 0.03
    second = sum(r["episode_id"].endswith("-E2") for r in rows) / len(patients)
    assert 0.05 < second <= p["second_episode_share"] + 0.03  # late first visits leave no room for a second one


def test_q492_file_is_read_whole(feeds, clinicians) -> None:
    read = read_q492_file(feeds.files["q492"])
    assert read.reconciles and read.quarantine.num_rows == 0 and read.rows.num_rows == feeds.rows["q492"] > 0
    hf_codes = set(RULES.value("participation.specialty_codes")["hf"])
    minimum = RULES.value("quality.case_minimum")
    for r in read.rows.to_pylist():
        assert clinicians[(r["tin"], r["npi"])] in hf_codes and r["performance_year"] == PY
        assert r["scored_flag"] == (r["case_count"] >= minimum) and r["rate"] >= 0
        assert (r["achievement_points"] is None) == (r["benchmark_ref"] is None)


def test_q492_rows_golden_case_and_rate_band() -> None:
    born = [date(1950, 6, 1)] * 19
    # On 1 January 2027: born 1962-01-01 is 65 (counted), born 1962-01-02 is 64 (not counted).
    patients = ([{"tin": "111111111", "npi": "1000000001", "birth_date": b} for b in born + [date(1962, 1, 2)]]
                + [{"tin": "222222222", "npi": "1000000002", "birth_date": b} for b in born + [date(1962, 1, 1)]]
                + [{"tin": "333333333", "npi": "1000000003", "birth_date": None}])
    rows, planted = _q492_rows(patients, PARAMS["q492"], np.random.default_rng(1), PY, RULES)
    got = {r["npi"]: (r["case_count"], r["scored_flag"]) for r in rows}
    assert got == {"1000000001": (19, "false"), "1000000002": (20, "true")}  # no age known → no case
    # One scored row of one: round(0.15 × 1) = 0, raised to 1, so it carries CMS points from its rate:
    # points = 1 + 9 × (1 − Φ((rate − 71.12) / 5)).
    (row,) = [r for r in rows if r["scored_flag"] == "true"]
    z = (float(row["rate"]) - 71.12) / 5.0
    assert float(row["achievement_points"]) == pytest.approx(1 + 9 * (1 - 0.5 * (1 + math.erf(z / math.sqrt(2)))),
                                                             abs=0.02)
    assert planted == {"scored": 1, "not_scored": 1, "cms_points": 1}
    many = [{"tin": f"{100000000 + i}", "npi": f"{1000000000 + i}", "birth_date": date(1950, 1, 1)}
            for i in range(500) for _ in range(i % 40 + 1)]
    rows, planted = _q492_rows(many, PARAMS["q492"], np.random.default_rng(2), PY, RULES)
    rates = [float(r["rate"]) for r in rows]
    assert abs(statistics.mean(rates) - 71.12) < 0.7 and 4.5 < statistics.stdev(rates) < 5.5
    assert planted["cms_points"] == round(0.15 * planted["scored"])  # 253 of the 500 clinicians have ≥ 20 cases
    assert planted["not_scored"] == sum(1 for i in range(500) if i % 40 + 1 < 20)


def test_attestation_findings_are_the_planted_ones(feeds, clinicians, engine_for) -> None:
    intake = read_attestation(feeds.files["ia_pi_attestation"], RULES)
    planted, defects = feeds.planted["ia_pi_attestation"], feeds.defects["ia_pi_attestation"]
    assert defects == {"row_rejected": 1} and all(planted[k] >= 1 for k in planted)
    assert intake.rows_read == feeds.rows["ia_pi_attestation"] and intake.rows_rejected == 1
    assert intake.attestation.num_rows == feeds.rows["ia_pi_attestation"] - 1
    findings = intake.quarantine.to_pylist()
    rejected = [f for f in findings if f["disposition"] == ROW_REJECTED]
    reason = "TIN must be 9 digits, got 8 (leading zeros lost?)"
    assert [(f["column_name"], f["reason"]) for f in rejected] == [("tin", reason)]
    not_met = [(f["scope"], f["column_name"]) for f in findings if f["disposition"] == COMPONENT_NOT_MET]
    assert not_met == [("IA_1", "ia1_elements")] * planted["ia_element_missing"]
    world_tins = {tin for tin, _ in clinicians}
    assert set(intake.attestation.column("tin").to_pylist()) <= world_tins
    # The deduction stage then finds exactly the planted shortfalls, for every listed TIN.
    listed = read_participant_list(feeds.files["participant_list"])
    tins = sorted({name.removeprefix("Practice ") for name in listed.column("organization_legal_name").to_pylist()})
    assert len(tins) == intake.attestation.num_rows + 1 + planted["no_attestation_row"]
    participant = ibis.memtable({"performance_year": [PY] * len(tins), "tin": tins, "npi": ["1000000001"] * len(tins),
                                 "cohort": ["hf"] * len(tins)})
    engine = engine_for("duckdb")
    result = engine.fetch(compute_ia_pi_deductions(participant=participant, attestation=ibis.memtable(
        intake.attestation), attestation_item=ibis.memtable(intake.attestation_item), rules=RULES)).to_pylist()
    missing_row = planted["no_attestation_row"] + 1  # the rejected row's TIN has no attestation either
    assert sum(not r["has_attestation"] for r in result) == missing_row
    assert sum(not r["ia1_met"] for r in result) == missing_row + planted["ia_element_missing"]
    assert sum(not r["ia2_met"] for r in result) == missing_row
    assert sum(not r["pi_met"] for r in result) == missing_row + planted["pi_objective_unmet"]


def test_participant_list_matches_the_engine_but_for_the_planted_flips(feeds, participant, clinicians) -> None:
    listed = read_participant_list(feeds.files["participant_list"])  # raises on any bad row
    assert listed.num_rows == feeds.rows["participant_list"] * 5  # one row per file row and listed year
    this_year = listed.filter(pc.equal(listed["performance_year"], PY))
    codes = RULES.value("participation.specialty_codes")
    by_npi = {}
    for tin_npi, specialty in clinicians.items():
        by_npi.setdefault(tin_npi[1], set()).add(specialty)
    for r in this_year.to_pylist():
        assert r["first_name"] and r["last_name"] and r["is_participant"] is not None
        assert by_npi[r["npi"]] & set(codes[r["cohort"]])
    later = listed.filter(pc.not_equal(listed["performance_year"], PY))
    assert later.column("is_participant").null_count == later.num_rows  # only the PY's flags are known
    compared = ibis.memtable(comparable_list(listed))
    agreement = compare_with_participant_list(participant=ibis.memtable(participant), participant_list=compared,
                                              performance_year=PY).to_pyarrow().to_pylist()
    kinds = {k: sum(r["agreement"] == k for r in agreement) for k in ("computed_only", "cms_only")}
    planted = feeds.planted["participant_list"]
    assert kinds == {"computed_only": planted["computed_only"], "cms_only": planted["cms_only"]}
    assert planted["computed_only"] + planted["cms_only"] == PARAMS["participant_list"]["disagreements"]


def test_given_participants_are_listed_as_participants(small_world, participant, tmp_path) -> None:
    """Participants the caller supplies (here two of the world's LBP clinicians) are flagged Yes, except the
    planted flips; the comparison then also shows agreements and, when a participant is flipped, computed_only."""
    world, _ = small_world
    lbp = [r for r in participant.to_pylist() if r["cohort"] == "lbp"][:2]
    chosen = {r["npi"] for r in lbp}
    flags = [r["npi"] in chosen or bool(r["is_participant"]) for r in participant.to_pylist()]
    given = participant.set_column(participant.schema.get_field_index("is_participant"), "is_participant",
                                   pa.array(flags))
    summary = generate_model_feeds(world, tmp_path, PY, seed=7, participant=given)
    listed = read_participant_list(summary.files["participant_list"])
    yes = {r["npi"] for r in listed.to_pylist() if r["performance_year"] == PY and r["is_participant"]}
    planted = summary.planted["participant_list"]
    assert len(yes) == planted["listed_participants"] == len(chosen) - planted["computed_only"] + planted["cms_only"]
    agreement = compare_with_participant_list(
        participant=ibis.memtable(given), participant_list=ibis.memtable(comparable_list(listed)),
        performance_year=PY).to_pyarrow().to_pylist()
    assert sum(r["agreement"] == "both" for r in agreement) == len(chosen) - planted["computed_only"]


def test_feeds_name_only_the_worlds_clinicians(feeds, clinicians) -> None:
    lbp_codes = set(RULES.value("participation.specialty_codes")["lbp"])
    q220 = read_q220_file(feeds.files["q220"]).rows.to_pylist()
    assert {clinicians[(r["tin"], r["npi"])] for r in q220} <= lbp_codes
    assert all(r["patient_id"].endswith("-lbp") and r["source"] == "FOTO" for r in q220)
    world_npis = {npi for _, npi in clinicians}
    listed = read_participant_list(feeds.files["participant_list"])
    assert set(listed.column("npi").to_pylist()) <= world_npis
    assert all(s is None or len(s) == 2 for s in listed.column("state").to_pylist())


def test_unknown_performance_year_is_refused(small_world, tmp_path) -> None:
    world, _ = small_world
    with pytest.raises(ValueError, match="participant list covers"):
        generate_model_feeds(world, tmp_path, 2026, participant=pa.table({"npi": pa.array([], pa.string())}))
