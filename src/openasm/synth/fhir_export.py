"""Synthetic EHR data: a FHIR R4 bulk export (NDJSON, one file per resource type) for the patients the synthetic
world's HF and LBP clinicians see in the performance year (issue 4 item 9, issue 10 item 3).

Patients are the world's beneficiaries (Patient.id = bene_id), linked to the clinician (Practitioner NPI) and practice
(Organization TIN) that billed most of their E/M visits in the year; encounter dates are those visits, written at the
patient's usual UTC offset (mostly US zones). Base care follows `synth.fhir_care` so each eCQM lands near its benchmark
median; on top of it every patient may get clinical scenarios (`fhir_scenarios`: hospice, palliative care, frailty,
pregnancy, renal disease, exclusions, exceptions, negations with reasons) and timing/status edges (`fhir_edges`), so
every population of every measure is reached. Every code is drawn from the shipped value sets. A few resources are
made defective on purpose (bad dates, missing subject, truncated lines, unknown resource types) so ingest's quarantine
is exercised. Same world, seed and year → same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import ibis
import numpy as np

from openasm.quality.measures import cms2, cms69_followup, cms135, cms144, cms165
from openasm.quality.measures.common import LOINC, RXNORM, SNOMED
from openasm.rules import RulesForYear, load_rules
from openasm.synth.fhir_edges import EDGES
from openasm.synth.fhir_resources import CodePicker, NdjsonWriter, Resources, stamp
from openasm.synth.fhir_scenarios import SCENARIOS, Kit, PatientContext, build_scenarios, draw_scenarios

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RESOURCE_TYPES = ("Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation",
                  "MedicationRequest", "Medication", "ServiceRequest", "Procedure", "DeviceRequest",
                  "AllergyIntolerance")


@dataclass
class FhirExportSummary:
    out_dir: Path
    patients: dict[str, int]
    resources_by_type: dict[str, int] = field(default_factory=dict)
    defects_by_kind: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, int] = field(default_factory=dict)

    @property
    def resources(self) -> int:
        return sum(self.resources_by_type.values())


def _visits(world_dir: Path, performance_year: int, rules: RulesForYear) -> dict[str, list[dict]]:
    """Per cohort: one row per patient with the clinician billing most of their E/M visits in the year, and the
    dates of their first and last visits with that clinician. A beneficiary listed twice in the world (planted
    messiness) is one patient."""
    specialties = rules.value("participation.specialty_codes")
    con = ibis.duckdb.connect()
    lines = con.read_parquet(str(world_dir / "claim_line" / "*.parquet"))
    benes = con.read_parquet(str(world_dir / "beneficiary" / "*.parquet"))
    benes = benes.mutate(_n=ibis.row_number().over(ibis.window(group_by="bene_id", order_by=["birth_date", "sex"])))
    benes = benes.filter(benes._n == 0).drop("_n")
    lines = lines.filter((lines.claim_type == "carrier") & lines.hcpcs_code.re_search(r"^992[01]\d$")
                         & (lines.line_from_date.year() == performance_year)
                         & (lines.claim_adjustment_type == "original"))
    out: dict[str, list[dict]] = {}
    for cohort, codes in specialties.items():
        mine = lines.filter(lines.provider_specialty_code.isin(list(codes)))
        per_pair = mine.group_by(["bene_id", "rendering_npi", "billing_tin"]).agg(
            visits=mine.count(), first_visit=mine.line_from_date.min(), last_visit=mine.line_from_date.max())
        ranked = per_pair.mutate(rank=ibis.row_number().over(
            ibis.window(group_by="bene_id", order_by=[ibis.desc("visits"), "rendering_npi"])))
        best = ranked.filter(ranked["rank"] == 0)
        joined = best.join(benes, best.bene_id == benes.bene_id).select(
            best.bene_id, best.rendering_npi, best.billing_tin, best.visits, best.first_visit, best.last_visit,
            benes.birth_date, benes.sex).order_by("bene_id")
        out[cohort] = joined.to_pyarrow().to_pylist()
    return out


class _Care:
    """Base care of one patient (visits, diagnoses, screenings, orders) at the rates of `synth.fhir_care`."""

    def __init__(self, kit: Kit, care: dict) -> None:
        self.kit, self.care, self.res = kit, care, kit.res
        pick = kit.pick
        self.office_cpt = pick.codes("A.101.12.1001", CPT, "C.1916", "C.1.1751")
        self.hf_dx = pick.codes("B.376", ICD10)
        self.ef_loinc = pick.codes("B.1134", LOINC)
        self.hypertension = pick.codes(cms165.VS_ESSENTIAL_HYPERTENSION, ICD10)
        self.muscle_relaxant = pick.codes("A.1062", RXNORM)
        self.depression_follow_up = pick.codes(cms2.SCREENING_TOOLS["adult"].follow_up, SNOMED)
        self.bmi_follow_up = pick.codes(cms69_followup.VS_FOLLOW_UP_ABOVE_NORMAL, SNOMED)
        self.overweight_dx = pick.codes(cms69_followup.VS_OVERWEIGHT_OR_OBESE, ICD10)

    def pick(self, codes: list[str]) -> str:
        return codes[int(self.kit.rng.integers(len(codes)))]

    def at(self, ctx: PatientContext, day: date, hour: int = 9, minute: int = 0) -> str:
        return stamp(day, hour, minute, ctx.offset)

    def visit(self, ctx: PatientContext, day: date) -> str:
        encounter_id = self.res.encounter(ctx.patient_id, ctx.visit_code, self.at(ctx, day), self.at(ctx, day, 10),
                                          npi=ctx.npi, tin=ctx.tin)
        ctx.visits.append((encounter_id, day))
        return encounter_id

    def order(self, ctx: PatientContext, oid_or_codes: str | list[str], day: date, refills: int = 0) -> None:
        code = (RXNORM, self.pick(oid_or_codes)) if isinstance(oid_or_codes, list) else self.kit.code(oid_or_codes)
        self.res.medication_request(ctx.patient_id, code, self.at(ctx, day), by_reference=self.kit.by_reference(),
                                    refills=refills, bounds=(self.at(ctx, day), self.at(ctx, day + timedelta(days=90))))

    def heart_failure(self, ctx: PatientContext, first: date, second: date) -> None:
        rates, chance, pid = self.care["hf"], self.kit.chance, ctx.patient_id
        self.res.condition(pid, (ICD10, self.pick(self.hf_dx)),
                           self.at(ctx, date(ctx.year - 2, 3, 1) + timedelta(days=int(self.kit.rng.integers(0, 400)))))
        self.visit(ctx, first)
        self.screening(ctx, first)
        if chance(rates["second_visit_share"]):
            self.visit(ctx, second)
        lvsd = chance(rates["lvsd_share"])
        ejection_fraction = float(self.kit.rng.integers(20, 41) if lvsd else self.kit.rng.integers(45, 66))
        self.res.observation(pid, (LOINC, self.pick(self.ef_loinc)), self.at(ctx, first - timedelta(days=30)),
                             category="procedure", quantity=(ejection_fraction, "%"))
        # A patient with a reason not to take the drug (an exception scenario) is usually not on it.
        on_therapy = "hf_exception" not in ctx.scenarios or chance(0.2)
        if lvsd and chance(rates["beta_blocker_share"]) and on_therapy:
            self.order(ctx, cms144.VS_BETA_BLOCKER, first, refills=3)
        if lvsd and chance(rates["acei_arb_share"]) and on_therapy:
            self.order(ctx, cms135.VS_ACEI_ARB_ARNI, first, refills=3)
        if chance(rates["hypertension_share"]):
            self.res.condition(pid, (ICD10, self.pick(self.hypertension)), self.at(ctx, date(ctx.year - 3, 6, 1)))
            if chance(rates["bp_recorded_share"]):
                controlled = chance(rates["bp_controlled_share"])
                systolic = float(self.kit.rng.integers(112, 139) if controlled else self.kit.rng.integers(141, 170))
                diastolic = float(self.kit.rng.integers(65, 89) if controlled else self.kit.rng.integers(80, 100))
                self.res.observation(pid, (LOINC, cms165.BP_PANEL_LOINC), self.at(ctx, second),
                                     category="vital-signs", components=[
                                         ((LOINC, cms165.SYSTOLIC_LOINC), systolic, "mm[Hg]"),
                                         ((LOINC, cms165.DIASTOLIC_LOINC), diastolic, "mm[Hg]")])
        if chance(rates["fsa_share"]) and first <= date(ctx.year, 6, 30):
            for day in (first, first + timedelta(days=90)):
                self.res.observation(pid, (LOINC, "71940-1"), self.at(ctx, day), category="survey",
                                     quantity=(float(self.kit.rng.integers(30, 90)), "{score}"))

    def screening(self, ctx: PatientContext, first: date) -> None:
        """Depression screening and BMI, which every specialist's office visit qualifies for (CMS2, CMS69)."""
        rates, chance, pid = self.care["lbp"], self.kit.chance, ctx.patient_id
        if chance(rates["depression_screen_share"]):
            positive = chance(rates["positive_screen_share"])
            self.res.observation(pid, (LOINC, cms2.SCREENING_TOOLS["adult"].loinc), self.at(ctx, first),
                                 category="survey",
                                 value=(SNOMED, cms2.POSITIVE_SCREEN if positive else cms2.NEGATIVE_SCREEN))
            if positive and chance(rates["follow_up_share"]):
                self.res.procedure(pid, (SNOMED, self.pick(self.depression_follow_up)), self.at(ctx, first, 9, 30))
        if chance(rates["bmi_recorded_share"]):
            normal = chance(rates["normal_bmi_share"])
            bmi = float(self.kit.rng.uniform(19.0, 24.8) if normal else self.kit.rng.uniform(25.5, 38.0))
            self.res.observation(pid, (LOINC, cms69_followup.BMI_LOINC), self.at(ctx, first, 9, 5),
                                 category="vital-signs", quantity=(round(bmi, 1), "kg/m2"))
            if not normal and chance(rates["bmi_follow_up_share"]):
                self.res.procedure(pid, (SNOMED, self.pick(self.bmi_follow_up)), self.at(ctx, first, 11),
                                   reason=(ICD10, self.pick(self.overweight_dx)))

    def low_back_pain(self, ctx: PatientContext, first: date, second: date) -> None:
        self.visit(ctx, first)
        self.screening(ctx, first)
        if ctx.age_at_end() >= 66 and self.kit.chance(self.care["lbp"]["high_risk_med_share"]):
            drug = self.pick(self.muscle_relaxant)
            self.order(ctx, [drug], first)
            self.order(ctx, [drug], second if second > first else first + timedelta(days=30))


def _visit_days(bene: dict, rng: np.random.Generator, performance_year: int) -> tuple[date, date]:
    first = bene["first_visit"]
    second = bene["last_visit"] if bene["last_visit"] > first else first + timedelta(days=int(rng.integers(20, 120)))
    return first, min(second, date(performance_year, 12, 31))


def _offset(rng: np.random.Generator, shares: dict) -> int:
    """A patient's usual UTC offset in minutes, drawn from `utc_offsets` (offset → share)."""
    offsets = sorted(shares)
    weights = np.array([float(shares[o]) for o in offsets])
    return int(offsets[int(rng.choice(len(offsets), p=weights / weights.sum()))])


def generate_fhir_export(world_dir: Path, out_dir: Path, performance_year: int, *, seed: int = 1, copies: int = 1,
                         rules: RulesForYear | None = None,
                         progress: Callable[[int, int], None] | None = None) -> FhirExportSummary:
    """Write `<out_dir>/<ResourceType>.ndjson` for the world's HF and LBP patients in `performance_year`.
    `copies` > 1 repeats every patient under new ids (for benchmarks at scale)."""
    rules = rules or load_rules(performance_year)
    care_rules = rules.value("synth.fhir_care")
    panels = _visits(Path(world_dir), performance_year, rules)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(performance_year, 77)))
    writer = NdjsonWriter(Path(out_dir), rng, dict(care_rules["defects"]))
    kit = Kit(Resources(writer, rng), CodePicker(), rng, float(care_rules["medication_by_reference_share"]))
    care = _Care(kit, care_rules)
    clinicians = sorted({(b["rendering_npi"], b["billing_tin"]) for rows in panels.values() for b in rows})
    for npi in sorted({npi for npi, _ in clinicians}):
        kit.res.directory(npi=npi)
    for tin in sorted({tin for _, tin in clinicians}):
        kit.res.directory(tin=tin)
    shares = {**care_rules.get("scenarios", {}), **care_rules.get("edges", {})}
    catalogue = {**SCENARIOS, **EDGES}
    total = copies * sum(len(rows) for rows in panels.values())
    built: dict[str, int] = {}
    done = 0
    for copy in range(copies):
        for cohort, rows in panels.items():
            for bene in rows:
                patient_id = bene["bene_id"] if copy == 0 else f"{bene['bene_id']}-c{copy}"
                patient_id = f"{patient_id}-{cohort}"
                kit.res.counter = 0
                female = bene["sex"] == "F"
                kit.res.patient(patient_id, gender={"M": "male", "F": "female"}.get(bene["sex"], "unknown"),
                                birth_date=bene["birth_date"], mbi=bene["bene_id"])
                ctx = PatientContext(patient_id, cohort, bene["birth_date"], female,
                                     _offset(rng, care_rules["utc_offsets"]), performance_year,
                                     bene["rendering_npi"], bene["billing_tin"],
                                     visit_code=(CPT, care.pick(care.office_cpt)))
                first, second = _visit_days(bene, rng, performance_year)
                for name in draw_scenarios(ctx, kit, shares, catalogue):
                    built[name] = built.get(name, 0) + 1
                (care.heart_failure if cohort == "hf" else care.low_back_pain)(ctx, first, second)
                build_scenarios(ctx, kit, catalogue)
                done += 1
                if progress is not None and done % 5000 == 0:
                    progress(done, total)
    counts = writer.write()
    return FhirExportSummary(Path(out_dir), {c: len(r) * copies for c, r in panels.items()}, counts,
                             dict(writer.defect_counts), built)
