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


def main() -> None:  # pragma: no cover - console entry
    app()


__all__ = ["app", "main"]
