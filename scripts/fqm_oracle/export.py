"""A synthetic FHIR export for the fqm-execution differential (../shared/tools/fqm-oracle): the same generator as
`openasm synth-fhir`, without the planted defects (the oracle's bundle builder reads every NDJSON line as JSON).

    python scripts/fqm_oracle/export.py WORLD_DIR OUT_DIR [--py 2027] [--seed 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from openasm.rules import load_rules
from openasm.synth.fhir_export import generate_fhir_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("world", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--py", type=int, default=2027)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rules = load_rules(args.py)
    care = dict(rules.value("synth.fhir_care"))
    rules = rules.with_overrides({"synth.fhir_care": {**care, "defects": {kind: 0.0 for kind in care["defects"]}}})
    summary = generate_fhir_export(args.world, args.out, args.py, seed=args.seed, rules=rules)
    print(f"{summary.resources:,} resources, patients {summary.patients}; scenarios {dict(sorted(summary.scenarios.items()))}")


if __name__ == "__main__":
    main()
