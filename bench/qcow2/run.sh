#!/bin/sh
# qcow2 sync-amplification benchmark: the engine (minivmm img bench / img io)
# against QEMU (qemu-img bench / qemu-io) on the same file system, interleaved.
#
#   bench/qcow2/run.sh [REPS]        (default 3; medians are reported)
#   BENCH_DIR=/path  where the images go (default /var/tmp/qcow2-bench)
#
# Host syncs are counted independently of both programs with the tracefs
# event ext4:ext4_sync_file_enter filtered on the image's inode: it fires in
# ext4_sync_file(), below vfs_fsync_range(), so it sees fsync/fdatasync from
# system calls and from io_uring alike (strace sees only the former). When
# tracefs is unavailable the column falls back to the engine's counters and to
# strace for QEMU, and says so.
set -e
REPS=${1:-3}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${MINIVMM_BUILD:-$ROOT/build}
D=${BENCH_DIR:-/var/tmp/qcow2-bench}
mkdir -p "$D" "$BUILD/qcow2"
if [ -x "$BUILD/minivmm" ] && "$BUILD/minivmm" img info /dev/null 2>&1 | grep -q "could not open"; then
	IMG="$BUILD/minivmm img"
else
	cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT/src" -pthread -o "$BUILD/qcow2/img" \
		"$ROOT/tests/qcow2/img_driver.c" "$BUILD/libminivmm-core.a" -llzo2 -luring -lfdt -linih -lz -lm
	IMG="$BUILD/qcow2/img"
fi

TR=/sys/kernel/tracing
[ -d $TR/events ] || mount -t tracefs nodev $TR 2>/dev/null || true
EV=$TR/events/ext4/ext4_sync_file_enter
if [ -w $EV/enable ] && echo 0 >$EV/enable 2>/dev/null; then
	TRACE=1
	KPROBE=$( [ -e $TR/kprobe_events ] && echo yes || echo no)
else
	TRACE=0
fi

# trace_on FILE / trace_count: host syncs on FILE's inode between the two.
trace_on() {
	[ $TRACE = 1 ] || return 0
	echo "ino == $(stat -c %i "$1")" >$EV/filter
	echo >$TR/trace
	echo 1 >$EV/enable
	echo 1 >$TR/tracing_on
}
trace_count() {
	[ $TRACE = 1 ] || { echo NA; return 0; }
	echo 0 >$EV/enable
	grep -c ext4_sync_file_enter $TR/trace || true
}

MiB=1048576
# W1: 256 MiB of 64 KiB sequential allocating writes, flush after each.
# W3: 4 KiB random writes + flush over 1 GiB (2048 of them).
# W5: dd-style append: 4 KiB writes, a sync every 64 KiB.
W3N=2048
awk -v n=$W3N 'BEGIN { srand(42); for (i = 0; i < n; i++) print int(rand() * 262144) * 4096 }' >"$D/w3.offs"

fresh() { # TOOL FILE [lazy]
	rm -f "$2"
	o=""
	[ "$3" = lazy ] && o="-o lazy_refcounts=on"
	if [ "$1" = engine ]; then $IMG create $o "$2" 1G >/dev/null; else qemu-img create -q -f qcow2 $o "$2" 1G; fi
}

# run TOOL WORKLOAD FILE -> prints "mibs syncs flushes engine_syncs meta_per_alloc"
run() {
	r_tool=$1 r_w=$2 r_f=$3
	case $r_w in
	W1 | W2 | W4) r_cnt=4096 r_sz=64k r_fi=1 r_bytes=$((4096 * 65536)) ;;
	W5) r_cnt=16384 r_sz=4k r_fi=16 r_bytes=$((16384 * 4096)) ;;
	esac
	r_flushes=$r_cnt
	[ $r_w = W5 ] && r_flushes=$((r_cnt / 16))
	trace_on "$r_f"
	if [ $r_w = W3 ]; then
		r_flushes=$W3N
		r_bytes=$((W3N * 4096))
		if [ $r_tool = engine ]; then
			r_out=$(awk '{ printf "write -P 165 %d 4096\tflush\t", $1 }' "$D/w3.offs" |
				xargs -d '\t' $IMG io -s "$r_f")
		else
			r_t0=$(date +%s.%N)
			awk '{ printf "-c\twrite -P 165 %d 4096\t-c\tflush\t", $1 }' "$D/w3.offs" |
				xargs -d '\t' qemu-io -f qcow2 "$r_f" >/dev/null
			r_t1=$(date +%s.%N)
			r_out="Run completed in $(echo "$r_t1 - $r_t0" | bc -l) seconds."
		fi
	elif [ $r_tool = engine ]; then
		r_out=$($IMG bench -w -c $r_cnt -s $r_sz -S $r_sz --flush-interval=$r_fi "$r_f")
	else
		r_out=$(qemu-img bench -w -d 1 -c $r_cnt -s $r_sz -S $r_sz --flush-interval=$r_fi "$r_f")
	fi
	r_syncs=$(trace_count)
	r_secs=$(echo "$r_out" | sed -n 's/^Run completed in \([0-9.]*\) seconds./\1/p')
	r_mibs=$(echo "$r_bytes / $MiB / $r_secs" | bc -l)
	r_es=$(echo "$r_out" | sed -n 's/.* syncs=\([0-9]*\) .*/\1/p')
	r_mpa=$(echo "$r_out" | sed -n 's/.*meta_bytes_per_alloc=\([0-9]*\).*/\1/p')
	echo "$r_mibs ${r_syncs} $r_flushes ${r_es:-NA} ${r_mpa:-NA}"
}

# QEMU's metadata bytes per allocation: pwrite bytes beyond the data (strace, untimed run).
qemu_meta() {
	fresh qemu "$D/qm.qcow2"
	strace -f -qq -e trace=pwrite64,pwritev,pwritev2 -o "$D/strace" \
		qemu-img bench -w -d 1 -c 512 -s 64k -S 64k --flush-interval=1 "$D/qm.qcow2" >/dev/null
	awk '/= [0-9]+$/ { s += $NF } END { printf "%.0f", (s - 512 * 65536) / 512 }' "$D/strace"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$D/results"
for rep in $(seq 1 "$REPS"); do
	for w in W1 W2 W3 W4 W5; do
		order="engine qemu"
		[ $((rep % 2)) = 0 ] && order="qemu engine"
		for tool in $order; do
			f="$D/$tool-$w.qcow2"
			case $w in
			W2) fresh $tool "$f"; run $tool W1 "$f" >/dev/null ;;
			W4) fresh $tool "$f" lazy ;;
			*) fresh $tool "$f" ;;
			esac
			echo "$w $tool $(run $tool $w "$f")" >>"$D/results"
		done
	done
done
QMETA=$(qemu_meta 2>/dev/null || echo NA)

echo "| workload | engine MiB/s | QEMU MiB/s | engine/QEMU | host syncs/flush engine (tracefs) | engine counter | host syncs/flush QEMU (tracefs) | metadata B/alloc engine | QEMU |"
echo "|---|---|---|---|---|---|---|---|---|"
for w in W1 W2 W3 W4 W5; do
	e=$(awk -v w=$w '$1 == w && $2 == "engine" { print $3 }' "$D/results" | median)
	q=$(awk -v w=$w '$1 == w && $2 == "qemu" { print $3 }' "$D/results" | median)
	es=$(awk -v w=$w '$1 == w && $2 == "engine" && $4 != "NA" { print $4 / $5 }' "$D/results" | median)
	ec=$(awk -v w=$w '$1 == w && $2 == "engine" && $6 != "NA" { print $6 / $5 }' "$D/results" | median)
	qs=$(awk -v w=$w '$1 == w && $2 == "qemu" && $4 != "NA" { print $4 / $5 }' "$D/results" | median)
	em=$(awk -v w=$w '$1 == w && $2 == "engine" { print $7 }' "$D/results" | median)
	qm=-
	[ $w = W1 ] && qm=$QMETA
	printf "| %s | %.1f | %.1f | %.2fx | %s | %s | %s | %s | %s |\n" $w "$e" "$q" \
		"$(echo "$e / $q" | bc -l)" "${es:-NA}" "${ec:-NA}" "${qs:-NA}" "${em:-NA}" "$qm"
done
echo
echo "reps=$REPS dir=$D fs=$(stat -f -c %T "$D") tracefs=$TRACE kprobe_events=${KPROBE:-no}"
rm -f "$D"/*.qcow2 "$D/strace"
