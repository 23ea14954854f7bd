"""CMS participant list intake (tolerant of header case and column order, strict on values), lookup, and the
comparison with the computed participant table."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openasm.participation.participant_list import (
    ParticipantListError,
    comparable_list,
    compare_with_participant_list,
    lookup_participants,
    read_participant_list,
)

from ..episodes.factory import npi

FLAGS = [f"ASM_CY{yy}_{kind}" for yy in range(27, 32) for kind in ("PARTICIPANT", "SMALLPRACTICE")]
HEADER = ["NPI", "FIRST_NAME", "LAST_NAME", "STATE", "ASM_COHORT", "ORGANIZATION_LEGAL_NAME"] + FLAGS


def _row(n: int, first: str, last: str, state: str, cohort: str, org: str, cy27=("Yes", "No")) -> list[str]:
    return [npi(n), first, last, state, cohort, org, *cy27] + [""] * 8


ROWS = [
    _row(1, "MARIA", "GARCIA", "TX", "Heart Failure", "HEART CLINIC OF TEXAS PLLC"),
    _row(2, "JOHN", "SMITH", "NY", "Low Back Pain", "SPINE PARTNERS LLC", ("Yes", "Yes")),
    _row(2, "JOHN", "SMITH", "NJ", "Low Back Pain", "ORTHO NJ LLC", ("Yes", "Yes")),  # second organization
    _row(3, "ANN", "SMITHERS", "CA", "low back pain", "", ("No", "")),
]


def _write_csv(path, header, rows) -> str:
    lines = [",".join(header)] + [",".join(f'"{v}"' if "," in v else v for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def list_file(tmp_path):
    return _write_csv(tmp_path / "asm.csv", HEADER, ROWS)


def test_reads_every_row_and_year(list_file):
    table = read_participant_list(list_file)
    assert table.num_rows == 4 * 5  # 4 file rows x PY2027-2031
    first = [r for r in table.to_pylist() if r["source_line"] == 2]
    assert {r["performance_year"]: r["is_participant"] for r in first} == {2027: True, 2028: None, 2029: None,
                                                                            2030: None, 2031: None}
    assert (first[0]["cohort"], first[0]["npi"], first[0]["state"]) == ("hf", npi(1), "TX")
    ann = next(r for r in table.to_pylist() if r["source_line"] == 5 and r["performance_year"] == 2027)
    assert (ann["cohort"], ann["is_participant"], ann["is_small_practice"], ann["organization_legal_name"]) == (
        "lbp", False, None, None)


def test_header_case_spacing_and_order_do_not_matter(tmp_path):
    order = list(reversed(range(len(HEADER))))
    header = [HEADER[i].lower().replace("_", " ") if i % 2 else HEADER[i].title() for i in order]
    path = _write_csv(tmp_path / "shuffled.csv", header, [[r[i] for i in order] for r in ROWS])
    assert read_participant_list(path).sort_by("source_line").equals(
        read_participant_list(_write_csv(tmp_path / "plain.csv", HEADER, ROWS)).sort_by("source_line"))


def test_parquet_and_only_some_years(tmp_path):
    header = HEADER[:6] + ["asm_cy27_participant", "asm_cy27_smallpractice"]
    pq.write_table(pa.table({h: [r[i] for r in ROWS] for i, h in enumerate(header)}), tmp_path / "asm.parquet")
    table = read_participant_list(tmp_path / "asm.parquet")
    assert set(table["performance_year"].to_pylist()) == {2027} and table.num_rows == 4


@pytest.mark.parametrize("header, rows, message", [
    (HEADER[1:], [r[1:] for r in ROWS], "missing column(s) NPI"),
    ([h for h in HEADER if h != "ASM_CY28_SMALLPRACTICE"], [r[:8] + r[9:] for r in ROWS],
     "missing column(s) ASM_CY28_SMALLPRACTICE"),
    (HEADER[:6], [r[:6] for r in ROWS], "no ASM_CY<yy>_PARTICIPANT"),
    (HEADER + ["npi"], [r + [r[0]] for r in ROWS], "are the same column NPI"),
    (HEADER, [], "no data rows"),
    (HEADER, [["1234567890"] + ROWS[0][1:]], "line 2 column NPI: '1234567890' fails the NPI check digit"),
    (HEADER, [["12345"] + ROWS[0][1:]], "line 2 column NPI: '12345' is not a 10-digit NPI"),
    (HEADER, [ROWS[0][:4] + ["Diabetes"] + ROWS[0][5:]], "line 2 column ASM_COHORT: 'Diabetes' is not a cohort"),
    (HEADER, [ROWS[0][:6] + ["Maybe"] + ROWS[0][7:]], "line 2 column ASM_CY27_PARTICIPANT: 'Maybe' is not Yes"),
    (HEADER, [ROWS[0][:3] + ["Texas"] + ROWS[0][4:]], "line 2 column STATE: 'Texas' is not a 2-letter state"),
    (HEADER, [ROWS[0], ROWS[1][:5]], "line 3: fewer fields than header columns"),
    (HEADER, [ROWS[0] + ["extra"]], "line 2: more fields than header columns"),
])
def test_malformed_files_give_clear_errors(tmp_path, header, rows, message):
    path = _write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(ParticipantListError) as err:
        read_participant_list(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ParticipantListError, match="does not exist"):
        read_participant_list(tmp_path / "none.csv")
    (tmp_path / "list.xlsx").write_bytes(b"PK")
    with pytest.raises(ParticipantListError, match="unsupported file type '.xlsx'"):
        read_participant_list(tmp_path / "list.xlsx")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ParticipantListError, match="empty file"):
        read_participant_list(tmp_path / "empty.csv")


def test_many_problems_are_counted(tmp_path):
    rows = [["123"] + ROWS[0][1:] for _ in range(12)]
    with pytest.raises(ParticipantListError, match=r"12 problem\(s\).*… 2 more"):
        read_participant_list(_write_csv(tmp_path / "bad.csv", HEADER, rows))


def test_lookup_by_npi_name_and_organization(list_file):
    table = read_participant_list(list_file)
    by_npi = lookup_participants(table, npi=npi(2))
    assert [r["organization_legal_name"] for r in by_npi] == ["SPINE PARTNERS LLC", "ORTHO NJ LLC"]
    assert by_npi[0]["participant_years"] == [2027] and by_npi[0]["small_practice_years"] == [2027]
    assert [r["last_name"] for r in lookup_participants(table, name="smith")] == ["SMITH", "SMITH", "SMITHERS"]
    assert [r["npi"] for r in lookup_participants(table, name="Smith, John")] == [npi(2), npi(2)]
    assert [r["npi"] for r in lookup_participants(table, org="heart clinic")] == [npi(1)]
    assert lookup_participants(table, name="john", org="ortho")[0]["state"] == "NJ"
    assert lookup_participants(table, npi=npi(9)) == []
    with pytest.raises(ValueError, match="at least one"):
        lookup_participants(table)


def test_comparison_with_the_computed_table(backend, engine_for, list_file):
    engine = engine_for(backend)
    schema = pa.schema([("performance_year", pa.int32()), ("npi", pa.string()), ("is_participant", pa.bool_()),
                        ("cohort", pa.string()), ("reason", pa.string()), ("reason_detail", pa.string()),
                        ("is_small_practice", pa.bool_())])
    computed = pa.table({  # NPI 1: both (hf); 2: cohort differs; 4: computed only; 5: not a participant
        "performance_year": [2027] * 4, "npi": [npi(1), npi(2), npi(4), npi(5)],
        "is_participant": [True, True, True, False], "cohort": ["hf", "hf", "lbp", "hf"],
        "reason": ["in", "in", "locked_in", "outside_selected_area"], "reason_detail": ["a", "b", "c", "d"],
        "is_small_practice": [False, True, False, False]}, schema=schema)
    listed = read_participant_list(list_file)
    out = compare_with_participant_list(
        participant=engine.save("participant", ibis.memtable(computed)),
        participant_list=engine.save("listed", ibis.memtable(comparable_list(listed))), performance_year=2027)
    got = {r["npi"]: r for r in engine.fetch(out).to_pylist()}
    # NPI 3 is on the list but flagged No for 2027; NPI 5 is in neither: both left out.
    assert {n: r["agreement"] for n, r in got.items()} == {
        npi(1): "both", npi(2): "cohort_differs", npi(4): "computed_only"}
    assert (got[npi(2)]["cms_cohort"], got[npi(2)]["is_cms_small_practice"]) == ("lbp", True)
    assert got[npi(4)]["computed_reason"] == "locked_in" and got[npi(4)]["cms_cohort"] is None
    only_cms = compare_with_participant_list(participant=engine.table("participant").filter(ibis.literal(False)),
                                             participant_list=engine.table("listed"), performance_year=2027)
    assert {r["npi"]: r["agreement"] for r in engine.fetch(only_cms).to_pylist()} == {
        npi(1): "cms_only", npi(2): "cms_only"}
