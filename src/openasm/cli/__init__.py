"""`openasm` command line (typer + rich) over the runners in `openasm.runs`, one module per command group:
`claims` (synth, ingest, summarize, episodes, cost), `quality` (ingest-fhir, synth-fhir, conformance, quality,
quality-benchmarks), `model` (participate, lookup, score, payment, explain), `decide` (whatif, simulate, serve),
`reference` (version, rules, schema) and `tools` (report, demo). `common` holds what they share."""

from openasm.cli import (  # noqa: F401  (each registers its commands)
    claims,
    decide,
    model,
    quality,
    reference,
    tools,
)
from openasm.cli.app import app
from openasm.cli.common import err_console

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report it


def main() -> None:
    """The console entry: the typer app, with Ctrl-C ending in one line and exit code 130 (the running stage
    is rolled back, so the run folder keeps its previous results)."""
    import sys

    import click

    from openasm.engine import is_interruption

    try:
        code = app(standalone_mode=False)
    except click.exceptions.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort, Exception) as err:
        if isinstance(err, Exception) and not isinstance(err, click.exceptions.Abort) and not is_interruption(err):
            raise
        code = INTERRUPTED_EXIT
    if code == INTERRUPTED_EXIT:  # typer reports Ctrl-C as this exit code, silently
        err_console.print("interrupted: the run folder keeps its previous results")
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
