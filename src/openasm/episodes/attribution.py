"""Attribute episodes to clinicians (TIN-NPI) by their share of the TIN's services (ebcm.md §4)."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.episodes.qualifying import final_lines, line_service_date
from openasm.rules import RulesForYear

SHARE_UNITS = ("line", "claim", "service_date")


def _share_services(
    qualifying: ir.Table, claim_line: ir.Table, measure_services: str
) -> ir.Table:
    if measure_services == "qualifying":
        return qualifying.select("bene_id", "billing_tin", "rendering_npi", "claim_id", "line_number", "service_date")
    if measure_services == "all_part_b":
        lines = final_lines(claim_line)
        lines = lines.filter(lines.claim_type == "carrier")
        return lines.select(
            "bene_id", "billing_tin", "rendering_npi", "claim_id", "line_number",
            service_date=line_service_date(lines),
        )
    raise ValueError(f"episodes.npi_share_services: unsupported value {measure_services!r}")


def attribute_clinicians(
    *, episode: ir.Table, qualifying: ir.Table, claim_line: ir.Table, rules: RulesForYear
) -> ir.Table:
    """ebcm §4: for each episode, each NPI's share of the TIN's counted services for the beneficiary in the
    share window (`episodes.npi_share_window`: TAW start to episode end, or the episode); NPIs with share
    ≥ `episodes.npi_share_threshold` are attributed (several may be). Counted services: `npi_share_services`
    (qualifying, or all Part B carrier lines); unit `npi_share_unit` (line, claim or service date).

    Grain: episode x NPI (every NPI with a counted service, attributed or not). Columns: episode_id,
    measure_id, billing_tin, rendering_npi, npi_service_count, tin_service_count, service_share, is_attributed.
    The group is the TIN that opened the window, every TIN keeping its own episodes, with no extra NPI filter.
    """
    rules.require({"episodes.group_attribution": "taw_tin", "episodes.multi_tin_attribution": True,
                   "episodes.npi_filter": "none"})
    threshold = float(rules.value("episodes.npi_share_threshold"))
    unit = rules.value("episodes.npi_share_unit")
    if unit not in SHARE_UNITS:
        raise ValueError(f"episodes.npi_share_unit: unsupported value {unit!r}")
    window = rules.value("episodes.npi_share_window")
    services = _share_services(qualifying, claim_line, rules.value("episodes.npi_share_services"))
    if window == "taw_start_to_episode_end":
        window_start = episode.taw_start_date
    elif window == "episode":
        window_start = episode.episode_start_date
    else:
        raise ValueError(f"episodes.npi_share_window: unsupported value {window!r}")
    scoped = episode.select(
        "episode_id", "measure_id", _bene=episode.bene_id, _tin=episode.billing_tin,
        _from=window_start, _to=episode.episode_end_date,
    )
    joined = scoped.join(
        services,
        (scoped._bene == services.bene_id) & (scoped._tin == services.billing_tin)
        & (services.service_date >= scoped._from) & (services.service_date <= scoped._to),
    )
    unit_key = {
        "line": ibis.literal("|").join([joined.claim_id, joined.line_number.cast("string")]),
        "claim": joined.claim_id,
        "service_date": joined.service_date.cast("string"),
    }[unit]
    joined = joined.mutate(_unit=unit_key)
    per_npi = joined.group_by("episode_id", "measure_id", "billing_tin", "rendering_npi").agg(
        npi_service_count=joined._unit.nunique()
    )
    per_tin = joined.group_by(_tin_episode_id=joined.episode_id).agg(tin_service_count=joined._unit.nunique())
    shares = per_npi.join(per_tin, per_npi.episode_id == per_tin._tin_episode_id).drop("_tin_episode_id")
    share = shares.npi_service_count.cast("float64") / shares.tin_service_count.cast("float64")
    return shares.mutate(
        npi_service_count=shares.npi_service_count.cast("int64"),
        tin_service_count=shares.tin_service_count.cast("int64"),
        service_share=share,
        is_attributed=share >= threshold,
    )
