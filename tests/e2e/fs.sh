# shellcheck shell=bash
# minivmm e2e: virtio-fs shares ([share.N]).
# Sourced by tests/e2e/run.sh, which provides the helpers (vm, guest, expect_*, mkdisk,
# mkshare, ...) and $MINIVMM, $CFG, $GUEST, $T, $LIMIT, $why, $rc.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
FS_CASES="fs_ops fs_dax fs_dax_inode fs_readonly fs_escape fs_truncate fs_hostchange fs_bad_share
	fs_rootfs fs_pause"

# --- virtio-fs ----------------------------------------------------------------------------
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
# expect_ops_host DIR [FILES]: what the ops part did (minivmm.fs_files=FILES, default
# 2000), seen from the host.
expect_ops_host() {
	local d=$1 files=${2:-2000} f n
	for f in "$d"/data/*; do
		n=${f##*/}
		expect_out "SHA_$n=$(sha256sum <"$f" | cut -d' ' -f1)" || return 1
		cmp -s "$f" "$d/w/copy_$n" || { why="the guest's copy of $n differs on the host"; return 1; }
	done
	[ "$(find "$d/w/big" -type f | wc -l)" = "$files" ] || { why="host sees $(find "$d/w/big" -type f | wc -l) files in w/big"; return 1; }
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
	# 72..163 s in CI runs (nested, emulated L1); twice cut off at 180 s while still running.
	local LIMIT=$((LIMIT + 120))
	mkshare "$T/share" big
	mktool "$T/share"
	# allow_setid = on: the tool part checks the kernel's set-gid rules (CVE-2022-0358);
	# by default set-id bits are dropped (share_security.sh checks that).
	# A run still going after 200 s lists the guest's blocked tasks (the rare stalls here).
	# 600 files, not 2000: the emulated L1 failed in that loop (guest triple faults, stalls,
	# L1 deaths; issue 15's notes), in proportion to its thousands of FUSE requests.
	fs ops,tool,xattr "never minivmm.fs_stall=200 minivmm.fs_files=600" --set vm.vcpus=2 \
		--set "share.0.path=$T/share" --set share.0.dax=never --set share.0.allow_setid=on &&
		expect_rc 0 && expect_fs_ok && expect_ops_host "$T/share" 600 &&
		expect_tool_host "$T/share" never ||
		{
			sed -n '/FS_STALL\|Show Blocked State/,$p' "$T/out.txt" | head -n 200 |
				sed 's/^/  fs_ops| /'
			return 1
		}
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
	guest fs "minivmm.fs=ops,tool,xattr,cache minivmm.fs_dax=always minivmm.fs_tag=daxshare minivmm.fs_files=300$xtag" -v \
		--set "share.0.path=$T/share" --set share.0.dax=always --set share.0.tag=daxshare \
		--set share.0.allow_setid=on --set vm.memory=512M "${xset[@]}" &&
		expect_rc 0 && expect_fs_ok && expect_ops_host "$T/share" 300 &&
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
	fs ops "inode minivmm.fs_files=300" --set "share.0.path=$T/share" && expect_rc 0 &&
		expect_fs_ok && expect_ops_host "$T/share" 300
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
			--set share.0.dax=always --set share.0.cache=always --set "boot.cmdline=$GUEST_BOOT minivmm.scenario=fs minivmm.fs=truncate minivmm.fs_dax=always" \
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
				--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=fs minivmm.fs=hostchange" \
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
		pre=("$repo/tests/harness/rootbind.sh" "$share")
	else
		share=/
	fi
	before=$(stat -c '%n %s %Y' /etc/debian_version /usr/bin && sha256sum /etc/debian_version)
	s=$(date +%s)
	timeout -k 5 "$LIMIT" "${pre[@]}" "$MINIVMM" run "$CFG" -v --set "share.0.path=$share" \
		--set share.0.tag=root --set share.0.readonly=on --set share.0.dax=inode \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=rootfs minivmm.root_sha=$files" \
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

# The share across `ctl pause` / `resume` (issue 12: pause used to reset the FUSE session and
# clear the DAX window, so every request after resume failed and DAX reads gave zeros): the
# guest (scenario fspause) keeps writing, reading and reading through DAX after the resume.
fsp_round() { tr -d '\r' <"$T/p.log" 2>/dev/null | sed -n 's/^FSPAUSE=//p' | tail -n 1; }
fsp_wait() { # fsp_wait N: until the guest finished round N (or its VM ended)
	local i
	for ((i = 0; i < LIMIT * 5; i++)); do
		[ "$(fsp_round)" -ge "$1" ] 2>/dev/null && return 0
		kill -0 "$fsp_pid" 2>/dev/null || break
		sleep 0.2
	done
	why="the guest never finished round $1: $(tail -n 3 "$T/p.log" | tr '\r\n' '  ')"
	return 1
}
t_fs_pause() {
	local n st
	rm -rf "$T/share" "$T/p.log" "$T/p.sock"
	mkdir -p "$T/share"
	printf 'minivmm-dax-data and more' >"$T/share/dax"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=fspause" \
		--set "console.serial=file:$T/p.log" --api-socket "$T/p.sock" \
		--set "share.0.path=$T/share" --set share.0.dax=always --set vm.memory=512M \
		</dev/null >"$T/out" 2>"$T/err" &
	fsp_pid=$!
	fsp_wait 3 || { kill "$fsp_pid" 2>/dev/null; wait "$fsp_pid"; return 1; }
	"$MINIVMM" ctl --socket "$T/p.sock" pause || { why="pause failed"; kill "$fsp_pid"; wait "$fsp_pid"; return 1; }
	st=$("$MINIVMM" ctl --socket "$T/p.sock" status)
	echo "$st" | grep -q '"state":"paused"' || why="status after pause: $st"
	sleep 1
	n=$(fsp_round)
	"$MINIVMM" ctl --socket "$T/p.sock" resume || why="resume failed"
	[ -z "$why" ] && fsp_wait $((n + 5))
	touch "$T/share/stop"
	wait "$fsp_pid"
	rc=$?
	tr -d '\r' <"$T/p.log" >"$T/out.txt"
	[ -z "$why" ] || return 1
	expect_rc 0 && expect_out "FSPAUSE_DONE=[0-9]*" || return 1
	! grep -q FSPAUSE_FAIL "$T/out.txt" || { why=$(grep FSPAUSE_FAIL "$T/out.txt" | head -n 1); return 1; }
}
