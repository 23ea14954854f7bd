"""Runners: the only place that executes stages, materialises tables and writes a run folder.

The data's journey, one runner per stage (`run_<stage>(engine, rules, run_dir, inputs, step=None)
-> StageResult`, executed and recorded in the manifest by `execute.execute_stage`, which keeps the run folder
consistent and removes results that `lineage` says are stale):

    ingest.run_ingest                  canonical claims tables (or CCLF, BCDA, Blue Button, CCW research files
                                       through connectors) → checked tables + quarantine
    remittance.run_ingest_835          X12 835 remittances → remittance lines + the practice's Part B base
    summary.run_summary                final action, spend summaries, quarantine reasons
    episodes.run_episodes              cost-measure episodes, exclusions, cost lines, attribution
    cost.run_cost                      risk adjustment, measure scores, achievement points
    participation.run_participation    §512.710 participant table (one or several performance years)
    participant_list.run_participant_list_comparison   against the CMS participant list
    fhir_ingest.run_fhir_ingest        FHIR R4 → clinical tables + quarantine
    quality.run_quality                eCQMs, feeds, aggregates, gap lists
    score.run_score                    quality and cost categories, IA/PI, final score
    payment.run_payment                adjustment factors, dollars, 2027–2031 projection

`world.participants_of_world` runs ingest and participation in memory on a synthetic world;
`world.write_world_format` writes a synthetic world in a source format (the 835 from its final-action claims).
"""
