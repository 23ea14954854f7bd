"""What each format cannot carry, applied to a synthetic world's canonical tables: the expected result of
ingesting the world written in that format. Written independently of the connectors (from the formats'
documentation and the connectors' stated limitations), so a round trip checks both."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

INSTITUTIONAL = ("inpatient", "outpatient", "snf", "home_health", "hospice")
TABLES = ("beneficiary", "enrollment", "claim_line", "claim_diagnosis", "pharmacy_claim", "clinician")


def _set(table: pa.Table, name: str, values) -> pa.Table:
    field = table.schema.field(name)
    if not isinstance(values, (pa.Array, pa.ChunkedArray)):
        values = pa.array(values, field.type)
    return table.set_column(table.schema.get_field_index(name), field, pc.cast(values, field.type))


def _nulls(table: pa.Table, *names: str, where=None) -> pa.Table:
    for name in names:
        empty = pa.nulls(table.num_rows, table.schema.field(name).type)
        table = _set(table, name, empty if where is None else pc.if_else(where, empty, table[name]))
    return table


def strip_id_prefix(table: pa.Table) -> pa.Table:
    """CCLF's CUR_CLM_UNIQ_ID has 13 digits: the world's one-character kind prefix is not written."""
    for name in ("claim_id", "original_claim_id"):
        if name in table.column_names:
            table = _set(table, name, pc.utf8_slice_codeunits(table[name], 1, 14))
    return table


def cclf_claim_line(lines: pa.Table) -> pa.Table:
    institutional = pc.is_in(lines["claim_type"], value_set=pa.array(INSTITUTIONAL))
    lines = strip_id_prefix(lines)
    lines = _nulls(lines, "standardized_amount")
    # CCLF1/2 have no institutional allowed amount: the paid amount stands in.
    lines = _set(lines, "allowed_amount", pc.if_else(institutional, lines["paid_amount"], lines["allowed_amount"]))
    # CCLF6 has no supplier TIN or specialty.
    dme = pc.equal(lines["claim_type"], "dme")
    return _nulls(lines, "billing_tin", "provider_specialty_code", where=dme)


def cclf_claim_diagnosis(diagnosis: pa.Table, lines: pa.Table) -> pa.Table:
    diagnosis = strip_id_prefix(diagnosis)
    types = strip_id_prefix(lines).group_by("claim_id").aggregate([("claim_type", "min")])
    carrier = types.filter(pc.equal(types["claim_type_min"], "carrier"))["claim_id"]
    dme = types.filter(pc.equal(types["claim_type_min"], "dme"))["claim_id"]
    on_carrier = pc.is_in(diagnosis["claim_id"], value_set=carrier)
    keep = pc.and_(pc.invert(pc.is_in(diagnosis["claim_id"], value_set=dme)),
                   pc.or_(pc.invert(on_carrier), pc.less_equal(diagnosis["dx_position"], 12)))
    return diagnosis.filter(keep)


def cclf_pharmacy(fills: pa.Table) -> pa.Table:
    fills = strip_id_prefix(fills)
    return _nulls(fills, "allowed_amount", "gross_drug_cost_amount", "paid_amount")


def write_expected_world(world: Path, out: Path, transform) -> Path:
    """A canonical folder with `transform(table_name, part_table, world_parts)` applied to every part."""
    if out.exists():
        shutil.rmtree(out)
    for name in TABLES:
        for part in sorted((world / name).glob("part-*.parquet")):
            table = transform(name, pq.read_table(part), world, part.name)
            (out / name).mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out / name / part.name)
    return out


def cclf_transform(name: str, table: pa.Table, world: Path, part: str) -> pa.Table:
    if name == "claim_line":
        return cclf_claim_line(table)
    if name == "claim_diagnosis":
        return cclf_claim_diagnosis(table, pq.read_table(world / "claim_line" / part))
    if name == "pharmacy_claim":
        return cclf_pharmacy(table)
    return table


def final_only(world: Path, table: str, rows: pa.Table) -> pa.Table:
    """Research files and BFD hold final action claims: the rows of claims final under the canonical model."""
    from openasm.synth.rif_writer import final_versions

    final = final_versions(world, table)
    return rows.filter(pc.is_in(rows["claim_id"], value_set=final["claim_id"]))


def rif_transform(name: str, table: pa.Table, world: Path, part: str) -> pa.Table:
    if name == "claim_line":
        institutional = pc.is_in(table["claim_type"], value_set=pa.array(INSTITUTIONAL))
        table = _nulls(final_only(world, "claim_line", table), "standardized_amount")
        institutional = pc.is_in(table["claim_type"], value_set=pa.array(INSTITUTIONAL))
        return _nulls(table, "line_thru_date", where=institutional)
    if name == "claim_diagnosis":
        lines = pq.read_table(world / "claim_line" / part)
        professional = lines.filter(pc.is_in(lines["claim_type"], value_set=pa.array(["carrier", "dme"])))
        on_professional = pc.is_in(table["claim_id"], value_set=professional["claim_id"])
        return table.filter(pc.or_(pc.invert(on_professional), pc.less_equal(table["dx_position"], 12)))
    if name == "pharmacy_claim":
        return final_only(world, "pharmacy_claim", table)
    if name == "enrollment":
        return _nulls(table, "is_hospice", "is_msp")
    return table


def fhir_transform(name: str, table: pa.Table, world: Path, part: str) -> pa.Table:
    """BFD resources: final action claims and fills, no standardized amounts; Patient without county, entitlement
    reason or ESRD; Coverage without hospice, MSP or ESRD months."""
    if name == "claim_line":
        return _nulls(final_only(world, "claim_line", table), "standardized_amount")
    if name == "pharmacy_claim":
        return final_only(world, "pharmacy_claim", table)
    if name == "beneficiary":
        return _nulls(table, "county_fips", "orec", "is_esrd")
    if name == "enrollment":
        return _nulls(table, "is_hospice", "is_msp", "is_esrd")
    return table
