"""The ASM cohort a clinician's specialty places them in (§512.710(b), §512.705 "ASM cohort").

asm-model.md §2.2 item 2: heart failure = general cardiology only, low back pain = anesthesiology,
interventional pain management, pain management, neurosurgery, orthopedic surgery, PM&R
(`participation.specialty_codes`). Cardiology subspecialties (interventional, electrophysiology, advanced
HF/transplant, adult congenital) are excluded from the HF cohort; the reference list
`reference__medicare_specialty_codes` marks them `excluded_cardiology`. An NPI belongs to exactly one cohort
per performance year (§512.750(b)); a code in two cohorts' lists is a rules error.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.rules import RulesForYear

SPECIALTY_REFERENCE = "reference__medicare_specialty_codes"
EXCLUDED_COHORT_MARK = "excluded_cardiology"
COHORTS = ("hf", "lbp")
SPECIALTY_STATUSES = ("asm", "excluded_subspecialty", "not_asm_specialty", "no_specialty")


def cohort_specialty_table(rules: RulesForYear) -> pa.Table:
    """The specialty → cohort table of the performance year: the cohorts' codes from
    `participation.specialty_codes` (status `asm`) plus the excluded cardiology subspecialties from the
    reference code list (status `excluded_subspecialty`, no cohort).

    Columns: specialty_code, cohort (null when excluded), specialty_status.
    """
    owner: dict[str, str] = {}
    for cohort in COHORTS:
        for code in rules.cohort_value("participation.specialty_codes", cohort):
            code = str(code)
            if code in owner and owner[code] != cohort:
                raise ValueError(
                    f"participation.specialty_codes: specialty {code} is listed for both {owner[code]} and "
                    f"{cohort}; an NPI belongs to exactly one cohort (§512.750(b))"
                )
            owner[code] = cohort
    reference = rules.code_list(SPECIALTY_REFERENCE).to_pylist()
    excluded = sorted(r["code"] for r in reference if r["asm_cohort"] == EXCLUDED_COHORT_MARK and r["code"] not in owner)
    codes = sorted(owner) + excluded
    return pa.table({
        "specialty_code": pa.array(codes, pa.string()),
        "cohort": pa.array([owner.get(c) for c in codes], pa.string()),
        "specialty_status": pa.array(["asm" if c in owner else "excluded_subspecialty" for c in codes], pa.string()),
    })


def assign_cohort(*, clinician_specialty: ir.Table, cohort_specialty: ir.Table) -> ir.Table:
    """§512.710(b), §512.705: the cohort of each NPI's specialty (`cohort_specialty` from
    `cohort_specialty_table`). Status: asm (in a cohort), excluded_subspecialty, not_asm_specialty,
    no_specialty (null code).

    Grain: NPI. Input columns: npi, specialty_code. Output adds cohort ('hf' | 'lbp' | null) and
    specialty_status.
    """
    ref = cohort_specialty.select(
        _r_code=cohort_specialty.specialty_code, _r_cohort=cohort_specialty.cohort,
        _r_status=cohort_specialty.specialty_status,
    )
    joined = clinician_specialty.left_join(ref, clinician_specialty.specialty_code == ref._r_code)
    status = ibis.cases(
        (joined.specialty_code.isnull(), "no_specialty"),
        (joined._r_status.notnull(), joined._r_status),
        else_="not_asm_specialty",
    )
    return joined.mutate(cohort=joined._r_cohort, specialty_status=status).drop("_r_code", "_r_cohort", "_r_status")
