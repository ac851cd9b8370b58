#!/bin/sh
# Root filesystem over virtio-fs: mounts the share minivmm.root_tag (default root) read-only
# on /newroot (-o dax=minivmm.root_dax, default inode), mounts proc, sys, dev and a tmpfs
# inside it and runs the shared tree's own programs there with chroot: host-installed
# tools the busybox initramfs does not have. Prints
#   ROOT_MOUNTED=TAG dax=MODE, ROOT_SUBMOUNTS=the ones of proc sys dev tmp that mounted
#   ROOT_OK name / ROOT_FAIL name: why   per check (python3, perl, bash, the type of / in
#                  the chroot, and writes into the root: EROFS with -o ro, and again from
#                  the server's readonly=on after a remount rw)
#   ROOT_SH=, ROOT_LS=  what /bin/sh is, `ls --version` (GNU, not busybox)
#   ROOT_TYPE=, ROOT_EXE=  (with proc) / in /proc/self/mounts, python3's /proc/self/exe
#   DEBIAN_VERSION=, USR_BIN_COUNT=  /etc/debian_version, `ls /usr/bin | wc -l`
#   SHA=PATH HASH, PYSHA=PATH HASH   coreutils sha256sum and python's hashlib of each PATH
#                  in minivmm.root_sha=PATH,PATH... (the host compares)
# Ends with ROOT_FAILS=<count of ROOT_FAIL lines>; exit status 0 when there are none.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
tag=$(cmdline_arg minivmm.root_tag)
dax=$(cmdline_arg minivmm.root_dax)
files=$(cmdline_arg minivmm.root_sha)
[ -n "$tag" ] || tag=root
[ -n "$dax" ] || dax=inode
r=/newroot
fails=0
ok() { echo "ROOT_OK $1"; }
bad() {
	echo "ROOT_FAIL $1: $2"
	fails=$((fails + 1))
}
# eq NAME GOT WANT
eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1" "got '$2', want '$3'"; fi; }
finish() {
	echo "ROOT_FAILS=$fails"
	[ "$fails" = 0 ]
	exit
}
# in_root PROGRAM ARGS...: a program of the shared root, run inside it (stderr included).
in_root() { chroot "$r" "$@" 2>&1; }

modprobe -q virtiofs 2>/dev/null
print_modules
mkdir -p "$r"
if ! mount -t virtiofs "$tag" "$r" -o "ro,dax=$dax" 2>/tmp/mount.err; then
	bad mount "$(cat /tmp/mount.err)"
	finish
fi
echo "ROOT_MOUNTED=$tag dax=$dax"
subs=""
for m in proc:proc sys:sysfs dev:devtmpfs tmp:tmpfs; do
	mount -t "${m#*:}" "${m#*:}" "$r/${m%%:*}" 2>/dev/null && subs="$subs ${m%%:*}"
done
echo "ROOT_SUBMOUNTS=${subs# }"

# The programs, from the shared tree. One python3 for what it checks (each start costs).
py='
import hashlib, os, sys
print("PY", sys.version_info[0])
if os.path.exists("/proc/self/mounts"):
    for l in open("/proc/self/mounts"):
        f = l.split()
        if f[1] == "/":
            print("ROOT_TYPE=" + f[2] + " " + f[3].split(",")[0])
    print("ROOT_EXE=" + os.readlink("/proc/self/exe"))
for f in sys.argv[1:]:
    print("PYSHA=" + f + " " + hashlib.sha256(open(f, "rb").read()).hexdigest())
'
# shellcheck disable=SC2046 # one word per file
out=$(in_root /usr/bin/python3 -c "$py" $(echo "$files" | tr , ' '))
echo "$out" | grep -v '^PY '
eq python3 "$(echo "$out" | grep '^PY ')" "PY 3"
case " $subs " in
*" proc "*) eq root_type "$(echo "$out" | sed -n 's/^ROOT_TYPE=//p')" "virtiofs ro" ;;
esac
# The program on stdin: perl -e opens /dev/null, which a root without dev/ lacks.
eq perl "$(printf '%s\n' 'print "PERL ok\n";' | in_root /usr/bin/perl)" "PERL ok"
# shellcheck disable=SC2016 # expanded by bash in the root
eq bash "$(in_root /bin/bash -c 'echo "BASH ${BASH_VERSINFO[0]}"')" "BASH 5"
echo "ROOT_SH=$(in_root /bin/readlink -f /bin/sh)"
echo "ROOT_LS=$(in_root /bin/ls --version | head -n 1)"
echo "DEBIAN_VERSION=$(in_root /bin/cat /etc/debian_version)"
echo "USR_BIN_COUNT=$(in_root /bin/sh -c 'ls /usr/bin | wc -l')"
for f in $(echo "$files" | tr , ' '); do
	echo "SHA=$f $(in_root /usr/bin/sha256sum "$f" | cut -d' ' -f1)"
done

# Writes into the root: each must fail with EROFS.
writes='
import errno, os
def t(name, f):
    try:
        f()
        print(name + "=WROTE")
    except OSError as e:
        print(name + "=" + errno.errorcode.get(e.errno, str(e.errno)))
t("create", lambda: open("/minivmm-rootfs-probe", "w"))
t("append", lambda: open("/etc/debian_version", "a"))
t("truncate", lambda: os.truncate("/etc/debian_version", 0))
t("mkdir", lambda: os.mkdir("/usr/minivmm-rootfs-probe"))
t("unlink", lambda: os.unlink("/etc/debian_version"))
t("rename", lambda: os.rename("/etc/debian_version", "/etc/minivmm-rootfs-probe"))
t("chmod", lambda: os.chmod("/etc/debian_version", 0o600))
t("symlink", lambda: os.symlink("x", "/minivmm-rootfs-probe"))
'
# check_ro PHASE
check_ro() {
	_out=$(in_root /usr/bin/python3 -c "$writes")
	for _w in create append truncate mkdir unlink rename chmod symlink; do
		eq "erofs_$1_$_w" "$(echo "$_out" | sed -n "s/^$_w=//p")" EROFS
	done
}
check_ro mount
# The guest's -o ro answered those; with the mount made writable the server must.
if mount -o remount,rw "$r" 2>/tmp/remount.err; then
	check_ro server
else
	bad remount_rw "$(cat /tmp/remount.err)"
fi

for d in tmp dev sys proc; do
	umount "$r/$d" 2>/dev/null
done
umount "$r" 2>/dev/null || umount -l "$r"
finish
