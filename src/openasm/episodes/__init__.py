"""Episode grouper for the chronic-condition cost measures COST_HF_1 and COST_LBP_1 (ebcm.md §3-§4)."""
