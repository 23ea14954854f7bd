"""The whole chain through the CLI on a small synthetic world (the shared `demo_output` run: synth → ingest →
summary → episodes → cost → participation → quality → scores → payment → report and board PDF), with every report
section present and the manifest recording the rules and code lists used."""

from __future__ import annotations

import json


def test_demo_end_to_end(demo_output):
    out = demo_output
    page = (out / "index.html").read_text()
    for heading in ("Row counts and validation", "Quarantine reasons", "Claim versions", "Claim spend by setting",
                    "Part B professional spend by specialty", "Episodes (performance year 2027)", "Episode cost",
                    "Top cost drivers", "Cost measure scores", "Rules in force"):
        assert heading in page, heading
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    assert manifest["ingest"]["reconciles"] is True
    used = {row["name"] for row in manifest["rules_used"]}
    assert {"episodes.confirm_window_days", "cost.case_minimum", "cost.band_table"} <= used
    assert any(row["name"] == "codes:cost__assigned_service_rules" for row in manifest["code_lists_used"])
    for name in ("episode_detail", "episode_attribution", "episode_exclusion", "episode_cost_line", "measure_score",
                 "episode_cost_by_category", "cost_drivers"):
        assert (out / "run" / "outputs" / f"{name}.csv").exists(), name
    assert (out / "board-report.pdf").is_file()
