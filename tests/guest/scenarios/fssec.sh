#!/bin/sh
# virtio-fs share hardening (tests/e2e/share_security.sh): what the guest may leave in a
# share for host users. Mounts each tag of minivmm.fssec_tags=TAG,TAG... on /mnt/TAG and
# runs the parts of minivmm.fssec=part,... in each, printing KEY_TAG=VALUE lines; the host
# knows which share allows what, judges the lines and checks the files on its side.
#   mknod  MKNOD_CHR (c 10:232 "kvm", mode 666), MKNOD_BLK (b 8:0 "blk"), MKNOD_WH (c 0:0
#          "wh", a whiteout), MKFIFO ("fifo"), CHMOD_DEV / CHOWN_DEV (chmod 666, chown 1000
#          of the host's "hnull", c 1:3 mode 600): each ok or refused
#   setid  chmod 4755 of a new file su, 2755 of sg, 6775 of a new directory sd: MODE_SU,
#          MODE_SG, MODE_SD as the guest then sees them; SETGID_CREATE: fstool setgid-check
#          in a new setgid directory sgd (files and directories made with mode 02775);
#          MODE_HSU after chown 0:0 of the host's set-uid "hsu" (when there); MODE_HW after
#          appending to the host's set-uid-root "hw"
#   xattr  XATTR_TRUSTED / XATTR_SECURITY: fstool xattr-set of trusted.minivmm=t and
#          security.minivmm=s on a new file x; XATTR_HIDDEN: fstool xattr-get of
#          trusted.host of the host's "hx"; XATTR_LIST: the trusted.* names it lists
# Ends with FSSEC_DONE.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
tags=$(cmdline_arg minivmm.fssec_tags)
parts=$(cmdline_arg minivmm.fssec)
[ -n "$tags" ] || tags=share0
umask 0

modprobe -q virtiofs 2>/dev/null
print_modules
# try CMD...: ok when CMD succeeds, else refused
try() { if "$@" >/dev/null 2>&1; then echo ok; else echo refused; fi; }

part_mknod() {
	echo "MKNOD_CHR_$1=$(try mknod -m 666 kvm c 10 232)"
	echo "MKNOD_BLK_$1=$(try mknod -m 660 blk b 8 0)"
	echo "MKNOD_WH_$1=$(try mknod -m 0 wh c 0 0)"
	echo "MKFIFO_$1=$(try mkfifo -m 644 fifo)"
	echo "CHMOD_DEV_$1=$(try chmod 666 hnull)"
	echo "CHOWN_DEV_$1=$(try chown 1000 hnull)"
}

part_setid() {
	echo x >su && chmod 4755 su
	echo "MODE_SU_$1=$(stat -c %a su)"
	echo x >sg && chmod 2755 sg
	echo "MODE_SG_$1=$(stat -c %a sg)"
	mkdir sd && chmod 6775 sd
	echo "MODE_SD_$1=$(stat -c %a sd)"
	mkdir sgd && chmod 2777 sgd
	echo "SETGID_CREATE_$1=$(fstool setgid-check sgd 2>&1)"
	if [ -e hsu ]; then
		chown 0:0 hsu
		echo "MODE_HSU_$1=$(stat -c %a:%u:%g hsu)"
	fi
	echo appended >>hw
	echo "MODE_HW_$1=$(stat -c %a hw)"
}

part_xattr() {
	echo data >x
	echo "XATTR_TRUSTED_$1=$(fstool xattr-set x trusted.minivmm t 2>&1)"
	echo "XATTR_SECURITY_$1=$(fstool xattr-set x security.minivmm s 2>&1)"
	echo "XATTR_HIDDEN_$1=$(fstool xattr-get hx trusted.host 2>&1)"
	echo "XATTR_LIST_$1=$(fstool xattr-list hx 2>&1 | tr ' ' '\n' | grep '^trusted\.' | tr '\n' ' ')"
}

for t in $(echo "$tags" | tr , ' '); do
	mkdir -p "/mnt/$t"
	if ! mount -t virtiofs "$t" "/mnt/$t" 2>/tmp/mount.err; then
		echo "FSSEC_MOUNT_FAILED_$t=$(cat /tmp/mount.err)"
		continue
	fi
	for p in $(echo "$parts" | tr , ' '); do
		case $p in
		mknod | setid | xattr) (cd "/mnt/$t" && "part_$p" "$t") ;;
		*) echo "FSSEC_UNKNOWN_PART=$p" ;;
		esac
	done
	sync
	umount "/mnt/$t" || echo "FSSEC_UMOUNT_FAILED_$t"
done
echo FSSEC_DONE
