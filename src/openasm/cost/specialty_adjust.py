"""Specialty adjustment of expected cost (ebcm.md §7.4, §12 step 12)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.rules import RulesForYear
from openasm.schema.sums import exact_mean, exact_sum


def adjust_for_specialty(
    *, episode_expected: ir.Table, episode_attribution: ir.Table, clinician_specialty: ir.Table, rules: RulesForYear
) -> ir.Table:
    """ebcm §7.4: multiplicative O/E specialty factors (`cost.specialty_adjustment` = multiplicative_oe) applied to
    the risk-adjusted expected cost, for TIN-NPIs and for TINs (`cost.tin_specialty_weighting` = episode_share).

    - f_k = Σ y / Σ Ê per measure over the national non-outlier episodes attributed to an NPI of specialty k
      (each episode once per specialty, however many of its NPIs share the specialty); y = winsorized cost.
    - TIN-NPI: E = Ê × f_k of the NPI's specialty; an NPI without a specialty uses f = 1.
    - TIN: E = Ê × Σ_k w_k f_k, one factor per TIN and measure, with w_k the share of the TIN's attributed
      NPI-episodes (non-outlier) in specialty k. An episode of the TIN with no attributed NPI counts as one unit
      with f = 1 (and so does an attributed NPI without a specialty); a TIN with no non-outlier episode uses 1.
    Outlier episodes keep their rows (flag carried) and get the same factors; they do not shape the factors.

    episode_expected: episode_id, measure_id, winsorized_cost, expected_cost, is_outlier. episode_attribution
    (`attribute_clinicians`): episode_id, billing_tin, rendering_npi, is_attributed — every episode's TIN is
    taken from its rows. clinician_specialty: rendering_npi, specialty_code.
    Grain: episode × entity. Columns: entity_level ('tin' | 'tin_npi'), billing_tin, rendering_npi (null for
    'tin'), episode_id, measure_id, specialty_code, specialty_factor, expected_cost, expected_cost_adjusted,
    winsorized_cost, is_outlier.
    """
    method = rules.value("cost.specialty_adjustment")
    if method != "multiplicative_oe":
        raise ValueError(f"cost.specialty_adjustment: unsupported value {method!r}")
    weighting = rules.value("cost.tin_specialty_weighting")
    if weighting != "episode_share":
        raise ValueError(f"cost.tin_specialty_weighting: unsupported value {weighting!r}")

    ee = episode_expected.select("episode_id", "measure_id", "winsorized_cost", "expected_cost", "is_outlier")
    attributed = episode_attribution.filter(episode_attribution.is_attributed.fill_null(False))
    attributed = attributed.select("episode_id", "billing_tin", "rendering_npi").distinct()
    spec = clinician_specialty.select(
        _s_npi=clinician_specialty.rendering_npi, _s_code=clinician_specialty.specialty_code
    )
    npi_ep = attributed.left_join(spec, attributed.rendering_npi == spec._s_npi)
    npi_ep = npi_ep.select("episode_id", "billing_tin", "rendering_npi", specialty_code=npi_ep._s_code)
    npi_ep = npi_ep.join(ee, "episode_id")

    basis = npi_ep.filter(~npi_ep.is_outlier & npi_ep.specialty_code.notnull())
    basis = basis.select("measure_id", "specialty_code", "episode_id", "winsorized_cost", "expected_cost").distinct()
    factors = basis.group_by(_f_measure=basis.measure_id, _f_code=basis.specialty_code).agg(
        _f=exact_sum(basis.winsorized_cost) / exact_sum(basis.expected_cost)
    )
    npi_rows = npi_ep.left_join(
        factors, (npi_ep.measure_id == factors._f_measure) & (npi_ep.specialty_code == factors._f_code)
    )
    npi_rows = npi_rows.mutate(specialty_factor=npi_rows._f.fill_null(1.0))
    tin_npi = npi_rows.select(
        entity_level=ibis.literal("tin_npi"), billing_tin=npi_rows.billing_tin, rendering_npi=npi_rows.rendering_npi,
        episode_id=npi_rows.episode_id, measure_id=npi_rows.measure_id, specialty_code=npi_rows.specialty_code,
        specialty_factor=npi_rows.specialty_factor, expected_cost=npi_rows.expected_cost,
        expected_cost_adjusted=npi_rows.expected_cost * npi_rows.specialty_factor,
        winsorized_cost=npi_rows.winsorized_cost, is_outlier=npi_rows.is_outlier,
    )

    tins = episode_attribution.select("episode_id", "billing_tin").distinct()
    tin_ep = tins.join(ee, "episode_id")
    units_npi = npi_rows.filter(~npi_rows.is_outlier).select(
        "measure_id", "billing_tin", _unit=npi_rows.specialty_factor
    )
    bare = tin_ep.filter(~tin_ep.is_outlier).anti_join(attributed, "episode_id")
    units_bare = bare.select("measure_id", "billing_tin", _unit=ibis.literal(1.0, "float64"))
    units = units_npi.union(units_bare, distinct=False)
    tin_factor = units.group_by(_t_measure=units.measure_id, _t_tin=units.billing_tin).agg(_tf=exact_mean(units._unit))
    tin_rows = tin_ep.left_join(
        tin_factor, (tin_ep.measure_id == tin_factor._t_measure) & (tin_ep.billing_tin == tin_factor._t_tin)
    )
    tin_rows = tin_rows.mutate(specialty_factor=tin_rows._tf.fill_null(1.0))
    tin = tin_rows.select(
        entity_level=ibis.literal("tin"), billing_tin=tin_rows.billing_tin, rendering_npi=ibis.null("string"),
        episode_id=tin_rows.episode_id, measure_id=tin_rows.measure_id, specialty_code=ibis.null("string"),
        specialty_factor=tin_rows.specialty_factor, expected_cost=tin_rows.expected_cost,
        expected_cost_adjusted=tin_rows.expected_cost * tin_rows.specialty_factor,
        winsorized_cost=tin_rows.winsorized_cost, is_outlier=tin_rows.is_outlier,
    )
    return tin.union(tin_npi, distinct=False)
