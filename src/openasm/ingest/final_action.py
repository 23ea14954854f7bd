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


def resolve_final_action(*, claims: ir.Table) -> ir.Table:
    """Every input line with `family_id` and `final_action_status` (see module docstring)."""
    versions = claim_versions(claims=claims)
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
    out = claims.join(status, claims.claim_id == status._status_claim_id)
    return out.drop("_status_claim_id")


def final_claims(*, claims_with_status: ir.Table) -> ir.Table:
    """Only the lines of final-action claims."""
    return claims_with_status.filter(claims_with_status[STATUS_COLUMN] == "final")
