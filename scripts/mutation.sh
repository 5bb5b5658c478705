#!/usr/bin/env bash
# Mutation testing of the domain rules (docs/testing.md): mutmut mutates the rule modules listed in pyproject.toml
# ([tool.mutmut]) and runs tests/unit/ against each mutant, then scripts/mutation_report.py prints the score per
# module and every surviving mutant that is not a known equivalent. Slow (12 minutes on a quiet 2-core machine), so
# not part of .ci/run.
#
#   bash scripts/mutation.sh            a fresh run (mutants/ is rebuilt)
#   MUTMUT_CHILDREN=2 bash scripts/mutation.sh
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf mutants  # mutmut keeps earlier verdicts; a fresh copy scores the code and tests as they are now
time nice -n 19 mutmut run --max-children "${MUTMUT_CHILDREN:-1}"
python3 scripts/mutation_report.py
