#!/usr/bin/env bash
# fqm-execution 1.8.6 throws on MedicationRequest.medicationReference for CMS144, CMS156, CMS2 and CMS69 (`fqm error`
# rows of diff.sh). Evaluate those patients again on copies with the Medication's code inlined (what those measures'
# ELM means: it follows the reference), merge the results into fqm_merged.csv and compare again.
#   scripts/fqm_oracle/medref.sh VARIANT_DIR [PY=2027]      (a d_<variant> folder written by diff.sh)
set -euo pipefail
D=$(realpath "$1"); PY=${2:-2027}
ORACLE=${ORACLE:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/tools/fqm-oracle}
PYBIN=${PYTHON:-python3}
awk -F, 'NR > 1 && $0 ~ /fqm error/ {print $3}' "$D/cmp_diff.csv" | sort -u > "$D/medref_ids.txt"
KEYS=CMS144-Q008,CMS156-Q238,CMS2-Q134,CMS69-Q128
if [ -s "$D/medref_ids.txt" ]; then
  rm -rf "$D/bundles_inlined"
  "$PYBIN" "$ORACLE/inline_medref.py" "$D/bundles" "$D/bundles_inlined" "$D/medref_ids.txt"
  TRUST=1 node "$ORACLE/run_fqm.js" "$D/bundles_inlined" "$D/fqm_inlined.csv" "$PY" 1000 "$KEYS" 2>&1 \
    | grep -v "Failed to locate" > "$D/fqm_inlined.log"
  { cat "$D/fqm.csv"; tail -n +2 "$D/fqm_inlined.csv"; } > "$D/fqm_merged.csv"
else
  cp "$D/fqm.csv" "$D/fqm_merged.csv"
fi
echo "$(wc -l < "$D/medref_ids.txt") patients re-evaluated with inlined medication codes"
"$PYBIN" -W ignore "$ORACLE/compare.py" "$D/run" "$D/fqm_merged.csv" "$D/bundles" "$D/cmp" | tee "$D/cmp.txt"
