# shellcheck shell=bash
# minivmm e2e: snapshots (save through the API socket, restore eager/lazy, clones, bad
# input). Sourced by tests/e2e/run.sh, which provides $MINIVMM, $CFG, $T, $LIMIT, $why, $rc.
# The guest runs tests/guest/scenarios/snapcount.sh: a counter that checks its own
# tmpfs and disk state at every step.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
SNAP_CASES="snap_1cpu snap_2cpu_io snap_clone snap_api snap_bad snap_resave"
SNAP_TO=30

# snap_boot NAME CMDLINE-EXTRA ARGS...: boot snapcount in the background with an API
# socket at $T/NAME.sock, its console in $T/NAME.log; its pid in $snap_pid.
snap_boot() {
	local n=$1 extra=$2
	shift 2
	rm -f "$T/$n.log" "$T/$n.sock"
	timeout -k 5 "$LIMIT" "$MINIVMM" run "$CFG" \
		--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=snapcount minivmm.count_to=$SNAP_TO$extra" \
		--set "console.serial=file:$T/$n.log" --api-socket "$T/$n.sock" "$@" \
		</dev/null >"$T/$n.out" 2>"$T/$n.err" &
	snap_pid=$!
}
# wait_count LOG N: until the guest printed COUNT=N (or its VM ended).
wait_count() {
	local i
	for ((i = 0; i < LIMIT * 5; i++)); do
		grep -q "COUNT=$2 " "$1" 2>/dev/null && return 0
		kill -0 "$snap_pid" 2>/dev/null || break
		sleep 0.2
	done
	why="the guest never reached COUNT=$2: $(tail -n 3 "$1" 2>/dev/null | tr '\r\n' '  ') $(tail -n 3 "${1%.log}.err" | tr '\n' ' ')"
	return 1
}
counts() { tr -d '\r' <"$1" | sed -n 's/^COUNT=\([0-9]*\) .*/\1/p'; }
# snap_save NAME SNAPSHOT: save --stop through NAME's socket; the VM must then exit 0.
snap_save() {
	local r
	"$MINIVMM" save --socket "$T/$1.sock" "$2" --stop -v "${@:3}" 2>"$T/save.err"
	r=$?
	[ "$r" = 0 ] || { why="minivmm save: exit $r: $(cat "$T/save.err")"; return 1; }
	wait "$snap_pid"
	r=$?
	[ "$r" = 0 ] || { why="the saved VM exited $r, expected 0: $(tail -n 3 "$T/$1.err")"; return 1; }
	[ -s "$2" ] || { why="no snapshot file $2"; return 1; }
}
# snap_check BEFORE-LOG AFTER-LOG: the restored guest went on where the saved one was.
snap_check() {
	local last first end
	last=$(counts "$1" | tail -n 1)
	first=$(counts "$2" | head -n 1)
	end=$(counts "$2" | tail -n 1)
	{ [ -n "$last" ] && [ -n "$first" ]; } || { why="no COUNT before ($last) or after ($first)"; return 1; }
	# The console may still have held a line or two written before the save.
	{ [ "$first" -ge 2 ] && [ "$first" -le $((last + 1)) ] && [ "$first" -ge $((last - 2)) ]; } ||
		{ why="restored guest counted from $first, saved one was at $last"; return 1; }
	[ "$end" = "$SNAP_TO" ] || { why="restored guest ended at COUNT=$end"; return 1; }
	! grep -q "SNAPCOUNT start" "$2" || { why="the restored guest booted again"; return 1; }
	! grep -q -E "MISMATCH|BACKWARDS" "$2" ||
		{ why="$(grep -m1 -E 'MISMATCH|BACKWARDS' "$2" | tr -d '\r')"; return 1; }
	grep -q "SNAPCOUNT done" "$2" || { why="restored guest did not finish"; return 1; }
}
# snap_restore SNAPSHOT NAME ARGS...: restore in the foreground, console in $T/NAME.log.
snap_restore() {
	local s=$1 n=$2
	shift 2
	rm -f "$T/$n.log"
	timeout -k 5 "$LIMIT" "$MINIVMM" restore "$s" --set "console.serial=file:$T/$n.log" "$@" \
		</dev/null >"$T/$n.out" 2>"$T/$n.err"
	rc=$?
}
snap_disk() { # a qcow2 disk for the counter
	rm -f "$T"/d.qcow2*
	"$MINIVMM" img create "$T/d.qcow2" 16M >/dev/null || { why="img create failed"; return 1; }
}
# expect_b PATTERN: the restore's stderr mentions it.
expect_b() { grep -q -e "$1" "$T/b.err" && return 0; why="restore stderr lacks '$1'"; return 1; }
# One save, then an eager and a lazy restore of it: VCPUS EXTRA-CMDLINE [raw|cached]; raw:
# saved uncompressed (flat) and also restored mapped; cached: also restored twice through
# a new memory cache (the first decompresses into it, the second only maps).
snap_round() {
	local cpus=$1 extra=$2 mode modes="eager lazy" save=() how n=0
	rm -f "$T"/s.snap.restore-*
	snap_disk || return 1
	snap_boot a "$extra" --set "vm.vcpus=$cpus" --set "disk.0.path=$T/d.qcow2" \
		--set disk.0.format=qcow2
	wait_count "$T/a.log" 8 || return 1
	[ "${3:-}" = raw ] && save=(--raw) modes="eager lazy mapped"
	[ "${3:-}" = cached ] && modes="eager lazy cached cached"
	rm -rf "$T/mcache"
	snap_save a "$T/s.snap" "${save[@]}" || return 1
	for mode in $modes; do
		how=()
		[ "$mode" = lazy ] && how=(--lazy)
		[ "$mode" = mapped ] && how=(--map)
		[ "$mode" = cached ] && how=(--cache) n=$((n + 1))
		MINIVMM_CACHE_DIR=$T/mcache snap_restore "$T/s.snap" b -v "${how[@]}"
		expect_rc 42 || { why="$mode: $why: $(tail -n 5 "$T/b.err" | tr '\n' ' ')"; return 1; }
		snap_check "$T/a.log" "$T/b.log" || { why="$mode: $why"; return 1; }
		expect_b "restored .*$mode" || return 1
		if [ "$mode" = lazy ]; then expect_b "all memory in" || return 1; fi
		if [ "$mode" = cached ]; then
			[ $n = 1 ] && { expect_b "memory decompressed into the memory cache" || return 1; }
			[ $n = 2 ] && { expect_b "memory mapped from the memory cache" || return 1; }
			[ "$(find "$T/mcache" -name 'mem-*.img' | wc -l)" = 1 ] ||
				{ why="cached: not one entry in the memory cache: $(ls "$T/mcache")"; return 1; }
		fi
		# The temporary overlay is gone; the frozen base is all that is left.
		! ls "$T"/s.snap.restore-* >/dev/null 2>&1 || { why="$mode: temporary overlay left"; return 1; }
	done
}

# A lazy restore stopped through its API socket as soon as it answers, while memory is
# still coming in: it exits 0 (it crashed once: the memory thread used the stopped VM).
snap_lazy_stop() {
	local p r i
	rm -f "$T/ls.sock"
	timeout -k 5 "$LIMIT" "$MINIVMM" restore "$T/s.snap" --lazy -v --api-socket "$T/ls.sock" \
		--set console.serial=none </dev/null >/dev/null 2>"$T/ls.err" &
	p=$!
	for ((i = 0; i < LIMIT * 20; i++)); do
		"$MINIVMM" ctl --socket "$T/ls.sock" stop >/dev/null 2>&1 && break
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	wait "$p"
	r=$?
	[ "$r" = 0 ] || { why="lazy restore stopped early: exit $r: $(tail -n 3 "$T/ls.err" | tr '\n' ' ')"; return 1; }
	grep -q "stopped through the API socket" "$T/ls.err" || { why="lazy restore: not stopped by ctl stop: $(tail -n 3 "$T/ls.err" | tr '\n' ' ')"; return 1; }
	grep -E "lazy restore: (all memory in|the VM stopped first)" "$T/ls.err" | sed 's/^/  /'
}

t_snap_1cpu() { snap_round 1 "" cached && snap_lazy_stop; }
t_snap_2cpu_io() { snap_round 2 " minivmm.io=1" raw; }

# Two clones of one snapshot at once, eager and lazy: each on its own overlay.
t_snap_clone() {
	local base sum p1 r1 v c
	snap_disk || return 1
	snap_boot a "" --set "disk.0.path=$T/d.qcow2" --set disk.0.format=qcow2
	wait_count "$T/a.log" 8 || return 1
	snap_save a "$T/s.snap" || return 1
	base=$(ls "$T"/d.qcow2.snap-* 2>/dev/null | head -n 1)
	[ -n "$base" ] || { why="no frozen base image next to the disk"; return 1; }
	# One save freezes the disk once (its state tree is built in a few tries: they must
	# not freeze it again).
	[ "$(ls "$T"/d.qcow2.snap-* | wc -l)" = 1 ] ||
		{ why="one save froze the disk $(ls "$T"/d.qcow2.snap-* | wc -l) times"; return 1; }
	sum=$(sha256sum <"$base")
	mkdir -p "$T/c1" "$T/c2"
	rm -f "$T"/c1/* "$T"/c2/*
	timeout -k 5 "$LIMIT" "$MINIVMM" restore "$T/s.snap" --clone "$T/c1" \
		--set "console.serial=file:$T/c1.log" </dev/null >/dev/null 2>"$T/c1.err" &
	p1=$!
	snap_restore "$T/s.snap" c2 --clone "$T/c2" --lazy
	wait "$p1"
	r1=$?
	[ "$r1" = 42 ] || { why="clone 1 exited $r1: $(tail -n 3 "$T/c1.err" | tr '\n' ' ')"; return 1; }
	expect_rc 42 || return 1
	snap_check "$T/a.log" "$T/c1.log" && snap_check "$T/a.log" "$T/c2.log" || return 1
	[ "$(sha256sum <"$base")" = "$sum" ] || { why="the frozen base image changed"; return 1; }
	for c in c1 c2; do
		[ -f "$T/$c/disk0.qcow2" ] || { why="no overlay in $T/$c"; return 1; }
		qemu-img convert -f qcow2 -O raw "$T/$c/disk0.qcow2" "$T/$c.raw" ||
			{ why="qemu-img cannot read $c's overlay"; return 1; }
		v=$(head -c 512 "$T/$c.raw" | tr -dc '0-9')
		[ "$v" = "$SNAP_TO" ] || { why="$c's disk holds '$v', expected $SNAP_TO"; return 1; }
	done
	qemu-img convert -f qcow2 -O raw "$base" "$T/base.raw" || { why="qemu-img: base"; return 1; }
	v=$(head -c 512 "$T/base.raw" | tr -dc '0-9')
	[ "$v" -ge 8 ] && [ "$v" -lt "$SNAP_TO" ] || { why="the base holds '$v'"; return 1; }
}

# A clone saved again and restored: the second snapshot's disk is a chain of two frozen
# images minivmm made (in the clone's directory and next to the disk), opened with
# backing files off; no temporary file is left next to either snapshot.
t_snap_resave() {
	local r
	snap_disk || return 1
	snap_boot a "" --set "disk.0.path=$T/d.qcow2" --set disk.0.format=qcow2
	wait_count "$T/a.log" 5 || return 1
	snap_save a "$T/s.snap" || return 1
	mkdir -p "$T/c1"
	rm -f "$T"/c1/* "$T/b.log" "$T/b.sock" "$T/s2.snap"
	timeout -k 5 "$LIMIT" "$MINIVMM" restore "$T/s.snap" --clone "$T/c1" \
		--set "console.serial=file:$T/b.log" --api-socket "$T/b.sock" \
		</dev/null >"$T/b.out" 2>"$T/b.err" &
	snap_pid=$!
	r=$(counts "$T/a.log" | tail -n 1)
	wait_count "$T/b.log" $((r + 4)) || return 1
	snap_save b "$T/s2.snap" || return 1
	ls "$T"/c1/disk0.qcow2.snap-* >/dev/null 2>&1 || { why="the clone's overlay was not frozen"; return 1; }
	snap_restore "$T/s2.snap" c -v
	expect_rc 42 || { why="$why: $(tail -n 5 "$T/c.err" | tr '\n' ' ')"; return 1; }
	snap_check "$T/b.log" "$T/c.log" || return 1
	! ls "$T"/*.tmp-* "$T"/*.restore-* >/dev/null 2>&1 || { why="temporary files left"; return 1; }
}

# pause / status / resume / stop through `minivmm ctl`: a paused guest does not count.
t_snap_api() {
	local n1 n2 st r
	snap_boot a "" -v
	wait_count "$T/a.log" 3 || return 1
	st=$("$MINIVMM" ctl --socket "$T/a.sock" status) || { why="status failed"; return 1; }
	echo "$st" | grep -q '"state":"running"' || { why="status: $st"; return 1; }
	"$MINIVMM" ctl --socket "$T/a.sock" pause || { why="pause failed"; return 1; }
	st=$("$MINIVMM" ctl --socket "$T/a.sock" status)
	echo "$st" | grep -q '"state":"paused"' || { why="status after pause: $st"; return 1; }
	n1=$(counts "$T/a.log" | tail -n 1)
	sleep 3
	n2=$(counts "$T/a.log" | tail -n 1)
	[ "$n1" = "$n2" ] || { why="the paused guest counted from $n1 to $n2"; return 1; }
	"$MINIVMM" ctl --socket "$T/a.sock" resume || { why="resume failed"; return 1; }
	wait_count "$T/a.log" $((n2 + 3)) || return 1
	"$MINIVMM" ctl --socket "$T/a.sock" stop || { why="stop failed"; return 1; }
	wait "$snap_pid"
	r=$?
	[ "$r" = 0 ] || { why="run exited $r after stop"; return 1; }
	grep -q "stopped through the API" "$T/a.err" || { why="no stop message"; return 1; }
	[ ! -e "$T/a.sock" ] || { why="the socket was left behind"; return 1; }
}

# expect_refused WHAT LOG-PATTERN: the restore failed with status 1 before the guest ran.
expect_refused() {
	[ "$rc" = 1 ] || { why="$1: restore exited $rc, expected 1"; return 1; }
	grep -q -i -e "$2" "$T/bad.err" || { why="$1: stderr lacks '$2': $(head -c 300 "$T/bad.err")"; return 1; }
	[ ! -s "$T/bad.log" ] || { why="$1: the guest ran"; return 1; }
}
t_snap_bad() {
	local size mo lazy base
	snap_disk || return 1
	snap_boot a "" --set "disk.0.path=$T/d.qcow2" --set disk.0.format=qcow2
	wait_count "$T/a.log" 3 || return 1
	snap_save a "$T/s.snap" || return 1
	size=$(stat -c %s "$T/s.snap")
	for lazy in "" --lazy; do
		head -c $((size / 2)) "$T/s.snap" >"$T/x.snap"
		snap_restore "$T/x.snap" bad $lazy
		expect_refused "truncated$lazy" "truncated" || return 1
		head -c 100 "$T/s.snap" >"$T/x.snap"
		snap_restore "$T/x.snap" bad $lazy
		expect_refused "header only$lazy" "not a minivmm snapshot\|truncated" || return 1
		cp "$T/s.snap" "$T/x.snap"
		printf '\002' | dd of="$T/x.snap" bs=1 seek=8 conv=notrunc 2>/dev/null
		snap_restore "$T/x.snap" bad $lazy
		expect_refused "version$lazy" "version 2" || return 1
		snap_restore "$T/d.qcow2" bad $lazy
		expect_refused "foreign$lazy" "not a minivmm snapshot" || return 1
		# A byte of the device state: its checksum.
		cp "$T/s.snap" "$T/x.snap"
		printf 'Z' | dd of="$T/x.snap" bs=1 seek=4200 conv=notrunc 2>/dev/null
		snap_restore "$T/x.snap" bad $lazy
		expect_refused "state checksum$lazy" "corrupt" || return 1
	done
	# A byte in guest memory (eager: before anything runs).
	mo=$((size - 300000))
	cp "$T/s.snap" "$T/x.snap"
	printf 'ZZZZ' | dd of="$T/x.snap" bs=1 seek=$mo conv=notrunc 2>/dev/null
	snap_restore "$T/x.snap" bad
	expect_refused "memory checksum" "checksum\|corrupt" || return 1
	# Only an uncompressed (flat) snapshot can be mapped.
	snap_restore "$T/s.snap" bad --map
	expect_refused "map of LZO" "only an uncompressed snapshot" || return 1
	# The frozen disk image changed since the save.
	base=$(ls "$T"/d.qcow2.snap-* | head -n 1)
	chmod u+w "$base"
	printf 'x' >>"$base"
	for lazy in "" --lazy; do
		snap_restore "$T/s.snap" bad $lazy
		expect_refused "disk changed$lazy" "not the one saved" || return 1
	done
}
