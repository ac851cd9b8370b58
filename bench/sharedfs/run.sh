#!/bin/bash
# bench/sharedfs: the shared-filesystem comparison of seed 001 (docs/virtiofs.md,
# "Benchmark"), side by side in one run, the host (L1) cache warm: every file lives on the
# L1's tmpfs. One guest boot per case and round; the guest (scenario fsbench) measures:
#   ext4      ext4 inside the guest on minivmm virtio-blk (raw image made with mkfs.ext4 -d)
#   vfs       minivmm virtio-fs, dax = never
#   vfs-dax   minivmm virtio-fs, dax = always (guest -o dax=always)
#   vfs-inode minivmm virtio-fs, dax = inode (not run by default)
#   vfs-keep  minivmm virtio-fs, dax = never, cache = always (not run by default)
#   qemu-9p   QEMU virtio-9p (-virtfs local,security_model=none; guest msize=512000)
# on one big file (first read after drop_caches, re-read, growth of the guest's Cached) and
# on a tree of small files carried as a tar (untar + sync, find, stat of every entry, cat of
# every file, rm -rf + sync), plus the host's memory: the VMM's RssAnon (guest RAM it
# touched; DAX mappings of the host's page cache are RssShmem, not counted) and the drop of
# the L1's MemAvailable during the run.
# Needs /dev/kvm: run through the harness, `make bench-sharedfs` (ROUNDS=N for more than one
# round) or   tests/harness/in-vm.sh bench/sharedfs/run.sh [ROUNDS]
# Environment (MINIVMM_ prefix so the harness passes it on): MINIVMM_BENCH_FS_FILE_MB (the
# big file, default 256), MINIVMM_BENCH_FS_FILES (small files in the tree, default 1000),
# MINIVMM_BENCH_FS_CASES (default "ext4 vfs vfs-dax qemu-9p"), MINIVMM_BENCH_CPUS (default 2),
# MINIVMM_BENCH_MEM (guest MiB, default 768), MINIVMM_BENCH_TIMEOUT (s per boot, default 3000),
# MINIVMM_BENCH_RESULTS (results file; rows already there are not measured again).
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cd "$(dirname "$0")/../.." || exit 2
ROUNDS=${1:-1}
FILE_MB=${MINIVMM_BENCH_FS_FILE_MB:-256}
NFILES=${MINIVMM_BENCH_FS_FILES:-1000}
CASES=${MINIVMM_BENCH_FS_CASES:-ext4 vfs vfs-dax qemu-9p}
CPUS=${MINIVMM_BENCH_CPUS:-2}
MEM=${MINIVMM_BENCH_MEM:-768}
TIMEOUT=${MINIVMM_BENCH_TIMEOUT:-3000}
MINIVMM=${MINIVMM:-$PWD/build/minivmm}
G=$PWD/build/guest
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-sharedfs.XXXXXX") || exit 2
trap 'rm -rf "$W"' EXIT
# Results survive a fault of the emulated L1 (the harness then starts us again): rows
# already measured are not measured again. `make bench-sharedfs` starts a fresh file.
RESULTS=${MINIVMM_BENCH_RESULTS:-$W/results}
touch "$RESULTS"

die() {
	echo "bench/sharedfs: $*" >&2
	exit 2
}
[ -x "$MINIVMM" ] || die "no $MINIVMM (make)"
[ -f "$G/initramfs.cpio.gz" ] || die "no $G/initramfs.cpio.gz (make guest)"
# The guest needs the scenario and the 9p/ext4 modules (tests/guest/build-guest.sh).
zcat "$G/initramfs.cpio.gz" | cpio -t --quiet 2>/dev/null | grep -q 'scenarios/fsbench.sh' ||
	die "$G/initramfs.cpio.gz has no fsbench scenario (make guest)"
case " $CASES " in
*" qemu-9p "*) command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing" ;;
esac

# --- the data: one share directory (big file + tree.tar), an ext4 image of the same -------
share=$W/share
mkdir -p "$share"
python3 - "$share" "$FILE_MB" "$NFILES" <<'PY' || die "cannot create the data"
import io, math, os, random, sys, tarfile
share, file_mb, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(os.path.join(share, "big"), "wb") as f:
    for _ in range(file_mb):
        f.write(os.urandom(1 << 20))
# Small files with sizes like a source tree's (log-normal, median 3 KiB, at most 256 KiB),
# 50 per directory, 10 directories per top-level directory; fixed seed: the same tree
# every run.
rnd = random.Random(1)
blob = os.urandom(256 << 10)
with tarfile.open(os.path.join(share, "tree.tar"), "w", format=tarfile.USTAR_FORMAT) as t:
    def add(name, data=None):
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.uid, ti.gid = 1700000000, 0, 0
        if data is None:
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        else:
            ti.size, ti.mode = len(data), 0o644
            t.addfile(ti, io.BytesIO(data))
    add(".")
    for i in range(nfiles):
        top, sub = i // 500, (i // 50) % 10
        if i % 500 == 0:
            add(f"./t{top:02d}")
        if i % 50 == 0:
            add(f"./t{top:02d}/d{sub}")
        size = min(int(rnd.lognormvariate(math.log(3000), 1.2)), 256 << 10)
        off = rnd.randrange(0, (256 << 10) - size + 1)
        add(f"./t{top:02d}/d{sub}/file{i:05d}.dat", blob[off:off + size])
PY
tar_mb=$(($(stat -c %s "$share/tree.tar") >> 20))
# ext4: 4 KiB blocks (mke2fs would pick 1 KiB for a small image), inode tables written now
# (no lazy init racing the benchmark in the guest), room for the tree three times over.
img_mb=$((FILE_MB + 4 * tar_mb + 128))
img_note=""
case " $CASES " in
*" ext4 "*)
	img_note=" ext4 image ${img_mb} MiB,"
	mkfs.ext4 -q -F -b 4096 -N $((4 * NFILES + 4096)) -E lazy_itable_init=0,lazy_journal_init=0 \
		-d "$share" "$W/ext4.img" "${img_mb}M" >/dev/null || die "mkfs.ext4 -d failed"
	;;
esac
win_mb=$(((FILE_MB + 128 + 1023) / 1024 * 1024)) # DAX window: the whole big file and then some

echo "bench/sharedfs: $ROUNDS round(s), cases: $CASES; $CPUS vCPUs, ${MEM} MiB guest;" \
	"big file ${FILE_MB} MiB, tree of $NFILES files (tar ${tar_mb} MiB),${img_note} DAX window ${win_mb} MiB; data on $(df -T "$W" | awk 'NR==2 { print $2 }') in the L1" \
	"($(nproc) CPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB)"

cat >"$W/guest.cfg" <<CFG
[vm]
memory = ${MEM}M
vcpus = $CPUS
[boot]
kernel = $G/vmlinuz
initrd = $G/initramfs.cpio.gz
[console]
serial = stdio
CFG

cmdline() { # ARGS...: the kernel command line of the fsbench scenario
	echo "console=ttyS0 quiet minivmm.scenario=fsbench $*"
}

# start_case CASE LOG: starts the VMM in the background; sets $pid.
start_case() {
	local c=$1 log=$2
	local share_args=(--set "share.0.path=$share" --set share.0.tag=bench)
	case $c in
	ext4)
		exec "$MINIVMM" run -v "$W/guest.cfg" --timeout "$TIMEOUT" --set "disk.0.path=$W/ext4.img" \
			--set "boot.cmdline=$(cmdline minivmm.fsb.fs=ext4 minivmm.fsb.dev=/dev/vda)" ;;
	vfs)
		exec "$MINIVMM" run -v "$W/guest.cfg" --timeout "$TIMEOUT" "${share_args[@]}" \
			--set share.0.dax=never \
			--set "boot.cmdline=$(cmdline minivmm.fsb.fs=virtiofs minivmm.fsb.dax=never)" ;;
	vfs-dax)
		exec "$MINIVMM" run -v "$W/guest.cfg" --timeout "$TIMEOUT" "${share_args[@]}" \
			--set share.0.dax=always --set "share.0.dax_window=${win_mb}M" \
			--set "boot.cmdline=$(cmdline minivmm.fsb.fs=virtiofs minivmm.fsb.dax=always)" ;;
	vfs-keep)
		exec "$MINIVMM" run -v "$W/guest.cfg" --timeout "$TIMEOUT" "${share_args[@]}" \
			--set share.0.dax=never --set share.0.cache=always \
			--set "boot.cmdline=$(cmdline minivmm.fsb.fs=virtiofs minivmm.fsb.dax=never)" ;;
	vfs-inode)
		exec "$MINIVMM" run -v "$W/guest.cfg" --timeout "$TIMEOUT" "${share_args[@]}" \
			--set share.0.dax=inode --set "share.0.dax_window=${win_mb}M" \
			--set "boot.cmdline=$(cmdline minivmm.fsb.fs=virtiofs minivmm.fsb.dax=inode)" ;;
	qemu-9p)
		exec qemu-system-x86_64 -accel kvm -cpu host -M pc -m "$MEM" -smp "$CPUS" \
			-nographic -nodefaults -serial stdio -no-reboot \
			-kernel "$G/vmlinuz" -initrd "$G/initramfs.cpio.gz" \
			-append "$(cmdline minivmm.fsb.fs=9p minivmm.fsb.msize=512000)" \
			-virtfs "local,path=$share,mount_tag=bench,security_model=none" ;;
	*) echo "bench/sharedfs: unknown case $c" ;;
	esac </dev/null >"$log" 2>&1 & # exec: $! is the VMM itself
	pid=$!
}

# meminfo_kb KEY: a /proc/meminfo value of the L1, in KiB.
meminfo_kb() {
	local k v rest
	while read -r k v rest; do
		[ "$k" = "$1:" ] && { echo "$v"; return; }
	done </proc/meminfo
	echo 0
}

# run_case CASE: one boot; prints the result row's KEY=VALUE fields.
run_case() {
	local c=$1 log=$W/$1.log t0 t1 k v rest avail0 avail_min avail rss_anon=0 hwm=0 shmem=0 killed=0
	rm -rf "${share:?}/x"
	sync
	avail0=$(meminfo_kb MemAvailable)
	avail_min=$avail0
	t0=$(date +%s%N)
	start_case "$c" "$log"
	# Sample the VMM's memory and the L1's MemAvailable while the guest runs.
	while kill -0 "$pid" 2>/dev/null; do
		while read -r k v rest; do
			case $k in
			RssAnon:) [ "$v" -gt "$rss_anon" ] && rss_anon=$v ;;
			RssShmem:) [ "$v" -gt "$shmem" ] && shmem=$v ;;
			VmHWM:) hwm=$v ;;
			esac
		done 2>/dev/null <"/proc/$pid/status"
		avail=$(meminfo_kb MemAvailable)
		[ "$avail" -lt "$avail_min" ] && avail_min=$avail
		if [ $((($(date +%s%N) - t0) / 1000000000)) -gt $((TIMEOUT + 30)) ] && [ "$killed" = 0 ]; then
			kill -TERM "$pid" 2>/dev/null
			killed=1
		fi
		sleep 0.5
	done
	wait "$pid"
	local rc=$?
	t1=$(date +%s%N)
	tr -d '\r' <"$log" | grep -E '^[A-Z0-9_]+=' | grep -vE '^(FSB_MOUNTED|SCENARIO_EXIT)=' | tr '\n' ' '
	printf 'VMM_RC=%s WALL_MS=%s VMM_RSSANON_KB=%s VMM_RSSSHMEM_KB=%s VMM_HWM_KB=%s L1_AVAIL_DROP_KB=%s' \
		"$rc" $(((t1 - t0) / 1000000)) "$rss_anon" "$shmem" "$hwm" $((avail0 - avail_min))
	# minivmm -v: the share's counters at exit.
	v=$(sed -n 's/.*share\.0: \([0-9]*\) requests.*DAX: \([0-9]*\) mappings set up, \([0-9]*\) removed.*/REQUESTS=\1 DAX_MAPS=\2 DAX_UNMAPS=\3/p' "$log" | tail -n 1)
	[ -n "$v" ] && printf ' %s' "$v"
	echo
}

for r in $(seq "$ROUNDS"); do
	for c in $CASES; do
		grep -q "^$r $c " "$RESULTS" && continue
		row=$(run_case "$c")
		echo "$r $c $row" >>"$RESULTS"
		case " $row " in
		*" FSB_DONE=1 "*)
			w=${row##*WALL_MS=}
			printf 'round %d %-9s done in %s ms\n' "$r" "$c" "${w%% *}" ;;
		*)
			echo "round $r $c: FAILED ($(grep -o 'FSB_FAIL=.*' <<<"$row" | head -c 300)); log tail:"
			tr -d '\r' <"$W/$c.log" | tail -n 15 | sed 's/^/  | /' ;;
		esac
	done
done

python3 - "$RESULTS" "$FILE_MB" <<'PY'
import statistics as st, sys
rows, failed = {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 2:
        continue
    c, kv = f[1], dict(x.split("=", 1) for x in f[2:] if "=" in x)
    if kv.get("FSB_DONE") == "1":
        rows.setdefault(c, []).append(kv)
    else:
        failed[c] = failed.get(c, 0) + 1
file_mb = int(sys.argv[2])
names = {"ext4": "ext4 on virtio-blk", "vfs": "virtio-fs", "vfs-dax": "virtio-fs DAX",
         "vfs-inode": "virtio-fs dax=inode",
         "vfs-keep": "virtio-fs cache=always", "qemu-9p": "QEMU 9p"}
cases = [c for c in names if c in rows]

def med(c, fn):
    v = []
    for kv in rows[c]:
        try:
            v.append(fn(kv))
        except (KeyError, ValueError, ZeroDivisionError):
            pass
    return st.median(v) if v else float("nan")

g = lambda k: (lambda kv: float(kv[k]))
mibs = lambda t: (lambda kv: float(kv["FILE_BYTES"]) / float(kv[t]) * 1e6 / 1048576)
rate = lambda n, t: (lambda kv: float(kv[n]) / float(kv[t]) * 1e6)
metrics = [  # (label, function, format, higher is better)
    (f"read {file_mb} MiB, first (MiB/s)", mibs("READ1_US"), "{:.0f}", True),
    ("re-read (MiB/s)", mibs("READ2_US"), "{:.0f}", True),
    ("guest Cached growth, first read (MiB)",
     lambda kv: (float(kv["CACHED1_KB"]) - float(kv["CACHED0_KB"])) / 1024, "{:.1f}", None),
    ("guest Cached growth, after re-read (MiB)",
     lambda kv: (float(kv["CACHED2_KB"]) - float(kv["CACHED0_KB"])) / 1024, "{:.1f}", None),
    ("untar + sync (s)", lambda kv: float(kv["UNTAR_US"]) / 1e6, "{:.2f}", False),
    ("untar (entries/s)", rate("TREE_ENTRIES", "UNTAR_US"), "{:.0f}", True),
    ("find, cold (entries/s)", rate("FIND_N", "FIND_US"), "{:.0f}", True),
    ("stat every entry, cold (entries/s)", rate("STAT_N", "STAT_US"), "{:.0f}", True),
    ("cat every file, cold (MiB/s)",
     lambda kv: float(kv["TREE_BYTES"]) / float(kv["READTREE_US"]) * 1e6 / 1048576, "{:.1f}", True),
    ("rm -rf + sync (s)", lambda kv: float(kv["RM_US"]) / 1e6, "{:.2f}", False),
    ("rm -rf: entries left behind (should be 0)", g("RM_LEFT"), "{:.0f}", None),
    ("host: VMM RssAnon max (MiB)", lambda kv: float(kv["VMM_RSSANON_KB"]) / 1024, "{:.0f}", None),
    ("host: VMM RssShmem max (MiB)", lambda kv: float(kv["VMM_RSSSHMEM_KB"]) / 1024, "{:.0f}", None),
    ("host: L1 MemAvailable drop (MiB)", lambda kv: float(kv["L1_AVAIL_DROP_KB"]) / 1024, "{:.0f}", None),
    ("boot to power-off (s)", lambda kv: float(kv["WALL_MS"]) / 1e3, "{:.1f}", None),
]
if not cases:
    print("\nno case produced a result")
else:
    e = rows[cases[0]][0]
    print(f"\ntree: {e.get('TREE_ENTRIES', '?')} entries, {int(e.get('TREE_BYTES', 0)) / 1048576:.1f} MiB of file data;"
          f" rounds with a result: " + ", ".join(f"{c} {len(rows[c])}" for c in cases) + " (medians)")
    print("\n| metric | " + " | ".join(names[c] for c in cases) + " |")
    print("|---" * (len(cases) + 1) + "|")
    for label, fn, fmt, _ in metrics:
        print(f"| {label} | " + " | ".join(fmt.format(med(c, fn)) for c in cases) + " |")
    dm = [c for c in cases if c.startswith("vfs")]
    maps = [f"{names[c]} {med(c, g('DAX_MAPS')):.0f}" for c in dm if "DAX_MAPS" in rows[c][0]]
    if maps:
        print("\nDAX mappings set up per run: " + ", ".join(maps))
    base = "qemu-9p"
    if base in cases:
        mm = [c for c in cases if c != base]
        cols = [(l, fn, hb) for l, fn, _, hb in metrics if hb is not None and not l.startswith("untar +")]
        print(f"\nspeed relative to QEMU 9p (> 1.00x: faster than QEMU 9p)\n")
        print("| case | " + " | ".join(l.split(" (")[0] for l, _, _ in cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for c in mm:
            out = []
            for l, fn, hb in cols:
                a, b = med(c, fn), med(base, fn)
                out.append(f"{(a / b if hb else b / a):.2f}x" if a and b else "n/a")
            print(f"| {names[c]} | " + " | ".join(out) + " |")
    print("\ngoals (seed 001):")
    cg = lambda c: med(c, metrics[2][1])
    if "vfs-dax" in cases:
        d = cg("vfs-dax")
        other = f", {cg('vfs'):.1f} MiB without DAX" if "vfs" in cases else ""
        ok = d < 0.05 * file_mb
        print(f"- DAX: guest page cache grows ~0 reading {file_mb} MiB: {d:.1f} MiB{other}"
              f" -> {'met' if ok else 'NOT met'} (< 5% of the file)")
    if "vfs-dax" in cases and "ext4" in cases:
        x = med("vfs-dax", metrics[1][1]) / med("ext4", metrics[1][1])
        print(f"- DAX re-read >= 2x ext4 on virtio-blk: {x:.2f}x -> {'met' if x >= 2 else 'NOT met'}")
    if base in cases:
        worst = []
        for c in [c for c in cases if c != base]:
            for l, fn, _, hb in metrics:
                if hb is None or l.startswith("untar +"):
                    continue
                a, b = med(c, fn), med(base, fn)
                x = a / b if hb else b / a
                if not x >= 1:
                    worst.append(f"{names[c]}: {l.split(' (')[0]} {x:.2f}x")
        print("- every minivmm case faster than QEMU 9p: " +
              ("met" if not worst else "NOT met (" + "; ".join(worst) + ")"))
for c, n in sorted(failed.items()):
    print(f"runs without a result: {c}: {n}")
PY
