"""Shapes of the identifier and code columns (one place for each format fact).

Ingest turns these into row checks; the synthetic generator uses them to make valid (and deliberately
invalid) values. Patterns are anchored and case-sensitive; codes are upper case.
"""

from __future__ import annotations

# ICD-10-CM: letter (not U), digit, alphanumeric, then up to 4 more characters, dot optional.
ICD10CM_PATTERN = r"^[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$"
# HCPCS Level I (CPT: 5 digits, or 4 digits + F/T/U category II/III) and Level II (letter + 4 digits).
HCPCS_PATTERN = r"^([0-9]{4}[0-9FTU]|[A-V][0-9]{4})$"
HCPCS_MODIFIER_PATTERN = r"^[0-9A-Z]{2}$"
NDC_PATTERN = r"^[0-9]{11}$"
NPI_PATTERN = r"^[12][0-9]{9}$"
TIN_PATTERN = r"^[0-9]{9}$"
YEAR_MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
PLACE_OF_SERVICE_PATTERN = r"^[0-9]{2}$"
REVENUE_CENTER_PATTERN = r"^[0-9]{4}$"
DRG_PATTERN = r"^[0-9]{3}$"
SPECIALTY_CODE_PATTERN = r"^[0-9A-Z]{2}$"
ZIP5_PATTERN = r"^[0-9]{5}$"
CBSA_PATTERN = r"^[0-9]{5}$"
STATE_FIPS_PATTERN = r"^[0-9]{2}$"

# NPI check digit: Luhn over the 9-digit base prefixed by the card issuer id 80840, whose digits
# contribute a constant 24 to the sum (CMS, "Requirements for the NPI check digit").
NPI_PREFIX_LUHN_CONSTANT = 24

# Largest dollar amount float64 holds to the cent (2**53 cents): beyond it sums lose cents, and a handful of
# such values overflow a total to infinity.
MAX_EXACT_CENTS_AMOUNT = 2**53 / 100

PATTERNS: dict[str, str] = {
    "icd10cm": ICD10CM_PATTERN,
    "hcpcs": HCPCS_PATTERN,
    "hcpcs_modifier": HCPCS_MODIFIER_PATTERN,
    "ndc": NDC_PATTERN,
    "npi": NPI_PATTERN,
    "tin": TIN_PATTERN,
    "year_month": YEAR_MONTH_PATTERN,
    "place_of_service": PLACE_OF_SERVICE_PATTERN,
    "revenue_center": REVENUE_CENTER_PATTERN,
    "drg": DRG_PATTERN,
    "specialty_code": SPECIALTY_CODE_PATTERN,
    "zip5": ZIP5_PATTERN,
    "cbsa": CBSA_PATTERN,
    "state_fips": STATE_FIPS_PATTERN,
}


def npi_check_digit(base9: str) -> str:
    """Check digit for a 9-digit NPI base (Luhn with the 80840 prefix)."""
    if len(base9) != 9 or not base9.isdigit():
        raise ValueError(f"NPI base must be 9 digits, got {base9!r}")
    total = NPI_PREFIX_LUHN_CONSTANT
    for position, char in enumerate(base9):
        digit = int(char)
        if position % 2 == 0:  # doubled: positions 1, 3, 5, 7, 9 counted from the left
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return str((10 - total % 10) % 10)


def is_valid_npi(npi: str) -> bool:
    """True when `npi` has the NPI shape and a correct check digit."""
    return len(npi) == 10 and npi.isdigit() and npi[0] in "12" and npi_check_digit(npi[:9]) == npi[9]
