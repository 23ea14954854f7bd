"""Tiny inputs for participation golden cases: clinicians, Part B lines, and episodes with their attribution
(built directly, so each case states its exact episode count)."""

from __future__ import annotations

import ibis
import pyarrow as pa
import pytest

from openasm.participation.cohort import cohort_specialty_table
from openasm.participation.episode_volume import cohort_measure_table
from openasm.participation.lock_in import empty_prior_participant
from openasm.participation.participants import select_participants
from openasm.rules import RulesForYear

from ..episodes.factory import TIN_A, TIN_B, npi, table, visit

SELECTED = "35614"  # New York-Jersey City-White Plains metropolitan division (selected in these cases)
NOT_SELECTED = "16740"  # Charlotte CBSA (not selected in these cases)
# The backend matrix for module-scoped fixtures (the `backend` fixture of conftest is per test).
BACKEND_PARAMS = [pytest.param("duckdb"), pytest.param("pyspark", marks=pytest.mark.spark)]
__all__ = ["NOT_SELECTED", "SELECTED", "TIN_A", "TIN_B", "Inputs", "clinician", "episodes", "npi", "visit"]


def clinician(n: int, tin: str = TIN_A, specialty: str | None = None, cbsa: str | None = SELECTED,
              physician: bool = True, rhc: bool = False, zip5: str = "10016") -> dict:
    return {"tin": tin, "npi": npi(n), "specialty_code": specialty, "is_physician": physician,
            "practice_zip5": zip5, "practice_cbsa_code": cbsa, "is_rhc_fqhc": rhc}


def episodes(n: int, count: int, measure: str = "COST_HF_1", year: int = 2025, tin: str = TIN_A,
             excluded: str | None = None, attributed: bool = True, tag: str = "") -> list[dict]:
    """`count` episodes of one measure ending in `year`, each with its own beneficiary, attributed to NPI n."""
    return [{"episode_id": f"{measure}|N{n}{tag}|{year}|{i}", "measure_id": measure, "bene_id": f"B{n}{tag}-{i}",
             "billing_tin": tin, "performance_year": year, "exclusion_reason": excluded,
             "rendering_npi": npi(n), "is_attributed": attributed} for i in range(count)]


EPISODE_SCHEMA = pa.schema([("episode_id", pa.string()), ("measure_id", pa.string()), ("bene_id", pa.string()),
                            ("billing_tin", pa.string()), ("performance_year", pa.int32()),
                            ("exclusion_reason", pa.string())])
ATTRIBUTION_SCHEMA = pa.schema([("episode_id", pa.string()), ("measure_id", pa.string()),
                                ("billing_tin", pa.string()), ("rendering_npi", pa.string()),
                                ("is_attributed", pa.bool_())])


class Inputs:
    """The tables of one case, saved on an engine."""

    def __init__(self, engine, lines: list[dict], clinicians: list[dict], episode_rows: list[dict],
                 areas: tuple[str, ...] = (SELECTED,)):
        self.engine = engine
        self.claim_line = engine.save("claim_line", table("claim_line", lines))
        self.clinician = engine.save("clinician", table("clinician", clinicians))
        ep = {f.name: [r[f.name] for r in episode_rows] for f in EPISODE_SCHEMA}
        at = {f.name: [r[f.name] for r in episode_rows] for f in ATTRIBUTION_SCHEMA}
        self.episode = engine.save("episode", ibis.memtable(pa.table(ep, schema=EPISODE_SCHEMA)))
        self.attribution = engine.save("episode_attribution", ibis.memtable(pa.table(at, schema=ATTRIBUTION_SCHEMA)))
        self.selected = engine.save("selected_area", ibis.memtable(pa.table({"cbsa_code": list(areas)})))

    def participants(self, rules: RulesForYear, prior=None) -> dict[str, dict]:
        """The participant table of the rules' performance year, keyed by NPI."""
        out = select_participants(
            claim_line=self.claim_line, clinician=self.clinician, episode=self.episode,
            episode_attribution=self.attribution, selected_area=self.selected,
            cohort_specialty=ibis.memtable(cohort_specialty_table(rules)),
            cohort_measure=ibis.memtable(cohort_measure_table(rules)),
            prior_participant=prior if prior is not None else empty_prior_participant(), rules=rules)
        return {r["npi"]: r for r in self.engine.fetch(out).to_pylist()}
