"""One Jinja2 environment for the dashboard pages and the board PDF: templates shipped in the package, HTML
autoescaping on (no hand-escaped strings), and the number filters every page uses, suppression included."""

from __future__ import annotations

import math
from functools import lru_cache

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from openasm.disclosure import SmallCellPolicy


def money(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{'−' if value < 0 else ''}${abs(value):,.0f}"


def pct(value, digits: int = 2, signed: bool = True) -> str:
    """A fraction as a percentage (0.0123 → +1.23%)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:{'+' if signed else ''}.{digits}f}%"


def num(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("openasm.app", "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(money=money, pct=pct, num=num, svg=lambda text: Markup(text or ""))
    return env


def render(template: str, *, policy: SmallCellPolicy, **context) -> str:
    """Render a template with the suppression policy (`count` filter, `suppression_note`) in its context."""
    env = environment()
    return env.get_template(template).render(policy=policy, count=policy.count, suppression_note=policy.note,
                                             **context)
