#!/bin/sh
# Run every Check unit-test binary; each prints Check's own summary line. A test that
# cannot run here prints `SKIP name: reason` (tests/unit/unit.h); they are counted.
# Ends with `unit: N suites passed, M failed; C checks; S skipped`.
out=$(mktemp)
trap 'rm -f "$out"' EXIT
pass=0
fail=0
checks=0
skips=0
for t in "$@"; do
	echo "== $t"
	if CK_FORK=yes "$t" >"$out" 2>&1; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
	cat "$out"
	n=$(sed -n 's/^[0-9]*%: Checks: \([0-9]*\),.*/\1/p' "$out" | tail -n 1)
	checks=$((checks + ${n:-0}))
	skips=$((skips + $(grep -c '^SKIP ' "$out")))
done
echo "unit: $pass suites passed, $fail failed; $checks checks; $skips skipped$([ "$skips" = 0 ] || echo ' (SKIP lines above)')"
[ "$fail" = 0 ]
