"""Drill-down tables: where each episode's cost went, by service category and by rendering provider."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.schema.sums import exact_sum


def service_category(claim_type: ir.StringValue, hcpcs: ir.StringValue, categories: pa.Table) -> ir.StringValue:
    """Category of a cost row from the `cost__service_categories` list: the first row (by priority) whose
    claim type (blank = any) and HCPCS prefix (blank = any) match."""
    rows = sorted(categories.to_pylist(), key=lambda r: int(r["priority"]))
    branches = []
    for row in rows:
        test = ibis.literal(True)
        if row["claim_type"]:
            test = test & (claim_type == row["claim_type"])
        if row["hcpcs_prefix"]:
            test = test & hcpcs.fill_null("").startswith(row["hcpcs_prefix"])
        branches.append((test, row["category"]))
    return ibis.cases(*branches, else_="other")


def categorize_cost_lines(*, episode_cost_line: ir.Table, categories: pa.Table) -> ir.Table:
    """Each assigned cost row with its drill-down `service_category`."""
    return episode_cost_line.mutate(
        service_category=service_category(episode_cost_line.claim_type, episode_cost_line.hcpcs_code, categories)
    )


def summarize_cost_by_category(*, categorized_cost_line: ir.Table) -> ir.Table:
    """Grain: episode x service category. Columns: episode_id, measure_id, service_category, line_count,
    std_cost_amount."""
    c = categorized_cost_line
    return c.group_by("episode_id", "measure_id", "service_category").agg(
        line_count=c.count(), std_cost_amount=exact_sum(c.std_cost_amount)
    )


def summarize_cost_by_provider(*, categorized_cost_line: ir.Table) -> ir.Table:
    """Grain: measure x rendering provider (NPI; prescriber for Part D) x category, over all episodes: who
    delivered the assigned services. Columns: measure_id, rendering_npi, service_category, episode_count,
    line_count, std_cost_amount."""
    c = categorized_cost_line
    return c.group_by("measure_id", "rendering_npi", "service_category").agg(
        episode_count=c.episode_id.nunique(), line_count=c.count(), std_cost_amount=exact_sum(c.std_cost_amount)
    )


def summarize_cost_drivers(*, categorized_cost_line: ir.Table, scored_episode: ir.Table) -> ir.Table:
    """Grain: measure x service category over scored (non-excluded) episodes: national spend share, for the
    report's top cost drivers."""
    c = categorized_cost_line.semi_join(scored_episode, "episode_id")
    by_category = c.group_by("measure_id", "service_category").agg(
        episode_count=c.episode_id.nunique(), std_cost_amount=exact_sum(c.std_cost_amount)
    )
    total = exact_sum(by_category.std_cost_amount).over(ibis.window(group_by="measure_id"))
    return by_category.mutate(cost_share=by_category.std_cost_amount / total)
