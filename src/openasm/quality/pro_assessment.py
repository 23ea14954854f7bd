"""The `pro_assessment` derived table: patient-reported outcome scores found among the Observations
(quality.md §7; instruments of §4.6 Q377 and §4.2 Q134, plus ODI for Q220 per §4.7).

An Observation (or an Observation component) whose LOINC code is in the shipped list
`quality__pro_instruments` (KCCQ, KCCQ-12, MLHFQ, PROMIS-10/29, VR-12/36, PHQ-9/PHQ-2, ODI) becomes one row
with its instrument, the score it carries (total or domain), its value and when it was assessed. Only
final/amended/corrected, not negated Observations count (the eCQM status rule, §4 common rules).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from openasm.quality.measures.common import LOINC
from openasm.rules import RulesForYear

PRO_ASSESSMENT_COLUMNS = (
    "pro_id", "patient_id", "episode_id", "instrument", "instrument_version", "domain", "loinc", "score_type",
    "value", "value_unit", "assessed_dt", "mode", "encounter_id", "observation_id",
)
FINAL_STATUSES = ("final", "amended", "corrected")


def derive_pro_assessment(*, observation: ir.Table, observation_component: ir.Table, clinical_coding: ir.Table,
                          rules: RulesForYear) -> ir.Table:
    """quality.md §7 `pro_assessment`: one row per PRO score (Observation code, or component code, in
    `quality__pro_instruments`). `pro_id` = the Observation id (`<id>#<component index>` for a component);
    `assessed_dt` = effective start, else effective end, else issued; `episode_id` and `mode` are not in FHIR
    Observations and stay null. Grain: (patient_id, pro_id, loinc)."""
    instruments = ibis.memtable(rules.code_list("quality__pro_instruments")).select(
        _i_loinc="loinc", instrument="instrument", instrument_version="instrument_version", domain="domain",
        score_type="score_type")
    o = observation
    usable = o.filter(o.status.isin(FINAL_STATUSES) & ~o.is_not_done.fill_null(False)).select(
        _o_patient=o.patient_id, _o_id=o.resource_id, _o_value=o.value_quantity, _o_unit=o.value_unit,
        _o_when=ibis.coalesce(o.effective_start, o.effective_end, o.issued), _o_encounter=o.encounter_ref)

    cc = clinical_coding
    codes = cc.filter((cc.resource_type == "Observation") & (cc.element == "code") & (cc.system == LOINC))
    codes = codes.select(_c_patient=codes.patient_id, _c_id=codes.resource_id, _c_loinc=codes.code).distinct()
    whole = usable.join(codes, [usable._o_patient == codes._c_patient, usable._o_id == codes._c_id])
    whole = whole.join(instruments, whole._c_loinc == instruments._i_loinc)
    from_code = whole.select(
        pro_id=whole._o_id, patient_id=whole._o_patient, loinc=whole._c_loinc, value=whole._o_value,
        value_unit=whole._o_unit, assessed_dt=whole._o_when, encounter_id=whole._o_encounter,
        observation_id=whole._o_id, instrument=whole.instrument, instrument_version=whole.instrument_version,
        domain=whole.domain, score_type=whole.score_type)

    comp = observation_component
    comp = comp.filter(comp.system == LOINC).select(
        _k_patient=comp.patient_id, _k_id=comp.resource_id, _k_index=comp.component_index.cast("string"),
        _k_loinc=comp.code, _k_value=comp.value_quantity, _k_unit=comp.value_unit)
    parts = usable.join(comp, [usable._o_patient == comp._k_patient, usable._o_id == comp._k_id])
    parts = parts.join(instruments, parts._k_loinc == instruments._i_loinc)
    from_component = parts.select(
        pro_id=parts._o_id.concat("#", parts._k_index), patient_id=parts._o_patient, loinc=parts._k_loinc,
        value=parts._k_value, value_unit=parts._k_unit, assessed_dt=parts._o_when,
        encounter_id=parts._o_encounter, observation_id=parts._o_id, instrument=parts.instrument,
        instrument_version=parts.instrument_version, domain=parts.domain, score_type=parts.score_type)

    rows = from_code.union(from_component)
    return rows.select(
        pro_id=rows.pro_id.cast("string"), patient_id=rows.patient_id, episode_id=ibis.null("string"),
        instrument=rows.instrument, instrument_version=rows.instrument_version, domain=rows.domain,
        loinc=rows.loinc, score_type=rows.score_type, value=rows.value.cast("float64"),
        value_unit=rows.value_unit.cast("string"), assessed_dt=rows.assessed_dt, mode=ibis.null("string"),
        encounter_id=rows.encounter_id.cast("string"), observation_id=rows.observation_id)
