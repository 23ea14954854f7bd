"""`openasm ingest-835 FILES`: read X12 835 remittances, check every service line, store `remittance_line`
(accepted), `remittance_quarantine` and the practice's Part B base (`remittance_part_b_base`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from openasm.connectors.x12_835 import (
    REMITTANCE_LINE,
    compute_remittance_part_b_base,
    read_835,
    remittance_table,
)
from openasm.engine import Engine
from openasm.ingest.validate import accepted_rows, check_rows, flag_duplicate_keys, quarantined_rows
from openasm.pipeline import StageResult, count_rows, publish
from openasm.rules import RulesForYear


@dataclass
class RemittanceIngest:
    files: list[str]
    read: int
    accepted: int
    quarantined: int
    structure_errors: list[str] = field(default_factory=list)
    stage: StageResult = field(default_factory=StageResult)

    @property
    def reconciles(self) -> bool:
        return self.read == self.accepted + self.quarantined


def run_ingest_835(engine: Engine, paths: list[Path], rules: RulesForYear, out_dir: Path) -> RemittanceIngest:
    """Every service line accepted or quarantined (file and line number); the base per (NPI, TIN)."""
    files = sorted({p for path in paths for p in (Path(path).rglob("*") if Path(path).is_dir() else [Path(path)])
                    if p.is_file()})
    remittances = read_835(files)
    raw = engine.save("remittance__int_raw", remittance_table(remittances))
    checked = engine.save("remittance__int_checked", flag_duplicate_keys(
        checked=check_rows(raw=raw, contract=REMITTANCE_LINE), contract=REMITTANCE_LINE))
    result = RemittanceIngest(remittances.files, count_rows(raw), 0, 0, remittances.structure_errors)
    accepted = publish(engine, out_dir, result.stage, "remittance_line",
                       accepted_rows(checked=checked, contract=REMITTANCE_LINE))
    quarantine = publish(engine, out_dir, result.stage, "remittance_quarantine",
                         quarantined_rows(checked=checked, contract=REMITTANCE_LINE))
    result.accepted, result.quarantined = count_rows(accepted), count_rows(quarantine)
    publish(engine, out_dir, result.stage, "remittance_part_b_base",
            compute_remittance_part_b_base(remittance_line=accepted, rules=rules))
    for name in ("remittance__int_raw", "remittance__int_checked"):
        engine.drop(name)
    if not result.reconciles:
        raise RuntimeError(f"835 accounting broken: read {result.read} != accepted {result.accepted} + "
                           f"quarantined {result.quarantined}")
    return result
