"""Scoring stages: category scores (quality, cost) and the final score (asm-model.md §3, §4, §6)."""
