"""Synthetic model feeds: the four input files a practice receives or produces besides claims and EHR data, so the
demo exercises every scoring path: the FOTO Q220 episode file (quality.md §4.7, §5.5), the CMS Q492 results file
(§4.8, §5.5), the IA/PI attestation file (§512.735, §512.740; `scoring.ia_pi_attestation`) and the CMS ASM
participant list (§512.710; `participation.participant_list`).

Who is in them: the world's clinicians (rows of its `clinician` table with a valid NPI and TIN) and the patients they
see in the performance year: each beneficiary with the clinician billing most of their office E/M visits of a cohort
specialty (as in `fhir_export`; patient ids `<bene_id>-<cohort>` match the FHIR export). Q220 covers every
LBP-cohort clinician, not only physical-medicine specialties: in ASM Q220 is a required measure of the whole LBP
cohort. The participant flags are the participation stage's own result (ingest + §512.710 on the world, in an
in-memory DuckDB) unless the caller passes the participant table it already computed; a few NPIs are flipped on
purpose so the comparison report has something to show.

Rates and shares are `synth.model_feeds`; a few rows are made unreadable on purpose (counted in the summary) so
each reader's quarantine is exercised. Same world, seed, year and rules → same bytes.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from openasm.participation.participant_list import (
    IDENTITY_COLUMNS,
    LIST_YEARS,
    flag_column,
)
from openasm.quality.q220 import EXCLUSION_CODES, MET, NOT_CALCULABLE, NOT_MET
from openasm.rules import RulesForYear, load_rules
from openasm.schema.formats import NPI_PATTERN, TIN_PATTERN, npi_check_digit
from openasm.scoring.ia_pi_attestation import COLUMNS as ATTESTATION_COLUMNS
from openasm.synth.participant_list_feed import participant_list_rows
from openasm.synth.pools import pick_one

Q220_COLUMNS = ("tin", "npi", "patient_id", "episode_id", "initial_eval_dt", "initial_eval_code", "discharge_dt",
                "discharge_code", "intake_fs", "discharge_fs", "predicted_change", "residual", "result_code", "source")
Q492_COLUMNS = ("py", "tin", "npi", "rate", "case_count", "scored_flag", "achievement_points", "benchmark_ref")
FILES = {"q220": "q220_foto_episodes.csv", "q492": "q492_cms_results.csv",
         "ia_pi_attestation": "ia_pi_attestation.csv", "participant_list": "asm_participant_list.csv"}
UNKNOWN_RESULT_CODE = "G8662"  # shaped like a G-code, not one of Q220's
CEHRT_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class ModelFeedsSummary:
    """What `generate_model_feeds` wrote. `defects`: rows each reader quarantines or rejects, per feed and kind.
    `planted`: accepted rows with a deliberate shortfall or variant (IA element missing, PI objective unmet, no
    attestation row, participant-list disagreements, Q220 exclusions, ...)."""

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    defects: dict[str, dict[str, int]] = field(default_factory=dict)
    planted: dict[str, dict[str, int]] = field(default_factory=dict)


def _rng(seed: int, performance_year: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(performance_year, 91, stream)))


def _days(rng: np.random.Generator, span: list[int]) -> timedelta:
    """A whole number of days in [span[0], span[1]]."""
    return timedelta(days=int(rng.integers(span[0], span[1] + 1)))


def _valid_npi(npi: object) -> bool:
    return isinstance(npi, str) and bool(re.match(NPI_PATTERN, npi)) and npi_check_digit(npi[:9]) == npi[9]


def _clinicians(world_dir: Path) -> list[dict]:
    """Rows of the world's clinician table that ingest would accept (NPI shape and check digit, TIN shape, a
    specialty), one per (tin, npi), sorted."""
    table = ds.dataset(world_dir / "clinician", format="parquet").to_table()
    kept: dict[tuple[str, str], dict] = {}
    for row in sorted(table.to_pylist(), key=lambda r: tuple(str(r[k]) for k in ("tin", "npi", "specialty_code"))):
        if _valid_npi(row["npi"]) and isinstance(row["tin"], str) and re.match(TIN_PATTERN, row["tin"]) \
                and row["specialty_code"]:
            kept.setdefault((row["tin"], row["npi"]), row)
    return [kept[k] for k in sorted(kept)]


def _panels(world_dir: Path, clinicians: list[dict], performance_year: int, rules: RulesForYear,
            pattern: str) -> dict[str, list[dict]]:
    """Per cohort: each beneficiary with the (valid) clinician billing most of their office E/M visits of the
    cohort's specialties in the year (ties: lowest NPI), their first such visit and birth date."""
    con = ibis.duckdb.connect()
    lines = con.read_parquet(str(world_dir / "claim_line" / "*.parquet"))
    benes = con.read_parquet(str(world_dir / "beneficiary" / "*.parquet"))
    benes = benes.group_by(_b_bene=benes.bene_id).agg(birth_date=benes.birth_date.min())
    pairs = ibis.memtable(pa.table({"_p_tin": [c["tin"] for c in clinicians],
                                    "_p_npi": [c["npi"] for c in clinicians]}))
    lines = lines.filter((lines.claim_type == "carrier") & lines.hcpcs_code.re_search(pattern)
                         & (lines.line_from_date.year() == performance_year)
                         & (lines.claim_adjustment_type == "original"))
    lines = lines.join(pairs, (lines.billing_tin == pairs._p_tin) & (lines.rendering_npi == pairs._p_npi))
    out: dict[str, list[dict]] = {}
    for cohort, codes in sorted(rules.value("participation.specialty_codes").items()):
        mine = lines.filter(lines.provider_specialty_code.isin([str(c) for c in codes]))
        per_pair = mine.group_by(["bene_id", "rendering_npi", "billing_tin"]).agg(
            visits=mine.count(), first_visit=mine.line_from_date.min())
        ranked = per_pair.mutate(_rank=ibis.row_number().over(ibis.window(
            group_by="bene_id", order_by=[ibis.desc("visits"), "rendering_npi", "billing_tin"])))
        best = ranked.filter(ranked._rank == 0)
        joined = best.join(benes, best.bene_id == benes._b_bene).select(
            best.bene_id, npi=best.rendering_npi, tin=best.billing_tin, first_visit=best.first_visit,
            birth_date=benes.birth_date).order_by("bene_id")
        out[str(cohort)] = joined.to_pyarrow().to_pylist()
    con.disconnect()
    return out


def _write_csv(path: Path, header: tuple[str, ...], rows: list[dict]) -> int:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if row.get(c) is None else str(row[c]) for c in header] for row in rows])
    return len(rows)


def _tenths(rng: np.random.Generator, spec: dict) -> int:
    """A normal draw in tenths of a point, clipped to [min, max] (integers keep residual arithmetic exact)."""
    value = round(float(rng.normal(spec["mean"], spec["sd"])) * 10)
    return int(min(max(value, round(spec["min"] * 10)), round(spec["max"] * 10)))


def _fs(tenths: int | None) -> str | None:
    return None if tenths is None else f"{tenths / 10:.1f}"


def _episode(rng: np.random.Generator, p: dict, met_share: float, kind: str) -> dict:
    """Scores and result code of one FOTO episode of `kind`; residual = discharge − intake − predicted."""
    met = bool(rng.random() < met_share)
    code = MET if met else NOT_MET
    if kind == "exclusion":
        code = pick_one(rng, EXCLUSION_CODES)  # G9733: the patient could not complete the intake PROM
        return {"intake_fs": _fs(_tenths(rng, p["intake_fs"])) if code == EXCLUSION_CODES[0] else None,
                "result_code": code}
    if kind == "result_code_only":
        return {"result_code": code}
    intake = _tenths(rng, p["intake_fs"])
    if kind in ("not_calculable", "open"):
        return {"intake_fs": _fs(intake), "result_code": NOT_CALCULABLE if kind == "not_calculable" else None}
    predicted = _tenths(rng, p["predicted_change"])
    size = min(round(abs(float(rng.normal(0.0, p["residual_sd"]))) * 10) + 1, round(p["residual_max"] * 10))
    residual = size if met else -min(size, intake + predicted)  # discharge score stays ≥ 0
    with_code = bool(rng.random() < p["code_with_residual_share"])
    return {"intake_fs": _fs(intake), "discharge_fs": _fs(intake + predicted + residual),
            "predicted_change": _fs(predicted), "residual": _fs(residual), "result_code": code if with_code else None}


def _q220_rows(patients: list[dict], p: dict, rng: np.random.Generator,
               performance_year: int) -> tuple[list[dict], Counter, Counter]:
    """quality.md §5.5: one FOTO row per treatment episode of the LBP clinicians' patients."""
    shares = [("exclusion", p["exclusion_share"]), ("result_code_only", p["result_code_only_share"]),
              ("not_calculable", p["not_calculable_share"]), ("open", p["open_episode_share"])]
    concentration = float(p["clinician_concentration"])
    by_clinician: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for patient in patients:
        by_clinician[(patient["tin"], patient["npi"])].append(patient)
    rows, kinds = [], Counter()
    for (tin, npi), mine in sorted(by_clinician.items()):
        met_share = float(rng.beta(p["met_share"] * concentration, (1 - p["met_share"]) * concentration))
        for patient in mine:
            patient_id = f"{patient['bene_id']}-lbp"
            start = patient["first_visit"]
            episodes = 2 if rng.random() < p["second_episode_share"] else 1
            for number in range(1, episodes + 1):
                if start.year != performance_year:
                    break
                draw, kind = float(rng.random()), "residual"
                for name, share in shares:
                    if draw < share:
                        kind = name
                        break
                    draw -= share
                discharge = start + _days(rng, p["episode_days"])
                scores = _episode(rng, p, met_share, kind)
                closed = kind != "open"
                rows.append({"tin": tin, "npi": npi, "patient_id": patient_id, "episode_id": f"{patient_id}-E{number}",
                             "initial_eval_dt": start.isoformat(),
                             "initial_eval_code": pick_one(rng, p["initial_eval_codes"]),
                             "discharge_dt": discharge.isoformat() if closed else None,
                             "discharge_code": pick_one(rng, p["discharge_codes"]) if closed else None,
                             "source": "FOTO", **scores})
                kinds[kind] += 1
                start = discharge + _days(rng, p["gap_days"])
    defects = Counter()
    candidates = [i for i, r in enumerate(rows) if r.get("residual") is not None]
    wanted = [kind for kind, n in sorted(p["defects"].items()) for _ in range(int(n))]
    for index, kind in zip(rng.permutation(candidates).tolist(), wanted):
        if kind == "bad_date":
            rows[index]["initial_eval_dt"] = f"{performance_year}-02-30"
        elif kind == "unknown_result_code":
            rows[index]["result_code"] = UNKNOWN_RESULT_CODE
        else:
            raise ValueError(f"synth.model_feeds q220.defects: unknown kind {kind!r}")
        kinds["residual"] -= 1
        defects[kind] += 1
    return rows, kinds, defects


def _age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _q492_rows(patients: list[dict], p: dict, rng: np.random.Generator, performance_year: int,
               rules: RulesForYear) -> tuple[list[dict], Counter]:
    """quality.md §4.8, §5.5: one CMS result per HF clinician; case count = their HF patients aged ≥ the measure's
    minimum age on 1 January, scored from `quality.case_minimum` cases; CMS points on a few scored rows."""
    min_age, minimum = int(rules.value("quality.q492_proxy_min_age")), int(rules.value("quality.case_minimum"))
    january = date(performance_year, 1, 1)
    cases: Counter = Counter()
    for patient in patients:
        age = _age_on(patient["birth_date"], january)
        if age is not None and age >= min_age:
            cases[(patient["tin"], patient["npi"])] += 1
    rows = []
    for (tin, npi), case_count in sorted(cases.items()):
        rate = max(0.0, float(rng.normal(p["rate_center"], p["rate_sd"])))
        rows.append({"py": performance_year, "tin": tin, "npi": npi, "rate": f"{rate:.2f}", "case_count": case_count,
                     "scored_flag": "true" if case_count >= minimum else "false", "_rate": rate})
    scored = [i for i, r in enumerate(rows) if r["scored_flag"] == "true"]
    with_points = round(p["achievement_points_share"] * len(scored))
    with_points = max(1, with_points) if scored else 0
    for index in sorted(rng.choice(scored, size=with_points, replace=False).tolist() if with_points else []):
        z = (rows[index]["_rate"] - p["rate_center"]) / p["rate_sd"]
        below = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))  # share of clinicians with a lower (better) rate
        rows[index].update(achievement_points=f"{1.0 + 9.0 * (1.0 - below):.2f}", benchmark_ref=p["benchmark_ref"])
    planted = Counter(scored=len(scored), not_scored=len(rows) - len(scored), cms_points=with_points)
    return rows, planted


def _pi_choices(rules: RulesForYear) -> dict[str, dict[str, list[str]]]:
    """Required PI objectives → option → its measures (code list ia_pi__pi_measures, §512.740)."""
    bases = {"asm", "mips"} if rules.value("ia_pi.pi_mips_base_required") else {"asm"}
    options: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for row in rules.code_list("ia_pi__pi_measures").to_pylist():
        if row["option"] and row["required_by"] in bases and row["role"] == "measure":
            options[row["objective"]][row["option"]].append(row["measure_id"])
    return {o: {k: sorted(v) for k, v in sorted(opts.items())} for o, opts in sorted(options.items())}


def _attestation_rows(tins: list[str], partner_pool: list[str], p: dict, rng: np.random.Generator,
                      performance_year: int, rules: RulesForYear) -> tuple[list[dict], Counter, Counter]:
    """§512.735, §512.740: one attestation row per TIN. Disjoint TIN sets (shares of `ia_pi`, at least one TIN
    each while one TIN is left clean) get no row, a rejected row (TIN without its first digit), an IA-1 element
    missing, or a PI objective unmet; every other TIN meets IA-1, IA-2 and PI."""
    elements = rules.code_list("ia_pi__ia_elements").to_pylist()
    ia1 = [e["element"] for e in elements if e["activity"] == "IA_1" and e["is_required"] == "true"]
    ia2 = [e["element"] for e in elements if e["activity"] == "IA_2"]
    min_cca = int(rules.value("ia_pi.ia2_min_cca_elements"))
    exclusions: dict[str, list[str]] = defaultdict(list)
    for row in rules.code_list("ia_pi__pi_measures").to_pylist():
        if row["role"] == "exclusion":
            exclusions[row["satisfies"]].append(row["measure_id"])
    objectives = _pi_choices(rules)
    order = rng.permutation(len(tins)).tolist()
    wanted = {"no_attestation_row": max(1, round(p["no_attestation_share"] * len(tins))),
              "row_rejected": int(p["defects"]["row_rejected"]),
              "ia_element_missing": max(1, round(p["ia_element_missing_share"] * len(tins))),
              "pi_objective_unmet": max(1, round(p["pi_objective_unmet_share"] * len(tins)))}
    counts: Counter = Counter()
    fate: dict[str, str] = {}
    for kind in ("no_attestation_row", "row_rejected", "ia_element_missing", "pi_objective_unmet"):
        for _ in range(wanted[kind]):
            if len(fate) < len(tins) - 1:  # at least one of each kind, but one TIN always attests in full
                fate[tins[order[len(fate)]]] = kind
                counts[kind] += 1
    january = date(performance_year, 1, 1)
    december = date(performance_year, 12, 31)

    def start(span: str) -> date:
        return january + _days(rng, p[span])

    rows = []
    for tin in tins:
        kind = fate.get(tin)
        if kind == "no_attestation_row":
            continue
        ia1_start, ia2_start, pi_start = start("ia1_start_offset_days"), start("ia2_start_offset_days"), \
            start("pi_start_offset_days")
        effective = max(january, ia2_start - _days(rng, p["cca_effective_lead_days"]))
        partners = [t for t in partner_pool if t != tin]
        partner = pick_one(rng, partners) if partners else "9" + "".join(str(d) for d in rng.integers(0, 10, size=8))
        cca = sorted(rng.choice(ia2, size=int(rng.integers(min_cca, len(ia2) + 1)), replace=False).tolist())
        measures: dict[str, list[str]] = {}
        for objective, options in objectives.items():
            chosen = options[pick_one(rng, list(options))]
            measures[objective] = [pick_one(rng, exclusions[m]) if exclusions.get(m) and
                                   rng.random() < p["pi_exclusion_share"] else m for m in chosen]
        elements_done = list(ia1)
        if kind == "ia_element_missing":
            elements_done.pop(int(rng.integers(len(elements_done))))
        if kind == "pi_objective_unmet":
            objective = pick_one(rng, list(measures))
            measures[objective].pop(int(rng.integers(len(measures[objective]))))
        cehrt = "0015" + "".join(CEHRT_ALPHABET[i] for i in rng.integers(0, len(CEHRT_ALPHABET), size=11))
        rows.append({
            "tin": tin[1:] if kind == "row_rejected" else tin, "performance_year": performance_year,
            "ia1_attested": "true", "ia1_start_date": ia1_start.isoformat(), "ia1_end_date": december.isoformat(),
            "ia1_elements": ";".join(elements_done),
            "ia2_attested": "true", "ia2_start_date": ia2_start.isoformat(), "ia2_end_date": december.isoformat(),
            "ia2_cca_partner_tin": partner, "ia2_cca_effective_date": effective.isoformat(),
            "ia2_cca_elements": ";".join(cca),
            "pi_attested": "true", "pi_start_date": pi_start.isoformat(), "pi_end_date": december.isoformat(),
            "pi_cehrt_id": cehrt, "pi_measures": ";".join(m for ms in measures.values() for m in ms)})
    planted = Counter({k: counts[k] for k in ("no_attestation_row", "ia_element_missing", "pi_objective_unmet")})
    return rows, planted, Counter(row_rejected=counts["row_rejected"])


def generate_model_feeds(world_dir: Path, out_dir: Path, performance_year: int, *, seed: int = 1,
                         participant: pa.Table, rules: RulesForYear | None = None) -> ModelFeedsSummary:
    """Write the four feeds (FILES) for the world's clinicians in `performance_year` into `out_dir`.
    `participant`: the participant table computed for the world (PARTICIPANT_COLUMNS; at least
    performance_year, npi, tin, cohort, is_participant, is_small_practice, practice_zip5), e.g. by
    `openasm.runs.world.participants_of_world`."""
    if performance_year not in LIST_YEARS:
        raise ValueError(f"performance year {performance_year}: the participant list covers {LIST_YEARS}")
    world_dir, out_dir = Path(world_dir), Path(out_dir)
    rules = rules or load_rules(performance_year)
    params = rules.value("synth.model_feeds")
    clinicians = _clinicians(world_dir)
    panels = _panels(world_dir, clinicians, performance_year, rules, params["panel_visit_hcpcs_pattern"])
    summary = ModelFeedsSummary(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {feed: out_dir / name for feed, name in FILES.items()}

    q220, kinds, defects = _q220_rows(panels.get("lbp", []), params["q220"], _rng(seed, performance_year, 1),
                                      performance_year)
    summary.planted["q220"], summary.defects["q220"] = dict(kinds), dict(defects)
    q492, planted = _q492_rows(panels.get("hf", []), params["q492"], _rng(seed, performance_year, 2),
                               performance_year, rules)
    summary.planted["q492"], summary.defects["q492"] = dict(planted), {}
    listed, planted, listed_tins = participant_list_rows(
        clinicians, participant, params["participant_list"], _rng(seed, performance_year, 4), performance_year, rules)
    summary.planted["participant_list"], summary.defects["participant_list"] = dict(planted), {}
    partner_specialties = set(params["ia_pi"]["cca_partner_specialties"])
    partner_pool = sorted({c["tin"] for c in clinicians if c["specialty_code"] in partner_specialties})
    attestation, planted, defects = _attestation_rows(listed_tins, partner_pool, params["ia_pi"],
                                                      _rng(seed, performance_year, 3), performance_year, rules)
    summary.planted["ia_pi_attestation"], summary.defects["ia_pi_attestation"] = dict(planted), dict(defects)

    list_header = (*IDENTITY_COLUMNS,
                   *(flag_column(year, kind) for year in LIST_YEARS for kind in ("PARTICIPANT", "SMALLPRACTICE")))
    for feed, header, rows in (("q220", Q220_COLUMNS, q220), ("q492", Q492_COLUMNS, q492),
                               ("ia_pi_attestation", ATTESTATION_COLUMNS, attestation),
                               ("participant_list", list_header, listed)):
        summary.rows[feed] = _write_csv(paths[feed], tuple(header), rows)
        summary.files[feed] = paths[feed]
    return summary
