# shellcheck shell=bash
# minivmm e2e: [vm] merge = on lets KSM merge two guests' identical pages (and off does
# not). Needs KSM and root (it runs KSM for the while: the L1 is ours). Sourced by
# tests/e2e/run.sh.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
MERGE_CASES="merge_on"

KSM=/sys/kernel/mm/ksm

# ksm_sharing: pages KSM maps shared right now (0 when it has none).
ksm_sharing() { cat "$KSM/pages_sharing" 2>/dev/null || echo 0; }

# merge_pair on|off: two sleeping 256 MiB guests with that merge setting, KSM scanning
# fast; pages_sharing after 20 s -> $sharing.
merge_pair() {
	local a b pids=()
	echo 2 >"$KSM/run" # unmerge what an earlier run left
	echo 1 >"$KSM/run"
	echo 20000 >"$KSM/pages_to_scan"
	echo 10 >"$KSM/sleep_millisecs"
	for a in 1 2; do
		timeout -k 5 60 "$MINIVMM" run "$CFG" -v --set vm.merge="$1" \
			--set "boot.cmdline=$GUEST_BOOT minivmm.scenario=sleep" \
			--set console.serial=none </dev/null >/dev/null 2>"$T/err.$a" &
		pids+=($!)
	done
	sleep 20
	sharing=$(ksm_sharing)
	kill "${pids[@]}" 2>/dev/null
	wait "${pids[@]}" 2>/dev/null
	echo 2 >"$KSM/run"
	b=$(grep -c "KSM may merge" "$T/err.1" "$T/err.2" | awk -F: '{ s += $2 } END { print s }')
	[ "$1" = off ] || [ "$b" = 2 ] || { why="minivmm did not say it made guest RAM mergeable: $(head -c 300 "$T/err.1")"; return 1; }
}

t_merge_on() {
	local sharing on
	# Not a pass when it cannot run: the L1 (root, Debian's kernel has KSM) always can.
	[ -w "$KSM/run" ] || { why="cannot run here: $KSM/run is not writable (no KSM, or not root)"; return 1; }
	merge_pair off || return 1
	local off=$sharing
	merge_pair on || return 1
	on=$sharing
	echo "  merge_on: KSM pages_sharing after 20 s: merge = off $off, merge = on $on"
	if [ "$on" -lt 4096 ] || [ "$off" -ge 256 ]; then
		why="pages_sharing $on with merge = on (want >= 4096 = 16 MiB), $off with it off"
		return 1
	fi
}
