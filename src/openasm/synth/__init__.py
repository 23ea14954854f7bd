"""Seeded synthetic Medicare world in the canonical tables, for the demo, the tests and the benchmarks.

`generate_world(out_dir, benes, seed, first_year, last_year, chunk_benes=25_000, progress=None)` writes
`<out>/<table>/part-NNNNN.parquet` for beneficiary, enrollment, claim_line, claim_diagnosis, pharmacy_claim
(one part per chunk of beneficiaries) and clinician, `<out>/truth/` (planted relationships) and
`<out>/synth_manifest.json` (parameters, row counts, invalid rows by kind, claim versions, rules used).

What is in it (rates are rules files under `rules/params/synth/`, evidence `default` except the ebcm §11.1
national averages, `secondary`):
- beneficiaries with age, sex, dual status, ESRD, deaths, residence (real CBSAs and ZIPs), monthly FFS / MA
  coverage with switchers, Part B and Part D take-up, MSP and hospice months;
- practices (TINs) of every size in those areas, NPIs with valid check digits and Medicare specialty codes,
  some NPIs under two TINs;
- HF and LBP patients managed by a planted TIN/NPI (trigger + confirming E/M within 180 / 60 days), whose
  condition services in each 365-day care year are rescaled to a cost drawn from the ebcm §11.2 mixture
  times the managing clinician's practice-style effect; unrelated care for everyone;
- adjustments, cancels, duplicates, nulls and exactly counted invalid rows for ingest to catch.

The truth table lists the planted E/M managing relationships that the claims realize (at least two
condition E/M visits by that TIN/NPI within the confirm window). The grouper will also, correctly, open LBP
windows for physical-therapy, chiropractic and injection TINs that bill two qualifying services within 60
days; those are care the world generates but not planted relationships.
"""

from openasm.synth.world import WorldSummary, generate_world

__all__ = ["WorldSummary", "generate_world"]
