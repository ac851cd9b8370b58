#!/bin/bash
# bench/snapshot: snapshot size, save time, eager restore time, lazy time to the first guest
# instruction and time until the restored guest answers a console command, for
#   minivmm LZO (save; restore eager and --lazy)
#   minivmm uncompressed (save --raw: memory stored uncompressed, zero pages still left out)
#   QEMU (stop + migrate "exec:cat > FILE"; -incoming "exec:cat FILE")
# on the memfill guest (~50% of RAM in tmpfs, mixed text/binaries/random, the rest zero),
# 256 MiB and 1 GiB, side by side in one L1 (bench/snapshot/inner.sh does the measuring),
# with each snapshot on the L1's tmpfs (memory: storage is not the bottleneck) and on the
# build share (virtio-9p to the host's disk, L1 page cache dropped before each restore:
# storage is the bottleneck). Prints the table and the issue's ratios at the end.
#
# usage: bench/snapshot/run.sh [ROUNDS]    (make bench-snapshot [ROUNDS=N]; default 1)
#        bench/snapshot/run.sh --report    (only the table, from the results file)
# Environment: MINIVMM_BENCH_RESULTS (default build/bench-snapshot.results; rows there are
# kept: a run cut short by a fault of the L1 resumes where it was; delete it for a fresh
# run), MINIVMM_BENCH_SNAP_SIZES, _VMMS, _STORAGE, _FILL (see inner.sh),
# MINIVMM_L1_TIMEOUT (default here 5400 s), MINIVMM_L1_RETRIES.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cd "$(dirname "$0")/../.." || exit 2
export MINIVMM_BENCH_RESULTS=${MINIVMM_BENCH_RESULTS:-$PWD/build/bench-snapshot.results}
export MINIVMM_L1_TIMEOUT=${MINIVMM_L1_TIMEOUT:-5400}
rc=0
if [ "${1:-}" != --report ]; then
	tests/harness/in-vm.sh bench/snapshot/inner.sh "${1:-1}"
	rc=$?
	[ "$rc" = 0 ] || echo "bench/snapshot: the measuring run exited $rc; the table holds what it measured" >&2
fi
[ -s "$MINIVMM_BENCH_RESULTS" ] || { echo "bench/snapshot: no results in $MINIVMM_BENCH_RESULTS" >&2; exit 1; }

python3 - "$MINIVMM_BENCH_RESULTS" <<'PY'
import sys, statistics as st
rows = {}
notes = set()
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) != 6:
        continue
    _, size, vmm, stor, metric, val = f
    if metric in ("failed", "unsupported"):
        notes.add((int(size), vmm, metric))
        continue
    rows.setdefault((int(size), vmm, stor, metric), []).append(float(val))
med = {k: st.median(v) for k, v in rows.items()}
def g(size, vmm, stor, metric):
    return med.get((size, vmm, stor, metric))
def fmt(v, spec):
    return "–" if v is None else format(v, spec)
def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b
sizes = sorted({k[0] for k in med})
storages = [s for s in ("tmpfs", "9p") if any(k[2] == s for k in med)]
names = {"lzo": "minivmm LZO", "raw": "minivmm raw", "qemu": "QEMU"}
stor_name = {"tmpfs": "L1 tmpfs", "9p": "9p share, L1 cache dropped"}
for size in sizes:
    print(f"\n### {size} MiB guest")
    print("\n| VMM | storage | snapshot bytes (% of RAM) | save s | eager restore to answer s (first instruction s) |"
          " lazy first instruction ms (restore itself ms) | lazy restore to answer s |")
    print("|---|---|---|---|---|---|---|")
    for vmm in ("lzo", "raw", "qemu"):
        for s in storages:
            b = g(size, vmm, s, "bytes")
            if b is None and g(size, vmm, s, "eager_answer_s") is None:
                continue
            pct = "" if b is None else f" ({100 * b / (size << 20):.1f}%)"
            lazy = vmm != "qemu"
            ef = g(size, vmm, s, "eager_first_ms")
            ef = "" if ef is None else f" ({ef / 1000:.2f})"
            lr = g(size, vmm, s, "lazy_restore_ms")
            lr = "" if lr is None else f" ({lr:.1f})"
            print(f"| {names[vmm]} | {stor_name[s]} | {fmt(b, '.0f')}{pct} | {fmt(g(size, vmm, s, 'save_s'), '.2f')} |"
                  f" {fmt(g(size, vmm, s, 'eager_answer_s'), '.2f')}{ef} |"
                  f" {fmt(g(size, vmm, s, 'lazy_first_ms'), '.1f') + lr if lazy else 'n/a'} |"
                  f" {fmt(g(size, vmm, s, 'lazy_answer_s'), '.2f') if lazy else 'n/a'} |")
    for (sz, vmm, what) in sorted(notes):
        if sz == size:
            print(f"\n{names.get(vmm, vmm)}: {'not measured: minivmm save has no --raw yet' if what == 'unsupported' else 'a measurement failed (see the log)'}")
print("\n### Ratios against the goals of issue 4\n")
print("| size | storage | size LZO/QEMU (<= 0.65) | save LZO/QEMU (<= 0.5) | eager restore LZO/QEMU (<= 0.5) |"
      " lazy first instruction (< 50 ms) | save raw/LZO (>= 1.7 storage-bound, else >= 1) | eager restore raw/LZO (>= 1.6 storage-bound, else >= 1) |")
print("|---|---|---|---|---|---|---|---|")
def x(v, goal=None, le=True):
    if v is None:
        return "–"
    ok = "" if goal is None else (" ok" if (v <= goal if le else v >= goal) else " MISSED")
    return f"{v:.2f}x{ok}"
for size in sizes:
    for s in storages:
        first = g(size, "lzo", s, "lazy_first_ms")
        fi = "–" if first is None else f"{first:.1f} ms{' ok' if first < 50 else ' MISSED'}"
        goal = 1.7 if s == "9p" else 1.0
        rgoal = 1.6 if s == "9p" else 1.0
        print(f"| {size} MiB | {stor_name[s]} |"
              f" {x(ratio(g(size, 'lzo', s, 'bytes'), g(size, 'qemu', s, 'bytes')), 0.65)} |"
              f" {x(ratio(g(size, 'lzo', s, 'save_s'), g(size, 'qemu', s, 'save_s')), 0.5)} |"
              f" {x(ratio(g(size, 'lzo', s, 'eager_answer_s'), g(size, 'qemu', s, 'eager_answer_s')), 0.5)} |"
              f" {fi} |"
              f" {x(ratio(g(size, 'raw', s, 'save_s'), g(size, 'lzo', s, 'save_s')), goal, False)} |"
              f" {x(ratio(g(size, 'raw', s, 'eager_answer_s'), g(size, 'lzo', s, 'eager_answer_s')), rgoal, False)} |")
print("\n(medians over the rounds; save: until the file is written and fsynced; restore to answer:"
      " from exec until the guest answers a console line, resent every 50 ms; lazy first instruction:"
      " minivmm's own \"ms since minivmm started\" when the vCPUs start; the raw/LZO goals are judged"
      " as storage-bound (>= 1.7x/1.6x) on the 9p share and as not storage-bound (>= 1.0x) on tmpfs)")
PY
exit "$rc"
