#!/bin/sh
# Crash images from the simulated power losses of test_qcow2_crash, judged by
# qemu-img check: no corruption allowed, leaks only.
. "$(dirname "$0")/../qcow2/lib.sh"
if [ $HAVE_QEMU = 0 ]; then
	# make deps installs qemu-utils: without the oracle this test cannot pass.
	echo "FAIL: qemu-img not installed; run make deps"
	exit 1
fi
bin="$BUILD/tests/test_qcow2_crash"
if [ ! -x "$bin" ]; then
	bin="$T/test_qcow2_crash"
	cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" -I"$ROOT/tests/unit" -pthread -o "$bin" \
		"$ROOT/tests/unit/test_qcow2_crash.c" "$BUILD/libminivmm-core.a" \
		-llzo2 -luring -lfdt -linih -lz -lm $(pkg-config --libs check)
fi
mkdir -p "$T/dump"
QCOW2_CRASH_DUMP="$T/dump" QCOW2_CRASH_DUMP_EVERY=${QCOW2_CRASH_DUMP_EVERY:-12} "$bin" >"$T/log" 2>&1 ||
	{ cat "$T/log"; fail "test_qcow2_crash"; }
n=0 leaks=0
for f in "$T"/dump/*.qcow2; do
	rc=0
	qemu-img check "$f" >"$T/out" 2>&1 || rc=$?
	case $rc in
	0) ;;
	3) leaks=$((leaks + 1)) ;;
	*) cat "$T/out"; fail "qemu-img check $(basename "$f"): exit $rc" ;;
	esac
	n=$((n + 1))
done
[ $n -gt 100 ] || fail "too few crash images ($n)"
ok "$n crashed images: qemu-img check finds no corruption ($leaks with leaked reservations only)"
