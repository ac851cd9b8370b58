#!/bin/bash
# The e2e runner's accounting when it resumes in a new L1 (tests/e2e/run.sh with
# TEST_E2E_PROGRESS), with cases that need no KVM (bad configurations): a case that was
# being retried when the L1 died and passes in the new one is FLAKY, not PASS; a case
# that had only started is run again and counted once.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "e2e_runner: FAIL: $*"; exit 1; }

printf 'START bad_section\nRETRY bad_section\nSTART bad_key\n' >"$T/progress"
TEST_E2E_PROGRESS=$T/progress tests/e2e/run.sh bad_section bad_key >"$T/out" 2>&1
rc=$?
sed 's/^/  | /' "$T/out"
[ "$rc" = 0 ] || fail "run.sh exited $rc"
grep -q '^FLAKY bad_section: ' "$T/out" || fail "the case retried before the L1 died is not FLAKY"
grep -q '^PASS bad_key ' "$T/out" || fail "the case that had only started did not pass"
grep -q -x 'e2e: 1 passed, 0 failed, 1 flaky (passed only on a retry: bad_section); resumed 1 time(s) in a new L1 after an L1 fault' "$T/out" ||
	fail "wrong summary: $(tail -n 1 "$T/out")"
grep -q -x 'FLAKY bad_section' "$T/progress" || fail "FLAKY not recorded"
echo "e2e_runner: 4 checks passed"
