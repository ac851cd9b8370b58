#!/bin/sh
# bench/idle.sh [MAX_BUSY_PCT] [WAIT_S]: exit 0 once this machine's CPUs were less than
# MAX_BUSY_PCT (default 20) busy over 2 s; after WAIT_S (default 60) of busy samples, say so
# and exit 3. A benchmark calls it before each run: figures taken beside other work (issue
# 15: 30x less with two other L1 VMs on the machine) are not reported.
# SPDX-License-Identifier: GPL-2.0-or-later
max=${1:-20}
wait_s=${2:-60}
# cpu_times: "TOTAL IDLE" jiffies of all CPUs (idle: idle + iowait).
cpu_times() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }
# busy_pct: the share of CPU time not idle or iowait over 2 s, in percent.
busy_pct() {
	a=$(cpu_times)
	sleep 2
	b=$(cpu_times)
	echo "$a $b" | awk '{ t = $3 - $1; i = $4 - $2; print (t > 0 ? int(100 * (t - i) / t) : 0) }'
}
start=$(date +%s)
while :; do
	b=$(busy_pct)
	[ "$b" -lt "$max" ] && exit 0
	if [ $(($(date +%s) - start)) -ge "$wait_s" ]; then
		echo "bench: this machine is busy (CPUs ${b}% busy over 2 s, limit ${max}%, for ${wait_s} s):" \
			"figures taken now would not be comparable; top processes:" >&2
		ps -eo pcpu,comm --sort=-pcpu 2>/dev/null | sed -n '2,6p' | sed 's/^/  /' >&2
		exit 3
	fi
done
