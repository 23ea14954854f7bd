"""Write a generated world in one of the source formats the connectors read (`openasm synth --format`)."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("cclf", "bcda", "bluebutton", "rif")


def write_format(world: Path, source_format: str, out: Path | None = None) -> Path:
    """The world in `world` written as `source_format` into `out` (default `<world>/<format>`). Remittances
    (x12-835) need the world's final-action claims: `runs.world.write_world_format`."""
    folder = Path(out) if out is not None else Path(world) / source_format
    if source_format == "cclf":
        from openasm.synth.cclf_writer import write_cclf

        write_cclf(world, folder)
    elif source_format in ("bcda", "bluebutton"):
        from openasm.synth.bcda_people import write_bcda, write_bluebutton

        (write_bcda if source_format == "bcda" else write_bluebutton)(world, folder)
    elif source_format == "rif":
        from openasm.synth.rif_writer import write_rif

        write_rif(world, folder)
    else:
        raise ValueError(f"unknown format {source_format!r}; choose one of {', '.join(FORMATS)}")
    return folder
