#!/bin/bash
# minivmm - end-to-end tests: boot the test guest (build/guest, `make guest`) under
# $MINIVMM (default build/minivmm) and check what it reports. Needs /dev/kvm: run it as
#   tests/harness/in-vm.sh tests/e2e/run.sh [CASE...]
# Prints `PASS name` / `FAIL name: reason` per case and `e2e: N passed, M failed, K flaky`
# at the end. A case whose guest timed out, stalled or triple-faulted is run again, up to
# TEST_E2E_ATTEMPTS (default 3) attempts in all, each retry after a `RETRY name: reason`
# line; one that passes then is `FLAKY name` (with the first attempt's reason), counted
# apart from the plain passes.
# TEST_TIMEOUT (seconds, default 120: in CI no case but fs_ops, which has more, took over
# 100 s for all its runs; a hung guest costs the whole limit) bounds each minivmm run.
# TEST_E2E_JOBS (default 1) cases run at once, each in its own directory; those in
# EXCLUSIVE below (and EXCLUSIVE_CASES) run alone.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
cd "$repo" || exit 1
MINIVMM=${MINIVMM:-$repo/build/minivmm}
CFG=$here/guest.cfg
# The test guests' kernel options. cryptomgr.notests: the kernel's crypto self-tests take
# about 0.6 s of each boot under the nested harness, and no case tests the guest's crypto.
GUEST_BOOT="console=ttyS0 quiet cryptomgr.notests"
GUEST=$repo/build/guest
LIMIT=${TEST_TIMEOUT:-120}

T=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-e2e.XXXXXX")
chmod 711 "$T" # cases run as another user in their own directories below (sandbox.sh)
trap 'rm -rf "$T"' EXIT

pass=0
fail=0
flaky=0
flaky_names=""
why=""
rc=0

# threads PID: each thread of PID (minivmm is `timeout`'s child): name, state, CPU ticks,
# system call and kernel stack.
threads() {
	local p t
	p=$(cut -d" " -f1 /proc/"$1"/task/"$1"/children 2>/dev/null)
	[ -n "$p" ] || p=$1
	echo "== $(date +%T) threads of minivmm (pid $p)"
	for t in /proc/"$p"/task/*; do
		echo "-- $(cat "$t/comm" 2>/dev/null) $(cut -d' ' -f3,14,15 "$t/stat" 2>/dev/null) syscall: $(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
		sed 's/^/     /' "$t/stack" 2>/dev/null | head -n 12
	done
	kvm_stats "$p"
	# In the L1: what each of its CPUs is doing (the kernel's NMI backtraces).
	[ "${MINIVMM_IN_L1:-0}" = 1 ] && [ -w /proc/sysrq-trigger ] || return 0
	echo l >/proc/sysrq-trigger
	sleep 1
	echo "== L1 kernel log, last lines"
	dmesg | tail -n 60
}

# kvm_stats PID: the KVM counters (debugfs) of PID's VM that moved since the last call,
# e.g. exits and spurious page faults of a vCPU that runs but makes no progress.
kvm_stats() {
	local d=/sys/kernel/debug/kvm f now=""
	[ -d "$d" ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null
	for f in "$d/$1"-*/*; do
		[ -f "$f" ] && now="$now ${f##*/}=$(cat "$f" 2>/dev/null)"
	done
	[ -n "$now" ] || return 0
	echo "== KVM counters of the VM (debugfs), change since the last dump:"
	echo "$now" | tr ' ' '\n' | awk -F= -v prev="$(cat "$T/kvmstats" 2>/dev/null)" '
		BEGIN { n = split(prev, p, " "); for (i = 1; i <= n; i++) { split(p[i], kv, "="); old[kv[1]] = kv[2] } }
		NF == 2 && $2 ~ /^[0-9]+$/ && $2 != old[$1] { printf "%s +%d ", $1, $2 - old[$1] }
		END { print "" }'
	echo "$now" >"$T/kvmstats"
	kvm_trace
}
# kvm_trace: 0.3 s of the L1 KVM's exits, page faults, emulated instructions and injected
# exceptions (tracefs), the first lines: what a vCPU that exits without progress does.
kvm_trace() {
	local t=/sys/kernel/debug/tracing e
	[ -w "$t/tracing_on" ] && [ -d "$t/events/kvm" ] || return 0
	: >"$t/trace"
	for e in kvm_exit kvm_page_fault kvm_emulate_insn kvm_inj_exception kvm_entry; do
		echo 1 >"$t/events/kvm/$e/enable" 2>/dev/null
	done
	echo 1 >"$t/tracing_on"
	sleep 0.3
	echo 0 >"$t/tracing_on"
	for e in kvm_exit kvm_page_fault kvm_emulate_insn kvm_inj_exception kvm_entry; do
		echo 0 >"$t/events/kvm/$e/enable" 2>/dev/null
	done
	echo "== L1 KVM trace (0.3 s): $(grep -c -v '^#' "$t/trace") events, the first:"
	grep -v '^#' "$t/trace" | head -n 24 | cut -c1-220
}

# vm ARGS...: run `minivmm run ARGS...` bounded by $LIMIT; stdout -> $T/out, stderr ->
# $T/err, exit status -> $rc, wall time (s) -> $took.
vm() {
	local s e
	s=$(date +%s)
	# At the limit, SIGUSR2: minivmm stops and prints where each vCPU was (symbolized below).
	timeout -s USR2 -k 5 "$LIMIT" "$MINIVMM" run "$@" </dev/null >"$T/out" 2>"$T/err" &
	local pid=$! wd lw
	# A minivmm that SIGKILL cannot end (stuck in the L1 kernel: seen with the emulated
	# L1 wedged) would hang this script; in the L1, end the L1 so that the harness
	# carries on in a fresh one (it resumes with this case).
	(
		trap 'kill "$z" 2>/dev/null; exit 0' TERM
		sleep $((LIMIT + 60)) &
		z=$!
		wait "$z"
		echo "e2e: minivmm (pid $pid) outlived its ${LIMIT}s limit by 60 s: the L1 is wedged" >&2
		if [ "${MINIVMM_IN_L1:-0}" = 1 ] && [ -w /proc/sysrq-trigger ]; then
			echo "Kernel panic - e2e: unkillable minivmm; ending this L1" >/dev/kmsg
			echo c >/proc/sysrq-trigger
		fi
	) </dev/null >/dev/null &
	wd=$!
	# A guest whose own watchdog reports a vCPU stuck for a minute or more (seen in nested
	# runs, e.g. modprobe at boot, fs_ops) does not finish: end it now, not at the limit;
	# the case is retried (and FLAKY if a retry passes).
	rm -f "$T/lockup" "$T/threads" "$T/kvmstats"
	(
		while sleep 2; do
			# A guest reporting a stall: record where each minivmm thread is, twice, to
			# tell a vCPU blocked in minivmm from one inside KVM.
			# So does one that is about to time out.
			if [ ! -e "$T/threads" ] && { [ $(($(date +%s) - s)) -ge $((LIMIT - 25)) ] ||
				grep -q -E 'rcu_preempt detected stalls|^FS_STALL' "$T/out" 2>/dev/null; }; then
				{ threads "$pid"; sleep 3; threads "$pid"; } >"$T/threads" 2>&1
			fi
			# A second RCU stall report on one grace period: a vCPU has not passed a
			# quiescent state for over 80 s; none of those recovered here.
			if grep -q -E 'soft lockup - CPU#[0-9]+ stuck for ([6-9][0-9]|[0-9]{3,})s' "$T/out" 2>/dev/null; then
				grep -m1 -o 'CPU#[0-9]* stuck for [0-9]*s' "$T/out" >"$T/lockup"
			elif [ "$(grep -c 'rcu_preempt detected stalls' "$T/out" 2>/dev/null)" -ge 2 ]; then
				echo "a second RCU stall report" >"$T/lockup"
			else
				continue
			fi
			kill -USR2 "$(cut -d' ' -f1 /proc/"$pid"/task/"$pid"/children 2>/dev/null)" 2>/dev/null ||
				kill "$pid" 2>/dev/null
			exit 0
		done
	) </dev/null >/dev/null 2>&1 &
	lw=$!
	wait "$pid"
	rc=$?
	kill "$wd" "$lw" 2>/dev/null
	wait "$wd" "$lw" 2>/dev/null
	e=$(date +%s)
	took=$((e - s))
	tr -d '\r' <"$T/out" >"$T/out.txt"
	symbolize_vcpus >>"$T/threads"
}

# symbolize_vcpus: the guest kernel function at each "vcpuN: rip" minivmm printed. The test
# guest's kernel (the host's newest /boot/vmlinuz-*) runs unrelocated (minivmm boots its
# decompressed image); in an L1 running that same kernel, /proc/kallsyms names it once the
# L1's KASLR offset (its _text less the link address) is added. A module address is named
# from the guest's "GUEST_MODULE NAME BASE" lines (minivmm.modules=1) and that module's
# .text symbols in /lib/modules (the module's .text comes first in its core layout).
symbolize_vcpus() {
	local ks=/proc/kallsyms ver base line v rip r
	ver=$(find /boot -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort -V | tail -n 1)
	ver=${ver#/boot/vmlinuz-}
	grep -o 'vcpu[0-9]*: rip 0x[0-9a-f]*' "$T/err" 2>/dev/null | while read -r v _ rip; do
		rip=${rip#0x}
		if [ $((16#${rip:0:8})) = $((16#ffffffff)) ] && [ $((16#${rip:8:1})) -ge 12 ]; then
			symbolize_module "$v" "$rip" "$ver"
			continue
		fi
		if [ "$ver" != "$(uname -r)" ] || [ ! -r "$ks" ]; then continue; fi
		base=$(awk '$3 == "_text" { print $1; exit }' "$ks")
		case $base in '' | 0000000000000000) continue ;; esac
		r=$(printf '%016x' $((16#$rip + 16#$base - 16#ffffffff81000000)))
		line=$(awk -v r="$r" '$1 <= r && $1 > b { b = $1; n = $3 } END { if (b != "") print b, n }' "$ks")
		[ -n "$line" ] || continue
		echo "== $v rip 0x$rip: ${line#* }+0x$(printf '%x' $((16#$r - 16#${line%% *}))) (guest kernel $ver)"
	done
}
# symbolize_module VCPU RIP VERSION: RIP (hex, no 0x) in a guest module, by name and symbol.
symbolize_module() {
	local v=$1 rip=$2 ver=$3 m b ko off fn
	# (No process substitution: the L1's /dev has no /dev/fd.)
	m=$(sed -n 's/^GUEST_MODULE \([^ ]*\) 0x\([0-9a-f]*\)$/\1 \2/p' "$T/out.txt" 2>/dev/null |
		awk -v r="$rip" '$2 <= r && $2 > b { b = $2; n = $1 } END { if (b != "") print n, b }')
	[ -n "$m" ] || return 0
	b=${m#* }
	m=${m%% *}
	off=$((16#$rip - 16#$b))
	ko=$(find "/lib/modules/$ver" \( -name "$m.ko" -o -name "${m//_/-}.ko" \) 2>/dev/null | head -n 1)
	fn=""
	[ -n "$ko" ] && fn=$(objdump -t "$ko" 2>/dev/null | awk -v o="$off" '
		function hex(s, i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1; return v }
		index($0, " .text\t") { a = hex($1); if (a <= o && a >= b) { b = a; n = $NF } }
		END { if (n != "") printf "%s+0x%x", n, o - b }')
	echo "== $v rip 0x$rip: module $m+0x$(printf '%x' "$off")${fn:+, $fn} (guest kernel $ver)"
}

# guest SCENARIO [CMDLINE-EXTRA] [ARGS...]: boot guest.cfg with that scenario.
guest() {
	local sc=$1 extra=$2
	shift 2
	vm "$CFG" --set "boot.cmdline=$GUEST_BOOT minivmm.modules=1 minivmm.scenario=$sc${extra:+ $extra}" "$@"
}

# Assertions: each sets $why and returns 1 on failure.
expect_rc() {
	[ "$rc" = "$1" ] && return 0
	why="exit status $rc, expected $1"
	[ "$rc" = 124 ] && why="$why (timed out after ${LIMIT}s)"
	[ -e "$T/lockup" ] && why="$why (ended early: the guest's watchdog reported a vCPU stuck: $(cat "$T/lockup"))"
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

# Shared by several areas.
# mkdisk FILE SIZE: a raw image whose first MiB is `seq 500000 -1 1` (what `read` hashes).
mkdisk() {
	seq 500000 -1 1 | head -c 1048576 >"$1" && truncate -s "$2" "$1"
}
read_sha() { seq 500000 -1 1 | head -c 1048576 | sha256sum | cut -d' ' -f1; }
# expect_written IMG: the guest's `write` pattern is at 1 MiB of IMG, byte for byte.
expect_written() {
	seq 1 300000 | head -c 1048576 >"$T/pattern"
	cmp -s -n 1048576 -i 0:1048576 "$T/pattern" "$1" && return 0
	why="$1 does not hold the pattern the guest wrote at 1 MiB"
	return 1
}
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

# The cases, by area, are in tests/e2e/*.sh: each file defines its t_* functions and a list
# AREA_CASES (BOOT_CASES in boot.sh, SNAP_CASES in snapshot.sh, ...); all of them run.
CASES=""
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
# done_before NAME [N]: the progress file has N (default 1) results of NAME.
done_before() {
	local n
	[ -n "$progress" ] && [ -f "$progress" ] || return 1
	n=$(grep -c "^\(PASS\|FAIL\|FLAKY\) $1\b" "$progress")
	[ "${n:-0}" -ge "${2:-1}" ]
}
record() { [ -z "$progress" ] || { echo "$1" >>"$progress" && sync "$progress" 2>/dev/null; }; }
retried=" "
if [ -n "$progress" ] && [ -s "$progress" ]; then
	echo "e2e: resuming after an L1 failure; $(grep -c '^\(PASS\|FAIL\|FLAKY\) ' "$progress") case(s) done"
	record "RESUME"
	for started in $(sed -n 's/^START //p' "$progress" | sort -u); do
		grep -q "^\(PASS\|FAIL\|FLAKY\) $started\b" "$progress" && continue
		echo "e2e: case $started was running when the L1 died; running it again"
		# Its first attempt had failed already: a pass now is only a FLAKY one.
		grep -q "^RETRY $started\$" "$progress" && retried="$retried $started "
	done
fi

# run_case NAME (in a subshell, with its own $T): runs t_NAME, prints its result lines,
# writes PASS, FAIL or FLAKY to $TOP/res.NAME.
run_case() {
	local c=$1 ok=0 first="" case_start res attempt=1
	why=""
	case_start=$(date +%s)
	# (Its attempt in the L1 that died counts.)
	[[ $retried == *" $c "* ]] && first="it timed out or triple-faulted in an L1 that died during its retry" && attempt=2
	"t_$c" && ok=1
	# A guest that stopped making progress (a vCPU that takes no more interrupts: the
	# notes of issues 3, 10 and 15; fs_ops under QEMU 7.2's TCG about one run in eight,
	# more in a long-lived L1) times out or is ended early by its watchdog's reports.
	# Said loudly and run again, up to TEST_E2E_ATTEMPTS (3) times in all: a case that
	# passes only then is FLAKY, one that never does fails. The same for a guest that
	# triple-faulted without being asked to (seen in early boot under the emulated L1,
	# before any device request).
	# (Snapshot cases keep one stderr file per VM: any of them.)
	while [ $ok = 0 ] && [ "$attempt" -lt "${TEST_E2E_ATTEMPTS:-3}" ] &&
		{ [[ $why == *"timed out after"* ]] || [ -e "$T/lockup" ] ||
			cat "$T/err" "$T"/*.err 2>/dev/null | grep -q "triple fault (shutdown)"; }; do
		[[ $why == *"timed out after"* || -e $T/lockup ]] || why="$why; the guest triple-faulted"
		[ -n "$first" ] || first=$why
		echo "RETRY $c: ${why} (attempt $attempt)"
		for f in out.txt err; do
			[ -s "$T/$f" ] || continue
			echo "  --- last lines of $f (attempt $attempt):"
			tail -n 8 "$T/$f" | sed 's/^/  | /'
		done
		[ -s "$T/threads" ] && sed 's/^/  | /' "$T/threads" | head -n 200
		record "RETRY $c"
		why=""
		rm -f "$T/out" "$T/err" "$T/out.txt"
		attempt=$((attempt + 1))
		"t_$c" && ok=1
	done
	if [ $ok = 1 ] && [ -n "$first" ]; then
		echo "FLAKY $c: passed only on attempt $attempt ($(($(date +%s) - case_start)) s); the first: $first"
		res=FLAKY
	elif [ $ok = 1 ]; then
		echo "PASS $c ($(($(date +%s) - case_start)) s)"
		res=PASS
	else
		echo "FAIL $c: ${why:-failed} ($(($(date +%s) - case_start)) s)"
		for f in out.txt err; do
			[ -s "$T/$f" ] || continue
			echo "  --- last lines of $f:"
			tail -n 15 "$T/$f" | sed 's/^/  | /'
		done
		[ -s "$T/threads" ] && sed 's/^/  | /' "$T/threads" | head -n 200
		res=FAIL
	fi
	record "$res $c"
	echo "$res" >"$TOP/res.$KEY"
}

# Cases run TEST_E2E_JOBS at a time (default 1), each in its own scratch directory, their
# output printed whole as each ends. Two at a time is about 1.3x faster here, but the
# emulated L1 then failed more often (L1 kernel faults, guests triple-faulting in early
# boot), so CI keeps to one.
# These run alone: they measure the host (page cache, memory, elapsed time), need all of
# the L1's CPUs or memory, or change the host (cgroup mounts).
EXCLUSIVE=" memory_4g boot_4cpu blk_queues fs_ops fs_dax fs_dax_inode fs_hostchange timeout
	sigterm reboot_restart $SNAP_CASES sb_jail balloon_report merge_on ${EXCLUSIVE_CASES:-} "
JOBS=${TEST_E2E_JOBS:-1}
TOP=$T
running=""
seq=0
declare -A pids

# reap [all]: wait for one (or every) running case, print its output, count its result.
# (Here $c is a run's key, NAME.N.)
reap() {
	local c r left
	while [ -n "$running" ]; do
		wait -n 2>/dev/null
		left=""
		for c in $running; do
			# A case shell that died without a result (killed) counts as failed.
			if [ ! -f "$TOP/res.$c" ] && ! kill -0 "${pids[$c]}" 2>/dev/null; then
				wait "${pids[$c]}" 2>/dev/null
				[ -f "$TOP/res.$c" ] || {
					echo "FAIL $c: its test shell ended without a result" >>"$TOP/log.$c"
					echo FAIL >"$TOP/res.$c"
				}
			fi
			if [ -f "$TOP/res.$c" ]; then
				cat "$TOP/log.$c"
				r=$(cat "$TOP/res.$c")
				case $r in
				PASS) pass=$((pass + 1)) ;;
				FLAKY) flaky=$((flaky + 1)) flaky_names="$flaky_names ${c%.*}" ;;
				*) fail=$((fail + 1)) ;;
				esac
				rm -rf "${TOP:?}/case.$c"
			else
				left="$left $c"
			fi
		done
		[ "$left" != "$running" ] && [ "${1:-}" != all ] && { running=$left; return; }
		running=$left
	done
}

declare -A nth
for c in $CASES; do
	# The Nth run of a case named N times is done when the progress file has N results.
	nth[$c]=$((${nth[$c]:-0} + 1))
	if done_before "$c" "${nth[$c]}"; then
		case $(grep "^\(PASS\|FAIL\|FLAKY\) $c\b" "$progress" | sed -n "${nth[$c]}p") in
		PASS*) pass=$((pass + 1)) ;;
		FLAKY*) flaky=$((flaky + 1)) flaky_names="$flaky_names $c" ;;
		*) fail=$((fail + 1)) ;;
		esac
		continue
	fi
	if ! declare -F "t_$c" >/dev/null || [ -n "$missing" ]; then
		record "START $c"
		echo "FAIL $c: ${missing:-no such case}"
		record "FAIL $c"
		fail=$((fail + 1))
		continue
	fi
	if [[ $EXCLUSIVE == *" $c "* ]] || [ "$JOBS" -le 1 ]; then
		reap all
	else
		while [ "$(echo $running | wc -w)" -ge "$JOBS" ]; do reap; done
	fi
	record "START $c"
	seq=$((seq + 1))
	k=$c.$seq # a case named twice runs twice, in two directories
	mkdir -p "$TOP/case.$k"
	(T=$TOP/case.$k KEY=$k run_case "$c") >"$TOP/log.$k" 2>&1 </dev/null &
	pids[$k]=$!
	running="$running $k"
	[[ $EXCLUSIVE == *" $c "* ]] && reap all
done
reap all
resumed=0
[ -n "$progress" ] && resumed=$(grep -c '^RESUME$' "$progress" 2>/dev/null)
echo "e2e: $pass passed, $fail failed, $flaky flaky${flaky_names:+ (passed only on a retry:$flaky_names)}$(
	[ "${resumed:-0}" = 0 ] || echo "; resumed $resumed time(s) in a new L1 after an L1 fault")"
[ "$fail" = 0 ]
