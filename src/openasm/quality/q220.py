"""Q220 — functional status change for low back impairments (quality.md §4.7, §5.5): ingest, never compute.

The registry (FOTO) delivers one row per treatment episode with the risk-adjusted residual or the result code:
G8659 met (residual ≥ 0), G8660 not met (residual < 0), G8661 not met (not calculable), M1122 / G9733
denominator exclusions. The engine never computes FOTO's prediction (proprietary). Results from other validated
instruments are counted only when `quality.q220_allow_non_foto` is on; an ODI episode without a result code or
residual is then judged by `quality.q220_odi_rule`; such episodes are labelled `rests_on_secondary`.

File (CSV or JSON list, one row per episode): tin, npi, patient_id, episode_id, initial_eval_dt,
initial_eval_code, discharge_dt, discharge_code, intake_fs, discharge_fs, predicted_change, residual, result_code,
source (FOTO, or the registry/instrument owner), optional q220_instrument (FOTO_LB, ODI, ...).
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.aggregate import REGISTRY, SINGLE_STRATUM, aggregate_measure_results
from openasm.quality.feed_files import (
    FeedReadResult,
    RowProblem,
    choice,
    iso_date,
    number,
    read_feed,
    text,
)
from openasm.rules import RulesForYear
from openasm.schema.formats import NPI_PATTERN, TIN_PATTERN

MEASURE_ID = "220"
MET, NOT_MET, NOT_CALCULABLE = "G8659", "G8660", "G8661"
EXCLUSION_CODES = ("M1122", "G9733")
RESULT_CODES = (MET, NOT_MET, NOT_CALCULABLE, *EXCLUSION_CODES)
FOTO = "FOTO"
REQUIRED_COLUMNS = ("tin", "npi", "patient_id", "episode_id", "initial_eval_dt", "source")
OPTIONAL_COLUMNS = ("initial_eval_code", "discharge_dt", "discharge_code", "intake_fs", "discharge_fs",
                    "predicted_change", "residual", "result_code", "q220_instrument")
EPISODE_SCHEMA = pa.schema([
    ("tin", pa.string()), ("npi", pa.string()), ("patient_id", pa.string()), ("episode_id", pa.string()),
    ("initial_eval_dt", pa.date32()), ("initial_eval_code", pa.string()), ("discharge_dt", pa.date32()),
    ("discharge_code", pa.string()), ("intake_fs", pa.float64()), ("discharge_fs", pa.float64()),
    ("predicted_change", pa.float64()), ("residual", pa.float64()), ("result_code", pa.string()),
    ("source", pa.string()), ("q220_instrument", pa.string()), ("source_file", pa.string()),
    ("source_row", pa.int64()),
])
CODE_PATTERN = r"^[0-9A-Z]{5}$"


def _parse_episode(record: dict) -> dict:
    row = {
        "tin": text(record, "tin", required=True, pattern=TIN_PATTERN),
        "npi": text(record, "npi", required=True, pattern=NPI_PATTERN),
        "patient_id": text(record, "patient_id", required=True),
        "episode_id": text(record, "episode_id", required=True),
        "initial_eval_dt": iso_date(record, "initial_eval_dt", required=True),
        "initial_eval_code": text(record, "initial_eval_code", pattern=CODE_PATTERN),
        "discharge_dt": iso_date(record, "discharge_dt"),
        "discharge_code": text(record, "discharge_code", pattern=CODE_PATTERN),
        "intake_fs": number(record, "intake_fs"), "discharge_fs": number(record, "discharge_fs"),
        "predicted_change": number(record, "predicted_change"), "residual": number(record, "residual"),
        "result_code": choice(record, "result_code", RESULT_CODES),
        "source": text(record, "source", required=True),
        "q220_instrument": text(record, "q220_instrument"),
    }
    if row["discharge_dt"] is not None and row["discharge_dt"] < row["initial_eval_dt"]:
        raise RowProblem("discharge_dt", f"{row['discharge_dt']} is before initial_eval_dt {row['initial_eval_dt']}")
    row["source"] = row["source"].upper() if row["source"].upper() == FOTO else row["source"]
    if row["q220_instrument"] is None and row["source"] == FOTO:
        row["q220_instrument"] = "FOTO_LB"
    elif row["q220_instrument"] is not None:
        row["q220_instrument"] = row["q220_instrument"].upper()
    return row


def read_q220_file(path: Path, *, strict: bool = False) -> FeedReadResult:
    """quality.md §5.5: read a Q220 episode file. Bad rows are quarantined with file, row and column (or raise
    QualityFileError in `strict` mode); a repeated episode_id is quarantined as a duplicate."""
    return read_feed(path, measure_id=MEASURE_ID, measure_label="Q220", list_key="episodes", schema=EPISODE_SCHEMA,
                     required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS, parse_row=_parse_episode,
                     row_key=lambda row: row["episode_id"], strict=strict)


def evaluate_q220_episodes(*, treatment_episode: ir.Table, rules: RulesForYear) -> ir.Table:
    """quality.md §4.7: one result row per episode, in the patient-level result shape that
    `aggregate.aggregate_measure_results` counts (episodes are Q220's unit).

    Every row is evaluated for rules.performance_year (its performance_year); `q220_status` says whether the
    episode counts there: `counted`, `other_performance_year` (its year by
    `quality.q220_episode_year` is not rules.performance_year), `no_episode_date` (no discharge date under
    `discharge`), `non_foto_not_allowed`, or `not_calculable_excluded` (under `quality.q220_not_calculable =
    exclude`). Only counted episodes are in the denominator. Result precedence: exclusion code, then the
    result code (it wins over the residual), then residual ≥ 0, then (non-FOTO ODI) intake − discharge ≥ MCID;
    otherwise not calculable. `result_basis` names which one decided."""
    allow_non_foto = bool(rules.value("quality.q220_allow_non_foto"))
    episode_year = rules.value("quality.q220_episode_year")
    odi_rule = rules.value("quality.q220_odi_rule")
    mcid = float(rules.value("quality.q220_odi_mcid_points"))
    not_calculable_policy = rules.value("quality.q220_not_calculable")
    if episode_year not in ("discharge", "initial_evaluation"):
        raise ValueError(f"quality.q220_episode_year: unsupported value {episode_year!r}")
    if odi_rule != "improvement_ge_mcid":
        raise ValueError(f"quality.q220_odi_rule: unsupported value {odi_rule!r}")
    if not_calculable_policy not in ("not_met", "exclude"):
        raise ValueError(f"quality.q220_not_calculable: unsupported value {not_calculable_policy!r}")

    t = treatment_episode
    year_date = t.discharge_dt if episode_year == "discharge" else t.initial_eval_dt
    code = t.result_code.upper()
    is_foto = t.source.upper() == FOTO
    excluded = code.isin(EXCLUSION_CODES).fill_null(False)
    has_code = code.isin((MET, NOT_MET, NOT_CALCULABLE)).fill_null(False)
    has_residual = t.residual.notnull()
    odi_path = (~is_foto & (t.q220_instrument.upper() == "ODI").fill_null(False)
                & t.intake_fs.notnull() & t.discharge_fs.notnull())
    improvement = t.intake_fs - t.discharge_fs
    basis = ibis.cases(
        (excluded, "exclusion_code"), (has_code & (code != NOT_CALCULABLE), "result_code"),
        (has_code, "not_calculable"), (has_residual, "residual"),
        (odi_path if allow_non_foto else ibis.literal(False), "odi_rule"), else_=ibis.literal("not_calculable"))
    met = ibis.cases(
        (basis == "result_code", code == MET), (basis == "residual", t.residual >= 0),
        (basis == "odi_rule", improvement >= mcid), else_=ibis.literal(False))
    status = ibis.cases(
        (year_date.isnull(), "no_episode_date"),
        (year_date.year() != rules.performance_year, "other_performance_year"),
        (~is_foto & ibis.literal(not allow_non_foto), "non_foto_not_allowed"),
        ((basis == "not_calculable") & ibis.literal(not_calculable_policy == "exclude"), "not_calculable_excluded"),
        else_=ibis.literal("counted"))
    counted = status == "counted"
    gap = ibis.cases(
        (basis == "result_code", "functional status change below the risk-adjusted prediction (G8660)"),
        (basis == "residual", "functional status change below the risk-adjusted prediction (residual < 0)"),
        (basis == "odi_rule", ibis.literal("ODI improved by less than the MCID of ")
         .concat(ibis.literal(f"{mcid:g}"), " points")),
        else_=ibis.literal("functional status change not calculable (G8661): intake or discharge PROM missing"))
    evidence = ibis.literal("Q220 episode ").concat(
        t.episode_id, ibis.literal(" ("), t.source_file.fill_null(""), ibis.literal(" row "),
        t.source_row.cast("string").fill_null(""), ibis.literal(")"))
    return t.select(
        performance_year=ibis.literal(rules.performance_year, "int32"), measure_id=ibis.literal(MEASURE_ID),
        collection_type=ibis.literal(REGISTRY), stratum=ibis.literal(SINGLE_STRATUM), tin=t.tin, npi=t.npi,
        patient_id=t.patient_id, episode_id=t.episode_id, encounter_id=ibis.null("string"),
        is_initial_population=counted, is_denominator=counted, is_denominator_exclusion=counted & excluded,
        is_numerator=counted & ~excluded & met.fill_null(False), is_denominator_exception=ibis.literal(False),
        evidence=evidence, gap_reason=ibis.ifelse(counted & ~excluded & ~met.fill_null(False), gap,
                                                  ibis.null("string")),
        result_basis=basis, q220_status=status, rests_on_secondary=~is_foto,
        discharge_dt=t.discharge_dt, initial_eval_dt=t.initial_eval_dt)


def aggregate_q220_results(*, q220_episode_result: ir.Table, rules: RulesForYear) -> ir.Table:
    """quality.md §2.1, §4.7: Q220 aggregates (registry, source `q220_file`) from the counted episodes of
    `evaluate_q220_episodes`; the episodes that do not count stay visible in that table with their status."""
    counted = q220_episode_result.filter(q220_episode_result.q220_status == "counted")
    return aggregate_measure_results(measure_case_result=counted, rules=rules, source="q220_file")
