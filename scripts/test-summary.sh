#!/usr/bin/env bash
# The closing summary of `make test`: one line per runner that ran (written by run-unit.sh,
# tap-count.sh and the fuzz target into RESULTS), then the total, last:
#   test: N passed, N failed, N skipped
#   test-summary.sh RESULTS EXIT_CODE_OF_THE_RUN DEADLINE_S
set -u
dir=$1 rc=$2 deadline=$3
passed=0 failed=0 skipped=0 missing=0
echo "== summary"
for step in unit unit-san fuzz e2e e2e-san e2e-pg; do
  f="$dir/$step.txt"
  if [ -f "$f" ]; then
    line=$(cat "$f")
    echo "  $line"
    read -r p f_ s <<<"$(printf '%s\n' "$line" | sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')"
    passed=$((passed + p)) failed=$((failed + f_)) skipped=$((skipped + s))
  else
    echo "  $step: did not run"
    missing=1
  fi
done
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "  the whole run passed its deadline of ${deadline}s and was stopped"
fi
# A run that failed without a failed test (a build error, a deadline) still reads as failed,
# and so does a run that claims success without the counts of every runner.
if [ "$rc" -eq 0 ] && [ "$missing" -ne 0 ]; then
  echo "  a runner left no counts although the run succeeded"
  rc=1
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "test: $passed passed, $failed failed, $skipped skipped"
exit "$rc"
