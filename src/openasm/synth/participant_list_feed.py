"""The synthetic CMS ASM participant list (§512.710) of a world: one row per organization and NPI of the
cohort-specialty clinicians and of the engine's participants, in the published file's columns, with planted
disagreements."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from openasm.participation.participant_list import COHORT_NAMES, LIST_YEARS, flag_column
from openasm.rules import RulesForYear
from openasm.synth.geo import load_areas
from openasm.synth.pools import pick_one

FIRST_NAMES = ("Amara", "Ben", "Carmen", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "James", "Kavya",
               "Liam", "Maya", "Noah", "Olga", "Priya", "Rafael", "Sara", "Tomas", "Wen")
LAST_NAMES = ("Abbott", "Banerjee", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
              "Kowalski", "Lindqvist", "Mensah", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka")
STATE_BY_FIPS = {  # USPS code of each state FIPS (public fact, for the list's STATE column)
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT", "10": "DE", "11": "DC",
    "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL", "18": "IN", "19": "IA", "20": "KS", "21": "KY",
    "22": "LA", "23": "ME", "24": "MD", "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT",
    "31": "NE", "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND", "39": "OH",
    "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD", "47": "TN", "48": "TX", "49": "UT",
    "50": "VT", "51": "VA", "53": "WA", "54": "WV", "55": "WI", "56": "WY", "72": "PR"}


def _state_by_zip() -> dict[str, str]:
    areas = load_areas()
    return {z: STATE_BY_FIPS.get(s, "") for z, s in zip(areas.zip5, areas.state_fips)}


def participant_list_rows(clinicians: list[dict], participant: pa.Table, p: dict, rng: np.random.Generator,
                           performance_year: int, rules: RulesForYear) -> tuple[list[dict], Counter, list[str]]:
    """§512.710: one row per (organization, NPI) of the cohort-specialty clinicians and of the engine's
    participants; the PY's participant flag is the engine's, flipped for `disagreements` NPIs. Also returns
    the listed TINs (organization_legal_name is `Practice <tin>`, as the FHIR export's Organization.name)."""
    cohort_of = {str(c): cohort for cohort, codes in rules.value("participation.specialty_codes").items()
                 for c in codes}
    judged = {r["npi"]: r for r in participant.to_pylist() if r["performance_year"] == performance_year}
    chosen = {r["npi"] for r in judged.values() if r["is_participant"] and r["tin"] and r["cohort"]}
    entries: dict[tuple[str, str], dict] = {}
    for c in clinicians:
        if c["specialty_code"] in cohort_of:
            entries[(c["tin"], c["npi"])] = {"tin": c["tin"], "npi": c["npi"], "cohort": cohort_of[c["specialty_code"]],
                                             "zip5": c["practice_zip5"]}
    zips = {(c["tin"], c["npi"]): c["practice_zip5"] for c in clinicians}
    for npi in sorted(chosen):
        row = judged[npi]
        entries.setdefault((row["tin"], npi), {"tin": row["tin"], "npi": npi, "cohort": row["cohort"],
                                               "zip5": zips.get((row["tin"], npi), row["practice_zip5"])})
    npis = sorted({e["npi"] for e in entries.values()})
    names = {npi: (pick_one(rng, FIRST_NAMES), pick_one(rng, LAST_NAMES)) for npi in npis}
    flipped = sorted(rng.choice(npis, size=min(int(p["disagreements"]), len(npis)), replace=False).tolist()) \
        if npis else []
    states = _state_by_zip()
    rows = []
    for (tin, npi), entry in sorted(entries.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        is_participant = (npi in chosen) != (npi in flipped)
        small = judged.get(npi, {}).get("is_small_practice")
        cohort = judged[npi]["cohort"] if npi in chosen else entry["cohort"]
        row = {"NPI": npi, "FIRST_NAME": names[npi][0], "LAST_NAME": names[npi][1],
               "STATE": states.get(entry["zip5"] or "", ""), "ASM_COHORT": COHORT_NAMES[cohort],
               "ORGANIZATION_LEGAL_NAME": f"Practice {tin}"}
        for year in LIST_YEARS:
            here = year == performance_year
            row[flag_column(year, "PARTICIPANT")] = ("Yes" if is_participant else "No") if here else ""
            row[flag_column(year, "SMALLPRACTICE")] = ({True: "Yes", False: "No"}.get(small, "") if here else "")
        rows.append(row)
    planted = Counter(listed_participants=len(chosen ^ set(flipped)),
                      computed_only=len(set(flipped) & chosen), cms_only=len(set(flipped) - chosen))
    return rows, planted, sorted({tin for tin, _ in entries})
