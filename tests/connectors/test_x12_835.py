"""X12 835 remittances: world → 835 → `ingest-835` gives, per (NPI, TIN), the same Part B base as the payment
stage computes from the canonical claims (§512.705, §512.750(a)); a reversal nets out; a bad NPI is quarantined
naming the file and line; a file that is not an 835 is a clear error."""

from __future__ import annotations

import ibis
import pyarrow.compute as pc
import pytest

from openasm.connectors.remittance import run_ingest_835
from openasm.connectors.x12_835 import RemittanceError
from openasm.engine import connect
from openasm.payment.part_b_base import compute_part_b_base_by_tin
from openasm.pipeline import ensure_final_action, run_ingest
from openasm.synth.x12_writer import write_835

from ..conftest import assert_tables_equal


def _small_tins(world_path, count=3):
    import pyarrow.parquet as pq

    lines = pq.read_table(world_path / "claim_line", columns=["billing_tin", "claim_type"])
    lines = lines.filter(pc.equal(lines["claim_type"], "carrier"))
    counts = lines.group_by("billing_tin").aggregate([("claim_type", "count")]).sort_by("claim_type_count")
    tins = [t for t in counts["billing_tin"].to_pylist() if t and len(t) == 9]
    return set(tins[len(tins) // 2: len(tins) // 2 + count])


def test_835_part_b_base_matches_the_claims(connector_world):
    world = connector_world
    tins = _small_tins(world.path)
    folder = world.tmp / "remittances"
    written = write_835(world.path, folder, tins)
    assert len(written) == len(tins)
    engine = connect("duckdb", world.tmp / "run-835")
    result = run_ingest_835(engine, [folder], world.rules, world.tmp / "run-835")
    assert result.reconciles and result.read == sum(written.values()) and not result.structure_errors
    base = engine.fetch(engine.table("remittance_part_b_base").select("npi", "billing_tin", "part_b_paid_amount",
                                                                        "line_count").order_by("npi", "billing_tin"))
    reference = connect("duckdb", world.tmp / "run-835-claims")
    run_ingest(reference, world.path)
    claims, _ = ensure_final_action(reference)
    npis = claims.filter(claims.billing_tin.isin(list(tins))).select(npi=claims.rendering_npi).distinct()
    expected = compute_part_b_base_by_tin(claim_line_status=claims, participant=npis, rules=world.rules)
    expected = expected.filter(expected.billing_tin.isin(list(tins)))
    expected = reference.fetch(expected.select("npi", "billing_tin", "part_b_paid_amount",
                                               line_count=expected.line_count).order_by("npi", "billing_tin"))
    assert base.num_rows > 0
    assert_tables_equal(expected, base, abs_tol=0.005)


def _remit(lines: list[str]) -> str:
    head = ["ISA*00*          *00*          *ZZ*MEDICARE       *ZZ*123456789      *250110*1200*^*00501*000000001*0*P*:",
            "GS*HP*MEDICARE*123456789*20250110*1200*1*X*005010X221A1", "ST*835*0001",
            "BPR*I*0*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*123456*20270310",
            "TRN*1*1*1512345678", "N1*PR*MEDICARE", "N3*PO BOX 1", "N4*BALTIMORE*MD*21244", "PER*BL*MAC*TE*8005551212",
            "N1*PE*PRACTICE*XX*1234567893", "N3*1 MAIN ST", "N4*ANYTOWN*NY*10016", "REF*TJ*123456789", "LX*1"]
    body = head + lines
    return "~\n".join(body + [f"SE*{len(body) - 1}*0001", "GE*1*1", "IEA*1*000000001"]) + "~\n"


def test_reversal_nets_and_bad_npi_is_quarantined(tmp_path, engine_for, connector_world):
    claim = ["CLP*A1*1*100*80**MB*C1*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567893",
             "DTM*232*20270105", "SVC*HC:99213*100*80**1", "DTM*472*20270105", "AMT*B6*100"]
    reversal = ["CLP*A1*22*-100*-80**MB*C1*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567893",
                "DTM*232*20270105", "SVC*HC:99213*-100*-80**-1", "DTM*472*20270105", "AMT*B6*-100"]
    bad = ["CLP*A2*1*50*40**MB*C2*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567890",
           "DTM*232*20270106", "SVC*HC:99212*50*40**1", "DTM*472*20270106", "AMT*B6*50"]
    path = tmp_path / "remit.835"
    path.write_text(_remit(claim + reversal + bad))
    engine = engine_for("duckdb")
    result = run_ingest_835(engine, [path], connector_world.rules, tmp_path / "out")
    assert (result.read, result.accepted, result.quarantined) == (3, 2, 1)
    quarantine = engine.table("remittance_quarantine").to_pyarrow().to_pylist()[0]
    assert quarantine["source_file"] == str(path) and quarantine["row_number"] == 3
    assert quarantine["column_name"] == "rendering_npi"
    base = engine.table("remittance_part_b_base").to_pyarrow().to_pylist()
    assert base[0]["part_b_paid_amount"] == pytest.approx(0.0) and base[0]["reversal_line_count"] == 1


def test_a_file_that_is_not_an_835_is_a_clear_error(tmp_path, connector_world):
    path = tmp_path / "notes.835"
    path.write_text("this is not X12\n")
    with pytest.raises(RemittanceError, match="not a readable X12 835 file"):
        run_ingest_835(connect("duckdb", tmp_path / "run"), [path], connector_world.rules, tmp_path / "run")
