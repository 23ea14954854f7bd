"""Which generated condition services the cost measure assigns to an episode (ebcm §5, §10.3).

A care year's drawn cost is the *assigned* cost of the year (ebcm §11.2: "episode annual assigned cost"), so
the generator rescales only the services the measure's assignment rules cover: E/M, tests, imaging, therapy,
injections, DME and Part D of the condition, HF stays and the post-acute care after them, ED facility visits.
Condition-related services the measure does not assign (hospitalist and ED physician visits, ECGs,
venipuncture, device interrogations, ED ancillaries) keep their list prices, like unrelated care; if they
shared the drawn cost, the measured episode would come out short by their share.

The rules are read from the same code lists the cost stage uses (`cost.assignment_rules`,
`episodes.dx_codes`), so a world generated under other rules stays calibrated to what those rules assign.
Settings map to claim types as in `openasm.cost.assign.HCPCS_RULE_SETTINGS` (kept in step by a test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openasm.rules import RulesForYear
from openasm.synth import codes
from openasm.synth.batch import Batch

# Claim types each hcpcs-rule setting covers (openasm.cost.assign.HCPCS_RULE_SETTINGS).
HCPCS_RULE_SETTINGS = {
    "carrier": ("carrier",),
    "carrier_or_outpatient": ("carrier", "outpatient"),
    "outpatient": ("outpatient",),
    "dme": ("dme",),
    "ed": ("carrier", "outpatient"),
}
POST_ACUTE_CLAIM_TYPES = {"snf": "snf", "hha": "home_health"}
ED_REVENUE_PREFIX = "045"
OBSERVATION_REVENUE = "0762"
CONDITION = "CONDITION"
POST_ACUTE_NOTE = "post_acute_after_assigned_stay"
COHORT_CODE = {"hf": 1, "lbp": 2}


@dataclass(frozen=True)
class AssignmentRules:
    """One cohort's assignment rules as plain data (picklable, part of SynthParams)."""

    measure_id: str
    hcpcs: dict[str, tuple[str, ...]]    # claim type -> assigned HCPCS codes
    drgs: tuple[str, ...]
    principal_stays: bool                # other stays with a principal condition diagnosis
    ed_observation: bool                 # outpatient ED / observation revenue lines with the diagnosis
    post_acute: tuple[str, ...]          # claim types assigned after an assigned stay
    ndc_classes: tuple[str, ...]
    dx_exact: tuple[str, ...]
    dx_prefix: tuple[str, ...]


def load_assignment_rules(rules: RulesForYear) -> dict[str, AssignmentRules]:
    measures = rules.value("cost.measures")
    table = rules.code_list("cost.assignment_rules").to_pylist()
    dx_table = rules.code_list("episodes.dx_codes").to_pylist()
    out = {}
    for cohort in COHORT_CODE:
        measure = measures[cohort]
        rows = [r for r in table if r["measure"] == measure and r["is_assigned"].strip().lower() == "true"]
        hcpcs: dict[str, set[str]] = {}
        for r in rows:
            if r["code_type"] == "hcpcs" and r["setting"] in HCPCS_RULE_SETTINGS:
                for ctype in HCPCS_RULE_SETTINGS[r["setting"]]:
                    hcpcs.setdefault(ctype, set()).add(r["code"])
        dx = [r for r in dx_table if r["measure"] == measure and r["is_enabled"].strip().lower() == "true"]
        norm = [(r["code"].replace(".", "").upper(), r["match"]) for r in dx]
        out[cohort] = AssignmentRules(
            measure_id=measure,
            hcpcs={k: tuple(sorted(v)) for k, v in sorted(hcpcs.items())},
            drgs=tuple(sorted(r["code"] for r in rows if r["code_type"] == "drg" and r["setting"] == "inpatient")),
            principal_stays=any(r["code_type"] == "dx_principal" and r["code"] == CONDITION for r in rows),
            ed_observation=any(r["code_type"] == "dx_any" and r["setting"] == "ed_observation" for r in rows),
            post_acute=tuple(sorted(POST_ACUTE_CLAIM_TYPES[r["setting"]] for r in rows
                                    if r["code"] == POST_ACUTE_NOTE and r["setting"] in POST_ACUTE_CLAIM_TYPES)),
            ndc_classes=tuple(sorted(r["code"] for r in rows if r["code_type"] == "ndc_class")),
            dx_exact=tuple(c for c, m in norm if m == "exact"),
            dx_prefix=tuple(c for c, m in norm if m == "prefix"),
        )
    return out


def _dx_mask(rule: AssignmentRules) -> np.ndarray:
    """Boolean over the DX vocabulary: the code is one of the measure's condition diagnoses."""
    exact = set(rule.dx_exact)
    return np.array([c in exact or c.startswith(rule.dx_prefix) for c in codes.DX.codes] + [False])


def assigned_lines(batch: Batch, rule: AssignmentRules, lines: np.ndarray | None = None) -> np.ndarray:
    """Per line of `batch` (or per line index in `lines`): would the measure assign it (diagnosis and code;
    the date is not checked)."""
    ln, cl = batch.lines, batch.claims
    claim = ln["claim"] if lines is None else ln["claim"][lines]
    pick = (lambda a: a) if lines is None else (lambda a: a[lines])
    ctype = cl["ctype"][claim]
    names = codes.CLAIM_TYPE.codes
    dx_ok = _dx_mask(rule)
    header_dx = dx_ok[batch.dx[claim]].any(axis=1)      # index -1 (null) hits the trailing False
    line_dx = dx_ok[pick(ln["ldx"])] | header_dx
    hcpcs = pick(ln["hcpcs"]).astype(np.int64)
    by_type = np.zeros((len(names), len(codes.HCPCS) + 1), dtype=bool)
    for ct, listed in rule.hcpcs.items():
        known = [codes.HCPCS.idx(c) for c in listed if c in codes.HCPCS._index]
        by_type[names.index(ct), known] = True
    out = by_type[ctype, hcpcs] & line_dx

    drg_ok = np.zeros(len(codes.DRG) + 1, dtype=bool)
    drg_ok[[codes.DRG.idx(d) for d in rule.drgs if d in codes.DRG._index]] = True
    stay = drg_ok[cl["drg"][claim].astype(np.int64)]
    if rule.principal_stays:
        stay |= dx_ok[batch.dx[claim, 0]]
    out |= stay & (ctype == names.index("inpatient"))
    if rule.ed_observation:
        rev_ok = np.array([r.startswith(ED_REVENUE_PREFIX) or r == OBSERVATION_REVENUE for r in codes.REV.codes]
                          + [False])
        out |= (ctype == names.index("outpatient")) & rev_ok[pick(ln["rev"]).astype(np.int64)] & line_dx
    for ct in rule.post_acute:
        out |= ctype == names.index(ct)  # condition post-acute claims start right after the stay
    return out


def assigned_fills(ndc: np.ndarray, rule: AssignmentRules) -> np.ndarray:
    """Per fill (index into codes.NDC): is its drug class assigned."""
    ok = np.array([codes.NDC_CLASS.get(c) in rule.ndc_classes for c in codes.NDC.codes])
    return ok[ndc]
