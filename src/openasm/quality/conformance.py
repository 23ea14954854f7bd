"""eCQM conformance harness (quality.md §6): run every test case of a suite folder and compare each population of
each group with the expected MeasureReport.

Layout: `<root>/CMS<id>-Q<id>/<case>/` holding one JSON file per FHIR resource and the expected `MeasureReport-*.json`
(type individual). Folders and cases are discovered, never counted in code. Each case is read on its own (its
resource ids, Medications and Practitioners are local to it, as on the server that wrote it); all cases of a measure
are then evaluated together in one set-based run (patient ids are unique per case), once per distinct measurement
period.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import ibis
import pyarrow as pa

from openasm.quality.clinical import ClinicalTables, MeasurementPeriod
from openasm.quality.fhir_read import read_fhir
from openasm.quality.measures import measure_for
from openasm.quality.measures.common import POPULATION_FLAGS

MEASURE_FOLDER = re.compile(r"^(?P<ecqm>CMS\d+)-Q(?P<qid>\d+)$")
POPULATION_CODES = {
    "initial-population": "is_initial_population", "denominator": "is_denominator",
    "denominator-exclusion": "is_denominator_exclusion", "numerator": "is_numerator",
    "denominator-exception": "is_denominator_exception",
}
TEST_DESCRIPTION_URL = "http://hl7.org/fhir/us/cqfmeasures/StructureDefinition/cqfm-testCaseDescription"

# Cases whose expected report we hold to be wrong, argued from the CQL specification (issue 4 closing note), with the
# exact difference pinned (group, population, expected, actual): any other change in the case still fails.
# CMS144 d528720a: the first of two heart rates of 45/min is at 14:40:00+00:00 (second precision) and the HF encounter
# starts at 14:40:00.000+00:00. CQL 1.5 compares seconds and milliseconds as one decimal precision, so the reading is
# during the encounter and the two consecutive rates < 50/min make a denominator exception; the expected report
# follows cql-execution, which returns null when only one side carries milliseconds.
PINNED_DISAGREEMENTS: dict[tuple[str, str], list[tuple[int, str, int, int]]] = {
    ("CMS144", "d528720a-944c-4f78-9b3f-390c55b1232b"): [(1, "denominator-exception", 0, 1)],
}


class ConformanceError(ValueError):
    """The test folder is not laid out as expected."""


@dataclass(frozen=True)
class ConformanceCase:
    """One test patient: its files, the expected population counts per group, and the measurement period."""

    ecqm_id: str
    measure_id: str
    case_id: str
    patient_id: str
    title: str
    period: MeasurementPeriod
    expected: tuple[dict[str, int], ...]
    files: tuple[Path, ...]


@dataclass
class CaseOutcome:
    case: ConformanceCase
    actual: tuple[dict[str, int], ...]
    differences: list[tuple[int, str, int, int]] = field(default_factory=list)  # group, population, exp, act

    @property
    def passed(self) -> bool:
        return not self.differences

    @property
    def pinned(self) -> bool:
        """Differs from the expected report exactly as an argued disagreement says (`PINNED_DISAGREEMENTS`)."""
        pin = PINNED_DISAGREEMENTS.get((self.case.ecqm_id, self.case.case_id))
        return bool(self.differences) and pin == self.differences

    @property
    def failed(self) -> bool:
        return bool(self.differences) and not self.pinned


def _expected_report(folder: Path) -> dict:
    reports = sorted(folder.glob("MeasureReport-*.json"))
    if len(reports) != 1:
        raise ConformanceError(f"{folder}: expected one MeasureReport-*.json, found {len(reports)}")
    return json.loads(reports[0].read_text(encoding="utf-8"))


def _subject(report: dict, folder: Path) -> str:
    for contained in report.get("contained") or []:
        for parameter in contained.get("parameter") or []:
            if parameter.get("name") == "subject" and parameter.get("valueString"):
                return parameter["valueString"].rsplit("/", 1)[-1]
    patients = sorted(folder.glob("Patient-*.json"))
    if len(patients) != 1:
        raise ConformanceError(f"{folder}: cannot tell the test patient (no subject parameter, "
                               f"{len(patients)} Patient files)")
    return json.loads(patients[0].read_text(encoding="utf-8"))["id"]


def _title(report: dict, folder: Path) -> str:
    madie = folder / ".madie"
    if madie.exists():
        meta = json.loads(madie.read_text(encoding="utf-8"))
        if meta.get("title"):
            return f"{meta.get('series', '')} {meta['title']}".strip()
    for extension in report.get("extension") or []:
        if extension.get("url") == TEST_DESCRIPTION_URL:
            return (extension.get("valueMarkdown") or extension.get("valueString") or "").strip()
    return ""


def load_case(folder: Path, ecqm_id: str, measure_id: str) -> ConformanceCase:
    report = _expected_report(folder)
    period = report.get("period") or {}
    try:
        mp = MeasurementPeriod(date.fromisoformat(period["start"][:10]), date.fromisoformat(period["end"][:10]))
    except (KeyError, TypeError, ValueError) as err:
        raise ConformanceError(f"{folder}: MeasureReport.period is missing or not a date range ({err})") from None
    expected = tuple(
        {coding["code"]: int(population.get("count", 0))
         for population in group.get("population") or []
         for coding in (population.get("code") or {}).get("coding") or []
         if coding.get("code") in POPULATION_CODES}
        for group in report.get("group") or [])
    files = tuple(sorted(p for p in folder.glob("*.json") if not p.name.startswith("MeasureReport-")))
    return ConformanceCase(ecqm_id, measure_id, folder.name, _subject(report, folder), _title(report, folder), mp,
                           expected, files)


def discover_suites(root: Path, measure: str | None = None) -> dict[str, list[ConformanceCase]]:
    """Measure folder → its cases, for every `CMS<id>-Q<id>` folder under `root` (or only `measure`, given as
    `CMS156` or `CMS156-Q238`)."""
    root = Path(root)
    if not root.is_dir():
        raise ConformanceError(f"{root}: no such test folder")
    suites: dict[str, list[ConformanceCase]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        match = MEASURE_FOLDER.match(folder.name)
        if match is None:
            continue
        if measure and measure.upper() not in (folder.name.upper(), match["ecqm"].upper()):
            continue
        cases = [load_case(case, match["ecqm"], match["qid"].zfill(3))
                 for case in sorted(p for p in folder.iterdir() if p.is_dir())]
        suites[folder.name] = cases
    if not suites:
        raise ConformanceError(f"{root}: no measure folders named CMS<id>-Q<id>"
                               + (f" matching {measure}" if measure else ""))
    return suites


def evaluate_cases(cases: list[ConformanceCase], value_set_code: pa.Table, con=None) -> list[CaseOutcome]:
    """Evaluate one measure's cases together and compare each population of each group."""
    outcomes: list[CaseOutcome] = []
    by_period: dict[MeasurementPeriod, list[ConformanceCase]] = defaultdict(list)
    for case in cases:
        by_period[case.period].append(case)
    for period, group in by_period.items():
        measure = measure_for(group[0].ecqm_id)
        memtable = ibis.memtable
        clinical = ClinicalTables.from_arrow(read_cases(group), memtable)
        result = measure.evaluate(clinical=clinical, value_set_code=memtable(value_set_code), period=period,
                                  rules=None)
        fetched = (con.to_pyarrow(result) if con is not None else result.to_pyarrow()).to_pylist()
        flags: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(POPULATION_FLAGS, 0))
        for row in fetched:
            slot = flags[(row["patient_id"], int(row["population_group"]))]
            for name in POPULATION_FLAGS:
                slot[name] = max(slot[name], int(bool(row[name])))
        for case in group:
            actual = []
            differences = []
            for index, expected in enumerate(case.expected, start=1):
                got = flags[(case.patient_id, index)]
                actual.append({code: got[POPULATION_CODES[code]] for code in expected})
                for code, count in expected.items():
                    if got[POPULATION_CODES[code]] != count:
                        differences.append((index, code, count, got[POPULATION_CODES[code]]))
            outcomes.append(CaseOutcome(case, tuple(actual), differences))
    return outcomes


def read_cases(cases: list[ConformanceCase]) -> dict[str, pa.Table]:
    """The clinical tables of several cases, each read on its own and then stacked."""
    reads = [read_fhir(list(case.files)).tables for case in cases]
    return {name: pa.concat_tables([tables[name] for tables in reads]) for name in reads[0]}


def summarize(outcomes: list[CaseOutcome]) -> dict:
    """A summary MeasureReport-like total per group (actual counts) with the §2.1 rate on the totals."""
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for outcome in outcomes:
        for index, group in enumerate(outcome.actual, start=1):
            for code, count in group.items():
                totals[index][code] += count
    summary = {}
    for index, counts in sorted(totals.items()):
        denominator = counts.get("denominator", 0) - counts.get("denominator-exclusion", 0) - counts.get(
            "denominator-exception", 0)
        numerator = counts.get("numerator", 0)
        summary[index] = {**counts, "performance_rate": (100.0 * numerator / denominator) if denominator > 0 else None}
    return summary


@dataclass
class ConformanceReport:
    outcomes: dict[str, list[CaseOutcome]]

    @property
    def passed(self) -> int:
        return sum(o.passed for suite in self.outcomes.values() for o in suite)

    @property
    def pinned(self) -> int:
        return sum(o.pinned for suite in self.outcomes.values() for o in suite)

    @property
    def failed(self) -> int:
        return sum(o.failed for suite in self.outcomes.values() for o in suite)

    def lines(self) -> list[str]:
        """Per-measure pass counts, each differing case and population (FAIL, or PINNED for an argued
        disagreement), then `N passed, P pinned, M failed`."""
        out = []
        for suite, outcomes in self.outcomes.items():
            ok = sum(o.passed for o in outcomes)
            out.append(f"{suite}: {ok}/{len(outcomes)} cases pass")
            for outcome in outcomes:
                label = "PINNED" if outcome.pinned else "FAIL"
                for group, population, expected, actual in outcome.differences:
                    out.append(f"  {label} {suite} {outcome.case.case_id} ({outcome.case.title}) group {group} "
                               f"{population}: expected {expected}, got {actual}")
        out.append(f"{self.passed} passed, {self.pinned} pinned (argued disagreements), {self.failed} failed")
        return out

    def as_json(self) -> dict:
        return {
            "passed": self.passed, "pinned": self.pinned, "failed": self.failed,
            "suites": {suite: {
                "passed": sum(o.passed for o in outcomes), "cases": len(outcomes),
                "summary": summarize(outcomes),
                "failures": [{"case": o.case.case_id, "title": o.case.title, "patient_id": o.case.patient_id,
                              "pinned": o.pinned,
                              "differences": [{"group": g, "population": p, "expected": e, "actual": a}
                                              for g, p, e, a in o.differences]}
                             for o in outcomes if not o.passed]}
                for suite, outcomes in self.outcomes.items()},
        }


def run_conformance(root: Path, *, measure: str | None = None, value_set_code: pa.Table, con=None,
                    progress=None) -> ConformanceReport:
    """Run every suite under `root` (or one measure); `progress(suite)` is called after each suite."""
    outcomes = {}
    for suite, cases in discover_suites(root, measure).items():
        outcomes[suite] = evaluate_cases(cases, value_set_code, con)
        if progress is not None:
            progress(suite)
    return ConformanceReport(outcomes)


def main(argv: list[str] | None = None) -> int:
    """`python -m openasm.quality.conformance --tests DIR [--valuesets DIR] [--measure CMS156] [--report out.json]`."""
    import argparse

    from openasm.quality.value_sets import value_set_codes

    parser = argparse.ArgumentParser(prog="python -m openasm.quality.conformance")
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--valuesets", type=Path)
    parser.add_argument("--measure")
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    report = run_conformance(args.tests, measure=args.measure, value_set_code=value_set_codes(folder=args.valuesets))
    print("\n".join(report.lines()))
    if args.report:
        args.report.write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
