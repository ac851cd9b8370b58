#!/bin/sh
# The command line without KVM: help, version, usage errors, KVM bring-up errors,
# --dry-run, and kernel extraction. Each check can fail; the first failure stops.
set -u
M=${MINIVMM:-build/minivmm}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0

fail() { echo "cli: FAIL: $*"; exit 1; }
# expect STATUS PATTERN CMD...: exit status and a pattern in stdout+stderr
expect() {
	want=$1 pat=$2
	shift 2
	"$@" >"$T/out" 2>&1
	got=$?
	[ "$got" = "$want" ] || fail "'$*' exited $got, expected $want: $(head -c 300 "$T/out")"
	[ -z "$pat" ] || grep -q -e "$pat" "$T/out" || fail "'$*' output lacks '$pat': $(head -c 300 "$T/out")"
	n=$((n + 1))
}

kernel=$(ls /boot/vmlinuz-* | tail -n 1)
printf 'x' >"$T/initrd"
cat >"$T/g.cfg" <<CFG
[vm]
memory = 128M
[boot]
kernel = $kernel
initrd = initrd
CFG

expect 0 'run CONFIG' "$M" --help
expect 2 'usage: minivmm' "$M"
expect 2 "unknown command 'bogus'" "$M" bogus
expect 0 '^minivmm [0-9]' "$M" version
expect 0 'timeout SECONDS' "$M" run --help
expect 2 'missing CONFIG' "$M" run
expect 2 'too many arguments' "$M" run a b
expect 2 'expected a positive number' "$M" run "$T/g.cfg" --timeout abc
expect 2 'expected a positive number' "$M" run "$T/g.cfg" --timeout -1
expect 2 'No such file' "$M" run "$T/nope.cfg"
# --dry-run: the effective config, relative paths resolved, overrides applied.
expect 0 "initrd = $T/initrd" "$M" run "$T/g.cfg" --dry-run
expect 0 'vcpus = 3' "$M" run "$T/g.cfg" --dry-run --set vm.vcpus=3
# KVM bring-up errors name the cause.
MINIVMM_KVM_DEV=$T/nokvm expect 1 'does not exist' "$M" run "$T/g.cfg"
MINIVMM_KVM_DEV=/dev/null expect 1 'API version' "$M" run "$T/g.cfg"
# Host-side decompression of the distribution kernel.
expect 0 '' "$M" kernel extract "$kernel" "$T/vmlinux"
[ "$(head -c 4 "$T/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || fail "extract: no ELF"
n=$((n + 1))
expect 1 'not a bzImage' "$M" kernel extract "$T/initrd" "$T/x"
expect 2 'usage: minivmm kernel' "$M" kernel
MINIVMM_CACHE_DIR=$T/cache expect 0 '' "$M" kernel cache "$kernel"
ls "$T"/cache/vmlinux-*.elf >/dev/null 2>&1 || fail "kernel cache: nothing stored"
n=$((n + 1))
# Driving a running VM: usage errors, and no VM behind the socket.
expect 2 'api needs a control socket' "$M" run "$T/g.cfg" --set console.serial=api
expect 2 'socket PATH is required' "$M" console
expect 1 'No such file' "$M" console --socket "$T/none.sock"
expect 255 'socket PATH is required' "$M" exec -- true
expect 255 'no command' "$M" exec --socket "$T/none.sock"
expect 255 'No such file' "$M" exec --socket "$T/none.sock" -- true
expect 2 'exactly one of SRC and DST' "$M" cp --socket "$T/none.sock" a b
expect 2 'must be absolute' "$M" cp --socket "$T/none.sock" a guest:rel
expect 1 'No such file' "$M" cp --socket "$T/none.sock" guest:/a "$T/b"
expect 0 'events' "$M" ctl --help
expect 0 'pressure-file' "$M" balloon-policy --help
expect 2 'budget SIZE is required' "$M" balloon-policy "$T/none.sock"
expect 2 'no control socket' "$M" balloon-policy --budget 1G
expect 2 'expected a size' "$M" balloon-policy --budget 1X "$T/none.sock"
expect 2 'expected a percentage' "$M" balloon-policy --budget 1G --psi-limit 0 "$T/none.sock"
expect 1 'No such file' "$M" balloon-policy --budget 1G "$T/none.sock"
echo "cli: $n checks passed"
