"""QPP JSON (quality.md §5.1, §5.2): export shape, refusal without `asm_program_name`, what is never exported,
export → import round trip giving back the same aggregates, and clear errors for malformed files."""

from __future__ import annotations

import copy
import json

import ibis
import pyarrow as pa
import pytest

from openasm.engine import connect
from openasm.quality.aggregate import MEASURE_AGGREGATE_SCHEMA, aggregate_measure_results, finish_measure_aggregate
from openasm.quality.feed_files import QualityFileError
from openasm.quality.qpp_json import export_qpp_json, read_qpp_json, write_qpp_json
from openasm.rules import RulesError, load_rules
from tests.conftest import assert_tables_equal

T1, T2, N1, N2 = "111111111", "222222222", "1000000001", "1000000002"
PROGRAM = "ASM_TEST_PROGRAM"
OUTCOMES = {"met": (True, False, True, False), "not_met": (True, False, False, False),
            "excluded": (True, True, False, False), "excepted": (True, False, False, True)}


def rules(**overrides):
    return load_rules(2027, overrides={"quality.asm_program_name": PROGRAM, **overrides})


def case_table():
    rows = []  # measure, collection, stratum, tin, npi, outcome, count
    spec = [
        ("134", "electronicHealthRecord", "overall", T1, N1, "met", 7),
        ("134", "electronicHealthRecord", "overall", T1, N1, "not_met", 3),
        ("134", "electronicHealthRecord", "overall", T1, N1, "excepted", 1),
        ("134", "electronicHealthRecord", "overall", T1, N2, "excluded", 2),
        ("134", "electronicHealthRecord", "overall", T1, N2, "met", 1),
        ("238", "electronicHealthRecord", "overall", T1, N1, "met", 2),
        ("238", "electronicHealthRecord", "overall", T1, N1, "not_met", 18),
        ("238", "electronicHealthRecord", "appropriateDiagnosis", T1, N1, "met", 1),
        ("238", "electronicHealthRecord", "appropriateDiagnosis", T1, N1, "not_met", 19),
        ("238", "electronicHealthRecord", "totalRate", T1, N1, "met", 3),
        ("238", "electronicHealthRecord", "totalRate", T1, N1, "not_met", 17),
        ("008", "registry", "overall", T2, N1, "met", 4), ("008", "registry", "overall", T2, N1, "excepted", 1),
        ("128", "claims", "overall", T2, N1, "met", 2),  # Part B claims: not allowed by default
        ("134", "electronicHealthRecord", "overall", None, None, "not_met", 2),  # unattributed
    ]
    for measure, collection, stratum, tin, npi, outcome, n in spec:
        rows.extend([(measure, collection, stratum, tin, npi, outcome)] * n)
    flags = [OUTCOMES[r[5]] for r in rows]
    return ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * len(rows), pa.int32()), "measure_id": [r[0] for r in rows],
        "collection_type": [r[1] for r in rows], "stratum": [r[2] for r in rows],
        "tin": pa.array([r[3] for r in rows], pa.string()), "npi": pa.array([r[4] for r in rows], pa.string()),
        "is_initial_population": [True] * len(rows), "is_denominator": [f[0] for f in flags],
        "is_denominator_exclusion": [f[1] for f in flags], "is_numerator": [f[2] for f in flags],
        "is_denominator_exception": [f[3] for f in flags]}))


def aggregates(engine, rules_):
    electing = ibis.memtable({"tin": [T1]})
    out = aggregate_measure_results(measure_case_result=case_table(), rules=rules_, group_reporting_tin=electing)
    extra = pa.Table.from_pylist([  # a CMS Q492 result and a proxy: never exported
        {"performance_year": 2027, "measure_id": "492", "collection_type": "administrativeClaims", "tin": T1,
         "npi": N1, "entity_level": "tin_npi", "cohort": "hf", "stratum": "overall", "performance_rate": 70.0,
         "case_count": 40, "is_proxy": False, "source": "q492_cms", "cms_scored_flag": True},
        {"performance_year": 2027, "measure_id": "492", "collection_type": "administrativeClaims", "tin": T1,
         "npi": N1, "entity_level": "tin_npi", "cohort": "hf", "stratum": "overall", "performance_rate": 80.0,
         "eligible_population": 3, "case_count": 3, "is_proxy": True, "source": "q492_proxy"},
    ], schema=MEASURE_AGGREGATE_SCHEMA)
    return pa.concat_tables([engine.fetch(out).cast(MEASURE_AGGREGATE_SCHEMA), extra])


def test_export_shape_and_what_is_left_out():
    engine = connect("duckdb")
    export = export_qpp_json(aggregates(engine, rules()), rules=rules())
    engine.close()
    by_entity = {(s["submission"]["taxpayerIdentificationNumber"], s["submission"].get("nationalProviderIdentifier")):
                 s["submission"] for s in export.submissions}
    assert set(by_entity) == {(T1, N1), (T1, N2), (T1, None), (T2, N1)}
    s11 = by_entity[(T1, N1)]
    assert (s11["entityType"], s11["performanceYear"]) == ("individual", 2027)
    (mset,) = s11["measurementSets"]
    assert (mset["category"], mset["submissionMethod"], mset["programName"], mset["performanceStart"],
            mset["performanceEnd"]) == ("quality", "electronicHealthRecord", PROGRAM, "2027-01-01", "2027-12-31")
    measures = {m["measureId"]: m["value"] for m in mset["measurements"]}
    # Q134 for T1/N1: EP 11 = 7 met + 3 not met + 1 exception.
    assert measures["134"] == {"isEndToEndReported": True, "performanceMet": 7, "performanceNotMet": 3,
                               "eligiblePopulationExclusion": 0, "eligiblePopulationException": 1,
                               "eligiblePopulation": 11}
    strata = {s["stratum"]: s for s in measures["238"]["strata"]}
    assert set(strata) == {"overall", "appropriateDiagnosis", "totalRate"}
    assert (strata["overall"]["performanceMet"], strata["overall"]["eligiblePopulation"]) == (2, 20)
    assert by_entity[(T1, None)]["entityType"] == "group"
    registry = by_entity[(T2, N1)]["measurementSets"][0]
    assert registry["submissionMethod"] == "registry"
    assert registry["measurements"][0]["value"]["isEndToEndReported"] is False
    reasons = sorted({r["skip_reason"].split(" (")[0] for r in export.skipped})
    assert reasons == ["administrative-claims measure", "collection type claims is not a QPP quality submission "
                       "method allowed here", "no TIN", "proxy result"]


def test_export_refuses_without_program_name():
    with pytest.raises(RulesError, match="quality.asm_program_name is not set"):
        export_qpp_json(pa.Table.from_pylist([], schema=MEASURE_AGGREGATE_SCHEMA), rules=load_rules(2027))


def test_ehr_results_need_qpp_json_among_ecqm_formats():
    engine = connect("duckdb")
    r = rules(**{"quality.ecqm_submission_formats": ["qrda3"]})
    export = export_qpp_json(aggregates(engine, r), rules=r)
    engine.close()
    methods = {m["submissionMethod"] for s in export.submissions for m in s["submission"]["measurementSets"]}
    assert methods == {"registry"}


def test_round_trip_gives_back_the_same_aggregates(backend, engine_for, tmp_path):
    engine = engine_for(backend)
    original = aggregates(engine, rules())
    export = export_qpp_json(original, rules=rules())
    paths = write_qpp_json(export, tmp_path / "qpp")
    assert len(paths) == 4
    counts = pa.concat_tables([read_qpp_json(p) for p in paths])
    back = engine.fetch(finish_measure_aggregate(counts=ibis.memtable(counts), rules=rules()))
    skipped = {(r["measure_id"], r["collection_type"], r["tin"], r["npi"], r["source"]) for r in export.skipped}
    kept = [r for r in original.to_pylist()
            if (r["measure_id"], r["collection_type"], r["tin"], r["npi"], r["source"]) not in skipped]
    expected = pa.Table.from_pylist([{**r, "source": "qpp_json"} for r in kept], schema=MEASURE_AGGREGATE_SCHEMA)
    assert back.num_rows == 10
    assert_tables_equal(back.cast(MEASURE_AGGREGATE_SCHEMA), expected, float_tol=1e-12)


def _submission():
    return {"submission": {
        "entityType": "individual", "taxpayerIdentificationNumber": T1, "nationalProviderIdentifier": N1,
        "performanceYear": 2027, "measurementSets": [
            {"category": "ia", "submissionMethod": "registry", "measurements": [{"measureId": "IA_X", "value": True}]},
            {"category": "quality", "submissionMethod": "registry", "programName": PROGRAM, "measurements": [
                {"measureId": "134", "value": {"isEndToEndReported": False, "performanceMet": 5,
                                               "performanceNotMet": 3, "eligiblePopulationExclusion": 1,
                                               "eligiblePopulationException": 0, "eligiblePopulation": 10}}]}]}}


def _write(tmp_path, document, name="in.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path


def test_import_reads_quality_sets_only(tmp_path):
    (row,) = read_qpp_json(_write(tmp_path, {"data": _submission()})).to_pylist()
    assert (row["measure_id"], row["collection_type"], row["eligible_population"], row["performance_met"],
            row["performance_not_met"], row["exclusions"], row["source"]) == (
        "134", "registry", 10, 5, 3, 1, "qpp_json")


@pytest.mark.parametrize("change, message", [
    (lambda m: m["value"].pop("performanceNotMet"), r"measure 134: field performanceNotMet is missing"),
    (lambda m: m["value"].update(performanceMet=9),
     r"measure 134: .*performance_met 9 \+ performance_not_met 3 .* exceeds eligible_population 10"),
    (lambda m: m["value"].update(eligiblePopulation="ten"), r"measure 134: field eligiblePopulation must be a whole"),
    (lambda m: m.update(measureId="13"), r"field measureId must be a 3-digit QPP id, got '13'"),
    (lambda m: m["value"].update(strata={}), r"measure 134: field value.strata must be a non-empty list"),
])
def test_malformed_measurements_name_file_measure_and_field(tmp_path, change, message):
    document = copy.deepcopy(_submission())
    change(document["submission"]["measurementSets"][1]["measurements"][0])
    path = _write(tmp_path, document)
    with pytest.raises(QualityFileError, match=rf"in\.json: submission 1 measurementSet 2:? {message}"):
        read_qpp_json(path)


def test_malformed_documents(tmp_path):
    with pytest.raises(QualityFileError, match=r"bad\.json: not valid JSON \(line 1"):
        read_qpp_json(_write(tmp_path, "{not json", "bad.json"))
    with pytest.raises(QualityFileError, match="not a QPP submission"):
        read_qpp_json(_write(tmp_path, {"foo": 1}))
    apm = copy.deepcopy(_submission())
    apm["submission"]["entityType"] = "apm"
    with pytest.raises(QualityFileError, match="field entityType must be individual or group, got 'apm'"):
        read_qpp_json(_write(tmp_path, apm))
    twice = copy.deepcopy(_submission())
    mset = twice["submission"]["measurementSets"][1]
    mset["measurements"].append(copy.deepcopy(mset["measurements"][0]))
    with pytest.raises(QualityFileError, match="measurementSet 2 measure 134: reported twice"):
        read_qpp_json(_write(tmp_path, twice))
    method = copy.deepcopy(_submission())
    method["submission"]["measurementSets"][1]["submissionMethod"] = "fax"
    with pytest.raises(QualityFileError, match="measurementSet 2: field submissionMethod must be one of"):
        read_qpp_json(_write(tmp_path, method))


def test_export_refuses_an_impossible_aggregate():
    bad = pa.Table.from_pylist([{
        "performance_year": 2027, "measure_id": "134", "collection_type": "registry", "tin": T1, "npi": N1,
        "entity_level": "tin_npi", "cohort": "lbp", "stratum": "overall", "eligible_population": 5,
        "performance_met": 5, "performance_not_met": 1, "exclusions": 0, "exceptions": 0, "performance_rate": 83.3,
        "data_completeness": 1.2, "case_count": 6, "is_proxy": False, "source": "engine"}],
        schema=MEASURE_AGGREGATE_SCHEMA)
    with pytest.raises(QualityFileError, match=r"QPP JSON export: measure 134 .* exceeds eligible_population 5"):
        export_qpp_json(bad, rules=rules())
