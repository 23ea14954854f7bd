"""X12 835 remittances: claims → 835 → `ingest-835` gives, per (NPI, TIN), the same Part B base as the payment
stage computes from the claims (§512.705, §512.750(a)), and `payment` then uses it for the NPIs it covers (same
adjustment factors, the source said); a reversal nets out; a bad NPI is quarantined naming the file and line; a
file that is not an 835 is a clear error."""

from __future__ import annotations

import json
import shutil

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from openasm.cli import app
from openasm.connectors.x12_835 import RemittanceError
from openasm.engine import connect
from openasm.payment.part_b_base import compute_part_b_base_by_tin
from openasm.payment.remittance_base import use_remittance_base
from openasm.rules import load_rules
from openasm.runs.execute import execute_stage
from openasm.runs.payment import PaymentInputs, run_payment
from openasm.runs.remittance import RemittanceInputs, run_ingest_835
from openasm.synth.x12_writer import write_835

from ..conftest import assert_tables_equal

BASE_COLUMNS = ("npi", "billing_tin", "part_b_paid_amount", "line_count")
RULES = load_rules(2027)


def _practice_tins(claims: pa.Table, count: int = 3) -> set[str]:
    """A few billing TINs of middling carrier volume, with every other TIN their clinicians bill under (a
    clinician's base spans all its TINs, §512.750(a), so its remittances must too)."""
    carrier = claims.filter(pc.equal(claims["claim_type"], "carrier"))
    counts = carrier.group_by("billing_tin").aggregate([("claim_type", "count")]).sort_by("claim_type_count")
    tins = [t for t in counts["billing_tin"].to_pylist() if t and len(t) == 9]
    chosen = pa.array(tins[len(tins) // 2: len(tins) // 2 + count])
    npis = carrier.filter(pc.is_in(carrier["billing_tin"], value_set=chosen))["rendering_npi"].unique()
    theirs = carrier.filter(pc.is_in(carrier["rendering_npi"], value_set=npis))["billing_tin"]
    return {t for t in theirs.unique().to_pylist() if t and len(t) == 9}


def _ingest_835(engine, rules, paths):
    """`ingest-835` into the engine's run folder; `--force`: a scored run's payment results become stale."""
    return execute_stage(run_ingest_835, engine, rules, engine.run_dir, RemittanceInputs(tuple(paths)), force=True)


def test_835_part_b_base_matches_the_claims_and_feeds_payment(connector_world, reference_run, tmp_path,
                                                              wide_console):
    world, claims = connector_world, reference_run["claim_line_status"]
    tins = _practice_tins(claims)
    folder = tmp_path / "remittances"
    written = write_835(claims, folder, tins)
    assert len(written) == len(tins)
    run = tmp_path / "run"
    shutil.copytree(reference_run["path"], run)
    engine = connect("duckdb", run)
    try:
        result = _ingest_835(engine, world.rules, [folder])
        assert result.reconciles and result.read == sum(written.values()) and not result.structure_errors
        base = engine.fetch(engine.table("remittance_part_b_base").select(*BASE_COLUMNS))
    finally:
        engine.close()
    status = ibis.memtable(claims)
    npis = status.filter(status.billing_tin.isin(list(tins))).select(npi=status.rendering_npi).distinct()
    expected = compute_part_b_base_by_tin(claim_line_status=status, participant=npis, rules=world.rules)
    expected = expected.filter(expected.billing_tin.isin(list(tins))).select(*BASE_COLUMNS).to_pyarrow()
    assert base.num_rows > 0
    assert_tables_equal(expected, base, abs_tol=0.005)

    # payment: the remittance base replaces the claims base for the NPIs it covers; here it equals the claims
    # base, so the adjustment factors are the claims path's, and the output says which base was used.
    paid = CliRunner().invoke(app, ["payment", str(run), "--set", "participation.episode_volume_threshold=3",
                                    "--set", "quality.benchmark_fallback_py=2026"])
    assert paid.exit_code == 0, paid.output
    assert "Part B base: claims for" in paid.output and "remittances for" in paid.output
    engine = connect("duckdb", run)
    try:
        adjusted = engine.fetch(engine.table("payment_adjustment"))
    finally:
        engine.close()
    covered = adjusted.filter(pc.equal(adjusted["part_b_base_source"], "remittances"))
    assert 0 < covered.num_rows < adjusted.num_rows
    reference = reference_run["tables"]["payment_adjustment"]
    columns = [c for c in reference.column_names if c != "part_b_base_source"]
    assert_tables_equal(reference.select(columns), adjusted.select(columns), abs_tol=0.005)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["payment"]["participants_by_part_b_base"]["remittances"] == covered.num_rows


def test_remittance_base_replaces_only_the_npis_it_covers():
    participants = ibis.memtable({"npi": ["1", "2"], "part_b_paid_amount": [100.0, 50.0],
                                  "part_b_line_count": [2, 1], "part_b_tin_count": [1, 1],
                                  "has_part_b_claims": [True, True]})
    remitted = ibis.memtable({"npi": ["1", "1", "3"], "billing_tin": ["A", "B", "A"],
                              "part_b_paid_amount": [70.0, 40.0, 5.0], "line_count": [3, 1, 1],
                              "service_year": [2027, 2027, 2027]})
    rows = {r["npi"]: r for r in use_remittance_base(participant_base=participants, remittance_base=remitted,
                                                     year=2027).to_pyarrow().to_pylist()}
    assert (rows["1"]["part_b_paid_amount"], rows["1"]["part_b_tin_count"], rows["1"]["part_b_base_source"]) == (
        110.0, 2, "remittances")
    assert (rows["2"]["part_b_paid_amount"], rows["2"]["part_b_base_source"]) == (50.0, "claims")
    other_year = use_remittance_base(participant_base=participants, remittance_base=remitted, year=2028)
    assert set(other_year.to_pyarrow()["part_b_base_source"].to_pylist()) == {"claims"}


def test_payment_refuses_a_remittance_base_the_run_lacks(tmp_path):
    engine = connect("duckdb", tmp_path / "run")
    try:
        engine.save("participant_score", ibis.memtable({"performance_year": [2027]}))
        engine.save("claim_line_status", ibis.memtable({"claim_id": ["1"]}))
        with pytest.raises(ValueError, match="no remittance_part_b_base.*ingest-835"):
            run_payment(engine, RULES, tmp_path / "run", PaymentInputs("remittances"))
    finally:
        engine.close()


def _remit(lines: list[str]) -> str:
    head = ["ISA*00*          *00*          *ZZ*MEDICARE       *ZZ*123456789      *250110*1200*^*00501*000000001*0*P*:",
            "GS*HP*MEDICARE*123456789*20250110*1200*1*X*005010X221A1", "ST*835*0001",
            "BPR*I*0*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*123456*20270310",
            "TRN*1*1*1512345678", "N1*PR*MEDICARE", "N3*PO BOX 1", "N4*BALTIMORE*MD*21244", "PER*BL*MAC*TE*8005551212",
            "N1*PE*PRACTICE*XX*1234567893", "N3*1 MAIN ST", "N4*ANYTOWN*NY*10016", "REF*TJ*123456789", "LX*1"]
    body = head + lines
    return "~\n".join(body + [f"SE*{len(body) - 1}*0001", "GE*1*1", "IEA*1*000000001"]) + "~\n"


def test_reversal_nets_and_bad_npi_is_quarantined(tmp_path, engine_for, backend_spark_slow):
    backend = backend_spark_slow
    claim = ["CLP*A1*1*100*80**MB*C1*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567893",
             "DTM*232*20270105", "SVC*HC:99213*100*80**1", "DTM*472*20270105", "AMT*B6*100"]
    reversal = ["CLP*A1*22*-100*-80**MB*C1*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567893",
                "DTM*232*20270105", "SVC*HC:99213*-100*-80**-1", "DTM*472*20270105", "AMT*B6*-100"]
    bad = ["CLP*A2*1*50*40**MB*C2*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567890",
           "DTM*232*20270106", "SVC*HC:99212*50*40**1", "DTM*472*20270106", "AMT*B6*50"]
    path = tmp_path / "remit.835"
    path.write_text(_remit(claim + reversal + bad))
    engine = engine_for(backend)
    result = _ingest_835(engine, RULES, [path])
    assert (result.read, result.accepted, result.quarantined) == (3, 2, 1)
    quarantine = engine.table("remittance_quarantine").to_pyarrow().to_pylist()[0]
    assert quarantine["source_file"] == str(path) and quarantine["row_number"] == 3
    assert quarantine["column_name"] == "rendering_npi"
    base = engine.table("remittance_part_b_base").to_pyarrow().to_pylist()
    assert base[0]["part_b_paid_amount"] == pytest.approx(0.0) and base[0]["reversal_line_count"] == 1


def test_a_file_that_is_not_an_835_is_a_clear_error(tmp_path, engine_for):
    path = tmp_path / "notes.835"
    path.write_text("this is not X12\n")
    with pytest.raises(RemittanceError, match="not a readable X12 835 file"):
        _ingest_835(engine_for("duckdb"), RULES, [path])


def test_a_truncated_835_is_refused_naming_the_file(tmp_path, engine_for):
    """A file cut inside its last claim payment has no interchange trailer: pyx12 would drop the unfinished claim
    silently, so the file is refused with its name and how far it got."""
    claim = ["CLP*A1*1*100*80**MB*C1*11*1", "NM1*QC*1*P*A****MI*1EG4TE5MK73", "NM1*82*1*C*A****XX*1234567893",
             "DTM*232*20270105", "SVC*HC:99213*100*80**1", "DTM*472*20270105", "AMT*B6*100"]
    text = _remit(claim + claim)
    path = tmp_path / "cut.835"
    path.write_text(text[:text.rindex("SVC*HC:99213*100*80") + len("SVC*HC:99213*100*8")])
    with pytest.raises(RemittanceError, match=rf"{path}: truncated X12 835 file.*IEA.*after 1 complete claim"):
        _ingest_835(engine_for("duckdb"), RULES, [path])
