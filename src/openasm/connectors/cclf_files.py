"""Find the CCLF files of a delivery folder by their CMS names (CCLF Information Packet v38 §4.2, Appendix B).

`P.A1234.ACO.ZC5Y24.D240110.T1120450` is CCLF5 of the monthly delivery for performance year 2024 made on
2024-01-10; `ZC5R24` is a run-out delivery for PY 2024 (packet §3.4). Monthly deliveries hold the claims loaded
that month, so every claims file (CCLF1, 2, 4, 5, 6, 7) of every delivery and run-out is read. CCLF8 and CCLF9
restate the whole population each month: only the files of the latest delivery date are read (its MBIs are
the current ones, packet §3.1) and older deliveries are listed as superseded, never silently skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from openasm.connectors.layout import load_layout

CLAIMS_FILES = ("CCLF1", "CCLF2", "CCLF4", "CCLF5", "CCLF6", "CCLF7")
LATEST_ONLY = ("CCLF8", "CCLF9")
READ_FILES = CLAIMS_FILES + LATEST_ONLY
# Files of the delivery that carry nothing the canonical model uses (procedures, BE/demo codes, summary).
NOT_USED = ("CCLF0", "CCLF3", "CCLFA", "CCLFB")


@dataclass(frozen=True)
class CclfFile:
    """One CCLF file and what its name says about it."""

    path: Path
    file_type: str  # CCLF1 ... CCLF9
    is_runout: bool
    performance_year: int
    delivered: str  # yymmdd


@dataclass
class CclfDelivery:
    """The CCLF files of a folder by type, plus everything that is not read and why."""

    files: dict[str, list[CclfFile]] = field(default_factory=dict)
    not_read: list[str] = field(default_factory=list)

    def of(self, file_type: str) -> list[CclfFile]:
        return self.files.get(file_type, [])


def parse_cclf_name(path: Path) -> CclfFile | None:
    """The CCLF file type, run-out flag, performance year and delivery date in a file name; None otherwise."""
    match = re.search(load_layout("cclf_mapping")["file_name_pattern"], path.name)
    if match is None:
        return None
    return CclfFile(path, f"CCLF{match['file'].upper()}", match["kind"].upper() == "R", 2000 + int(match["py"]),
                    match["date"])


def find_cclf_files(folder: Path) -> CclfDelivery:
    """Every CCLF file under `folder` (recursively), grouped by type; the rest listed as not read."""
    delivery = CclfDelivery()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith(".")):
        parsed = parse_cclf_name(path)
        if parsed is None:
            continue
        if parsed.file_type in NOT_USED:
            delivery.not_read.append(f"{path.name} ({parsed.file_type}: not used by the canonical model)")
            continue
        delivery.files.setdefault(parsed.file_type, []).append(parsed)
    for file_type in LATEST_ONLY:
        found = delivery.of(file_type)
        if not found:
            continue
        latest = max(f.delivered for f in found)
        for older in (f for f in found if f.delivered != latest):
            delivery.not_read.append(
                f"{older.path.name} ({file_type} delivery {older.delivered}: superseded by {latest})")
        delivery.files[file_type] = [f for f in found if f.delivered == latest]
    return delivery


def is_cclf_file(path: Path) -> bool:
    return parse_cclf_name(path) is not None
