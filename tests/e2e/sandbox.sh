# shellcheck shell=bash
# minivmm e2e: the VMM's sandbox (docs/sandbox.md): a seccomp-denied system call is
# caught, a VM runs without root (a user in the kvm group), a share works unprivileged
# with an identity mapping, and the jail (namespaces, a root of bind mounts, uid/gid
# drop, cgroup v2 limits). Sourced by tests/e2e/run.sh, which provides $MINIVMM, $CFG,
# $T, $LIMIT, $why, $rc and the helpers (vm, guest, expect_*).
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
SANDBOX_CASES="sb_denied sb_nonroot sb_nonroot_share sb_jail"
SB_UID=4242

# The kvm group's id (a made-up one if the host has none).
sb_kvm_gid() { getent group kvm | cut -d: -f3 | grep . || echo 4243; }

# sb_as_user CMD...: CMD as uid $SB_UID, gid $SB_UID, supplementary group kvm, no
# capabilities; /dev/kvm opened up to the kvm group for the while (restored by
# sb_kvm_restore).
sb_kvm_open() {
	sb_kvm_mode=$(stat -c %a /dev/kvm) sb_kvm_grp=$(stat -c %g /dev/kvm)
	chgrp "$(sb_kvm_gid)" /dev/kvm && chmod 0660 /dev/kvm
}
sb_kvm_restore() { chgrp "$sb_kvm_grp" /dev/kvm && chmod "$sb_kvm_mode" /dev/kvm; }
sb_as_user() {
	setpriv --reuid="$SB_UID" --regid="$SB_UID" --groups="$(sb_kvm_gid)" --inh-caps=-all \
		--bounding-set=-all -- "$@"
}
# A directory of the user's inside $T (which becomes traversable, not readable, for it).
sb_user_dir() {
	chmod 711 "$T"
	rm -rf "${T:?}/$1"
	mkdir -p "$T/$1" && chown "$SB_UID:$SB_UID" "$T/$1"
}

# A denied call ends the VMM at once, by SIGSYS, with one line naming thread, role and
# call; MINIVMM_SANDBOX_TEST_DENY=ROLE makes the role's first thread make one. Without
# the sandbox (seccomp = off) the same run boots normally.
t_sb_denied() {
	local role want
	for role in vcpu main; do
		# Explicit: sanitizer builds default to seccomp = log (docs/sandbox.md).
		MINIVMM_SANDBOX_TEST_DENY=$role guest info "" --set sandbox.seccomp=on && expect_rc 159 ||
			{ why="$role: $why: $(tail -n 2 "$T/err" | tr '\n' ' ')"; return 1; }
		want="minivmm: seccomp: thread [a-z0-9+]* (role $role) made denied system call 41 (socket); stopping"
		grep -q -x "$want" "$T/err" || { why="$role: stderr lacks '$want': $(tail -n 3 "$T/err" | tr '\n' ' ')"; return 1; }
		! grep -q "CPUS=" "$T/out.txt" || [ "$role" = main ] ||
			{ why="$role: the guest ran on after the denied call"; return 1; }
	done
	grep -q -x "minivmm: seccomp: thread minivmm (role main) .*" "$T/err" ||
		{ why="the main thread is not named in: $(grep seccomp "$T/err")"; return 1; }
	MINIVMM_SANDBOX_TEST_DENY=vcpu guest info "" --set sandbox.seccomp=off && expect_rc 0 &&
		expect_out CPUS=1 || { why="seccomp = off: $why"; return 1; }
	! grep -q seccomp "$T/err" || { why="seccomp = off still filtered: $(grep seccomp "$T/err")"; return 1; }
}

# Without root: a user in the kvm group boots a VM with a disk; what it makes is its own.
t_sb_nonroot() {
	local d=$T/nr r
	sb_user_dir nr || { why="cannot make $d"; return 1; }
	mkdisk "$d/d.img" 16M && chown "$SB_UID:$SB_UID" "$d/d.img"
	sb_kvm_open || { why="cannot open /dev/kvm to the kvm group"; return 1; }
	sb_as_user timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=blk minivmm.blk=read,write" \
		--set "disk.0.path=$d/d.img" --set "console.serial=file:$d/console.log" \
		</dev/null >"$T/out" 2>"$T/err"
	rc=$?
	sb_kvm_restore
	tr -d '\r' <"$d/console.log" >"$T/out.txt" 2>/dev/null
	expect_rc 0 && expect_out "READ_SHA256=$(read_sha)" && expect_out WRITE=done &&
		expect_written "$d/d.img" || { why="$why: $(tail -n 3 "$T/err" | tr '\n' ' ')"; return 1; }
	r=$(stat -c %u "$d/console.log")
	[ "$r" = "$SB_UID" ] || { why="console file owned by $r, not $SB_UID: minivmm did not run as the user"; return 1; }
}

# A share without root, uid_map/gid_map mapping guest root to the user: the guest's file
# operations work (all but chown to other owners, which needs CAP_CHOWN: the scenario's
# one failure, so it exits 1), its files show as root's in the guest, and what it creates
# belongs to the user on the host.
t_sb_nonroot_share() {
	local d=$T/nrs fails
	sb_user_dir nrs || { why="cannot make $d"; return 1; }
	mkshare "$d/share" && chown -R "$SB_UID:$SB_UID" "$d/share"
	sb_kvm_open || { why="cannot open /dev/kvm to the kvm group"; return 1; }
	sb_as_user timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=fs minivmm.fs=ops minivmm.fs_dax=inode" \
		--set "share.0.path=$d/share" --set "share.0.uid_map=0:$SB_UID:1" \
		--set "share.0.gid_map=0:$SB_UID:1" --set "console.serial=file:$d/console.log" \
		</dev/null >"$T/out" 2>"$T/err"
	rc=$?
	sb_kvm_restore
	tr -d '\r' <"$d/console.log" >"$T/out.txt" 2>/dev/null
	expect_rc 1 && expect_out "FS_MOUNTED=.*" && expect_out FS_FAILS=1 ||
		{ why="$why: $(tail -n 3 "$T/err" | tr '\n' ' ')"; return 1; }
	fails=$(grep '^FS_FAIL ' "$T/out.txt" | cut -d: -f1 | tr '\n' ' ')
	[ "$fails" = "FS_FAIL chown " ] || { why="guest checks failed: $fails"; return 1; }
	# chown to 1234:5678 was refused; the file stayed the guest's own, i.e. root's.
	expect_out "FS_FAIL chown: got '0:0', want '1234:5678'" || return 1
	expect_out "FS_OK copies" && expect_out "FS_OK readdir_2000" || return 1
	[ "$(stat -c %u:%g "$d/share/w/b")" = "$SB_UID:$SB_UID" ] ||
		{ why="w/b on the host: $(stat -c %u:%g "$d/share/w/b")"; return 1; }
	[ "$(find "$d/share/w" ! -user "$SB_UID" | wc -l)" = 0 ] ||
		{ why="files in w/ not the user's: $(find "$d/share/w" ! -user "$SB_UID" | head -n 3)"; return 1; }
}

# sb_jail_vmm PARENT: the jailed VMM, the child of the minivmm that made the jail.
sb_jail_vmm() { pgrep -P "$1" -x minivmm | head -n 1; }

# The jail: as root, with a disk and an API socket; the VMM is PID 1 of its own PID
# namespace, runs as the jail's user, sees a root holding only what the VM uses, and is
# in a cgroup with the limits asked for. Without cgroup v2, or without root, it refuses
# with a reason.
t_sb_jail() {
	local d=$T/jl j=$T/jl/root p vmm="" i list="" cg="" mounted=0 st
	local sb_uid="" sb_nspid="" sb_caps="" sb_pids="" sb_cpu="" sb_mem="" cg_left
	sb_user_dir jl || { why="cannot make $d"; return 1; }
	mkdir -p "$j" "$d/sock" && chown "$SB_UID:$SB_UID" "$j" "$d/sock"
	mkdisk "$d/d.img" 16M && chown "$SB_UID:$SB_UID" "$d/d.img"
	# Not root: refused, nothing runs.
	sb_kvm_open
	sb_as_user "$MINIVMM" run "$CFG" --jail "$j" </dev/null >"$T/out" 2>"$T/err"
	rc=$?
	sb_kvm_restore
	expect_rc 1 && expect_err "jail: needs root" || return 1
	# Limits without cgroup v2 at /sys/fs/cgroup: refused, naming why.
	if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ]; then
		vm "$CFG" --jail "$j" --set sandbox.pids_max=64 && expect_rc 1 &&
			expect_err "cgroup limits need cgroup v2" || return 1
		mount -t cgroup2 none /sys/fs/cgroup || { why="cannot mount cgroup2"; return 1; }
		mounted=1
	fi
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" -v --jail "$j" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=blk minivmm.blk=read,write" \
		--set "disk.0.path=$d/d.img" --set "console.serial=file:$d/console.log" \
		--set sandbox.pids_max=64 --set sandbox.memory_max=1G --set "sandbox.cpu_max=150000 100000" \
		--api-socket "$d/sock/api.sock" </dev/null >"$T/out" 2>"$T/err" &
	p=$!
	for ((i = 0; i < LIMIT * 5; i++)); do
		[ -S "$d/sock/api.sock" ] && vmm=$(sb_jail_vmm "$(pgrep -P "$p" -x minivmm | head -n 1)") &&
			[ -n "$vmm" ] && break
		kill -0 "$p" 2>/dev/null || break
		sleep 0.2
	done
	if [ -n "$vmm" ]; then
		list=$(ls -A "/proc/$vmm/root" | tr '\n' ' ')
		cg=$(sed -n 's/^0:://p' "/proc/$vmm/cgroup")
		sb_uid=$(awk '/^Uid:/ {print $2}' "/proc/$vmm/status")
		sb_nspid=$(awk '/^NSpid:/ {print $NF}' "/proc/$vmm/status")
		sb_caps=$(awk '/^CapEff:/ {print $2}' "/proc/$vmm/status")
		sb_pids=$(cat "/sys/fs/cgroup$cg/pids.max" 2>/dev/null)
		sb_cpu=$(cat "/sys/fs/cgroup$cg/cpu.max" 2>/dev/null)
		sb_mem=$(cat "/sys/fs/cgroup$cg/memory.max" 2>/dev/null)
	fi
	# Through the jail's socket; "no VM" (ESRCH) until it is built.
	for ((i = 0; i < LIMIT * 5; i++)); do
		st=$("$MINIVMM" ctl --socket "$d/sock/api.sock" status 2>&1)
		case $st in *'"state":"running"'*) break ;; esac
		kill -0 "$p" 2>/dev/null || break
		sleep 0.2
	done
	wait "$p"
	rc=$?
	# The cgroup goes with the VMM.
	cg_left=0
	[ -n "$cg" ] && [ -d "/sys/fs/cgroup$cg" ] && cg_left=1
	[ "$mounted" = 1 ] && { rmdir /sys/fs/cgroup/minivmm-* 2>/dev/null; umount /sys/fs/cgroup; }
	echo "  sb_jail: the jailed VMM's / holds: $list; cgroup $cg"
	[ -n "$vmm" ] || { why="no jailed VMM found (exit $rc): $(tail -n 3 "$T/err" | tr '\n' ' ')"; return 1; }
	tr -d '\r' <"$d/console.log" >"$T/out.txt"
	expect_rc 0 && expect_out "READ_SHA256=$(read_sha)" && expect_out WRITE=done &&
		expect_written "$d/d.img" && expect_err "jail: running in $j as uid $SB_UID" || return 1
	echo "$st" | grep -q '"state":"running"' || { why="API status through the jail: $st"; return 1; }
	# Only the top directories of what the VM uses (the repo's and $T's), /dev, /proc.
	for i in etc usr bin root home var; do
		case " $list" in *" $i "*) why="the jail's / shows /$i: $list"; return 1 ;; esac
	done
	for i in dev proc; do
		case " $list " in *" $i "*) ;; *) why="the jail's / lacks /$i: $list"; return 1 ;; esac
	done
	[ "$sb_uid" = "$SB_UID" ] || { why="the jailed VMM ran as uid $sb_uid"; return 1; }
	[ "$sb_nspid" = 1 ] || { why="the jailed VMM is PID $sb_nspid in its namespace, not 1"; return 1; }
	[ "$sb_caps" = 0000000000000000 ] || { why="the jailed VMM has capabilities $sb_caps"; return 1; }
	[ "$sb_pids" = 64 ] && [ "$sb_cpu" = "150000 100000" ] && [ "$sb_mem" = 1073741824 ] ||
		{ why="cgroup limits: pids.max '$sb_pids' cpu.max '$sb_cpu' memory.max '$sb_mem'"; return 1; }
	case $cg in */minivmm-[0-9]*) ;; *) why="the jailed VMM is in cgroup '$cg'"; return 1 ;; esac
	[ "$cg_left" = 0 ] || { why="cgroup $cg left behind"; return 1; }
}
