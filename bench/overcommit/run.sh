#!/bin/bash
# bench/overcommit: seed 002's measurement (BRIEF.md) at the L1's scale: two guests running
# a memory-bound workload (memchase, mcf-like pointer chasing) at once, as plain guests and
# nested in one hypervisor VM (a minivmm guest running minivmm), guest memory swept from
# tight to more than the hypervisor VM has; the nested/plain slowdown (seed: 11.9%), the
# cost of less memory for the same workload (seed: 11.6%), what happens once the guests'
# working sets exceed the hypervisor VM (the cliff), and the host RSS after the workload
# with free page reporting on vs off. bench/overcommit/inner.sh does the measuring.
#
# usage: bench/overcommit/run.sh [ROUNDS]   (make bench-overcommit [ROUNDS=N]; default 1)
#        bench/overcommit/run.sh --report   (only the table, from the results file)
# Environment: MINIVMM_BENCH_RESULTS (default build/bench-overcommit.results; rows there
# are kept: delete it for a fresh run), MINIVMM_BENCH_OC_PAIRS ("SIZE:WORK ...", MiB; default
# "256:160 384:160 512:160 512:300"), MINIVMM_BENCH_OC_HV (hypervisor VM MiB, 768),
# MINIVMM_BENCH_OC_MSTEPS (million steps per run, 3), MINIVMM_BENCH_OC_MODES (of "plain nested
# rss", default all), MINIVMM_L1_TIMEOUT (default here 7200 s).
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cd "$(dirname "$0")/../.." || exit 2
export MINIVMM_BENCH_RESULTS=${MINIVMM_BENCH_RESULTS:-$PWD/build/bench-overcommit.results}
export MINIVMM_L1_TIMEOUT=${MINIVMM_L1_TIMEOUT:-7200}
rc=0
if [ "${1:-}" != --report ]; then
	tests/harness/in-vm.sh bench/overcommit/inner.sh "${1:-1}"
	rc=$?
	[ "$rc" = 0 ] || echo "bench/overcommit: the measuring run exited $rc; the table holds what it measured" >&2
fi
[ -s "$MINIVMM_BENCH_RESULTS" ] || { echo "bench/overcommit: no results in $MINIVMM_BENCH_RESULTS" >&2; exit 1; }

python3 - "$MINIVMM_BENCH_RESULTS" <<'PY'
import sys, statistics as st
ns, fails, rss = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) != 5:
        continue
    _, pair, mode, metric, val = f
    if metric == "ns_per_step":
        ns.setdefault((pair, mode), []).append(float(val))
    elif metric == "failed":
        fails.setdefault((pair, mode), []).append(val)
    elif metric == "rss_kib":
        rss.setdefault(mode, []).append(int(val))
pairs = sorted({p for p, _ in list(ns) + list(fails)}, key=lambda p: tuple(int(x) for x in p.split(":")))
def med(k):
    v = ns.get(k)
    return st.median(v) if v else None
def fmt(v):
    return "-" if v is None else "%.0f" % v
print("bench/overcommit: memchase ns per step, median of every guest and round (2 guests at once)")
print("%-10s %10s %10s %14s  %s" % ("MiB:work", "plain", "nested", "nested/plain", "failed runs"))
for p in pairs:
    a, b = med((p, "plain")), med((p, "nested"))
    ratio = "%+.1f%%" % ((b / a - 1) * 100) if a and b else "-"
    fl = ", ".join("%s %d (%s)" % (m, len(fails[(p, m)]), fails[(p, m)][0]) for m in ("plain", "nested") if (p, m) in fails)
    print("%-10s %10s %10s %14s  %s" % (p, fmt(a), fmt(b), ratio, fl or "none"))
slow = [med((p, "nested")) / med((p, "plain")) - 1 for p in pairs if med((p, "plain")) and med((p, "nested"))]
if slow:
    print("nested vs plain, mean over the pairs that ran: %+.1f%% (seed 002: +11.9%%)" % (st.mean(slow) * 100))
# The cost of less memory: same workload, smallest vs largest guest that ran.
works = {}
for p in pairs:
    s, w = p.split(":")
    works.setdefault(w, []).append(int(s))
for w, sizes in sorted(works.items()):
    if len(sizes) < 2:
        continue
    lo, hi = "%d:%s" % (min(sizes), w), "%d:%s" % (max(sizes), w)
    for m in ("plain", "nested"):
        a, b = med((lo, m)), med((hi, m))
        if a and b:
            print("%s, %s MiB workload: %s MiB guests vs %s MiB: %+.1f%% (seed 002: +11.6%%)" % (m, w, min(sizes), max(sizes), (a / b - 1) * 100))
on, off = rss.get("plain-report-on"), rss.get("plain-report-off")
if on and off:
    print("host RSS of the two plain guests 15 s after the workload: reporting on %d MiB, off %d MiB (on/off %.2fx)"
          % (st.median(on) // 1024, st.median(off) // 1024, st.median(on) / st.median(off)))
PY
exit "$rc"
