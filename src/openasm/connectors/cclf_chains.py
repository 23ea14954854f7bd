"""CCLF beneficiary cross-walk and debit/credit claim chains, expressed in the canonical version model.

MBI cross-walk (CCLF Information Packet v38 §3.1, §5.1.1): every MBI found as a previous identifier in CCLF9
is replaced by the current one (the packet's MR_MBI), following chains of changes.

Debit/credit chains (packet §4.4, §5.1.2, §5.2): CCLF carries every version of a claim. Related claims share a
natural key: Part A (billing CCN, from date, thru date, MR_MBI), Part B (claim control number, MR_MBI), Part D
(the six PDE key fields, MR_MBI). A cancellation (CLM_ADJSMT_TYPE_CD 1) is an unsigned copy of the claim it
voids; the packet pairs each cancellation with an original or adjustment and keeps the unpaired claims as the
final action claims (there can be several). openasm pairs them the same way, one to one, within the natural
key and the same claim amount, in processing order ("pick one" where the packet says the pairing is
ambiguous), and writes the result in canonical terms: a cancellation's `original_claim_id` is the claim it
voids; originals and adjustments point at nothing, so each unpaired one is its own final action claim. A
cancellation with no claim to pair keeps no target (it voids nothing) and is counted in the connector notes.
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

MAX_MBI_CHAIN = 5


def current_mbi_map(*, crosswalk: ir.Table) -> ir.Table:
    """One row per previous MBI: `_previous_id` -> `_current_id`, chains followed (A -> B, B -> C gives A -> C).
    Where one previous MBI names two current MBIs the greater is taken (the packet has one current per bene)."""
    pairs = crosswalk.filter(crosswalk._previous_id.notnull() & crosswalk._current_id.notnull()
                             & (crosswalk._previous_id != crosswalk._current_id))
    pairs = pairs.group_by("_previous_id").agg(_current_id=pairs._current_id.max())
    for _ in range(MAX_MBI_CHAIN):
        hop = pairs.select(_hop_from=pairs._previous_id, _hop_to=pairs._current_id)
        joined = pairs.left_join(hop, pairs._current_id == hop._hop_from)
        pairs = joined.select("_previous_id", _current_id=joined._hop_to.fill_null(joined._current_id))
    return pairs


def apply_mbi_map(table: ir.Table, mbi_map: ir.Table, column: str = "bene_id") -> ir.Table:
    """`column` replaced by the current MBI where the cross-walk lists it as a previous one."""
    renamed = mbi_map.select(_xw_previous=mbi_map._previous_id, _xw_current=mbi_map._current_id)
    joined = table.left_join(renamed, table[column] == renamed._xw_previous)
    return joined.mutate(**{column: joined._xw_current.fill_null(joined[column])}).drop("_xw_previous", "_xw_current")


def pair_cancellations(*, versions: ir.Table) -> ir.Table:
    """Pair each cancellation with the claim it voids (packet §5.2).

    Input grain: one row per claim id with `claim_id`, `_family` (natural key as text), `_kind` (original,
    adjustment, cancel or a code that is none of these), `_amount_key` (the claim's unsigned amount as text)
    and `_processed` (date). Output: `claim_id`, `original_claim_id` (the voided claim, cancellations only).
    """
    ranked = versions.mutate(_is_cancel=(versions._kind == "cancel").fill_null(False))
    ranked = ranked.mutate(_pair_rank=ibis.row_number().over(ibis.window(
        group_by=[ranked._family, ranked._amount_key, ranked._is_cancel],
        order_by=[ranked._processed.asc(nulls_first=True), ranked.claim_id.asc()])))
    cancels = ranked.filter(ranked._is_cancel)
    targets = ranked.filter(ranked._kind.isin(["original", "adjustment"]).fill_null(False)).select(
        _t_family=ranked._family, _t_amount=ranked._amount_key, _t_rank=ranked._pair_rank,
        _t_claim_id=ranked.claim_id)
    matched = cancels.left_join(targets, (cancels._family == targets._t_family)
                                & (cancels._amount_key == targets._t_amount) & (cancels._pair_rank == targets._t_rank))
    paired = matched.select("claim_id", original_claim_id=matched._t_claim_id)
    others = ranked.filter(~ranked._is_cancel).select("claim_id", original_claim_id=ibis.null("string"))
    return paired.union(others)


def family_key(*parts: ir.Value) -> ir.StringValue:
    """A natural key as one text value (null parts kept distinct from empty ones)."""
    return ibis.literal("|").join([p.cast("string").fill_null("\u2205") for p in parts])


def amount_key(amount: ir.NumericValue) -> ir.StringValue:
    """An unsigned amount in cents as text: a cancellation repeats the voided claim's amounts unsigned."""
    return (amount.abs() * 100).round().cast("int64").cast("string").fill_null("none")


def processed_date(records: ir.Table) -> ir.StringValue:
    """CCLF packet §3.4: the IDR load date orders versions and controls run-out; the effective date stands in."""
    return records._idr_load_date.fill_null(records._effective_date)


def with_pairs(records: ir.Table, family: ir.StringValue, kind: ir.StringValue,
               claim_amount: Callable[[ir.Table], ir.StringValue]) -> ir.Table:
    """Records plus `original_claim_id` from pairing cancellations within their natural key (packet §5.2).
    `claim_amount` aggregates a claim's records to its amount key (an aggregate, not a window over the rows).
    Only claims that share a natural key with a cancellation can pair (`_pairing_claims`), so only they are
    aggregated to claim versions: a national delivery is mostly originals with nothing to pair."""
    versions = records.mutate(_family=family, _kind=kind.fill_null("original"),
                              _processed=processed_date(records).try_cast("date"))
    versions = versions.semi_join(_pairing_claims(versions), "claim_id")
    versions = versions.group_by("claim_id").agg(
        _family=versions._family.min(), _amount_key=claim_amount(versions), _kind=versions._kind.min(),
        _processed=versions._processed.min())
    pairs = pair_cancellations(versions=versions)
    pairs = pairs.filter(pairs.original_claim_id.notnull())
    pairs = pairs.select(_pair_claim_id=pairs.claim_id, original_claim_id=pairs.original_claim_id)
    joined = records.left_join(pairs, records.claim_id == pairs._pair_claim_id)
    return joined.drop("_pair_claim_id")


def _pairing_claims(versions: ir.Table) -> ir.Table:
    """The claims whose versions can take part in a pairing: every claim with a record in a natural key that a
    record of a cancelling claim carries. A claim's key and kind are taken over its records (`with_pairs`), so
    this is a superset of the claims in keys with a cancellation, and it holds every record of those claims."""
    cancelling = versions.filter(versions._kind == "cancel").select("claim_id").distinct()
    keys = versions.semi_join(cancelling, "claim_id").select("_family").distinct()
    return versions.semi_join(keys, "_family").select("claim_id").distinct()
