#!/bin/bash
# minivmm - the test phases of `make check`, one after another (MAKE from the Makefile).
# Every phase runs even when an earlier one failed; the end is a summary with each phase's
# time and its own result line (unit: ..., fuzz: ..., scripts: ..., e2e: ...), and the
# exit status says whether all passed.
# usage: MAKE=make tests/check.sh PHASE...
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
logs=${MINIVMM_BUILD:-build}
mkdir -p "$logs"
start=$(date +%s)
summary=""
failed=""
for phase in "$@"; do
	echo "== $phase"
	s=$(date +%s)
	${MAKE:-make} "$phase" 2>&1 | tee "$logs/check-$phase.log"
	rc=${PIPESTATUS[0]}
	t=$(($(date +%s) - s))
	line=$(grep -E "^$phase: " "$logs/check-$phase.log" | tail -n 1)
	[ "$rc" = 0 ] || failed="$failed $phase"
	summary="$summary$(printf '  %-8s %5d s  %s %s' "$phase" "$t" "$([ "$rc" = 0 ] && echo ok || echo FAILED)" \
		"${line:-(no summary line)}")
"
done
echo "== summary of make check${SAN:+ (SAN=$SAN)}"
printf '%s' "$summary"
if [ -n "$failed" ]; then
	echo "check: FAILED ($failed ) in $(($(date +%s) - start)) s; logs in $logs/check-*.log"
	exit 1
fi
echo "check: passed in $(($(date +%s) - start)) s"
