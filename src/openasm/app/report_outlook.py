"""The outlook that opens the static run summary (index.html): per practice (TIN) the participants, final scores,
adjustment and payment-year dollars, then for the largest practice what moves its dollars most and the dollars at
risk 2027–2031 (`openasm.decide.outlook`). Rendered from a Jinja2 template, counts through the small-cell policy,
and handed to `report.html.write_report` as the index page's lead (the report layer reads finished tables only).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from openasm.app.pdf import PDF_NAME, default_subject
from openasm.app.templating import render
from openasm.decide.outlook import build_outlook
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for
from openasm.disclosure import SmallCellPolicy
from openasm.report import plots
from openasm.rules import RulesForYear
from openasm.schema.run_folder import output_path


def practice_rows(payment_adjustment: list[dict], dollars: list[dict]) -> list[dict]:
    """Per TIN: scored participants, mean final score, dollar-weighted adjustment and payment-year dollars."""
    paid: dict[str, float] = defaultdict(float)
    change: dict[str, float] = defaultdict(float)
    for d in dollars:
        paid[str(d["npi"])] += d["payment_year_paid_amount"] or 0.0
        change[str(d["npi"])] += d["payment_year_adjustment_amount"] or 0.0
    by_tin: dict[str, list[dict]] = defaultdict(list)
    for r in payment_adjustment:
        if not r["is_neutral"]:
            by_tin[str(r["tin"])].append(r)
    rows = []
    for tin, members in by_tin.items():
        total_paid = sum(paid[str(r["npi"])] for r in members)
        total = sum(change[str(r["npi"])] for r in members)
        rows.append({"tin": tin, "participants": len(members), "cohorts": sorted({r["cohort"] for r in members}),
                     "mean_final_score": sum(r["final_score"] for r in members) / len(members),
                     "adjustment": total / total_paid if total_paid else None, "dollars": total,
                     "paid": total_paid})
    return sorted(rows, key=lambda r: r["dollars"])


def outlook_fragment(run_dir: Path, rules: RulesForYear) -> str | None:
    """The outlook section's HTML, or None when the run has no payment stage yet."""
    if not output_path(run_dir, "payment_adjustment").is_file():
        return None
    run = load_run_tables(run_dir)
    rows = practice_rows(run.rows("payment_adjustment"), run.rows("adjustment_dollars"))
    if not rows:
        return None
    subject = default_subject(run)
    outlook = build_outlook(decision_for(run, **subject))
    series = {s: [(y["payment_year"], y.get(s, 0.0)) for y in outlook["projection"]]
              for s in ("worst", "expected", "best")}
    chart = plots.line_chart(series, x_label="payment year", y_label="dollars", dollars=True) \
        if outlook["projection"] else ""
    return render("report_outlook.html", policy=SmallCellPolicy.from_rules(rules), practices=rows, o=outlook,
                  tin=subject.get("tin"), chart=chart, pdf_name=PDF_NAME)
