"""Rules lint (ARCHITECTURE.md §5): every parameter file and code list is complete, well-shaped and resolvable.

Parameter checks: description, unit, period, spec, ≥1 reference, evidence on every value, `allowed` for enums,
breakdown keys, resolution for every performance year 2027–2031 (payment-year parameters at PY + 2), and that every
parameter named in asm-model.md §10 and ebcm.md §13 has its file. Code-list checks: a valid `.source.yaml`, the
documented columns, non-empty rows and code shapes (`openasm.schema.formats`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from openasm.rules import list_code_lists, load_code_list, load_parameter_files, load_rules
from openasm.rules.files import PAYMENT_YEAR_LAG, code_list_names, load_code_list_source, package_rules_dir
from openasm.rules.resolve import resolve_parameter
from openasm.schema.formats import (
    DRG_PATTERN,
    HCPCS_PATTERN,
    ICD10CM_PATTERN,
    REVENUE_CENTER_PATTERN,
    SPECIALTY_CODE_PATTERN,
)

PERFORMANCE_YEARS = range(2027, 2032)
REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"

PARAMS = load_parameter_files()
OWN_PARAMS = sorted(name for name in PARAMS if not name.startswith("synth."))

# Every parameter of asm-model.md §10 and ebcm.md §13 (spec name -> dotted file name). Synthetic-data parameters
# are owned by params/synth/ and listed separately.
ASM_MODEL_NAMES = {
    "performance_years": "model.performance_years",
    "payment_year_lag": "model.payment_year_lag",
    "eligibility_lookback_years": "model.eligibility_lookback_years",
    "episode_volume_threshold": "participation.episode_volume_threshold",
    "volume_count_unit": "participation.volume_count_unit",
    "specialty_codes_hf": "participation.specialty_codes",
    "specialty_codes_lbp": "participation.specialty_codes",
    "specialty_plurality_basis": "participation.specialty_plurality_basis",
    "selected_areas_file": "participation.selected_areas_file",
    "geography_basis": "participation.geography_basis",
    "physicians_only": "participation.physicians_only",
    "exclude_rhc_fqhc": "participation.exclude_rhc_fqhc",
    "exclude_apm_participants": "participation.exclude_apm_participants",
    "score_only_qualifying_years": "participation.score_only_qualifying_years",
    "small_practice_max_clinicians": "participation.small_practice_max_clinicians",
    "quality_measures_by_py": "quality.measures",
    "quality_weight": "quality.weight",
    "data_completeness_threshold": "quality.data_completeness_threshold",
    "quality_case_minimum": "quality.case_minimum",
    "quality_benchmark_population": "quality.benchmark_population",
    "quality_benchmark_min_reporters": "quality.benchmark_min_reporters",
    "missing_measure_policy": "quality.missing_measure_policy",
    "below_case_minimum_policy": "quality.below_case_minimum_policy",
    "topped_out_cap_points": "quality.topped_out_cap_points",
    "small_practice_tin_quality_reporting": "quality.small_practice_tin_reporting",
    "cost_weight": "cost.weight",
    "cost_case_minimum": "cost.case_minimum",
    "cost_band_table": "cost.band_table",
    "ia_min_period_days": "ia_pi.ia_min_period_days",
    "pi_min_period_days": "ia_pi.pi_min_period_days",
    "ia_deduction_per_unmet_activity": "ia_pi.ia_deduction_per_unmet_activity",
    "ia_deduction_max": "ia_pi.ia_deduction_max",
    "pi_deduction": "ia_pi.pi_deduction",
    "pi_special_status_reweighting": "ia_pi.pi_special_status_reweighting",
    "small_practice_score_bonus": "scoring.small_practice_score_bonus",
    "solo_practice_score_bonus": "scoring.solo_practice_score_bonus",
    "practice_size_bonus_mode": "scoring.practice_size_bonus_mode",
    "reweight_policy": "scoring.reweight_policy",
    "zero_score_if_raw_nonpositive": "scoring.zero_score_if_raw_nonpositive",
    "risk_level_by_payment_year": "payment.risk_level",
    "retention_rate_by_payment_year": "payment.retention_rate",
    "exchange_function": "payment.exchange_function",
    "exchange_slope_k": "payment.exchange_slope_k",
    "exchange_midpoint_rule": "payment.exchange_midpoint_rule",
    "exchange_range": "payment.exchange_range",
    "zero_score_af": "payment.zero_score_af",
    "af_clamp": "payment.af_clamp",
    "pool_base_includes_zero_score": "payment.pool_base_includes_zero_score",
    "claims_runout_days": "payment.claims_runout_days",
    "adjusted_claims_scope": "payment.adjusted_claims_scope",
    "multiplier_tin_scope": "payment.multiplier_tin_scope",
    "af_display_decimals": "payment.af_display_decimals",
    "submission_window": "operations.submission_window",
    "ten_notice_days": "operations.ten_notice_days",
    "ten_response_days": "operations.ten_response_days",
    "ten_reconsideration_days": "operations.ten_reconsideration_days",
    "ten_recompute_scope": "operations.ten_recompute_scope",
    "euc_policy": "operations.euc_policy",
    "beneficiary_incentive_tech_cap_usd": "operations.beneficiary_incentive_tech_cap_usd",
    "record_retention_years": "operations.record_retention_years",
    "cca_payment_cap_rule": "operations.cca_payment_cap_rule",
}
EBCM_NAMES = {
    "dx_codes": "episodes.dx_codes",
    "trigger_hcpcs": "episodes.trigger_hcpcs",
    "confirm_hcpcs": "episodes.confirm_hcpcs",
    "reaffirm_hcpcs": "episodes.reaffirm_hcpcs",
    "optional_trigger_hcpcs": "episodes.optional_trigger_hcpcs",
    "count_telehealth": "episodes.count_telehealth",
    "dx_match_scope": "episodes.dx_match_scope",
    "trigger_pair_level": "episodes.trigger_pair_level",
    "confirm_window_days": "episodes.confirm_window_days",
    "confirm_min_gap_days": "episodes.confirm_min_gap_days",
    "attribution_window_days": "episodes.attribution_window_days",
    "reaffirm_extends_window": "episodes.reaffirm_extends_window",
    "multi_tin_attribution": "episodes.multi_tin_attribution",
    "death_policy": "episodes.death_policy",
    "history_lookback_days": "episodes.history_lookback_days",
    "episode_length_days": "episodes.episode_length_days",
    "py_assignment": "episodes.py_assignment",
    "min_episode_days": "episodes.min_episode_days",
    "group_attribution": "episodes.group_attribution",
    "npi_share_threshold": "episodes.npi_share_threshold",
    "npi_share_services": "episodes.npi_share_services",
    "npi_share_window": "episodes.npi_share_window",
    "npi_share_unit": "episodes.npi_share_unit",
    "npi_filter": "episodes.npi_filter",
    "npi_specialty_basis": "episodes.npi_specialty_basis",
    "code_list_version_by_py": "episodes.code_list_version",
    "cost_basis": "cost.cost_basis",
    "standardization_source": "cost.standardization_source",
    "part_d_cost_field": "cost.part_d_cost_field",
    "assignment_rules": "cost.assignment_rules",
    "assign_hospice": "cost.assign_hospice",
    "ip_date_basis": "cost.ip_date_basis",
    "post_acute_date_basis": "cost.post_acute_date_basis",
    "scale_to_days": "cost.scale_to_days",
    "enrollment_lookback_days": "cost.enrollment_lookback_days",
    "require_continuous_ab_ffs": "cost.require_continuous_ab_ffs",
    "exclude_ma": "cost.exclude_ma",
    "exclude_msp": "cost.exclude_msp",
    "exclude_missing_demographics": "cost.exclude_missing_demographics",
    "exclude_non_us": "cost.exclude_non_us",
    "require_part_d": "cost.require_part_d",
    "min_age": "cost.min_age",
    "clinical_exclusions": "cost.clinical_exclusions",
    "exclude_spine_surgery": "cost.exclude_spine_surgery",
    "ra_model": "cost.ra_model",
    "ra_fit_scope": "cost.ra_fit_scope",
    "ra_features": "cost.ra_features",
    "ra_lookback_days": "cost.ra_lookback_days",
    "ltc_days_threshold": "cost.ltc_days_threshold",
    "hcc_version_by_py": "cost.hcc_version",
    "ra_include_dual": "cost.ra_include_dual",
    "obs_winsor_upper_pct": "cost.obs_winsor_upper_pct",
    "exp_floor_pct": "cost.exp_floor_pct",
    "renormalize_expected": "cost.renormalize_expected",
    "outlier_trim_pct": "cost.outlier_trim_pct",
    "outlier_metric": "cost.outlier_metric",
    "refit_after_trim": "cost.refit_after_trim",
    "specialty_adjustment": "cost.specialty_adjustment",
    "tin_specialty_weighting": "cost.tin_specialty_weighting",
    "score_formula": "cost.score_formula",
    "ratio_uses_winsorized_observed": "cost.ratio_uses_winsorized_observed",
    "episode_weighting": "cost.episode_weighting",
    "national_mean_universe": "cost.national_mean_universe",
    "case_minimum": "cost.case_minimum",
    "points_method_by_py": "cost.points_method",
    "points_interpolation": "cost.points_interpolation",
    "band_offsets_sd": "cost.band_table",
    "benchmark_trim": "cost.benchmark_trim",
    "sd_ddof": "cost.sd_ddof",
    "benchmark_source": "cost.benchmark_source",
    "benchmark_pool": "cost.benchmark_pool",
    "asm_cost_benchmark_population": "cost.benchmark_population",
    "cost_improvement_scoring": "cost.improvement_scoring",
}
SYNTH_NAMES = {
    "synthetic_mixture_hf", "synthetic_mixture_lbp", "synthetic_target_mean_by_py", "synthetic_clinician_sigma",
    "calibration_tolerances",
}
# Parameters that are data the specs give outside their parameter tables.
EXTRA_PARAMS = {
    "cost.national_average_cost_per_episode", "cost.measures", "cost.post_acute_window_days",
    "cost.exp_floor_min_share_of_mean",
    # quality.md §4.7, §4.8, §5.2-5.3 and §7 name these in the text rather than in the §8 table.
    "quality.asm_program_name", "quality.case_attribution", "quality.ecqm_submission_formats",
    "quality.reporting_level", "quality.q220_allow_non_foto", "quality.q220_episode_year",
    "quality.q220_not_calculable", "quality.q220_odi_mcid_points", "quality.q220_odi_rule",
    "quality.q492_proxy_attribution_hcpcs", "quality.q492_proxy_cv_dx_prefixes", "quality.q492_proxy_hf_dx_prefixes",
    "quality.q492_proxy_min_age", "quality.benchmark_baseline_py", "quality.mips_small_practice_unscorable_points",
    "quality.ecqm_cms165_resolve_medication_reference", "quality.ecqm_cms135_resolve_medication_reference",
    "quality.ecqm_package", "quality.ecqm_evaluation_utc_offset", "quality.ecqm_declared_profiles_decide",
    # asm-model.md §5-§7 choices the spec leaves open (issue 5): IA/PI validation, cost level, bonuses, payment base
    # and projection scenarios.
    "ia_pi.ia2_min_cca_elements", "ia_pi.pi_mips_base_required", "scoring.complex_patient_bonus_max",
    "scoring.cost_entity_level", "scoring.solo_practice_max_clinicians", "payment.covered_services_claim_types",
    "payment.non_pfs_hcpcs_ranges", "payment.part_b_growth_rate", "payment.projection_scenarios",
    "payment.projection_score_trend", "payment.projection_synthetic_cohort",
    # issue 13: Monte Carlo priors over unknown peers and the practice's own sampling uncertainty; issue 9 item 6.
    "decide.peer_cohort_size", "decide.peer_small_practice_share", "decide.peer_ia_met_rate",
    "decide.peer_pi_met_rate", "decide.peer_submission_failure_rate", "decide.peer_cost_scorable_rate",
    "decide.peer_quality_collection_types", "decide.peer_part_b_paid", "decide.own_rate_uncertainty",
    "decide.own_cost_ratio_cv", "report.small_cell_minimum",
    # ebcm.md §10.3 and §7.1 choices the spec leaves open (issue 9): the billing specialty groups of assignment
    # rules, the minimum regression sample.
    "cost.assignment_specialty_groups", "cost.ra_min_episodes_per_feature",
    # Connectors (issue 12): how a practice ZIP is placed in a CBSA (HUD crosswalk ratio).
    "participation.zip_cbsa_method",
    # Engine operation, not model rules: ingest's outcome check (issue 9).
    "ingest.max_quarantine_share",
}

# quality.md §8 parameters (spec name -> dotted file name).
QUALITY_NAMES = {name: f"quality.{name}" for name in (
    "allowed_collection_types", "percentile_method", "benchmark_fallback_py", "apply_flat_benchmarks",
    "case_count_basis", "unscorable_policy", "decile1_floor_direct", "decile1_ceiling_inverse", "display_decimals",
    "multi_collection_policy", "improvement_scoring", "q492_points_source")}

BREAKDOWN_KEYS = {"cohort": {"hf", "lbp"}, "measure": {"COST_HF_1", "COST_LBP_1"}}
CODE_LISTS = {
    "episodes__condition_dx_codes": ["measure", "family", "code", "match", "is_enabled"],
    "episodes__trigger_service_codes": ["measure", "group", "hcpcs_code", "role"],
    "cost__assigned_service_rules": ["measure", "setting", "code_type", "code", "billing_specialty_group",
                                     "is_assigned", "rule_note"],
    "cost__specialty_groups": ["specialty_group", "specialty_code"],
    "cost__clinical_exclusion_codes": ["measure", "exclusion", "code_type", "code", "match", "qualifier"],
    "reference__medicare_specialty_codes": ["code", "name", "asm_cohort"],
}
MEASURES = {"COST_HF_1", "COST_LBP_1"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def _lag() -> int:
    return int(PARAMS[PAYMENT_YEAR_LAG].values[min(PARAMS[PAYMENT_YEAR_LAG].values)].value)


# ------------------------------------------------------------------------------------------- parameter files
@pytest.mark.parametrize("name", OWN_PARAMS)
def test_parameter_file_is_complete(name: str) -> None:
    param = PARAMS[name]
    assert param.description.strip() and len(param.description) >= 10, name
    assert param.unit and param.period in {"performance_year", "payment_year"}
    assert param.spec, f"{name}: no spec section"
    assert param.reference, f"{name}: no reference"
    assert all(ref.cfr or ref.href or ref.title for ref in param.reference)
    for year, entry in param.values.items():
        assert entry.evidence in {"reg", "secondary", "default"}, f"{name} {year}"
    if param.unit == "enum":
        assert param.allowed, f"{name}: an enum needs `allowed`"
    if param.breakdown is not None:
        assert param.breakdown in BREAKDOWN_KEYS, f"{name}: unknown breakdown {param.breakdown}"
        for year, entry in param.values.items():
            assert set(entry.value) == BREAKDOWN_KEYS[param.breakdown], f"{name} {year}"


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("performance_year", PERFORMANCE_YEARS)
def test_parameter_resolves_for_every_performance_year(name: str, performance_year: int) -> None:
    resolved = resolve_parameter(name, PARAMS[name], performance_year, _lag())
    expected_lookup = performance_year + 2 if PARAMS[name].period == "payment_year" else performance_year
    assert resolved.lookup_year == expected_lookup
    assert resolved.key_year <= resolved.lookup_year


def test_payment_year_parameters_are_keyed_by_payment_year() -> None:
    payment = [name for name in OWN_PARAMS if PARAMS[name].period == "payment_year"]
    assert {"payment.risk_level", "payment.retention_rate"} <= set(payment)
    for name in payment:
        assert min(PARAMS[name].values) <= 2029, name  # first PaY = 2027 + 2


def test_load_rules_resolves_every_performance_year() -> None:
    for performance_year in PERFORMANCE_YEARS:
        rules = load_rules(performance_year)
        assert rules.payment_year == performance_year + 2
        assert {r.name for r in rules.all()} == set(PARAMS)


def test_every_spec_parameter_has_its_file() -> None:
    mapped = {**ASM_MODEL_NAMES, **EBCM_NAMES}
    missing = {spec: dotted for spec, dotted in mapped.items() if dotted not in PARAMS}
    assert not missing
    assert not SYNTH_NAMES & set(mapped)


def test_every_file_is_a_spec_parameter() -> None:
    known = set(ASM_MODEL_NAMES.values()) | set(EBCM_NAMES.values()) | set(QUALITY_NAMES.values()) | EXTRA_PARAMS
    assert set(OWN_PARAMS) - known == set()


def _spec_table_names(path: Path, heading: str) -> set[str]:
    text = path.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z0-9_]+)`", line.split("|")[1]))
    return names


def test_name_map_matches_the_spec_tables() -> None:
    """The explicit maps above list exactly the names in asm-model.md §10 and ebcm.md §13."""
    asm_md, ebcm_md = SHARED / "spec" / "asm-model.md", SHARED / "spec" / "ebcm.md"
    if not (asm_md.is_file() and ebcm_md.is_file()):
        pytest.skip("shared/spec not present")
    assert _spec_table_names(asm_md, "## 10. Configurable parameters") == set(ASM_MODEL_NAMES)
    assert _spec_table_names(ebcm_md, "## 13. Configurable parameters") - SYNTH_NAMES == set(EBCM_NAMES)


def test_shared_facts_live_in_one_file() -> None:
    """asm-model and ebcm names for the same fact point to one file, whose spec field names both."""
    for asm_name, ebcm_name in [("cost_case_minimum", "case_minimum"), ("cost_band_table", "band_offsets_sd")]:
        dotted = ASM_MODEL_NAMES[asm_name]
        assert EBCM_NAMES[ebcm_name] == dotted
        assert asm_name in PARAMS[dotted].spec and ebcm_name in PARAMS[dotted].spec


def test_codes_parameters_name_shipped_code_lists() -> None:
    shipped = set(list_code_lists())
    named = {
        name: list_name
        for name in OWN_PARAMS
        for names in code_list_names(PARAMS[name]).values()
        for list_name in names
    }
    assert named, "no codes parameter names a code list"
    assert set(named.values()) <= shipped
    for name in ("episodes.dx_codes", "episodes.trigger_hcpcs", "cost.assignment_rules", "cost.clinical_exclusions"):
        assert name in named


def test_code_list_version_matches_shipped_lists() -> None:
    version = load_rules(2027).value("episodes.code_list_version")
    for name in list_code_lists():
        if name.startswith(("episodes__", "cost__")):
            assert load_code_list_source(package_rules_dir() / "codes" / f"{name}.source.yaml").version == version


def test_national_averages_match_qpp_measures_data() -> None:
    param = PARAMS["cost.national_average_cost_per_episode"]
    for year in (2024, 2025):
        path = SHARED / "data" / "qpp-measures-data" / "benchmarks" / f"{year}-cost-national-averages.json"
        if not path.is_file():
            pytest.skip("shared qpp-measures-data not present")
        records = {r["measureId"]: r for r in json.loads(path.read_text(encoding="utf-8"))}
        for measure, amount in param.values[year].value.items():
            assert records[measure]["groupNationalAverage"] == amount
            assert records[measure]["individualNationalAverage"] == amount


# ------------------------------------------------------------------------------------------- code lists
def _rows(name: str) -> list[dict[str, str]]:
    return load_code_list(name).to_pylist()


def test_expected_code_lists_are_shipped() -> None:
    assert set(CODE_LISTS) <= set(list_code_lists())


@pytest.mark.parametrize("name", sorted(list_code_lists()))
def test_code_list_has_source_and_rows(name: str) -> None:
    source = load_code_list_source(package_rules_dir() / "codes" / f"{name}.source.yaml")
    table = load_code_list(name)
    assert table.num_rows > 0
    assert list(source.columns) == table.column_names, "source.yaml documents every column, in order"
    assert source.version and source.retrieved
    assert not any("desc" in col for col in table.column_names), "no descriptor columns (code values only)"
    if name in CODE_LISTS:
        assert table.column_names == CODE_LISTS[name]
    keys = [tuple(row.values()) for row in table.to_pylist()]
    assert len(keys) == len(set(keys)), "duplicate rows"


def test_condition_dx_codes_shape() -> None:
    rows = _rows("episodes__condition_dx_codes")
    for row in rows:
        assert row["measure"] in MEASURES
        assert SNAKE.match(row["family"])
        assert re.match(ICD10CM_PATTERN, row["code"]) and "." not in row["code"], row
        assert row["code"] == row["code"].upper()
        assert row["match"] in {"exact", "prefix"}
        assert row["is_enabled"] in {"true", "false"}
    enabled = {row["code"]: row["is_enabled"] for row in rows}
    assert enabled["I42"] == "false" and enabled["I9713"] == "true" and enabled["I50"] == "true"
    assert {row["measure"] for row in rows} == MEASURES


def test_trigger_service_codes_shape() -> None:
    rows = _rows("episodes__trigger_service_codes")
    for row in rows:
        assert row["measure"] in MEASURES and SNAKE.match(row["group"])
        assert re.match(HCPCS_PATTERN, row["hcpcs_code"]), row
        assert row["role"] in {"trigger_confirm_reaffirm", "optional"}
    hf = {row["hcpcs_code"] for row in rows if row["measure"] == "COST_HF_1" and row["role"] != "optional"}
    # 99202–99205 and 99211–99215 expanded: 4 + 5 codes
    assert hf == {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
    assert len({(r["measure"], r["hcpcs_code"]) for r in rows}) == len(rows)


ASSIGNMENT_CODE_SHAPE = {
    "hcpcs": HCPCS_PATTERN,
    "drg": DRG_PATTERN,
    "revenue_center": REVENUE_CENTER_PATTERN,
    "ndc_class": SNAKE.pattern,
    "note": SNAKE.pattern,
}


def test_assigned_service_rules_shape() -> None:
    rows = _rows("cost__assigned_service_rules")
    for row in rows:
        assert row["measure"] in MEASURES
        assert row["is_assigned"] in {"true", "false"}
        if row["code_type"] in {"dx_principal", "dx_any"}:
            assert row["code"] == "CONDITION" or re.match(ICD10CM_PATTERN, row["code"]), row
        else:
            assert re.match(ASSIGNMENT_CODE_SHAPE[row["code_type"]], row["code"]), row
        assert len(row["rule_note"]) <= 80, "a short rule note, not a code descriptor"
    drgs = {row["code"] for row in rows if row["code_type"] == "drg"}
    assert drgs == {"291", "292", "293"}
    groups = {row["specialty_group"] for row in _rows("cost__specialty_groups")}
    grouped = [row for row in rows if row["billing_specialty_group"]]
    assert {row["billing_specialty_group"] for row in grouped} <= groups
    assert all(row["code_type"] == "hcpcs" for row in grouped)
    # ebcm.md §10.3: HF carrier E/M only from cardiology and primary care.
    hf_em = {(row["code"], row["billing_specialty_group"]) for row in grouped if row["measure"] == "COST_HF_1"}
    assert ("99214", "cardiology") in hf_em and ("99214", "primary_care") in hf_em
    assert not [row for row in rows if row["measure"] == "COST_HF_1" and row["code"] == "99214"
                and not row["billing_specialty_group"]]


def test_specialty_groups_shape() -> None:
    rows = _rows("cost__specialty_groups")
    known = {row["code"] for row in _rows("reference__medicare_specialty_codes")}
    for row in rows:
        assert SNAKE.match(row["specialty_group"]) and re.match(SPECIALTY_CODE_PATTERN, row["specialty_code"]), row
        assert row["specialty_code"] in known, row
    by_group: dict[str, set[str]] = {}
    for row in rows:
        by_group.setdefault(row["specialty_group"], set()).add(row["specialty_code"])
    assert by_group["cardiology"] == {"06", "21", "C3", "C7", "D8"}
    assert {"01", "08", "11", "38"} <= by_group["primary_care"] and "20" not in by_group["primary_care"]


EXCLUSION_CODE_SHAPE = {
    "icd10": ICD10CM_PATTERN,
    "hcpcs": HCPCS_PATTERN,
    "drg": DRG_PATTERN,
    "enrollment_flag": SNAKE.pattern,
    "claim_family": SNAKE.pattern,
    "treatment_hcpcs": r"^[0-9A-Z]{1,5}$",  # HCPCS prefix (match = prefix)
}


def test_clinical_exclusion_codes_shape() -> None:
    rows = _rows("cost__clinical_exclusion_codes")
    for row in rows:
        assert row["measure"] in MEASURES and SNAKE.match(row["exclusion"])
        assert re.match(EXCLUSION_CODE_SHAPE[row["code_type"]], row["code"]), row
        assert row["match"] in {"exact", "prefix"}
        assert row["qualifier"] == "" or SNAKE.match(row["qualifier"])
    spine_drgs = {r["code"] for r in rows if r["exclusion"] == "lumbar_spine_surgery" and r["code_type"] == "drg"}
    assert spine_drgs == {str(n) for n in range(453, 461)}  # MS-DRG 453–460 expanded: 8 codes


def test_medicare_specialty_codes_shape_and_cohorts() -> None:
    rows = _rows("reference__medicare_specialty_codes")
    codes = {row["code"]: row for row in rows}
    assert len(codes) == len(rows)
    for row in rows:
        assert re.match(SPECIALTY_CODE_PATTERN, row["code"]) and row["name"]
        assert row["asm_cohort"] in {"hf", "lbp", "excluded_cardiology", ""}
    required = {"06", "C3", "21", "C7", "D8", "05", "09", "72", "14", "20", "25", "01", "08", "11", "38", "50",
                "97", "65", "67", "35", "30", "93", "13", "29", "39", "10", "34", "66", "69", "A0", "49", "99"}
    assert required <= set(codes)
    assert {c for c, r in codes.items() if r["asm_cohort"] == "excluded_cardiology"} == {"C3", "21", "C7", "D8"}
    # The cohort column agrees with the participation.specialty_codes parameter for every year it holds.
    for entry in PARAMS["participation.specialty_codes"].values.values():
        for cohort, members in entry.value.items():
            assert {c for c, r in codes.items() if r["asm_cohort"] == cohort} == set(members)
