"""CCLF field values of canonical claim rows (the writer side of `connectors/layouts/cclf_mapping.yaml`).

Each function returns, for a batch of canonical rows, the Arrow column of every CCLF field the canonical model
can fill; `fixed_width.format_records` pads them into records. Cancellations are written unsigned (CCLF packet
§5.3.1); null types of adjustment stay null (`~`).
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from openasm.connectors.layout import load_layout
from openasm.synth.fixed_width import date_text, decimal_text

MAX_CARRIER_DX = 12
CANCEL_COPY_PREFIX = "5"
Columns = Callable[[pa.Table], dict[str, pa.Array]]


def _code_of(kind: str) -> dict[str, str]:
    """canonical value -> first CCLF code, from the connector's own code map."""
    out: dict[str, str] = {}
    for code, value in load_layout("cclf_mapping")["codes"][kind].items():
        out.setdefault(str(value), str(code))
    return out


def recode(values: pa.ChunkedArray | pa.Array, mapping: dict[str, str]) -> pa.Array:
    """Canonical values translated to source codes; values without a code pass unchanged (bad data stays bad)."""
    out = values
    for name, code in mapping.items():
        out = pc.if_else(pc.equal(values, name), code, out)
    return out


def _kind_codes(kind: pa.ChunkedArray, part_b: bool) -> pa.Array:
    """CLM_ADJSMT_TYPE_CD: an adjustment is a new original in Part B files (packet §5.2.2-5.2.3)."""
    codes = _code_of("adjustment_type")
    if part_b:
        codes["adjustment"] = codes["original"]
    return recode(kind, codes)


def _unsigned_on_cancel(rows: pa.Table, column: str, width: int, decimals: int = 2) -> pa.Array:
    cancel = pc.fill_null(pc.equal(rows["claim_adjustment_type"], "cancel"), False)
    return pc.if_else(cancel, decimal_text(pc.abs(rows[column]), width, decimals),
                      decimal_text(rows[column], width, decimals))


def _common(rows: pa.Table, part_b: bool) -> dict[str, pa.Array]:
    processed = date_text(rows["claim_processed_date"])
    return {
        "CUR_CLM_UNIQ_ID": rows["claim_id"], "BENE_MBI_ID": rows["bene_id"],
        "CLM_TYPE_CD": recode(rows["claim_type"], _code_of("claim_type")),
        "CLM_FROM_DT": date_text(rows["claim_from_date"]), "CLM_THRU_DT": date_text(rows["claim_thru_date"]),
        "CLM_ADJSMT_TYPE_CD": _kind_codes(rows["claim_adjustment_type"], part_b),
        "CLM_EFCTV_DT": processed, "CLM_IDR_LD_DT": processed,
    }


def _line_fields(rows: pa.Table) -> dict[str, pa.Array]:
    return {
        "CLM_LINE_NUM": pc.cast(rows["line_number"], pa.string()),
        "CLM_LINE_FROM_DT": date_text(rows["line_from_date"]), "CLM_LINE_THRU_DT": date_text(rows["line_thru_date"]),
        "CLM_LINE_HCPCS_CD": rows["hcpcs_code"],
        "CLM_LINE_SRVC_UNIT_QTY": decimal_text(rows["service_units"], 24, 4),
        **{f"HCPCS_{i}_MDFR_CD": rows[f"hcpcs_modifier_{i}"] for i in range(1, 5)},
    }


def part_a_headers(lines: pa.Table) -> pa.Table:
    """One row per institutional claim: its first line's header fields and the sum of its lines' payments."""
    first = lines.group_by("claim_id", use_threads=False).aggregate([("line_number", "min")])
    heads = lines.join(first.rename_columns({"line_number_min": "line_number"}), ["claim_id", "line_number"],
                       join_type="inner")
    paid = lines.group_by("claim_id", use_threads=False).aggregate([("paid_amount", "sum")])
    heads = heads.join(paid, "claim_id").sort_by("claim_id")
    # An exact repeat of a claim's first line (a duplicate the row checks catch) must not repeat its header.
    unique = pc.not_equal(heads["claim_id"][1:], heads["claim_id"][:-1]) if heads.num_rows else pa.array([], pa.bool_())
    return heads.filter(pa.concat_arrays([pa.array([True] * min(heads.num_rows, 1)), unique.combine_chunks()
                                          if isinstance(unique, pa.ChunkedArray) else unique]))


def part_a_columns(file_type: str, diagnosis: pa.Table) -> Columns:
    """CCLF1 header, CCLF2 revenue-centre line or CCLF4 diagnosis fields."""

    def header(rows: pa.Table) -> dict[str, pa.Array]:
        tob = pc.fill_null(rows["type_of_bill_code"], "   ")
        principal = diagnosis.filter(pc.equal(diagnosis["dx_position"], 1))
        at = pc.index_in(rows["claim_id"], value_set=principal["claim_id"])
        return {**_common(rows, False),
                "PRVDR_OSCAR_NUM": rows["facility_ccn"], "CLM_BLG_PRVDR_OSCAR_NUM": rows["facility_ccn"],
                "CLM_BILL_FAC_TYPE_CD": pc.utf8_slice_codeunits(tob, 0, 1),
                "CLM_BILL_CLSFCTN_CD": pc.utf8_slice_codeunits(tob, 1, 2),
                "CLM_BILL_FREQ_CD": pc.utf8_slice_codeunits(tob, 2, 3),
                "PRNCPL_DGNS_CD": pc.take(principal["icd10_code"], at),
                "CLM_PMT_AMT": _unsigned_on_cancel(rows.set_column(rows.schema.get_field_index("paid_amount"),
                                                                   "paid_amount", rows["paid_amount_sum"]),
                                                   "paid_amount", 17),
                "DGNS_DRG_CD": rows["drg_code"], "CLM_NCH_PRMRY_PYR_CD": rows["primary_payer_code"],
                "BENE_PTNT_STUS_CD": pa.nulls(rows.num_rows, pa.string())}

    def line(rows: pa.Table) -> dict[str, pa.Array]:
        return {**_common(rows, False), **_line_fields(rows),
                "CLM_LINE_PROD_REV_CTR_CD": rows["revenue_center_code"], "PRVDR_OSCAR_NUM": rows["facility_ccn"],
                "CLM_LINE_CVRD_PD_AMT": _unsigned_on_cancel(rows, "paid_amount", 17)}

    def dx(rows: pa.Table) -> dict[str, pa.Array]:
        return {"CUR_CLM_UNIQ_ID": rows["claim_id"], "BENE_MBI_ID": rows["bene_id"],
                "CLM_TYPE_CD": recode(rows["_type"], _code_of("claim_type")),
                "CLM_VAL_SQNC_NUM": pc.cast(rows["dx_position"], pa.string()), "CLM_DGNS_CD": rows["icd10_code"],
                "CLM_POA_IND": rows["present_on_admission"], "CLM_FROM_DT": date_text(rows["claim_from_date"]),
                "CLM_THRU_DT": date_text(rows["claim_thru_date"]), "CLM_PROD_TYPE_CD": pa.array(["D"] * rows.num_rows)}

    return {"CCLF1": header, "CCLF2": line, "CCLF4": dx}[file_type]


def _carrier_dx_fields(rows: pa.Table, diagnosis: pa.Table) -> tuple[dict[str, pa.Array], int]:
    """Per line, the claim's diagnosis at positions 1-12 (a cancellation copy repeats its original's); and how
    many diagnosis rows of these claims twelve fields cannot hold (a higher position or an exact repeat)."""
    source = pc.if_else(pc.starts_with(rows["claim_id"], CANCEL_COPY_PREFIX), rows["control_number"],
                        rows["claim_id"])
    own = diagnosis.filter(pc.is_in(diagnosis["claim_id"], value_set=rows["claim_id"]))
    fields = {}
    held = 0
    for position in range(1, MAX_CARRIER_DX + 1):
        at = diagnosis.filter(pc.equal(diagnosis["dx_position"], position))
        firsts = at.group_by("claim_id", use_threads=False).aggregate([("icd10_code", "first")])
        fields[f"CLM_DGNS_{position}_CD"] = pc.take(firsts["icd10_code_first"],
                                                    pc.index_in(source, value_set=firsts["claim_id"]))
        held += pc.sum(pc.is_in(firsts["claim_id"], value_set=rows["claim_id"])).as_py() or 0
    return fields, own.num_rows - held


def part_b_columns(file_type: str, rows: pa.Table, diagnosis: pa.Table) -> tuple[Columns, int]:
    """CCLF5 (carrier) or CCLF6 (DME) line fields, and the diagnosis rows the file cannot hold."""
    if file_type == "CCLF5":
        dx_fields, dropped = _carrier_dx_fields(rows, diagnosis) if rows.num_rows else ({}, 0)
        by_id = rows["claim_id"]
    else:
        dx_fields, by_id = {}, rows["claim_id"]
        dropped = diagnosis.filter(pc.is_in(diagnosis["claim_id"], value_set=by_id)).num_rows

    def columns(batch: pa.Table) -> dict[str, pa.Array]:
        cols = {**_common(batch, True), **_line_fields(batch), "CLM_POS_CD": batch["place_of_service_code"],
                "CLM_CNTL_NUM": batch["control_number"],
                "CLM_LINE_CVRD_PD_AMT": _unsigned_on_cancel(batch, "paid_amount", 15),
                "CLM_LINE_ALOWD_CHRG_AMT": _unsigned_on_cancel(batch, "allowed_amount", 17)}
        if file_type == "CCLF6":
            return {**cols, "PAYTO_PRVDR_NPI_NUM": batch["rendering_npi"], "CLM_BLG_PRVDR_NPI_NUM": batch["rendering_npi"],
                    "CLM_PRMRY_PYR_CD": batch["primary_payer_code"]}
        index = pc.index_in(batch["claim_id"], value_set=by_id)
        return {**cols, "CLM_PRVDR_SPCLTY_CD": batch["provider_specialty_code"],
                "CLM_RNDRG_PRVDR_TAX_NUM": batch["billing_tin"], "RNDRG_PRVDR_NPI_NUM": batch["rendering_npi"],
                "CLM_RNDRG_PRVDR_NPI_NUM": batch["rendering_npi"], "CLM_LINE_DGNS_CD": batch["line_dx_code"],
                "CLM_LINE_PRMRY_PYR_CD": batch["primary_payer_code"],
                **{name: pc.take(values, index) for name, values in dx_fields.items()}}

    return columns, dropped


def part_d_columns(rows: pa.Table) -> dict[str, pa.Array]:
    """CCLF7: the event's natural key is its family's prescription reference (packet §5.1.2); a deletion has
    no NDC (§3.3). No amount is written: CCLF7 has only the beneficiary's payment, which the world lacks."""
    kind = rows["claim_adjustment_type"]
    cancel = pc.fill_null(pc.equal(kind, "cancel"), False)
    processed = date_text(pa.array([None] * rows.num_rows, pa.date32()))
    return {
        "CUR_CLM_UNIQ_ID": rows["claim_id"], "BENE_MBI_ID": rows["bene_id"],
        "CLM_LINE_NDC_CD": pc.if_else(cancel, pa.nulls(rows.num_rows, pa.string()), rows["ndc_code"]),
        "CLM_TYPE_CD": recode(pc.fill_null(kind, "original"), {"original": "01", "adjustment": "02", "cancel": "03"}),
        "CLM_LINE_FROM_DT": date_text(rows["fill_date"]),
        "PRVDR_SRVC_ID_QLFYR_CD": pa.array(["01"] * rows.num_rows),
        "CLM_LINE_SRVC_UNIT_QTY": decimal_text(rows["quantity_dispensed"], 24, 4),
        "CLM_LINE_DAYS_SUPLY_QTY": pc.cast(rows["days_supply"], pa.string()),
        "PRVDR_PRSBNG_ID_QLFYR_CD": pc.if_else(pc.is_valid(rows["prescriber_npi"]), "01", pa.scalar(None, pa.string())),
        "CLM_PRSBNG_PRVDR_GNRC_ID_NUM": rows["prescriber_npi"],
        "CLM_ADJSMT_TYPE_CD": _kind_codes(kind, False),
        "CLM_EFCTV_DT": processed, "CLM_IDR_LD_DT": processed,
        "CLM_LINE_RX_SRVC_RFRNC_NUM": pc.utf8_slice_codeunits(rows["control_number"], 1, 13),
        "CLM_LINE_RX_FILL_NUM": pa.array(["0"] * rows.num_rows),
    }
