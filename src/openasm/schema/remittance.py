"""The remittance line: one service line of a Medicare remittance advice (X12 835), as `ingest-835` stores it
(`connectors.x12_835` reads the files; the canonical row checks accept or quarantine each line)."""

from __future__ import annotations

from openasm.schema.contract import Column, TableContract

REMITTANCE_LINE = TableContract(
    name="remittance_line",
    grain="one row per service line of an 835 claim payment",
    description="Medicare remittance advice (X12 835) service lines.",
    key=("payer_claim_id", "claim_status_code", "line_number"),
    columns=(
        Column("payer_claim_id", "string", True, "Payer claim control number (CLP07)."),
        Column("claim_status_code", "string", True, "CLP02: 1-4 processed, 22 reversal of a previous payment."),
        Column("line_number", "int32", True, "Service line number within the claim payment."),
        Column("bene_id", "string", False, "Patient member id (NM1*QC), the MBI on Medicare remittances."),
        Column("rendering_npi", "string", True, "Rendering NPI (NM1*82, else the payee NPI).", check="npi"),
        Column("billing_tin", "string", False, "Payee TIN (REF*TJ).", check="tin"),
        Column("service_date", "date", True, "DTM*472, else the claim's DTM*232."),
        Column("remittance_date", "date", False, "BPR16 (payment effective date)."),
        Column("hcpcs_code", "string", True, "SVC01-2 procedure code.", check="hcpcs"),
        Column("hcpcs_modifier_1", "string", False, "SVC01-3.", check="hcpcs_modifier"),
        Column("hcpcs_modifier_2", "string", False, "SVC01-4.", check="hcpcs_modifier"),
        Column("service_units", "float64", False, "SVC05 units paid."),
        Column("charge_amount", "float64", False, "SVC02 line charge."),
        Column("allowed_amount", "float64", False, "AMT*B6 allowed actual."),
        Column("paid_amount", "float64", True, "SVC03 provider payment (negative on reversals)."),
    ),
)
