"""Resolve claim adjustment chains to final-action claims (CCLF convention: the latest version wins).

Adjustments and cancels arrive as their own claims pointing at the claim they modify. A claim family is an
original and every version that points to it, directly or through earlier versions. The family's final
version is the one processed last (ties: cancel over adjustment over original, then the higher claim id).
If that version is a cancel, the whole family is void. Every line keeps a status, so nothing disappears:
`final`, `superseded` (an earlier version of a claim that has a later one), `cancelled` (a version of a
voided claim), or `cancel_record` (the cancel itself).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

# Deepest chain original -> adjustment -> adjustment ... resolved by repeated self-joins.
MAX_ADJUSTMENT_CHAIN = 6
STATUS_COLUMN = "final_action_status"
VERSION_PRECEDENCE = {"cancel": 2, "adjustment": 1, "original": 0}


def claim_versions(*, claims: ir.Table) -> ir.Table:
    """One row per claim id: adjustment type, what it modifies, processing date, and its family root."""
    processed = (
        claims["claim_processed_date"] if "claim_processed_date" in claims.columns
        else ibis.null("date")
    )
    versions = claims.mutate(_processed=processed).group_by("claim_id").agg(
        adjustment_type=claims["claim_adjustment_type"].fill_null("original").max(),
        modifies_claim_id=claims["original_claim_id"].max(),
        processed_date=ibis._["_processed"].max(),
    )
    versions = versions.mutate(
        family_id=ibis.ifelse(
            (versions.adjustment_type == "original") | versions.modifies_claim_id.isnull(),
            versions.claim_id, versions.modifies_claim_id,
        )
    )
    parents = versions.select(_parent_id=versions.claim_id, _parent_family=versions.family_id)
    for _ in range(MAX_ADJUSTMENT_CHAIN):
        joined = versions.left_join(parents, versions.family_id == parents._parent_id)
        versions = joined.mutate(
            family_id=joined._parent_family.fill_null(joined.family_id)
        ).drop("_parent_id", "_parent_family")
    return versions


def _lines_of_adjusted_claims(*, claims: ir.Table) -> ir.Table:
    """The lines of every claim that may not be `final` of its own family: claims with a line that is not an
    original, and the claims those lines point to. Any other claim is an original nobody modifies, so its
    family is itself alone and it is final; leaving it out changes no other claim's chain or ranking."""
    kind = claims.claim_adjustment_type
    modifying = claims.filter(kind.notnull() & (kind != "original"))
    ids = ibis.union(
        modifying.select(_adjusted_id=modifying.claim_id),
        modifying.select(_adjusted_id=modifying.original_claim_id),
        distinct=True,
    )
    return claims.semi_join(ids, claims.claim_id == ids._adjusted_id)


def status_exceptions(*, claims: ir.Table) -> ir.Table:
    """One row per claim id whose status is not the default (`final`, its own family): every version of an
    adjusted or cancelled claim, and adjustments of originals outside the extract. Columns: `_status_claim_id`,
    `family_id`, `final_action_status`. Most claims are never adjusted, so this is a small fraction of them."""
    versions = claim_versions(claims=_lines_of_adjusted_claims(claims=claims))
    precedence = versions.adjustment_type.cases(*VERSION_PRECEDENCE.items(), else_=0)
    window = ibis.window(
        group_by=versions.family_id,
        order_by=[versions.processed_date.desc(nulls_first=False), precedence.desc(), versions.claim_id.desc()],
    )
    ranked = versions.mutate(_rank=ibis.row_number().over(window))
    final = ranked.filter(ranked._rank == 0).select(
        _final_family=ranked.family_id, _final_claim_id=ranked.claim_id, _family_cancelled=ranked.adjustment_type == "cancel"
    )
    status = ranked.join(final, ranked.family_id == final._final_family)
    status = status.select(
        _status_claim_id=status.claim_id,
        family_id=status.family_id,
        **{
            STATUS_COLUMN: ibis.cases(
                (status.adjustment_type == "cancel", "cancel_record"),
                (status._family_cancelled, "cancelled"),
                (status.claim_id == status._final_claim_id, "final"),
                else_="superseded",
            )
        },
    )
    return status.filter((status[STATUS_COLUMN] != "final") | (status.family_id != status._status_claim_id))


def final_action_columns(*, lines: ir.Table, family: str, status: str) -> ir.Table:
    """Lines whose claim's status is not the default carry it in columns `family` and `status` (null for the
    rest): the same lines with `family_id` and `final_action_status` in their place, defaults filled (own claim
    id, `final`)."""
    return lines.select(
        *[c for c in lines.columns if c not in (family, status)],
        family_id=lines[family].fill_null(lines.claim_id),
        **{STATUS_COLUMN: lines[status].fill_null("final")},
    )


def with_final_action(*, claims: ir.Table, exceptions: ir.Table) -> ir.Table:
    """Every input line with `family_id` and `final_action_status`, looked up in `exceptions`
    (`status_exceptions`)."""
    joined = claims.left_join(exceptions, claims.claim_id == exceptions._status_claim_id)
    lines = joined.select(*claims.columns, _family=joined.family_id, _status=joined[STATUS_COLUMN])
    return final_action_columns(lines=lines, family="_family", status="_status")


def resolve_final_action(*, claims: ir.Table) -> ir.Table:
    """Every input line with `family_id` and `final_action_status` (see module docstring)."""
    return with_final_action(claims=claims, exceptions=status_exceptions(claims=claims))


def final_claims(*, claims_with_status: ir.Table) -> ir.Table:
    """Only the lines of final-action claims."""
    return claims_with_status.filter(claims_with_status[STATUS_COLUMN] == "final")
