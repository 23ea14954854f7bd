"""A small hand-built input folder with one deliberately broken row of each kind, and the expected verdicts."""

from __future__ import annotations

import csv
from pathlib import Path

VALID_NPI = "1234567893"  # CMS's worked example of a valid NPI check digit
BAD_CHECK_NPI = "1234567890"

BENEFICIARY = [
    # (row id, values, expected (column, reason) or None)
    ("ok_1", {"bene_id": "B1", "birth_date": "1950-01-01", "sex": "F"}, None),
    ("ok_died", {"bene_id": "B2", "birth_date": "1948-05-03", "sex": "M", "death_date": "2026-02-01"}, None),
    ("bad_date", {"bene_id": "B3", "birth_date": "1950-13-01", "sex": "F"}, ("birth_date", "not a valid date")),
    ("bad_enum", {"bene_id": "B4", "birth_date": "1950-01-01", "sex": "X"}, ("sex", "not one of M, F, U")),
    ("died_before_born", {"bene_id": "B5", "birth_date": "1960-01-01", "sex": "M", "death_date": "1959-01-01"},
     ("death_date", "death_date is before birth_date")),
    ("missing_required", {"bene_id": "B6", "birth_date": "", "sex": "F"}, ("birth_date", "required value missing")),
    ("duplicate_bene", {"bene_id": "B1", "birth_date": "1950-01-01", "sex": "F"},
     ("bene_id", "duplicate key (bene_id) of an earlier row")),
    ("bad_zip", {"bene_id": "B7", "birth_date": "1950-01-01", "sex": "F", "zip5": "1234"},
     ("zip5", "not a valid zip5 code shape")),
]

ENROLLMENT = [
    ("ok", {"bene_id": "B1", "year_month": "2025-01", "has_part_a": "true", "has_part_b": "1",
            "has_part_d": "Y", "is_medicare_advantage": "false"}, None),
    ("bad_month", {"bene_id": "B1", "year_month": "2025-13", "has_part_a": "true", "has_part_b": "true",
                   "has_part_d": "true", "is_medicare_advantage": "false"},
     ("year_month", "not a valid year_month code shape")),
    ("unknown_bene", {"bene_id": "B9", "year_month": "2025-01", "has_part_a": "true", "has_part_b": "true",
                      "has_part_d": "true", "is_medicare_advantage": "false"},
     ("bene_id", "unknown bene_id (not in beneficiary)")),
    ("bad_bool", {"bene_id": "B2", "year_month": "2025-01", "has_part_a": "true", "has_part_b": "true",
                  "has_part_d": "true", "is_medicare_advantage": "maybe"},
     ("is_medicare_advantage", "not a valid boolean")),
    ("bad_dual", {"bene_id": "B2", "year_month": "2025-02", "has_part_a": "true", "has_part_b": "true",
                  "has_part_d": "true", "is_medicare_advantage": "false", "dual_status_code": "7"},
     ("dual_status_code", "not one of 00, 01, 02, 03, 04, 05, 06, 08, 09, 10, 99, NA")),
]

_CARRIER = {
    "bene_id": "B1", "claim_type": "carrier", "claim_from_date": "2025-01-05", "claim_thru_date": "2025-01-05",
    "line_from_date": "2025-01-05", "hcpcs_code": "99213", "rendering_npi": VALID_NPI, "billing_tin": "123456789",
    "provider_specialty_code": "06", "allowed_amount": "100.50", "paid_amount": "80.40", "line_dx_code": "I5022",
    "claim_processed_date": "2025-01-10",
}


def _line(claim_id: str, line: int, **changes: str) -> dict[str, str]:
    return {**_CARRIER, "claim_id": claim_id, "line_number": str(line), **changes}


CLAIM_LINE = [
    ("ok_line_1", _line("C1", 1), None),
    ("ok_line_2", _line("C1", 2, hcpcs_code="93306", allowed_amount="200"), None),
    ("duplicate_line", _line("C1", 2, hcpcs_code="93306", allowed_amount="200"),
     ("claim_id,line_number", "duplicate key (claim_id, line_number) of an earlier row")),
    ("bad_npi_check_digit", _line("C2", 1, rendering_npi=BAD_CHECK_NPI), ("rendering_npi", "NPI check digit is wrong")),
    ("bad_npi_shape", _line("C2", 2, rendering_npi="12345"), ("rendering_npi", "not a valid npi code shape")),
    ("bad_tin", _line("C3", 1, billing_tin="12345678"), ("billing_tin", "not a valid tin code shape")),
    ("bad_hcpcs", _line("C4", 1, hcpcs_code="9921"), ("hcpcs_code", "not a valid hcpcs code shape")),
    ("negative_on_original", _line("C5", 1, allowed_amount="-100"),
     ("allowed_amount", "negative amount on an original claim")),
    ("bad_icd10", _line("C6", 1, line_dx_code="U5022"), ("line_dx_code", "not a valid icd10cm code shape")),
    ("thru_before_from", _line("C7", 1, claim_from_date="2025-02-05"),
     ("claim_thru_date", "claim_thru_date is before claim_from_date")),
    ("carrier_needs_line_date", _line("C8", 1, line_from_date=""), ("line_from_date", "required on carrier/dme claims")),
    ("amount_not_number", _line("C9", 1, allowed_amount="abc"), ("allowed_amount", "not a valid float64")),
    ("adjustment_ok", _line("C10", 1, hcpcs_code="99214", allowed_amount="150", claim_adjustment_type="adjustment",
                            original_claim_id="C1", claim_processed_date="2025-02-10"), None),
    ("cancel_negative_ok", _line("C11", 1, hcpcs_code="99214", allowed_amount="-150", paid_amount="-120",
                                 claim_adjustment_type="cancel", original_claim_id="C10",
                                 claim_processed_date="2025-03-10"), None),
    ("ok_other_bene", _line("C12", 1, bene_id="B2", hcpcs_code="99214", allowed_amount="150"), None),
    ("inpatient_ok", {"claim_id": "C13", "line_number": "1", "bene_id": "B2", "claim_type": "inpatient",
                      "claim_from_date": "2025-01-07", "claim_thru_date": "2025-01-09", "admission_date": "2025-01-07",
                      "discharge_date": "2025-01-09", "drg_code": "291", "revenue_center_code": "0100",
                      "allowed_amount": "9000", "paid_amount": "8000"}, None),
    ("inpatient_needs_drg", {"claim_id": "C14", "line_number": "1", "bene_id": "B2", "claim_type": "inpatient",
                             "claim_from_date": "2025-01-07", "claim_thru_date": "2025-01-09",
                             "admission_date": "2025-01-07", "allowed_amount": "9000"},
     ("drg_code", "required on inpatient claims")),
    ("bad_claim_type", _line("C15", 1, claim_type="dental"), ("claim_type", "not one of carrier, dme, inpatient, "
                                                                           "outpatient, snf, home_health, hospice")),
    ("bad_modifier", _line("C16", 1, hcpcs_modifier_1="GTX"), ("hcpcs_modifier_1", "not a valid hcpcs_modifier code shape")),
    ("bad_line_number", _line("C17", "x"), ("line_number", "not a valid int32")),
    ("unknown_bene", _line("C18", 1, bene_id="B404"), ("bene_id", "unknown bene_id (not in beneficiary)")),
]

CLAIM_DIAGNOSIS = [
    ("ok", {"claim_id": "C1", "bene_id": "B1", "dx_position": "1", "icd10_code": "I50.22"}, None),
    ("ok_nodot", {"claim_id": "C1", "bene_id": "B1", "dx_position": "2", "icd10_code": "E119"}, None),
    ("bad_code", {"claim_id": "C1", "bene_id": "B1", "dx_position": "3", "icd10_code": "50.22"},
     ("icd10_code", "not a valid icd10cm code shape")),
]

PHARMACY_CLAIM = [
    ("ok", {"claim_id": "P1", "bene_id": "B1", "fill_date": "2025-01-06", "ndc_code": "00093101101",
            "allowed_amount": "12.5", "days_supply": "30"}, None),
    ("bad_ndc", {"claim_id": "P2", "bene_id": "B1", "fill_date": "2025-01-06", "ndc_code": "0009-3101-01",
                 "allowed_amount": "12.5"}, ("ndc_code", "not a valid ndc code shape")),
    ("bad_days", {"claim_id": "P3", "bene_id": "B1", "fill_date": "2025-01-06", "ndc_code": "00093101101",
                  "allowed_amount": "12.5", "days_supply": "thirty"}, ("days_supply", "not a valid int32")),
]

CLINICIAN = [
    ("ok", {"tin": "123456789", "npi": VALID_NPI, "specialty_code": "06", "practice_cbsa_code": "35620"}, None),
    ("bad_cbsa", {"tin": "123456789", "npi": "1245319599", "practice_cbsa_code": "3562"},
     ("practice_cbsa_code", "not a valid cbsa code shape")),
]

TABLES = {
    "beneficiary": BENEFICIARY, "enrollment": ENROLLMENT, "claim_line": CLAIM_LINE,
    "claim_diagnosis": CLAIM_DIAGNOSIS, "pharmacy_claim": PHARMACY_CLAIM, "clinician": CLINICIAN,
}


def write_case_folder(folder: Path, tables: dict[str, list] = TABLES) -> Path:
    """Write each table as CSV (columns = union of the keys, in first-seen order)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        columns: list[str] = []
        for _, values, _ in rows:
            columns.extend(c for c in values if c not in columns)
        with (folder / f"{name}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for _, values, _ in rows:
                writer.writerow(values)
    return folder


def expected_quarantine(tables: dict[str, list] = TABLES) -> dict[tuple[str, int], tuple[str, str, str]]:
    """(table, row number) -> (row id, column, reason) for every row that must be quarantined."""
    expected = {}
    for name, rows in tables.items():
        for number, (row_id, _, verdict) in enumerate(rows, start=1):
            if verdict is not None:
                expected[(name, number)] = (row_id, *verdict)
    return expected
