#!/usr/bin/env bash
# Train the fixed synthetic benchmark (recipes in this folder, 2 seeds each) and check the
# results against benchmarks/reference/ci.json. With --update, rewrite that reference from
# the fresh results instead (commit the new file with a message saying why the numbers moved).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${MERBENCH_CI_OUT:-$(mktemp -d)}
for recipe in benchmarks/ci/*.yaml; do
  for seed in 0 1; do
    .venv/bin/merbench train "$recipe" --out "$OUT" --quiet --set train.seed=$seed --set train.threads=1 >/dev/null
  done
done
if [ "${1:-}" = "--update" ]; then
  .venv/bin/merbench check "$OUT" --against benchmarks/reference/ci.json --update
else
  .venv/bin/merbench check "$OUT" --against benchmarks/reference/ci.json
fi
