#!/bin/bash
# bench/blk-fio: in-guest fio (4 KiB randread and randwrite, iodepth 32, numjobs = vCPUs,
# libaio, direct) on the same guest and the same raw image (on tmpfs), side by side:
#   minivmm      one virtqueue and one I/O thread per vCPU (queues = auto)
#   minivmm-pin  the same with [vm] pin = on (vCPU i and I/O thread i on host CPU i)
#   minivmm-poll the same with poll_us = 1000 (I/O threads poll 1 ms before sleeping)
#   minivmm-2q1t one queue per vCPU, all served by one I/O thread (iothreads = 1)
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
# Results survive a fault of the emulated L1 (the harness then starts us again): rows
# already measured are not measured again. `make bench-blk-fio` starts a fresh file.
RESULTS=${MINIVMM_BENCH_RESULTS:-$W/results}

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
	minivmm-pin) "$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")" \
		--set vm.pin=on >"$log" 2>&1 ;;
	minivmm-poll) "$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")" \
		--set disk.0.poll_us=1000 >"$log" 2>&1 ;;
	minivmm-2q1t) "$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")" \
		--set disk.0.iothreads=1 >"$log" 2>&1 ;;
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

VMMS=${MINIVMM_BENCH_VMMS:-minivmm minivmm-poll minivmm-2q1t minivmm-1q qemu-iot}
echo "bench/blk-fio: $ROUNDS rounds, $CPUS vCPUs, ${MEM} MiB guest, ${DISK} MiB raw image on" \
	"$(df -T "$W" | awk 'NR==2 { print $2 }'), fio 4k iodepth 32 numjobs $CPUS libaio direct" \
	"${RUNTIME}s; host (L1) CPUs: $(nproc)"
for r in $(seq "$ROUNDS"); do
	for rw in randread randwrite; do
		for v in $VMMS; do
			if grep -q "^$r $v $rw " "$RESULTS" 2>/dev/null; then
				continue
			fi
			iops=$(run_one "$v" "$rw")
			echo "$r $v $rw $iops" >>"$RESULTS"
			printf 'round %d %-12s %-9s %8s IOPS\n' "$r" "$v" "$rw" "$iops"
			if [ "$iops" = 0 ]; then
				echo "  $v $rw: no fio result; log tail:"
				tail -n 8 "$W/$v-$rw.log" | sed 's/^/  | /'
			fi
		done
	done
done

python3 - "$RESULTS" <<'PY'
import sys, statistics as st
res, failed = {}, {}
for line in open(sys.argv[1]):
    _, v, rw, iops = line.split()
    if float(iops) > 0:
        res.setdefault((v, rw), []).append(float(iops))
    else:  # no fio result: the guest or the VMM failed; reported, not averaged in
        failed[(v, rw)] = failed.get((v, rw), 0) + 1
med = {k: st.median(x) for k, x in res.items()}
names = [("minivmm", "minivmm per-vCPU queues"), ("minivmm-pin", "per-vCPU, pin = on"),
         ("minivmm-poll", "per-vCPU, poll_us = 1000"),
         ("minivmm-2q1t", "per-vCPU queues, 1 thread"), ("minivmm-1q", "minivmm queues = 1"),
         ("qemu-iot", "QEMU IOThread")]
names = [(k, n) for k, n in names if any(v == k for v, _ in med)]
print("\n| workload | " + " | ".join(n for _, n in names) + " |")
print("|---" * (len(names) + 1) + "|")
for rw in ("randread", "randwrite"):
    print(f"| 4k {rw} IOPS | " + " | ".join(f"{med.get((k, rw), 0):.0f}" for k, _ in names) + " |")
print("(median IOPS over the rounds that produced a result)")
for (v, rw), n in sorted(failed.items()):
    print(f"runs without a fio result: {v} {rw}: {n}")
print()
print("| ratio | randread | randwrite |")
print("|---|---|---|")
for k, n in names:
    for base, bn in (("minivmm-1q", "minivmm queues = 1"), ("qemu-iot", "QEMU IOThread")):
        if k == base or k == "qemu-iot" or (k, "randread") not in med or (base, "randread") not in med:
            continue
        r = [med[(k, rw)] / med[(base, rw)] if med.get((base, rw)) else float("nan")
             for rw in ("randread", "randwrite")]
        print(f"| {n} / {bn} | {r[0]:.2f}x | {r[1]:.2f}x |")
PY
