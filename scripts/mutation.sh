#!/usr/bin/env bash
# Mutation testing of merbench's numeric core with mutmut 3 (docs/testing.md lists the last
# result and every surviving mutant with its reason).
#
#   bash scripts/mutation.sh                  # every entry below, one after the other
#   bash scripts/mutation.sh metrics ranges   # some entries
#   bash scripts/mutation.sh --changed main   # the entries whose source a change since `main` touched
#   bash scripts/mutation.sh --list           # the entries
#
# Each entry mutates one source file (optionally only some of its functions) and runs only the
# fast test files that guard it, in a scratch copy of the working tree under
# build/mutation/<entry> (mutmut works in a copy: the checkout is never edited). mutmut runs, per
# mutant, only the tests that reach the mutated function. Per entry it writes
# build/mutation/<entry>.txt (every mutant's status) and prints killed / survived / score.
# Environment: PYTHON (default .venv/bin/python), MUTATION_JOBS (parallel mutants, default 1),
# MUTATION_NICE (default 10). Exit status 1 when a mutant survives that docs/testing.md does
# not list as equivalent; MUTATION_STRICT=0 reports without failing.
set -euo pipefail -f  # -f: the "*" of an entry is a pattern for mutmut, never a file glob
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
JOBS=${MUTATION_JOBS:-1}
NICE=${MUTATION_NICE:-10}
OUT=$ROOT/build/mutation

# entry | source file | functions to mutate (globs over mutmut's names, "*" = all) | test files
#   [| FUNCTION=REGEX: of FUNCTION, mutate only the lines REGEX matches]
ENTRIES='
metrics      | merbench/metrics.py      | *                                           | tests/test_metrics.py tests/test_metrics_reference.py
ranges       | merbench/ranges.py       | *                                           | tests/test_ranges.py
check        | merbench/check.py        | *                                           | tests/test_check.py
aggregate    | merbench/aggregate.py    | *                                           | tests/test_table_values.py tests/test_aggregate.py tests/test_data_parts.py tests/test_tables.py
significance | merbench/significance.py | *x_confusions__* *x__confusions_of_codes__* *x_scores_from_confusions__* *x_compare__* *x_pair_by_seed__* *x_not_significantly_worse__* *x_check_same_utterances__* | tests/test_significance.py
tables       | merbench/tables.py       | *ǁValueǁtext__* *ǁValueǁrecord__* *ǁTableǁbest__* *x_results_table__* *x_md_escape__* *x_latex_escape__* | tests/test_table_values.py tests/test_tables.py
train_loop   | merbench/train.py        | *x__stops* *x_selection_metric* *x_usual_metric* *x__train__* | tests/test_selection.py tests/test_train.py::test_last_pt_waits_for_its_interval_and_is_written_at_the_stop tests/test_train.py::test_sigterm_stops_after_the_epoch_with_last_pt_and_a_resume_loses_nothing | _train=better\(|bad_epochs|best|_stops|value = valid|isfinite\(value|save_best|state\.epoch, state\.seconds = epoch
'

field() { echo "$1" | cut -d'|' -f"$2" | xargs; }
entry_line() { echo "$ENTRIES" | awk -F'|' -v e="$1" '{k = $1; gsub(/ /, "", k)} k == e'; }
all_entries() { echo "$ENTRIES" | awk -F'|' 'NF > 1 {k = $1; gsub(/ /, "", k); print k}'; }

wanted=()
case "${1:-}" in
  --list) echo "$ENTRIES" | sed '/^$/d'; exit 0 ;;
  --changed)
    base=${2:?--changed needs a git revision, e.g. main}
    if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
      echo "mutation: skipped: no revision '$base' in this clone (a shallow clone?); set MUTATION_BASE"
      exit 0
    fi
    changed=$(git diff --name-only "$base" --)
    for e in $(all_entries); do
      src=$(field "$(entry_line "$e")" 2)
      if echo "$changed" | grep -qxF "$src"; then wanted+=("$e"); fi
    done
    if [ ${#wanted[@]} -eq 0 ]; then echo "mutation: no numeric-core module changed since $base"; exit 0; fi ;;
  "") mapfile -t wanted < <(all_entries) ;;
  *) wanted=("$@") ;;
esac

"$PYTHON" -c "import mutmut" 2>/dev/null || { echo "error: mutmut is not installed (pip install '.[mutation]')" >&2; exit 2; }
MUTMUT=$(dirname "$PYTHON")/mutmut
for entry in "${wanted[@]}"; do
  if [ -z "$(entry_line "$entry")" ]; then
    echo "error: no mutation entry '$entry' (entries: $(all_entries | xargs))" >&2; exit 2
  fi
done
mkdir -p "$OUT"
: > "$OUT/summary.md"
status=0
for entry in "${wanted[@]}"; do
  line=$(entry_line "$entry")
  src=$(field "$line" 2); funcs=$(field "$line" 3); tests=$(field "$line" 4)
  only_lines=$(echo "$line" | cut -d'|' -f5- | xargs -0 | sed 's/^ *//; s/ *$//')
  work=$OUT/$entry
  rm -rf "$work"; mkdir -p "$work"
  # The working tree as git sees it (tracked and new files, nothing ignored), without build/.
  git ls-files -co --exclude-standard -z | grep -zv '^build/' | (cd "$ROOT" && xargs -0 cp --parents -t "$work" 2>/dev/null) || true
  # mutmut reads [mutmut] from setup.cfg when pyproject.toml has no [tool.mutmut].
  {
    echo "[mutmut]"
    echo "source_paths = merbench"
    echo "only_mutate = $src"
    echo "also_copy ="
    for f in tests recipes benchmarks; do echo "    $f"; done
    printf 'pytest_add_cli_args =\n    -p\n    no:cacheprovider\n'

    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do [ -e "$work/${t%%::*}" ] && echo "    $t"; done
    echo "use_git_change_detection = false"
  } > "$work/setup.cfg"
  if [ -n "$only_lines" ]; then
    "$PYTHON" scripts/mutation_report.py --restrict "$work/$src" "${only_lines%%=*}" "${only_lines#*=}"
  fi
  patterns=()
  if [ "$funcs" != "*" ]; then
    mod=$(echo "${src%.py}" | tr / .)
    for f in $funcs; do patterns+=("$mod.$f"); done
  fi
  echo "== mutation: $entry ($src; tests: $tests)"
  start=$(date +%s)
  (cd "$work" && PYTHONPATH= nice -n "$NICE" "$MUTMUT" run --max-children "$JOBS" "${patterns[@]}" > "$OUT/$entry.log" 2>&1) || {
    echo "error: mutmut failed on $entry; see $OUT/$entry.log" >&2; tail -20 "$OUT/$entry.log" >&2; status=2; continue; }
  seconds=$(( $(date +%s) - start ))
  (cd "$work" && "$MUTMUT" results --all true > "$OUT/$entry.txt" 2>&1) || true
  [ -z "$only_lines" ] || patterns+=("lines:$only_lines")
  "$PYTHON" scripts/mutation_report.py "$entry" "$OUT/$entry.txt" "$seconds" "$work" "${patterns[@]}" \
    || [ "${MUTATION_STRICT:-1}" = 0 ] || status=1
done
exit $status
