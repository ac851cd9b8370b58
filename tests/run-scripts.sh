#!/bin/sh
# Host-side script tests: every tests/scripts/*.sh, each exits non-zero on failure.
pass=0
fail=0
for t in tests/scripts/*.sh; do
	[ -e "$t" ] || continue
	echo "== $t"
	shell=sh
	head -n 1 "$t" | grep -q bash && shell=bash
	if "$shell" "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAILED: $t"; fi
done
echo "scripts: $pass passed, $fail failed"
[ "$fail" = 0 ]
