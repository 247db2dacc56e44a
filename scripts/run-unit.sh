#!/usr/bin/env bash
# Runs each unit-test binary given and prints one closing line: "unit: N passed, N failed".
set -u
passed=0 failed=0
for t in "$@"; do
  if out=$("$t" 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    printf '%s\n' "$out"
    echo "FAILED: $t"
  fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
