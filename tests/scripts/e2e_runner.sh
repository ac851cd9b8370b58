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

# Retries: a minivmm that hangs (here: a wrapper that sleeps on its first N runs) times
# out; the case runs again, up to 3 attempts in all: FLAKY when a retry passes, FAIL when
# none does.
cat >"$T/hang" <<EOF
#!/bin/sh
n=\$(cat "$T/count" 2>/dev/null || echo 0)
echo \$((n + 1)) >"$T/count"
[ "\$n" -lt "\$HANGS" ] && exec sleep 60
exec "$PWD/build/minivmm" "\$@"
EOF
chmod +x "$T/hang"
rm -f "$T/count"
HANGS=2 MINIVMM=$T/hang TEST_TIMEOUT=2 tests/e2e/run.sh bad_section >"$T/out" 2>&1
sed 's/^/  | /' "$T/out"
[ "$(grep -c '^RETRY bad_section: exit status 124, .*(timed out after 2s) (attempt [12])$' "$T/out")" = 2 ] ||
	fail "not two RETRY lines for a case that timed out twice"
grep -q '^FLAKY bad_section: passed only on attempt 3 ' "$T/out" || fail "a pass on the third attempt is not FLAKY"
rm -f "$T/count"
HANGS=3 MINIVMM=$T/hang TEST_TIMEOUT=2 tests/e2e/run.sh bad_section >"$T/out" 2>&1
rc=$?
sed 's/^/  | /' "$T/out"
[ "$rc" != 0 ] || fail "run.sh passed a case that timed out three times"
grep -q '^FAIL bad_section: exit status 124' "$T/out" || fail "three timeouts are not a FAIL"
[ "$(cat "$T/count")" = 3 ] || fail "minivmm ran $(cat "$T/count") times, want 3"
echo "e2e_runner: 9 checks passed"
