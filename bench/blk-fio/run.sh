#!/bin/bash
# bench/blk-fio: in-guest fio (4 KiB randread and randwrite, iodepth 32, numjobs = vCPUs,
# libaio, direct) on the same guest and the same raw image (on tmpfs), side by side:
#   minivmm      one virtqueue and one I/O thread per vCPU (queues = auto)
#   minivmm-1q   queues = 1 (one queue, one I/O thread: the baseline of seed 003)
#   qemu-iot     QEMU virtio-blk-pci with an IOThread and num-queues = vCPUs
# Needs /dev/kvm: run through the harness, `make bench-blk-fio ROUNDS=3` or
#   tests/harness/in-vm.sh bench/blk-fio/run.sh [ROUNDS]
# Environment (MINIVMM_ prefix so the harness passes it on): MINIVMM_BENCH_CPUS (vCPUs,
# default 2), MINIVMM_BENCH_RUNTIME (s, default 10), MINIVMM_BENCH_MEM (MiB, default 512),
# MINIVMM_BENCH_DISK (MiB, default 512).
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
CPUS=${MINIVMM_BENCH_CPUS:-2}
RUNTIME=${MINIVMM_BENCH_RUNTIME:-10}
MEM=${MINIVMM_BENCH_MEM:-512}
DISK=${MINIVMM_BENCH_DISK:-512}
MINIVMM=${MINIVMM:-$PWD/build/minivmm}
G=$PWD/build/guest
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-blk.XXXXXX")
trap 'rm -rf "$W"' EXIT

[ -f "$G/initramfs-fio.cpio.gz" ] || { echo "bench/blk-fio: no $G/initramfs-fio.cpio.gz (install fio, make guest)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "bench/blk-fio: qemu-system-x86_64 missing" >&2; exit 2; }

# The image: written once, fully allocated, so reads hit data, not holes.
head -c "$((DISK << 20))" /dev/urandom >"$W/disk.img"

cmd() { # RW: the kernel command line for the fio scenario
	echo "console=ttyS0 quiet minivmm.scenario=fio minivmm.fio.rw=$1 minivmm.fio.bs=4k" \
		"minivmm.fio.iodepth=32 minivmm.fio.jobs=$CPUS minivmm.fio.engine=libaio" \
		"minivmm.fio.direct=1 minivmm.fio.runtime=$RUNTIME minivmm.fio.format=terse"
}

cat >"$W/guest.cfg" <<CFG
[vm]
memory = ${MEM}M
vcpus = $CPUS
[boot]
kernel = $G/vmlinuz
initrd = $G/initramfs-fio.cpio.gz
[disk.0]
path = $W/disk.img
CFG

# run_one VMM RW: prints the IOPS fio reported (terse v3: field 8 read, 49 write), or 0.
run_one() {
	local vmm=$1 rw=$2 log=$W/$1-$2.log
	case $vmm in
	minivmm) "$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")" \
		>"$log" 2>&1 ;;
	minivmm-1q) "$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")" \
		--set disk.0.queues=1 >"$log" 2>&1 ;;
	qemu-iot) timeout 300 qemu-system-x86_64 -accel kvm -cpu host -M pc -m "$MEM" -smp "$CPUS" \
		-nographic -nodefaults -serial stdio -no-reboot \
		-kernel "$G/vmlinuz" -initrd "$G/initramfs-fio.cpio.gz" -append "$(cmd "$rw")" \
		-object iothread,id=io0 \
		-drive "file=$W/disk.img,if=none,id=d0,format=raw,cache=writeback,aio=io_uring" \
		-device "virtio-blk-pci,drive=d0,iothread=io0,num-queues=$CPUS" >"$log" 2>&1 ;;
	esac || true
	tr -d '\r' <"$log" | awk -F';' -v rw="$rw" '
		$1 == "3" && NF > 50 { v = (rw ~ /read/) ? $8 : $49; found = 1 }
		END { print found ? v : 0 }'
}

VMMS="minivmm minivmm-1q qemu-iot"
echo "bench/blk-fio: $ROUNDS rounds, $CPUS vCPUs, ${MEM} MiB guest, ${DISK} MiB raw image on" \
	"$(df -T "$W" | awk 'NR==2 { print $2 }'), fio 4k iodepth 32 numjobs $CPUS libaio direct" \
	"${RUNTIME}s; host (L1) CPUs: $(nproc)"
for r in $(seq "$ROUNDS"); do
	for rw in randread randwrite; do
		for v in $VMMS; do
			iops=$(run_one "$v" "$rw")
			echo "$v $rw $iops" >>"$W/results"
			printf 'round %d %-10s %-9s %8s IOPS\n' "$r" "$v" "$rw" "$iops"
			if [ "$iops" = 0 ]; then
				echo "  $v $rw: no fio result; log tail:"
				tail -n 8 "$W/$v-$rw.log" | sed 's/^/  | /'
			fi
		done
	done
done

python3 - "$W/results" <<'PY'
import sys, statistics as st
res = {}
for line in open(sys.argv[1]):
    v, rw, iops = line.split()
    res.setdefault((v, rw), []).append(float(iops))
med = {k: st.median(x) for k, x in res.items()}
print("\n| workload | minivmm per-vCPU queues | minivmm queues=1 | QEMU IOThread | per-vCPU / 1q | per-vCPU / QEMU |")
print("|---|---|---|---|---|---|")
for rw in ("randread", "randwrite"):
    a, b, c = (med.get((v, rw), 0) for v in ("minivmm", "minivmm-1q", "qemu-iot"))
    r1 = f"{a / b:.2f}x" if b else "-"
    r2 = f"{a / c:.2f}x" if c else "-"
    print(f"| 4k {rw} | {a:.0f} | {b:.0f} | {c:.0f} | {r1} | {r2} |")
print("(median IOPS over rounds)")
PY
