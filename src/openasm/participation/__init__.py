"""ASM participation (42 CFR 512.710; asm-model.md §2): who is a participant in each performance year and why.

Modules: `specialty_plurality` (plurality specialty of Part B claims), `cohort` (specialty → HF / LBP cohort),
`selected_area` (practice CBSA and the selected-area list), `episode_volume` (attributed episodes in the
eligibility year), `lock_in` (participant for the rest of the model), `participants` (composition into the
participant table), `participant_list` (CMS list intake, lookup, comparison), `run` and `cli` (execution).
"""

from openasm.participation.participants import (
    PARTICIPANT_COLUMNS,
    evaluate_eligibility,
    select_participants,
)

__all__ = ["PARTICIPANT_COLUMNS", "evaluate_eligibility", "select_participants"]
