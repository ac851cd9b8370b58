#!/bin/sh
# virtio-balloon: loads virtio_balloon, fills 96 MiB of tmpfs (guest RAM, so the host
# maps it), prints BALLOON_FILLED, frees it, prints BALLOON_FREED, then idles for the
# host to set targets and read statistics through the API (it stops the VM).
# minivmm.balloon_hold=MB instead: fills MB of tmpfs and keeps it (BALLOON_HELD), then
# prints BALLOON_ALIVE N every 2 s (the overcommit policy's guests, tests/e2e/balloon.sh).
# minivmm.balloon_oom=MB instead: once MemAvailable is under MB/2 (the host inflated the
# balloon), fills MB of tmpfs (BALLOON_OOM_FILLED MB): more than the guest has left, so
# only deflate-on-oom lets it through; then heartbeats as above.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
modprobe -q virtio_balloon || echo "BALLOON_FAIL: no virtio_balloon module"
print_modules
for d in /sys/bus/virtio/drivers/virtio_balloon/virtio*; do
	[ -e "$d" ] && echo BALLOON_DRIVER=bound && break
done
mkdir -p /fill
hold=$(cmdline_arg minivmm.balloon_hold)
oom=$(cmdline_arg minivmm.balloon_oom)
if [ -n "$oom" ]; then
	mount -t tmpfs -o size=90% tmpfs /fill
	echo BALLOON_OOM_WAITING
	until [ "$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)" -lt $((oom * 512)) ]; do
		sleep 0.5
	done
	echo "BALLOON_OOM_FILLING $(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) kB available"
	dd if=/dev/zero of=/fill/a bs=1M count="$oom" 2>/dev/null
	echo "BALLOON_OOM_FILLED $(du -m /fill/a 2>/dev/null | cut -f1)"
	hold=0
elif [ -n "$hold" ]; then
	mount -t tmpfs -o size=90% tmpfs /fill
	[ "$hold" -gt 0 ] && dd if=/dev/zero of=/fill/a bs=1M count="$hold" 2>/dev/null
	echo "BALLOON_HELD $(du -m /fill/a 2>/dev/null | cut -f1)"
fi
if [ -n "$hold" ]; then
	i=0
	while :; do
		sleep 2
		i=$((i + 1))
		echo "BALLOON_ALIVE $i"
	done
fi
mount -t tmpfs -o size=128M tmpfs /fill
src=$(cmdline_arg minivmm.balloon_src) # zero: faster where urandom is slow (nested)
dd if="/dev/${src:-urandom}" of=/fill/a bs=1M count=96 2>/dev/null
echo "BALLOON_FILLED"
sleep 3
rm -f /fill/a
umount /fill
echo "BALLOON_FREED"
while :; do sleep 1; done
