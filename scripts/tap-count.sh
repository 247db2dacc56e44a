#!/usr/bin/env bash
# Reads the closing counts of a node:test TAP report and writes "LABEL: N passed, N failed,
# N skipped" (cancelled tests count as failed, todo as skipped) to $RESULTS/LABEL.txt.
# Exits 1 when the report is missing or has no counts (the run died before it ended), or, under
# CI=true, when a test was skipped.
#   tap-count.sh LABEL TAP_FILE
set -u
label=$1 tap=$2
num() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$tap" 2>/dev/null | tail -n 1; }
pass=$(num pass) fail=$(num fail) cancelled=$(num cancelled) skipped=$(num skipped) todo=$(num todo)
if [ -z "$pass" ] || [ -z "$fail" ]; then
  line="$label: 0 passed, 1 failed, 0 skipped"
  echo "$label: the test runner ended without its closing counts"
  [ -n "${RESULTS:-}" ] && echo "$line" >"$RESULTS/$label.txt"
  exit 1
fi
failed=$((fail + ${cancelled:-0})) skips=$((${skipped:-0} + ${todo:-0}))
line="$label: $pass passed, $failed failed, $skips skipped"
[ -n "${RESULTS:-}" ] && mkdir -p "$RESULTS" && echo "$line" >"$RESULTS/$label.txt"
if [ "$skips" -gt 0 ] && [ "${CI:-}" = true ]; then echo "$label: $skips skipped under CI=true (a failure)"; exit 1; fi
exit 0
