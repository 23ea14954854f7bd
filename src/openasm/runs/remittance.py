"""Run remittance ingest (`openasm ingest-835 FILES`): read X12 835 remittances (`connectors.x12_835`), check every
service line (accepted into `remittance_line`, the rest into `remittance_quarantine` with file and line number),
and publish the practice's Part B base per NPI x TIN for the performance year (`remittance_part_b_base`), which
`openasm payment` then uses for the NPIs it covers (`payment.remittance_base`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openasm.connectors.x12_835 import read_835, remittance_table
from openasm.engine import Engine
from openasm.ingest.validate import accepted_rows, check_rows, duplicate_rows, numbered_rows, quarantined_rows
from openasm.payment.remittance_base import compute_remittance_part_b_base
from openasm.rules import RulesForYear
from openasm.runs.stage import StageResult, Step, count_rows, no_step, publish
from openasm.schema.remittance import REMITTANCE_LINE

REMITTANCE_BASE = "remittance_part_b_base"


@dataclass(frozen=True)
class RemittanceInputs:
    """835 files, or folders of them (every file below a folder is read)."""

    paths: tuple[Path, ...]


@dataclass
class RemittanceResult(StageResult):
    files: list[str] = field(default_factory=list)
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    structure_errors: list[str] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.quarantined

    def manifest_entries(self) -> dict[str, Any]:
        return {"ingest_835": {"files": self.files, "read": self.read, "accepted": self.accepted,
                                "quarantined": self.quarantined, "reconciles": self.reconciles,
                                "structure_errors": self.structure_errors}}


def run_ingest_835(engine: Engine, rules: RulesForYear, run_dir: Path, inputs: RemittanceInputs,
                   step: Step | None = None) -> RemittanceResult:
    """Every service line accepted or quarantined (file and line number); the base per (NPI, TIN) of the
    performance year. Raises RemittanceError for a file that is not an 835."""
    say = step or no_step
    files = sorted({p for path in inputs.paths
                    for p in (Path(path).rglob("*") if Path(path).is_dir() else [Path(path)]) if p.is_file()})
    say(f"reading {len(files)} file(s)")
    remittances = read_835(files)
    raw = engine.save("remittance__int_raw", remittance_table(remittances))
    checked = engine.save("remittance__int_checked",
                          numbered_rows(check_rows(raw=raw, contract=REMITTANCE_LINE), REMITTANCE_LINE))
    duplicates = engine.save("remittance__int_duplicate", duplicate_rows(checked=checked, contract=REMITTANCE_LINE))
    result = RemittanceResult(files=remittances.files, read=count_rows(raw),
                              structure_errors=remittances.structure_errors)
    say("checking service lines")
    accepted = publish(engine, run_dir, result, "remittance_line",
                       accepted_rows(checked=checked, duplicates=duplicates, contract=REMITTANCE_LINE))
    quarantine = publish(engine, run_dir, result, "remittance_quarantine",
                         quarantined_rows(checked=checked, duplicates=duplicates, contract=REMITTANCE_LINE))
    result.accepted, result.quarantined = count_rows(accepted), count_rows(quarantine)
    say("Part B base")
    publish(engine, run_dir, result, REMITTANCE_BASE,
            compute_remittance_part_b_base(remittance_line=accepted, rules=rules))
    for name in ("remittance__int_raw", "remittance__int_checked", "remittance__int_duplicate"):
        engine.drop(name)
    if not result.reconciles:
        raise RuntimeError(f"835 accounting broken: read {result.read} != accepted {result.accepted} + "
                           f"quarantined {result.quarantined}")
    return result
