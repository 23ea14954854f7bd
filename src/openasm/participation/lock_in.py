"""Lock-in: once selected, a participant for the rest of the model (§512.710(a)(1); asm-model.md §2.1).

A clinician who meets every criterion in any performance year is an ASM participant for the remaining
performance years. For PY2028–PY2031 the yearly obligations attach to participants who meet the criteria of
that year (§512.710(a)(1)(ii)–(v)); a locked-in participant who does not re-qualify stays a participant but is
not measured or scored that year while `participation.score_only_qualifying_years` is true (OQ-10).
"""

from __future__ import annotations

from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from openasm.participation.eligibility import LOCKED_IN
from openasm.rules import RulesForYear

PRIOR_COLUMNS = {"performance_year": "int32", "npi": "string", "cohort": "string", "first_selected_year": "int32"}


def empty_prior_participant() -> ir.Table:
    """A prior-participant table with no rows (the first performance year, or no earlier runs)."""
    schema = pa.schema([(name, pa.int32() if dtype == "int32" else pa.string()) for name, dtype in PRIOR_COLUMNS.items()])
    return ibis.memtable(schema.empty_table())


def prior_participants(*, participant: ir.Table, rules: RulesForYear) -> ir.Table:
    """The rows of an earlier participant table that lock clinicians in for the rules' performance year:
    participants (`is_participant`) of earlier performance years. Columns: PRIOR_COLUMNS."""
    p = participant.filter(participant.is_participant & (participant.performance_year < rules.performance_year))
    return p.select(
        performance_year=p.performance_year.cast("int32"), npi=p.npi, cohort=p.cohort,
        first_selected_year=p.first_selected_year.fill_null(p.performance_year).cast("int32"),
    )


def apply_lock_in(*, evaluation: ir.Table, prior_participant: ir.Table, rules: RulesForYear) -> ir.Table:
    """§512.710(a)(1): is_participant = meets the criteria this year, or was a participant in an earlier
    performance year (lock-in; `prior_participant` rows of later years are ignored). first_selected_year = the
    earliest year selected. A locked-in clinician who does not re-qualify keeps the cohort of their latest
    participant year, gets reason `locked_in`, and is scored only when
    `participation.score_only_qualifying_years` is false (§512.710(a)(1)(ii)–(v), OQ-10).

    Grain: NPI (the rows of `evaluation`, which must include every prior participant's NPI). Input columns of
    `evaluation`: npi, cohort, meets_criteria, eligibility_reason, eligibility_detail. Adds
    first_selected_year, is_participant, is_scored, reason, reason_detail; cohort is replaced.
    """
    score_only_qualifying = bool(rules.value("participation.score_only_qualifying_years"))
    year = rules.performance_year
    prior = prior_participant.filter(prior_participant.performance_year < year)
    prior = prior.mutate(
        _latest=ibis.row_number().over(ibis.window(group_by="npi", order_by=[ibis.desc("performance_year")])),
        _first=prior.first_selected_year.min().over(ibis.window(group_by="npi")),
    )
    prior = prior.filter(prior._latest == 0).select(
        _p_npi=prior.npi, _p_cohort=prior.cohort, _p_first=prior._first.cast("int32"))
    e = evaluation.left_join(prior, evaluation.npi == prior._p_npi)
    meets = e.meets_criteria
    locked = e._p_first.notnull()
    first = ibis.ifelse(meets, e._p_first.fill_null(year), e._p_first).cast("int32")
    scored = meets | (locked & ibis.literal(not score_only_qualifying))
    first_text = e._p_first.cast("string")
    locked_detail = (
        ibis.literal("selected in PY") + first_text.fill_null("?")
        + ibis.literal("; does not meet the criteria this year (") + e.eligibility_reason
        + ibis.literal(": ") + e.eligibility_detail + ibis.literal(")")
        + ibis.literal("; not scored this year" if score_only_qualifying else "; scored this year")
    )
    in_detail = ibis.ifelse(
        locked, e.eligibility_detail + ibis.literal("; first selected in PY") + first_text.fill_null("?"),
        e.eligibility_detail,
    )
    out = e.mutate(
        cohort=ibis.ifelse(~meets & locked, e._p_cohort, e.cohort),
        first_selected_year=first,
        is_participant=meets | locked,
        is_scored=scored,
        reason=ibis.cases((meets, "in"), (locked, LOCKED_IN), else_=e.eligibility_reason),
        reason_detail=ibis.cases((meets, in_detail), (locked, locked_detail), else_=e.eligibility_detail),
    )
    return out.drop("_p_npi", "_p_cohort", "_p_first")


def read_prior_participant_file(path: Path) -> pa.Table:
    """A participant table of earlier performance years (Parquet or CSV written by `openasm participate`).
    Needs performance_year, npi, is_participant, cohort, first_selected_year; returns the participants' rows
    with PRIOR_COLUMNS."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prior participant file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        elif suffix == ".csv":
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={
                "npi": pa.string(), "cohort": pa.string(), "performance_year": pa.int32(),
                "first_selected_year": pa.int32(), "is_participant": pa.bool_()}))
        else:
            raise ValueError(f"prior participant file {path}: unsupported file type '{suffix}' (use .parquet or .csv)")
    except pa.ArrowException as err:
        raise ValueError(f"prior participant file {path}: unreadable: {err}") from err
    needed = ["performance_year", "npi", "is_participant", "cohort", "first_selected_year"]
    missing = [c for c in needed if c not in table.column_names]
    if missing:
        raise ValueError(f"prior participant file {path}: missing column(s) {', '.join(missing)}")
    table = table.filter(pc.fill_null(table["is_participant"], False))
    first = pc.coalesce(table["first_selected_year"].cast(pa.int32()), table["performance_year"].cast(pa.int32()))
    return pa.table({
        "performance_year": table["performance_year"].cast(pa.int32()), "npi": table["npi"].cast(pa.string()),
        "cohort": table["cohort"].cast(pa.string()), "first_selected_year": first,
    }).select(list(PRIOR_COLUMNS))
