"""Quality measure scores and the quality category score (quality.md §2.1–§2.6; asm-model.md §3.2): statuses and the
unscorable policies, the best collection type, small-practice TIN-level results, Q492 CMS points or the Admin
benchmark, the minimum-submission rule and the category arithmetic, on both backends (and DuckDB = PySpark on the
whole output)."""

from __future__ import annotations

import pytest

from openasm.engine import BACKENDS, connect
from openasm.rules import RulesError, load_rules
from openasm.scoring.quality_category import MEASURE_SCORE_COLUMNS, score_quality

from ..conftest import assert_tables_equal
from .test_quality_support import aggregate, mips_rules, participants, result, run

EHR, CQM, ADMIN = "electronicHealthRecord", "registry", "administrativeClaims"
Q134_EHR_50 = 6 + 7.315 / 11.25          # 6.650222: decile 6 of the PY2026 Q134 eCQM benchmark
Q008_CQM_99 = 2 + 3.21 / 4.21            # 2.762470
Q377_EHR_01 = 1 + 0.1 / 0.17             # 1.588235
Q492_ADMIN_70 = 6 + (71.12 - 70) / (71.12 - 68.98)   # inverse, U_6 = p50 71.12, U_7 = p40 68.98: 6.523364


def _scenario_rows():
    return [
        # L1 (LBP, TIN T1, alone: a small practice)
        result("134", EHR, "L1", rate=50.0),                                           # scored 6.6502
        result("134", CQM, "L1", met=60, not_met=14, eligible_population=100),         # DC 0.74 → zero_dc
        result("238", CQM, "L1", met=1, not_met=18),                                   # 19 cases → excluded
        result("238", EHR, "L1", rate=3.0, stratum="appropriateDiagnosis"),            # not the scored stratum
        result("128", "claims", "L1", rate=70.0),                                      # claims not allowed (default)
        result("220", CQM, "L1", rate=80.0, is_proxy=True),                            # proxies are never scored
        # H1 (HF, T2)
        result("008", CQM, "H1", rate=99.0, tin="T2"),
        result("236", CQM, "H1", rate=72.5, tin="T2"),
        result("377", EHR, "H1", rate=0.1, tin="T2"),
        result("492", ADMIN, "H1", tin="T2", performance_rate=55.0, case_count=40, cms_achievement_points=5.0,
               cms_scored_flag=True, eligible_population=None, exclusions=None, exceptions=None),
        # H2 (HF, T3): Q492 without CMS points; the only reported eCQM fails data completeness
        result("492", ADMIN, "H2", tin="T3", performance_rate=70.0, case_count=40, cms_scored_flag=True,
               eligible_population=None, exclusions=None, exceptions=None),
        result("008", EHR, "H2", met=30, not_met=10, eligible_population=80, tin="T3"),   # DC 0.5
        # H4 (HF, T4): everything below the case minimum, Q492 absent
        *[result(m, EHR, "H4", met=5, not_met=5, tin="T4") for m in ("008", "005", "236", "377")],
        # Rows that reach nobody or are rejected
        result("134", EHR, "ZZ", rate=50.0, tin="T1"),                                 # not a participant
        result("134", EHR, None, rate=50.0, tin="T404"),                               # TIN-level, no participant
        result("008", EHR, "H1", met=50, not_met=50, exclusions=10, eligible_population=100, tin="T2"),  # > EP
        result("134", EHR, "H1", rate=90.0, tin="T2", cohort="hf"),                    # not an HF measure
    ]


def _scenario():
    """Participants and results of PY2026 (MIPS PY2026 benchmarks, 7-point cap)."""
    rows = _scenario_rows()
    people = [("L1", "T1", "lbp"), ("H1", "T2", "hf"), ("H2", "T3", "hf"), ("H4", "T4", "hf")]
    return aggregate(rows), participants(people)


def _score(engine, rules, measure_aggregate=None, participant=None):
    if measure_aggregate is None:
        measure_aggregate, participant = _scenario()
    out = score_quality(measure_aggregate=measure_aggregate, participant=participant, rules=rules,
                        materialize=engine.save)
    scores = run(engine, out["quality_measure_score"])
    category = {r["npi"]: r for r in run(engine, out["quality_category_score"])}
    return scores, category


@pytest.fixture(scope="module", params=[pytest.param(b, marks=[pytest.mark.spark] if b == "pyspark" else [])
                                        for b in BACKENDS])
def scenario(request, tmp_path_factory):
    """The `_scenario` scored once per backend under the §2.6 setting: (measure scores, category by NPI)."""
    engine = connect(request.param, tmp_path_factory.mktemp(f"quality-{request.param}"))
    yield _score(engine, mips_rules())
    engine.close()


def _winner(scores, npi, measure_id):
    (row,) = [r for r in scores if r["npi"] == npi and r["measure_id"] == measure_id and r["is_winner"]]
    return row


def _rows(scores, **match):
    return [r for r in scores if all(r[k] == v for k, v in match.items())]


def test_statuses_and_the_asm_policy(scenario) -> None:
    scores, category = scenario
    assert _winner(scores, "L1", "134")["collection_type"] == EHR
    assert _winner(scores, "L1", "134")["achievement_points"] == pytest.approx(Q134_EHR_50)
    (dc,) = _rows(scores, npi="L1", measure_id="134", collection_type=CQM)
    assert (dc["status"], dc["is_counted"], dc["achievement_points"], dc["winning_collection_type"]) == \
        ("zero_dc", False, 0.0, EHR)        # counted as 0, but EHR scores higher and wins
    assert dc["data_completeness"] == pytest.approx(0.74) and not dc["meets_dc"]
    q238 = _winner(scores, "L1", "238")
    assert (q238["status"], q238["is_counted"], q238["case_count"]) == ("excluded_case_min", False, 19)
    assert _rows(scores, npi="L1", measure_id="238", stratum="appropriateDiagnosis")[0]["status"] == "stratum_not_scored"
    assert _rows(scores, npi="L1", measure_id="128", collection_type="claims")[0]["status"] == \
        "collection_type_not_allowed"
    assert _rows(scores, npi="L1", measure_id="220", collection_type=CQM)[0]["status"] == "proxy_not_scored"
    for measure_id in ("128", "220"):       # nothing eligible: not reported, 0 points in the denominator
        row = _winner(scores, "L1", measure_id)
        assert (row["status"], row["is_counted"], row["achievement_points"], row["collection_type"]) == \
            ("not_reported", True, 0.0, None)
    l1 = category["L1"]
    # Counted: 134 (6.650222), 128 (0), 220 (0); 238 excluded. 6.650222 / 30 × 100 = 22.16741 %.
    assert (l1["measures_counted"], l1["measures_scored"], l1["measures_zero"], l1["measures_excluded"]) == (3, 1, 2, 1)
    assert l1["points_available"] == 30.0 and l1["quality_score_pct"] == pytest.approx(100 * Q134_EHR_50 / 30)
    assert l1["quality_score_pct_display"] == 22.17 and l1["min_submission_met"]


def test_unmatched_and_rejected_rows_are_kept_with_a_reason(scenario) -> None:
    scores, _ = scenario
    assert _rows(scores, npi="ZZ")[0]["status"] == "no_participant"
    (orphan,) = _rows(scores, tin="T404")
    assert (orphan["status"], orphan["npi"], orphan["entity_level"]) == ("no_participant", None, "tin")
    (rejected,) = _rows(scores, npi="H1", measure_id="008", collection_type=EHR)
    assert rejected["status"] == "rejected_counts" and not rejected["is_counted"]
    assert _rows(scores, npi="H1", measure_id="134")[0]["status"] == "not_in_measure_set"
    assert _winner(scores, "H1", "008")["collection_type"] == CQM        # the rejected EHR row never competes
    # Every input row is in the output (TIN-level rows once per NPI reached; here none reach more than one).
    assert len([r for r in scores if r["collection_type"] is not None]) == len(_scenario_rows())


def test_hf_category_arithmetic_with_cms_points(scenario) -> None:
    scores, category = scenario
    q492 = _winner(scores, "H1", "492")
    assert (q492["status"], q492["benchmark_source"], q492["achievement_points"], q492["capped_flag"]) == \
        ("scored", "cms_supplied", 5.0, False)
    assert q492["decile"] is None and q492["meets_dc"]                   # DC is not applied to Q492
    assert _winner(scores, "H1", "008")["achievement_points"] == pytest.approx(Q008_CQM_99)
    assert _winner(scores, "H1", "236")["achievement_points"] == pytest.approx(8.25)
    assert _winner(scores, "H1", "377")["achievement_points"] == pytest.approx(Q377_EHR_01)
    assert _winner(scores, "H1", "005")["status"] == "not_reported"
    h1 = category["H1"]
    earned = Q008_CQM_99 + 8.25 + Q377_EHR_01 + 0.0 + 5.0                # 17.600706 of 50 → 35.201411 %
    assert h1["points_earned"] == pytest.approx(earned) and h1["points_available"] == 50.0
    assert h1["quality_score_pct"] == pytest.approx(100 * earned / 50) and h1["quality_score_pct_display"] == 35.2


def test_q492_against_the_admin_benchmark_and_the_minimum_submission(scenario) -> None:
    scores, category = scenario
    q492 = _winner(scores, "H2", "492")
    assert (q492["benchmark_source"], q492["decile"], q492["is_inverse"]) == ("mips_historical", 6, True)
    assert q492["achievement_points"] == pytest.approx(Q492_ADMIN_70)
    assert _winner(scores, "H2", "008")["status"] == "zero_dc"
    h2 = category["H2"]                     # no non-admin result meets data completeness: score 0 (final score 0)
    assert not h2["min_submission_met"] and h2["quality_score_pct"] == 0.0
    assert h2["points_earned"] == pytest.approx(Q492_ADMIN_70)
    h4 = category["H4"]                     # everything excluded, Q492 not calculated: nothing counted → null
    assert h4["min_submission_met"] and h4["quality_score_pct"] is None and h4["measures_counted"] == 0
    assert _winner(scores, "H4", "492")["status"] == "not_calculated"
    assert not _winner(scores, "H4", "492")["is_counted"]


def test_q492_points_source_switch(engine_for) -> None:
    engine = engine_for("duckdb")
    scores, _ = _score(engine, mips_rules(**{"quality.q492_points_source": "benchmark_only"}))
    # H1's rate 55 is below p10 = 60.42 → decile 10: the benchmark, not CMS's 5 points.
    assert _winner(scores, "H1", "492")["achievement_points"] == 10.0
    scores, _ = _score(engine, mips_rules(**{"quality.q492_points_source": "cms_only"}))
    assert _winner(scores, "H1", "492")["achievement_points"] == 5.0
    assert _winner(scores, "H2", "492")["status"] == "excluded_no_benchmark"
    rows = [result("492", ADMIN, "H1", tin="T2", performance_rate=70.0, case_count=12, cms_achievement_points=4.0,
                   cms_scored_flag=False, eligible_population=None, exclusions=None, exceptions=None)]
    scores, _ = _score(engine, mips_rules(), aggregate(rows), participants([("H1", "T2", "hf")]))
    assert _winner(scores, "H1", "492")["status"] == "excluded_case_min"     # CMS says not scored


@pytest.mark.parametrize("overrides, counted, earned, pct", [
    # below_case_minimum_policy = zero_in_denominator: 238 counts 0 → 6.650222 / 40
    ({"quality.below_case_minimum_policy": "zero_in_denominator"}, 4, Q134_EHR_50, 100 * Q134_EHR_50 / 40),
    # claims allowed: 128 claims has no PY2026 benchmark (BR-009) → excluded instead of not reported → / 20
    ({"quality.allowed_collection_types": [EHR, CQM, "claims", ADMIN]}, 2, Q134_EHR_50, 100 * Q134_EHR_50 / 20),
    # MIPS reference: small practice gets 3 for the excluded 238 (134 registry's 3 loses to EHR) → 9.650222 / 40
    ({"quality.unscorable_policy": "mips"}, 4, Q134_EHR_50 + 3, 100 * (Q134_EHR_50 + 3) / 40),
])
def test_unscorable_policy_switches(engine_for, overrides, counted, earned, pct) -> None:
    _, category = _score(engine_for("duckdb"), mips_rules(**overrides))
    l1 = category["L1"]
    assert l1["measures_counted"] == counted
    assert l1["points_earned"] == pytest.approx(earned) and l1["quality_score_pct"] == pytest.approx(pct)


def test_highest_collection_type_wins_and_ties_are_deterministic(engine_for) -> None:
    engine = engine_for("duckdb")
    rows = [result("134", EHR, "L1", rate=50.0), result("134", CQM, "L1", rate=100.0)]
    people = participants([("L1", "T1", "lbp")])
    capped, _ = _score(engine, mips_rules(), aggregate(rows), people)
    assert _winner(capped, "L1", "134")["collection_type"] == CQM                 # 7 (cap) beats 6.6502
    assert _winner(capped, "L1", "134")["capped_flag"]
    rows = [result("134", EHR, "L1", rate=100.0), result("134", CQM, "L1", rate=100.0)]
    tied, category = _score(engine, load_rules(2027, overrides={"quality.benchmark_population": "mips_historical"}),
                            aggregate(rows), people)
    assert [r["collection_type"] for r in tied if r["measure_id"] == "134" and r["is_counted"]] == [EHR]
    assert category["L1"]["points_earned"] == 10.0                              # counted once


def test_cms_tin_level_q492_reaches_every_npi_of_a_large_practice(engine_for) -> None:
    rows = [result("492", ADMIN, None, tin="T7", performance_rate=70.0, case_count=400, cms_scored_flag=True,
                   eligible_population=None, exclusions=None, exceptions=None)]
    people = [(f"C{i:02d}", "T7", "hf") for i in range(16)]                    # not a small practice
    scores, _ = _score(engine_for("duckdb"), mips_rules(), aggregate(rows), participants(people))
    reached = [r for r in scores if r["measure_id"] == "492" and r["is_winner"]]
    assert len(reached) == 16 and {r["status"] for r in reached} == {"scored"}
    assert {r["entity_level"] for r in reached} == {"tin"}
    assert reached[0]["achievement_points"] == pytest.approx(Q492_ADMIN_70)


def test_empty_eligible_population_is_excluded_not_zero(engine_for) -> None:
    rows = [result("134", EHR, "L1", met=0, not_met=0, eligible_population=0, data_completeness=None)]
    scores, category = _score(engine_for("duckdb"), mips_rules(), aggregate(rows), participants([("L1", "T1", "lbp")]))
    row = _winner(scores, "L1", "134")
    assert (row["status"], row["meets_dc"], row["performance_rate"], row["is_counted"]) == \
        ("excluded_case_min", True, None, False)         # DC 0/0 is vacuous; no rate → fails the case minimum
    assert category["L1"]["min_submission_met"] and category["L1"]["measures_counted"] == 3   # 238, 128, 220


def test_small_practice_tin_level_results(backend, engine_for) -> None:
    engine = engine_for(backend)
    rows = [
        result("134", EHR, None, rate=50.0, tin="T5"),            # small practice (3 NPIs): reaches S1, S2, S3
        result("134", EHR, "S1", rate=93.44, tin="T5"),           # S1's own submission earns 10 and wins
        result("134", EHR, None, rate=50.0, tin="T6"),            # 16 NPIs: not a small practice
    ]
    people = [(f"S{i}", "T5", "lbp") for i in (1, 2, 3)] + [(f"B{i:02d}", "T6", "lbp") for i in range(16)]
    scores, _ = _score(engine, mips_rules(), aggregate(rows), participants(people))
    assert _winner(scores, "S1", "134")["entity_level"] == "tin_npi"
    assert _winner(scores, "S1", "134")["achievement_points"] == 10.0
    for npi in ("S2", "S3"):
        row = _winner(scores, npi, "134")
        assert (row["entity_level"], row["npi_submitted"], row["is_small_practice"]) == ("tin", None, True)
        assert row["achievement_points"] == pytest.approx(Q134_EHR_50)
    large = _rows(scores, tin="T6", entity_level="tin")
    assert len(large) == 16 and {r["status"] for r in large} == {"tin_level_not_allowed"}
    assert _winner(scores, "B00", "134")["status"] == "not_reported"
    # The CMS small-practice flag overrides the head count; the reporting switch turns TIN level off.
    flagged = [(n, t, c, t == "T6") for n, t, c in people]
    scores, _ = _score(engine, mips_rules(), aggregate(rows), participants(flagged, with_flag=True))
    assert _winner(scores, "B00", "134")["status"] == "scored"
    scores, _ = _score(engine, mips_rules(**{"quality.small_practice_tin_reporting": False}), aggregate(rows),
                       participants(people))
    assert _winner(scores, "S2", "134")["status"] == "not_reported"


def test_normative_vectors_through_the_pipeline(backend, engine_for) -> None:
    """quality.md §2.6 end to end: each vector is one participant's only result for that measure."""
    vectors = [("134", EHR, 50.0, 6, Q134_EHR_50, Q134_EHR_50), ("134", CQM, 100.0, 10, 10.0, 7.0),
               ("008", CQM, 99.0, 2, Q008_CQM_99, Q008_CQM_99), ("238", EHR, 3.0, 4, 4 + 2.23 / 3.21, 4 + 2.23 / 3.21),
               ("238", EHR, 0.0, 10, 10.0, 7.0), ("238", EHR, 20.0, 1, 1 + 80 / 84.15, 1 + 80 / 84.15),
               ("238", CQM, 0.01, 2, 2.5, 2.5), ("236", CQM, 72.5, 8, 8.25, 8.25),
               ("377", EHR, 0.1, 1, Q377_EHR_01, Q377_EHR_01)]
    rows = [result(m, c, f"V{i}", rate=rate, tin=f"TV{i}") for i, (m, c, rate, *_) in enumerate(vectors)]
    people = [(f"V{i}", f"TV{i}", "hf" if v[0] in ("008", "236", "377") else "lbp") for i, v in enumerate(vectors)]
    scores, _ = _score(engine_for(backend), mips_rules(), aggregate(rows), participants(people))
    for i, (measure_id, _, rate, decile, before, final) in enumerate(vectors):
        row = _winner(scores, f"V{i}", measure_id)
        assert row["status"] == "scored" and row["performance_rate"] == pytest.approx(rate)
        assert row["decile"] == decile, (measure_id, rate)
        assert row["points_before_cap"] == pytest.approx(before, abs=1e-9)
        assert row["achievement_points"] == pytest.approx(final, abs=1e-9)


def test_improvement_scoring_is_refused() -> None:
    measure_aggregate, participant = _scenario()
    with pytest.raises(RulesError, match="improvement_scoring"):
        score_quality(measure_aggregate=measure_aggregate, participant=participant,
                      rules=mips_rules(**{"quality.improvement_scoring": True}))


@pytest.mark.spark
def test_duckdb_and_pyspark_give_identical_tables(engine_for) -> None:
    measure_aggregate, participant = _scenario()
    outputs = {}
    for backend in ("duckdb", "pyspark"):
        engine = engine_for(backend)
        out = score_quality(measure_aggregate=measure_aggregate, participant=participant, rules=mips_rules(),
                            materialize=engine.save)
        outputs[backend] = {name: engine.con.to_pyarrow(expr) for name, expr in out.items()
                            if name != "quality_measure_row"}
    assert outputs["duckdb"]["quality_measure_score"].column_names == list(MEASURE_SCORE_COLUMNS)
    for name in outputs["duckdb"]:
        assert_tables_equal(outputs["duckdb"][name], outputs["pyspark"][name], float_tol=1e-12)
