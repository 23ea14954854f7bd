"""The board report PDF (`openasm report RUN --pdf`): two to four pages for a practice's leadership — status,
score and dollar range, the three levers that matter most, dollars at risk 2027–2031, the timeline of deadlines and
payment years, and the assumptions it rests on. HTML from the shared Jinja2 templates, laid out by WeasyPrint
(CSS paged media; no browser, no network), charts from matplotlib as SVG.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from openasm.app.templating import render
from openasm.decide.montecarlo import simulate, simulate_years
from openasm.decide.outlook import build_outlook
from openasm.decide.run_tables import RunTables, load_run_tables
from openasm.decide.whatif import decision_for
from openasm.disclosure import NO_SUPPRESS, SmallCellPolicy
from openasm.report.plots import fan_chart

PDF_NAME = "board-report.pdf"
# SVG presentation properties that WeasyPrint's HTML style pass reports as unknown before its SVG renderer applies
# them (charts render in colour): the warnings say nothing wrong, so they are dropped, and only they.
SVG_PRESENTATION_PREFIXES = ("fill", "stroke", "text-anchor")


class _SvgStyleNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Ignored `") and message.endswith("unknown property.")
                    and message[len("Ignored `"):].startswith(SVG_PRESENTATION_PREFIXES))


def default_subject(run: RunTables) -> dict[str, str]:
    """The practice a board report is for when none is named: the TIN with the most scored participants."""
    counts: dict[str, int] = {}
    for r in run.rows("payment_adjustment"):
        if not r["is_neutral"]:
            counts[str(r["tin"])] = counts.get(str(r["tin"]), 0) + 1
    if not counts:
        raise ValueError(f"{run.run_dir}: no scored participant, nothing to report to a board")
    return {"tin": max(sorted(counts), key=lambda t: counts[t])}


def board_html(run: RunTables, *, npi: str | None = None, tin: str | None = None, draws: int = 2000, seed: int = 0,
               years_draws: int = 500) -> str:
    """The board report as HTML (the PDF's source); small cells as the run's rules say (`SmallCellPolicy`)."""
    subject = {"npi": npi} if npi else {"tin": tin} if tin else default_subject(run)
    decision = decision_for(run, **subject)
    simulation = simulate(decision, draws=draws, seed=seed)
    outlook = build_outlook(decision, simulation)
    fan = fan_chart(simulate_years(decision, draws=years_draws, seed=seed))
    label = f"NPI {subject['npi']}" if "npi" in subject else f"practice TIN {subject['tin']}"
    return render("board.html", policy=SmallCellPolicy.from_rules(run.rules), o=outlook,
                  sim=outlook["simulation"], fan=fan, subject_label=label, run_label=run.run_dir.name,
                  written=datetime.now(timezone.utc).strftime("%Y-%m-%d"))


def write_board_pdf(run_dir: Path, out_path: Path, **options) -> Path:
    """Write the board report PDF of the run in `run_dir` to `out_path`."""
    from weasyprint import HTML

    logging.getLogger("fontTools").setLevel(logging.WARNING)
    weasyprint_log = logging.getLogger("weasyprint")
    if not any(isinstance(f, _SvgStyleNoise) for f in weasyprint_log.filters):
        weasyprint_log.addFilter(_SvgStyleNoise())
    suppress = options.pop("suppress", True)
    html = board_html(load_run_tables(run_dir, [] if suppress else [NO_SUPPRESS]), **options)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    HTML(string=html, base_url=str(out_path.parent)).write_pdf(out_path)
    return out_path
