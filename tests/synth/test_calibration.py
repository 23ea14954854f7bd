"""The mean annual condition cost of planted HF and LBP patient-years is the §11.1 target sized to care years.

A care year costs target × `synth.episode_basis_factor` (±15%): the factor makes the mean over the measure's
scored episodes, which include short TAW tails, land on the target (test_episode_calibration.py checks that).
For each planted patient the 365-day window opened by the first planted visit is costed like an episode:
condition-diagnosis Parts A/B lines (standardized amount, or allowed / the patient's geographic factor
where it is missing) plus condition-class Part D fills, in fully FFS A/B/D-covered windows inside the world.
LBP patients with spine surgery are left out (the measure excludes them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from openasm.rules import load_rules
from openasm.synth import codes

from .conftest import CALIBRATION, read


def _window_costs(world, cohort: str) -> pd.DataFrame:
    lines = read(world, "claim_line").to_pandas()
    dx = read(world, "claim_diagnosis").to_pandas()
    lines = lines[lines.claim_id.isin(dx.claim_id) & lines.claim_adjustment_type.fillna("original").eq("original")]
    lines = lines.drop_duplicates(["claim_id", "line_number"])
    both = lines[lines.standardized_amount > 0]
    geo = (both.allowed_amount / both.standardized_amount).groupby(both.bene_id).median()
    lines["std"] = lines.standardized_amount.fillna(lines.allowed_amount / lines.bene_id.map(geo))
    principal = dx[dx.dx_position == 1].drop_duplicates("claim_id").set_index("claim_id").icd10_code
    institutional = ~lines.claim_type.isin(["carrier", "dme"])
    lines["dx"] = np.where(institutional, lines.claim_id.map(principal), lines.line_dx_code)
    lines["date"] = np.where(lines.claim_type.eq("inpatient"), lines.admission_date,
                             np.where(institutional, lines.claim_from_date, lines.line_from_date))
    family = codes.HF_DX_SET if cohort == "hf" else codes.LBP_DX_SET
    classes = codes.HF_DRUG_CLASSES if cohort == "hf" else codes.LBP_DRUG_CLASSES
    fills = read(world, "pharmacy_claim").to_pandas()
    fills = fills[fills.claim_adjustment_type.fillna("original").eq("original") & (fills.allowed_amount >= 0)]
    fills = fills.drop_duplicates("claim_id")
    fills = fills[fills.ndc_code.map(codes.NDC_CLASS).isin(classes)]
    costs = pd.concat([
        lines.loc[lines.dx.isin(family), ["bene_id", "date", "std"]].rename(columns={"std": "cost"}),
        fills[["bene_id", "fill_date", "gross_drug_cost_amount"]].set_axis(["bene_id", "date", "cost"], axis=1),
    ])
    costs["date"] = pd.to_datetime(costs.date)
    surgery = set(lines.bene_id[lines.hcpcs_code.isin(["22612", "63047"])])

    truth = read(world, "truth").to_pandas()
    start = truth[truth.cohort == cohort].groupby("bene_id").first_visit_date.min().map(pd.Timestamp)
    end = start + pd.Timedelta(days=364)
    enrollment = read(world, "enrollment").to_pandas().drop_duplicates(["bene_id", "year_month"])
    enrollment = enrollment[enrollment.year_month.str.match(r"^\d{4}-(0[1-9]|1[0-2])$")]
    ok = enrollment[enrollment.has_part_a.eq(True) & enrollment.has_part_b.eq(True) & enrollment.has_part_d.eq(True)
                    & enrollment.is_medicare_advantage.eq(False)]
    months_ok = ok.groupby("bene_id").size()
    windows = pd.DataFrame({"start": start, "end": end})
    windows = windows[windows.end <= pd.Timestamp(f"{CALIBRATION['last_year']}-12-31")]
    windows = windows[~windows.index.isin(surgery)]
    first_month = windows.start.dt.to_period("M")
    need = (windows.end.dt.to_period("M") - first_month).map(lambda d: d.n) + 1
    ok_months = ok.assign(p=pd.PeriodIndex(ok.year_month, freq="M"))
    joined = ok_months.merge(windows, left_on="bene_id", right_index=True)
    inside = joined[(joined.p >= joined.start.dt.to_period("M")) & (joined.p <= joined.end.dt.to_period("M"))]
    covered = inside.groupby("bene_id").size().reindex(windows.index, fill_value=0)
    windows = windows[(covered == need) & windows.index.isin(months_ok.index)]
    merged = costs.merge(windows, left_on="bene_id", right_index=True)
    merged = merged[(merged.date >= merged.start) & (merged.date <= merged.end)]
    windows["cost"] = merged.groupby("bene_id").cost.sum().reindex(windows.index, fill_value=0.0)
    return windows


def test_mean_condition_cost_per_patient_year_is_on_target(calibration_world):
    rules = load_rules(2027)
    target = rules.value("synth.target_mean_cost")  # PY2025 national averages, held forward
    factor = rules.value("synth.episode_basis_factor")
    for cohort in ("hf", "lbp"):
        windows = _window_costs(calibration_world, cohort)
        assert len(windows) > 200, cohort
        ratio = windows.cost.mean() / (target[cohort] * factor[cohort])
        assert 0.85 <= ratio <= 1.15, (cohort, ratio, len(windows))
        assert (windows.cost > 0).all()


def test_some_specialists_reach_the_case_minimum(calibration_world):
    truth = read(calibration_world, "truth").to_pandas()
    clinician = read(calibration_world, "clinician").to_pandas().drop_duplicates(["tin", "npi"])
    t = truth.merge(clinician, on=["tin", "npi"])
    panel = t.groupby(["cohort", "specialty_code", "tin", "npi"]).bene_id.nunique()
    assert (panel.loc["hf", "06"] >= 20).sum() >= 2
    lbp = panel.loc["lbp"]
    assert (lbp[lbp.index.get_level_values(0).isin(["05", "09", "14", "20", "25", "72"])] >= 20).sum() >= 2
