"""Final score (§512.745, asm-model.md §6, §8.2): the §9 worked example from its inputs, reweighting, the zero
score, EUC, bonuses, bounds, hypothesis properties (bounds, monotone in quality and cost, deductions never raise
the score), the payment stage consuming the output, and DuckDB/PySpark parity of the whole chain."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openasm.engine import connect
from openasm.payment.adjustment import compute_payment_adjustment
from openasm.rules import RulesError, load_rules
from openasm.scoring.final_score import FINAL_SCORE_COLUMNS, compute_final_score, euc_findings, score_participants
from openasm.scoring.ia_pi_attestation import check_attestation_records
from tests.conftest import assert_tables_equal
from tests.scoring.test_ia_pi import PI_ALL, full_row

RULES = load_rules(2027)
BONUS_RULES = load_rules(2027, overrides={"scoring.small_practice_score_bonus": 0.10,
                                          "scoring.solo_practice_score_bonus": 0.15,
                                          "scoring.complex_patient_bonus_max": 10})


def _tin(npi: str) -> str:
    return f"{int(npi) % 1_000_000_000:09d}"


def inputs(rows):
    """Category tables from rows (npi, Q or None, min_submission_met or None = no quality row, C or None,
    IA points, PI points); TIN derived from the NPI; cohort hf."""
    npis = [r[0] for r in rows]
    participant = ibis.memtable({"performance_year": [2027] * len(rows), "npi": npis,
                                 "tin": [_tin(n) for n in npis], "cohort": ["hf"] * len(rows)})
    with_quality = [r for r in rows if r[2] is not None]
    quality = ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * len(with_quality), pa.int32()), "npi": [r[0] for r in with_quality],
        "tin": [_tin(r[0]) for r in with_quality], "cohort": ["hf"] * len(with_quality),
        "points_earned": pa.array([None if r[1] is None else r[1] / 2 for r in with_quality], pa.float64()),
        "points_available": pa.array([50.0] * len(with_quality), pa.float64()),
        "quality_score_pct": pa.array([r[1] for r in with_quality], pa.float64()),
        "min_submission_met": [r[2] for r in with_quality],
    }))
    cost = ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * len(rows), pa.int32()), "npi": npis, "tin": [_tin(n) for n in npis],
        "cohort": ["hf"] * len(rows), "cost_measure_id": ["COST_HF_1"] * len(rows),
        "cost_entity_level": ["tin_npi"] * len(rows), "cost_n_episodes": pa.array([40] * len(rows), pa.int64()),
        "cost_achievement_points": pa.array([None if r[3] is None else r[3] / 10 for r in rows], pa.float64()),
        "cost_score_pct": pa.array([r[3] for r in rows], pa.float64()),
        "is_cost_scorable": [r[3] is not None for r in rows],
        "cost_status": ["scored" if r[3] is not None else "below_case_minimum" for r in rows],
    }))
    deduction = ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * len(rows), pa.int32()), "tin": [_tin(n) for n in npis],
        "has_attestation": [True] * len(rows), "ia1_met": [r[4] < 10 for r in rows], "ia1_status": ["x"] * len(rows),
        "ia2_met": [r[4] < 20 for r in rows], "ia2_status": ["x"] * len(rows),
        "ia_unmet_activities": pa.array([int(r[4] // 10) for r in rows], pa.int32()),
        "ia_deduction_points": pa.array([float(r[4]) for r in rows], pa.float64()),
        "pi_met": [r[5] == 0 for r in rows], "pi_status": ["x"] * len(rows),
        "pi_unmet_objectives": pa.array([None] * len(rows), pa.string()),
        "has_pi_special_status": [False] * len(rows),
        "pi_deduction_points": pa.array([float(r[5]) for r in rows], pa.float64()),
    }))
    return {"participant": participant, "quality_category_score": quality, "cost_category_score": cost,
            "ia_pi_deduction": deduction}


def final(rows, rules=RULES, engine=None, **extra):
    expr = compute_final_score(**inputs(rows), rules=rules, **extra)
    own = engine or connect("duckdb")
    try:
        table = own.fetch(expr)
    finally:
        if engine is None:
            own.close()
    assert tuple(table.column_names) == FINAL_SCORE_COLUMNS
    return {r["npi"]: r for r in table.to_pylist()}


# ------------------------------------------------------------------------------------------- worked example
def test_worked_example_participant_a_and_f_from_their_inputs():
    """§9: A has quality 30.10/50 → 60.2, COST_HF_1 6.80 points (34 episodes) → 68.0, IA-1 and IA-2 met, PI not
    met (PDMP query missing, no exclusion) → FS = 0.5 × 60.2 + 0.5 × 68.0 − 0 − 10 = 54.1. F has no valid
    quality submission → FS = 0. (B-E are given only as final scores in §9, not as inputs.)"""
    a_tin, f_tin = "100000001", "100000006"
    attestation = check_attestation_records(
        [(1, full_row(a_tin, pi_measures=PI_ALL.replace("PI_EP_2;", ""))), (2, full_row(f_tin))],
        source_file="att.csv", rules=RULES)
    participant = ibis.memtable({"performance_year": [2027, 2027], "npi": ["1000000001", "1000000006"],
                                 "tin": [a_tin, f_tin], "cohort": ["hf", "hf"]})
    quality = ibis.memtable({"performance_year": [2027, 2027], "npi": ["1000000001", "1000000006"],
                             "tin": [a_tin, f_tin], "cohort": ["hf", "hf"], "points_earned": [30.10, 0.0],
                             "points_available": [50.0, 50.0], "quality_score_pct": [60.2, 0.0],
                             "min_submission_met": [True, False]})
    measure_score = ibis.memtable({
        "measure_id": ["COST_HF_1", "COST_HF_1"], "entity_level": ["tin_npi", "tin_npi"],
        "billing_tin": [a_tin, f_tin], "rendering_npi": ["1000000001", "1000000006"], "n_episodes": [34, 50],
        "meets_case_minimum": [True, True], "achievement_points": [6.80, 9.0]})
    expr = score_participants(participant=participant, quality_category_score=quality, measure_score=measure_score,
                              attestation=ibis.memtable(attestation.attestation),
                              attestation_item=ibis.memtable(attestation.attestation_item), rules=RULES)
    engine = connect("duckdb")
    got = {r["npi"]: r for r in engine.fetch(expr).to_pylist()}
    engine.close()
    a, f = got["1000000001"], got["1000000006"]
    assert (a["quality_score_pct"], a["cost_score_pct"]) == (pytest.approx(60.2), pytest.approx(68.0))
    assert (a["ia_deduction_points"], a["pi_deduction_points"], a["pi_unmet_objectives"]) == (
        0.0, 10.0, "electronic_prescribing")
    assert a["final_score"] == pytest.approx(54.1, abs=1e-9) and not a["is_zero_score"]
    assert (f["final_score"], f["zero_score_reason"], f["cost_score_pct"]) == (0.0, "no_quality_submission",
                                                                              pytest.approx(90.0))


# ------------------------------------------------------------------------------------------- golden cases
GOLDEN = [  # npi, Q, min_submission_met, C, IA, PI
    ("1000000001", 60.2, True, 68.0, 0, 10),   # 0.5 × 60.2 + 0.5 × 68.0 − 10 = 54.1
    ("1000000002", 70.0, True, None, 10, 0),   # cost unscorable: 1.0 × 70 − 10 = 60
    ("1000000003", None, True, 80.0, 0, 0),    # no scorable quality measure: 1.0 × 80 = 80
    ("1000000004", None, True, None, 20, 10),  # neither scorable: neutral, no score
    ("1000000005", 95.0, False, 90.0, 0, 0),   # no valid quality submission: 0
    ("1000000006", 10.0, True, 10.0, 20, 10),  # 10 − 20 − 10 = −20 ≤ 0: 0
    ("1000000007", None, None, 90.0, 0, 0),    # no quality row at all = no submission: 0
    ("1000000008", 100.0, True, 100.0, 0, 0),  # 100
    ("1000000009", 40.0, True, 30.0, 20, 10),  # 20 + 15 − 30 = 5
]
GOLDEN_EXPECT = {  # npi: (w_Q, w_C, final, zero reason, neutral)
    "1000000001": (0.5, 0.5, 54.1, None, False), "1000000002": (1.0, 0.0, 60.0, None, False),
    "1000000003": (0.0, 1.0, 80.0, None, False), "1000000004": (0.0, 0.0, None, None, True),
    "1000000005": (0.5, 0.5, 0.0, "no_quality_submission", False),
    "1000000006": (0.5, 0.5, 0.0, "score_nonpositive", False),
    "1000000007": (0.5, 0.5, 0.0, "no_quality_submission", False),  # non-submission does not reweight
    "1000000008": (0.5, 0.5, 100.0, None, False), "1000000009": (0.5, 0.5, 5.0, None, False),
}


def test_golden_reweighting_zero_score_and_bounds():
    got = final(GOLDEN)
    for npi, (w_q, w_c, score, zero, neutral) in GOLDEN_EXPECT.items():
        row = got[npi]
        assert (row["quality_weight_used"], row["cost_weight_used"]) == (w_q, w_c), npi
        assert row["final_score"] == (None if score is None else pytest.approx(score, abs=1e-9)), npi
        assert (row["zero_score_reason"], row["is_neutral"], row["is_zero_score"]) == (zero, neutral, zero is not None)
    assert got["1000000004"]["neutral_reason"] == (
        "no scorable category (quality: no_scorable_measure, cost: below_case_minimum)")
    assert got["1000000005"]["quality_status"] == "no_submission" and got["1000000007"]["min_submission_met"] is False
    assert got["1000000006"]["raw_score"] == pytest.approx(-20.0)
    assert got["1000000002"]["weight_basis"] == "quality_only" and got["1000000003"]["weight_basis"] == "cost_only"


def test_other_weights_follow_the_parameters():
    rules = load_rules(2027, overrides={"quality.weight": 0.4, "cost.weight": 0.6})
    got = final(GOLDEN[:2], rules=rules)
    assert got["1000000001"]["final_score"] == pytest.approx(0.4 * 60.2 + 0.6 * 68.0 - 10)  # 54.88
    assert got["1000000002"]["final_score"] == pytest.approx(60.0)  # reweighted: 1.0 × 70 − 10
    with pytest.raises(RulesError, match="must be 1"):
        final(GOLDEN[:1], rules=load_rules(2027, overrides={"quality.weight": 0.6}))


def test_unimplemented_rule_values_are_refused():
    with pytest.raises(RulesError, match="zero_score_if_raw_nonpositive"):
        final(GOLDEN[:1], rules=load_rules(2027, overrides={"scoring.zero_score_if_raw_nonpositive": False}))


def test_missing_category_rows_are_not_lenient():
    rows = [("1000000031", 60.0, True, 80.0, 0, 0), ("1000000032", 60.0, True, 80.0, 0, 0)]
    tables = inputs(rows)
    tables["cost_category_score"] = tables["cost_category_score"].filter(lambda t: t.npi != "1000000032")
    tables["ia_pi_deduction"] = tables["ia_pi_deduction"].filter(lambda t: t.tin != _tin("1000000031"))
    engine = connect("duckdb")
    got = {r["npi"]: r for r in engine.fetch(compute_final_score(**tables, rules=RULES)).to_pylist()}
    engine.close()
    # 31: no deduction row → IA 20 + PI 10: 0.5 × 60 + 0.5 × 80 − 30 = 40
    assert (got["1000000031"]["final_score"], got["1000000031"]["has_attestation"]) == (pytest.approx(40.0), False)
    # 32: no cost row → cost unscorable, quality only: 1.0 × 60 = 60
    assert (got["1000000032"]["final_score"], got["1000000032"]["cost_status"]) == (
        pytest.approx(60.0), "no_cost_category_row")


# ------------------------------------------------------------------------------------------- EUC
def test_euc_reweights_affected_categories():
    rows = [("1000000011", None, False, 75.0, 10, 0),   # EUC quality (by TIN): 1.0 × 75 − 10 = 65
            ("1000000012", 50.0, True, 50.0, 20, 10),   # EUC all (by NPI): neutral
            ("1000000013", 50.0, True, 50.0, 20, 10),   # EUC ia and pi (by TIN + NPI): 50 − 0 − 0 = 50
            ("1000000014", 50.0, True, 60.0, 20, 10),   # EUC cost for another NPI of a different TIN: 55 − 30 = 25
            ("1000000015", 80.0, True, 60.0, 0, 0)]     # EUC cost (by NPI): 1.0 × 80 = 80
    euc = ibis.memtable(pa.table({
        "performance_year": pa.array([2027, 2027, 2027, 2027, 2027, 2028], pa.int32()),
        "tin": pa.array([_tin("1000000011"), None, _tin("1000000013"), _tin("1000000013"), None, None], pa.string()),
        "npi": pa.array([None, "1000000012", "1000000013", "1000000013", "1000000015", "1000000014"], pa.string()),
        "category": ["quality", "ALL", "ia", "pi", "cost", "cost"],   # last row: PY2028, not this run
    }))
    got = final(rows, euc=euc)
    assert (got["1000000011"]["final_score"], got["1000000011"]["quality_status"]) == (pytest.approx(65.0), "euc")
    assert got["1000000012"]["is_neutral"] and got["1000000012"]["final_score"] is None
    assert got["1000000012"]["neutral_reason"] == "no scorable category (quality: euc, cost: euc)"
    assert (got["1000000013"]["final_score"], got["1000000013"]["ia_deduction_points"]) == (pytest.approx(50.0), 0.0)
    assert got["1000000014"]["final_score"] == pytest.approx(25.0) and not got["1000000014"]["is_euc_cost"]
    assert (got["1000000015"]["final_score"], got["1000000015"]["cost_status"]) == (pytest.approx(80.0), "euc")


def test_euc_findings_flag_rows_that_cannot_apply():
    euc = ibis.memtable(pa.table({"performance_year": [2027, 2027, 2027],
                                  "tin": pa.array(["1", None, None], pa.string()),
                                  "npi": pa.array([None, None, "2"], pa.string()),
                                  "category": ["cost", "ia", "flood"]}))
    engine = connect("duckdb")
    got = engine.fetch(euc_findings(euc=euc)).to_pylist()
    engine.close()
    assert sorted(r["reason"] for r in got) == ["category must be one of quality, cost, ia, pi, all",
                                                "neither tin nor npi given"]


# ------------------------------------------------------------------------------------------- bonuses
BONUS_ROWS = [  # Q 60, C 80 → weighted 70
    ("1000000021", 60.0, True, 80.0, 0, 10),   # small (12): (70 − 10) × 1.10 = 66.0, bonus 6.0
    ("1000000022", 60.0, True, 80.0, 0, 0),    # solo (1): 70 × 1.15 = 80.5 (larger factor, not cumulative)
    ("1000000023", 60.0, True, 80.0, 0, 0),    # large (40): 70
    ("1000000024", 60.0, True, 80.0, 0, 0),    # small + complex 12 → capped 10: (70 + 10) × 1.10 = 88.0
    ("1000000025", 100.0, True, 90.0, 0, 0),   # solo: 95 × 1.15 = 109.25 → clamped to 100
    ("1000000026", 10.0, True, 10.0, 20, 10),  # small, 10 − 30 = −20: no bonus on a non-positive score → 0
]
PRACTICE = pa.table({"tin": [_tin(r[0]) for r in BONUS_ROWS], "clinician_count": [12, 1, 40, 12, 1, 12]})
COMPLEX = pa.table({"performance_year": [2027], "npi": ["1000000024"], "complex_patient_points": [12.0]})


def test_bonuses_per_the_rules():
    got = final(BONUS_ROWS, rules=BONUS_RULES, practice_size=ibis.memtable(PRACTICE),
                complex_patient_bonus=ibis.memtable(COMPLEX))
    expect = {"1000000021": (66.0, 0.10, 6.0, 0.0), "1000000022": (80.5, 0.15, 10.5, 0.0),
              "1000000023": (70.0, 0.0, 0.0, 0.0), "1000000024": (88.0, 0.10, 8.0, 10.0),
              "1000000025": (100.0, 0.15, 14.25, 0.0), "1000000026": (0.0, 0.10, 0.0, 0.0)}
    for npi, (score, factor, practice_points, complex_points) in expect.items():
        row = got[npi]
        assert row["final_score"] == pytest.approx(score), npi
        assert row["practice_size_bonus_factor"] == pytest.approx(factor)
        assert row["practice_size_bonus_points"] == pytest.approx(practice_points)
        assert row["complex_patient_bonus_points"] == pytest.approx(complex_points)
        assert row["bonus_points"] == pytest.approx(practice_points + complex_points)
    assert got["1000000022"]["is_solo_practice"] and got["1000000022"]["is_small_practice"]
    assert got["1000000026"]["zero_score_reason"] == "score_nonpositive"


def test_bonuses_are_off_by_default_and_flags_work():
    flags = pa.table({"tin": [_tin(r[0]) for r in BONUS_ROWS], "is_small_practice": [True] * 6})
    got = final(BONUS_ROWS, practice_size=ibis.memtable(flags), complex_patient_bonus=ibis.memtable(COMPLEX))
    assert got["1000000021"]["final_score"] == pytest.approx(60.0) and got["1000000021"]["is_small_practice"]
    assert got["1000000024"]["bonus_points"] == 0.0  # complex bonus max 0 by default
    with pytest.raises(ValueError, match="practice_size needs"):
        final(BONUS_ROWS, practice_size=ibis.memtable({"tin": ["1"], "size": [3]}))


# ------------------------------------------------------------------------------------------- properties
score = st.one_of(st.none(), st.floats(0, 100, allow_nan=False))
participant_case = st.tuples(score, st.sampled_from([True, False, None]), score, st.sampled_from([0, 10, 20]),
                             st.sampled_from([0, 10]), st.integers(1, 30), st.floats(0, 15, allow_nan=False),
                             st.floats(0, 30, allow_nan=False), st.floats(0, 30, allow_nan=False))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases=st.lists(participant_case, min_size=1, max_size=8),
       small=st.floats(0, 0.3, allow_nan=False), solo=st.floats(0, 0.3, allow_nan=False),
       complex_max=st.floats(0, 10, allow_nan=False))
def test_properties_bounds_monotonicity_and_deductions(cases, small, solo, complex_max):
    rules = load_rules(2027, overrides={"scoring.small_practice_score_bonus": small,
                                        "scoring.solo_practice_score_bonus": solo,
                                        "scoring.complex_patient_bonus_max": complex_max})
    rows, sizes, complex_points, variants = [], [], [], []
    for i, (q, met, c, ia, pi, clinicians, complex_in, dq, dc) in enumerate(cases):
        base = f"1{i:02d}0000000"
        variant_rows = {  # each variant changes one thing from the base participant
            "base": (q, met, c, ia, pi), "q_up": (None if q is None else min(100.0, q + dq), met, c, ia, pi),
            "c_up": (q, met, None if c is None else min(100.0, c + dc), ia, pi),
            "more_deduction": (q, met, c, 20, 10),
        }
        for k, (name, values) in enumerate(variant_rows.items()):
            npi = f"{base[:-1]}{k}"
            rows.append((npi, *values))
            sizes.append((_tin(npi), clinicians))
            complex_points.append((npi, complex_in))
            variants.append((i, name, npi))
    got = final(rows, rules=rules,
                practice_size=ibis.memtable({"tin": [s[0] for s in sizes], "clinician_count": [s[1] for s in sizes]}),
                complex_patient_bonus=ibis.memtable({"performance_year": [2027] * len(complex_points),
                                                     "npi": [c[0] for c in complex_points],
                                                     "complex_patient_points": [c[1] for c in complex_points]}))
    by_case: dict[int, dict[str, dict]] = {}
    for i, name, npi in variants:
        by_case.setdefault(i, {})[name] = got[npi]
    for case in by_case.values():
        for row in case.values():
            if row["is_neutral"]:
                assert row["final_score"] is None
            else:
                assert 0.0 <= row["final_score"] <= 100.0
        base = case["base"]
        if base["is_neutral"]:
            continue
        eps = 1e-9
        assert case["q_up"]["final_score"] >= base["final_score"] - eps           # monotone in quality
        assert case["c_up"]["final_score"] >= base["final_score"] - eps           # monotone in cost
        assert case["more_deduction"]["final_score"] <= base["final_score"] + eps  # deductions never raise it


# ------------------------------------------------------------------------------------------- contract, backends
def test_payment_stage_consumes_the_output():
    engine = connect("duckdb")
    try:
        scored = compute_final_score(**inputs(GOLDEN), rules=RULES)
        with_pb = scored.mutate(part_b_paid_amount=ibis.literal(100_000.0))
        got = {r["npi"]: r for r in engine.fetch(compute_payment_adjustment(participant_score=with_pb,
                                                                            rules=RULES)).to_pylist()}
    finally:
        engine.close()
    assert got["1000000004"]["adjustment_factor"] == 0.0                          # neutral: no adjustment
    assert got["1000000005"]["adjustment_factor"] == pytest.approx(-0.09)         # FS = 0: −RL (PaY 2029)
    assert got["1000000008"]["adjustment_factor"] > 0 > got["1000000009"]["adjustment_factor"]


def _chain(engine):
    attestation = check_attestation_records(
        [(1, full_row("100000001", pi_measures=PI_ALL.replace("PI_EP_2;", ""))), (2, full_row("100000002")),
         (3, full_row("100000003", ia2_attested="false"))], source_file="att.csv", rules=BONUS_RULES)
    tables = {
        "participant": pa.table({"performance_year": pa.array([2027] * 4, pa.int32()),
                                 "npi": ["1000000001", "1000000002", "1000000003", "1000000004"],
                                 "tin": ["100000001", "100000002", "100000003", "100000004"],
                                 "cohort": ["hf", "lbp", "hf", "lbp"]}),
        "quality_category_score": pa.table({
            "performance_year": pa.array([2027] * 3, pa.int32()), "npi": ["1000000001", "1000000002", "1000000003"],
            "tin": ["100000001", "100000002", "100000003"], "cohort": ["hf", "lbp", "hf"],
            "points_earned": [30.1, 20.0, 0.0], "points_available": [50.0, 40.0, 0.0],
            "quality_score_pct": pa.array([60.2, 50.0, None], pa.float64()), "min_submission_met": [True] * 3}),
        "measure_score": pa.table({
            "measure_id": ["COST_HF_1", "COST_LBP_1", "COST_HF_1"], "entity_level": ["tin_npi"] * 3,
            "billing_tin": ["100000001", "100000002", "100000003"],
            "rendering_npi": ["1000000001", "1000000002", "1000000003"], "n_episodes": [34, 21, 19],
            "meets_case_minimum": [True, True, False],
            "achievement_points": pa.array([6.8, 7.25, None], pa.float64())}),
        "attestation": attestation.attestation, "attestation_item": attestation.attestation_item,
        "euc": pa.table({"performance_year": pa.array([2027], pa.int32()), "tin": ["100000004"],
                         "npi": pa.array([None], pa.string()), "category": ["all"]}),
        "practice_size": pa.table({"tin": ["100000002"], "clinician_count": [1]}),
        "complex_patient_bonus": pa.table({"performance_year": pa.array([2027], pa.int32()), "npi": ["1000000001"],
                                           "complex_patient_points": [3.5]}),
    }
    stored = {name: engine.save(f"scoring_{name}", ibis.memtable(t)) for name, t in tables.items()}
    return engine.fetch(score_participants(**stored, rules=BONUS_RULES))


def test_whole_chain_on_each_backend(backend, engine_for):
    got = _chain(engine_for(backend))
    reference_engine = connect("duckdb")
    try:
        reference = _chain(reference_engine)
    finally:
        reference_engine.close()
    assert_tables_equal(got, reference, float_tol=1e-12)
    rows = {r["npi"]: r for r in got.to_pylist()}
    assert rows["1000000001"]["final_score"] == pytest.approx(57.6)   # §9 A: 54.1, + complex 3.5 (no size flag)
    # 0.5 × 50 + 0.5 × 72.5 = 61.25; solo: 61.25 × 1.15 = 70.4375 (IA and PI met)
    assert rows["1000000002"]["final_score"] == pytest.approx(70.4375)
    assert rows["1000000003"]["is_neutral"]                            # no quality measure, cost below minimum
    assert rows["1000000004"]["is_neutral"] and rows["1000000004"]["neutral_reason"].startswith(
        "no scorable category (quality: euc")
