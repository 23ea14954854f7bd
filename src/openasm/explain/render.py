"""Render an `Explanation` (asm-model.md §9 chain) as a rich console view or as Markdown / plain text.

Every step that rests on a value whose evidence is `secondary`, `default` (or a user override) is flagged: `⚑`
when one of the step's own parameters is such a value, `↳` when it only inherits it from a step it depends on.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from openasm.explain.chain import Explanation, ParameterUse, Step

OWN_FLAG = "⚑"
INHERITED_FLAG = "↳"
LEGEND = (f"{OWN_FLAG} uses a secondary/default value itself; {INHERITED_FLAG} rests on one through an "
          "earlier step; unflagged numbers rest on regulation text only.")


def flag_of(step: Step) -> str:
    if step.own_non_reg:
        return OWN_FLAG
    return INHERITED_FLAG if step.rests_on_non_reg else ""


SHORT_VALUE = 24  # longer values (tables, code ranges) appear in the parameters table only


def _param_text(p: ParameterUse) -> str:
    shown = f"={p.value}" if len(p.value) <= SHORT_VALUE else ""
    return f"{p.name}{shown} [{p.evidence}]"


def _title(expl: Explanation) -> str:
    return (f"NPI {expl.npi}, cohort {expl.cohort}, TIN {expl.tin or '—'}: performance year "
            f"{expl.performance_year} → payment year {expl.payment_year}")


def render_console(expl: Explanation, console: Console) -> None:
    """Steps table, then every parameter used with its evidence and citation (non-regulation values in
    yellow), then the flag legend."""
    steps = Table(title=_title(expl), show_lines=True)
    for col in ("", "step", "value", "how", "rules used"):
        steps.add_column(col, overflow="fold")
    for s in expl.steps:
        how = s.formula + (f"\n{s.note}" if s.note else "") + (f"\n[bold red]check: {s.check}[/]" if s.check else "")
        rules_used = Text()
        for i, p in enumerate(s.parameters):
            rules_used.append(("\n" if i else "") + _param_text(p), style="yellow" if p.is_non_reg else "")
        steps.add_row(Text(flag_of(s), style="bold yellow"), s.label, s.display, how, rules_used)
    console.print(steps)
    params = Table(title="Parameters used (evidence and citation)")
    for col in ("name", "value", "evidence", "citation"):
        params.add_column(col, overflow="fold")
    for p in expl.parameters():
        style = "yellow" if p.is_non_reg else ""
        params.add_row(p.name, p.value, Text(p.evidence, style=style), "; ".join(p.citations))
    console.print(params)
    flagged = len(expl.flagged_steps())
    console.print(f"{flagged} of {len(expl.steps)} numbers rest on a secondary or default value. {LEGEND}")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(expl: Explanation) -> str:
    """The same content as Markdown tables (readable as plain text)."""
    lines = [f"# {_title(expl)}", "", "| flag | step | value | how | rules used |", "|---|---|---|---|---|"]
    for s in expl.steps:
        how = s.formula + (f". {s.note}" if s.note else "") + (f". CHECK: {s.check}" if s.check else "")
        used = "; ".join(_param_text(p) for p in s.parameters)
        lines.append(f"| {flag_of(s)} | {_cell(s.label)} | {_cell(s.display)} | {_cell(how)} | {_cell(used)} |")
    lines += ["", "## Parameters used", "", "| name | value | evidence | citation |", "|---|---|---|---|"]
    for p in expl.parameters():
        evidence = p.evidence if not p.is_non_reg else f"**{p.evidence}**"
        lines.append(f"| {p.name} | {_cell(p.value)} | {evidence} | {_cell('; '.join(p.citations))} |")
    flagged = len(expl.flagged_steps())
    lines += ["", f"{flagged} of {len(expl.steps)} numbers rest on a secondary or default value. {LEGEND}", ""]
    return "\n".join(lines)
