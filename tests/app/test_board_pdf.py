"""The board PDF that `openasm demo` (make demo) writes, read back with pdftotext: the expected headings, two to
four pages, and the numbers of the library's outlook for the same practice."""

from __future__ import annotations

import subprocess

import pytest

from openasm.app.pdf import PDF_NAME, default_subject
from openasm.app.templating import money, num
from openasm.decide.outlook import build_outlook
from openasm.decide.run_tables import load_run_tables
from openasm.decide.whatif import decision_for

HEADINGS = ("Ambulatory Specialty Model — board report", "Status", "Score and dollar range",
            "The three levers that matter most", "Dollars at risk, performance years 2027–2031",
            "Timeline of deadlines and payment years", "Assumptions")


@pytest.fixture(scope="module")
def pdf_text(demo_output):
    path = demo_output / PDF_NAME
    assert path.is_file(), "openasm demo did not write the board PDF"
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return text, pages


def test_board_pdf_has_the_sections_on_two_to_four_pages(pdf_text):
    text, pages = pdf_text
    for heading in HEADINGS:
        assert heading in text, heading
    assert 2 <= pages <= 4
    assert "suppressed (shown as <11)" in text


def test_board_pdf_numbers_are_the_librarys(demo_output, pdf_text):
    text, _ = pdf_text
    run = load_run_tables(demo_output / "run")
    subject = default_subject(run)
    decision = decision_for(run, **subject)
    outlook = build_outlook(decision)
    assert f"practice TIN {subject['tin']}" in text
    assert num(outlook["final_score"]) in text
    assert money(outlook["dollars"]) in text
    for year in outlook["projection"]:
        assert money(year["worst"]) in text and money(year["best"]) in text
    # The PDF ranks levers at the simulated median cohort: its three are among the practice's levers.
    assert sum(lever.label in text for lever in decision.levers.values()) >= min(3, len(outlook["all_levers"]))
    for row in outlook["timeline"]:
        assert f"{row['submission_opens']} to {row['submission_closes']}" in text
