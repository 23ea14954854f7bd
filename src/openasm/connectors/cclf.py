"""CCLF (Claim and Claim Line Feed) → canonical tables (CMS CCLF Information Packet v38.0).

Files: CCLF1 Part A headers + CCLF2 revenue-centre lines → `claim_line` (institutional); CCLF4 → Part A
`claim_diagnosis`; CCLF5 Part B physician lines → `claim_line` (carrier) and, from the claim diagnosis fields
repeated on each line, carrier `claim_diagnosis`; CCLF6 → `claim_line` (DME); CCLF7 → `pharmacy_claim`;
CCLF8 → `beneficiary` (and a derived `enrollment` when none is supplied, `cclf_enrollment`); CCLF9 → the MBI
cross-walk applied to every file. Layouts and field meanings are data (`layouts/cclf_records.yaml`,
`layouts/cclf_mapping.yaml`). Records are cut by the backend from whole lines; a record of the wrong length
(including a truncated last record) is quarantined with its file and record number.

What CCLF cannot carry is stated in `CCLF_LIMITATIONS` and in every run's manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import ibis
import ibis.expr.types as ir
import ibis.selectors as s

from openasm.connectors.base import ConnectorError, Limitation, SourceTables, add_side_tables
from openasm.connectors.cclf_chains import (amount_key, apply_mbi_map, current_mbi_map, family_key, processed_date,
                                            with_pairs)
from openasm.connectors.cclf_enrollment import derive_enrollment, enrollment_limitations
from openasm.connectors.cclf_files import CclfDelivery, find_cclf_files
from openasm.connectors.layout import (
    RecordLayout,
    Span,
    cut_records,
    fits_record_length,
    fixed_width_layouts,
    has_other_blanks,
    load_layout,
    map_codes,
    rejected_rows,
    split_by_record_length,
)
from openasm.engine import ROW_NUMBER, SOURCE_FILE, Engine

FORMAT = "cclf"
SIDE_TABLES = ("clinician", "enrollment")
AMOUNT_COLUMNS = ("allowed_amount", "paid_amount")
DX_SPAN = "_dx_span"  # CCLF5's claim diagnosis fields as one text, cut apart by `_carrier_diagnoses`
DX_PREFIX = "_dx_"
FILE_RANK = "_file_rank"  # the record's file among its type's files in name order (`_record_position`)

CCLF_LIMITATIONS = (
    Limitation("pharmacy_claim", "allowed_amount, gross_drug_cost_amount, paid_amount",
               "CCLF7 carries only the beneficiary's payment (CLM_LINE_BENE_PMT_AMT), no gross drug cost, total "
               "or plan-paid amount.",
               "Every Part D event is quarantined for its missing cost: the Part D part of COST_HF_1 cannot be "
               "computed from CCLF alone, so HF episode costs exclude Part D drugs."),
    Limitation("claim_line", "allowed_amount (inpatient, outpatient, SNF, home health, hospice)",
               "CCLF1/CCLF2 carry Medicare's payment but no allowed amount for institutional claims.",
               "Institutional lines take the revenue-centre paid amount as their allowed amount, so their cost "
               "leaves out the beneficiary's deductible and coinsurance."),
    Limitation("claim_line", "standardized_amount", "No CCLF file carries CMS standardized amounts.",
               "Costs fall back to allowed amounts wherever the cost basis asks for standardized ones."),
    Limitation("claim_line", "admission_date, discharge_date",
               "CCLF1 has no admission or discharge date.",
               "Inpatient and SNF claims take the claim from date as admission and the thru date as discharge "
               "(unless the patient status is 30, still a patient)."),
    Limitation("claim_line", "billing_tin, provider_specialty_code (DME)",
               "CCLF6 has no supplier tax number or specialty; its pay-to NPI is taken as the line's NPI.",
               "DME lines are quarantined as missing their TIN and specialty (required on carrier/DME lines)."),
    Limitation("claim_diagnosis", "DME claims; carrier positions above 12",
               "CCLF6 has no diagnosis fields and CCLF5 carries twelve claim diagnoses.",
               "DME claims have no diagnoses; carrier diagnoses beyond the twelfth are not available."),
)


def read_cclf(engine: Engine, folder: Path) -> SourceTables:
    """Every CCLF file in `folder` mapped to raw canonical tables (see the module docstring)."""
    delivery = find_cclf_files(folder)
    if not any(delivery.of(t) for t in ("CCLF1", "CCLF5", "CCLF6")) or not delivery.of("CCLF8"):
        raise ConnectorError(f"{folder}: a CCLF delivery needs CCLF8 and at least one of CCLF1, CCLF5, CCLF6 "
                             f"(found: {', '.join(sorted(delivery.files)) or 'no CCLF files'})")
    tables = SourceTables(FORMAT, not_read=list(delivery.not_read), text_trimmed=True)
    tables.limitations.extend(CCLF_LIMITATIONS)
    reader = _RecordReader(engine, delivery, tables)
    mapping = load_layout("cclf_mapping")
    crosswalk = reader.cut("mbi_crosswalk", "beneficiary", mapping)
    if crosswalk is None:
        crosswalk = ibis.memtable({"_previous_id": [], "_current_id": []}, schema={"_previous_id": "string",
                                                                                 "_current_id": "string"})
    mbi_map = tables.stage(engine, current_mbi_map(crosswalk=crosswalk))
    reader.release("mbi_crosswalk")
    records: dict[str, ir.Table | None] = {}
    for name, table in (("part_a_header", "claim_line"), ("part_a_line", "claim_line"),
                        ("part_a_diagnosis", "claim_diagnosis"), ("part_b_physician", "claim_line"),
                        ("part_b_dme", "claim_line"), ("part_d", "pharmacy_claim"), ("beneficiary", "beneficiary")):
        cut = reader.cut(name, table, mapping)
        records[name] = tables.stage(engine, apply_mbi_map(cut, mbi_map)) if cut is not None else None
        reader.release(name)
    codes = mapping["codes"]
    _part_a(engine, records, codes, tables)
    for name in ("part_b_physician", "part_b_dme"):
        if records[name] is not None:
            # Not staged here: `prepared` stores the union of every claim_line part in one pass.
            tables.add_part("claim_line", _part_b(records[name], codes), reader.files_of(name), one_row_per_record=True)
    if records["part_b_physician"] is not None:
        carrier_dx = _carrier_diagnoses(records["part_b_physician"], reader.layouts["CCLF5"],
                                        mapping["tables"]["part_b_physician"]["diagnosis_fields"],
                                        reader.files_of("part_b_physician"), reader.other_blanks["CCLF5"])
        # A record gives one row per position (its positions are distinct): the position numbers the copies.
        tables.add_part("claim_diagnosis", carrier_dx, reader.files_of("part_b_physician"),
                        row_copy=carrier_dx.dx_position.cast("int64") - 1)
    if records["part_a_diagnosis"] is not None:
        tables.add_part("claim_diagnosis", records["part_a_diagnosis"], reader.files_of("part_a_diagnosis"),
                        one_row_per_record=True)
    if records["part_d"] is not None:
        tables.add_part("pharmacy_claim", _part_d(records["part_d"], codes), reader.files_of("part_d"),
                        one_row_per_record=True)
    bene = records["beneficiary"]
    tables.add_part("beneficiary", _beneficiary(bene, codes), reader.files_of("beneficiary"), one_row_per_record=True)
    add_side_tables(engine, Path(folder), tables, SIDE_TABLES)
    if "enrollment" not in tables.raw:
        claim_dates = [t.select(_date=t.claim_from_date) for t in tables.raw["claim_line"].parts] \
            if "claim_line" in tables.raw else []
        has_part_d = records["part_d"].select("bene_id") if records["part_d"] is not None else None
        tables.add_part("enrollment", derive_enrollment(bene=bene, codes=codes, claim_dates=claim_dates,
                                                        part_d_benes=has_part_d), reader.files_of("beneficiary"))
        tables.limitations.extend(enrollment_limitations())
    return tables


class _RecordReader:
    """Reads the files of one CCLF type through the engine, splits off wrong-length records, keeps counts."""

    def __init__(self, engine: Engine, delivery: CclfDelivery, tables: SourceTables) -> None:
        self.engine, self.delivery, self.tables = engine, delivery, tables
        self.layouts: dict[str, RecordLayout] = fixed_width_layouts("cclf_records")
        self._files: dict[str, list[str]] = {}
        self._lines: dict[str, ir.Table | None] = {}
        self._line_tables: dict[str, list[ir.Table]] = {}
        self.other_blanks: dict[str, bool] = {}  # a file of the type has records with tabs, CRs or LFs

    def files_of(self, name: str) -> list[str]:
        return self._files.get(name, [])

    def lines(self, file_type: str, table: str) -> ir.Table | None:
        """The records of every file of this type with the right length (others quarantined under `table`, the
        first table the type feeds). Each file is read and counted once."""
        if file_type not in self._lines:
            self._lines[file_type] = self._read(file_type, table)
        return self._lines[file_type]

    def release(self, name: str) -> None:
        """Drop the stored lines of the file type behind record `name` once its records are cut and stored: a
        national delivery's text would otherwise stay in the spill folder until the end of ingest."""
        file_type = load_layout("cclf_mapping")["tables"][name]["file"]
        for lines in self._line_tables.pop(file_type, []):
            self.engine.drop_lines(lines)
        self._lines.pop(file_type, None)

    def _read(self, file_type: str, table: str) -> ir.Table | None:
        layout = self.layouts[file_type]
        good_parts = []
        files = _in_rank_order(str(f.path) for f in self.delivery.of(file_type))
        ranks = {path: rank for rank, path in enumerate(files)}
        for found in self.delivery.of(file_type):
            lines = self.engine.read_lines(found.path)
            self._line_tables.setdefault(file_type, []).append(lines)
            good, bad = split_by_record_length(lines, layout, table)
            fits = fits_record_length(lines, layout)
            counts = lines.aggregate(total=lines.count(), bad=(~fits).sum(),
                                     odd=(fits & has_other_blanks(lines.line)).sum()).to_pyarrow().to_pylist()[0]
            total, bad_count = counts["total"], counts["bad"] or 0
            self.other_blanks[file_type] = self.other_blanks.get(file_type, False) or bool(counts["odd"])
            if bad_count:
                bad = self.tables.stage(self.engine, bad)  # kept: the lines are dropped once cut (`release`)
                if table in ("claim_line", "claim_diagnosis", "pharmacy_claim", "beneficiary"):
                    self.tables.add_rejected(table, bad)
                else:
                    self.tables.extra_quarantine.append(bad)
            self.tables.source_records.append({
                "file": str(found.path), "file_type": file_type, "run_out": found.is_runout,
                "performance_year": found.performance_year, "records": total, "wrong_length": bad_count})
            good_parts.append(good.mutate(**{FILE_RANK: ibis.literal(ranks[str(found.path)], "int64")}))
        if not good_parts:
            return None
        return good_parts[0] if len(good_parts) == 1 else ibis.union(*good_parts)

    def cut(self, name: str, table: str, mapping: dict) -> ir.Table | None:
        """The mapping's columns of a record type, plus the span of its repeated claim diagnoses (if any) as one
        text `_dx_span`, cut apart by `_carrier_diagnoses` once per claim rather than on every line."""
        spec = mapping["tables"][name]
        file_type = spec["file"]
        lines = self.lines(file_type, "mbi_crosswalk" if name == "mbi_crosswalk" else table)
        self._files[name] = [str(f.path) for f in self.delivery.of(file_type)]
        if lines is None:
            return None
        dx_fields = spec.get("diagnosis_fields")
        spans = {DX_SPAN: Span(dx_fields[0], dx_fields[-1])} if dx_fields else None
        return cut_records(lines, self.layouts[file_type], spec["columns"], spans=spans,
                           keep=(FILE_RANK,) if spans else (), other_blanks=self.other_blanks[file_type])


def _signed(records: ir.Table, kind: ir.StringValue, columns: tuple[str, ...]) -> dict[str, ir.Value]:
    """Packet §5.3.1: cancellation amounts are unsigned copies; a credit is the negative of the value."""
    out = {}
    for name in columns:
        if name not in records.columns:
            continue
        value = records[name].try_cast("float64")
        out[name] = ibis.ifelse((kind == "cancel") & value.notnull(), (-value.abs()).cast("string"), records[name])
    return out


def _part_a(engine: Engine, records: dict[str, ir.Table | None], codes: dict, tables: SourceTables) -> None:
    """CCLF1 headers joined to CCLF2 lines (a header without lines is one row; a line without a header, or a
    repeated header record, is quarantined)."""
    header, lines = records["part_a_header"], records["part_a_line"]
    if header is None:
        if lines is not None:
            tables.add_rejected("claim_line", rejected_rows(lines, "claim_line", "claim_id",
                                                            "CCLF2 line without a CCLF1 header (no CCLF1 file)"))
        return
    kind = map_codes(header.claim_adjustment_type, codes["adjustment_type"])
    claim_type = map_codes(header.claim_type, codes["claim_type"])
    header = header.mutate(claim_type=claim_type, claim_adjustment_type=kind)
    family = family_key(header._billing_ccn.fill_null(header.facility_ccn), header.claim_from_date,
                        header.claim_thru_date, header.bene_id)
    header = with_pairs(header, family, kind,
                        lambda claim: amount_key(claim._header_paid_amount.try_cast("float64")).min())
    stay = header.claim_type.isin(["inpatient", "snf"])
    header = header.mutate(
        claim_processed_date=processed_date(header),
        type_of_bill_code=header._tob_facility.fill_null("") + header._tob_classification.fill_null("")
        + header._tob_frequency.fill_null(""),
        admission_date=ibis.ifelse(stay, header.claim_from_date, ibis.null("string")),
        discharge_date=ibis.ifelse(stay & (header._patient_status.fill_null("") != "30"), header.claim_thru_date,
                                   ibis.null("string")),
        drg_code=_three_digit_drg(header.drg_code),
    )
    rank = ibis.row_number().over(ibis.window(group_by=header.claim_id,
                                              order_by=[header[SOURCE_FILE], header[ROW_NUMBER]]))
    header = tables.stage(engine, header.mutate(_header_rank=rank))
    repeated = header.filter(header._header_rank > 0)
    tables.add_rejected("claim_line", rejected_rows(repeated, "claim_line", "claim_id",
                                                    "repeated CCLF1 header record of a claim (the first is used)"))
    header = header.filter(header._header_rank == 0)
    header_files = list(dict.fromkeys(header_files_of(tables, "CCLF1")))
    if lines is None:
        tables.add_part("claim_line", _header_only(header), header_files, one_row_per_record=True)
        return
    line_cols = [c for c in lines.columns if c not in ("bene_id", "claim_id", ROW_NUMBER, SOURCE_FILE)]
    h = header.rename({f"_h_{c}": c for c in header.columns})
    joined = lines.join(h, lines.claim_id == h._h_claim_id)
    header_cols = [c for c in header.columns if c not in line_cols and c not in (ROW_NUMBER, SOURCE_FILE)]
    rows = joined.select(*line_cols, ROW_NUMBER, SOURCE_FILE,
                         **{c: joined[f"_h_{c}"] for c in header_cols})
    rows = rows.mutate(**_signed(rows, rows.claim_adjustment_type, ("paid_amount",)))
    rows = rows.mutate(allowed_amount=rows.paid_amount)
    tables.add_part("claim_line", rows, header_files + header_files_of(tables, "CCLF2"), one_row_per_record=True)
    orphans = lines.anti_join(header, lines.claim_id == header.claim_id)
    tables.add_rejected("claim_line", rejected_rows(orphans, "claim_line", "claim_id",
                                                    "CCLF2 line without a CCLF1 header of the same claim"))
    tables.add_part("claim_line", _header_only(header.anti_join(lines, header.claim_id == lines.claim_id)),
                    header_files, one_row_per_record=True)


def header_files_of(tables: SourceTables, file_type: str) -> list[str]:
    return [r["file"] for r in tables.source_records if r["file_type"] == file_type]


def _header_only(header: ir.Table) -> ir.Table:
    """A Part A header without revenue-centre lines: one row, line 1, its header payment as the amounts."""
    paid = ibis.ifelse((header.claim_adjustment_type == "cancel") & header._header_paid_amount.try_cast("float64")
                       .notnull(), (-header._header_paid_amount.try_cast("float64").abs()).cast("string"),
                       header._header_paid_amount)
    return header.mutate(line_number=ibis.literal("1"), paid_amount=paid, allowed_amount=paid)


def _three_digit_drg(drg: ir.StringValue) -> ir.StringValue:
    """MS-DRGs are three digits; CCLF1's four-character field pads them with a leading zero."""
    return ibis.ifelse((drg.length() == 4) & drg.startswith("0"), drg.substr(1, 3), drg)


def _part_b(records: ir.Table, codes: dict) -> ir.Table:
    """CCLF5 / CCLF6 lines: related claims share (control number, MR_MBI); cancellations paired (cclf_chains)."""
    kind = map_codes(records.claim_adjustment_type, codes["adjustment_type"])
    records = records.mutate(claim_type=map_codes(records.claim_type, codes["claim_type"]),
                             claim_adjustment_type=kind)
    records = with_pairs(records, family_key(records._control_number, records.bene_id), kind,
                         lambda claim: amount_key(claim.allowed_amount.try_cast("float64").abs().sum()))
    records = records.drop(DX_SPAN) if DX_SPAN in records.columns else records
    return records.mutate(claim_processed_date=processed_date(records),
                          **_signed(records, records.claim_adjustment_type, AMOUNT_COLUMNS))


def _carrier_diagnoses(records: ir.Table, layout: RecordLayout, dx_fields: list[str], files: list[str],
                       other_blanks: bool) -> ir.Table:
    """CCLF5 claim diagnoses (positions 1-12, repeated on every line) as one row per claim and position, from
    the first record that carries it; the same position with another code on a later line is kept as a row
    too, so the row checks report the conflict as a duplicate key. The span of the twelve fields is cut apart
    on the first record of each distinct (claim, span) only: the first record with a (claim, position, code)
    is the first record of one of those spans. "First" is by file, then record (`files` in name order), found
    by hash aggregation on one position number rather than by sorting windows."""
    spans = records.filter(records[DX_SPAN].notnull())
    spans = _first_of_each(spans.mutate(_position=_record_position(spans)), ["claim_id", DX_SPAN])
    span = Span(dx_fields[0], dx_fields[-1])
    dx = cut_records(spans, layout, {f"{DX_PREFIX}{i}": f for i, f in enumerate(dx_fields, start=1)}, text=DX_SPAN,
                     text_start=span.start(layout), keep=("claim_id", "bene_id", "_position"),
                     other_blanks=other_blanks)
    dx = dx.pivot_longer(s.startswith(DX_PREFIX), names_to="dx_position", names_pattern=f"{DX_PREFIX}(\\d+)",
                         values_to="icd10_code")
    dx = dx.filter(dx.icd10_code.notnull())
    dx = _first_of_each(dx, ["claim_id", "dx_position", "icd10_code"])
    return dx.mutate(**_record_at(dx._position, files))


# A record's place in (file name, record number) order as one int64: file rank times 2^40 plus record number.
_FILE_RANK_SHIFT = 1 << 40


def _record_position(records: ir.Table) -> ir.IntegerValue:
    """The record's place in (file name, record number) order as one int64 (see `_record_at`)."""
    return records[FILE_RANK].cast("int64") * _FILE_RANK_SHIFT + records[ROW_NUMBER].cast("int64")


def _record_at(position: ir.IntegerValue, files: list[str]) -> dict[str, ir.Value]:
    """`_row_number` and `_source_file` back from a `_record_position`."""
    rank = (position // _FILE_RANK_SHIFT).cast("int64")
    return {ROW_NUMBER: position % _FILE_RANK_SHIFT,
            SOURCE_FILE: rank.cases(*enumerate(_in_rank_order(files)), else_=ibis.null("string"))}


def _in_rank_order(files: Iterable[str]) -> list[str]:
    """A file type's files in name order: a file's `FILE_RANK` is its index here."""
    return sorted(files)


def _first_of_each(rows: ir.Table, key: list[str]) -> ir.Table:
    """One row per `key`: the least `_position` and the `bene_id` of the row that has it."""
    return rows.group_by(key).agg(_position=rows._position.min(), bene_id=rows.bene_id.argmin(rows._position))


def _part_d(records: ir.Table, codes: dict) -> ir.Table:
    """CCLF7 events. Packet §3.3: Part D versions are final action, the latest of a related set wins, so
    adjustments and deletions point at the first original of their natural key; a deletion carries no NDC and
    takes its original's. Prescriber NPI only where the qualifier says NPI."""
    kind = map_codes(records.claim_adjustment_type, codes["adjustment_type"])
    family = family_key(records.fill_date, records._service_provider_qualifier, records._service_provider_id,
                        records._dispensing_status, records._rx_reference, records._fill_number, records.bene_id)
    records = records.mutate(claim_adjustment_type=kind, _family=family, _processed=processed_date(records))
    # Only keys with an adjustment or deletion look up their first original (most keys have none).
    version_keys = records.filter(_is_version(records)).select("_family").distinct()
    originals = records.filter(records.claim_adjustment_type.fill_null("original") == "original")
    originals = originals.semi_join(version_keys, "_family")
    rank = ibis.row_number().over(ibis.window(group_by=originals._family,
                                              order_by=[originals._processed, originals.claim_id]))
    first = originals.mutate(_rank=rank).filter(ibis._._rank == 0).select(
        _o_family=ibis._._family, _o_claim_id=ibis._.claim_id, _o_ndc=ibis._.ndc_code)
    joined = records.left_join(first, records._family == first._o_family)
    is_version = _is_version(joined)
    qualifier = codes["prescriber_npi_qualifier"]
    return joined.mutate(
        original_claim_id=ibis.ifelse(is_version, joined._o_claim_id, ibis.null("string")),
        ndc_code=joined.ndc_code.fill_null(ibis.ifelse(is_version, joined._o_ndc, ibis.null("string"))),
        prescriber_npi=ibis.ifelse(joined._prescriber_qualifier == qualifier, joined._prescriber_id,
                                   ibis.null("string")),
    )


def _is_version(events: ir.Table) -> ir.BooleanValue:
    return events.claim_adjustment_type.isin(["adjustment", "cancel"]).fill_null(False)


def _beneficiary(records: ir.Table, codes: dict) -> ir.Table:
    """CCLF8: sex code 1/2/0 → M/F/U; ESRD from the Medicare status code (11, 21, 31)."""
    return records.mutate(
        sex=map_codes(records.sex, codes["sex"]),
        is_esrd=ibis.ifelse(records._medicare_status.isnull(), ibis.null("string"),
                            ibis.ifelse(records._medicare_status.isin(codes["esrd_status"]), "true", "false")),
    )
