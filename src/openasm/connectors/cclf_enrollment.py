"""Monthly enrollment derived from CCLF8 when no enrollment file is supplied beside the CCLF files.

CCLF has no monthly enrollment (CCLF Information Packet v38 §2.4.1: CCLF8 holds the current MBI, Part A and B
entitlement begin dates, the most recent dual status, Medicare status, hospice dates and death). Every
beneficiary gets one row per calendar month of the years the claims cover:
- `has_part_a` / `has_part_b`: the month ends on or after the Part A / Part B begin date and starts on or
  before the death date;
- `is_medicare_advantage` false: CCLF beneficiaries are assigned/aligned fee-for-service beneficiaries;
- `has_part_d`: the beneficiary has a CCLF7 record (packet §3.3: Part D data exist only for PDP enrollees);
- `dual_status_code`, `is_esrd`: CCLF8's current values, for every month;
- `is_hospice`: the month overlaps a BENE_RNG_BGN_DT..BENE_RNG_END_DT range of any CCLF8 row;
- `is_msp` unknown (null).
Each row names the CCLF8 record it came from. These are assumptions; `enrollment_limitations` states them
and a user with MBSF or assignment-list data supplies `enrollment.csv|parquet` instead.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from openasm.connectors.base import Limitation
from openasm.engine import ROW_NUMBER, SOURCE_FILE


def enrollment_limitations() -> list[Limitation]:
    return [Limitation(
        "enrollment", "all columns",
        "CCLF has no monthly enrollment; it was derived from CCLF8 (Part A/B begin dates, death, current dual and "
        "ESRD status, hospice range), with no Medicare Advantage months, Part D for beneficiaries with CCLF7 "
        "records and Medicare-secondary-payer status unknown.",
        "Enrollment exclusions (MA, continuous A/B, MSP, Part D) rest on these assumptions; supply "
        "enrollment.csv or enrollment.parquet beside the CCLF files to use real monthly enrollment.")]


def claim_years(claim_dates: list[ir.Table]) -> tuple[int, int] | None:
    """The first and last calendar year of the claims' from dates (text), or None without claims."""
    if not claim_dates:
        return None
    dates = ibis.union(*claim_dates) if len(claim_dates) > 1 else claim_dates[0]
    typed = dates.select(_d=dates._date.try_cast("date"))
    span = typed.aggregate(first=typed._d.min(), last=typed._d.max()).to_pyarrow().to_pylist()[0]
    if span["first"] is None:
        return None
    return span["first"].year, span["last"].year


def month_table(first_year: int, last_year: int) -> ir.Table:
    """One row per month: year_month (YYYY-MM), first and last day."""
    rows = []
    for year in range(first_year, last_year + 1):
        for month in range(1, 13):
            start = dt.date(year, month, 1)
            end = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
            rows.append({"year_month": f"{year:04d}-{month:02d}", "_month_start": start, "_month_end": end})
    return ibis.memtable(rows)


def derive_enrollment(*, bene: ir.Table, codes: dict, claim_dates: list[ir.Table],
                      part_d_benes: ir.Table | None) -> ir.Table:
    """Raw enrollment rows (canonical names, text values) derived from CCLF8 records (module docstring)."""
    years = claim_years(claim_dates)
    months = month_table(*years) if years is not None else month_table(1900, 1900).limit(0)
    first = ibis.row_number().over(ibis.window(group_by=bene.bene_id, order_by=[bene[SOURCE_FILE], bene[ROW_NUMBER]]))
    people = bene.filter(bene.bene_id.notnull()).mutate(_first=first)
    people = people.filter(people._first == 0)
    hospice = bene.filter(bene._hospice_from.notnull()).select(
        _h_bene=bene.bene_id, _h_from=bene._hospice_from.try_cast("date"),
        _h_thru=bene._hospice_thru.try_cast("date"))
    grid = people.cross_join(months)
    grid = grid.left_join(hospice, (grid.bene_id == hospice._h_bene) & (hospice._h_from <= grid._month_end)
                          & (hospice._h_thru.fill_null(ibis.literal(dt.date(9999, 12, 31))) >= grid._month_start))
    grid = grid.group_by([c for c in people.columns if c != "_first"] + ["year_month", "_month_start",
                                                                           "_month_end"]).agg(
        _in_hospice=grid._h_bene.count() > 0)
    if part_d_benes is not None:
        with_d = part_d_benes.filter(part_d_benes.bene_id.notnull()).select(_d_bene=part_d_benes.bene_id).distinct()
        grid = grid.left_join(with_d, grid.bene_id == with_d._d_bene)
        has_d = grid._d_bene.notnull()
    else:
        has_d = ibis.literal(False)
    death = grid.death_date.try_cast("date")
    alive = death.isnull() | (grid._month_start <= death)

    def entitled(begin: ir.StringValue) -> ir.BooleanValue:
        start = begin.try_cast("date")
        return (start.notnull() & (start <= grid._month_end) & alive).fill_null(False)

    def text(flag: ir.BooleanValue) -> ir.StringValue:
        return ibis.ifelse(flag, "true", "false")

    return grid.select(
        "bene_id", "year_month",
        has_part_a=text(entitled(grid._part_a_from)), has_part_b=text(entitled(grid._part_b_from)),
        has_part_d=text(has_d & alive), is_medicare_advantage=ibis.literal("false"),
        dual_status_code=grid._dual_status,
        is_esrd=ibis.ifelse(grid._medicare_status.isin(codes["esrd_status"]), "true", "false"),
        is_hospice=text(grid._in_hospice), is_msp=ibis.null("string"),
        **{ROW_NUMBER: grid[ROW_NUMBER], SOURCE_FILE: grid[SOURCE_FILE]},
    )
