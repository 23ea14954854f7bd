"""QRDA Category III: export of eCQM aggregates for submission review, and import of already-computed aggregates
(quality.md §5.1, §5.3).

One CDA document per entity and performance year. Per measure (Measure Reference and Results organizer, the
measure named by its eCQM version id from `codes/quality__measure_spec.csv`), one Measure Data observation per
population — IPP (when given), DENOM, NUMER, DENEX, DENEXCEP — each with its Aggregate Count. Mapping (§5.1):
EP = DENOM, PM = NUMER, DENEX, DENEXCEP; PNM is derived as DENOM − DENEX − DENEXCEP − NUMER, so a QRDA III file
assumes complete reporting (eCQMs: data completeness 1).

Conventions that are openasm's own, to verify against the PY's CMS QRDA III IG before a real submission [verify]:
the measure reference carries the eCQM id (`CMS156v15`), not the version-specific UUID (absent from the shipped
measures data); a multi-rate measure's populations name their stratum in `reference/externalObservation/code/
originalText` (CMS expects the population-criteria UUIDs of the eCQM); supplemental data (sex, race, ethnicity,
payer) are not written.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from openasm.quality.aggregate import (
    EHR,
    ENTITY_TIN,
    ENTITY_TIN_NPI,
    SINGLE_STRATUM,
    check_counts,
    counts_table,
    ecqm_version_ids,
)
from openasm.quality.feed_files import QualityFileError
from openasm.quality.qpp_json import require_program_name
from openasm.rules import RulesError, RulesForYear

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ACT_CODE = "2.16.840.1.113883.5.4"
NPI_ROOT, TIN_ROOT, MEASURE_ROOT, PROGRAM_ROOT = (
    "2.16.840.1.113883.4.6", "2.16.840.1.113883.4.2", "2.16.840.1.113883.4.738", "2.16.840.1.113883.3.249.7")
MEASURE_ORGANIZER = "2.16.840.1.113883.10.20.27.3.1"
MEASURE_DATA = "2.16.840.1.113883.10.20.27.3.5"
AGGREGATE_COUNT = "2.16.840.1.113883.10.20.27.3.3"
POPULATION_FIELD = {"DENOM": "eligible_population", "NUMER": "performance_met", "DENEX": "exclusions",
                    "DENEXCEP": "exceptions"}
POPULATIONS = ("IPP", *POPULATION_FIELD)

ET.register_namespace("", NS)
ET.register_namespace("xsi", XSI)


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items()})


@dataclass
class QrdaExport:
    """XML text per file name, plus the aggregate rows left out and why."""

    documents: dict[str, str]
    skipped: list[dict[str, Any]] = field(default_factory=list)


def initial_population_counts(*, measure_case_result: ir.Table) -> ir.Table:
    """quality.md §5.1 (IPP, audit only): initial-population counts per (performance_year, measure_id,
    collection_type, tin, npi, stratum) from attributed case results, for the QRDA III IPP entries."""
    c = measure_case_result
    stratum = c.stratum.cast("string").fill_null(SINGLE_STRATUM)
    ones = c.select("performance_year", "measure_id", "collection_type", "tin", "npi", stratum=stratum,
                    _ip=ibis.ifelse(c.is_initial_population.fill_null(False), 1, 0))
    return ones.group_by("performance_year", "measure_id", "collection_type", "tin", "npi", "stratum").agg(
        initial_population=ones._ip.sum().cast("int64"))


def _population_observation(organizer: ET.Element, population: str, value: int, stratum: str | None,
                            ecqm_id: str) -> None:
    obs = _sub(_sub(organizer, "component"), "observation", classCode="OBS", moodCode="EVN")
    _sub(obs, "templateId", root=MEASURE_DATA, extension="2016-09-01")
    _sub(obs, "code", code="ASSERTION", codeSystem=ACT_CODE, displayName="Assertion")
    _sub(obs, "statusCode", code="completed")
    val = _sub(obs, "value", code=population, codeSystem=ACT_CODE)
    val.set(f"{{{XSI}}}type", "CD")
    agg = _sub(_sub(obs, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "observation",
               classCode="OBS", moodCode="EVN")
    _sub(agg, "templateId", root=AGGREGATE_COUNT)
    _sub(agg, "code", code="MSRAGG", codeSystem=ACT_CODE, displayName="rate aggregation")
    count = _sub(agg, "value", value=str(int(value)))
    count.set(f"{{{XSI}}}type", "INT")
    _sub(agg, "methodCode", code="COUNT", codeSystem="2.16.840.1.113883.5.84", displayName="Count")
    if stratum is not None:
        ext = _sub(_sub(obs, "reference", typeCode="REFR"), "externalObservation", classCode="OBS", moodCode="EVN")
        _sub(ext, "id", root=str(uuid.uuid5(uuid.NAMESPACE_URL, f"openasm:{ecqm_id}:{stratum}:{population}")))
        ET.SubElement(_sub(ext, "code", nullFlavor="OTH"), _q("originalText")).text = stratum


def _document(key: tuple, measures: dict[str, list[dict]], ecqm: dict[str, str], program: str,
              ip_counts: dict[tuple, int], created: datetime) -> str:
    year, level, tin, npi = key
    root = ET.Element(_q("ClinicalDocument"))
    _sub(root, "realmCode", code="US")
    _sub(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _sub(root, "templateId", root="2.16.840.1.113883.10.20.27.1.1", extension="2017-06-01")
    _sub(root, "id", root=str(uuid.uuid5(uuid.NAMESPACE_URL, f"openasm:qrda3:{year}:{tin}:{npi}")))
    _sub(root, "code", code="55184-6", codeSystem="2.16.840.1.113883.6.1",
         displayName="Quality Reporting Document Architecture Calculated Summary Report")
    ET.SubElement(root, _q("title")).text = "QRDA Calculated Summary Report"
    _sub(root, "effectiveTime", value=created.strftime("%Y%m%d%H%M%S"))
    _sub(root, "confidentialityCode", code="N", codeSystem="2.16.840.1.113883.5.25")
    _sub(root, "languageCode", code="en")
    custodian = _sub(_sub(_sub(root, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _sub(custodian, "id", root=TIN_ROOT, extension=tin)
    _sub(_sub(_sub(root, "informationRecipient"), "intendedRecipient"), "id", root=PROGRAM_ROOT, extension=program)
    event = _sub(_sub(root, "documentationOf", typeCode="DOC"), "serviceEvent", classCode="PCPR")
    period = _sub(event, "effectiveTime")
    _sub(period, "low", value=f"{year}0101")
    _sub(period, "high", value=f"{year}1231")
    entity = _sub(_sub(event, "performer", typeCode="PRF"), "assignedEntity")
    if level == ENTITY_TIN_NPI:
        _sub(entity, "id", root=NPI_ROOT, extension=npi)
    else:
        _sub(entity, "id", root=NPI_ROOT, nullFlavor="NA")
    _sub(_sub(entity, "representedOrganization"), "id", root=TIN_ROOT, extension=tin)
    section = _sub(_sub(_sub(_sub(root, "component"), "structuredBody"), "component"), "section")
    _sub(section, "templateId", root="2.16.840.1.113883.10.20.27.2.1", extension="2020-12-01")
    _sub(section, "code", code="55186-1", codeSystem="2.16.840.1.113883.6.1", displayName="Measure Section")
    ET.SubElement(section, _q("title")).text = "Measure Section"
    for measure_id, rows in sorted(measures.items()):
        ecqm_id = ecqm[measure_id]
        organizer = _sub(_sub(section, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
        _sub(organizer, "templateId", root=MEASURE_ORGANIZER, extension="2020-12-01")
        _sub(organizer, "statusCode", code="completed")
        doc = _sub(_sub(organizer, "reference", typeCode="REFR"), "externalDocument", classCode="DOC", moodCode="EVN")
        _sub(doc, "id", root=MEASURE_ROOT, extension=ecqm_id)
        ET.SubElement(doc, _q("text")).text = f"QPP measure {measure_id}"
        multi = len(rows) > 1 or rows[0]["stratum"] != SINGLE_STRATUM
        for row in sorted(rows, key=lambda r: r["stratum"]):
            stratum = row["stratum"] if multi else None
            ip = ip_counts.get((year, measure_id, tin, npi, row["stratum"]))
            if ip is not None:
                _population_observation(organizer, "IPP", ip, stratum, ecqm_id)
            for population, column in POPULATION_FIELD.items():
                _population_observation(organizer, population, row[column], stratum, ecqm_id)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def export_qrda3(measure_aggregate: pa.Table, *, rules: RulesForYear, initial_population: pa.Table | None = None,
                 created: datetime | None = None) -> QrdaExport:
    """quality.md §5.3: QRDA III documents for the electronicHealthRecord aggregates (not proxies), one per
    (performance year, entity). Refuses without `quality.asm_program_name` or when `quality.ecqm_submission_formats`
    lacks qrda3. `initial_population` (from `initial_population_counts`) adds IPP entries."""
    program = require_program_name(rules)
    if "qrda3" not in rules.value("quality.ecqm_submission_formats"):
        raise RulesError("quality.ecqm_submission_formats does not list qrda3 for this performance year")
    ecqm = ecqm_version_ids(rules)
    ip_counts = {}
    if initial_population is not None:
        for r in initial_population.to_pylist():
            if r["collection_type"] == EHR:
                if r["npi"] is not None:
                    key = (r["performance_year"], r["measure_id"], r["tin"], r["npi"], r["stratum"])
                    ip_counts[key] = ip_counts.get(key, 0) + r["initial_population"]
                group = (r["performance_year"], r["measure_id"], r["tin"], None, r["stratum"])  # TIN-level documents
                ip_counts[group] = ip_counts.get(group, 0) + r["initial_population"]
    grouped: dict[tuple, dict[str, list[dict]]] = {}
    skipped = []
    for row in measure_aggregate.to_pylist():
        reason = None
        if row["is_proxy"] or row["collection_type"] != EHR:
            reason = "not an eCQM (electronicHealthRecord) result"
        elif row["measure_id"] not in ecqm:
            reason = f"no eCQM version for measure {row['measure_id']} in codes/quality__measure_spec.csv"
        elif row["tin"] is None or (row["entity_level"] == ENTITY_TIN_NPI and row["npi"] is None):
            reason = "no TIN/NPI (cases without an attributable clinician)"
        elif row["eligible_population"] is None:
            reason = "no counts"
        if reason is not None:
            skipped.append({**row, "skip_reason": reason})
            continue
        check_counts(f"QRDA III export: measure {row['measure_id']} (TIN {row['tin']}, NPI {row['npi']}) "
                     f"stratum {row['stratum']}", row)
        key = (row["performance_year"], row["entity_level"], row["tin"], row["npi"])
        grouped.setdefault(key, {}).setdefault(row["measure_id"], []).append(row)
    created = created or datetime.now()
    documents = {}
    for key, measures in sorted(grouped.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        year, _level, tin, npi = key
        documents[f"qrda3_{year}_{tin}_{npi or 'group'}.xml"] = _document(key, measures, ecqm, program, ip_counts,
                                                                          created)
    return QrdaExport(documents, skipped)


def write_qrda3(export: QrdaExport, folder: Path) -> list[Path]:
    """Write each document of the export under `folder` (`qrda3_<py>_<tin>_<npi|group>.xml`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, xml in export.documents.items():
        (folder / name).write_text(xml, encoding="utf-8")
        paths.append(folder / name)
    return paths


# ------------------------------------------------------------------------------------------- import
def _has_template(element: ET.Element, root: str) -> bool:
    return any(t.get("root") == root for t in element.findall(_q("templateId")))


def _measure_id(reference: str | None, ecqm: dict[str, str], where: str) -> str:
    if not reference:
        raise QualityFileError(f"{where}: measure reference (externalDocument id extension) is missing")
    by_version = {v.upper(): k for k, v in ecqm.items()}
    by_base = {re.sub(r"V\d+$", "", v.upper()): k for k, v in ecqm.items()}
    key = reference.strip().upper()
    found = by_version.get(key) or by_base.get(re.sub(r"V\d+$", "", key))
    if found is None:
        raise QualityFileError(f"{where}: measure {reference!r} is not an eCQM of codes/quality__measure_spec.csv "
                               f"({', '.join(sorted(ecqm.values()))})")
    return found


def _entity(root: ET.Element, where: str) -> tuple[int, str, str, str | None]:
    event = root.find(f"{_q('documentationOf')}/{_q('serviceEvent')}")
    low = event.find(f"{_q('effectiveTime')}/{_q('low')}") if event is not None else None
    if low is None or not re.match(r"^\d{4}", low.get("value") or ""):
        raise QualityFileError(f"{where}: field documentationOf/serviceEvent/effectiveTime/low (performance "
                               "period start) is missing")
    year = int(low.get("value")[:4])
    entity = event.find(f"{_q('performer')}/{_q('assignedEntity')}")
    npi_id = entity.find(_q("id")) if entity is not None else None
    tin_id = entity.find(f"{_q('representedOrganization')}/{_q('id')}") if entity is not None else None
    tin = tin_id.get("extension") if tin_id is not None else None
    if not tin or not re.match(r"^[0-9]{9}$", tin):
        raise QualityFileError(f"{where}: field performer representedOrganization id (TIN) must be 9 digits, "
                               f"got {tin!r}")
    npi = npi_id.get("extension") if npi_id is not None else None
    if npi is None:
        return year, ENTITY_TIN, tin, None
    if not re.match(r"^[0-9]{10}$", npi):
        raise QualityFileError(f"{where}: field performer id (NPI) must be 10 digits, got {npi!r}")
    return year, ENTITY_TIN_NPI, tin, npi


def _population_count(obs: ET.Element, where: str) -> tuple[str, str, int]:
    value = obs.find(_q("value"))
    population = value.get("code") if value is not None else None
    if population not in POPULATIONS:
        raise QualityFileError(f"{where}: Measure Data value code must be one of {', '.join(POPULATIONS)}, "
                               f"got {population!r}")
    text_node = obs.find(f"{_q('reference')}/{_q('externalObservation')}/{_q('code')}/{_q('originalText')}")
    stratum = text_node.text.strip() if text_node is not None and text_node.text else SINGLE_STRATUM
    label = f"{where} stratum {stratum}" if stratum != SINGLE_STRATUM else where
    agg = [o for rel in obs.findall(_q("entryRelationship")) for o in rel.findall(_q("observation"))
           if _has_template(o, AGGREGATE_COUNT)]
    if len(agg) != 1 or agg[0].find(_q("value")) is None:
        raise QualityFileError(f"{label}: field {population}: one Aggregate Count is required")
    raw = agg[0].find(_q("value")).get("value")
    if raw is None or not re.match(r"^[0-9]+$", raw.strip()):
        raise QualityFileError(f"{label}: field {population}: aggregate count must be a whole number ≥ 0, "
                               f"got {raw!r}")
    return population, stratum, int(raw)


def read_qrda3(path: Path, *, rules: RulesForYear) -> pa.Table:
    """quality.md §5.1, §5.3: the measure aggregates of a QRDA III file as counts (aggregate.COUNTS_SCHEMA,
    source `qrda3`, collection type electronicHealthRecord). DENOM and NUMER are required per measure and stratum,
    DENEX and DENEXCEP default to 0; PNM = DENOM − DENEX − DENEXCEP − NUMER. Raises QualityFileError naming the
    file, the measure (and stratum) and the field."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise QualityFileError(f"{path}: QRDA III file not found") from None
    except ET.ParseError as err:
        raise QualityFileError(f"{path}: not well-formed XML ({err})") from err
    if root.tag != _q("ClinicalDocument"):
        raise QualityFileError(f"{path}: not a CDA ClinicalDocument (root element {root.tag})")
    year, level, tin, npi = _entity(root, str(path))
    ecqm = ecqm_version_ids(rules)
    rows: list[dict] = []
    seen_measures: set[str] = set()
    organizers = [o for o in root.iter(_q("organizer")) if _has_template(o, MEASURE_ORGANIZER)]
    if not organizers:
        raise QualityFileError(f"{path}: no Measure Reference and Results organizer "
                               f"(templateId {MEASURE_ORGANIZER})")
    for organizer in organizers:
        doc_id = organizer.find(f"{_q('reference')}/{_q('externalDocument')}/{_q('id')}")
        reference = doc_id.get("extension") if doc_id is not None else None
        measure_id = _measure_id(reference, ecqm, f"{path}")
        where = f"{path}: measure {measure_id} ({reference})"
        if measure_id in seen_measures:
            raise QualityFileError(f"{where}: reported twice")
        seen_measures.add(measure_id)
        by_stratum: dict[str, dict[str, int]] = {}
        for component in organizer.findall(_q("component")):
            for obs in component.findall(_q("observation")):
                if not _has_template(obs, MEASURE_DATA):
                    continue
                population, stratum, value = _population_count(obs, where)
                counts = by_stratum.setdefault(stratum, {})
                if population in counts:
                    label = f"{where} stratum {stratum}" if stratum != SINGLE_STRATUM else where
                    raise QualityFileError(f"{label}: field {population}: given twice")
                counts[population] = value
        if not by_stratum:
            raise QualityFileError(f"{where}: no Measure Data observations")
        for stratum, counts in sorted(by_stratum.items()):
            label = f"{where} stratum {stratum}" if stratum != SINGLE_STRATUM else where
            for required in ("DENOM", "NUMER"):
                if required not in counts:
                    raise QualityFileError(f"{label}: field {required} is missing")
            fields = {column: counts.get(population, 0) for population, column in POPULATION_FIELD.items()}
            fields["performance_not_met"] = (fields["eligible_population"] - fields["exclusions"]
                                             - fields["exceptions"] - fields["performance_met"])
            if fields["performance_not_met"] < 0:
                check_counts(label, {**fields, "performance_not_met": 0})
            rows.append({"performance_year": year, "measure_id": measure_id, "collection_type": EHR, "tin": tin,
                         "npi": npi, "entity_level": level, "stratum": stratum, "source": "qrda3", **fields})
    return counts_table(rows)
