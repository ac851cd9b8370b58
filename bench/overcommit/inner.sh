#!/bin/bash
# bench/overcommit/inner.sh: the measuring half of bench/overcommit/run.sh, inside the L1.
#
# Seed 002's setup at our scale: two guests running the same memory-bound workload
# (memchase: mcf-like pointer chasing over WORK MiB, tests/guest/tools/memchase.c) at once,
#   plain   as two minivmm guests of the L1, and
#   nested  inside one "hypervisor VM" (a minivmm guest of HV MiB, nested = on, 2 vCPUs,
#           scenario nested) that runs minivmm itself with the two guests;
# for each SIZE:WORK pair (guest RAM: WORK) of MINIVMM_BENCH_OC_PAIRS. Then, for the host RSS
# after the workload, the two plain guests again with free page reporting on and off.
# Rows "ROUND PAIR MODE METRIC VALUE" appended to $MINIVMM_BENCH_RESULTS.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cd "$(dirname "$0")/../.." || exit 2
ROUNDS=${1:-1}
PAIRS=${MINIVMM_BENCH_OC_PAIRS:-"256:160 384:160 512:160 512:300"}
HV=${MINIVMM_BENCH_OC_HV:-768}
MSTEPS=${MINIVMM_BENCH_OC_MSTEPS:-3}
MODES=${MINIVMM_BENCH_OC_MODES:-"plain nested rss"}
RES=${MINIVMM_BENCH_RESULTS:?}
M=$(readlink -f build/minivmm)
CFG=$(readlink -f tests/e2e/guest.cfg)
LIMIT=${MINIVMM_BENCH_OC_LIMIT:-900}
[ -c /dev/kvm ] || { echo "bench/overcommit: no /dev/kvm (run through tests/harness/in-vm.sh)" >&2; exit 2; }
if ! [ -x "$M" ] || ! [ -f build/guest/initramfs.cpio.gz ]; then
	echo "bench/overcommit: make all guest first" >&2
	exit 2
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-oc.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	umount "$W/root" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

row() { echo "$1 $2 $3 $4 $5" >>"$RES"; echo "  $1 $2 $3 $4 $5"; }
# rss PID: VmRSS of minivmm (PID is its timeout) in KiB.
rss() {
	local p
	p=$(cut -d' ' -f1 /proc/"$1"/task/"$1"/children 2>/dev/null)
	awk '/^VmRSS:/ { print $2 }' "/proc/${p:-$1}/status" 2>/dev/null
}
# guest_cmdline WORK IDLE
guest_cmdline() {
	echo "console=ttyS0 quiet minivmm.scenario=memchase minivmm.chase_mib=$1 minivmm.chase_msteps=$MSTEPS minivmm.chase_idle=$2"
}
# collect ROUND PAIR MODE LOG...: a row per guest (ns_per_step, run_ms), or "failed".
collect() {
	local r=$1 pair=$2 mode=$3 log line ok=0
	shift 3
	for log in "$@"; do
		line=$(tr -d '\r' <"$log" 2>/dev/null | grep -m 1 '^MEMCHASE mib=')
		if [ -z "$line" ]; then
			line=$({
				tr -d '\r' <"$log" | grep -i -m 1 -e 'out of memory' -e 'memchase:' -e 'killed'
				tail -n 1 "${log%.log}.err"
			} 2>/dev/null | head -n 1)
			row "$r" "$pair" "$mode" failed "$(echo "${line:-no output}" | tr ' ' '_' | cut -c1-100)"
			continue
		fi
		ok=$((ok + 1))
		[[ $line =~ run_ms=([0-9]+)\ ns_per_step=([0-9.]+) ]] || continue
		row "$r" "$pair" "$mode" ns_per_step "${BASH_REMATCH[2]}"
		row "$r" "$pair" "$mode" run_ms "${BASH_REMATCH[1]}"
	done
	[ "$ok" -gt 0 ]
}

# plain ROUND SIZE WORK [REPORTING]: two guests of the L1 at once. With REPORTING (on|off)
# they idle 20 s after the workload and each minivmm's RSS is taken 15 s after it ended.
plain() {
	local r=$1 size=$2 work=$3 rep=${4:-on} idle=0 i pids=() k
	[ -n "${4:-}" ] && idle=20
	for i in 1 2; do
		rm -f "$W/p$i.log"
		timeout -k 5 "$LIMIT" "$M" run "$CFG" --set "vm.memory=${size}M" \
			--set "balloon.free_page_reporting=$rep" --set "boot.cmdline=$(guest_cmdline "$work" "$idle")" \
			--set "console.serial=file:$W/p$i.log" </dev/null >/dev/null 2>"$W/p$i.err" &
		pids+=($!)
		PIDS+=($!)
	done
	if [ -n "${4:-}" ]; then
		for ((k = 0; k < LIMIT; k++)); do
			[ "$(cat "$W"/p[12].log 2>/dev/null | grep -c '^MEMCHASE_DONE')" = 2 ] && break
			sleep 1
		done
		sleep 15
		row "$r" "$size:$work" "plain-report-$rep" rss_kib "$(($(rss "${pids[0]}") + $(rss "${pids[1]}")))"
	fi
	wait "${pids[@]}"
	collect "$r" "$size:$work" plain "$W/p1.log" "$W/p2.log"
}

# nested ROUND SIZE WORK: the two guests inside a hypervisor VM of $HV MiB.
nested() {
	local r=$1 size=$2 work=$3 pid k i
	rm -rf "$W/job"
	mkdir -p "$W/job" "$W/root"
	{
		echo "# bench/overcommit: run in the hypervisor VM (scenario nested)"
		for i in 1 2; do
			printf '%q run %q --set vm.memory=%sM --set balloon.free_page_reporting=on --set %q --set console.serial=file:/tmp/job/g%s.log </dev/null >/dev/null 2>/tmp/job/g%s.err &\n' \
				"$M" "$CFG" "$size" "boot.cmdline=$(guest_cmdline "$work" 0)" "$i" "$i"
		done
		echo 'wait'
	} >"$W/job/job.sh"
	rm -f "$W/hv.log"
	timeout -k 5 "$LIMIT" tests/harness/rootbind.sh "$W/root" \
		"$M" run "$CFG" --set "vm.memory=${HV}M" --set vm.vcpus=2 --set vm.nested=on \
		--set "share.0.path=$W/root" --set share.0.tag=root --set share.0.readonly=on \
		--set "share.1.path=$W/job" --set share.1.tag=job --set balloon.free_page_reporting=on \
		--set "boot.cmdline=console=ttyS0 quiet minivmm.scenario=nested" \
		--set "console.serial=file:$W/hv.log" --api-socket "$W/hv.sock" </dev/null >/dev/null 2>"$W/hv.err" &
	pid=$!
	PIDS+=("$pid")
	for ((k = 0; k < LIMIT; k++)); do
		grep -q -e '^NESTED_JOB_STATUS' -e '^NESTED_FAIL' "$W/hv.log" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	grep -m 1 '^NESTED_FAIL' "$W/hv.log" 2>/dev/null
	echo "  nested: the hypervisor VM said: $(tr -d '\r' <"$W/hv.log" | grep -v '^GUEST_MODULE' | tail -n 3 | tr '\n' ' ')"
	"$M" ctl --socket "$W/hv.sock" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null
	wait "$pid"
	collect "$r" "$size:$work" nested "$W/job/g1.log" "$W/job/g2.log"
}

echo "bench/overcommit: $ROUNDS round(s), pairs (guest MiB:workload MiB) $PAIRS, hypervisor VM $HV MiB," \
	"memchase $MSTEPS M steps; $(nproc) L1 CPUs, $(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo) MiB"
for ((round = 1; round <= ROUNDS; round++)); do
	for p in $PAIRS; do
		[[ " $MODES " == *" plain "* ]] && plain "$round" "${p%%:*}" "${p##*:}"
		[[ " $MODES " == *" nested "* ]] && nested "$round" "${p%%:*}" "${p##*:}"
	done
	[[ " $MODES " == *" rss "* ]] || continue
	p=${PAIRS%% *}
	plain "$round" "${p%%:*}" "${p##*:}" on
	plain "$round" "${p%%:*}" "${p##*:}" off
done
