#!/bin/sh
# A hostile driver (/bin/vhostile) against one virtio device while the others go on.
# minivmm.hostile=blk|fs picks the device (minivmm.hostile_only=junk|spin: only the
# junk-register attack, or only a storm of reads of one register; see vhostile.c):
#   blk  the second disk, vdb (the host wrote "minivmm-hostile-disk" at its start)
#   fs   the virtio-fs device (tag minivmm.fs_tag, default share0; the host put "hello"
#        in the share holding hello-from-host), mounted and read once before
# The device is unbound from virtio-pci and attacked through its BAR (vhostile's
# HOSTILE_* lines) while vda is read in a loop; then vda is written and read back,
# and the device is bound again and used. Prints
#   OTHER_READS=<reads of vda that completed during the attack>
#   OTHER_DISK=ok|FAIL      vda wrote `seq 1 300000` at 1 MiB (fsync) and read it back
#   REBIND=ok|FAIL          the attacked device works for Linux again
# and exits 0 when all of it passed.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
what=$(cmdline_arg minivmm.hostile)
tag=$(cmdline_arg minivmm.fs_tag)
[ -n "$tag" ] || tag=share0
rc=0

# The PCI address of virtio device id $1 (0x1042 blk, 0x105a fs); blk: the one behind vdb.
pci_addr() {
	if [ "$1" = blk ]; then
		basename "$(dirname "$(readlink -f /sys/block/vdb/device)")"
		return
	fi
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x105a ] && basename "$d"
	done
}

fs_read_hello() {
	mount -t virtiofs "$tag" /mnt 2>/dev/null || return 1
	got=$(cat /mnt/hello 2>/dev/null)
	umount /mnt
	[ "$got" = hello-from-host ]
}

case $what in
blk) ;;
fs)
	modprobe -q virtiofs
	mkdir -p /mnt
	fs_read_hello || { echo "hostile: the share does not work before the attack"; exit 1; }
	;;
*)
	echo "hostile: minivmm.hostile=blk|fs" >&2
	exit 2
	;;
esac
addr=$(pci_addr "$what")
[ -n "$addr" ] || { echo "hostile: no $what device"; exit 1; }
echo "HOSTILE_DEVICE=$addr"
echo "$addr" >/sys/bus/pci/drivers/virtio-pci/unbind || { echo "hostile: unbind failed"; exit 1; }

# The other disk is read all along.
: >/tmp/attacking
(
	n=0
	while [ -e /tmp/attacking ]; do
		dd if=/dev/vda of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null && n=$((n + 1))
	done
	echo "$n" >/tmp/reads
) &
reader=$!
only=$(cmdline_arg minivmm.hostile_only) # junk or spin: that one alone
# shellcheck disable=SC2086 # empty: no argument
vhostile "$what" "$addr" $only || rc=1
rm -f /tmp/attacking
wait "$reader"
echo "OTHER_READS=$(cat /tmp/reads)"

seq 1 300000 | head -c 1048576 >/tmp/pattern
if dd if=/tmp/pattern of=/dev/vda bs=64k seek=16 conv=fsync 2>/dev/null &&
	dd if=/dev/vda of=/tmp/back bs=64k skip=16 count=16 iflag=direct 2>/dev/null &&
	cmp -s /tmp/pattern /tmp/back; then
	echo "OTHER_DISK=ok"
else
	echo "OTHER_DISK=FAIL"
	rc=1
fi

echo "$addr" >/sys/bus/pci/drivers/virtio-pci/bind
ok=FAIL
case $what in
blk)
	for _ in $(seq 50); do
		[ -b /dev/vdb ] && break
		sleep 0.2
	done
	[ "$(dd if=/dev/vdb bs=512 count=1 iflag=direct 2>/dev/null | head -c 20)" = minivmm-hostile-disk ] &&
		ok=ok
	;;
fs)
	for _ in $(seq 50); do
		fs_read_hello && { ok=ok; break; }
		sleep 0.2
	done
	;;
esac
echo "REBIND=$ok"
[ "$ok" = ok ] || rc=1
exit $rc
