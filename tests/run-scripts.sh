#!/bin/sh
# Host-side script tests: every tests/scripts/*.sh, each exits non-zero on failure.
# TEST_SCRIPTS="cli kvm_check" runs only those (names without .sh); TEST_SCRIPTS_SKIP
# leaves some out. Each script's time follows its result.
pass=0
fail=0
for t in tests/scripts/*.sh; do
	[ -e "$t" ] || continue
	name=$(basename "$t" .sh)
	if [ -n "${TEST_SCRIPTS:-}" ]; then
		case " $TEST_SCRIPTS " in *" $name "*) ;; *) continue ;; esac
	fi
	case " ${TEST_SCRIPTS_SKIP:-} " in *" $name "*) continue ;; esac
	echo "== $t"
	shell="sh"
	head -n 1 "$t" | grep -q bash && shell=bash
	s=$(date +%s)
	if "$shell" "$t"; then
		pass=$((pass + 1))
		echo "== $t: passed in $(($(date +%s) - s)) s"
	else
		fail=$((fail + 1))
		echo "FAILED: $t ($(($(date +%s) - s)) s)"
	fi
done
if [ $((pass + fail)) = 0 ]; then
	echo "scripts: no script matched TEST_SCRIPTS='${TEST_SCRIPTS:-}' TEST_SCRIPTS_SKIP='${TEST_SCRIPTS_SKIP:-}'"
	exit 1
fi
echo "scripts: $pass passed, $fail failed${TEST_SCRIPTS:+ (TEST_SCRIPTS=$TEST_SCRIPTS)}${TEST_SCRIPTS_SKIP:+ (TEST_SCRIPTS_SKIP=$TEST_SCRIPTS_SKIP)}"
[ "$fail" = 0 ]
