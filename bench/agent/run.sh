#!/bin/bash
# bench/agent: driving a guest from the host, minivmm (libminivmm: its agent over
# virtio-vsock) vs QEMU with qemu-guest-agent (virtio-serial, QMP-style JSON), same kernel,
# initramfs, memory and vCPU, same run:
#   - exec round trip of `true`, mean and median of N;
#   - 64 MiB copied host -> guest and back (qemu-ga: guest-file-write/read, base64);
#   - cold boot to the first output of a command;
#   - minivmm only: restore of a clone (eager, lazy, mapped, cached: the first of these
#     fills the memory cache) to the first output, vs its cold boot.
# Needs /dev/kvm: run through the harness (make bench-agent). Prints RESULT lines and the
# ratios. SPDX-License-Identifier: GPL-2.0-or-later
set -eu
cd "$(dirname "$0")/../.."
N=${1:-50}
MINIVMM=${MINIVMM:-$PWD/build/minivmm}
O=${MINIVMM_BUILD:-$PWD/build}
G=$PWD/build/guest
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-agent.XXXXXX")
qpid=""
trap '[ -z "$qpid" ] || kill "$qpid" 2>/dev/null; rm -rf "$W"' EXIT

[ -f "$G/initramfs-qga.cpio.gz" ] ||
	{ echo "bench/agent: no $G/initramfs-qga.cpio.gz (apt-get install qemu-guest-agent; make guest)" >&2; exit 2; }
cc -O2 -std=gnu11 -Wall -Werror -Iinclude -o "$W/agent_bench" bench/agent/agent_bench.c \
	"$O/lib/libminivmm.a" -pthread
CMD="console=ttyS0 quiet minivmm.scenario=sleep"

# A cold boot decompresses the kernel on the host once, then takes it from the cache
# (docs/config.md, [boot] decompress): filled first, so that the cold boot measured is every
# boot's, not the first one's (in the nested harness that one decompression alone is ~7 s).
"$MINIVMM" kernel cache "$G/vmlinuz" >/dev/null
echo "== minivmm (libminivmm, agent over vsock), N=$N; kernel cache filled"
MINIVMM=$MINIVMM TMPDIR=$W "$W/agent_bench" tests/e2e/guest.cfg "$N" \
	--set "boot.cmdline=$CMD minivmm.agent=1024" --set vsock.cid=3 | tee "$W/minivmm.txt"

echo "== QEMU + qemu-guest-agent (virtio-serial), N=$N"
t0=$(date +%s.%N)
qemu-system-x86_64 -enable-kvm -cpu host -M pc -m 256 -smp 1 -display none -vga none \
	-nodefaults -no-user-config -serial "file:$W/qemu.log" \
	-kernel "$G/vmlinuz" -initrd "$G/initramfs-qga.cpio.gz" -append "$CMD minivmm.qga=1" \
	-device virtio-serial-pci -chardev "socket,path=$W/qga.sock,server=on,wait=off,id=qga0" \
	-device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 &
qpid=$!
QGA_T0=$t0 python3 bench/agent/qga.py "$W/qga.sock" "$N" 120 | tee "$W/qemu.txt"
kill "$qpid"
wait "$qpid" 2>/dev/null || true
qpid=""

v() { sed -n "s/^RESULT $2 \([0-9.]*\) .*/\1/p" "$W/$1.txt" | head -n 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
echo "== ratios (minivmm / QEMU+qga; < 1: minivmm faster, for throughput > 1)"
echo "exec true mean:      $(ratio "$(v minivmm exec_true_mean)" "$(v qemu qga_exec_true_mean)")"
echo "exec true median:    $(ratio "$(v minivmm exec_true_median)" "$(v qemu qga_exec_true_median)")"
echo "cp to guest MiB/s:   $(ratio "$(v minivmm cp_to_guest_64MiB)" "$(v qemu qga_cp_to_guest_64MiB)")"
echo "cp from guest MiB/s: $(ratio "$(v minivmm cp_from_guest_64MiB)" "$(v qemu qga_cp_from_guest_64MiB)")"
echo "cold boot to output: $(ratio "$(v minivmm cold_boot_to_first_output)" "$(v qemu qga_cold_boot_to_first_output)")"
echo "== clone to first output / cold boot to first output (minivmm; goal <= 0.1)"
cold=$(v minivmm cold_boot_to_first_output)
for k in eager lazy mapped cached_fill cached; do
	for x in $(sed -n "s/^RESULT clone_${k}_to_first_output \([0-9.]*\) .*/\1/p" "$W/minivmm.txt"); do
		echo "clone $k: $x ms = $(ratio "$x" "$cold") x cold"
	done
done
