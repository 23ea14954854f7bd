"""openasm: an open reference engine for the CMS Ambulatory Specialty Model (42 CFR 512 Subpart G)."""

__version__ = "0.1.0"
