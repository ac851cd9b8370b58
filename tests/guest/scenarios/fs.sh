#!/bin/sh
# virtio-fs checks: mounts minivmm.fs_tag (default share0) on /mnt with
# -o dax=minivmm.fs_dax (always|inode|never; default never) and runs the parts listed in
# minivmm.fs=part,part,...:
#   ops       file operations; "FS_OK name" or "FS_FAIL name: why" per check, and
#             SHA_<file>= for the files the host put in data/ (the host compares)
#   ro        every kind of write must fail: FS_OK/FS_FAIL lines
#   escape    device nodes, "..", symlinks out of the share, many open files
#   truncate  reads tr (DAX), prints TRUNCATE_NOW, waits for the host to truncate it and
#             write 1 into flag, then reads past the new end through the old mapping
#   cache     CACHED_DELTA_KB= growth of the page cache while reading data/big64
#   hostchange  reads hc (attributes and data now cached), prints HC_READY, then re-reads
#             it every 0.1 s until the host's new, longer contents (ending "on the host")
#             show in full: HC_SEEN_DS= tenths of a second it took (never: not in 30 s).
#             Until the cached size times out the guest may read the new bytes cut
#             at the old size: FUSE's attribute cache, as documented.
#   tool      with /bin/fstool (else FS_SKIP): shared mmap reads of data/* (up to 4 MiB)
#             agree with read(); MAP_SHARED writes into the host's mw (8 KiB) and a new
#             w-mmap (the host checks both); SEEK_MAP= the SEEK_DATA/SEEK_HOLE map of
#             the host's sparse 4 MiB holes (data at 1 MiB; the host compares); when
#             the host made the setgid directory sgid: files and directories guest root
#             and uid 1000 make there get its group, and S_ISGID only as the kernel
#             allows (CVE-2022-0358); SETGID_ROOT=, SETGID_USER=
#   xattr     with /bin/fstool: xattrs on this share (xattr = off) fail with EOPNOTSUPP;
#             with minivmm.fs_xtag=TAG (a share with xattr = on) mounted on /mnt2 they
#             round-trip in x there (the host checks user.minivmm and user.keep)
# minivmm.fs_files=N: files the ops part makes in one directory and lists (default 2000).
# Ends with FS_FAILS=<count of FS_FAIL lines>. minivmm.fs_stall=S: if still running after S
# seconds, print FS_STALL and the kernel's list of blocked tasks with their stacks.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
tag=$(cmdline_arg minivmm.fs_tag)
dax=$(cmdline_arg minivmm.fs_dax)
parts=$(cmdline_arg minivmm.fs)
[ -n "$tag" ] || tag=share0
[ -n "$dax" ] || dax=never
files=$(cmdline_arg minivmm.fs_files)
[ -n "$files" ] || files=2000
fails=0
stall=$(cmdline_arg minivmm.fs_stall)
watch=""
if [ -n "$stall" ]; then
	(
		sleep "$stall"
		echo "FS_STALL: still running after ${stall} s; blocked tasks:"
		# Straight from the kernel to the console: user space may be what is stuck (seen:
		# neither this echo nor dmesg below got out, the kernel's own line did).
		echo 7 >/proc/sys/kernel/printk
		echo 1 >/proc/sys/kernel/sysrq
		echo w >/proc/sysrq-trigger
		sleep 1
		dmesg | sed -n '/Show Blocked State/,$p' | tail -n 200
	) &
	watch=$!
fi
ok() { echo "FS_OK $1"; }
bad() {
	echo "FS_FAIL $1: $2"
	fails=$((fails + 1))
}
# check NAME CMD...: FS_OK when CMD succeeds.
check() {
	_n=$1
	shift
	if "$@" >/tmp/check.out 2>&1; then ok "$_n"; else bad "$_n" "$(head -c 200 /tmp/check.out | tr '\n' ' ')"; fi
}
# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
cached_kb() { sed -n 's/^Cached: *\([0-9]*\) kB/\1/p' /proc/meminfo; }

modprobe -q virtiofs 2>/dev/null
print_modules
mkdir -p /mnt
if ! mount -t virtiofs "$tag" /mnt -o "dax=$dax" 2>/tmp/mount.err; then
	echo "FS_FAIL mount: $(cat /tmp/mount.err)"
	echo "FS_FAILS=1"
	exit 1
fi
echo "FS_MOUNTED=$tag dax=$dax"

part_ops() {
	cd /mnt || return
	for f in data/*; do
		[ -f "$f" ] && echo "SHA_${f#data/}=$(sha "$f")"
	done
	mkdir w && cd w || { bad mkdir "cannot create /mnt/w"; return; }
	echo hello >a
	eq create_read "$(cat a)" hello
	echo world >>a
	eq append "$(cat a)" "hello
world"
	# Grow a file that is already mapped (DAX) across a page; the new bytes must show.
	head -c 4095 /dev/urandom >p
	cat p >/dev/null
	printf XYZ >>p
	eq append_mapped "$(tail -c 3 p) $(stat -c %s p)" "XYZ 4098"
	truncate -s 3 a
	eq truncate_down "$(cat a)" hel
	truncate -s 5000 a
	eq truncate_up "$(stat -c %s a) $(tail -c 4997 a | tr -d '\0' | wc -c)" "5000 0"
	mv a b
	eq rename "$([ -e a ] && echo a) $(head -c 3 b)" " hel"
	ln b c
	eq link "$(stat -c %h b) $(stat -c %i b)" "2 $(stat -c %i c)"
	ln -s b s
	eq symlink "$(readlink s) $(head -c 3 s)" "b hel"
	rm c
	eq unlink "$(stat -c %h b) $([ -e c ] && echo c)" "1 "
	mkdir -p d/e
	eq mkdir "$(stat -c %F d/e)" directory
	rmdir d/e d
	eq rmdir "$([ -e d ] && echo d)" ""
	mkdir big
	i=0
	while [ $i -lt "$files" ]; do
		true >"big/f$i"
		i=$((i + 1))
	done
	eq "readdir_$files" "$(ls big | wc -l) $(find big -type f | wc -l)" "$files $files"
	chmod 640 b
	eq chmod "$(stat -c %a b)" 640
	chown 1234:5678 b
	eq chown "$(stat -c %u:%g b)" 1234:5678
	touch -d "2001-02-03 04:05:06" b
	eq utimes "$(stat -c %Y b)" 981173106
	seq 1 10000 | dd of=fsynced bs=4k conv=fsync 2>/dev/null
	eq fsync "$?$(stat -c %s fsynced)" "0$(seq 1 10000 | wc -c)"
	truncate -s 10M sparse
	echo x | dd of=sparse bs=1k seek=5120 conv=notrunc 2>/dev/null
	eq sparse "$(stat -c %s sparse) $(dd if=sparse bs=1k skip=5120 count=1 2>/dev/null | head -c 1)" "10485760 x"
	[ "$(stat -c %b sparse)" -lt 1024 ] && ok sparse_blocks || bad sparse_blocks "$(stat -c %b sparse) blocks"
	# Copies of the host's files: the host checks their hashes after we power off.
	for f in ../data/*; do
		cp "$f" "copy_${f##*/}" || bad copy "$f"
	done
	eq copies "$(ls copy_* | wc -l)" "$(ls ../data | wc -l)"
	sync
	cd /
}

part_ro() {
	cd /mnt || return
	! touch newfile 2>/dev/null && ok ro_create || bad ro_create "created a file"
	! sh -c 'echo x >>data/f1' 2>/dev/null && ok ro_append || bad ro_append "appended"
	! mkdir newdir 2>/dev/null && ok ro_mkdir || bad ro_mkdir "made a directory"
	! rm data/f1 2>/dev/null && ok ro_unlink || bad ro_unlink "removed a file"
	! chmod 600 data/f1 2>/dev/null && ok ro_chmod || bad ro_chmod "changed a mode"
	! truncate -s 0 data/f1 2>/dev/null && ok ro_truncate || bad ro_truncate "truncated"
	! mv data/f1 data/f1x 2>/dev/null && ok ro_rename || bad ro_rename "renamed"
	[ -n "$(sha data/f1)" ] && ok ro_read || bad ro_read "cannot read"
	cd /
}

part_escape() {
	cd /mnt || return
	# A device node: the host never opens it; in the guest it is the guest's device
	# (8:0 is a disk the guest does not have).
	if mknod node b 8 0 2>/dev/null; then
		echo "MKNOD=created"
		dd if=node of=/dev/null bs=512 count=1 2>/dev/null && bad node_open "opened" || ok node_open
	else
		echo "MKNOD=refused"
		ok node_open
	fi
	# A FIFO the host made: looking at it must not make the server open it (it would hang).
	stat hostfifo >/dev/null 2>&1
	ls -l >/dev/null 2>&1
	timeout 2 cat hostfifo >/dev/null 2>&1
	eq fifo_no_hang "$(timeout 20 ls /mnt/data >/dev/null 2>&1; echo $?)" 0
	# ".." at the root and symlinks out of the share all stay in the guest.
	eq dotdot_root "$(stat -c %i /mnt/..)" "$(stat -c %i /)"
	eq dotdot_passwd "$(cat /mnt/../etc/passwd)" "$(cat /etc/passwd)"
	eq rootlink "$(cat /mnt/rootlink/etc/passwd 2>&1)" "$(cat /etc/passwd)"
	eq uplink "$(ls /mnt/uplink/ | sort | head -c 300)" "$(ls / | sort | head -c 300)"
	# The host's marker file sits next to the share: whatever we can read through the
	# links is printed, and the host checks its marker is not in it.
	for f in /mnt/abslink /mnt/../outside-marker /mnt/uplink/outside-marker \
		/mnt/relmarker; do
		echo "ESCAPE_READ $f: $(head -c 100 "$f" 2>&1 | tr '\n' ' ')"
	done
	echo "ESCAPE_FIND: $(find /mnt -xdev -type f -exec cat {} + 2>/dev/null | grep -c host-secret)"
	# More open files than the share's descriptor budget (the host runs this with
	# max_fds = 2048): 1500 files fit as inodes, but opening all of them at once runs out;
	# the opens fail with an error, and once they are closed the share works again.
	mkdir many && i=0 && made=0
	while [ $i -lt 1500 ]; do
		# Not ":": a failed redirection of a special builtin ends the shell.
		true >"many/f$i" 2>/dev/null && made=$((made + 1))
		i=$((i + 1))
	done
	echo "MANY_CREATED=$made"
	# shellcheck disable=SC3045 # busybox ash has ulimit -n
	# 4096: the hard limit the kernel gives init
	(ulimit -n 4096 && exec tail -n 0 -f many/* >/dev/null 2>/tmp/tail.err) &
	sleep 5
	kill $! 2>/dev/null
	wait 2>/dev/null
	echo "MANY_OPEN_REFUSED=$(grep -c 'Too many open files' /tmp/tail.err)"
	echo after >many/after
	eq many_recover "$(cat many/after)" after
	cd /
}

part_truncate() {
	[ "$(sha /mnt/tr)" != "" ] || bad truncate_read "cannot read tr"
	echo TRUNCATE_NOW
	i=0
	while [ $i -lt 300 ]; do
		[ "$(head -c 1 /mnt/flag)" = 1 ] && break
		sleep 0.2
		i=$((i + 1))
	done
	echo "TRUNCATED_SEEN=$([ $i -lt 300 ] && echo 1 || echo 0)"
	# The guest still thinks tr is 2 MiB and reads its old mapping past the new end.
	echo "TAIL_SHA=$(dd if=/mnt/tr bs=4096 skip=256 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)"
	echo "TR_ALIVE=1"
}

part_cache() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	before=$(cached_kb)
	s=$(sha /mnt/data/big64)
	after=$(cached_kb)
	echo "BIG64_SHA=$s"
	echo "CACHED_DELTA_KB=$((after - before))"
}

part_hostchange() {
	echo "HC_OLD=$(cat /mnt/hc)"
	echo HC_READY
	i=0
	while [ $i -lt 300 ]; do
		case $(cat /mnt/hc) in *"on the host") break ;; esac
		sleep 0.1
		i=$((i + 1))
	done
	[ $i -lt 300 ] && echo "HC_SEEN_DS=$i" || echo "HC_SEEN_DS=never"
	echo "HC_NEW=$(cat /mnt/hc)"
}

have_fstool() {
	[ -x /bin/fstool ] && return 0
	echo "FS_SKIP $1: no /bin/fstool"
	return 1
}

part_tool() {
	have_fstool tool || return
	# Forget the inodes ops cached (up to 2000 in w/big): each holds a host descriptor of the
	# share's max_fds budget.
	sync
	echo 2 >/proc/sys/vm/drop_caches
	cd /mnt || return
	for f in data/*; do
		if [ ! -f "$f" ] || [ "$(stat -c %s "$f")" -gt 4194304 ]; then continue; fi
		eq "mmap_read_${f#data/}" "$(fstool mmap-hash "$f" 2>&1)" "$(fstool hash "$f" 2>&1)"
	done
	w="minivmm-mmap-$dax"
	check mmap_write fstool mmap-write mw 4090 "$w"
	eq mmap_write_read "$(dd if=mw bs=1 skip=4090 count=${#w} 2>/dev/null)" "$w"
	# A file the guest made and wrote through a shared mapping, read back with read().
	head -c 12288 /dev/zero >w-mmap
	check mmap_write_new fstool mmap-write w-mmap 8000 "$w"
	eq mmap_write_new_read "$(dd if=w-mmap bs=1 skip=8000 count=${#w} 2>/dev/null)" "$w"
	m=$(fstool seek holes 2>&1)
	echo "SEEK_MAP=$m"
	# The map depends on the host filesystem (9p has no holes): the host compares it with
	# its own; here it must cover the file.
	case $m in
	*data*-4194304 | *hole*-4194304) ok seek_map ;;
	*) bad seek_map "$m" ;;
	esac
	if [ -d sgid ]; then
		g=$(stat -c %g sgid)
		m=$(fstool setgid-check sgid 2>&1)
		echo "SETGID_ROOT=$m"
		eq setgid_root "$m" "file $g 2775 dir $g 2775"
		m=$(fstool setgid-check sgid 1000:1000 2>&1)
		echo "SETGID_USER=$m"
		eq setgid_user "$m" "file $g 775 dir $g 2775"
	else
		echo "FS_SKIP setgid: no sgid directory"
	fi
	cd /
}

# xattrs FILE: the user.* names of FILE's xattrs
xattrs() { fstool xattr-list "$1" | tr ' ' '\n' | grep '^user\.' | tr '\n' ' '; }

part_xattr() {
	have_fstool xattr || return
	f=/mnt/xattr-off
	echo x >$f
	e="errno=95 Operation not supported"
	eq xattr_off_set "$(fstool xattr-set $f user.minivmm v)" "error xattr-set: $e"
	eq xattr_off_get "$(fstool xattr-get $f user.minivmm)" "error xattr-get: $e"
	eq xattr_off_list "$(fstool xattr-list $f)" "error xattr-list: $e"
	rm -f $f
	xtag=$(cmdline_arg minivmm.fs_xtag)
	[ -n "$xtag" ] || return
	mkdir -p /mnt2
	if ! mount -t virtiofs "$xtag" /mnt2 -o "dax=$dax" 2>/tmp/mount.err; then
		bad xattr_mount "$(cat /tmp/mount.err)"
		return
	fi
	f=/mnt2/x
	echo data >$f
	check xattr_set fstool xattr-set $f user.minivmm hello-xattr
	eq xattr_get "$(fstool xattr-get $f user.minivmm)" hello-xattr
	fstool xattr-set $f user.gone 1 >/dev/null
	fstool xattr-set $f user.keep kept >/dev/null
	eq xattr_list "$(xattrs $f)" "user.gone user.keep user.minivmm "
	check xattr_rm fstool xattr-rm $f user.gone
	eq xattr_rm_get "$(fstool xattr-get $f user.gone)" "error xattr-get: errno=61 No data available"
	eq xattr_list_rm "$(xattrs $f)" "user.keep user.minivmm "
	# trusted.* is not for the guest to set on host files
	eq xattr_trusted "$(fstool xattr-set $f trusted.minivmm x)" \
		"error xattr-set: errno=1 Operation not permitted"
	umount /mnt2 2>/dev/null || bad xattr_umount "$(umount /mnt2 2>&1)"
}

for p in $(echo "$parts" | tr , ' '); do
	case $p in
	ops | ro | escape | truncate | cache | tool | xattr | hostchange) "part_$p" ;;
	*) bad "$p" "unknown part" ;;
	esac
done
umount /mnt 2>/dev/null || bad umount "$(umount /mnt 2>&1)"
[ -z "$watch" ] || kill "$watch" 2>/dev/null
echo "FS_FAILS=$fails"
[ "$fails" = 0 ]
