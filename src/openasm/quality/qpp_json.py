"""QPP Submissions API JSON: export of the quality measurement sets for submission review, and import of
already-computed aggregates (quality.md §5.1, §5.2).

Shape: `submission{entityType individual|group, taxpayerIdentificationNumber, nationalProviderIdentifier,
performanceYear, measurementSets[]{category: quality, submissionMethod, programName, performanceStart,
performanceEnd, measurements[]{measureId, value}}}`. A single-rate `value` holds isEndToEndReported,
performanceMet, performanceNotMet, eligiblePopulationExclusion, eligiblePopulationException, eligiblePopulation;
a multi-rate measure (Q238) holds `value.strata[]` with the same fields plus `stratum`.

Plain Python over pyarrow tables (file I/O stays out of the Ibis stages). The export refuses to run until
`quality.asm_program_name` is set; proxies and administrative-claims results are never exported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from openasm.quality.aggregate import (
    ADMIN_CLAIMS,
    EHR,
    ENTITY_TIN,
    ENTITY_TIN_NPI,
    SINGLE_STRATUM,
    check_counts,
    counts_table,
)
from openasm.quality.feed_files import QualityFileError
from openasm.rules import RulesError, RulesForYear

# Internal count column ↔ QPP `value` field (quality.md §5.1).
QPP_FIELDS = {
    "eligible_population": "eligiblePopulation",
    "performance_met": "performanceMet",
    "performance_not_met": "performanceNotMet",
    "exclusions": "eligiblePopulationExclusion",
    "exceptions": "eligiblePopulationException",
}
ENTITY_TYPES = {ENTITY_TIN_NPI: "individual", ENTITY_TIN: "group"}
QPP_SUBMISSION_METHODS = ("electronicHealthRecord", "registry", "claims")
MEASURE_ID_PATTERN = r"^[0-9]{3}$"


@dataclass
class QppJsonExport:
    """One submission document per entity and performance year, plus the aggregate rows left out and why."""

    submissions: list[dict[str, Any]]
    skipped: list[dict[str, Any]] = field(default_factory=list)


def require_program_name(rules: RulesForYear) -> str:
    """quality.md §5.2, §8 #16: the ASM programName, or a clear refusal."""
    name = rules.value("quality.asm_program_name")
    if not name:
        raise RulesError(
            "quality.asm_program_name is not set: CMS has not published the QPP programName for ASM (quality.md "
            "§5.2), so openasm will not guess it. Set it for this run, e.g. --set quality.asm_program_name=<name>, "
            "before exporting QPP JSON or QRDA III.")
    return str(name)


def _skip_reason(row: dict, allowed_methods: set[str], formats: list[str]) -> str | None:
    if row["is_proxy"]:
        return "proxy result (internal monitoring only, never exported)"
    if row["collection_type"] == ADMIN_CLAIMS:
        return "administrative-claims measure (CMS-calculated, not submitted)"
    if row["collection_type"] not in allowed_methods:
        return f"collection type {row['collection_type']} is not a QPP quality submission method allowed here"
    if row["collection_type"] == EHR and "qpp_json" not in formats:
        return "quality.ecqm_submission_formats does not list qpp_json for eCQMs"
    if row["tin"] is None:
        return "no TIN (cases without an attributable clinician)"
    if row["entity_level"] == ENTITY_TIN_NPI and row["npi"] is None:
        return "no NPI (cases without an attributable clinician)"
    if row["eligible_population"] is None:
        return "no counts"
    return None


def _value(rows: list[dict]) -> dict[str, Any]:
    def counts(row: dict) -> dict[str, int]:
        return {qpp: int(row[col]) for col, qpp in QPP_FIELDS.items()}

    if len(rows) == 1 and rows[0]["stratum"] == SINGLE_STRATUM:
        return {"isEndToEndReported": rows[0]["collection_type"] == EHR, **counts(rows[0])}
    return {"isEndToEndReported": rows[0]["collection_type"] == EHR,
            "strata": [{**counts(r), "stratum": r["stratum"]} for r in sorted(rows, key=lambda r: r["stratum"])]}


def export_qpp_json(measure_aggregate: pa.Table, *, rules: RulesForYear) -> QppJsonExport:
    """quality.md §5.2: build one QPP submission per (performance year, entity) from `measure_aggregate` rows.
    Measurement sets per collection type, performance period = the calendar performance year."""
    program = require_program_name(rules)
    allowed = set(rules.value("quality.allowed_collection_types")) & set(QPP_SUBMISSION_METHODS)
    formats = list(rules.value("quality.ecqm_submission_formats"))
    grouped: dict[tuple, dict[str, dict[str, list[dict]]]] = {}
    skipped: list[dict] = []
    for row in measure_aggregate.to_pylist():
        reason = _skip_reason(row, allowed, formats)
        if reason is not None:
            skipped.append({**row, "skip_reason": reason})
            continue
        check_counts(f"QPP JSON export: measure {row['measure_id']} ({row['collection_type']}, TIN {row['tin']}, "
                     f"NPI {row['npi']}) stratum {row['stratum']}", row)
        key = (row["performance_year"], row["entity_level"], row["tin"], row["npi"])
        grouped.setdefault(key, {}).setdefault(row["collection_type"], {}).setdefault(row["measure_id"], []).append(row)
    submissions = []
    for (year, level, tin, npi), by_method in sorted(grouped.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        submission: dict[str, Any] = {"entityType": ENTITY_TYPES[level], "taxpayerIdentificationNumber": tin,
                                      "performanceYear": int(year)}
        if level == ENTITY_TIN_NPI:
            submission["nationalProviderIdentifier"] = npi
        submission["measurementSets"] = [
            {"category": "quality", "submissionMethod": method, "programName": program,
             "performanceStart": f"{year}-01-01", "performanceEnd": f"{year}-12-31",
             "measurements": [{"measureId": measure_id, "value": _value(rows)}
                              for measure_id, rows in sorted(by_measure.items())]}
            for method, by_measure in sorted(by_method.items())]
        submissions.append({"submission": submission})
    return QppJsonExport(submissions, skipped)


def write_qpp_json(export: QppJsonExport, folder: Path) -> list[Path]:
    """One file per submission: `qpp_<py>_<tin>_<npi|group>.json`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for document in export.submissions:
        s = document["submission"]
        path = folder / f"qpp_{s['performanceYear']}_{s['taxpayerIdentificationNumber']}_" \
                        f"{s.get('nationalProviderIdentifier') or 'group'}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# ------------------------------------------------------------------------------------------- import
def _submissions(document: Any, where: str) -> list[dict]:
    """A submission object, {"submission": ...}, {"data": {"submission": ...}} or a list of those."""
    if isinstance(document, list):
        return [s for item in document for s in _submissions(item, where)]
    if isinstance(document, dict):
        if "measurementSets" in document:
            return [document]
        if isinstance(document.get("submission"), dict):
            return [document["submission"]]
        if isinstance(document.get("data"), dict):
            return _submissions(document["data"], where)
    raise QualityFileError(f"{where}: not a QPP submission (no 'submission' object with 'measurementSets')")


def _count(value: dict, qpp_field: str, where: str) -> int:
    if qpp_field not in value:
        raise QualityFileError(f"{where}: field {qpp_field} is missing")
    number = value[qpp_field]
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise QualityFileError(f"{where}: field {qpp_field} must be a whole number ≥ 0, got {number!r}")
    return number


def _entity(submission: dict, where: str) -> tuple[str, str, str | None]:
    entity_type = submission.get("entityType")
    tin = submission.get("taxpayerIdentificationNumber")
    if not isinstance(tin, str) or not re.match(r"^[0-9]{9}$", tin):
        raise QualityFileError(f"{where}: field taxpayerIdentificationNumber must be 9 digits, got {tin!r}")
    if entity_type == "individual":
        npi = submission.get("nationalProviderIdentifier")
        if not isinstance(npi, str) or not re.match(r"^[0-9]{10}$", npi):
            raise QualityFileError(f"{where}: field nationalProviderIdentifier must be 10 digits, got {npi!r}")
        return ENTITY_TIN_NPI, tin, npi
    if entity_type == "group":
        return ENTITY_TIN, tin, None
    raise QualityFileError(f"{where}: field entityType must be individual or group, got {entity_type!r}")


def _measurement_rows(measurement: Any, base: dict, where: str) -> list[dict]:
    if not isinstance(measurement, dict):
        raise QualityFileError(f"{where}: a measurement must be an object")
    measure_id = measurement.get("measureId")
    if not isinstance(measure_id, str) or not re.match(MEASURE_ID_PATTERN, measure_id):
        raise QualityFileError(f"{where}: field measureId must be a 3-digit QPP id, got {measure_id!r}")
    where = f"{where} measure {measure_id}"
    value = measurement.get("value")
    if not isinstance(value, dict):
        raise QualityFileError(f"{where}: field value must be an object")
    if "strata" in value:
        strata = value["strata"]
        if not isinstance(strata, list) or not strata:
            raise QualityFileError(f"{where}: field value.strata must be a non-empty list")
        parts = []
        for index, stratum in enumerate(strata, start=1):
            if not isinstance(stratum, dict) or not isinstance(stratum.get("stratum"), str):
                raise QualityFileError(f"{where}: value.strata[{index}]: field stratum must be text")
            parts.append((stratum["stratum"], stratum, f"{where} stratum {stratum['stratum']}"))
    else:
        parts = [(SINGLE_STRATUM, value, where)]
    rows = []
    for stratum, fields, label in parts:
        counts = {col: _count(fields, qpp, label) for col, qpp in QPP_FIELDS.items()}
        check_counts(label, counts)
        rows.append({**base, "measure_id": measure_id, "stratum": stratum, **counts})
    return rows


def read_qpp_json(path: Path) -> pa.Table:
    """quality.md §5.1–5.2: the quality measurement sets of a QPP JSON file as counts (aggregate.COUNTS_SCHEMA,
    source `qpp_json`), to be finished by `aggregate.finish_measure_aggregate`. Measurement sets of other
    categories (ia, pi) are not quality results and are left out. Raises QualityFileError naming the file, the
    measurement set, the measure (and stratum) and the field."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QualityFileError(f"{path}: QPP JSON file not found") from None
    except json.JSONDecodeError as err:
        raise QualityFileError(f"{path}: not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from err
    rows: list[dict] = []
    for s_index, submission in enumerate(_submissions(document, str(path)), start=1):
        where = f"{path}: submission {s_index}"
        level, tin, npi = _entity(submission, where)
        year = submission.get("performanceYear")
        if isinstance(year, bool) or not isinstance(year, int):
            raise QualityFileError(f"{where}: field performanceYear must be a year, got {year!r}")
        sets = submission.get("measurementSets")
        if not isinstance(sets, list):
            raise QualityFileError(f"{where}: field measurementSets must be a list")
        for m_index, mset in enumerate(sets, start=1):
            set_where = f"{where} measurementSet {m_index}"
            if not isinstance(mset, dict):
                raise QualityFileError(f"{set_where}: a measurement set must be an object")
            if mset.get("category") != "quality":
                continue
            method = mset.get("submissionMethod")
            if method not in QPP_SUBMISSION_METHODS:
                raise QualityFileError(f"{set_where}: field submissionMethod must be one of "
                                       f"{', '.join(QPP_SUBMISSION_METHODS)}, got {method!r}")
            measurements = mset.get("measurements")
            if not isinstance(measurements, list):
                raise QualityFileError(f"{set_where}: field measurements must be a list")
            base = {"performance_year": year, "collection_type": method, "tin": tin, "npi": npi,
                    "entity_level": level, "source": "qpp_json"}
            seen: set[str] = set()
            for measurement in measurements:
                got = _measurement_rows(measurement, base, set_where)
                if got[0]["measure_id"] in seen:
                    raise QualityFileError(f"{set_where} measure {got[0]['measure_id']}: reported twice")
                seen.add(got[0]["measure_id"])
                rows.extend(got)
    return counts_table(rows)
