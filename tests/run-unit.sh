#!/bin/sh
# Run every Check unit-test binary; each prints Check's own summary line.
fail=0
for t in "$@"; do
	echo "== $t"
	CK_FORK=yes "$t" || fail=1
done
exit $fail
