"""Build small CCLF files for golden tests from field values (the layouts pad them)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from openasm.connectors.layout import fixed_width_layouts
from openasm.synth.fixed_width import decimal_text, format_records, write_lines

LAYOUTS = fixed_width_layouts("cclf_records")
AMOUNT_WIDTH = {"CLM_PMT_AMT": 17, "CLM_LINE_CVRD_PD_AMT": 15, "CLM_LINE_ALOWD_CHRG_AMT": 17}


def cclf_name(number: str, runout: bool = False, delivered: str = "250110", part: int = 0) -> str:
    return f"P.A0001.ACO.ZC{number}{'R' if runout else 'Y'}24.D{delivered}.T{part:07d}"


def write_cclf_file(folder: Path, file_type: str, rows: list[dict], runout: bool = False,
                    delivered: str = "250110", part: int = 0) -> Path:
    """`rows` of {field: value}; amounts given as numbers are formatted to their field."""
    layout = LAYOUTS[file_type]
    columns = {}
    for name in {k for row in rows for k in row}:
        values = [row.get(name) for row in rows]
        if name in AMOUNT_WIDTH and any(isinstance(v, (int, float)) for v in values):
            columns[name] = decimal_text(pa.array(values, pa.float64()), AMOUNT_WIDTH[name])
        else:
            columns[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    path = Path(folder) / cclf_name(file_type[4:], runout, delivered, part)
    write_lines(path, format_records(layout, columns, len(rows)))
    return path


def bene(mbi: str, **extra) -> dict:
    """A CCLF8 row: born 1950-03-01, female, entitled to A and B from 2015-03-01."""
    return {"BENE_MBI_ID": mbi, "BENE_DOB": "1950-03-01", "BENE_SEX_CD": "2", "BENE_ORGNL_ENTLMT_RSN_CD": "0",
            "BENE_MDCR_STUS_CD": "10", "BENE_DUAL_STUS_CD": "00", "BENE_FIPS_STATE_CD": "36",
            "BENE_FIPS_CNTY_CD": "061", "BENE_ZIP_CD": "10016", "BENE_PART_A_ENRLMT_BGN_DT": "2015-03-01",
            "BENE_PART_B_ENRLMT_BGN_DT": "2015-03-01", **extra}
