"""Improvement activities and Promoting Interoperability deductions per TIN (42 CFR 512.735, 512.740;
asm-model.md §5, §6).

IA and PI only subtract final-score points. Each of the two required activities not met costs
`ia_pi.ia_deduction_per_unmet_activity`, capped at `ia_pi.ia_deduction_max`; PI not met costs `ia_pi.pi_deduction`.
Whether an activity is met is decided here from the attested facts (`ia_pi_attestation` tables), joined with
the code lists ia_pi__ia_elements and ia_pi__pi_measures:
- IA-1 (§512.735(b)): attested, valid, a continuous period of ≥ `ia_pi.ia_min_period_days` inside the PY, and
  every required IA-1 element.
- IA-2 (§512.735(c), §512.771): the same period rule, a CCA partner TIN and effective date on or before the period
  end, and ≥ `ia_pi.ia2_min_cca_elements` CCA elements.
- PI (§512.740): attested, valid, a CEHRT id, ≥ `ia_pi.pi_min_period_days` continuous days inside the PY, and
  every required objective met: an objective is met when all measures of one of its options are performed or
  replaced by a claimed exclusion (rows required_by = mips count when `ia_pi.pi_mips_base_required`).
A TIN without an attestation row meets nothing. With `ia_pi.pi_special_status_reweighting`, TINs listed in
`pi_special_status` get no PI deduction.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesForYear
from openasm.scoring.cost_category import participants_for_year
from openasm.scoring.formulas import ia_deduction, pi_deduction

MET = "met"
NO_ATTESTATION = "no_attestation"
NOT_ATTESTED = "not_attested"
INVALID = "invalid_attestation"  # a finding in the quarantine table
PERIOD = "period_too_short_or_outside_py"
MISSING_ELEMENTS = "missing_required_elements"
TOO_FEW_CCA = "too_few_cca_elements"
NO_CCA = "no_cca_partner_or_effective_date"
NO_CEHRT = "no_cehrt_id"
OBJECTIVES_UNMET = "objectives_unmet"
SPECIAL_STATUS = "special_status_reweighted"

IA_PI_DEDUCTION_COLUMNS = (
    "performance_year", "tin", "has_attestation", "ia1_met", "ia1_status", "ia2_met", "ia2_status",
    "ia_unmet_activities", "ia_deduction_points", "pi_met", "pi_status", "pi_unmet_objectives",
    "has_pi_special_status", "pi_deduction_points",
)


def _period_ok(start: ir.DateValue, end: ir.DateValue, year: ir.IntegerValue, min_days: int) -> ir.BooleanValue:
    """§512.735(a), §512.740(a): a continuous period of at least `min_days` days inside the performance year."""
    ok = start.notnull() & end.notnull() & (start.year() == year) & (end.year() == year) & (end >= start)
    return (ok & (end.delta(start, unit="day") + 1 >= min_days)).fill_null(False)


def _ia_element_counts(attestation_item: ir.Table, rules: RulesForYear) -> ir.Table:
    """Per (performance_year, tin): required IA-1 elements present and IA-2 elements present."""
    elements = ibis.memtable(rules.code_list("ia_pi__ia_elements"))
    i = attestation_item.filter(attestation_item.component.isin(["IA_1", "IA_2"]))
    j = i.join(elements, (i.component == elements.activity) & (i.item_id == elements.element))
    j = j.select("performance_year", "tin", "component", "item_id", required=elements.is_required == "true")
    j = j.distinct()
    return j.group_by(_e_year=j.performance_year, _e_tin=j.tin).agg(
        ia1_required_present=((j.component == "IA_1") & j.required).sum(),
        ia2_elements_present=(j.component == "IA_2").sum(),
    )


def _pi_objectives(attestation_item: ir.Table, rules: RulesForYear) -> tuple[ir.Table, list[str]]:
    """Per (performance_year, tin): one boolean column `_met__<objective>` per required PI objective."""
    codes = rules.code_list("ia_pi__pi_measures").to_pylist()
    bases = {"asm", "mips"} if rules.value("ia_pi.pi_mips_base_required") else {"asm"}
    requirement = [r for r in codes if r["option"] and r["required_by"] in bases]
    objectives = sorted({r["objective"] for r in requirement})
    needed: dict[tuple[str, str], int] = {}
    for r in requirement:
        needed[(r["objective"], r["option"])] = needed.get((r["objective"], r["option"]), 0) + 1
    req = ibis.memtable({
        "_r_measure": [r["measure_id"] for r in requirement], "_r_objective": [r["objective"] for r in requirement],
        "_r_option": [r["option"] for r in requirement],
        "_r_needed": [float(needed[(r["objective"], r["option"])]) for r in requirement],
    })
    satisfies = ibis.memtable({"_s_item": [r["measure_id"] for r in codes if r["satisfies"]],
                               "_s_measure": [r["satisfies"] for r in codes if r["satisfies"]]})
    i = attestation_item.filter(attestation_item.component == "PI")
    s = i.join(satisfies, i.item_id == satisfies._s_item).select("performance_year", "tin", "_s_measure").distinct()
    j = s.join(req, s._s_measure == req._r_measure)
    per_option = j.group_by("performance_year", "tin", "_r_objective", "_r_option").agg(
        _n=j._s_measure.nunique(), _needed=j._r_needed.max())
    met_option = per_option.filter(per_option._n >= per_option._needed)
    met = met_option.group_by(_o_year=met_option.performance_year, _o_tin=met_option.tin).agg(
        **{f"_met__{o}": (met_option._r_objective == o).any() for o in objectives})
    return met, objectives


def compute_ia_pi_deductions(*, participant: ir.Table, attestation: ir.Table, attestation_item: ir.Table,
                             rules: RulesForYear, pi_special_status: ir.Table | None = None) -> ir.Table:
    """§512.735, §512.740 (asm-model §5, §6): IA and PI deductions per TIN of the rules' performance year.

    participant: performance_year, tin (+ npi, cohort; one row per participant). attestation and
    attestation_item: `read_attestation` tables (ATTESTATION_SCHEMA, ITEM_SCHEMA). pi_special_status
    (optional): performance_year, tin of TINs with a MIPS special status. Grain: (performance_year, tin), one row
    per participant TIN. Columns: IA_PI_DEDUCTION_COLUMNS; *_status says why an activity is or is not met,
    pi_unmet_objectives lists the PI objectives not met (comma-separated).
    """
    year = rules.performance_year
    ia_min, pi_min = int(rules.value("ia_pi.ia_min_period_days")), int(rules.value("ia_pi.pi_min_period_days"))
    per_unmet = float(rules.value("ia_pi.ia_deduction_per_unmet_activity"))
    ia_max = float(rules.value("ia_pi.ia_deduction_max"))
    pi_points = float(rules.value("ia_pi.pi_deduction"))
    min_cca = int(rules.value("ia_pi.ia2_min_cca_elements"))
    n_ia1_required = sum(1 for e in rules.code_list("ia_pi__ia_elements").to_pylist()
                         if e["activity"] == "IA_1" and e["is_required"] == "true")

    tins = participants_for_year(participant, rules).select("performance_year", "tin").distinct()
    a = attestation.filter(attestation.performance_year.cast("int32") == year)
    a = a.rename(**{f"_a_{c}": c for c in a.columns})
    j = tins.left_join(a, (tins.performance_year == a._a_performance_year) & (tins.tin == a._a_tin))
    counts = _ia_element_counts(attestation_item, rules)
    j = j.left_join(counts, (j.performance_year == counts._e_year) & (j.tin == counts._e_tin))
    objectives_met, objectives = _pi_objectives(attestation_item, rules)
    j = j.left_join(objectives_met, (j.performance_year == objectives_met._o_year) & (j.tin == objectives_met._o_tin))

    if rules.value("ia_pi.pi_special_status_reweighting") and pi_special_status is not None:
        s = pi_special_status
        s = s.select(_s_year=s.performance_year.cast("int32"), _s_tin=s.tin.cast("string")).distinct()
        s = s.mutate(_s_flag=ibis.literal(True))
        j = j.left_join(s, (j.performance_year == s._s_year) & (j.tin == s._s_tin))
        special = j._s_flag.notnull()
    else:
        special = ibis.literal(False)

    has = j._a_tin.notnull()
    py = j.performance_year

    def base(prefix: str, min_days: int) -> list[tuple[ir.BooleanValue, str]]:
        return [
            (~has, NO_ATTESTATION), (~j[f"_a_{prefix}_attested"].fill_null(False), NOT_ATTESTED),
            (~j[f"_a_{prefix}_valid"].fill_null(False), INVALID),
            (~_period_ok(j[f"_a_{prefix}_start_date"], j[f"_a_{prefix}_end_date"], py, min_days), PERIOD),
        ]

    ia1_status = ibis.cases(
        *base("ia1", ia_min),
        (j.ia1_required_present.fill_null(0) < n_ia1_required, MISSING_ELEMENTS), else_=MET)
    cca_in_force = (j._a_ia2_cca_effective_date <= j._a_ia2_end_date).fill_null(False)
    ia2_status = ibis.cases(
        *base("ia2", ia_min),
        (j._a_ia2_cca_partner_tin.isnull() | ~cca_in_force, NO_CCA),
        (j.ia2_elements_present.fill_null(0) < min_cca, TOO_FEW_CCA), else_=MET)
    met_flags = {o: j[f"_met__{o}"].fill_null(False) for o in objectives}
    all_met = ibis.literal(True)
    for flag in met_flags.values():
        all_met &= flag
    unmet = ibis.literal("", "string")
    for o, flag in met_flags.items():
        unmet = unmet.concat(ibis.ifelse(flag, "", f"{o},"))
    pi_status = ibis.cases(
        *base("pi", pi_min), (j._a_pi_cehrt_id.isnull(), NO_CEHRT), (~all_met, OBJECTIVES_UNMET), else_=MET)

    j = j.mutate(ia1_status=ia1_status, ia2_status=ia2_status, pi_status=pi_status, _special=special,
                 pi_unmet_objectives=ibis.ifelse(all_met, ibis.null("string"), unmet.re_replace(",$", "")))
    unmet_count = (j.ia1_status != MET).cast("int32") + (j.ia2_status != MET).cast("int32")
    pi_met = j.pi_status == MET
    return j.select(
        "performance_year", "tin",
        has_attestation=has,
        ia1_met=j.ia1_status == MET, ia1_status=j.ia1_status,
        ia2_met=j.ia2_status == MET, ia2_status=j.ia2_status,
        ia_unmet_activities=unmet_count,
        ia_deduction_points=ia_deduction(unmet_count, per_unmet, ia_max),
        pi_met=pi_met,
        pi_status=ibis.ifelse(~pi_met & j._special, SPECIAL_STATUS, j.pi_status),
        pi_unmet_objectives=j.pi_unmet_objectives,
        has_pi_special_status=j._special,
        pi_deduction_points=pi_deduction(pi_met | j._special, pi_points),
    )
