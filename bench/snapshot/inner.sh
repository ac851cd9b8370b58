#!/bin/bash
# bench/snapshot, the part that runs with a working /dev/kvm (started by bench/snapshot/run.sh
# through tests/harness/in-vm.sh). For each guest size and each of
#   lzo   minivmm save (LZO1X-1, the default) / restore, eager and --lazy
#   raw   the same with `save --raw` (memory uncompressed; zero pages still left out)
#   qemu  QEMU: stop + migrate "exec:cat > FILE" / -incoming "exec:cat FILE"
# it boots the memfill guest (tests/guest/scenarios/memfill.sh: ~50% of RAM in tmpfs, mixed
# data), waits for READY, saves it twice (first to the L1's tmpfs /tmp, then to the build
# share, virtio-9p to the host's disk, meant as the storage-bound case; in the nested harness
# it is hardly slower than tmpfs, see docs/snapshot.md), and restores each file:
# time from exec until the guest answers a console command, plus for minivmm the restore's
# own "restored ... in X ms; Y ms since minivmm started" line (Y, lazy: time to the first
# guest instruction). Before each restore from the 9p share the L1's page cache is dropped.
#
# usage: bench/snapshot/inner.sh [ROUNDS]   (needs /dev/kvm)
# Environment: MINIVMM_BENCH_SNAP_SIZES (MiB, default "256 1024"), MINIVMM_BENCH_SNAP_VMMS
# (default "lzo raw qemu"), MINIVMM_BENCH_SNAP_STORAGE (default "tmpfs 9p"),
# MINIVMM_BENCH_SNAP_FILL (percent of RAM, default 50), MINIVMM_BENCH_SNAP_QEMU_KERNEL (default
# build/guest/vmlinux: see below), MINIVMM_BENCH_RESULTS (results file;
# rows already there are not measured again: a run interrupted by a fault of the L1 resumes).
# Results: one row per figure, "ROUND SIZE VMM STORAGE METRIC VALUE".
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
cd "$(dirname "$0")/../.." || exit 2
ROUNDS=${1:-1}
SIZES=${MINIVMM_BENCH_SNAP_SIZES:-256 1024}
VMMS=${MINIVMM_BENCH_SNAP_VMMS:-lzo raw qemu}
STORAGE=${MINIVMM_BENCH_SNAP_STORAGE:-tmpfs 9p}
FILL=${MINIVMM_BENCH_SNAP_FILL:-50}
MINIVMM=${MINIVMM:-$PWD/build/minivmm}
G=$PWD/build/guest
# QEMU boots the same kernel already decompressed (ELF vmlinux, PVH entry), as minivmm does
# ([boot] decompress = host): with the bzImage the guest's own decompressor can leave
# non-zero garbage in free memory that QEMU would then have to save and minivmm not.
QEMU_KERNEL=${MINIVMM_BENCH_SNAP_QEMU_KERNEL:-$G/vmlinux}
RESULTS=${MINIVMM_BENCH_RESULTS:-$PWD/build/bench-snapshot.results}
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-snap.XXXXXX")
# The storage-bound location: the build share (virtio-9p, cache=mmap, to the host's disk).
D=$PWD/build/bench-snapshot.d
mkdir -p "$D"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$W" "$D"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# MINIVMM_BENCH_SNAP_QEMU_ACCEL=tcg with _VMMS=qemu: a smoke test of this script without KVM.
QEMU_ACCEL=${MINIVMM_BENCH_SNAP_QEMU_ACCEL:-kvm}
[ -c /dev/kvm ] || [ "$QEMU_ACCEL $VMMS" = "tcg qemu" ] || { echo "bench/snapshot: no /dev/kvm (run through tests/harness/in-vm.sh)" >&2; exit 2; }
for f in "$G/initramfs.cpio.gz" "$QEMU_KERNEL"; do
	[ -f "$f" ] || { echo "bench/snapshot: no $f (make guest)" >&2; exit 2; }
done
command -v qemu-system-x86_64 >/dev/null || { echo "bench/snapshot: qemu-system-x86_64 missing" >&2; exit 2; }
BOOT_LIMIT=600 # s: boot and fill (slow under nested TCG)
ANSWER_LIMIT=300

CMDLINE="console=ttyS0 quiet minivmm.scenario=memfill minivmm.fill_pct=$FILL"
cat >"$W/guest.cfg" <<CFG
[vm]
memory = 256M
vcpus = 1
[boot]
kernel = $G/vmlinuz
initrd = $G/initramfs.cpio.gz
cmdline = $CMDLINE
[console]
serial = stdio
CFG

# The console: VMM stdin is the FIFO $W/in (held open read-write on fd 3, so nothing
# blocks), stdout goes through stamp() into $W/out: each line prefixed with the time it
# arrived (no fork per line, so the stamp is close to the guest's output).
mkfifo "$W/in"
exec 3<>"$W/in"
stamp() {
	local l
	while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "${l%$'\r'}"; done
}
now() { echo "$EPOCHREALTIME"; }
# start LOG ERR CMD...: CMD in the background, console from $W/in, stdout stamped into LOG
# (through a FIFO: the chroot in the L1 has no /dev/fd for process substitution); sets $pid.
start() {
	local log=$1 err=$2
	shift 2
	rm -f "$W/o.fifo" "$log"
	mkfifo "$W/o.fifo"
	stamp <"$W/o.fifo" >"$log" &
	PIDS+=("$!")
	"$@" <"$W/in" >"$W/o.fifo" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
}
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a - b) * 1000 }'; }
drain_in() { while read -r -t 0 -u 3 && read -r -t 0.01 -u 3; do :; done; }

# wait_ready LOG PID: until the guest printed READY; 1 when the VM ended or took too long.
wait_ready() {
	local i
	for ((i = 0; i < BOOT_LIMIT; i++)); do
		grep -q ' READY$' "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 1
	done
	return 1
}
# wait_answer LOG PID: send "cN" to the console every 50 ms until a "PONG" line arrives;
# prints the time stamp of that line. Input written before the guest runs may be lost (a
# VMM need not keep console typing across a restore), hence the repeats; the first answer
# counts.
wait_answer() {
	local n=0 end t
	end=$(($(date +%s) + ANSWER_LIMIT))
	while :; do
		n=$((n + 1))
		printf 'c%d\n' "$n" >&3
		t=$(grep -m1 ' PONG c' "$1" 2>/dev/null | cut -d' ' -f1)
		[ -n "$t" ] && { echo "$t"; return 0; }
		kill -0 "$2" 2>/dev/null || return 1
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.05
	done
}
stop_pid() { kill -TERM "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# row SIZE VMM STORAGE METRIC VALUE: one figure into the pending rows of this group.
row() {
	echo "$R $*" >>"$W/rows"
	printf '  %-5s %-5s %-6s %-16s %s\n' "$2" "$3" "$1M" "$4" "$5"
}
fail() { echo "  FAILED: $*" >&2; echo "$R $SIZE $VMM - failed 1" >>"$W/rows"; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
dest() { [ "$1" = tmpfs ] && echo "$W/snap.$2" || echo "$D/snap.$2"; }

# --- minivmm -------------------------------------------------------------------------------
# minivmm_group: boot, fill, save to each storage, restore each file eager and lazy.
minivmm_group() {
	local pid t0 t1 st f last nocomp="" lazy mode line first ans sts
	read -ra sts <<<"$STORAGE"
	if [ "$VMM" = raw ]; then
		# The uncompressed mode: `save --raw` (or --no-compress, its first proposed name).
		nocomp=$("$MINIVMM" save --help 2>&1 | grep -o -m1 -E -- '--(raw|no-compress)\b')
		if [ -z "$nocomp" ]; then
			echo "  raw: skipped: minivmm save has no --raw/--no-compress (no uncompressed save yet)"
			echo "$R $SIZE raw - unsupported 1" >>"$W/rows"
			return 0
		fi
	fi
	: >"$W/out"
	rm -f "$W/api.sock"
	t0=$(now)
	start "$W/out" "$W/run.err" \
		"$MINIVMM" run -v "$W/guest.cfg" --set "vm.memory=${SIZE}M" --api-socket "$W/api.sock"
	if ! wait_ready "$W/out" "$pid"; then
		fail "minivmm run: no READY: $(tail -n 3 "$W/out" "$W/run.err" | tr '\n' ' ')"
		stop_pid "$pid"
		return 1
	fi
	row "$SIZE" "$VMM" - boot_fill_s "$(sub "$(grep -m1 ' READY$' "$W/out" | cut -d' ' -f1)" "$t0")"
	grep -m1 'MEMFILL' "$W/out" | sed 's/^[^ ]* /  guest: /'
	for st in "${sts[@]}"; do
		last=()
		[ "$st" = "${sts[-1]}" ] && last=(--stop)
		f=$(dest "$st" "$VMM")
		t0=$(now)
		if ! "$MINIVMM" save --socket "$W/api.sock" "$f" "${last[@]}" ${nocomp:+"$nocomp"} -v 2>"$W/save.err"; then
			fail "minivmm save $st: $(cat "$W/save.err")"
			stop_pid "$pid"
			return 1
		fi
		t1=$(now)
		row "$SIZE" "$VMM" "$st" save_s "$(sub "$t1" "$t0")"
		row "$SIZE" "$VMM" "$st" bytes "$(stat -c %s "$f")"
	done
	wait "$pid" 2>/dev/null
	for st in "${sts[@]}"; do
		f=$(dest "$st" "$VMM")
		for mode in eager lazy; do
			lazy=()
			[ "$mode" = lazy ] && lazy=(--lazy)
			[ "$st" = tmpfs ] || drop_caches
			drain_in
			t0=$(now)
			start "$W/out" "$W/restore.err" \
				"$MINIVMM" restore "$f" "${lazy[@]}" -v --set console.serial=stdio
			if ! ans=$(wait_answer "$W/out" "$pid"); then
				fail "minivmm restore $mode $st: no answer: $(tail -n 3 "$W/restore.err" | tr '\n' ' ')"
				stop_pid "$pid"
				continue
			fi
			row "$SIZE" "$VMM" "$st" "${mode}_answer_s" "$(sub "$ans" "$t0")"
			# "restored F in X ms (...); Y ms since minivmm started"
			line=$(grep -m1 'restored .* ms since minivmm started' "$W/restore.err")
			first=$(echo "$line" | sed -n 's/.*; \([0-9.]*\) ms since minivmm started.*/\1/p')
			[ -n "$first" ] && row "$SIZE" "$VMM" "$st" "${mode}_first_ms" "$first"
			first=$(echo "$line" | sed -n 's/.*restored .* in \([0-9.]*\) ms (.*/\1/p')
			[ -n "$first" ] && row "$SIZE" "$VMM" "$st" "${mode}_restore_ms" "$first"
			stop_pid "$pid"
			line=$(sed -n 's/.*all memory in after \([0-9.]*\) ms.*/\1/p' "$W/restore.err" | head -n 1)
			[ -n "$line" ] && row "$SIZE" "$VMM" "$st" lazy_all_ms "$line"
		done
		rm -f "$f"
	done
}

# --- QEMU --------------------------------------------------------------------------------------
QEMU_BASE=()
# shellcheck disable=SC2054 # QEMU option values are comma-separated on purpose
qemu_base() {
	local cpu=host
	[ "$QEMU_ACCEL" = kvm ] || cpu=qemu64
	QEMU_BASE=(qemu-system-x86_64 -accel "$QEMU_ACCEL" -cpu "$cpu" -M pc -m "$SIZE" -smp 1
		-nographic -nodefaults -serial stdio -no-reboot
		-kernel "$QEMU_KERNEL" -initrd "$G/initramfs.cpio.gz" -append "$CMDLINE"
		-chardev "pipe,id=mon,path=$W/mon" -mon chardev=mon,mode=readline)
}
# hmp CMD: send a monitor command.
hmp() { printf '%s\n' "$1" >&7; }
hmp_drain() { while read -r -t 0.05 -u 8 _; do :; done; }
hmp_drain_show() { local l; while IFS= read -r -t 0.05 -u 8 l; do printf '%s ' "${l%$'\r'}"; done; }
# wait_file F: until F exists (up to 120 s).
wait_file() {
	local i
	for ((i = 0; i < 120 * 50; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.02
	done
	return 1
}
# hmp_query CMD TEXT: send CMD, print the rest of the first reply line holding TEXT (waits
# up to 5 s for it; prints "none" without it).
hmp_query() {
	local l i
	hmp "$1"
	for ((i = 0; i < 50; i++)); do
		IFS= read -r -t 0.1 -u 8 l || continue
		case $l in
		*"$2"*)
			l=${l#*"$2"}
			echo "${l%$'\r'}"
			return 0 ;;
		esac
	done
	echo none
}
migrate_status() { local s; s=$(hmp_query "info migrate" "Migration status: "); echo "${s%%[[:space:]]*}"; }
# migrate_wait: poll until the migration started last completed (0) or failed (1).
migrate_wait() {
	local end s
	end=$(($(date +%s) + BOOT_LIMIT))
	while [ "$(date +%s)" -lt "$end" ]; do
		s=$(migrate_status)
		case $s in
		completed) return 0 ;;
		failed | cancelled) return 1 ;;
		esac
		sleep 0.05
	done
	return 1
}
# qemu_quit PID: `quit` on the monitor; TERM if QEMU is still there 10 s later.
qemu_quit() {
	local i
	hmp quit
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && echo "  (QEMU did not quit within 10 s: $(hmp_drain_show))"
	stop_pid "$1"
}
qemu_group() {
	local pid t0 t1 st f ans i vs
	qemu_base
	rm -f "$W/mon.in" "$W/mon.out"
	mkfifo "$W/mon.in" "$W/mon.out"
	exec 7<>"$W/mon.in" 8<>"$W/mon.out"
	: >"$W/out"
	t0=$(now)
	start "$W/out" "$W/qemu.err" "${QEMU_BASE[@]}"
	if ! wait_ready "$W/out" "$pid"; then
		fail "qemu: no READY: $(tail -n 3 "$W/out" "$W/qemu.err" | tr '\n' ' ')"
		stop_pid "$pid"
		return 1
	fi
	row "$SIZE" qemu - boot_fill_s "$(sub "$(grep -m1 ' READY$' "$W/out" | cut -d' ' -f1)" "$t0")"
	# QEMU 7.2 caps migration at 32 MiB/s by default: lift the cap, as anyone saving a VM to a
	# file would (the VM is stopped first, so this is one pass over memory).
	hmp "migrate_set_parameter max-bandwidth 10737418240"
	sleep 0.5
	hmp_drain # the monitor's banner and echo
	for st in $STORAGE; do
		f=$(dest "$st" qemu)
		rm -f "$f" "$f.done"
		# QEMU refuses to migrate a VM paused by an earlier migration: run it again first.
		[ "$st" = "${STORAGE%% *}" ] || { hmp cont; sleep 1; hmp_drain; }
		# stop, migrate until completed and the writer (cat) is done, fsync the file
		# (minivmm's save fsyncs too).
		t0=$(now)
		hmp stop
		hmp "migrate -d \"exec:cat > $f && : > $f.done\""
		if ! migrate_wait || ! wait_file "$f.done"; then
			fail "qemu migrate $st failed: $(hmp_drain_show)"
			stop_pid "$pid"
			return 1
		fi
		sync "$f"
		t1=$(now)
		rm -f "$f.done"
		row "$SIZE" qemu "$st" save_s "$(sub "$t1" "$t0")"
		row "$SIZE" qemu "$st" bytes "$(stat -c %s "$f")"
	done
	qemu_quit "$pid"
	exec 7>&- 8<&-
	for st in $STORAGE; do
		f=$(dest "$st" qemu)
		[ "$st" = tmpfs ] || drop_caches
		drain_in
		rm -f "$W/mon.in" "$W/mon.out"
		mkfifo "$W/mon.in" "$W/mon.out"
		exec 7<>"$W/mon.in" 8<>"$W/mon.out"
		t0=$(now)
		start "$W/out" "$W/qemu.err" "${QEMU_BASE[@]}" -incoming "exec:cat $f"
		# The VM was saved stopped, so QEMU leaves it paused after loading: `cont` then, as
		# one restoring a saved VM does (virsh restore too).
		for ((i = 0; i < ANSWER_LIMIT * 20; i++)); do
			vs=$(hmp_query "info status" "VM status: ")
			case $vs in
			*inmigrate* | none) sleep 0.05 ;;
			*) break ;;
			esac
			kill -0 "$pid" 2>/dev/null || break
		done
		hmp cont
		if ! ans=$(wait_answer "$W/out" "$pid"); then
			fail "qemu -incoming $st: no answer: $(tail -n 3 "$W/qemu.err" | tr '\n' ' ')"
			stop_pid "$pid"
			continue
		fi
		row "$SIZE" qemu "$st" eager_answer_s "$(sub "$ans" "$t0")"
		stop_pid "$pid"
		exec 7>&- 8<&-
		rm -f "$f"
	done
}

echo "bench/snapshot: $ROUNDS round(s), guests of $SIZES MiB (1 vCPU, memfill $FILL%), $VMMS;" \
	"storage: $STORAGE (tmpfs: the L1's /tmp; 9p: $D on the host's disk); L1: $(nproc) CPUs," \
	"$(awk '/^MemTotal:/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)"
for ((R = 1; R <= ROUNDS; R++)); do
	for SIZE in $SIZES; do
		for VMM in $VMMS; do
			if grep -q "^$R $SIZE $VMM " "$RESULTS" 2>/dev/null; then
				continue
			fi
			echo "round $R, $SIZE MiB, $VMM:"
			: >"$W/rows"
			case $VMM in
			lzo | raw) minivmm_group ;;
			qemu) qemu_group ;;
			*) echo "bench/snapshot: unknown VMM $VMM" >&2; exit 2 ;;
			esac
			rm -f "$W"/snap.* "$D"/snap.*
			# The whole group at once: a group cut short by a fault of the L1 runs again.
			cat "$W/rows" >>"$RESULTS"
		done
	done
done
