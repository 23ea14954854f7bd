"""Connectors: the files users hold (CCLF, BCDA / Blue Button FHIR, CCW research files, X12 835) mapped to the
canonical tables. Each reads through the engine, returns raw canonical-named tables (`base.SourceTables`) and
hands them to the ordinary ingest checks; layouts are data under `layouts/`."""
