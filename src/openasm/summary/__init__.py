"""Descriptive summaries of ingested claims (spend by setting and specialty, claim versions)."""
