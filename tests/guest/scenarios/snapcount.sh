#!/bin/sh
# Snapshot tests: count up and check our own state at every step, so that a guest
# restored from a snapshot proves it continued where it was saved.
#   COUNT=i UP=seconds   every step (0.2 s apart), i = 1, 2, ...
#   MISMATCH ...         tmpfs or disk did not hold step i-1 (state lost or mixed up)
#   BACKWARDS ...        /proc/uptime went backwards
# State: /tmp/count (tmpfs) and the first sector of /dev/vda (O_DIRECT, so a read
# really goes to the disk). minivmm.count_to=N (default 60) ends with exit status 42.
# minivmm.io=1: a background writer keeps disk I/O in flight at all times.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
to=$(cmdline_arg minivmm.count_to)
[ -n "$to" ] || to=60
disk=/dev/vda
[ -b $disk ] || disk=""
if [ "$(cmdline_arg minivmm.io)" = 1 ] && [ -n "$disk" ]; then
	# Sectors from 1 MiB on, never the counter's sector.
	( while :; do dd if=/dev/zero of=$disk bs=64k seek=16 count=64 oflag=direct 2>/dev/null; done ) &
fi
rdisk() { dd if=$disk bs=512 count=1 iflag=direct 2>/dev/null | tr -dc '0-9'; }
wdisk() { printf '%-511s\n' "$1" | dd of=$disk bs=512 count=1 oflag=direct conv=notrunc 2>/dev/null; }
i=0
prev=0
echo 0 >/tmp/count
[ -n "$disk" ] && wdisk 0
echo "SNAPCOUNT start to=$to disk=${disk:-none}"
while [ "$i" -lt "$to" ]; do
	t=$(cat /tmp/count)
	[ "$t" = "$i" ] || echo "MISMATCH tmpfs=$t expected=$i"
	if [ -n "$disk" ]; then
		d=$(rdisk)
		[ "$d" = "$i" ] || echo "MISMATCH disk=$d expected=$i"
	fi
	i=$((i + 1))
	echo "$i" >/tmp/count
	[ -n "$disk" ] && wdisk "$i"
	up=$(cut -d' ' -f1 /proc/uptime)
	# uptime has two decimals: compare as integers of centiseconds.
	u=$(echo "$up" | tr -d .)
	[ "$u" -ge "$prev" ] || echo "BACKWARDS up=$up prev=$prev"
	prev=$u
	echo "COUNT=$i UP=$up"
	sleep 0.2
done
echo "SNAPCOUNT done"
exit 42
