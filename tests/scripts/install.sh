#!/bin/sh
# make install into a staging directory, then programs built against the installed
# library through pkg-config, shared and static: they link, the shared one exports only
# the versioned minivmm_* API, and both run (minivmm_version, a start that fails cleanly).
set -u
if [ "${SAN:-0}" = 1 ]; then
	echo "install: SKIP: SAN=1 builds sanitized libraries, not installable ones (make check with SAN=0 runs this)"
	exit 0
fi
T=$(mktemp -d)
O=${MINIVMM_BUILD:-build}
MAKE=${MAKE:-make}
# The build directory's library goes back to the default prefix afterwards.
trap 'rm -rf "$T"; $MAKE --no-print-directory -s all SAN="${SAN:-0}" O="$O" >/dev/null 2>&1' EXIT
fail() { echo "install: FAIL: $*"; exit 1; }

$MAKE --no-print-directory -s install SAN="${SAN:-0}" DESTDIR="$T/root" PREFIX=/opt/mv O="$O" >"$T/make.log" 2>&1 ||
	fail "make install: $(tail -n 5 "$T/make.log")"
R=$T/root/opt/mv
for f in bin/minivmm lib/minivmm/minivmm-agent include/minivmm.h lib/libminivmm.a \
	lib/libminivmm.so.0 lib/libminivmm.so lib/pkgconfig/minivmm.pc; do
	[ -e "$R/$f" ] || fail "$f not installed"
done
grep -q '^prefix=/opt/mv$' "$R/lib/pkgconfig/minivmm.pc" || fail "minivmm.pc: wrong prefix"
# The installed binary is the library's default.
strings "$R/lib/libminivmm.so.0" | grep -q '^/opt/mv/bin/minivmm$' ||
	fail "the library does not default to /opt/mv/bin/minivmm"
# Exports: the API, versioned, nothing else.
other=$(nm -D --defined-only "$R/lib/libminivmm.so.0" | awk '$2 ~ /[TDBR]/ && $3 !~ /^minivmm_/ {print $3}')
[ -z "$other" ] || fail "exported besides minivmm_*: $other"
nm -D --defined-only "$R/lib/libminivmm.so.0" | grep -q ' minivmm_exec@@MINIVMM_0.1$' ||
	fail "minivmm_exec is not versioned MINIVMM_0.1"
other=$(nm "$R/lib/libminivmm.a" | awk '$2 ~ /^[TDBR]$/ && $3 !~ /^minivmm_/ {print $3}')
[ -z "$other" ] || fail "libminivmm.a has global symbols besides minivmm_*: $other"

cat >"$T/p.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <minivmm.h>
int main(void)
{
	struct minivmm_opts o = { .config_path = "/nonexistent.cfg", .minivmm = "/nonexistent/minivmm" };
	struct minivmm_vm *vm;
	int ret = minivmm_start(&o, &vm);

	printf("%s %d %d %s\n", minivmm_version(), minivmm_abi(), ret, minivmm_errmsg());
	return ret == -ENOENT && vm == NULL ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$R/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$T/root"
# shellcheck disable=SC2046 # one word per flag
cc -Wall -Werror -o "$T/p-shared" "$T/p.c" $(pkg-config --cflags --libs minivmm) ||
	fail "cannot build against the shared library"
# shellcheck disable=SC2046
cc -Wall -Werror -o "$T/p-static" "$T/p.c" $(pkg-config --cflags minivmm) "$R/lib/libminivmm.a" \
	$(pkg-config --libs-only-other --static minivmm) || fail "cannot build against the static library"
out=$(LD_LIBRARY_PATH="$R/lib" "$T/p-shared") || fail "the shared build: $out"
echo "$out" | grep -q "^$("$O/minivmm" version | cut -d' ' -f2) 0 -2 /nonexistent/minivmm: " ||
	fail "unexpected: $out"
out=$("$T/p-static") || fail "the static build: $out"
LD_LIBRARY_PATH="$R/lib" ldd "$T/p-shared" | grep -q "$R/lib/libminivmm.so.0" || fail "p-shared is not linked to the installed library"
echo "install: ok (shared and static builds against $R)"
