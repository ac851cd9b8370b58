#!/bin/sh
# The share across a pause: mounts it with dax=always (minivmm.fs_tag, default share0) and,
# until the host creates "stop" in it, writes and reads back a file and reads the start of
# "dax" (put there by the host: "minivmm-dax-data"; read through the DAX window, whose
# mapping the guest keeps), printing FSPAUSE=<round> each time. Any failure prints
# FSPAUSE_FAIL=<what> and exits 1; the end prints FSPAUSE_DONE=<rounds>.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
tag=$(cmdline_arg minivmm.fs_tag)
[ -n "$tag" ] || tag=share0
modprobe -q virtiofs
print_modules
mkdir -p /mnt
mount -t virtiofs "$tag" /mnt -o dax=always 2>/tmp/mount.err ||
	{ echo "FSPAUSE_FAIL=mount: $(cat /tmp/mount.err)"; exit 1; }
i=0
while [ ! -e /mnt/stop ]; do
	i=$((i + 1))
	echo "round $i" >/mnt/w 2>/dev/null || { echo "FSPAUSE_FAIL=write in round $i"; exit 1; }
	got=$(cat /mnt/w 2>&1)
	[ "$got" = "round $i" ] || { echo "FSPAUSE_FAIL=read back '$got' in round $i"; exit 1; }
	got=$(head -c 16 /mnt/dax 2>&1 | tr '\0' '0')
	[ "$got" = minivmm-dax-data ] || { echo "FSPAUSE_FAIL=dax read '$got' in round $i"; exit 1; }
	echo "FSPAUSE=$i"
	[ "$i" -lt 1000 ] || { echo "FSPAUSE_FAIL=the host never said stop"; exit 1; }
	sleep 0.2
done
echo "FSPAUSE_DONE=$i"
