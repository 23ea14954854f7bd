"""Readable HTML pages of a run, built only from its finished output tables and manifest.

Each page is a list of sections, functions from the run's outputs to an HTML fragment (claims_page,
quality_page, model_page); a section whose tables are absent is left out.
"""

from __future__ import annotations

from pathlib import Path

from openasm import __version__
from openasm.disclosure import SmallCellPolicy, count_columns, write_phi_notice
from openasm.report.claims_page import CLAIMS_SECTIONS
from openasm.report.model_page import MODEL_SECTIONS
from openasm.report.quality_page import QUALITY_SECTIONS
from openasm.report.render import CSS, Section, esc
from openasm.rules import RulesForYear
from openasm.schema.run_folder import MANIFEST, OUTPUTS, read_manifest_if_any, read_output

PAGES = (("index.html", "run summary"), ("quality.html", "quality"), ("model.html", "scores and payment"))


PAGE_SECTIONS: dict[str, list[Section]] = {"index.html": CLAIMS_SECTIONS, "quality.html": QUALITY_SECTIONS,
                                           "model.html": MODEL_SECTIONS}


def write_report(run_dir: Path, out_dir: Path, rules: RulesForYear, lead: dict[str, str] | None = None) -> Path:
    """Write `<out_dir>/index.html` for the run in `run_dir`, plus quality.html and model.html when the run has
    those stages' outputs, the shareable aggregate CSVs and the PHI notice. `lead` maps a page to an HTML
    fragment that opens it (the outlook, which the caller builds from `openasm.decide`). Every page carries the
    small-cell note (`report.small_cell_minimum`). Returns the index page."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    manifest = read_manifest_if_any(run_dir)
    ingest = manifest.get("ingest", {})
    pages = {name: [f for f in (section(run_dir, manifest, rules) for section in sections) if f]
             for name, sections in PAGE_SECTIONS.items()}
    for name, fragment in (lead or {}).items():
        pages[name].insert(0, fragment)
    written = [name for name, _title in PAGES if name == "index.html" or pages[name]]
    nav = "<nav>" + "".join(f"<a href='{name}'><b>{esc(title)}</b></a>" for name, title in PAGES
                            if name in written) + "</nav>"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, title in PAGES:
        if name not in written:
            continue
        local = ("<nav><a href='#outlook'>outlook</a><a href='#rows'>rows</a><a href='#quarantine'>quarantine</a>"
                 "<a href='#versions'>claim versions</a><a href='#setting'>spend by setting</a>"
                 "<a href='#specialty'>by specialty</a><a "
                 "href='#episodes'>episodes</a><a href='#cost'>episode cost</a><a href='#scores'>cost scores</a><a "
                 "href='#rules'>rules</a></nav>") if name == "index.html" else ""
        header = (f"<h1>openasm {esc(title)}</h1><p class='sub'>openasm {__version__} · backend "
                  f"{esc(manifest.get('backend', '?'))} · input {esc(ingest.get('input_dir', '?'))} · "
                  f"performance year {rules.performance_year} (payment year {rules.payment_year}) · run recorded "
                  f"in {esc(MANIFEST)}</p>{nav}{local}<p class='sub'>{esc(SmallCellPolicy.from_rules(rules).note)}</p>")
        page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>openasm {esc(title)}</title>"
                f"<style>{CSS}</style></head><body>{header}{''.join(pages[name])}</body></html>")
        (out_dir / name).write_text(page, encoding="utf-8")
    write_shareable_tables(run_dir, out_dir, rules)
    write_phi_notice(run_dir / OUTPUTS)
    return out_dir / "index.html"


SHAREABLE = ("ingest_summary", "quarantine_reasons", "claim_versions", "spend_by_setting", "spend_by_specialty",
             "cost_drivers", "fhir_ingest_summary", "pool_invariant_check", "adjustment_dollars_by_tin")


def write_shareable_tables(run_dir: Path, out_dir: Path, rules: RulesForYear) -> list[Path]:
    """Issue 9 item 6: the aggregate tables behind the report pages as CSVs meant to leave the practice
    (`<out_dir>/shareable/`), every count column suppressed under `report.small_cell_minimum`."""
    import pyarrow.csv as pacsv

    policy = SmallCellPolicy.from_rules(rules)
    folder = Path(out_dir) / "shareable"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SHAREABLE:
        table = read_output(run_dir, name)
        if table is not None:
            pacsv.write_csv(policy.suppress_table(table, count_columns(table)), folder / f"{name}.csv")
            written.append(folder / f"{name}.csv")
    (folder / "README.txt").write_text(policy.note + "\n", encoding="utf-8")
    return written
