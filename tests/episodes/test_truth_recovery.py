"""The grouper recovers the patient-practice relationships the synthetic world planted (issue floor 0.95).

Truth lists each planted bene x TIN x NPI relationship with at least two condition E/M visits inside the
confirm window. Recall: share of planted bene x TIN pairs that get an attribution window for the measure.
Precision: share of windows opened by an E/M trigger that are planted (windows opened by physical therapy,
chiropractic or injection TINs are legitimate LBP windows but are not planted as managing relationships, so
they are left out of the denominator). NPI recall: planted NPIs attributed (≥ 30%) on the pair's episodes.
"""

from __future__ import annotations

import ibis
import pytest

from openasm.episodes.attribution import attribute_clinicians
from openasm.episodes.group import group_episodes
from openasm.ingest.final_action import resolve_final_action
from openasm.rules import load_rules
from openasm.synth import generate_world

from ..conftest import ingest_folder

FLOOR = 0.95
KEYS = ["bene_id", "measure_id", "billing_tin"]


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    from openasm.engine import connect

    base = tmp_path_factory.mktemp("truth")
    generate_world(out_dir=base / "world", benes=4000, seed=5, first_year=2025, last_year=2027)
    engine = connect("duckdb", base / "run")
    ingest_folder(engine, base / "world")
    rules = load_rules(2027)
    claim_line = engine.save("claim_line_status", resolve_final_action(claims=engine.table("claim_line")))
    out = group_episodes(claim_line=claim_line, claim_diagnosis=engine.table("claim_diagnosis"),
                         beneficiary=engine.table("beneficiary"), enrollment=engine.table("enrollment"), rules=rules)
    saved = {name: engine.save(name, table) for name, table in out.items()}
    saved["episode_attribution"] = engine.save("episode_attribution", attribute_clinicians(
        episode=saved["episode"], qualifying=saved["qualifying_service"], claim_line=claim_line, rules=rules))
    truth = engine.con.read_parquet(str(base / "world" / "truth" / "*.parquet"))
    truth = truth.mutate(measure_id=ibis.cases((truth.cohort == "hf", "COST_HF_1"), else_="COST_LBP_1"),
                         billing_tin=truth.tin)
    saved["truth"] = engine.save("truth", truth)
    yield engine, saved
    engine.close()


def _n(expr) -> int:
    return int(expr.count().to_pyarrow().as_py())


@pytest.mark.parametrize("measure_id", ["COST_HF_1", "COST_LBP_1"])
def test_planted_relationships_are_recovered(grouped, measure_id):
    engine, t = grouped
    planted = t["truth"].filter(t["truth"].measure_id == measure_id).select(*KEYS).distinct()
    windows = t["attribution_window"].filter(t["attribution_window"].measure_id == measure_id).select(*KEYS).distinct()
    recall = _n(planted.semi_join(windows, KEYS)) / _n(planted)
    em = t["qualifying_service"].filter(t["qualifying_service"].hcpcs_code.startswith("992"))
    aw = t["attribution_window"].filter(t["attribution_window"].measure_id == measure_id)
    opened = aw.join(em, [*KEYS, aw.taw_start_date == em.service_date]).select(*KEYS).distinct()
    precision = _n(opened.semi_join(planted, KEYS)) / _n(opened)
    print(f"{measure_id}: recall {recall:.4f} over {_n(planted)} planted pairs; precision {precision:.4f}")
    assert _n(planted) > 100
    assert recall >= FLOOR and precision >= FLOOR


def test_planted_clinicians_are_attributed(grouped):
    engine, t = grouped
    episodes = t["episode"].filter(t["episode"].exclusion_reason.isnull())
    att = t["episode_attribution"]
    with_episode = t["truth"].semi_join(episodes, KEYS)
    attributed = att.filter(att.is_attributed).select(*[k for k in KEYS if k != "bene_id"], "episode_id", "rendering_npi")
    attributed = attributed.join(episodes.select("episode_id", "bene_id"), "episode_id")
    hit = with_episode.semi_join(attributed, [*KEYS, with_episode.npi == attributed.rendering_npi])
    share = _n(hit) / _n(with_episode)
    print(f"planted NPIs attributed: {share:.4f} of {_n(with_episode)}")
    assert share >= 0.9
