#!/usr/bin/env bash
# Runs Molecule scenarios JOBS at a time (each has its own test host and Docker volume): each
# one's log goes to LOG_DIR/molecule-<scenario>.log; a passed one prints its pytest summary, a
# failed one the tail of its log, and the exit status is non-zero when any failed.
# Usage: scripts/molecule-scenarios.sh LOG_DIR JOBS ACTION SCENARIO...   (ACTION: test, converge, ...)
# The name @checks stands for `make checks` (lint, sanity, unit, prometheus-rules, integration; log:
# LOG_DIR/checks.log): `make test` runs them as one job of the pool, beside the scenarios.
set -euo pipefail
(($# >= 4)) || { echo "usage: $0 LOG_DIR JOBS ACTION SCENARIO..." >&2; exit 2; }
log_dir=$1 jobs=$2 action=$3
shift 3
mkdir -p "$log_dir"

run_one() {
  local scenario=$1 log="$log_dir/molecule-$1.log" start
  start=$(date +%s)
  if [[ $scenario == @checks ]]; then
    log="$log_dir/checks.log"
    if make --no-print-directory checks >"$log" 2>&1; then
      printf '%s\n' "=== make checks: passed in $(($(date +%s) - start)) s
$(grep -aE '[0-9]+ passed|^(yamllint|ansible-lint|scripts/sanity)' "$log" || true)"
    else
      printf '%s\n' "=== make checks: FAILED after $(($(date +%s) - start)) s (log: $log)
$(tail -150 "$log")"
      return 1
    fi
    return 0
  fi
  # Each report is printed in one write, so parallel scenarios do not interleave their lines.
  if molecule "$action" -s "$scenario" >"$log" 2>&1; then
    printf '%s\n' "=== molecule $action -s $scenario: passed in $(($(date +%s) - start)) s
$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -aE '[0-9]+ passed' | tail -1 || true)"
  else
    printf '%s\n' "=== molecule $action -s $scenario: FAILED after $(($(date +%s) - start)) s (log: $log)
$(sed 's/\x1b\[[0-9;]*m//g' "$log" | tail -150)"
    return 1
  fi
}
export -f run_one
export log_dir action
status=0
printf '%s\n' "$@" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {} || status=$?
# Last, so that the end of a long CI output names them: each failed scenario's failed tests and
# their assertion lines (the log's tail above has the rest).
if ((status != 0)); then
  for scenario in "$@"; do
    log="$log_dir/molecule-$scenario.log"
    [[ -f $log ]] && grep -aq "Executed: Failed" "$log" || continue
    echo "=== FAILED scenario $scenario: its failed tests"
    sed 's/\x1b\[[0-9;]*m//g; s/^ *│ \{0,1\}//' "$log" \
      | awk '/short test summary info/ {on = 1} on {print} on && /[0-9]+ (failed|passed|error)/ {on = 0}
             /^E  / && n++ < 40 {print}' || true
  done
fi
exit "$status"
