#!/bin/sh
# l1-qemu.sh DIR: unpack Debian's bookworm-backports QEMU (10.x) into DIR (DIR/usr/bin/
# qemu-system-x86_64, firmware in DIR/usr/share/qemu and DIR/usr/share/seabios) for the harness's emulated L1.
#
# For comparing emulators (MINIVMM_L1_QEMU=backports): in six fs_ops runs QEMU 10's TCG
# ran the nested guest faster and never let it stall (7.2: one stall in eight), but its L1
# lost timer interrupts (three L1 faults in six runs; 7.2: one in eight). The system's apt
# configuration and its QEMU are left alone: apt runs here with its own source list, lists
# and cache under DIR.
# Exit status 0 when DIR holds a working QEMU afterwards.
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu
dir=$1
suite=bookworm-backports
pkgs="qemu-system-x86 qemu-system-data qemu-system-common seabios"
[ -x "$dir/usr/bin/qemu-system-x86_64" ] && exit 0
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
	echo "l1-qemu: needs apt-get and dpkg-deb (Debian)" >&2
	exit 1
fi
work=$dir.fetch
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb http://deb.debian.org/debian $suite main" >"$work/sources.list"
papt() {
	timeout 300 apt-get -q -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" \
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}
echo "l1-qemu: fetching QEMU from Debian $suite for the L1 (into $dir)" >&2
papt update >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "l1-qemu: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2046
(cd "$work/debs" && papt download $(for p in $pkgs; do printf '%s/%s ' "$p" "$suite"; done)) >>"$work/log" 2>&1 ||
	{ tail -n 20 "$work/log" >&2; echo "l1-qemu: download failed" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
for d in "$work"/debs/*.deb; do
	dpkg-deb -x "$d" "$dir"
done
rm -rf "$work"
if ! v=$("$dir/usr/bin/qemu-system-x86_64" --version 2>&1); then
	printf '%s\n' "$v" >&2
	echo "l1-qemu: the unpacked QEMU does not run (missing libraries?)" >&2
	rm -rf "$dir"
	exit 1
fi
printf '%s\n' "$v" | head -n 1 >&2
