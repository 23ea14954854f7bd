"""Which stage's results rest on which: when a stage runs again, the results of every stage downstream of it
are stale and are removed from the run folder (tables, outputs, manifest entries), so a report can never show
new claims beside old episodes. Ingest into a folder that holds downstream results asks for `--force`."""

from __future__ import annotations

# stage -> the stages whose results it reads
READS: dict[str, tuple[str, ...]] = {
    "ingest": (),
    "fhir_ingest": (),
    "ingest_835": (),
    "summary": ("ingest",),
    "episodes": ("ingest",),
    "cost": ("episodes",),
    "participation": ("ingest", "episodes"),
    "participant_list_comparison": ("participation",),
    "quality": ("fhir_ingest", "ingest"),
    "score": ("participation", "quality", "cost"),
    "payment": ("score", "ingest", "ingest_835"),
}
# Stages that bring data into a run folder: replacing their data makes every later result stale.
INPUT_STAGES = ("ingest", "fhir_ingest", "ingest_835")
# Stages whose published tables hold rows per performance year: a run for one year replaces that year's rows and
# keeps the others (participation keeps its years itself).
YEAR_STAGES = ("episodes", "cost", "participant_list_comparison", "quality", "score", "payment")
YEAR_AWARE = (*YEAR_STAGES, "participation")
# A stage that reads another's intermediate tables (not only its published ones) needs them for its own year.
SCRATCH_READS: dict[str, tuple[str, ...]] = {"cost": ("episodes",)}
# The upstream results a stage cannot do without (the others it reads are optional).
REQUIRES: dict[str, tuple[str, ...]] = {"cost": ("episodes",), "participant_list_comparison": ("participation",),
                                        "score": ("participation", "cost"), "payment": ("score",)}


COMMANDS = {"ingest": "ingest", "fhir_ingest": "ingest-fhir", "ingest_835": "ingest-835", "summary": "summarize",
            "episodes": "episodes", "cost": "cost", "participation": "participate",
            "participant_list_comparison": "participate --compare-with", "quality": "quality", "score": "score",
            "payment": "payment"}


def stage_name(runner: object) -> str:
    """`run_<stage>` → `<stage>` (the key of READS)."""
    name = getattr(runner, "__name__", "")
    stage = name.removeprefix("run_")
    if stage not in READS:
        raise ValueError(f"{name}: not a known stage runner (known: {', '.join(READS)})")
    return stage


def missing_upstream(stage: str, year: int | None, stages: dict) -> str | None:
    """Why `stage` cannot run for `year` on a run folder whose manifest records `stages`, or None: an upstream
    year-aware stage has no results for the year, or its intermediates are of another year."""
    if year is None or stage not in YEAR_AWARE or not stages:
        return None  # a run folder of an openasm without stage records is not checked
    for upstream in READS[stage]:
        entry = stages.get(upstream)
        if entry is None and upstream in REQUIRES.get(stage, ()):
            return f"the run has no {upstream} results: run `openasm {COMMANDS[upstream]} --py {year}` first"
        if upstream not in YEAR_AWARE or entry is None:
            continue
        if year not in entry.get("performance_years", []):
            return (f"the run has no {upstream} results for performance year {year}: run "
                    f"`openasm {COMMANDS[upstream]} --py {year}` first")
        if upstream in SCRATCH_READS.get(stage, ()) and entry.get("scratch_year", year) != year:
            return (f"the run's {upstream} tables are for performance year {entry['scratch_year']}: run "
                    f"`openasm {COMMANDS[upstream]} --py {year}` again first")
    return None


def downstream(stage: str) -> list[str]:
    """Every stage that reads `stage`'s results, directly or through others, in READS order."""
    found: set[str] = set()
    frontier = {stage}
    while frontier:
        frontier = {s for s, reads in READS.items() if set(reads) & frontier} - found
        found |= frontier
    return [s for s in READS if s in found]
