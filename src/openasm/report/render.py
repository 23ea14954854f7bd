"""What every report page shares: the style sheet, reading a run's published tables, escaping and number
formats, and HTML tables. Pages import from here; `html.write_report` assembles them."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openasm.disclosure import SmallCellPolicy
from openasm.rules import RulesForYear
from openasm.schema.run_folder import read_output

Section = Callable[[Path, dict[str, Any], RulesForYear], "str | None"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;
line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2.2rem;border-bottom:2px solid #dde3ea;
padding-bottom:.3rem}.sub{color:#5b6877;margin-top:0}table{border-collapse:collapse;width:100%;font-size:.88rem;
margin:.6rem 0}th,td{border-bottom:1px solid #e6eaef;padding:.32rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#3b7dd8;height:.7rem;border-radius:2px}.ok{color:#1e7d32;font-weight:600}.bad{color:#b3261e;
font-weight:600}.tag{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.78rem}
.tag.reg{background:#dff3e3}.tag.secondary{background:#fff1cc}.tag.default{background:#fde2e1}
.tag.override{background:#e5dcff}.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{background:#f4f6f9;
border-radius:6px;padding:.7rem 1rem;min-width:10rem}.card b{display:block;font-size:1.3rem}
nav a{margin-right:1rem}
"""


def read_rows(run_dir: Path, name: str) -> list[dict[str, Any]] | None:
    """The rows of a published table, or None when its stage has not run (the section is left out)."""
    table = read_output(run_dir, name)
    return None if table is None else table.to_pylist()


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt_money(value: Any) -> str:
    if value is None:
        return ""
    return f"{'−' if value < 0 else ''}${abs(value):,.0f}"


def fmt_count(value: Any, rules: RulesForYear) -> str:
    """A count as a shareable page shows it: 1 to 10 as "<11" (`report.small_cell_minimum`, issue 9 item 6)."""
    return SmallCellPolicy.from_rules(rules).count(value)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{c}</td>" if n else f"<td>{c}</td>" for c, n in zip(row, numeric)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar(share: float) -> str:
    return f"<div class='bar' style='width:{max(0.0, min(1.0, share)) * 100:.1f}%'></div>"
