"""Run the cost-measure scorer (ebcm §7–§9): HCC flags → risk features → national OLS → specialty adjustment →
measure scores per TIN and TIN-NPI → achievement points, publishing the expected costs, coefficients, knots and
scores."""

from __future__ import annotations

from pathlib import Path

from openasm.cost.benchmarks import build_cost_knots
from openasm.cost.hcc import compute_hcc_flags, load_hcc_reference
from openasm.cost.measure_score import compute_measure_scores
from openasm.cost.points import score_cost_points
from openasm.cost.risk_adjust import MIN_SAMPLE_RULE, describe_risk_model_fit, fit_expected_cost
from openasm.cost.risk_features import build_risk_features
from openasm.cost.specialty_adjust import adjust_for_specialty
from openasm.engine import Engine
from openasm.rules import RulesForYear
from openasm.runs.final_action import ensure_final_action
from openasm.runs.stage import StageResult, Step, no_step, publish, year_rows


def report_risk_model_fit(result: StageResult, fits: list[dict]) -> None:
    """Record the model fitted per measure in the manifest, with a note for each measure whose sample was below
    the minimum (`cost.ra_min_episodes_per_feature`) and so got the reduced model."""
    result.entries.setdefault("cost", {})["risk_model_fit"] = fits
    for fit in fits:
        if fit["model"] == "full":
            continue
        fallback = ("expected cost is the mean winsorized observed cost (intercept-only model)"
                    if fit["model"] == "intercept_only" else
                    f"reduced model: the intercept and the {fit['model_feature_count'] - 1} features present on the "
                    f"most episodes (of {fit['candidate_feature_count']})")
        result.notes.append(
            f"{fit['measure_id']}: the risk model has {fit['fit_episode_count']:,} episodes for "
            f"{fit['candidate_feature_count']} candidate features, below the minimum of {fit['min_fit_episodes']:,.0f} "
            f"({MIN_SAMPLE_RULE} = {fit['min_episodes_per_feature']:g} per feature); {fallback}")


def run_cost(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: None = None,
             step: Step | None = None) -> StageResult:
    """Risk-adjust scored episodes, compute measure scores per TIN and TIN-NPI, and their achievement points."""
    say = step or no_step
    result = StageResult()
    claim_line, _ = ensure_final_action(engine)
    episode = engine.table("episode")
    # The cost__int_ tables are this stage's intermediates: temporary, dropped before it ends.
    scored = engine.save("cost__int_scored_episode", episode.filter(episode.exclusion_reason.isnull()),
                         scratch=True)
    base = {name: engine.table(name) for name in ("claim_diagnosis", "beneficiary", "enrollment")}

    say("flagging HCCs")
    hcc = engine.save("episode_hcc", compute_hcc_flags(
        episode=scored, claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"],
        beneficiary=base["beneficiary"], hcc_reference=load_hcc_reference(rules), rules=rules))
    features = engine.save("episode_risk_feature", build_risk_features(
        episode=scored, hcc_flags=hcc, beneficiary=base["beneficiary"], enrollment=base["enrollment"],
        claim_line=claim_line, claim_diagnosis=base["claim_diagnosis"], rules=rules))

    say("fitting the risk model")
    observed = engine.table("episode_observed").semi_join(scored, "episode_id")
    observed = engine.save("cost__int_observed_scored", observed.select("episode_id", "measure_id", "observed_cost"),
                           scratch=True)
    expected, coefficient = fit_expected_cost(episode_observed=observed, risk_feature=features, rules=rules,
                                              execute=engine.fetch)
    expected = publish(engine, run_dir, result, "episode_expected", expected)
    coefficient = publish(engine, run_dir, result, "risk_model_coefficient", coefficient)
    report_risk_model_fit(result, describe_risk_model_fit(engine.fetch(coefficient), rules))

    say("scoring entities")
    year = rules.performance_year
    entity_expected = engine.save("episode_entity_expected", adjust_for_specialty(
        episode_expected=expected, episode_attribution=year_rows(engine, "episode_attribution", year),
        clinician_specialty=year_rows(engine, "clinician_specialty", year), rules=rules))
    scores = engine.save("cost__int_measure_score", compute_measure_scores(
        episode_entity_expected=entity_expected, episode_expected=expected, rules=rules), scratch=True)
    knots = publish(engine, run_dir, result, "cost_benchmark_knots", build_cost_knots(measure_score=scores,
                                                                                      rules=rules))
    publish(engine, run_dir, result, "measure_score", score_cost_points(measure_score=scores, knots=knots,
                                                                        rules=rules))
    for intermediate in (scored, observed, scores):
        engine.drop(intermediate.get_name())
    return result
