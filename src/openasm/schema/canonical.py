"""The canonical Medicare input model: the tables every openasm stage reads.

Conventions follow the CMS Claim and Claim Line Feed (CCLF) and research identifiable file layouts so a
connector can map real files in: claims arrive as lines in long format (one row per claim line, headers
repeated), diagnoses as a long table with their position (CCLF4-style), Part D fills as their own table
(CCLF7), and monthly enrollment per beneficiary (MBSF-style). Ids end `_id`/`_npi`/`_tin`, dates `_date`,
money `_amount`, flags `is_`/`has_` (ARCHITECTURE.md §2). Amounts are dollars; dates are ISO `YYYY-MM-DD`.
"""

from __future__ import annotations

from openasm.schema.contract import Column, TableContract

CLAIM_TYPES = ("carrier", "dme", "inpatient", "outpatient", "snf", "home_health", "hospice")
PART_B_PROFESSIONAL = ("carrier", "dme")
INSTITUTIONAL = ("inpatient", "outpatient", "snf", "home_health", "hospice")
ADJUSTMENT_TYPES = ("original", "adjustment", "cancel")
SEX_CODES = ("M", "F", "U")
DUAL_STATUS_CODES = ("00", "01", "02", "03", "04", "05", "06", "08", "09", "10", "99", "NA")
OREC_CODES = ("0", "1", "2", "3")

BENEFICIARY = TableContract(
    name="beneficiary",
    grain="one row per Medicare beneficiary",
    description="Demographics and vital status (CCLF8 / MBSF base segment).",
    key=("bene_id",),
    columns=(
        Column("bene_id", "string", True, "Beneficiary identifier (MBI or a research bene id)."),
        Column("birth_date", "date", True, "Date of birth."),
        Column("sex", "string", True, "M, F or U (unknown).", allowed=SEX_CODES),
        Column("death_date", "date", False, "Date of death, if any."),
        Column("orec", "string", False,
               "Original reason for entitlement: 0 age, 1 disability, 2 ESRD, 3 disability and ESRD.",
               allowed=OREC_CODES),
        Column("is_esrd", "boolean", False, "Has end-stage renal disease status."),
        Column("state_fips", "string", False, "2-digit FIPS code of the state of residence.",
               check="state_fips"),
        Column("county_fips", "string", False, "3-digit FIPS code of the county of residence."),
        Column("zip5", "string", False, "5-digit ZIP code of residence.", check="zip5"),
        Column("race_code", "string", False, "Research triangle institute race code."),
    ),
    date_order=(("birth_date", "death_date"),),
)

ENROLLMENT = TableContract(
    name="enrollment",
    grain="one row per beneficiary per calendar month",
    description="Monthly Medicare coverage: Parts A, B, D, Medicare Advantage, dual status (MBSF-style).",
    key=("bene_id", "year_month"),
    columns=(
        Column("bene_id", "string", True, "Beneficiary identifier."),
        Column("year_month", "string", True, "Calendar month, YYYY-MM.", check="year_month"),
        Column("has_part_a", "boolean", True, "Entitled to Part A in the month."),
        Column("has_part_b", "boolean", True, "Enrolled in Part B in the month."),
        Column("has_part_d", "boolean", True, "Enrolled in a Part D plan in the month."),
        Column("is_medicare_advantage", "boolean", True,
               "Enrolled in Medicare Advantage / a Medicare health plan (not FFS) in the month."),
        Column("dual_status_code", "string", False,
               "Medicare-Medicaid dual status code (00 none, 01-10 dual categories, 99/NA unknown).",
               allowed=DUAL_STATUS_CODES),
        Column("is_esrd", "boolean", False, "ESRD status in the month."),
        Column("is_hospice", "boolean", False, "Hospice election in the month."),
        Column("is_msp", "boolean", False, "Medicare is the secondary payer in the month."),
    ),
)

CLAIM_LINE = TableContract(
    name="claim_line",
    grain="one row per claim line (headers repeated on each line)",
    description=(
        "Parts A and B claim lines in long format for carrier, DME, inpatient, outpatient, SNF, home health "
        "and hospice claims (CCLF1/2/5/6 combined). Adjustments and cancels arrive as their own claims "
        "pointing at the claim they modify; final-action resolution happens after ingest."
    ),
    key=("claim_id", "line_number"),
    columns=(
        Column("claim_id", "string", True, "Claim identifier (unique per version of a claim)."),
        Column("line_number", "int32", True, "Line number within the claim (1 for header-only rows)."),
        Column("bene_id", "string", True, "Beneficiary identifier."),
        Column("claim_type", "string", True, "Setting of the claim.", allowed=CLAIM_TYPES),
        Column("claim_from_date", "date", True, "Claim from (start) date."),
        Column("claim_thru_date", "date", True, "Claim through (end) date."),
        Column("line_from_date", "date", False, "Line first expense / service date.",
               required_for_claim_types=PART_B_PROFESSIONAL),
        Column("line_thru_date", "date", False, "Line last expense / service date."),
        Column("admission_date", "date", False, "Inpatient or SNF admission date.",
               required_for_claim_types=("inpatient",)),
        Column("discharge_date", "date", False, "Inpatient or SNF discharge date."),
        Column("claim_adjustment_type", "string", False,
               "original, adjustment (replaces original_claim_id) or cancel (voids it); empty = original.",
               allowed=ADJUSTMENT_TYPES),
        Column("original_claim_id", "string", False,
               "For an adjustment or cancel: the claim id it modifies."),
        Column("claim_processed_date", "date", False,
               "Date the claim version was processed; orders versions of the same claim."),
        Column("hcpcs_code", "string", False, "HCPCS / CPT code of the line.", check="hcpcs",
               required_for_claim_types=PART_B_PROFESSIONAL),
        Column("hcpcs_modifier_1", "string", False, "First HCPCS modifier.", check="hcpcs_modifier"),
        Column("hcpcs_modifier_2", "string", False, "Second HCPCS modifier.", check="hcpcs_modifier"),
        Column("hcpcs_modifier_3", "string", False, "Third HCPCS modifier.", check="hcpcs_modifier"),
        Column("hcpcs_modifier_4", "string", False, "Fourth HCPCS modifier.", check="hcpcs_modifier"),
        Column("service_units", "float64", False, "Units of service on the line."),
        Column("place_of_service_code", "string", False, "CMS place of service code (2 digits).",
               check="place_of_service"),
        Column("revenue_center_code", "string", False, "Revenue center code (4 digits) on institutional lines.",
               check="revenue_center"),
        Column("drg_code", "string", False, "MS-DRG (3 digits) on inpatient claims.", check="drg",
               required_for_claim_types=("inpatient",)),
        Column("type_of_bill_code", "string", False, "Institutional type of bill (3-4 characters)."),
        Column("facility_ccn", "string", False, "CMS certification number of the facility."),
        Column("rendering_npi", "string", False, "NPI of the rendering clinician.", check="npi",
               required_for_claim_types=PART_B_PROFESSIONAL),
        Column("billing_tin", "string", False, "Billing taxpayer identification number (9 digits).",
               check="tin", required_for_claim_types=PART_B_PROFESSIONAL),
        Column("provider_specialty_code", "string", False,
               "Medicare provider specialty code of the rendering clinician on the line.",
               check="specialty_code", required_for_claim_types=PART_B_PROFESSIONAL),
        Column("line_dx_code", "string", False, "Line diagnosis (carrier/DME), ICD-10-CM.", check="icd10cm"),
        Column("allowed_amount", "float64", True, "Medicare allowed amount of the line.", check="amount"),
        Column("paid_amount", "float64", False, "Medicare paid amount of the line.", check="amount"),
        Column("standardized_amount", "float64", False,
               "CMS standardized allowed amount, when the source carries it.", check="amount"),
        Column("primary_payer_code", "string", False, "Primary payer code (blank when Medicare is primary)."),
    ),
    date_order=(
        ("claim_from_date", "claim_thru_date"),
        ("line_from_date", "line_thru_date"),
        ("admission_date", "discharge_date"),
    ),
    negative_allowed_when=("adjustment", "cancel"),
)

CLAIM_DIAGNOSIS = TableContract(
    name="claim_diagnosis",
    grain="one row per claim per diagnosis position",
    description="ICD-10-CM diagnoses on a claim with their position; position 1 is principal / first-listed "
    "(CCLF4-style).",
    key=("claim_id", "dx_position"),
    columns=(
        Column("claim_id", "string", True, "Claim identifier (matches claim_line.claim_id)."),
        Column("bene_id", "string", True, "Beneficiary identifier."),
        Column("dx_position", "int32", True, "Position on the claim, 1 = principal / first-listed."),
        Column("icd10_code", "string", True, "ICD-10-CM code, with or without the dot.", check="icd10cm"),
        Column("present_on_admission", "string", False, "POA indicator (Y, N, U, W, 1).",
               allowed=("Y", "N", "U", "W", "1")),
    ),
)

PHARMACY_CLAIM = TableContract(
    name="pharmacy_claim",
    grain="one row per Part D prescription drug event",
    description="Part D prescription fills (CCLF7 / PDE).",
    key=("claim_id",),
    columns=(
        Column("claim_id", "string", True, "Prescription drug event identifier."),
        Column("bene_id", "string", True, "Beneficiary identifier."),
        Column("fill_date", "date", True, "Date the prescription was filled."),
        Column("ndc_code", "string", True, "11-digit National Drug Code.", check="ndc"),
        Column("days_supply", "int32", False, "Days supply dispensed."),
        Column("quantity_dispensed", "float64", False, "Quantity dispensed."),
        Column("prescriber_npi", "string", False, "NPI of the prescriber.", check="npi"),
        Column("claim_adjustment_type", "string", False, "original, adjustment or cancel.",
               allowed=ADJUSTMENT_TYPES),
        Column("original_claim_id", "string", False, "For an adjustment or cancel: the event it modifies."),
        Column("allowed_amount", "float64", True, "Total allowed cost of the fill.", check="amount"),
        Column("gross_drug_cost_amount", "float64", False,
               "Gross drug cost (ingredient + dispensing fee + tax).", check="amount"),
        Column("paid_amount", "float64", False, "Amount paid by the Part D plan.", check="amount"),
    ),
    negative_allowed_when=("adjustment", "cancel"),
)

CLINICIAN = TableContract(
    name="clinician",
    grain="one row per billing TIN x clinician NPI",
    description="Clinicians and the practices (TINs) they bill under, with specialty and practice location.",
    key=("tin", "npi"),
    columns=(
        Column("tin", "string", True, "Billing taxpayer identification number (9 digits).", check="tin"),
        Column("npi", "string", True, "Clinician NPI.", check="npi"),
        Column("specialty_code", "string", False,
               "Medicare specialty code (overrides the plurality of claim lines).", check="specialty_code"),
        Column("is_physician", "boolean", False, "Clinician is a physician (MD/DO)."),
        Column("practice_zip5", "string", False, "5-digit ZIP of the practice location.", check="zip5"),
        Column("practice_cbsa_code", "string", False,
               "CBSA or metropolitan division of the practice; when empty, participation places practice_zip5 "
               "through the HUD ZIP-CBSA crosswalk (participation.zip_cbsa_method).", check="cbsa"),
        Column("is_rhc_fqhc", "boolean", False, "Practice is a rural health clinic or FQHC."),
    ),
)

CANONICAL_TABLES: dict[str, TableContract] = {
    t.name: t
    for t in (BENEFICIARY, ENROLLMENT, CLAIM_LINE, CLAIM_DIAGNOSIS, PHARMACY_CLAIM, CLINICIAN)
}
