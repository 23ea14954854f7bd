"""Small-cell suppression for shareable outputs (CMS cell size suppression policy; `report.small_cell_minimum`).

Every shareable output (the HTML report pages, the board PDF, the dashboard pages, and the aggregate CSVs meant
to leave the practice) shows a count from 1 to minimum − 1 as "<minimum"; zero and larger counts are shown. A
page that applies the policy says so in a note with its citation. `--no-suppress` turns it off for internal use
(a rules override of the minimum to 0, recorded like any other), and the pages then say that they are not
shareable. Patient-level files (gap lists) are never shareable: they
carry a PHI label instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from openasm.rules import RulesForYear

PARAMETER = "report.small_cell_minimum"
NO_SUPPRESS = (PARAMETER, 0)  # the rules override behind --no-suppress
PHI_FILES = ("measure_gap", "measure_case_result", "unattributed_case", "pro_assessment", "q220_episode_result",
             "episode_cost_line", "episode_detail", "quarantine")
PHI_LABEL = ("Contains protected health information (patient-level rows): for the practice's own care "
             "management only, never to be shared outside the covered entity.")


@dataclass(frozen=True)
class SmallCellPolicy:
    """Whether and from which size counts are shown."""

    minimum: int
    enabled: bool
    citation: str

    @classmethod
    def from_rules(cls, rules: RulesForYear) -> "SmallCellPolicy":
        """The policy of `report.small_cell_minimum`; `--no-suppress` overrides it to 0 (nothing hidden), so the
        run's manifest and every page record that the output is internal."""
        minimum = int(rules.value(PARAMETER))
        resolved = rules.resolved(PARAMETER)
        shipped = int(resolved.shipped_value) if resolved.overridden else minimum
        return cls(minimum=minimum if minimum > 1 else shipped, enabled=minimum > 1,
                   citation="; ".join(resolved.citations))

    def hides(self, count: float | int | None) -> bool:
        """True for a count from 1 to minimum − 1 while the policy is on."""
        return self.enabled and count is not None and 0 < float(count) < self.minimum

    def count(self, count: float | int | None) -> str:
        """A count as shown: '' for none, '<11' for a small cell, else with thousands separators."""
        if count is None:
            return ""
        return f"<{self.minimum}" if self.hides(count) else f"{int(count):,}"

    @property
    def note(self) -> str:
        """The note every page applying (or not applying) the policy carries."""
        if not self.enabled:
            return ("Small-cell suppression is OFF (--no-suppress): counts of 1 to "
                    f"{self.minimum - 1} are shown. Internal use only; do not share this output.")
        return (f"Counts of 1 to {self.minimum - 1} are suppressed (shown as <{self.minimum}) under the CMS cell "
                f"size suppression policy ({self.citation}; rule {PARAMETER}).")

    def suppress_table(self, table: pa.Table, count_columns: Iterable[str]) -> pa.Table:
        """An aggregate table for sharing: each count column as text, small cells as '<minimum'."""
        out = table
        for name in count_columns:
            if name not in out.column_names:
                continue
            values = [self.count(v) for v in out[name].to_pylist()]
            out = out.set_column(out.column_names.index(name), name, pa.array(values, pa.string()))
        return out


def count_columns(table: pa.Table) -> list[str]:
    """Columns of an aggregate table that hold counts of people, claims or records (integer `*_count`,
    `read`, `accepted`, `quarantined`, `episodes`, …)."""
    names = ("read", "accepted", "quarantined", "participants", "episodes", "patients", "clinicians")
    return [f.name for f in table.schema if pa.types.is_integer(f.type)
            and (f.name.endswith("_count") or f.name in names or f.name.startswith("n_"))]


def suppressed_cells(table: pa.Table, policy: SmallCellPolicy) -> int:
    """How many cells of the table's count columns the policy hides (for tests and logs)."""
    total = 0
    for name in count_columns(table):
        column = table[name]
        total += pc.sum(pc.and_(pc.greater(column, 0), pc.less(column, policy.minimum))).as_py() or 0
    return total


def write_phi_notice(outputs_dir) -> None:
    """Label the patient-level files of a run's outputs folder (`PHI-NOTICE.txt` beside them)."""
    from pathlib import Path

    folder = Path(outputs_dir)
    present = sorted(p.name for name in PHI_FILES for p in folder.glob(f"{name}.*"))
    if not present:
        return
    (folder / "PHI-NOTICE.txt").write_text(
        PHI_LABEL + "\n\nPatient-level files in this folder:\n" + "".join(f"  {name}\n" for name in present)
        + "\nShare only the report pages, the board PDF and the files in shareable/ (small cells suppressed).\n",
        encoding="utf-8")
