#!/bin/sh
# Shared-filesystem benchmark (bench/sharedfs): mounts one filesystem on /mnt and measures
# in the guest. Parameters from the kernel command line:
#   minivmm.fsb.fs=virtiofs|9p|ext4   what to mount (default virtiofs)
#   minivmm.fsb.tag=bench             virtio-fs or 9p tag
#   minivmm.fsb.dax=never|always|inode  virtio-fs -o dax= (default never)
#   minivmm.fsb.msize=512000          9p msize; minivmm.fsb.cache=none: 9p cache= mode
#   minivmm.fsb.dev=/dev/vda          ext4: the block device
#   minivmm.fsb.file=big              the big file (relative to the mount)
#   minivmm.fsb.tar=tree.tar          the tree of small files, as a tar (relative to the mount)
# Prints KEY=VALUE lines: times in microseconds (*_US), sizes in bytes, page cache in KiB:
#   FILE_BYTES READ1_US READ2_US     the big file: first read after drop_caches, re-read
#   CACHED0_KB CACHED1_KB CACHED2_KB  Cached: before, after the first read, after the re-read
#   TREE_ENTRIES UNTAR_US            tar -x of the tree into /mnt/x, then sync
#   FIND_N FIND_US                   find /mnt/x | wc -l after drop_caches
#   STAT_N STAT_US                   stat of every entry after drop_caches
#   TREE_BYTES READTREE_US           cat of every file after drop_caches
#   RM_US RM_LEFT                    rm -rf /mnt/x, then sync; entries it left behind
# and FSB_DONE=1 at the end; FSB_FAIL=why on the first failure (exit status 1).
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
p() {
	_v=$(cmdline_arg "minivmm.fsb.$1")
	echo "${_v:-$2}"
}
fs=$(p fs virtiofs)
tag=$(p tag bench)
file=$(p file big)
tar=$(p tar tree.tar)
M=/mnt

fail() {
	echo "FSB_FAIL=$*"
	exit 1
}
# now_us: wall clock in microseconds (busybox date has no %N; adjtimex has tv_usec).
now_us() {
	adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d%06d\n", s, u }'
}
cached_kb() { sed -n 's/^Cached: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
drop() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}
# timed KEY CMD...: runs CMD (a shell string) and prints KEY=<microseconds>.
timed() {
	_k=$1
	shift
	_s=$(now_us)
	sh -c "$*" || fail "$_k: $* failed"
	_e=$(now_us)
	echo "$_k=$((_e - _s))"
}

mkdir -p "$M"
case $fs in
virtiofs)
	modprobe -q virtiofs 2>/dev/null
	dax=$(p dax never)
	mount -t virtiofs "$tag" "$M" -o "dax=$dax" 2>/tmp/mount.err ||
		fail "mount virtiofs $tag dax=$dax: $(cat /tmp/mount.err)"
	;;
9p)
	modprobe -q 9pnet_virtio 2>/dev/null
	modprobe -q 9p 2>/dev/null
	mount -t 9p "$tag" "$M" -o "trans=virtio,version=9p2000.L,msize=$(p msize 512000),cache=$(p cache none)" \
		2>/tmp/mount.err || fail "mount 9p $tag: $(cat /tmp/mount.err)"
	;;
ext4)
	modprobe -q crc32c_generic 2>/dev/null
	modprobe -q ext4 2>/dev/null
	dev=$(p dev /dev/vda)
	mount -t ext4 "$dev" "$M" 2>/tmp/mount.err || fail "mount ext4 $dev: $(cat /tmp/mount.err)"
	;;
*) fail "unknown minivmm.fsb.fs=$fs" ;;
esac
echo "FSB_MOUNTED=$(grep " $M " /proc/mounts | head -n 1)"
[ -f "$M/$file" ] || fail "no $M/$file"

# --- the big file: first read (guest caches dropped), re-read ---------------------------
echo "FILE_BYTES=$(stat -c %s "$M/$file")"
drop
echo "CACHED0_KB=$(cached_kb)"
timed READ1_US "dd if='$M/$file' of=/dev/null bs=1M 2>/dev/null"
echo "CACHED1_KB=$(cached_kb)"
timed READ2_US "dd if='$M/$file' of=/dev/null bs=1M 2>/dev/null"
echo "CACHED2_KB=$(cached_kb)"

# --- the tree of small files -------------------------------------------------------------
# The archive goes to the guest's tmpfs first (not timed), so the untar reads from RAM.
cp "$M/$tar" /tmp/tree.tar || fail "cannot copy $M/$tar"
echo "TREE_ENTRIES=$(tar -tf /tmp/tree.tar | grep -vc '^\./$')"
rm -rf "$M/x"
mkdir "$M/x" || fail "cannot mkdir $M/x"
timed UNTAR_US "tar -xf /tmp/tree.tar -C '$M/x' && sync"
drop
_s=$(now_us)
n=$(find "$M/x" | wc -l)
_e=$(now_us)
echo "FIND_N=$n"
echo "FIND_US=$((_e - _s))"
find "$M/x" >/tmp/all
find "$M/x" -type f >/tmp/files
drop
_s=$(now_us)
n=$(xargs stat -c %s </tmp/all | wc -l)
_e=$(now_us)
echo "STAT_N=$n"
echo "STAT_US=$((_e - _s))"
drop
_s=$(now_us)
n=$(xargs cat </tmp/files | wc -c)
_e=$(now_us)
echo "TREE_BYTES=$n"
echo "READTREE_US=$((_e - _s))"
# rm -rf: a failure (entries left) is reported with RM_LEFT, not fatal.
_s=$(now_us)
rm -rf "$M/x" 2>/tmp/rm.err
sync
_e=$(now_us)
echo "RM_US=$((_e - _s))"
n=$(find "$M/x" 2>/dev/null | wc -l)
echo "RM_LEFT=$n"
[ "$n" = 0 ] || echo "FSB_WARN=rm -rf left $n entries: $(head -n 2 /tmp/rm.err | tr '\n' ' ')"
rm -f /tmp/tree.tar /tmp/all /tmp/files
cd /
umount "$M" || fail "umount $M"
echo "FSB_DONE=1"
