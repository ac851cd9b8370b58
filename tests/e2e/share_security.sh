# shellcheck shell=bash
# minivmm e2e: what a guest may leave in a virtio-fs share for host users (docs/virtiofs.md,
# "What the guest may leave for host users"). Sourced by tests/e2e/run.sh, which provides
# $MINIVMM, $CFG, $GUEST, $T, $LIMIT, $why, $rc and the helpers (guest, vm, expect_*).
# Each case boots the test guest once with two shares on the host's (the L1's) /tmp:
# sec0 with the defaults and sec1 with the case's allow_* key on, so one run shows both
# that the default refuses and that the key allows. The guest scenario fssec
# (tests/guest/scenarios/fssec.sh) does the trying and prints what it saw; the host checks
# its lines and the files on its side (build/guest/fstool is the guest's fstool).
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
SHARESEC_CASES="sharesec_keys sharesec_mknod sharesec_setid sharesec_xattr"

# sec_dirs: empty $T/sec0 and $T/sec1.
sec_dirs() {
	rm -rf "$T/sec0" "$T/sec1"
	mkdir -p "$T/sec0" "$T/sec1"
}
# sharesec PART KEY...: the fssec scenario's PART on both shares (xattr = on on both), the
# KEYs on for sec1; -v for the share lines.
sharesec() {
	local part=$1 k set=()
	shift
	for k in "$@"; do set+=(--set "share.1.$k=on"); done
	guest fssec "minivmm.fssec=$part minivmm.fssec_tags=sec0,sec1" -v \
		--set "share.0.path=$T/sec0" --set share.0.tag=sec0 --set share.0.dax=never \
		--set share.0.xattr=on --set "share.1.path=$T/sec1" --set share.1.tag=sec1 \
		--set share.1.dax=never --set share.1.xattr=on "${set[@]}" &&
		expect_rc 0 && expect_out FSSEC_DONE
}
# host_is FILE WANT [STAT-FORMAT]: stat -c FORMAT (default %a) of FILE is WANT.
host_is() {
	local got
	got=$(stat -c "${3:-%a}" "$1" 2>&1)
	[ "$got" = "$2" ] && return 0
	why="${1#"$T"/} on the host: '$got', want '$2'"
	return 1
}

# The keys: off by default, shown by --dry-run, set with --set, checked as on|off.
t_sharesec_keys() {
	mkdir -p "$T/sec0"
	vm "$CFG" --dry-run --set "share.0.path=$T/sec0" && expect_rc 0 &&
		expect_out "allow_devices = off" && expect_out "allow_setid = off" &&
		expect_out "allow_priv_xattr = off" || return 1
	vm "$CFG" --dry-run --set "share.0.path=$T/sec0" --set share.0.allow_devices=on \
		--set share.0.allow_setid=on --set share.0.allow_priv_xattr=on && expect_rc 0 &&
		expect_out "allow_devices = on" && expect_out "allow_setid = on" &&
		expect_out "allow_priv_xattr = on" || return 1
	vm "$CFG" --set "share.0.path=$T/sec0" --set share.0.allow_devices=yes &&
		expect_rc 2 && expect_err "share.0.*allow_devices" || return 1
	# A descriptor budget the process cannot hold (fs.nr_open is 1048576 at most, and
	# minivmm needs some for itself): refused at start, not promised to the guest.
	vm "$CFG" --set "share.0.path=$T/sec0" --set share.0.max_fds=1048576 &&
		expect_rc 1 && expect_err "\[share.0\] max_fds = 1048576: .*RLIMIT_NOFILE"
}

# MKNOD: no device node by default (a c 10:232 at 0666 would be /dev/kvm for every host
# user), nor chmod/chown of one the host put there; whiteouts and FIFOs are fine.
t_sharesec_mknod() {
	local d
	sec_dirs
	for d in sec0 sec1; do mknod -m 600 "$T/$d/hnull" c 1 3 || { why="mknod on the host"; return 1; }; done
	sharesec mknod allow_devices || return 1
	expect_out MKNOD_CHR_sec0=refused && expect_out MKNOD_BLK_sec0=refused &&
		expect_out MKNOD_WH_sec0=ok && expect_out MKFIFO_sec0=ok &&
		expect_out CHMOD_DEV_sec0=refused && expect_out CHOWN_DEV_sec0=refused || return 1
	expect_out MKNOD_CHR_sec1=ok && expect_out MKNOD_BLK_sec1=ok && expect_out MKNOD_WH_sec1=ok &&
		expect_out MKFIFO_sec1=ok && expect_out CHMOD_DEV_sec1=ok && expect_out CHOWN_DEV_sec1=ok || return 1
	for d in kvm blk; do
		[ ! -e "$T/sec0/$d" ] && [ ! -L "$T/sec0/$d" ] || { why="sec0/$d exists on the host"; return 1; }
	done
	host_is "$T/sec0/wh" "character special file 0:0" "%F %t:%T" &&
		host_is "$T/sec0/fifo" "fifo 644" "%F %a" &&
		host_is "$T/sec0/hnull" "600 0" "%a %u" &&
		host_is "$T/sec1/kvm" "character special file a:e8 666" "%F %t:%T %a" &&
		host_is "$T/sec1/blk" "block special file 8:0 660" "%F %t:%T %a" &&
		host_is "$T/sec1/hnull" "666 1000" "%a %u" || return 1
	grep -q "share.0: .*guest may make devices off, set-id bits off, security/trusted xattrs off" "$T/err" &&
		grep -q "share.1: .*guest may make devices on, set-id bits off" "$T/err" ||
		{ why="no share lines with the allow_* keys at -v"; return 1; }
}

# Set-uid/set-gid bits: dropped by default from new and chmodded files (not a directory's
# S_ISGID), from a host set-uid file the guest chowns or writes to.
t_sharesec_setid() {
	local d
	sec_dirs
	for d in sec0 sec1; do
		echo host >"$T/$d/hw" && chmod 4755 "$T/$d/hw"
	done
	echo host >"$T/sec0/hsu" && chown 1000:1000 "$T/sec0/hsu" && chmod 4755 "$T/sec0/hsu"
	sharesec setid allow_setid || return 1
	expect_out MODE_SU_sec0=755 && expect_out MODE_SG_sec0=755 && expect_out MODE_SD_sec0=2775 &&
		expect_out "SETGID_CREATE_sec0=file 0 775 dir 0 2775" &&
		expect_out MODE_HSU_sec0=755:0:0 || return 1
	# (MODE_HW_sec0: the guest may show its cached 4755 for up to 1 s; the host decides.)
	expect_out MODE_SU_sec1=4755 && expect_out MODE_SG_sec1=2755 && expect_out MODE_SD_sec1=6775 &&
		expect_out "SETGID_CREATE_sec1=file 0 2775 dir 0 2775" &&
		expect_out MODE_HW_sec1=4755 || return 1
	host_is "$T/sec0/su" 755 && host_is "$T/sec0/sg" 755 && host_is "$T/sec0/sd" 2775 &&
		host_is "$T/sec0/sgd/sgf-0" 775 && host_is "$T/sec0/sgd/sgd-0" 2775 &&
		host_is "$T/sec0/hsu" "755 0:0" "%a %u:%g" && host_is "$T/sec0/hw" 755 &&
		host_is "$T/sec1/su" 4755 && host_is "$T/sec1/sg" 2755 && host_is "$T/sec1/sd" 6775 &&
		host_is "$T/sec1/sgd/sgf-0" 2775 && host_is "$T/sec1/hw" 4755 || return 1
	[ "$(cat "$T/sec0/hw")" = "host
appended" ] || { why="sec0/hw on the host: '$(cat "$T/sec0/hw")'"; return 1; }
}

# xattrs: security.* and trusted.* are refused by default, trusted.* hidden; allowed with
# allow_priv_xattr. Needs a host /tmp that keeps them (tmpfs does, for root).
t_sharesec_xattr() {
	local d fst=$GUEST/fstool e="error xattr-set: errno=1 Operation not permitted"
	sec_dirs
	for d in sec0 sec1; do
		echo host >"$T/$d/hx"
		"$fst" xattr-set "$T/$d/hx" trusted.host h >/dev/null ||
			{ why="the host's $T keeps no trusted.* xattrs: $("$fst" xattr-set "$T/$d/hx" trusted.host h)"; return 1; }
	done
	sharesec xattr allow_priv_xattr || return 1
	expect_out "XATTR_TRUSTED_sec0=$e" && expect_out "XATTR_SECURITY_sec0=$e" &&
		expect_out "XATTR_HIDDEN_sec0=error xattr-get: errno=61 No data available" &&
		expect_out "XATTR_LIST_sec0=" || return 1
	expect_out "XATTR_TRUSTED_sec1=set trusted.minivmm" &&
		expect_out "XATTR_SECURITY_sec1=set security.minivmm" &&
		expect_out XATTR_HIDDEN_sec1=h && expect_out "XATTR_LIST_sec1=trusted.host " || return 1
	for d in trusted.minivmm security.minivmm; do
		! "$fst" xattr-get "$T/sec0/x" "$d" >/dev/null 2>&1 || { why="sec0/x has $d on the host"; return 1; }
	done
	[ "$("$fst" xattr-get "$T/sec1/x" trusted.minivmm)" = t ] &&
		[ "$("$fst" xattr-get "$T/sec1/x" security.minivmm)" = s ] ||
		{ why="sec1/x on the host: trusted.minivmm '$("$fst" xattr-get "$T/sec1/x" trusted.minivmm)', security.minivmm '$("$fst" xattr-get "$T/sec1/x" security.minivmm)'"; return 1; }
	[ "$("$fst" xattr-get "$T/sec0/hx" trusted.host)" = h ] || { why="sec0/hx lost trusted.host"; return 1; }
}
