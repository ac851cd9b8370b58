#!/bin/sh
# minivmm - build the test guest: OUTDIR/vmlinuz (the host's newest Debian kernel) and
# OUTDIR/initramfs.cpio.gz (busybox, virtio/pvpanic/kvm/fuse modules, tests/guest/init,
# tests/guest/scenarios/*.sh, /bin/NAME for each tests/guest/tools/NAME.c (static C programs:
# fstool, vhostile, vsockcat); copies of fstool and vsockcat for the host side of the e2e
# tests are OUTDIR/fstool and OUTDIR/vsockcat).
# OUTDIR/initramfs-fio.cpio.gz is the same plus fio and its shared libraries (~85 MB: too
# heavy to boot for every test, so it is a separate file).
# AGENT (the static guest agent, build/guest-agent/minivmm-agent) becomes /sbin/minivmm-agent,
# started by /init for minivmm.agent=PORT.
# Rebuilds only when an input changed.
#
# usage: tests/guest/build-guest.sh OUTDIR AGENT
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu

[ $# -eq 2 ] || { echo "usage: $0 OUTDIR AGENT" >&2; exit 2; }
out=$1
agent=$2
[ -x "$agent" ] || { echo "$0: $agent: no agent binary" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=initramfs-lib.sh disable=SC1091
. "$here/initramfs-lib.sh"

MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev virtio_blk
	pvpanic pvpanic-pci kvm kvm_amd kvm_intel ccp irqbypass virtiofs fuse 9p 9pnet_virtio ext4 crc32c_generic
	vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport virtio_console virtio_balloon
	virtio-rng"

kernel=$(newest_kernel)
kver=$(kernel_version "$kernel")
fio=$(command -v fio || true)
qga=$(command -v qemu-ga || true)

# Everything the result depends on: our own files, the kernel and its modules, busybox, fio.
stamp=$({
	cat "$0" "$here/initramfs-lib.sh" "$here/init" "$here"/scenarios/*.sh "$here"/tools/*.c "$agent"
	gcc --version | head -n 1
	echo "$MODULES"
	# shellcheck disable=SC2012
	stat -L -c '%n %s %Y' "$kernel" "/lib/modules/$kver/modules.dep" /bin/busybox ${fio:+"$fio"} ${qga:+"$qga"} 2>/dev/null
	ls "$here/scenarios" "$here/tools"
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ] &&
	[ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ] && [ -x "$out/fstool" ] && [ -x "$out/vsockcat" ]; then
	exit 0
fi

echo "  GUEST   $out (kernel $kver)"
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-guest.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM

root=$stage/root
mkdir -p "$root"
stage_busybox "$root"
# shellcheck disable=SC2086 # one word per module
stage_modules "$root" "$kver" $MODULES
cp "$here/init" "$root/init"
chmod 755 "$root/init"
mkdir -p "$root/scenarios"
cp "$here"/scenarios/*.sh "$root/scenarios/"
chmod 755 "$root"/scenarios/*.sh
# The guest's own programs, static and with no dependencies: fstool (mmap, xattrs,
# SEEK_DATA/SEEK_HOLE for the fs scenario; the e2e host side runs the copy in OUTDIR to
# compute what the guest should print), vhostile (a hostile virtio driver), ttydrain
# (the console drained before the exit port).
for src in "$here"/tools/*.c; do
	name=$(basename "$src" .c)
	gcc -static -O2 -std=gnu11 -Wall -Wextra -Werror -o "$stage/$name" "$src"
	cp "$stage/$name" "$root/bin/$name"
done
mkdir -p "$root/sbin"
cp "$agent" "$root/sbin/minivmm-agent"
chmod 755 "$root/sbin/minivmm-agent"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
pack_cpio "$root" "$out/initramfs.cpio.gz"

# fio: a second, concatenated archive (the kernel unpacks both).
rm -f "$out/initramfs-fio.cpio.gz"
if [ -n "$fio" ]; then
	fioroot=$stage/fio
	mkdir -p "$fioroot"
	stage_binary "$fioroot" "$fio"
	[ -f /etc/ld.so.cache ] && mkdir -p "$fioroot/etc" && cp /etc/ld.so.cache "$fioroot/etc/"
	pack_cpio "$fioroot" "$stage/fio.cpio.gz"
	cat "$out/initramfs.cpio.gz" "$stage/fio.cpio.gz" >"$stage/all.cpio.gz"
	mv -f "$stage/all.cpio.gz" "$out/initramfs-fio.cpio.gz"
else
	echo "  GUEST   warning: fio not installed, no $out/initramfs-fio.cpio.gz" >&2
fi

# qemu-ga (bench/agent's peer): the same, when the host has it (the bench installs it).
rm -f "$out/initramfs-qga.cpio.gz"
if [ -n "$qga" ]; then
	qroot=$stage/qga
	mkdir -p "$qroot/usr/bin"
	stage_binary "$qroot" "$qga"
	[ "$qga" = /usr/bin/qemu-ga ] || cp "$qga" "$qroot/usr/bin/qemu-ga"
	[ -f /etc/ld.so.cache ] && mkdir -p "$qroot/etc" && cp /etc/ld.so.cache "$qroot/etc/"
	pack_cpio "$qroot" "$stage/qga.cpio.gz"
	cat "$out/initramfs.cpio.gz" "$stage/qga.cpio.gz" >"$out/initramfs-qga.cpio.gz"
fi

for t in fstool vsockcat; do
	cp "$stage/$t" "$out/$t.tmp.$$"
	mv -f "$out/$t.tmp.$$" "$out/$t"
done
cp "$kernel" "$out/vmlinuz.tmp.$$"
mv -f "$out/vmlinuz.tmp.$$" "$out/vmlinuz"
echo "$stamp" >"$out/.stamp"
