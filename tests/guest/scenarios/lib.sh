# shellcheck shell=sh
# Helpers for the test guest's /init and scenarios.
# SPDX-License-Identifier: GPL-2.0-or-later

# cmdline_arg NAME: value of NAME=VALUE on the kernel command line (empty if absent).
cmdline_arg() {
	# shellcheck disable=SC2013 # words, not lines
	for _a in $(cat /proc/cmdline); do
		case $_a in
		"$1"=*) echo "${_a#*=}"; return 0 ;;
		esac
	done
	return 0
}

# exit_port V: write the byte V (0-255) to I/O port 0x501; minivmm exits with status V.
exit_port() {
	_v=$(( $1 & 255 ))
	sync
	# The VM ends at once: what the console still queues for the UART must be out first.
	ttydrain 2>/dev/null
	# shellcheck disable=SC2059 # the format is the octal escape of the byte
	printf "\\$(printf %o "$_v")" | dd of=/dev/port bs=1 seek=1281 conv=notrunc 2>/dev/null
}

# print_modules: with minivmm.modules=1, where each loaded module sits ("GUEST_MODULE NAME
# BASE"), so the host can name a module address a stalled vCPU was at (tests/e2e/run.sh).
print_modules() {
	[ "$(cmdline_arg minivmm.modules)" = 1 ] || return 0
	while read -r _m _ _ _ _ _b; do echo "GUEST_MODULE $_m $_b"; done </proc/modules
}
