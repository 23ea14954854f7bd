#!/usr/bin/env bash
# The fqm-execution differential of issue 10, end to end (needs node + npm; ../shared/tools/fqm-oracle/setup.sh once):
# a synthetic world, its FHIR export without planted defects, the boundary (UTC offsets) and date-only
# perturbations, each run through openasm and fqm-execution 1.8.6, then one agreement table.
#   scripts/fqm_oracle/differential.sh WORK [BENES=16000] [SEED=7]
# Run from the project root with PYTHON pointing at the project's venv Python (default .venv/bin/python).
set -euo pipefail
W=$(mkdir -p "$1" && realpath "$1"); BENES=${2:-16000}; SEED=${3:-7}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ORACLE=${ORACLE:-$ROOT/../shared/tools/fqm-oracle}
PY=${PYTHON:-$ROOT/.venv/bin/python}
export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
PY=$(realpath "$PY"); OA=$(dirname "$PY")/openasm  # the venv's entry point (diff.sh runs $OPENASM as one command)
[ -x "$OA" ] || { echo "no openasm next to $PY" >&2; exit 1; }
$OA synth --benes "$BENES" --seed "$SEED" --years 2024-2027 --out "$W/world"
$PY "$ROOT/scripts/fqm_oracle/export.py" "$W/world" "$W/fhir_base" --py 2027 --seed 1
for mode in boundary dateonly; do
  $PY "$ORACLE/mutate_fhir.py" "$W/fhir_base" "$W/fhir_$mode" --mode "$mode" --year 2027
done
for variant in base boundary dateonly; do
  OPENASM="$OA" PYTHON="$PY" "$ORACLE/diff.sh" "$W/fhir_$variant" "$W/d_$variant" 2027
  ORACLE="$ORACLE" PYTHON="$PY" "$ROOT/scripts/fqm_oracle/medref.sh" "$W/d_$variant" 2027
done
$PY "$ROOT/scripts/fqm_oracle/agreement.py" "$W/d_base" "$W/d_boundary" "$W/d_dateonly"
