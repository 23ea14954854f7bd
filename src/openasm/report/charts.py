"""Small inline SVG charts for the report pages (no plotting library, no scripts): histograms and line charts."""

from __future__ import annotations

import html
from collections.abc import Sequence

WIDTH, HEIGHT, PAD = 640, 240, 36
COLOURS = ("#3b7dd8", "#d8733b", "#2e9e5b", "#8e5bd8")


def _frame(x_label: str, y_label: str, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]],
           to_x, to_y) -> list[str]:
    parts = [f"<line x1='{PAD}' y1='{HEIGHT - PAD}' x2='{WIDTH - 8}' y2='{HEIGHT - PAD}' stroke='#8894a3'/>",
             f"<line x1='{PAD}' y1='8' x2='{PAD}' y2='{HEIGHT - PAD}' stroke='#8894a3'/>"]
    for value, label in x_ticks:
        x = to_x(value)
        parts.append(f"<text x='{x:.1f}' y='{HEIGHT - PAD + 14}' font-size='10' text-anchor='middle'>"
                     f"{html.escape(label)}</text>")
    for value, label in y_ticks:
        y = to_y(value)
        parts.append(f"<line x1='{PAD - 3}' y1='{y:.1f}' x2='{WIDTH - 8}' y2='{y:.1f}' stroke='#eef1f4'/>"
                     f"<text x='{PAD - 5}' y='{y + 3:.1f}' font-size='10' text-anchor='end'>{html.escape(label)}</text>")
    parts.append(f"<text x='{(WIDTH + PAD) / 2:.0f}' y='{HEIGHT - 4}' font-size='11' text-anchor='middle'>"
                 f"{html.escape(x_label)}</text>")
    parts.append(f"<text x='10' y='{(HEIGHT - PAD) / 2:.0f}' font-size='11' text-anchor='middle' "
                 f"transform='rotate(-90 10 {(HEIGHT - PAD) / 2:.0f})'>{html.escape(y_label)}</text>")
    return parts


def _svg(parts: list[str], title: str) -> str:
    return (f"<svg viewBox='0 0 {WIDTH} {HEIGHT}' width='100%' style='max-width:{WIDTH}px' role='img' "
            f"aria-label='{html.escape(title)}'>{''.join(parts)}</svg>")


def histogram(values: Sequence[float], *, low: float, high: float, bins: int, x_label: str, title: str) -> str:
    """Counts of `values` in `bins` equal-width bins over [low, high] (values outside are clamped)."""
    counts = [0] * bins
    width = (high - low) / bins
    for value in values:
        counts[min(bins - 1, max(0, int((value - low) / width)))] += 1
    top = max(counts) or 1

    def to_x(v: float) -> float:
        return PAD + (v - low) / (high - low) * (WIDTH - 8 - PAD)

    def to_y(v: float) -> float:
        return HEIGHT - PAD - v / top * (HEIGHT - PAD - 8)

    parts = _frame(x_label, "participants", [(low + i * (high - low) / 5, f"{low + i * (high - low) / 5:g}")
                                             for i in range(6)],
                   [(top * i / 4, f"{top * i / 4:.0f}") for i in range(5)], to_x, to_y)
    for index, count in enumerate(counts):
        x0, x1 = to_x(low + index * width), to_x(low + (index + 1) * width)
        parts.append(f"<rect x='{x0 + 1:.1f}' y='{to_y(count):.1f}' width='{max(0.5, x1 - x0 - 2):.1f}' "
                     f"height='{HEIGHT - PAD - to_y(count):.1f}' fill='{COLOURS[0]}'><title>{count}</title></rect>")
    return _svg(parts, title)


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, x_label: str, y_label: str, title: str,
               y_format: str = "{:g}") -> str:
    """One polyline per named series of (x, y) points, with a legend."""
    points = [p for line in series.values() for p in line]
    if not points:
        return ""
    x_low, x_high = min(p[0] for p in points), max(p[0] for p in points)
    y_low, y_high = min(p[1] for p in points), max(p[1] for p in points)
    if y_high == y_low:
        y_high = y_low + 1.0
    x_high = x_high if x_high > x_low else x_low + 1.0

    def to_x(v: float) -> float:
        return PAD + (v - x_low) / (x_high - x_low) * (WIDTH - 8 - PAD)

    def to_y(v: float) -> float:
        return HEIGHT - PAD - (v - y_low) / (y_high - y_low) * (HEIGHT - PAD - 8)

    parts = _frame(x_label, y_label, [(x_low + i * (x_high - x_low) / 5, f"{x_low + i * (x_high - x_low) / 5:g}")
                                      for i in range(6)],
                   [(y_low + i * (y_high - y_low) / 4, y_format.format(y_low + i * (y_high - y_low) / 4))
                    for i in range(5)], to_x, to_y)
    for index, (name, line) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{to_x(x):.1f},{to_y(y):.1f}" for x, y in sorted(line))
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{path}'/>")
        parts.append(f"<text x='{PAD + 10 + 120 * index}' y='18' font-size='11' fill='{colour}'>"
                     f"{html.escape(name)}</text>")
    return _svg(parts, title)
