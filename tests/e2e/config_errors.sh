# shellcheck shell=bash
# minivmm e2e: configuration errors (exit 2, a message naming the file, line and key).
# Sourced by tests/e2e/run.sh, which provides the helpers (vm, guest, expect_*, mkdisk,
# mkshare, ...) and $MINIVMM, $CFG, $GUEST, $T, $LIMIT, $why, $rc.
# SPDX-License-Identifier: GPL-2.0-or-later

# shellcheck disable=SC2034 # used by run.sh
CONFIG_CASES="bad_section bad_key bad_size bad_vcpus bad_kernel bad_set bad_line"

# --- configuration errors: exit 2 and a message naming the file and line -----------------
# badcfg NAME LINE...: write $T/NAME.cfg, a valid config (absolute paths) with LINE...
# appended in [vm] position; prints nothing. The lines start at line 3.
badcfg() {
	local f=$T/$1.cfg
	shift
	{
		echo "; bad config for the e2e tests"
		echo "[vm]"
		printf '%s\n' "$@"
		echo "memory = 256M"
		echo "[boot]"
		echo "kernel = $GUEST/vmlinuz"
		echo "initrd = $GUEST/initramfs.cpio.gz"
		echo "cmdline = $GUEST_BOOT minivmm.scenario=info"
		echo "[console]"
		echo "serial = stdio"
	} >"$f"
}
# expect_cfgerr FILE LINE [WORD]: exit 2, stderr has FILE:LINE (file by base name) and WORD.
expect_cfgerr() {
	expect_rc 2 || return 1
	grep -q -F "$(basename "$1"):$2" "$T/err" || { why="stderr does not name $(basename "$1"):$2"; return 1; }
	[ -z "${3:-}" ] || expect_err "$3"
}
t_bad_section() {
	badcfg sect "[nosuch]" "foo = 1"
	vm "$T/sect.cfg" && expect_cfgerr "$T/sect.cfg" 3 nosuch
}
t_bad_key() {
	badcfg key "bogus = 1"
	vm "$T/key.cfg" && expect_cfgerr "$T/key.cfg" 3 bogus
}
t_bad_size() {
	badcfg size "vcpus = 1"
	sed -i 's/^memory = 256M$/memory = 12Q/' "$T/size.cfg"
	vm "$T/size.cfg" && expect_cfgerr "$T/size.cfg" 4 memory
}
t_bad_vcpus() {
	badcfg vcpus "vcpus = 0"
	vm "$T/vcpus.cfg" && expect_cfgerr "$T/vcpus.cfg" 3 vcpus
}
t_bad_kernel() {
	badcfg kernel "vcpus = 1"
	sed -i 's|^kernel = .*|kernel = /nonexistent/vmlinuz|' "$T/kernel.cfg"
	vm "$T/kernel.cfg" && expect_rc 2 && expect_err kernel
}
t_bad_set() {
	vm "$CFG" --set vm.nosuch=1 && expect_rc 2 && expect_err nosuch
}
t_bad_line() {
	badcfg line "this line has no equals sign"
	vm "$T/line.cfg" && expect_cfgerr "$T/line.cfg" 3
}
