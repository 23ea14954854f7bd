"""ZIP → CBSA through the shipped HUD crosswalk (participation.zip_cbsa_method = largest_total_ratio): a ZIP
goes to the CBSA with the largest share of its addresses, ties take the lower code and are flagged, a ZIP whose
largest share is outside every CBSA (99999) or that the crosswalk lacks stays unplaced; a CBSA the clinician
table gives is kept; participation reports what it placed."""

from __future__ import annotations

import ibis
import pyarrow as pa

from openasm.participation.zip_cbsa import hud_crosswalk, locate_by_zip, place_zips
from openasm.rules import load_rules

RULES = load_rules(2027)


def _placed(zips: list[str]) -> dict[str, dict]:
    crosswalk = hud_crosswalk()
    subset = crosswalk.filter(pa.compute.is_in(crosswalk["zip5"], value_set=pa.array(zips)))
    rows = place_zips(crosswalk=ibis.memtable(subset), rules=RULES).to_pyarrow().to_pylist()
    return {r["zip5"]: r for r in rows}


def test_shipped_crosswalk_is_the_2025_hud_file():
    table = hud_crosswalk()
    assert table.num_rows == 47_634 and set(table.column_names) >= {"zip5", "cbsa_code", "tot_ratio"}


def test_largest_ratio_tie_and_non_cbsa():
    placed = _placed(["10016", "35614", "45070", "00765"])
    assert placed["10016"]["cbsa_code"] == "35620" and placed["10016"]["zip_cbsa_status"] == "placed"
    assert placed["35614"]["cbsa_code"] == "26620"  # 99.9% of Athens AL addresses, not the 0.1% in 22520
    assert placed["45070"]["zip_cbsa_status"] == "tie"
    assert placed["00765"]["cbsa_code"] is None and placed["00765"]["zip_cbsa_status"] == "not_in_cbsa"


def test_residential_ratio_is_a_rules_choice():
    rules = load_rules(2027, {"participation.zip_cbsa_method": "largest_residential_ratio"})
    crosswalk = hud_crosswalk()
    subset = crosswalk.filter(pa.compute.equal(crosswalk["zip5"], "35614"))
    row = place_zips(crosswalk=ibis.memtable(subset), rules=rules).to_pyarrow().to_pylist()[0]
    assert row["cbsa_code"] == "26620" and row["share"] < 1.0


def test_clinician_rows_keep_a_given_cbsa_and_report_unplaced_zips():
    clinician = ibis.memtable({
        "tin": ["111111111"] * 4, "npi": ["1", "2", "3", "4"],
        "practice_zip5": ["10016", "00765", "00000", None], "practice_cbsa_code": [None, None, None, "35614"]})
    located = locate_by_zip(clinician=clinician, zip_cbsa=place_zips(crosswalk=ibis.memtable(hud_crosswalk()),
                                                                     rules=RULES))
    rows = {r["npi"]: r for r in located.to_pyarrow().to_pylist()}
    assert (rows["1"]["practice_cbsa_code"], rows["1"]["cbsa_source"]) == ("35620", "zip_crosswalk")
    assert rows["2"]["practice_cbsa_code"] is None and rows["2"]["zip_cbsa_status"] == "not_in_cbsa"
    assert rows["3"]["zip_cbsa_status"] == "unknown_zip"
    assert (rows["4"]["practice_cbsa_code"], rows["4"]["cbsa_source"]) == ("35614", "clinician_table")
