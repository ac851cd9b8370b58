#!/bin/bash
# bench/blk-fio: in-guest fio, 4 KiB random reads and writes, iodepth 32, one job per vCPU
# pinned to it (job i on vCPU i, which blk-mq maps to queue i), io_uring, O_DIRECT, on the
# same guest and the same raw image (on the L1's tmpfs), side by side:
#   minivmm      one virtqueue and one I/O thread per vCPU (queues = auto), polling
#                window adaptive up to 32 us (the default)
#   minivmm-poll the same with poll_us = 1000 (adaptive up to 1 ms)
#   minivmm-pin  the same with [vm] pin = on (vCPU i and I/O thread i on host CPU i)
#   minivmm-2q1t one queue per vCPU, all served by one I/O thread (iothreads = 1)
#   minivmm-1q   queues = 1 (one queue, one I/O thread: the baseline of seed 003)
#   qemu-iot     QEMU virtio-blk-pci with an IOThread, num-queues = vCPUs, aio=io_uring
# Rounds are interleaved (each round runs every VMM once per workload); the result is the
# median IOPS of the rounds, their spread (min-max), and the VMM process's CPU time per
# request (user + system of the whole process: vCPU threads, i.e. the guest, included).
#
# Trust: before each run the machine must be idle (bench/idle.sh: < 20% busy over 2 s,
# waiting up to 60 s), or the benchmark stops (exit 3) without a result; a run that gives
# no fio figure is reported and fails the benchmark (exit 1). Each result says how the
# guest mapped its CPUs to queues and that jobs were pinned.
#
# Needs /dev/kvm: run through the harness, `make bench-blk-fio ROUNDS=3` or
#   tests/harness/in-vm.sh bench/blk-fio/run.sh [ROUNDS]
# Environment (MINIVMM_ prefix so the harness passes it on): MINIVMM_BENCH_CPUS (vCPUs,
# default 2), MINIVMM_BENCH_RUNTIME (s, default 8), MINIVMM_BENCH_MEM (MiB, default 512),
# MINIVMM_BENCH_DISK (MiB, default 512), MINIVMM_BENCH_VMMS (the list above),
# MINIVMM_BENCH_ENGINE (io_uring|libaio), MINIVMM_BENCH_PIN (1: jobs pinned, 0: not),
# MINIVMM_BENCH_BUSY (the idle check's limit in %; 100 turns it off).
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
CPUS=${MINIVMM_BENCH_CPUS:-2}
RUNTIME=${MINIVMM_BENCH_RUNTIME:-8}
MEM=${MINIVMM_BENCH_MEM:-512}
DISK=${MINIVMM_BENCH_DISK:-512}
ENGINE=${MINIVMM_BENCH_ENGINE:-io_uring}
PIN=${MINIVMM_BENCH_PIN:-1}
BUSY=${MINIVMM_BENCH_BUSY:-20}
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
		"minivmm.fio.iodepth=32 minivmm.fio.jobs=$CPUS minivmm.fio.engine=$ENGINE" \
		"minivmm.fio.direct=1 minivmm.fio.runtime=$RUNTIME minivmm.fio.format=terse" \
		"minivmm.fio.pin=$PIN"
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

# vmm VMM RW: run it (the guest runs fio and powers off).
vmm() {
	local v=$1 rw=$2 m
	m=("$MINIVMM" run -v "$W/guest.cfg" --timeout 300 --set "boot.cmdline=$(cmd "$rw")")
	case $v in
	minivmm) "${m[@]}" ;;
	minivmm-pin) "${m[@]}" --set vm.pin=on ;;
	minivmm-poll) "${m[@]}" --set disk.0.poll_us=1000 ;;
	minivmm-2q1t) "${m[@]}" --set disk.0.iothreads=1 ;;
	minivmm-1q) "${m[@]}" --set disk.0.queues=1 ;;
	qemu-iot) timeout 300 qemu-system-x86_64 -accel kvm -cpu host -M pc -m "$MEM" -smp "$CPUS" \
		-nographic -nodefaults -serial stdio -no-reboot \
		-kernel "$G/vmlinuz" -initrd "$G/initramfs-fio.cpio.gz" -append "$(cmd "$rw")" \
		-object iothread,id=io0 \
		-drive "file=$W/disk.img,if=none,id=d0,format=raw,cache=writeback,aio=io_uring" \
		-device "virtio-blk-pci,drive=d0,iothread=io0,num-queues=$CPUS" ;;
	*) echo "bench/blk-fio: unknown VMM $v" >&2; return 2 ;;
	esac
}

# run_one VMM RW: "IOPS CPU_SECONDS" (IOPS 0: no fio result). The CPU time is the VMM
# process's (its children's, as `times` counts them in the subshell).
run_one() {
	local v=$1 rw=$2 log=$W/$1-$2.log cpu
	cpu=$( (vmm "$v" "$rw" >"$log" 2>&1 || true; times) | tail -n 1 |
		awk '{ gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }')
	tr -d '\r' <"$log" | awk -F';' -v rw="$rw" -v cpu="$cpu" '
		$1 == "3" && NF > 50 { v = (rw ~ /read/) ? $8 : $49; found = 1 }
		END { print (found ? v : 0), cpu }'
}

VMMS=${MINIVMM_BENCH_VMMS:-minivmm minivmm-poll minivmm-2q1t minivmm-1q qemu-iot}
echo "bench/blk-fio: $ROUNDS rounds, $CPUS vCPUs, ${MEM} MiB guest, ${DISK} MiB raw image on" \
	"$(df -T "$W" | awk 'NR==2 { print $2 }'), fio 4k iodepth 32, $CPUS jobs" \
	"$([ "$PIN" = 1 ] && echo "pinned (job i on vCPU i)" || echo "not pinned"), $ENGINE, direct," \
	"${RUNTIME}s; host (L1) CPUs: $(nproc); idle check: < ${BUSY}% busy before each run"
for r in $(seq "$ROUNDS"); do
	for rw in randread randwrite; do
		for v in $VMMS; do
			if grep -q "^$r $v $rw " "$RESULTS" 2>/dev/null; then
				continue
			fi
			if [ "$BUSY" -lt 100 ] && ! bench/idle.sh "$BUSY" 60; then
				echo "bench/blk-fio: stopped before round $r $v $rw: no result from a busy machine" >&2
				exit 3
			fi
			read -r iops cpu <<<"$(run_one "$v" "$rw")"
			echo "$r $v $rw $iops $cpu" >>"$RESULTS"
			printf 'round %d %-12s %-9s %8s IOPS  %6.1f s CPU\n' "$r" "$v" "$rw" "$iops" "$cpu"
			if [ "$r" = 1 ]; then
				tr -d '\r' <"$W/$v-$rw.log" | grep -E '^FIO_(MQ|PIN)' | sed 's/^/  /'
			fi
			if [ "$iops" = 0 ]; then
				echo "  $v $rw: no fio result; log tail:"
				tail -n 8 "$W/$v-$rw.log" | sed 's/^/  | /'
			fi
		done
	done
done

python3 - "$RESULTS" "$RUNTIME" <<'PY'
import sys, statistics as st
res, cpu, failed = {}, {}, {}
runtime = float(sys.argv[2])
for line in open(sys.argv[1]):
    f = line.split()
    _, v, rw, iops = f[:4]
    if float(iops) > 0:
        res.setdefault((v, rw), []).append(float(iops))
        if len(f) > 4:
            # CPU time per request: the process's whole CPU time over the requests of
            # the timed part (boot included: an upper bound).
            cpu.setdefault((v, rw), []).append(float(f[4]) / (float(iops) * runtime) * 1e6)
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
    cells = []
    for k, _ in names:
        x = res.get((k, rw))
        cells.append(f"{med[(k, rw)]:.0f} ({min(x):.0f}-{max(x):.0f})" if x else "-")
    print(f"| 4k {rw} IOPS | " + " | ".join(cells) + " |")
    cells = [f"{st.median(cpu[(k, rw)]):.0f}" if cpu.get((k, rw)) else "-" for k, _ in names]
    print(f"| {rw}: VMM CPU us/request | " + " | ".join(cells) + " |")
print("(median IOPS of the rounds, min-max in brackets; CPU: the VMM process's user +")
print(" system time, guest included, over the requests fio counted)")
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
for (v, rw), n in sorted(failed.items()):
    print(f"FAILED: runs without a fio result: {v} {rw}: {n}")
sys.exit(1 if failed else 0)
PY
