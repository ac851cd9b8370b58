#!/bin/bash
# minivmm - end-to-end tests: boot the test guest (build/guest, `make guest`) under
# $MINIVMM (default build/minivmm) and check what it reports. Needs /dev/kvm: run it as
#   tests/harness/in-vm.sh tests/e2e/run.sh [CASE...]
# Prints `PASS name` / `FAIL name: reason` per case and `e2e: N passed, M failed` at the end.
# TEST_TIMEOUT (seconds, default 180) bounds each minivmm run.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cd "$repo" || exit 1
MINIVMM=${MINIVMM:-$repo/build/minivmm}
CFG=$here/guest.cfg
GUEST=$repo/build/guest
LIMIT=${TEST_TIMEOUT:-180}

T=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT

pass=0
fail=0
why=""
rc=0

# vm ARGS...: run `minivmm run ARGS...` bounded by $LIMIT; stdout -> $T/out, stderr ->
# $T/err, exit status -> $rc, wall time (s) -> $took.
vm() {
	local s e
	s=$(date +%s)
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$@" </dev/null >"$T/out" 2>"$T/err"
	rc=$?
	e=$(date +%s)
	took=$((e - s))
	tr -d '\r' <"$T/out" >"$T/out.txt"
}

# guest SCENARIO [CMDLINE-EXTRA] [ARGS...]: boot guest.cfg with that scenario.
guest() {
	local sc=$1 extra=$2
	shift 2
	vm "$CFG" --set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=$sc${extra:+ $extra}" "$@"
}

# Assertions: each sets $why and returns 1 on failure.
expect_rc() {
	[ "$rc" = "$1" ] && return 0
	why="exit status $rc, expected $1"
	[ "$rc" = 124 ] && why="$why (timed out after ${LIMIT}s)"
	return 1
}
expect_out() { grep -q -x -e "$1" "$T/out.txt" && return 0; why="no line matching '$1' on stdout"; return 1; }
expect_err() { grep -q -i -e "$1" "$T/err" && return 0; why="stderr does not mention '$1'"; return 1; }
value() { sed -n "s/^$1=//p" "$T/out.txt" | tail -n 1; }
expect_range() { # NAME LOW HIGH
	local v
	v=$(value "$1")
	case $v in '' | *[!0-9]*) why="$1 missing or not a number: '$v'"; return 1 ;; esac
	[ "$v" -ge "$2" ] && [ "$v" -le "$3" ] && return 0
	why="$1=$v not within [$2, $3]"
	return 1
}

# --- boots ------------------------------------------------------------------------------
t_boot_1cpu() {
	guest info "" && expect_rc 0 && expect_out CPUS=1 && expect_range MEMTOTAL_KB 180000 262144
}
t_boot_2cpu() {
	guest info "" --set vm.vcpus=2 && expect_rc 0 && expect_out CPUS=2
}
t_memory_512m() {
	guest info "" --set vm.memory=512M && expect_rc 0 && expect_range MEMTOTAL_KB 440000 524288
}
t_exitport() {
	guest exitcode minivmm.code=5 && expect_rc 5 && expect_out hello-from-guest || return 1
	guest exitcode minivmm.code=0 && expect_rc 0 && expect_out hello-from-guest
}
t_demo_cfg() { # examples/demo.cfg, as `make demo` runs it
	vm "$repo/examples/demo.cfg" && expect_rc 0 || return 1
	grep -q "Hello from a minivmm guest" "$T/out.txt" || { why="no demo banner"; return 1; }
	grep -q "online CPUs: 0-1" "$T/out.txt" || { why="demo guest does not have 2 online CPUs"; return 1; }
}
t_poweroff() { guest poweroff "" && expect_rc 0 && expect_out "powering off"; }
t_reboot() { guest reboot "" && expect_rc 0 && expect_out rebooting; }
t_panic() { guest panic "" && expect_rc 3 && expect_err panic; }
t_timeout() {
	guest sleep "" --timeout 5 && expect_rc 124 || return 1
	[ "$took" -le 20 ] || { why="--timeout 5 took ${took}s"; return 1; }
}
t_nested_on() {
	guest info "" --set vm.nested=on && expect_rc 0 || return 1
	grep -q -x -E 'SVM=yes|VMX=yes' "$T/out.txt" || { why="neither SVM=yes nor VMX=yes"; return 1; }
}
t_nested_off() {
	guest info "" --set vm.nested=off && expect_rc 0 && expect_out SVM=no && expect_out VMX=no
}
t_serial_file() {
	local log=$T/serial.log
	rm -f "$log"
	guest info "" --set "console.serial=file:$log" && expect_rc 0 || return 1
	[ -f "$log" ] || { why="$log was not created"; return 1; }
	grep -q '^CPUS=1' "$log" || { why="no CPUS=1 in $log"; return 1; }
	! grep -q 'CPUS=' "$T/out.txt" || { why="guest output also went to stdout"; return 1; }
}

# Boot paths: the ELF vmlinux through PVH, and the kernel decompressing itself.
t_boot_pvh() {
	guest info "" --set "boot.kernel=$GUEST/vmlinux" --set vm.vcpus=2 && expect_rc 0 &&
		expect_out CPUS=2
}
t_decompress_guest() {
	guest info "" --set boot.decompress=guest && expect_rc 0 && expect_out CPUS=1
}
# More vCPUs than the host has cores, and RAM split around the 3-4 GiB hole.
t_boot_4cpu() {
	guest info "" --set vm.vcpus=4 && expect_rc 0 && expect_out CPUS=4 &&
		expect_out CPUS_ONLINE=0-3
}
t_memory_4g() {
	guest info "" --set vm.memory=4G && expect_rc 0 &&
		expect_range MEMTOTAL_KB 3900000 4194304
}
# on_reboot = restart: the guest reboots, comes back, reboots again... until --timeout.
t_reboot_restart() {
	guest reboot "" --set vm.on_reboot=restart --timeout 40 && expect_rc 124 || return 1
	local n
	n=$(grep -c -x rebooting "$T/out.txt")
	[ "$n" -ge 2 ] || { why="guest booted $n time(s), expected a restart"; return 1; }
}
# SIGTERM stops the VM cleanly: status 128+15, the serial file flushed.
t_sigterm() {
	local log=$T/term.log i pid
	rm -f "$log"
	"$MINIVMM" run "$CFG" --set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=sleep" \
		--set "console.serial=file:$log" </dev/null >"$T/out" 2>"$T/err" &
	pid=$!
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q "sleeping forever" "$log" 2>/dev/null && break
		sleep 0.5
	done
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	grep -q "sleeping forever" "$log" || { why="guest output missing from $log"; return 1; }
	expect_rc 143 && expect_err "signal"
}

# serial_input: wait for READY, type a command line on minivmm's stdin, expect its output.
t_serial_input() {
	local fifo=$T/in token="serial-ok-$$" i pid
	rm -f "$fifo" "$T/rc"
	mkfifo "$fifo"
	: >"$T/out"
	(
		timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
			--set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=shell" <"$fifo" >"$T/out" 2>"$T/err"
		echo $? >"$T/rc"
	) &
	pid=$!
	exec 3>"$fifo"
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q READY "$T/out" 2>/dev/null && break
		[ -f "$T/rc" ] && break
		sleep 0.5
	done
	if grep -q READY "$T/out"; then
		echo "echo $token" >&3
	fi
	wait "$pid"
	exec 3>&-
	rc=$(cat "$T/rc" 2>/dev/null || echo "?")
	tr -d '\r' <"$T/out" >"$T/out.txt"
	grep -q READY "$T/out.txt" || { why="guest never printed READY (exit status $rc)"; return 1; }
	expect_rc 0 && expect_out "$token" && expect_out DONE
}

# --- configuration errors: exit 2 and a message naming the file and line -----------------
# badcfg NAME LINE...: write $T/NAME.cfg, a valid config (absolute paths) with LINE...
# appended in [vm] position; prints nothing. The lines start at line 3.
badcfg() {
	local f=$T/$1.cfg
	shift
	{
		echo "; bad config for the e2e tests"
		echo "[vm]"
		printf '%s\n' "$@"
		echo "memory = 256M"
		echo "[boot]"
		echo "kernel = $GUEST/vmlinuz"
		echo "initrd = $GUEST/initramfs.cpio.gz"
		echo "cmdline = console=ttyS0 quiet minivmm.scenario=info"
		echo "[console]"
		echo "serial = stdio"
	} >"$f"
}
# expect_cfgerr FILE LINE [WORD]: exit 2, stderr has FILE:LINE (file by base name) and WORD.
expect_cfgerr() {
	expect_rc 2 || return 1
	grep -q -F "$(basename "$1"):$2" "$T/err" || { why="stderr does not name $(basename "$1"):$2"; return 1; }
	[ -z "${3:-}" ] || expect_err "$3"
}
t_bad_section() {
	badcfg sect "[nosuch]" "foo = 1"
	vm "$T/sect.cfg" && expect_cfgerr "$T/sect.cfg" 3 nosuch
}
t_bad_key() {
	badcfg key "bogus = 1"
	vm "$T/key.cfg" && expect_cfgerr "$T/key.cfg" 3 bogus
}
t_bad_size() {
	badcfg size "vcpus = 1"
	sed -i 's/^memory = 256M$/memory = 12Q/' "$T/size.cfg"
	vm "$T/size.cfg" && expect_cfgerr "$T/size.cfg" 4 memory
}
t_bad_vcpus() {
	badcfg vcpus "vcpus = 0"
	vm "$T/vcpus.cfg" && expect_cfgerr "$T/vcpus.cfg" 3 vcpus
}
t_bad_kernel() {
	badcfg kernel "vcpus = 1"
	sed -i 's|^kernel = .*|kernel = /nonexistent/vmlinuz|' "$T/kernel.cfg"
	vm "$T/kernel.cfg" && expect_rc 2 && expect_err kernel
}
t_bad_set() {
	vm "$CFG" --set vm.nosuch=1 && expect_rc 2 && expect_err nosuch
}
t_bad_line() {
	badcfg line "this line has no equals sign"
	vm "$T/line.cfg" && expect_cfgerr "$T/line.cfg" 3
}

# --- virtio-blk ---------------------------------------------------------------------------
# mkdisk FILE SIZE: a raw image whose first MiB is `seq 500000 -1 1` (what `read` hashes).
mkdisk() {
	seq 500000 -1 1 | head -c 1048576 >"$1" && truncate -s "$2" "$1"
}
# blk OPS ARGS...: the blk scenario with minivmm.blk=OPS, -v for the disk summary.
blk() {
	local ops=$1
	shift
	guest blk "minivmm.blk=$ops" -v "$@"
}
read_sha() { seq 500000 -1 1 | head -c 1048576 | sha256sum | cut -d' ' -f1; }
# expect_written IMG: the guest's `write` pattern is at 1 MiB of IMG, byte for byte.
expect_written() {
	seq 1 300000 | head -c 1048576 >"$T/pattern"
	cmp -s -n 1048576 -i 0:1048576 "$T/pattern" "$1" && return 0
	why="$1 does not hold the pattern the guest wrote at 1 MiB"
	return 1
}
t_blk_rw() { # 2 vCPUs: 2 queues; read a host pattern, write one back, FLUSH reaches us
	mkdisk "$T/d.img" 64M
	blk read,write --set vm.vcpus=2 --set "disk.0.path=$T/d.img" \
		--set disk.0.serial=minivmm-e2e && expect_rc 0 &&
		expect_out "DISK_vda=sectors:131072 queues:2 ro:0 serial:minivmm-e2e discard:.*" &&
		expect_out "IRQ_virtio[0-9]*-req.0=0" && expect_out "IRQ_virtio[0-9]*-req.1=1" &&
		expect_out "READ_SHA256=$(read_sha)" && expect_out WRITE=done &&
		expect_written "$T/d.img" || return 1
	grep -q "disk.0: .* [1-9][0-9]* flushes" "$T/err" || { why="no FLUSH reached the host"; return 1; }
}
t_blk_queues() { # queues = 1 on 2 vCPUs; 4 queues on 4 vCPUs with 1 I/O thread; pin = on
	mkdisk "$T/d.img" 16M
	blk "" --set vm.vcpus=2 --set "disk.0.path=$T/d.img" --set disk.0.queues=1 &&
		expect_rc 0 && expect_out "DISK_vda=sectors:32768 queues:1 ro:0 .*" || return 1
	blk read --set vm.vcpus=4 --set "disk.0.path=$T/d.img" --set disk.0.iothreads=1 &&
		expect_rc 0 && expect_out "DISK_vda=sectors:32768 queues:4 ro:0 .*" &&
		expect_out "READ_SHA256=$(read_sha)" || return 1
	blk read --set vm.vcpus=2 --set "disk.0.path=$T/d.img" --set disk.0.pin=on && expect_rc 0 &&
		expect_out "READ_SHA256=$(read_sha)" && expect_err "2 I/O threads, pinned"
}
t_blk_readonly() {
	mkdisk "$T/d.img" 16M
	local before
	before=$(sha256sum <"$T/d.img")
	blk rowrite,read --set "disk.0.path=$T/d.img" --set disk.0.readonly=on && expect_rc 0 &&
		expect_out "DISK_vda=sectors:32768 queues:1 ro:1 .*" && expect_out ROWRITE=refused &&
		expect_out "READ_SHA256=$(read_sha)" || return 1
	[ "$(sha256sum <"$T/d.img")" = "$before" ] || { why="the read-only image changed"; return 1; }
}
t_blk_two_disks() {
	mkdisk "$T/a.img" 16M
	mkdisk "$T/b.img" 32M
	blk write --set "disk.0.path=$T/a.img" --set "disk.1.path=$T/b.img" \
		--set disk.1.serial=second && expect_rc 0 &&
		expect_out "DISK_vda=sectors:32768 .*" &&
		expect_out "DISK_vdb=sectors:65536 queues:1 ro:0 serial:second .*" &&
		expect_written "$T/a.img" || return 1
	cmp -s -n 1048576 -i 0:1048576 "$T/pattern" "$T/b.img" &&
		{ why="the write went to both disks"; return 1; }
	return 0
}
t_blk_discard() { # punches a hole in the host file (tmpfs in the L1 supports it)
	local before after
	dd if=/dev/urandom of="$T/d.img" bs=1M count=16 2>/dev/null
	before=$(stat -c %b "$T/d.img")
	blk discard --set "disk.0.path=$T/d.img" && expect_rc 0 && expect_out DISCARD=done || return 1
	after=$(stat -c %b "$T/d.img")
	# 4 MiB less allocated (in 512-byte blocks), and zeros there.
	[ $((before - after)) -ge 8192 ] ||
		{ why="blocks allocated: $before before, $after after the discard"; return 1; }
	cmp -s -n 4194304 -i 1048576:0 "$T/d.img" /dev/zero ||
		{ why="the discarded range does not read as zeros"; return 1; }
}
t_blk_qcow2() { # format = qcow2: the guest's write lands in a valid image
	"$MINIVMM" img create "$T/d.qcow2" 64M >/dev/null || { why="img create failed"; return 1; }
	blk write,read --set "disk.0.path=$T/d.qcow2" --set disk.0.format=qcow2 && expect_rc 0 &&
		expect_out "DISK_vda=sectors:131072 .*" || return 1
	"$MINIVMM" img check "$T/d.qcow2" >"$T/check" 2>&1 || { why="img check: $(cat "$T/check")"; return 1; }
	qemu-img convert -f qcow2 -O raw "$T/d.qcow2" "$T/d.raw" || { why="qemu-img convert failed"; return 1; }
	expect_written "$T/d.raw"
}
t_blk_cache_none() { # O_DIRECT needs a filesystem that has it: the build share
	local img=${MINIVMM_BUILD:-$repo/build}/e2e-direct.img
	mkdisk "$img" 16M
	blk write,read --set "disk.0.path=$img" --set disk.0.cache=none && expect_rc 0 &&
		expect_out "READ_SHA256=$(read_sha)" && expect_written "$img"
	local r=$?
	rm -f "$img"
	return $r
}
t_blk_bad_disk() {
	vm "$CFG" --set disk.0.path=/nonexistent.img && expect_rc 2 &&
		expect_err "disk.0.*path.*nonexistent" || return 1
	mkdisk "$T/d.img" 1M
	printf 'x' >>"$T/d.img" # not a whole number of sectors
	vm "$CFG" --set "disk.0.path=$T/d.img" && expect_rc 1 && expect_err "512"
}

CASES="boot_1cpu boot_2cpu boot_4cpu memory_512m memory_4g boot_pvh decompress_guest exitport
	serial_input poweroff reboot reboot_restart panic timeout sigterm nested_on nested_off
	serial_file demo_cfg bad_section bad_key bad_size bad_vcpus bad_kernel
	bad_set bad_line blk_rw blk_queues blk_readonly blk_two_disks blk_discard blk_qcow2
	blk_cache_none blk_bad_disk"
[ $# -gt 0 ] && CASES="$*"

missing=""
[ -x "$MINIVMM" ] || missing="minivmm binary $MINIVMM not found (make)"
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initramfs.cpio.gz" ] ||
	missing="${missing:+$missing; }test guest $GUEST missing (make guest)"

# TEST_E2E_PROGRESS=FILE (make e2e sets it): each case's result is appended there as it
# ends, and cases already in it are not run again. When the emulated L1 of the nested
# harness dies (an emulator fault: see tests/harness/in-vm.sh), the harness starts this
# script again in a fresh L1 and it carries on with the case that was running.
progress=${TEST_E2E_PROGRESS:-}
if [ -n "$progress" ] && [ -s "$progress" ]; then
	echo "e2e: resuming after an L1 failure; $(grep -c '^\(PASS\|FAIL\) ' "$progress") case(s) done"
	started=$(sed -n 's/^START //p' "$progress" | tail -n 1)
	if [ -n "$started" ] && ! grep -q "^\(PASS\|FAIL\) $started\b" "$progress"; then
		echo "e2e: case $started was running when the L1 died; running it again"
	fi
fi
done_before() { [ -n "$progress" ] && grep -q "^\(PASS\|FAIL\) $1\b" "$progress" 2>/dev/null; }
record() { [ -z "$progress" ] || { echo "$1" >>"$progress" && sync "$progress" 2>/dev/null; }; }

for c in $CASES; do
	if done_before "$c"; then
		case $(grep "^\(PASS\|FAIL\) $c\b" "$progress" | tail -n 1) in
		PASS*) pass=$((pass + 1)) ;;
		*) fail=$((fail + 1)) ;;
		esac
		continue
	fi
	record "START $c"
	if ! declare -F "t_$c" >/dev/null; then
		echo "FAIL $c: no such case"
		record "FAIL $c"
		fail=$((fail + 1))
		continue
	fi
	if [ -n "$missing" ]; then
		echo "FAIL $c: $missing"
		record "FAIL $c"
		fail=$((fail + 1))
		continue
	fi
	why=""
	rm -f "$T/out" "$T/err" "$T/out.txt"
	if "t_$c"; then
		echo "PASS $c"
		record "PASS $c"
		pass=$((pass + 1))
	else
		echo "FAIL $c: ${why:-failed}"
		for f in out.txt err; do
			[ -s "$T/$f" ] || continue
			echo "  --- last lines of $f:"
			tail -n 15 "$T/$f" | sed 's/^/  | /'
		done
		record "FAIL $c"
		fail=$((fail + 1))
	fi
done
echo "e2e: $pass passed, $fail failed"
[ "$fail" = 0 ]
