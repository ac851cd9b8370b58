#!/bin/bash
# minivmm - the test phases of `make check`, one after another (MAKE from the Makefile).
# Every phase runs even when an earlier one failed; the end is a summary with each phase's
# time and its own result line (unit: ..., fuzz: ..., scripts: ..., e2e: ...), and the
# exit status says whether all passed.
#
# fuzz needs only the CPU while scripts and e2e mostly wait on their guests (under the
# nested harness about half of one core stays idle all through e2e): when an e2e phase
# comes after it, fuzz runs beside the later phases at the lowest priority (nice 19), each
# target for FUZZ_BG_SECONDS (default 30) instead of FUZZ_SECONDS as it gets less CPU, and
# its output follows the last phase. CHECK_FUZZ_BG=0 runs it in line.
# usage: MAKE=make tests/check.sh PHASE...
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
logs=${MINIVMM_BUILD:-build}
mkdir -p "$logs"
start=$(date +%s)
summary=""
failed=""

# result PHASE RC SECONDS [NOTE]: one summary line.
result() {
	local line
	line=$(grep -E "^$1: " "$logs/check-$1.log" | tail -n 1)
	[ "$2" = 0 ] || failed="$failed $1"
	summary="$summary$(printf '  %-8s %5d s  %s %s%s' "$1" "$3" "$([ "$2" = 0 ] && echo ok || echo FAILED)" \
		"${line:-(no summary line)}" "${4:+ ($4)}")
"
}

# bg=1: fuzz goes to the background (an e2e phase comes after it).
bg=0
seen_fuzz=0
for phase in "$@"; do
	[ "$phase" = fuzz ] && seen_fuzz=1
	[ "$phase" = e2e ] && [ "$seen_fuzz" = 1 ] && bg=${CHECK_FUZZ_BG:-1}
done
fuzz_pid=""
for phase in "$@"; do
	if [ "$phase" = fuzz ] && [ "$bg" = 1 ]; then
		echo "== fuzz: in the background at nice 19 (${FUZZ_BG_SECONDS:-30} s per target), output after the last phase"
		fuzz_start=$(date +%s)
		rm -f "$logs/check-fuzz.end"
		{
			# shellcheck disable=SC2086 # MAKE carries its options
			nice -n 19 ${MAKE:-make} fuzz FUZZ_SECONDS="${FUZZ_BG_SECONDS:-30}" >"$logs/check-fuzz.log" 2>&1
			rc=$?
			date +%s >"$logs/check-fuzz.end"
			exit $rc
		} &
		fuzz_pid=$!
		continue
	fi
	echo "== $phase"
	s=$(date +%s)
	# shellcheck disable=SC2086 # MAKE carries its options
	${MAKE:-make} "$phase" 2>&1 | tee "$logs/check-$phase.log"
	result "$phase" "${PIPESTATUS[0]}" $(($(date +%s) - s))
done
if [ -n "$fuzz_pid" ]; then
	wait "$fuzz_pid"
	rc=$?
	fuzz_end=$(cat "$logs/check-fuzz.end" 2>/dev/null || date +%s)
	echo "== fuzz (ran in the background, $(date -d "@$fuzz_start" +%T)-$(date -d "@$fuzz_end" +%T))"
	cat "$logs/check-fuzz.log"
	result fuzz "$rc" $((fuzz_end - fuzz_start)) "in the background at nice 19"
fi
echo "== summary of make check${SAN:+ (SAN=$SAN)}"
printf '%s' "$summary"
if [ -n "$failed" ]; then
	echo "check: FAILED ($failed ) in $(($(date +%s) - start)) s; logs in $logs/check-*.log"
	exit 1
fi
echo "check: passed in $(($(date +%s) - start)) s"
