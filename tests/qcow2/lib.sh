#!/bin/sh
# Shared by tests/scripts/qcow2_*.sh: locate the `img` tool and QEMU's tools.
# IMG runs `minivmm img` when main.c dispatches it, else a driver built from the library.
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MINIVMM_BUILD:-$ROOT/build}
if [ -n "$MINIVMM" ] && "$MINIVMM" img info /dev/null 2>&1 | grep -q "could not open"; then
	IMG="$MINIVMM img"
else
	mkdir -p "$BUILD/qcow2"
	cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" -pthread -o "$BUILD/qcow2/img" \
		"$ROOT/tests/qcow2/img_driver.c" "$BUILD/libminivmm-core.a" \
		-llzo2 -luring -lfdt -linih -lz -lzstd -lm
	IMG="$BUILD/qcow2/img"
fi
HAVE_QEMU=1
command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1 || HAVE_QEMU=0
T=$(mktemp -d /tmp/qcow2-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

# Random qemu-io style op lists: ops SEED COUNT SIZE_BYTES MAXLEN_SECTORS STYLE(qemu|img)
ops() {
	awk -v seed="$1" -v n="$2" -v size="$3" -v maxs="$4" -v style="$5" 'BEGIN {
		srand(seed);
		for (i = 0; i < n; i++) {
			len = (int(rand() * maxs) + 1) * 512;
			off = int(rand() * ((size - len) / 512)) * 512;
			k = rand(); p = int(rand() * 250) + 1;
			if (k < 0.7) printf "write -P %d %d %d\n", p, off, len;
			else if (k < 0.8) printf (style == "qemu" ? "write -z %d %d\n" : "zero %d %d\n"), off, len;
			else if (k < 0.9) printf "discard %d %d\n", off, len;
			else printf "flush\n";
		}
	}'
}

# Run an op list through qemu-io or img io.
run_qemu_ops() { # FILE OPSFILE
	set --	"$1" "$2"
	args=""
	while IFS= read -r l; do args="$args -c '$l'"; done <"$2"
	eval qemu-io -f qcow2 $args "$1" >/dev/null
}
run_img_ops() { # FILE OPSFILE [img io options]
	f=$1; o=$2; shift 2
	set -- "$@" "$f"
	while IFS= read -r l; do set -- "$@" "$l"; done <"$o"
	$IMG io "$@"
}

# qemu-img check must find no corruption (and, unless ALLOW_LEAKS, no leaks).
qcheck() {
	rc=0
	qemu-img check "$1" >"$T/check.out" 2>&1 || rc=$?
	if [ $rc = 2 ] || [ $rc = 1 ] || { [ $rc = 3 ] && [ -z "$ALLOW_LEAKS" ]; }; then
		cat "$T/check.out" >&2
		fail "qemu-img check $1 (exit $rc)"
	fi
}

# The engine and QEMU must see the same guest bytes.
same_view() { # FILE [img convert options]
	f=$1; shift
	rm -f "$T/e.raw" "$T/q.raw"
	$IMG convert -O raw "$@" "$f" "$T/e.raw" || fail "img convert $f"
	qemu-img convert -O raw "$f" "$T/q.raw" || fail "qemu-img convert $f"
	cmp -s "$T/e.raw" "$T/q.raw" || fail "engine and qemu-img disagree on $f"
}
