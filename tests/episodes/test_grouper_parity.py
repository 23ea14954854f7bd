"""The grouper and attribution give identical tables on DuckDB and PySpark (golden scenarios combined)."""

from __future__ import annotations

import pytest

from openasm.episodes.attribution import attribute_clinicians
from openasm.episodes.group import group_episodes
from openasm.rules import load_rules

from ..conftest import assert_tables_equal
from .factory import TIN_A, TIN_B, bene, ffs_months, visit, world


def _scenarios():
    lines = [
        visit("B1", "2026-03-01"), visit("B1", "2026-04-30"),                       # confirmed on day 60
        visit("B2", "2026-03-01"), visit("B2", "2026-05-01"),                       # day 61: not confirmed
        visit("B3", "2026-03-01", tin=TIN_A), visit("B3", "2026-03-20", tin=TIN_B, npi_n=2),  # other TIN
        *[visit("B4", day) for day in ("2025-02-01", "2025-02-20", "2026-01-15", "2027-03-01", "2027-03-15")],
        visit("B5", "2027-01-10"), visit("B5", "2027-02-01"),                       # dies 2027-06-30
        visit("B6", "2027-01-10"), visit("B6", "2027-02-01"),                       # MA from 2027-09
        *[visit("B7", day, npi_n=n) for n, days in {1: ["2027-01-02", "2027-03-01", "2027-05-01", "2027-07-01"],
                                                     2: ["2027-01-10", "2027-04-01", "2027-06-01"],
                                                     3: ["2027-08-01", "2027-09-01"]}.items() for day in days],
        visit("B8", "2027-01-10", hcpcs="99214", dx="I5022", specialty="06"),
        visit("B8", "2027-05-09", hcpcs="99214", dx="I5032", specialty="06"),
    ]
    benes = [bene(f"B{i}") for i in range(1, 9) if i != 5] + [bene("B5", death="2027-06-30")]
    enrollment = [m for b in benes if b["bene_id"] != "B6" for m in ffs_months(b["bene_id"])]
    enrollment += ffs_months("B6", gaps=("2027-09", "2027-10", "2027-11", "2027-12"))
    return world(lines, benes, enrollment=enrollment)


@pytest.mark.spark
def test_grouper_and_attribution_identical_on_both_backends(tmp_path, engine_for):
    rules = load_rules(2027)
    results = {}
    for backend in ("duckdb", "pyspark"):
        engine = engine_for(backend, tmp_path / backend)
        tables = {name: engine.save(name, t) for name, t in _scenarios().items()}
        grouped = group_episodes(rules=rules, **tables)
        episode = engine.save("episode", grouped["episode"])
        qualifying = engine.save("qualifying_service", grouped["qualifying_service"])
        shares = attribute_clinicians(episode=episode, qualifying=qualifying, claim_line=tables["claim_line"],
                                      rules=rules)
        results[backend] = {
            "episode": engine.fetch(episode),
            "attribution_window": engine.fetch(grouped["attribution_window"]),
            "trigger_event": engine.fetch(grouped["trigger_event"]),
            "episode_attribution": engine.fetch(shares),
        }
    assert results["duckdb"]["episode"].num_rows >= 5
    for name in results["duckdb"]:
        assert_tables_equal(results["duckdb"][name], results["pyspark"][name])
