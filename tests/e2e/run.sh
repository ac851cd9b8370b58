#!/bin/bash
# minivmm - end-to-end tests: boot the test guest (build/guest, `make guest`) under
# $MINIVMM (default build/minivmm) and check what it reports. Needs /dev/kvm: run it as
#   tests/harness/in-vm.sh tests/e2e/run.sh [CASE...]
# Prints `PASS name` / `FAIL name: reason` per case and `e2e: N passed, M failed, K flaky`
# at the end. A case whose guest timed out is run once more, with a `RETRY name: reason`
# line first; if that passes it is `FLAKY name` (with the first attempt's reason and tail),
# counted apart from the plain passes.
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
flaky=0
flaky_names=""
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

# --- virtio-fs ----------------------------------------------------------------------------
# mkshare DIR [big]: the share the fs scenario expects: data/ with files of the sizes that
# matter (around a page, around the 2 MiB DAX range; 100 MiB with "big").
mkshare() {
	local d=$1 n s
	rm -rf "$d"
	mkdir -p "$d/data"
	for n in f0:0 f1:1 f4095:4095 f4096:4096 f2m_m1:2097151 f2m:2097152 f2m_p1:2097153; do
		s=${n#*:}
		head -c "$s" /dev/urandom >"$d/data/${n%%:*}"
	done
	if [ "${2:-}" = big ]; then
		head -c 1048576 /dev/urandom >"$T/chunk"
		for ((s = 0; s < 100; s++)); do echo "$s"; cat "$T/chunk"; done |
			head -c 104857600 >"$d/data/f100m"
	fi
}
# fs PARTS DAX ARGS...: the fs scenario on [share.0] (set its path in ARGS), -v.
fs() {
	local parts=$1 dax=$2
	shift 2
	guest fs "minivmm.fs=$parts minivmm.fs_dax=$dax" -v "$@"
}
expect_fs_ok() {
	expect_out "FS_MOUNTED=.*" || return 1
	grep -q -x "FS_FAILS=0" "$T/out.txt" && return 0
	why="guest checks failed: $(grep '^FS_FAIL' "$T/out.txt" | head -n 5 | tr '\n' ';')"
	return 1
}
# expect_ops_host DIR: what the ops part did, seen from the host.
expect_ops_host() {
	local d=$1 f n
	for f in "$d"/data/*; do
		n=${f##*/}
		expect_out "SHA_$n=$(sha256sum <"$f" | cut -d' ' -f1)" || return 1
		cmp -s "$f" "$d/w/copy_$n" || { why="the guest's copy of $n differs on the host"; return 1; }
	done
	[ "$(find "$d/w/big" -type f | wc -l)" = 2000 ] || { why="host sees $(find "$d/w/big" -type f | wc -l) files in w/big"; return 1; }
	[ "$(stat -c %a:%u:%g:%Y "$d/w/b")" = 640:1234:5678:981173106 ] ||
		{ why="w/b on the host: $(stat -c %a:%u:%g:%Y "$d/w/b")"; return 1; }
	[ "$(readlink "$d/w/s")" = b ] || { why="w/s is not a symlink to b on the host"; return 1; }
	[ "$(stat -c %s "$d/w/sparse")" = 10485760 ] || { why="w/sparse has the wrong size"; return 1; }
}
# mktool DIR: next to data/, what the fs scenario's tool part uses: mw (the guest writes it
# through a shared mapping), holes (4 MiB, data only at 1 MiB) and, as root, sgid (setgid,
# group 4321, mode 2777).
mktool() {
	local d=$1
	head -c 8192 /dev/zero >"$d/mw"
	truncate -s 4M "$d/holes"
	printf x | dd of="$d/holes" bs=1 seek=1048576 conv=notrunc 2>/dev/null
	[ "$(id -u)" = 0 ] && mkdir "$d/sgid" && chgrp 4321 "$d/sgid" && chmod 2777 "$d/sgid"
	return 0
}
# expect_tool_host DIR DAX: what the tool part did, seen from the host (build/guest/fstool
# is the guest's fstool).
expect_tool_host() {
	local d=$1 w="minivmm-mmap-$2" f want
	[ "$(dd if="$d/mw" bs=1 skip=4090 count=${#w} 2>/dev/null)" = "$w" ] ||
		{ why="the guest's shared mmap write is not in the host's mw"; return 1; }
	[ "$(dd if="$d/w-mmap" bs=1 skip=8000 count=${#w} 2>/dev/null)" = "$w" ] ||
		{ why="the guest's shared mmap write is not in the host's w-mmap"; return 1; }
	expect_out "SEEK_MAP=$("$GUEST/fstool" seek "$d/holes")" || return 1
	[ -d "$d/sgid" ] || return 0
	for f in sgf-0:0:4321:2775 sgd-0:0:4321:2775 sgf-1000:1000:4321:775 sgd-1000:1000:4321:2775; do
		want=${f#*:}
		[ "$(stat -c %u:%g:%a "$d/sgid/${f%%:*}")" = "$want" ] ||
			{ why="sgid/${f%%:*} on the host: $(stat -c %u:%g:%a "$d/sgid/${f%%:*}"), want $want"; return 1; }
	done
}
t_fs_ops() { # dax = never, 2 vCPUs (2 request queues), the 100 MiB file
	mkshare "$T/share" big
	mktool "$T/share"
	fs ops,tool,xattr never --set vm.vcpus=2 --set "share.0.path=$T/share" --set share.0.dax=never &&
		expect_rc 0 && expect_fs_ok && expect_ops_host "$T/share" &&
		expect_tool_host "$T/share" never || return 1
	grep -q "share.0: $T/share as tag 'share0', dax never, no DAX window.* 2 request queues" "$T/err" ||
		{ why="no share summary at -v"; return 1; }
}
# dax = always; a 64 MiB read barely grows the guest's page cache (vs. never). xattrs
# round-trip on a second share with xattr = on, in build/ (tmpfs before Linux 6.6 has no
# user.* xattrs).
t_fs_dax() {
	local with without xd xtag="" xset=() v
	mkshare "$T/share"
	mktool "$T/share"
	head -c 67108864 /dev/urandom >"$T/share/data/big64"
	xd=$(mktemp -d "${MINIVMM_BUILD:-$repo/build}/e2e-xattr.XXXXXX") || { why="mktemp in build/"; return 1; }
	if "$GUEST/fstool" xattr-set "$xd" user.probe 1 >/dev/null 2>&1; then
		"$GUEST/fstool" xattr-rm "$xd" user.probe >/dev/null
		xtag=" minivmm.fs_xtag=xshare"
		# A fixed small max_fds: share.0 keeps (nearly) the whole automatic budget.
		xset=(--set "share.1.path=$xd" --set share.1.tag=xshare --set share.1.xattr=on
			--set share.1.max_fds=64)
	else
		echo "  fs_dax: no user xattrs in $xd, xattr round trip not tested"
	fi
	guest fs "minivmm.fs=ops,tool,xattr,cache minivmm.fs_dax=always minivmm.fs_tag=daxshare$xtag" -v \
		--set "share.0.path=$T/share" --set share.0.dax=always --set share.0.tag=daxshare \
		--set vm.memory=512M "${xset[@]}" &&
		expect_rc 0 && expect_fs_ok && expect_ops_host "$T/share" &&
		expect_tool_host "$T/share" always || { rm -rf "$xd"; return 1; }
	if [ -n "$xtag" ]; then
		for v in user.minivmm:hello-xattr user.keep:kept; do
			[ "$("$GUEST/fstool" xattr-get "$xd/x" "${v%%:*}" 2>&1)" = "${v#*:}" ] ||
				{ why="${v%%:*} of x on the host: $("$GUEST/fstool" xattr-get "$xd/x" "${v%%:*}" 2>&1)"; rm -rf "$xd"; return 1; }
		done
		! "$GUEST/fstool" xattr-get "$xd/x" user.gone >/dev/null ||
			{ why="user.gone is still on the host"; rm -rf "$xd"; return 1; }
	fi
	rm -rf "$xd"
	grep -q "share.0: .* [1-9][0-9]* mappings set up" "$T/err" || { why="no DAX mapping was set up"; return 1; }
	with=$(value CACHED_DELTA_KB)
	rm -rf "$T/share/w"
	fs cache never --set "share.0.path=$T/share" --set share.0.dax=never --set vm.memory=512M &&
		expect_rc 0 && expect_fs_ok || return 1
	without=$(value CACHED_DELTA_KB)
	echo "  fs_dax: page cache growth reading 64 MiB: ${with} KiB with DAX, ${without} KiB without"
	[ -n "$with" ] && [ -n "$without" ] && [ "$with" -lt 8192 ] && [ "$without" -gt 49152 ] ||
		{ why="Cached grew by '${with}' KiB with DAX, '${without}' KiB without"; return 1; }
}
t_fs_dax_inode() {
	mkshare "$T/share"
	fs ops inode --set "share.0.path=$T/share" && expect_rc 0 && expect_fs_ok &&
		expect_ops_host "$T/share"
}
t_fs_readonly() {
	local before
	mkshare "$T/share"
	before=$(cd "$T/share" && find . -printf '%p %m %s %T@\n' | sort && cat data/* | sha256sum)
	fs ro never --set "share.0.path=$T/share" --set share.0.readonly=on && expect_rc 0 &&
		expect_fs_ok || return 1
	[ "$(cd "$T/share" && find . -printf '%p %m %s %T@\n' | sort && cat data/* | sha256sum)" = "$before" ] ||
		{ why="the read-only share changed on the host"; return 1; }
}
t_fs_escape() {
	local d=$T/share secret="minivmm-host-secret-$$"
	mkshare "$d"
	echo "$secret" >"$T/outside-marker"
	ln -s / "$d/rootlink"
	ln -s ../ "$d/uplink"
	ln -s "$T/outside-marker" "$d/abslink"
	ln -s ../outside-marker "$d/relmarker"
	mkfifo "$d/hostfifo"
	fs escape never --set "share.0.path=$d" --set share.0.max_fds=2048 && expect_rc 0 &&
		expect_fs_ok || return 1
	! grep -q "$secret" "$T/out.txt" || { why="the guest read the host file outside the share"; return 1; }
	expect_out "ESCAPE_FIND: 0" || return 1
	# max_fds = 2048 bounds what the guest could open at once: it got errors, not a VMM
	# out of descriptors, and the share worked afterwards (many_recover).
	expect_out MANY_CREATED=1500 && expect_range MANY_OPEN_REFUSED 1 1500 || return 1
	if grep -q -x MKNOD=created "$T/out.txt"; then
		[ -b "$d/node" ] || { why="the guest's mknod left no block device node on the host"; return 1; }
	fi
	[ "$(cat "$T/outside-marker")" = "$secret" ] || { why="the marker outside the share changed"; return 1; }
}
t_fs_truncate() { # the host truncates a file the guest has mapped through DAX
	local d=$T/share i pid zero
	mkdir -p "$d"
	head -c 2097152 /dev/urandom >"$d/tr"
	head -c 4096 /dev/zero | tr '\0' 0 >"$d/flag"
	rm -f "$T/rc"
	: >"$T/out"
	(
		timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v --set "share.0.path=$d" \
			--set share.0.dax=always --set share.0.cache=always --set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=fs minivmm.fs=truncate minivmm.fs_dax=always" \
			</dev/null >"$T/out" 2>"$T/err"
		echo $? >"$T/rc"
	) &
	pid=$!
	for ((i = 0; i < LIMIT * 2; i++)); do
		grep -q TRUNCATE_NOW "$T/out" 2>/dev/null && break
		[ -f "$T/rc" ] && break
		sleep 0.5
	done
	truncate -s 4096 "$d/tr"
	printf 1 | dd of="$d/flag" conv=notrunc 2>/dev/null
	wait "$pid"
	rc=$(cat "$T/rc" 2>/dev/null || echo "?")
	tr -d '\r' <"$T/out" >"$T/out.txt"
	zero=$(head -c 4096 /dev/zero | sha256sum | cut -d' ' -f1)
	expect_rc 0 && expect_out TRUNCATE_NOW && expect_out TRUNCATED_SEEN=1 &&
		expect_out "TAIL_SHA=$zero" && expect_out TR_ALIVE=1 && expect_fs_ok || return 1
	grep -q "share.0: .* [1-9][0-9]* re-clamped at EOF" "$T/err" ||
		{ why="no DAX mapping was clamped at EOF"; return 1; }
}
# A change made on the host shows in the guest once its cached attributes time out:
# cache = auto keeps them 1 s (the guest then sees the new size and mtime and drops the
# old data), cache = none not at all.
t_fs_hostchange() {
	local d=$T/share i pid mode seen
	for mode in auto none; do
		rm -rf "$d" "$T/rc"
		mkdir -p "$d"
		echo "before the change" >"$d/hc"
		: >"$T/out"
		(
			timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" --set "share.0.path=$d" \
				--set share.0.dax=never --set "share.0.cache=$mode" \
				--set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=fs minivmm.fs=hostchange" \
				</dev/null >"$T/out" 2>"$T/err"
			echo $? >"$T/rc"
		) &
		pid=$!
		for ((i = 0; i < LIMIT * 2; i++)); do
			grep -q HC_READY "$T/out" 2>/dev/null && break
			[ -f "$T/rc" ] && break
			sleep 0.5
		done
		# Another size and a later mtime, written in place (same inode).
		sleep 1
		echo "after the change, on the host" >"$d/hc"
		wait "$pid"
		rc=$(cat "$T/rc" 2>/dev/null || echo "?")
		tr -d '\r' <"$T/out" >"$T/out.txt"
		expect_rc 0 && expect_out "HC_OLD=before the change" &&
			expect_out "HC_NEW=after the change, on the host" || { why="cache=$mode: $why"; return 1; }
		seen=$(value HC_SEEN_DS)
		# Within the timeout plus the guest's polling, with room for the emulated L1.
		case $seen in '' | never | *[!0-9]*) why="cache=$mode: never saw the change"; return 1 ;; esac
		[ "$seen" -le 100 ] || { why="cache=$mode: the change showed after ${seen}/10 s"; return 1; }
	done
}
t_fs_bad_share() {
	vm "$CFG" --set share.0.path=/nonexistent-share && expect_rc 2 &&
		expect_err "share.0.*path.*nonexistent-share.*No such file" || return 1
	: >"$T/notadir"
	vm "$CFG" --set "share.0.path=$T/notadir" && expect_rc 2 && expect_err "Not a directory" || return 1
	mkdir -p "$T/s1"
	vm "$CFG" --set "share.0.path=$T/s1" --set "share.1.path=$T/s1" --set share.1.tag=share0 &&
		expect_rc 2 && expect_err "share.1.*tag.*also the tag of \[share.0\]" || return 1
	vm "$CFG" --set "share.0.path=$T/s1" --set share.0.dax_window=3M && expect_rc 2 &&
		expect_err "dax_window.*multiple of 2M"
}
# fs_rootfs: the guest's root filesystem is the host's own / over virtio-fs (readonly = on,
# dax = inode); the guest chroots into it and runs the host's python3, perl, bash and
# coreutils from there (scenario rootfs). The FUSE server never crosses a mount point, so
# minivmm runs in a mount namespace of its own and shares $T/root, a non-recursive bind
# mount of /: the root filesystem without what is mounted on it, where /proc, /dev, /tmp...
# are the plain directories underneath and the guest mounts its own there. Without the
# right to do that (not root) it shares / itself (mount points: EXDEV, no /proc in the guest).
t_fs_rootfs() {
	local share=$T/root pre=() f py files want before s e
	for f in /usr/bin/python3 /usr/bin/perl /bin/bash /etc/debian_version; do
		[ -e "$f" ] || { why="needs a Debian host with $f"; return 1; }
	done
	py=$(readlink -f /usr/bin/python3)
	files="$py,/etc/debian_version,$(readlink -f /bin/ls)"
	mkdir -p "$share"
	if unshare -m --propagation private true 2>/dev/null; then
		# shellcheck disable=SC2016 # expanded by that sh
		pre=(unshare -m --propagation private sh -c 'mount --bind / "$1" && shift && exec "$@"' sh "$share")
	else
		share=/
	fi
	before=$(stat -c '%n %s %Y' /etc/debian_version /usr/bin && sha256sum /etc/debian_version)
	s=$(date +%s)
	timeout -k 5 "$LIMIT" "${pre[@]}" "$MINIVMM" run "$CFG" -v --set "share.0.path=$share" \
		--set share.0.tag=root --set share.0.readonly=on --set share.0.dax=inode \
		--set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=rootfs minivmm.root_sha=$files" \
		</dev/null >"$T/out" 2>"$T/err"
	rc=$?
	e=$(date +%s)
	tr -d '\r' <"$T/out" >"$T/out.txt"
	echo "  fs_rootfs: shared $share, $((e - s)) s"
	expect_rc 0 && expect_out "ROOT_MOUNTED=root dax=inode" || return 1
	grep -q -x "ROOT_FAILS=0" "$T/out.txt" ||
		{ why="guest checks failed: $(grep '^ROOT_FAIL' "$T/out.txt" | head -n 5 | tr '\n' ';')"; return 1; }
	if [ "$share" != / ]; then
		expect_out "ROOT_SUBMOUNTS=proc sys dev tmp" && expect_out "ROOT_EXE=$py" || return 1
	fi
	# shellcheck disable=SC2012 # the same count as the guest's
	expect_out "DEBIAN_VERSION=$(cat /etc/debian_version)" &&
		expect_out "USR_BIN_COUNT=$(ls /usr/bin | wc -l)" &&
		expect_out "ROOT_SH=$(readlink -f /bin/sh)" &&
		expect_out "ROOT_LS=$(/bin/ls --version | head -n 1)" || return 1
	for f in ${files//,/ }; do
		want=$(sha256sum <"$f" | cut -d' ' -f1)
		expect_out "SHA=$f $want" && expect_out "PYSHA=$f $want" || return 1
	done
	grep -q "share.0: .* [1-9][0-9]* mappings set up" "$T/err" || { why="no DAX mapping was set up"; return 1; }
	if [ "$(stat -c '%n %s %Y' /etc/debian_version /usr/bin && sha256sum /etc/debian_version)" != "$before" ] ||
		[ -e /minivmm-rootfs-probe ] || [ -e /usr/minivmm-rootfs-probe ] || [ -e /etc/minivmm-rootfs-probe ]; then
		why="the host's / changed"
		return 1
	fi
}

CASES="boot_1cpu boot_2cpu boot_4cpu memory_512m memory_4g boot_pvh decompress_guest exitport
	serial_input poweroff reboot reboot_restart panic timeout sigterm nested_on nested_off
	serial_file demo_cfg bad_section bad_key bad_size bad_vcpus bad_kernel
	bad_set bad_line blk_rw blk_queues blk_readonly blk_two_disks blk_discard blk_qcow2
	blk_cache_none blk_bad_disk fs_ops fs_dax fs_dax_inode fs_readonly fs_escape fs_truncate fs_hostchange
	fs_bad_share fs_rootfs"
# Cases by area in tests/e2e/*.sh: each file defines its t_* functions and a list
# AREA_CASES (e.g. SNAP_CASES in snapshot.sh) that is run after the ones above.
for f in "$here"/*.sh; do
	[ "$f" = "$here/run.sh" ] && continue
	# shellcheck disable=SC1090 # one file per area
	. "$f"
done
for v in $(compgen -v | grep -E '^[A-Z0-9]+_CASES$' | sort); do
	CASES="$CASES ${!v}"
done
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
done_before() { [ -n "$progress" ] && grep -q "^\(PASS\|FAIL\|FLAKY\) $1\b" "$progress" 2>/dev/null; }
record() { [ -z "$progress" ] || { echo "$1" >>"$progress" && sync "$progress" 2>/dev/null; }; }
if [ -n "$progress" ] && [ -s "$progress" ]; then
	echo "e2e: resuming after an L1 failure; $(grep -c '^\(PASS\|FAIL\|FLAKY\) ' "$progress") case(s) done"
	record "RESUME"
	started=$(sed -n 's/^START //p' "$progress" | tail -n 1)
	if [ -n "$started" ] && ! grep -q "^\(PASS\|FAIL\) $started\b" "$progress"; then
		echo "e2e: case $started was running when the L1 died; running it again"
	fi
fi

for c in $CASES; do
	if done_before "$c"; then
		case $(grep "^\(PASS\|FAIL\|FLAKY\) $c\b" "$progress" | tail -n 1) in
		PASS*) pass=$((pass + 1)) ;;
		FLAKY*) flaky=$((flaky + 1)) flaky_names="$flaky_names $c" ;;
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
	ok=0
	first=""
	case_start=$(date +%s)
	"t_$c" && ok=1
	# A guest that stopped making progress (an RCU stall on one vCPU, seen about once in
	# 50-100 nested runs; see the notes of issue 3) times out. Said loudly and run once
	# more: a case that times out twice fails; one that passes the second time is FLAKY.
	if [ $ok = 0 ] && [[ $why == *"timed out after"* ]]; then
		first=$why
		echo "RETRY $c: ${why}"
		for f in out.txt err; do
			[ -s "$T/$f" ] || continue
			echo "  --- last lines of $f (first attempt):"
			tail -n 8 "$T/$f" | sed 's/^/  | /'
		done
		record "RETRY $c"
		why=""
		rm -f "$T/out" "$T/err" "$T/out.txt"
		"t_$c" && ok=1
	fi
	if [ $ok = 1 ] && [ -n "$first" ]; then
		echo "FLAKY $c: passed only on its second attempt ($(($(date +%s) - case_start)) s); the first: $first"
		record "FLAKY $c"
		flaky=$((flaky + 1))
		flaky_names="$flaky_names $c"
	elif [ $ok = 1 ]; then
		echo "PASS $c ($(($(date +%s) - case_start)) s)"
		record "PASS $c"
		pass=$((pass + 1))
	else
		echo "FAIL $c: ${why:-failed} ($(($(date +%s) - case_start)) s)"
		for f in out.txt err; do
			[ -s "$T/$f" ] || continue
			echo "  --- last lines of $f:"
			tail -n 15 "$T/$f" | sed 's/^/  | /'
		done
		record "FAIL $c"
		fail=$((fail + 1))
	fi
done
resumed=0
[ -n "$progress" ] && resumed=$(grep -c '^RESUME$' "$progress" 2>/dev/null)
echo "e2e: $pass passed, $fail failed, $flaky flaky${flaky_names:+ (passed only on a retry:$flaky_names)}$(
	[ "${resumed:-0}" = 0 ] || echo "; resumed $resumed time(s) in a new L1 after an L1 fault")"
[ "$fail" = 0 ]
