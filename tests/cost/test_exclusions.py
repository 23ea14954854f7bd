"""Golden cases for episode exclusions (ebcm.md §6, §10.4): one beneficiary per rule, each excluded episode
keeps its reason, and a clean episode is not excluded."""

from __future__ import annotations

import ibis

from openasm.cost.exclusions import apply_exclusions, find_episode_exclusions
from openasm.rules import load_rules

from ..episodes.factory import bene, d, ffs_months, table, visit


def _episodes(specs):
    """specs: (bene_id, measure, start, end)."""
    return ibis.memtable({
        "episode_id": [f"E-{s[0]}" for s in specs], "measure_id": [s[1] for s in specs],
        "bene_id": [s[0] for s in specs], "billing_tin": ["111111111"] * len(specs),
        "taw_start_date": [d(s[2]) for s in specs], "episode_start_date": [d(s[2]) for s in specs],
        "episode_end_date": [d(s[3]) for s in specs],
        "episode_days": [(d(s[3]) - d(s[2])).days + 1 for s in specs],
        "exclusion_reason": [s[4] if len(s) > 4 else None for s in specs],
    }, schema={"episode_id": "string", "measure_id": "string", "bene_id": "string", "billing_tin": "string",
               "taw_start_date": "date", "episode_start_date": "date", "episode_end_date": "date",
               "episode_days": "int64", "exclusion_reason": "string"})


def _months(bene_id, **changes):
    rows = ffs_months(bene_id, first="2026-01", last="2027-12")
    for row in rows:
        for month, values in changes.items():
            if row["year_month"] == month.replace("_", "-"):
                row.update(values)
    return rows


LBP, HF = "COST_LBP_1", "COST_HF_1"
CASES = {
    # bene: (measure, beneficiary row, enrollment rows, claim lines, diagnoses, expected reasons)
    "OK": (LBP, bene("OK"), _months("OK"), [], [], set()),
    "SHORT": (LBP, bene("SHORT"), _months("SHORT"), [], [], {"episode_too_short"}),
    "NOSEX": (LBP, {**bene("NOSEX"), "sex": "U"}, _months("NOSEX"), [], [], {"missing_demographics"}),
    "ABROAD": (LBP, {**bene("ABROAD"), "state_fips": "99"}, _months("ABROAD"), [], [], {"residence_outside_us"}),
    "CHILD": (LBP, bene("CHILD", birth="2012-01-01"), _months("CHILD"), [], [], {"under_min_age"}),
    "MA": (LBP, bene("MA"), _months("MA", **{"2027_05": {"is_medicare_advantage": True}}), [], [],
           {"medicare_advantage", "not_continuous_ab_ffs"}),
    "NOB": (LBP, bene("NOB"), _months("NOB", **{"2026_10": {"has_part_b": False}}), [], [],  # in the 120-day lookback
            {"not_continuous_ab_ffs"}),
    "GAP": (LBP, bene("GAP"), [m for m in _months("GAP") if m["year_month"] != "2027-06"], [], [],
            {"not_continuous_ab_ffs", "no_part_d_for_whole_episode"}),  # a missing month has no coverage at all
    "MSP": (LBP, bene("MSP"), _months("MSP", **{"2027_03": {"is_msp": True}}), [], [], {"medicare_secondary_payer"}),
    "NOD": (LBP, bene("NOD"), _months("NOD", **{"2027_08": {"has_part_d": False}}), [], [],
            {"no_part_d_for_whole_episode"}),
    "CANCER_TX": (LBP, bene("CANCER_TX"), _months("CANCER_TX"),
                  [visit("CANCER_TX", "2026-12-01", hcpcs="96413", dx="C3490")],
                  [("CANCER_TX", "2026-12-01", "C3490")], {"active_cancer"}),
    "CANCER_NO_TX": (LBP, bene("CANCER_NO_TX"), _months("CANCER_NO_TX"),
                     [visit("CANCER_NO_TX", "2026-12-01", hcpcs="99213", dx="C3490")],
                     [("CANCER_NO_TX", "2026-12-01", "C3490")], set()),
    "FRACTURE": (LBP, bene("FRACTURE"), _months("FRACTURE"), [visit("FRACTURE", "2027-04-01", dx="S32010A")],
                 [("FRACTURE", "2027-04-01", "S32010A")], {"vertebral_fracture_or_major_trauma"}),
    "PREGNANT": (LBP, bene("PREGNANT"), _months("PREGNANT"), [visit("PREGNANT", "2027-04-01", dx="Z331")],
                 [("PREGNANT", "2027-04-01", "Z33.1")], {"pregnancy"}),
    "INFECTION": (LBP, bene("INFECTION"), _months("INFECTION"), [visit("INFECTION", "2027-04-01", dx="M4626")],
                  [("INFECTION", "2027-04-01", "M46.26")], {"spinal_infection"}),
    "CAUDA": (LBP, bene("CAUDA"), _months("CAUDA"), [visit("CAUDA", "2027-04-01", dx="G834")],
              [("CAUDA", "2027-04-01", "G83.4")], {"cauda_equina_or_spinal_cord_injury"}),
    "AS": (LBP, bene("AS"), _months("AS"), [visit("AS", "2026-10-01", dx="M456")],       # inside the lookback
           [("AS", "2026-10-01", "M45.6")], {"inflammatory_spondyloarthropathy"}),
    "AS_OLD": (LBP, bene("AS_OLD"), _months("AS_OLD"), [visit("AS_OLD", "2026-08-01", dx="M456")],  # before it
               [("AS_OLD", "2026-08-01", "M45.6")], set()),
    "TRANSPLANT_STAY": (HF, bene("TRANSPLANT_STAY"), _months("TRANSPLANT_STAY"),
                        [{"claim_id": "TX1", "line_number": 1, "bene_id": "TRANSPLANT_STAY", "claim_type": "inpatient",
                          "claim_from_date": d("2027-05-01"), "claim_thru_date": d("2027-05-20"),
                          "admission_date": d("2027-05-01"), "drg_code": "002", "allowed_amount": 90000.0}],
                        [], {"heart_transplant_or_lvad"}),
    "FUSION": (LBP, bene("FUSION"), _months("FUSION"), [visit("FUSION", "2027-05-01", hcpcs="63047")], [],
               {"lumbar_spine_surgery"}),
    "FUSION_BEFORE": (LBP, bene("FUSION_BEFORE"), _months("FUSION_BEFORE"),
                      [visit("FUSION_BEFORE", "2026-12-01", hcpcs="63047")], [], set()),  # before the episode
    "LVAD": (HF, bene("LVAD"), _months("LVAD"), [visit("LVAD", "2027-02-01", dx="Z95811", specialty="06")],
             [("LVAD", "2027-02-01", "Z95.811")], {"heart_transplant_or_lvad"}),
    "HOSPICE": (HF, bene("HOSPICE"), _months("HOSPICE", **{"2027_01": {"is_hospice": True}}), [], [],
                {"hospice_at_trigger"}),
}


def _run(engine, rules):
    specs, benes, months, lines, dx = [], [], [], [], []
    for bene_id, (measure, bene_row, enrollment, claim_lines, diagnoses, _) in CASES.items():
        end = "2027-01-20" if bene_id == "SHORT" else "2027-12-31"
        specs.append((bene_id, measure, "2027-01-01", end) + (("episode shorter than 30 days",) if bene_id == "SHORT" else ()))
        benes.append(bene_row)
        months += enrollment
        lines += claim_lines
        for claim_bene, date, code in diagnoses:
            claim = next(l for l in claim_lines if l["bene_id"] == claim_bene and str(l["claim_from_date"]) == date)
            dx.append({"claim_id": claim["claim_id"], "bene_id": claim_bene, "dx_position": 1, "icd10_code": code})
    episode = engine.save("episode", _episodes(specs))
    stored = {name: engine.save(name, table(name, rows)) for name, rows in
              (("beneficiary", benes), ("enrollment", months), ("claim_line", lines), ("claim_diagnosis", dx))}
    exclusions = engine.save("episode_exclusion", find_episode_exclusions(episode=episode, rules=rules, **stored))
    applied = engine.fetch(apply_exclusions(episode=episode, episode_exclusion=exclusions)).to_pylist()
    reasons: dict[str, set[str]] = {}
    for row in engine.fetch(exclusions).to_pylist():
        reasons.setdefault(row["episode_id"].removeprefix("E-"), set()).add(row["reason"])
    return reasons, {r["bene_id"]: r for r in applied}


def test_each_exclusion_rule(engine_for):
    reasons, applied = _run(engine_for("duckdb"), load_rules(2027))
    for bene_id, case in CASES.items():
        assert reasons.get(bene_id, set()) == case[-1], bene_id
    assert applied["OK"]["exclusion_reason"] is None and applied["OK"]["exclusion_count"] == 0
    # The first reason by priority: Medicare Advantage before the continuity failure it implies.
    assert applied["MA"]["exclusion_reason"] == "medicare_advantage" and applied["MA"]["exclusion_count"] == 2
    assert len(applied) == len(CASES)  # nothing dropped


def test_switches_turn_rules_off(engine_for):
    rules = load_rules(2027, {"cost.exclude_spine_surgery": False, "cost.require_part_d": False,
                              "cost.exclude_msp": False})
    reasons, _ = _run(engine_for("duckdb"), rules)
    assert "FUSION" not in reasons and "NOD" not in reasons and "MSP" not in reasons


def test_death_policy_exclude(engine_for):
    rules = load_rules(2027, {"episodes.death_policy": "exclude"})
    CASES["DIED"] = (LBP, bene("DIED", death="2027-06-30"), _months("DIED"), [], [], {"died_during_episode"})
    try:
        reasons, _ = _run(engine_for("duckdb"), rules)
    finally:
        del CASES["DIED"]
    assert reasons["DIED"] == {"died_during_episode"}
    assert "OK" not in reasons
