"""Charts for the dashboard, the static report and the board PDF, drawn by matplotlib as self-contained SVG.

matplotlib renders locally (no script, no web font, no network), its SVG embeds in HTML and in WeasyPrint's PDF
alike, and its tick formatters size the axis to the labels, so a label such as 1.96583 is never clipped.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display: render to files only
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

COLOURS = ("#3b7dd8", "#d8733b", "#2e9e5b", "#8e5bd8")
plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "svg.hashsalt": "openasm"})


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def dollars_formatter(value: float, _position=None) -> str:
    return f"{'−' if value < 0 else ''}${abs(value):,.0f}"


def exchange_curve(scores: Sequence[float], curves: Mapping[str, tuple[float, Sequence[float]]]) -> str:
    """Transformed final score against final score (asm-model §7.4): per cohort label, its midpoint and the TFS
    at each of `scores` (computed by the caller with the engine's formula)."""
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    for index, (label, (midpoint, tfs)) in enumerate(sorted(curves.items())):
        colour = COLOURS[index % len(COLOURS)]
        axis.plot(list(scores), list(tfs), color=colour, label=f"{label} (m = {midpoint:.1f})")
        axis.axvline(midpoint, color=colour, linestyle=":", linewidth=0.8)
    axis.set_xlabel("final score")
    axis.set_ylabel("transformed final score")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.2f}"))
    axis.legend(frameon=False, loc="upper left")
    return _svg(figure)


def histogram(values: Sequence[float], *, low: float, high: float, bins: int, x_label: str,
              mark: float | None = None) -> str:
    """Counts of `values` in equal bins over [low, high]; `mark` draws a vertical line (e.g. the practice)."""
    figure, axis = plt.subplots(figsize=(6.4, 2.4))
    axis.hist([v for v in values if v is not None], bins=bins, range=(low, high), color=COLOURS[0])
    if mark is not None:
        axis.axvline(mark, color=COLOURS[1], linewidth=1.5)
    axis.set_xlabel(x_label)
    axis.set_ylabel("participants")
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _svg(figure)


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], *, x_label: str, y_label: str,
               dollars: bool = False) -> str:
    """One line per named series of (x, y) points."""
    figure, axis = plt.subplots(figsize=(6.4, 2.6))
    for index, (name, points) in enumerate(series.items()):
        ordered = sorted(points)
        axis.plot([p[0] for p in ordered], [p[1] for p in ordered], marker="o", markersize=3,
                  color=COLOURS[index % len(COLOURS)], label=name)
    axis.set_xlabel(x_label)
    axis.set_ylabel(y_label)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if dollars:
        axis.yaxis.set_major_formatter(FuncFormatter(dollars_formatter))
    axis.legend(frameon=False)
    return _svg(figure)


def fan_chart(percentiles_by_year: Mapping[int, Mapping[str, float]], *, y_label: str = "payment-year dollars") -> str:
    """Monte Carlo bands: P5–P95 and P25–P75 shaded around the P50 line, by payment year."""
    years = sorted(percentiles_by_year)
    p = {k: [percentiles_by_year[y][k] for y in years] for k in ("p5", "p25", "p50", "p75", "p95")}
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    axis.fill_between(years, p["p5"], p["p95"], color=COLOURS[0], alpha=0.18, label="P5–P95")
    axis.fill_between(years, p["p25"], p["p75"], color=COLOURS[0], alpha=0.35, label="P25–P75")
    axis.plot(years, p["p50"], color=COLOURS[0], marker="o", markersize=3, label="P50")
    axis.axhline(0, color="#8894a3", linewidth=0.8)
    axis.set_xlabel("payment year")
    axis.set_ylabel(y_label)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.yaxis.set_major_formatter(FuncFormatter(dollars_formatter))
    axis.legend(frameon=False, loc="best")
    return _svg(figure)


def convergence_chart(points: Sequence[Mapping[str, float]]) -> str:
    """Running P50 and mean of dollars as draws accumulate (log scale of draws)."""
    figure, axis = plt.subplots(figsize=(6.4, 2.2))
    axis.plot([r["draws"] for r in points], [r["p50_dollars"] for r in points], marker="o", markersize=3,
              color=COLOURS[0], label="P50")
    axis.plot([r["draws"] for r in points], [r["mean_dollars"] for r in points], marker="s", markersize=3,
              color=COLOURS[1], label="mean")
    axis.set_xscale("log")
    axis.set_xlabel("draws")
    axis.set_ylabel("dollars")
    axis.yaxis.set_major_formatter(FuncFormatter(dollars_formatter))
    axis.legend(frameon=False)
    return _svg(figure)
