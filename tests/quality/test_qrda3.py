"""QRDA Category III (quality.md §5.1, §5.3): export of eCQM aggregates, export → import round trip giving back the
same aggregates, IPP entries, refusals, and clear errors naming file, measure (stratum) and field."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime

import ibis
import pyarrow as pa
import pytest

from openasm.engine import connect
from openasm.quality.aggregate import MEASURE_AGGREGATE_SCHEMA, aggregate_measure_results, finish_measure_aggregate
from openasm.quality.feed_files import QualityFileError
from openasm.quality.qrda3 import export_qrda3, initial_population_counts, read_qrda3, write_qrda3
from openasm.rules import RulesError, load_rules
from tests.conftest import assert_tables_equal

T1, N1, N2 = "111111111", "1000000001", "1000000002"
PROGRAM = "ASM_TEST_PROGRAM"
NS = {"h": "urn:hl7-org:v3"}
OUTCOMES = {"met": (True, False, True, False), "not_met": (True, False, False, False),
            "excluded": (True, True, False, False), "excepted": (True, False, False, True),
            "ip_only": (False, False, False, False)}
CREATED = datetime(2028, 2, 1, 12, 0, 0)


def rules(**overrides):
    return load_rules(2027, overrides={"quality.asm_program_name": PROGRAM, **overrides})


def case_table():
    spec = [  # measure, collection, stratum, npi, outcome, count
        ("134", "electronicHealthRecord", "overall", N1, "met", 7),
        ("134", "electronicHealthRecord", "overall", N1, "not_met", 3),
        ("134", "electronicHealthRecord", "overall", N1, "excepted", 1),
        ("134", "electronicHealthRecord", "overall", N1, "excluded", 2),
        ("134", "electronicHealthRecord", "overall", N1, "ip_only", 4),
        ("008", "electronicHealthRecord", "overall", N2, "met", 5),
        ("238", "electronicHealthRecord", "overall", N1, "met", 2),
        ("238", "electronicHealthRecord", "overall", N1, "not_met", 18),
        ("238", "electronicHealthRecord", "appropriateDiagnosis", N1, "met", 1),
        ("238", "electronicHealthRecord", "appropriateDiagnosis", N1, "not_met", 19),
        ("238", "electronicHealthRecord", "totalRate", N1, "met", 3),
        ("238", "electronicHealthRecord", "totalRate", N1, "not_met", 17),
        ("008", "registry", "overall", N1, "met", 4),  # not an eCQM result: left out
    ]
    rows = [s[:5] for s in spec for _ in range(s[5])]
    flags = [OUTCOMES[r[4]] for r in rows]
    return ibis.memtable(pa.table({
        "performance_year": pa.array([2027] * len(rows), pa.int32()), "measure_id": [r[0] for r in rows],
        "collection_type": [r[1] for r in rows], "stratum": [r[2] for r in rows], "tin": [T1] * len(rows),
        "npi": [r[3] for r in rows], "is_initial_population": [True] * len(rows),
        "is_denominator": [f[0] for f in flags], "is_denominator_exclusion": [f[1] for f in flags],
        "is_numerator": [f[2] for f in flags], "is_denominator_exception": [f[3] for f in flags]}))


def build(engine, level="tin_npi_and_tin"):
    r = load_rules(2027, overrides={"quality.asm_program_name": PROGRAM, "quality.reporting_level": level})
    aggregate = engine.fetch(aggregate_measure_results(measure_case_result=case_table(), rules=r))
    ip = engine.fetch(initial_population_counts(measure_case_result=case_table()))
    return aggregate.cast(MEASURE_AGGREGATE_SCHEMA), ip


def test_export_document(tmp_path):
    engine = connect("duckdb")
    aggregate, ip = build(engine)
    export = export_qrda3(aggregate, rules=rules(), initial_population=ip, created=CREATED)
    engine.close()
    assert sorted(export.documents) == ["qrda3_2027_111111111_1000000001.xml", "qrda3_2027_111111111_1000000002.xml",
                                       "qrda3_2027_111111111_group.xml"]
    assert {r["skip_reason"] for r in export.skipped} == {"not an eCQM (electronicHealthRecord) result"}
    root = ET.fromstring(export.documents["qrda3_2027_111111111_1000000001.xml"])
    assert root.find("h:informationRecipient/h:intendedRecipient/h:id", NS).get("extension") == PROGRAM
    performer = root.find("h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity", NS)
    assert performer.find("h:id", NS).get("extension") == N1
    assert performer.find("h:representedOrganization/h:id", NS).get("extension") == T1
    assert root.find("h:documentationOf/h:serviceEvent/h:effectiveTime/h:low", NS).get("value") == "20270101"
    refs = [e.get("extension") for e in root.iterfind(".//h:organizer/h:reference/h:externalDocument/h:id", NS)]
    assert refs == ["CMS2v16", "CMS156v15"]  # QPP ids 134, 238 in order; PY2027 versions
    # Q134 for N1: IPP 17 (incl. 4 IP-only), DENOM 13, NUMER 7, DENEX 2, DENEXCEP 1 (PNM 3 derived).
    q134 = next(root.iterfind(".//h:organizer", NS))
    counts = {}
    for obs in q134.iterfind("h:component/h:observation", NS):
        population = obs.find("h:value", NS).get("code")
        counts[population] = int(obs.find("h:entryRelationship/h:observation/h:value", NS).get("value"))
    assert counts == {"IPP": 17, "DENOM": 13, "NUMER": 7, "DENEX": 2, "DENEXCEP": 1}
    # The TIN-level document sums the clinicians: Q008 IPP = 5 (all N2).
    group = ET.fromstring(export.documents["qrda3_2027_111111111_group.xml"])
    q008 = next(group.iterfind(".//h:organizer", NS))
    ipp = next(o for o in q008.iterfind("h:component/h:observation", NS) if o.find("h:value", NS).get("code") == "IPP")
    assert ipp.find("h:entryRelationship/h:observation/h:value", NS).get("value") == "5"


def test_round_trip_gives_back_the_same_aggregates(backend, engine_for, tmp_path):
    engine = engine_for(backend)
    aggregate, ip = build(engine)
    export = export_qrda3(aggregate, rules=rules(), initial_population=ip, created=CREATED)
    paths = write_qrda3(export, tmp_path / "qrda")
    counts = pa.concat_tables([read_qrda3(p, rules=rules()) for p in paths])
    back = engine.fetch(finish_measure_aggregate(counts=ibis.memtable(counts), rules=rules()))
    expected = pa.Table.from_pylist(
        [{**r, "source": "qrda3"} for r in aggregate.to_pylist() if r["collection_type"] == "electronicHealthRecord"],
        schema=MEASURE_AGGREGATE_SCHEMA)
    assert back.num_rows == expected.num_rows == 10  # N1: 134 + 3 strata of 238; N2: 008; group: 134, 008, 238 ×3
    assert_tables_equal(back.cast(MEASURE_AGGREGATE_SCHEMA), expected, float_tol=1e-12)


def test_refusals():
    empty = pa.Table.from_pylist([], schema=MEASURE_AGGREGATE_SCHEMA)
    with pytest.raises(RulesError, match="quality.asm_program_name is not set"):
        export_qrda3(empty, rules=load_rules(2027))
    with pytest.raises(RulesError, match="does not list qrda3"):
        export_qrda3(empty, rules=rules(**{"quality.ecqm_submission_formats": ["qpp_json"]}))


@pytest.fixture
def document():
    engine = connect("duckdb")
    aggregate, _ = build(engine, level="tin_npi")
    export = export_qrda3(aggregate, rules=rules(), created=CREATED)
    engine.close()
    return export.documents["qrda3_2027_111111111_1000000001.xml"]


def _read(tmp_path, xml):
    path = tmp_path / "in.xml"
    path.write_text(xml, encoding="utf-8")
    return read_qrda3(path, rules=rules())


def _count_element(xml, population, nth=0):
    """Span of the aggregate-count `value="N"` attribute of the nth Measure Data observation for `population`."""
    starts = [m.end() for m in re.finditer(rf'code="{population}" codeSystem', xml)]
    match = re.compile(r'value="(\d+)"').search(xml, starts[nth])
    return match.start(1), match.end(1)


def test_base_ecqm_id_and_group_documents_are_read(tmp_path, document):
    rows = _read(tmp_path, document.replace("CMS2v16", "CMS2")).to_pylist()
    assert {r["measure_id"] for r in rows} == {"134", "238"}
    group = document.replace(f'extension="{N1}"', 'nullFlavor="NA"')
    assert {r["entity_level"] for r in _read(tmp_path, group).to_pylist()} == {"tin"}


def test_malformed_files_name_file_measure_and_field(tmp_path, document):
    with pytest.raises(QualityFileError, match=r"in\.xml: not well-formed XML"):
        _read(tmp_path, document[:-40])
    with pytest.raises(QualityFileError, match=r"in\.xml: measure 'CMS9999v1' is not an eCQM"):
        _read(tmp_path, document.replace("CMS2v16", "CMS9999v1"))
    start, end = _count_element(document, "NUMER")
    with pytest.raises(QualityFileError, match=r"measure 134 \(CMS2v16\): field NUMER: aggregate count must be a "
                                               r"whole number ≥ 0, got 'x'"):
        _read(tmp_path, document[:start] + "x" + document[end:])
    start, end = _count_element(document, "DENOM")
    with pytest.raises(QualityFileError, match=r"measure 134 \(CMS2v16\): .*exceeds eligible_population 1"):
        _read(tmp_path, document[:start] + "1" + document[end:])
    no_denom = document.replace('code="DENOM" codeSystem', 'code="DENEXCEP" codeSystem', 1)
    with pytest.raises(QualityFileError, match=r"measure 134 \(CMS2v16\): field DENEXCEP: given twice"):
        _read(tmp_path, no_denom)
    q238 = document.index("CMS156v15")  # strata in order: appropriateDiagnosis, overall, totalRate
    twice = document[:q238] + document[q238:].replace('code="DENEX" codeSystem', 'code="NUMER" codeSystem', 1)
    with pytest.raises(QualityFileError, match=r"measure 238 \(CMS156v15\) stratum appropriateDiagnosis: field "
                                               r"NUMER: given twice"):
        _read(tmp_path, twice)
    with pytest.raises(QualityFileError, match="field performer representedOrganization id \\(TIN\\) must be 9 digits"):
        _read(tmp_path, document.replace(f'extension="{T1}"', 'extension="12"'))
    with pytest.raises(QualityFileError, match="measure 134 \\(CMS2v16\\): field DENOM is missing"):
        _read(tmp_path, document.replace('code="DENOM" codeSystem', 'code="IPP" codeSystem', 1))
