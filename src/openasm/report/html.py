"""Readable HTML pages of a run, built only from its finished output tables and manifest.

Each page is a list of sections, functions from the run's outputs to an HTML fragment (claims_page,
quality_page, model_page); a section whose tables are absent is left out.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from openasm import __version__
from openasm.report.claims_page import CLAIMS_SECTIONS
from openasm.report.model_page import MODEL_SECTIONS
from openasm.report.quality_page import QUALITY_SECTIONS
from openasm.report.render import CSS, Section, esc
from openasm.rules import RulesForYear
from openasm.schema.run_folder import read_manifest_if_any

PAGES = (("index.html", "run summary"), ("quality.html", "quality"), ("model.html", "scores and payment"))


PAGE_SECTIONS: dict[str, list[Section]] = {"index.html": CLAIMS_SECTIONS, "quality.html": QUALITY_SECTIONS,
                                           "model.html": MODEL_SECTIONS}


def write_report(run_dir: Path, out_dir: Path, rules: RulesForYear) -> Path:
    """Write `<out_dir>/index.html` for the run in `run_dir`, plus quality.html and model.html when the run has
    those stages' outputs. Returns the index page."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    manifest = read_manifest_if_any(run_dir)
    ingest = manifest.get("ingest", {})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    pages = {name: [f for f in (section(run_dir, manifest, rules) for section in sections) if f]
             for name, sections in PAGE_SECTIONS.items()}
    written = [name for name, _title in PAGES if name == "index.html" or pages[name]]
    nav = "<nav>" + "".join(f"<a href='{name}'><b>{esc(title)}</b></a>" for name, title in PAGES
                            if name in written) + "</nav>"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, title in PAGES:
        if name not in written:
            continue
        local = ("<nav><a href='#rows'>rows</a><a href='#quarantine'>quarantine</a><a href='#versions'>claim "
                 "versions</a><a href='#setting'>spend by setting</a><a href='#specialty'>by specialty</a><a "
                 "href='#episodes'>episodes</a><a href='#cost'>episode cost</a><a href='#scores'>cost scores</a><a "
                 "href='#rules'>rules</a></nav>") if name == "index.html" else ""
        header = (f"<h1>openasm {esc(title)}</h1><p class='sub'>openasm {__version__} · backend "
                  f"{esc(manifest.get('backend', '?'))} · input {esc(ingest.get('input_dir', '?'))} · "
                  f"performance year {rules.performance_year} (payment year {rules.payment_year}) · written "
                  f"{stamp}</p>{nav}{local}")
        page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>openasm {esc(title)}</title>"
                f"<style>{CSS}</style></head><body>{header}{''.join(pages[name])}</body></html>")
        (out_dir / name).write_text(page, encoding="utf-8")
    return out_dir / "index.html"
