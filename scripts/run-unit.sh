#!/usr/bin/env bash
# Runs each cmocka unit-test binary given, each with a deadline, and counts the tests inside
# them. Prints one closing line, "LABEL: N passed, N failed, N skipped", and writes it to
# $RESULTS/LABEL.txt when RESULTS is set. A binary that crashes, times out or exits non-zero
# without a failed test counts as one failed test. Under CI=true a skipped test is a failure:
# a skip there means the machine lacks something the suite needs.
#   UNIT_LABEL (default unit), UNIT_TIMEOUT_S (default 300), RESULTS (optional)
set -u
label=${UNIT_LABEL:-unit}
deadline=${UNIT_TIMEOUT_S:-300}
passed=0 failed=0 skipped=0 bad=0
count() { printf '%s\n' "$1" | sed -n "s/^\[  $2 *\] \([0-9]*\) test.*/\1/p" | head -n 1; }
for t in "$@"; do
  out=$(timeout -k 5 "$deadline" "$t" 2>&1)
  rc=$?
  p=$(count "$out" PASSED) f=$(count "$out" FAILED) s=$(count "$out" SKIPPED)
  p=${p:-0} f=${f:-0} s=${s:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
  if [ "$f" -gt 0 ]; then
    printf '%s\n' "$out"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "TIMED OUT after ${deadline}s: $t"; fi
    echo "FAILED: $t"
    bad=1
  elif [ "$s" -gt 0 ]; then
    printf '%s\n' "$out" | grep -A20 'SKIPPED' | head -n 20
    if [ "${CI:-}" = true ]; then echo "SKIPPED under CI=true (a failure): $t"; bad=1; fi
  fi
done
line="$label: $passed passed, $failed failed, $skipped skipped"
echo "$line"
if [ -n "${RESULTS:-}" ]; then mkdir -p "$RESULTS" && echo "$line" >"$RESULTS/$label.txt"; fi
[ "$bad" -eq 0 ]
