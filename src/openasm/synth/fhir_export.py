"""Synthetic EHR data: a FHIR R4 bulk export (NDJSON, one file per resource type) for the patients the synthetic
world's HF and LBP clinicians see in the performance year (issue 4 item 9).

Patients are the world's beneficiaries (Patient.id = bene_id), linked to the clinician (Practitioner NPI) and practice
(Organization TIN) that billed most of their E/M visits in the year; encounter dates are those visits. Clinical facts
follow `synth.fhir_care` so each eCQM lands near its benchmark median, and every code is drawn from the shipped value
sets (never typed in here). A few resources are made defective on purpose (bad dates, missing subject, truncated
lines, unknown resource types) so ingest's quarantine is exercised. Same world, seed and year → same bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import ibis
import numpy as np

from openasm.quality.measures.common import LOINC, SNOMED, oid
from openasm.quality.value_sets import value_set_codes
from openasm.rules import RulesForYear, load_rules

CPT = "http://www.ama-assn.org/go/cpt"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
TIN_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"
MBI_SYSTEM = "http://hl7.org/fhir/sid/us-mbi"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
POSITIVE_SCREEN, NEGATIVE_SCREEN = "428181000124104", "428171000124102"  # CMS2 direct-reference result codes
RESOURCE_TYPES = ("Patient", "Practitioner", "Organization", "Encounter", "Condition", "Observation",
                  "MedicationRequest", "Medication", "ServiceRequest", "Procedure")


@dataclass
class FhirExportSummary:
    out_dir: Path
    patients: dict[str, int]
    resources_by_type: dict[str, int] = field(default_factory=dict)
    defects_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def resources(self) -> int:
        return sum(self.resources_by_type.values())


class CodePicker:
    """Codes drawn from the shipped value sets, preferring one system."""

    def __init__(self) -> None:
        members: dict[str, list[tuple[str, str]]] = defaultdict(list)
        table = value_set_codes()
        for row_oid, system, code in zip(*(table.column(c).to_pylist() for c in ("oid", "system", "code"))):
            members[row_oid].append((system, code))
        self.members = {k: sorted(v) for k, v in members.items()}

    def codes(self, short_oid: str, system: str, *also: str) -> list[str]:
        """Codes of `system` in every one of the value sets named (an intersection, e.g. an encounter code that
        qualifies for three measures)."""
        found = {c for s, c in self.members.get(oid(short_oid), []) if s == system}
        for other in also:
            found &= {c for s, c in self.members.get(oid(other), []) if s == system}
        if not found:
            raise ValueError(f"no {system} code in value set(s) {short_oid} {' '.join(also)}")
        return sorted(found)


def _visits(world_dir: Path, performance_year: int, rules: RulesForYear) -> dict[str, list[dict]]:
    """Per cohort: one row per patient with the clinician billing most of their E/M visits in the year, and the
    dates of their first two visits with that clinician."""
    specialties = rules.value("participation.specialty_codes")
    con = ibis.duckdb.connect()
    lines = con.read_parquet(str(world_dir / "claim_line" / "*.parquet"))
    benes = con.read_parquet(str(world_dir / "beneficiary" / "*.parquet"))
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


class _Writer:
    """Collects resources per type and writes NDJSON, injecting the configured defects."""

    def __init__(self, out_dir: Path, rng: np.random.Generator, defects: dict[str, float]) -> None:
        self.out_dir, self.rng, self.defects = out_dir, rng, defects
        self.lines: dict[str, list[str]] = defaultdict(list)
        self.defect_counts: dict[str, int] = defaultdict(int)

    def add(self, resource: dict) -> None:
        kind = self._defect()
        resource_type = resource["resourceType"]
        if kind == "bad_date":
            resource = {**resource, "meta": {"lastUpdated": "2027-02-30"}}
            for key in ("authoredOn", "effectiveDateTime", "onsetDateTime", "birthDate"):
                if key in resource:
                    resource[key] = "2027-02-30"
                    break
            else:
                kind = None
        elif kind == "missing_subject" and "subject" in resource:
            resource = {k: v for k, v in resource.items() if k != "subject"}
        elif kind == "unknown_resource_type":
            resource = {**resource, "resourceType": resource_type + "X"}
        elif kind != "truncated_line":
            kind = None
        text = json.dumps(resource, separators=(",", ":"))
        if kind == "truncated_line":
            text = text[: len(text) // 2]
        if kind:
            self.defect_counts[kind] += 1
        self.lines[resource_type].append(text)

    def _defect(self) -> str | None:
        draw = self.rng.random()
        for kind, share in self.defects.items():
            if draw < share:
                return kind
            draw -= share
        return None

    def write(self) -> dict[str, int]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        counts = {}
        for resource_type in sorted(self.lines):
            (self.out_dir / f"{resource_type}.ndjson").write_text("\n".join(self.lines[resource_type]) + "\n",
                                                                   encoding="utf-8")
            counts[resource_type] = len(self.lines[resource_type])
        return counts


def _iso(day: date, hour: int = 9) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00.000+00:00"


def _ref(resource_type: str, resource_id: str) -> dict:
    return {"reference": f"{resource_type}/{resource_id}"}


def _concept(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}


class _Care:
    """Builds one patient's resources; ids are `<patient>-<n>` so they are unique per patient."""

    def __init__(self, picker: CodePicker, rng: np.random.Generator, care: dict, writer: _Writer) -> None:
        self.rng, self.care, self.writer = rng, care, writer
        self.office_cpt = picker.codes("A.101.12.1001", CPT, "C.1916", "C.1.1751")
        self.hf_dx = picker.codes("B.376", ICD10)
        self.ef_loinc = picker.codes("B.1134", LOINC)
        self.beta_blocker = picker.codes("B.1184", RXNORM)
        self.acei_arb = picker.codes("B.1139", RXNORM)
        self.hypertension = picker.codes("A.104.12.1011", ICD10)
        self.muscle_relaxant = picker.codes("A.1062", RXNORM)
        self.depression_follow_up = picker.codes("B.1568", SNOMED)
        self.bmi_follow_up = picker.codes("C.1.1525", SNOMED) if self._has(picker, "C.1.1525", SNOMED) else \
            picker.codes("C.1.1527", SNOMED)
        self.overweight_dx = picker.codes("D.1047.502", ICD10)
        self.counter = 0

    @staticmethod
    def _has(picker: CodePicker, short_oid: str, system: str) -> bool:
        try:
            return bool(picker.codes(short_oid, system))
        except ValueError:
            return False

    def pick(self, codes: list[str]) -> str:
        return codes[int(self.rng.integers(len(codes)))]

    def chance(self, share: float) -> bool:
        return bool(self.rng.random() < share)

    def new_id(self, patient_id: str) -> str:
        self.counter += 1
        return f"{patient_id}-{self.counter}"

    def emit(self, resource: dict) -> None:
        self.writer.add(resource)

    def patient(self, patient_id: str, bene: dict) -> None:
        self.emit({"resourceType": "Patient", "id": patient_id, "gender": {"M": "male", "F": "female"}.get(
            bene["sex"], "unknown"), "birthDate": bene["birth_date"].isoformat(),
            "identifier": [{"system": MBI_SYSTEM, "value": bene["bene_id"]}]})

    def encounter(self, patient_id: str, day: date, npi: str, tin: str) -> str:
        encounter_id = self.new_id(patient_id)
        self.emit({"resourceType": "Encounter", "id": encounter_id, "status": "finished",
                   "class": {"system": ACT_CODE, "code": "AMB"},
                   "type": [_concept(CPT, self.pick(self.office_cpt))], "subject": _ref("Patient", patient_id),
                   "participant": [{"individual": _ref("Practitioner", npi)}],
                   "serviceProvider": _ref("Organization", tin),
                   "period": {"start": _iso(day), "end": _iso(day, 10)}})
        return encounter_id

    def condition(self, patient_id: str, code: str, onset: date) -> None:
        self.emit({"resourceType": "Condition", "id": self.new_id(patient_id), "subject": _ref("Patient", patient_id),
                   "clinicalStatus": _concept(CONDITION_CLINICAL, "active"),
                   "verificationStatus": _concept(CONDITION_VERIFICATION, "confirmed"),
                   "category": [_concept("http://terminology.hl7.org/CodeSystem/condition-category",
                                         "problem-list-item")],
                   "code": _concept(ICD10, code), "onsetDateTime": _iso(onset)})

    def observation(self, patient_id: str, loinc: str, day: date, category: str, **value) -> None:
        self.emit({"resourceType": "Observation", "id": self.new_id(patient_id), "status": "final",
                   "category": [_concept(OBS_CATEGORY, category)], "code": _concept(LOINC, loinc),
                   "subject": _ref("Patient", patient_id), "effectiveDateTime": _iso(day), **value})

    def order(self, patient_id: str, rxnorm: str, day: date, refills: int = 0) -> None:
        request = {"resourceType": "MedicationRequest", "id": self.new_id(patient_id), "status": "active",
                   "intent": "order", "subject": _ref("Patient", patient_id), "authoredOn": _iso(day),
                   "dispenseRequest": {"numberOfRepeatsAllowed": refills,
                                       "expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d",
                                                                  "system": "http://unitsofmeasure.org"}},
                   "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": {
                       "start": _iso(day), "end": _iso(day + timedelta(days=90))}}}}]}
        if self.chance(self.care["medication_by_reference_share"]):
            medication_id = self.new_id(patient_id)
            self.emit({"resourceType": "Medication", "id": medication_id, "code": _concept(RXNORM, rxnorm)})
            request["medicationReference"] = _ref("Medication", medication_id)
        else:
            request["medicationCodeableConcept"] = _concept(RXNORM, rxnorm)
        self.emit(request)

    def procedure(self, patient_id: str, code: str, day: date, reason: tuple[str, str] | None = None) -> None:
        procedure = {"resourceType": "Procedure", "id": self.new_id(patient_id), "status": "completed",
                     "subject": _ref("Patient", patient_id), "code": _concept(SNOMED, code),
                     "performedDateTime": _iso(day, 11)}
        if reason is not None:
            procedure["reasonCode"] = [_concept(*reason)]
        self.emit(procedure)


def _visit_days(bene: dict, rng: np.random.Generator, performance_year: int) -> tuple[date, date]:
    first = bene["first_visit"]
    second = bene["last_visit"] if bene["last_visit"] > first else first + timedelta(days=int(rng.integers(20, 120)))
    return first, min(second, date(performance_year, 12, 31))


def _hf_care(care: _Care, patient_id: str, bene: dict, performance_year: int) -> None:
    rates = care.care["hf"]
    first, second = _visit_days(bene, care.rng, performance_year)
    npi, tin = bene["rendering_npi"], bene["billing_tin"]
    care.condition(patient_id, care.pick(care.hf_dx), date(performance_year - 2, 3, 1)
                   + timedelta(days=int(care.rng.integers(0, 400))))
    care.encounter(patient_id, first, npi, tin)
    _screening_care(care, patient_id, first)
    if care.chance(rates["second_visit_share"]):
        care.encounter(patient_id, second, npi, tin)
    lvsd = care.chance(rates["lvsd_share"])
    ejection_fraction = float(care.rng.integers(20, 41) if lvsd else care.rng.integers(45, 66))
    care.observation(patient_id, care.pick(care.ef_loinc), first - timedelta(days=30), "procedure",
                     valueQuantity={"value": ejection_fraction, "unit": "%", "code": "%",
                                    "system": "http://unitsofmeasure.org"})
    if lvsd and care.chance(rates["beta_blocker_share"]):
        care.order(patient_id, care.pick(care.beta_blocker), first, refills=3)
    if lvsd and care.chance(rates["acei_arb_share"]):
        care.order(patient_id, care.pick(care.acei_arb), first, refills=3)
    if care.chance(rates["hypertension_share"]):
        care.condition(patient_id, care.pick(care.hypertension), date(performance_year - 3, 6, 1))
        if care.chance(rates["bp_recorded_share"]):
            controlled = care.chance(rates["bp_controlled_share"])
            systolic = float(care.rng.integers(112, 139) if controlled else care.rng.integers(141, 170))
            diastolic = float(care.rng.integers(65, 89) if controlled else care.rng.integers(80, 100))
            care.observation(patient_id, "85354-9", second, "vital-signs", component=[
                {"code": _concept(LOINC, "8480-6"), "valueQuantity": {"value": systolic, "unit": "mm[Hg]"}},
                {"code": _concept(LOINC, "8462-4"), "valueQuantity": {"value": diastolic, "unit": "mm[Hg]"}}])
    if care.chance(rates["fsa_share"]) and first <= date(performance_year, 6, 30):
        for day in (first, first + timedelta(days=90)):
            care.observation(patient_id, "71940-1", day, "survey",
                             valueQuantity={"value": float(care.rng.integers(30, 90)), "unit": "{score}"})


def _screening_care(care: _Care, patient_id: str, first: date) -> None:
    """Depression screening and BMI, which every specialist's office visit qualifies for (CMS2, CMS69)."""
    rates = care.care["lbp"]
    if care.chance(rates["depression_screen_share"]):
        positive = care.chance(rates["positive_screen_share"])
        care.observation(patient_id, "73832-8", first, "survey",
                         valueCodeableConcept=_concept(SNOMED, POSITIVE_SCREEN if positive else NEGATIVE_SCREEN))
        if positive and care.chance(rates["follow_up_share"]):
            care.procedure(patient_id, care.pick(care.depression_follow_up), first)
    if care.chance(rates["bmi_recorded_share"]):
        normal = care.chance(rates["normal_bmi_share"])
        bmi = float(care.rng.uniform(19.0, 24.8) if normal else care.rng.uniform(25.5, 38.0))
        care.observation(patient_id, "39156-5", first, "vital-signs",
                         valueQuantity={"value": round(bmi, 1), "unit": "kg/m2", "code": "kg/m2",
                                        "system": "http://unitsofmeasure.org"})
        if not normal and care.chance(rates["bmi_follow_up_share"]):
            care.procedure(patient_id, care.pick(care.bmi_follow_up), first,
                           reason=(ICD10, care.pick(care.overweight_dx)))


def _lbp_care(care: _Care, patient_id: str, bene: dict, performance_year: int) -> None:
    rates = care.care["lbp"]
    first, second = _visit_days(bene, care.rng, performance_year)
    care.encounter(patient_id, first, bene["rendering_npi"], bene["billing_tin"])
    _screening_care(care, patient_id, first)
    age = performance_year - bene["birth_date"].year
    if age >= 66 and care.chance(rates["high_risk_med_share"]):
        drug = care.pick(care.muscle_relaxant)
        care.order(patient_id, drug, first)
        care.order(patient_id, drug, second if second > first else first + timedelta(days=30))


def generate_fhir_export(world_dir: Path, out_dir: Path, performance_year: int, *, seed: int = 1, copies: int = 1,
                         rules: RulesForYear | None = None,
                         progress: Callable[[int, int], None] | None = None) -> FhirExportSummary:
    """Write `<out_dir>/<ResourceType>.ndjson` for the world's HF and LBP patients in `performance_year`.
    `copies` > 1 repeats every patient under new ids (for benchmarks at scale)."""
    rules = rules or load_rules(performance_year)
    care_rules = rules.value("synth.fhir_care")
    panels = _visits(Path(world_dir), performance_year, rules)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(performance_year, 77)))
    writer = _Writer(Path(out_dir), rng, dict(care_rules["defects"]))
    care = _Care(CodePicker(), rng, care_rules, writer)
    clinicians = sorted({(b["rendering_npi"], b["billing_tin"]) for rows in panels.values() for b in rows})
    for npi in sorted({npi for npi, _ in clinicians}):
        writer.add({"resourceType": "Practitioner", "id": npi, "identifier": [{"system": NPI_SYSTEM, "value": npi}]})
    for tin in sorted({tin for _, tin in clinicians}):
        writer.add({"resourceType": "Organization", "id": tin, "name": f"Practice {tin}",
                    "identifier": [{"system": TIN_SYSTEM, "value": tin}]})
    total = copies * sum(len(rows) for rows in panels.values())
    done = 0
    builders = {"hf": _hf_care, "lbp": _lbp_care}
    for copy in range(copies):
        for cohort, rows in panels.items():
            for bene in rows:
                patient_id = bene["bene_id"] if copy == 0 else f"{bene['bene_id']}-c{copy}"
                patient_id = f"{patient_id}-{cohort}"
                care.counter = 0
                care.patient(patient_id, bene)
                builders[cohort](care, patient_id, bene, performance_year)
                done += 1
                if progress is not None and done % 5000 == 0:
                    progress(done, total)
    counts = writer.write()
    return FhirExportSummary(Path(out_dir), {c: len(r) * copies for c, r in panels.items()}, counts,
                             dict(writer.defect_counts))
