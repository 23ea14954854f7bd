"""Planted relationships are in the claims; no service after death or outside the coverage it needs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from openasm.synth import codes

from .conftest import read

OFFICE_EM = {"99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215"}
WINDOW = {"hf": 180, "lbp": 60}


def _valid_lines(world) -> pd.DataFrame:
    """Claim lines without the injected invalid rows (injected rows are new claims with no diagnosis rows)."""
    lines = read(world, "claim_line").to_pandas()
    with_dx = set(read(world, "claim_diagnosis")["claim_id"].to_pylist())
    return lines[lines.claim_id.isin(with_dx)].drop_duplicates(["claim_id", "line_number"])


def test_truth_relationships_exist_in_claims(small_world):
    world, summary = small_world
    truth = read(world, "truth").to_pandas()
    assert len(truth) == summary.truth_rows > 50
    assert set(truth.cohort) == {"hf", "lbp"}
    assert not truth.duplicated(["bene_id", "cohort", "tin", "npi"]).any()
    lines = _valid_lines(world)
    lines = lines[lines.hcpcs_code.isin(OFFICE_EM) & lines.claim_adjustment_type.fillna("original").eq("original")]
    lines["cohort"] = np.where(lines.line_dx_code.isin(codes.HF_DX_SET), "hf",
                               np.where(lines.line_dx_code.isin(codes.LBP_DX_SET), "lbp", None))
    visits = truth.merge(lines, left_on=["bene_id", "cohort", "tin", "npi"],
                         right_on=["bene_id", "cohort", "billing_tin", "rendering_npi"])
    visits = visits.sort_values(["bene_id", "cohort", "tin", "npi", "line_from_date"])
    day = pd.to_datetime(visits.line_from_date)
    gap = day.groupby([visits.bene_id, visits.cohort, visits.tin, visits.npi]).diff().dt.days
    visits["paired"] = (gap >= 1) & (gap <= visits.cohort.map(WINDOW))
    per = visits.groupby(["bene_id", "cohort", "tin", "npi"]).agg(
        n=("claim_id", "nunique"), paired=("paired", "any"), first=("line_from_date", "min"))
    per = per.reindex(pd.MultiIndex.from_frame(truth[["bene_id", "cohort", "tin", "npi"]]))
    assert (per.n >= 2).all() and per.paired.all()
    assert (per.n.to_numpy() == truth.n_condition_visits.to_numpy()).all()
    assert (per["first"].to_numpy() == truth.first_visit_date.to_numpy()).all()


def _coverage(world) -> tuple[pd.DataFrame, pd.Series]:
    enrollment = read(world, "enrollment").to_pandas().drop_duplicates(["bene_id", "year_month"])
    deaths = read(world, "beneficiary").to_pandas().drop_duplicates("bene_id").set_index("bene_id").death_date
    return enrollment.set_index(["bene_id", "year_month"]), deaths


def _month(dates: pd.Series) -> pd.Series:
    return pd.to_datetime(dates).dt.strftime("%Y-%m")


def test_no_claims_after_death_or_outside_ffs_months(small_world):
    world, _ = small_world
    cover, death = _coverage(world)
    lines = _valid_lines(world)
    died = lines.bene_id.map(death)
    assert not (pd.to_datetime(lines.claim_thru_date) > pd.to_datetime(died)).any()
    assert not (pd.to_datetime(lines.line_from_date) > pd.to_datetime(died)).any()
    part_b = lines.claim_type.isin(["carrier", "dme"])
    for column in ("claim_from_date", "claim_thru_date"):
        key = pd.MultiIndex.from_arrays([lines.bene_id, _month(lines[column])])
        row = cover.reindex(key)
        ffs = row.has_part_a.eq(True).to_numpy() & row.is_medicare_advantage.eq(False).to_numpy()
        ffs_b = ffs & row.has_part_b.eq(True).to_numpy()
        assert np.where(part_b, ffs_b, ffs).all(), column


def test_fills_only_in_part_d_months_while_alive(small_world):
    world, _ = small_world
    cover, death = _coverage(world)
    fills = read(world, "pharmacy_claim").to_pandas()
    fills = fills[fills.bene_id.isin(death.index) & fills.fill_date.notna()].drop_duplicates("claim_id")
    key = pd.MultiIndex.from_arrays([fills.bene_id, _month(fills.fill_date)])
    row = cover.reindex(key)
    assert row.has_part_d.eq(True).all()
    assert not (pd.to_datetime(fills.fill_date) > pd.to_datetime(fills.bene_id.map(death))).any()


def test_adjustments_and_cancels_point_at_originals(small_world):
    world, _ = small_world
    lines = read(world, "claim_line").to_pandas()
    versions = lines[lines.claim_adjustment_type.isin(["adjustment", "cancel"])]
    originals = set(lines.claim_id[lines.claim_adjustment_type.fillna("original") == "original"])
    assert versions.original_claim_id.isin(originals).all()
    cancels = versions[versions.claim_adjustment_type == "cancel"]
    assert (cancels.allowed_amount <= 0).all()
    later = versions.merge(lines[["claim_id", "claim_processed_date"]].drop_duplicates("claim_id"),
                           left_on="original_claim_id", right_on="claim_id", suffixes=("", "_orig"))
    assert (later.claim_processed_date > later.claim_processed_date_orig).all()
