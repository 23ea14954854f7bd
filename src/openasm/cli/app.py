"""The `openasm` Typer application; each command-group module adds its commands to it."""

from __future__ import annotations

import typer

app = typer.Typer(help="openasm: open reference engine for the CMS Ambulatory Specialty Model.",
                  no_args_is_help=True, add_completion=False)
