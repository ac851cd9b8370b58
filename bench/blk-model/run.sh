#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# virtio-blk device model without KVM (issue benchmark 1): driver threads post
# 4 KiB random reads into split rings in ordinary memory against the real
# device (I/O threads, io_uring loops), on a null backend and on a file on
# tmpfs. All configurations run side by side, interleaved, in every round;
# medians over the rounds are reported, with ratios.
#
#   bench/blk-model/run.sh BLK_MODEL [ROUNDS]     (make bench-blk-model ROUNDS=N)
#   BLK_MODEL_SECONDS=S   measured window per run (default 2)
#   BLK_MODEL_DEPTH=D     requests in flight per driver thread (default 32)
#
# Configurations (d = driver threads, q = queues, t = I/O threads):
#   pq-1    1d 1q 1t  per-queue mode, one I/O thread
#   pq-2    2d 2q 2t  per-queue mode, two I/O threads (queue i on thread i)
#   sq-2    2d 1q 1t  single-queue mode: both drivers funnel into queue 0
# each with the driver asking for an interrupt at the next completion (irq,
# like Linux virtblk_done/virtqueue_enable_cb), and, on the null backend, the
# same with a cheap driver: interrupts only when 3/4 of the requests in flight
# are done (delayed, virtqueue_enable_cb_delayed) and a driver that polls the
# used ring and never sleeps (poll, 1d 1q 1t only), so that the I/O thread is
# the bottleneck rather than driver wake-ups.
set -e
BM=${1:?usage: run.sh BLK_MODEL [ROUNDS]}
ROUNDS=${2:-3}
SECS=${BLK_MODEL_SECONDS:-2}
DEPTH=${BLK_MODEL_DEPTH:-32}
case $BM in /*) ;; *) BM=$(pwd)/$BM ;; esac

DIR=/dev/shm
[ -d "$DIR" ] && [ -w "$DIR" ] || DIR=${TMPDIR:-/tmp}
IMG=$DIR/blk-model-$$.img
RES=$(mktemp "${TMPDIR:-/tmp}/blk-model-res.XXXXXX")
trap 'rm -f "$IMG" "$RES"' EXIT INT TERM
# Real pages, not a hole: reads then copy from the page cache.
dd if=/dev/zero of="$IMG" bs=1M count=256 status=none

CONFIGS="null:pq-1:irq null:pq-2:irq null:sq-2:irq file:pq-1:irq file:pq-2:irq file:sq-2:irq
null:pq-1:delayed null:pq-2:delayed null:sq-2:delayed null:pq-1:poll"

run_one() { # BACKEND SHAPE WAIT
	case $2 in
	pq-1) shape="--drivers 1 --queues 1 --iothreads 1" ;;
	pq-2) shape="--drivers 2 --queues 2 --iothreads 2" ;;
	sq-2) shape="--drivers 2 --queues 1 --iothreads 1" ;;
	esac
	be=null
	[ "$1" = file ] && be=file:$IMG
	# shellcheck disable=SC2086
	out=$("$BM" --backend "$be" $shape --wait "$3" --depth "$DEPTH" --bs 4096 --rw read \
		--seconds "$SECS") || { echo "blk_model failed: $1 $2 $3" >&2; exit 1; }
	echo "$out" | sed -n "s/^RESULT /$1:$2:$3 /p" >>"$RES"
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
	# Odd rounds forward, even rounds backward: drift in the machine's load
	# does not favour the configurations that come first.
	list=$CONFIGS
	[ $((r % 2)) = 0 ] && list=$(echo $CONFIGS | tr ' ' '\n' | tac)
	for c in $list; do
		IFS=: read -r be sh wt <<EOF
$c
EOF
		run_one "$be" "$sh" "$wt"
	done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# med CONFIG KEY: the median over the rounds of KEY=value on CONFIG's lines.
med() {
	awk -v c="$1" -v k="$2" '$1 == c { for (i = 2; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == k) print kv[2] } }' "$RES" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "NA" }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "NA" }'; }
fmt() { awk -v v="$1" 'BEGIN { if (v >= 1e6) printf "%.2f M", v / 1e6; else printf "%.0f k", v / 1e3 }'; }

echo "| backend | driver | config (drivers/queues/I/O threads) | requests/s | requests/s per I/O thread | I/O-thread CPU (cores) | io-wq worker CPU (cores) | requests/s per I/O-thread CPU-second | I/O-thread ns/req | driver ns/req | kicks/req | interrupts/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in $CONFIGS; do
	IFS=: read -r be sh wt <<EOF
$c
EOF
	case $sh in pq-1) d="per-queue 1/1/1" ;; pq-2) d="per-queue 2/2/2" ;; sq-2) d="single-queue 2/1/1" ;; esac
	printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" "$be" "$wt" "$d" \
		"$(fmt "$(med "$c" rps)")" "$(fmt "$(med "$c" rps_per_iothread)")" "$(med "$c" io_cpu)" "$(med "$c" wq_cpu)" \
		"$(fmt "$(med "$c" rps_per_io_cpu)")" "$(med "$c" io_ns_per_req)" \
		"$(med "$c" drv_ns_per_req)" "$(med "$c" kicks_per_req)" "$(med "$c" calls_per_req)"
done
echo
echo "| ratio | null irq | file irq | null delayed |"
echo "|---|---|---|---|"
row() { # LABEL SHAPE_A SHAPE_B KEY
	printf "| %s" "$1"
	for bw in null:irq file:irq null:delayed; do
		b=${bw%%:*} w=${bw#*:}
		printf " | %s" "$(ratio "$(med "$b:$2:$w" "$4")" "$(med "$b:$3:$w" "$4")")"
	done
	printf " |\n"
}
row "scaling 2 vs 1 I/O thread, requests/s (pq-2 / pq-1)" pq-2 pq-1 rps
row "scaling 2 vs 1 I/O thread, per I/O thread (pq-2 / pq-1)" pq-2 pq-1 rps_per_iothread
row "per-queue 2q/2t vs single-queue 1q/1t, requests/s (pq-2 / sq-2)" pq-2 sq-2 rps
row "per-queue vs single-queue, per I/O-thread CPU-second (pq-2 / sq-2)" pq-2 sq-2 rps_per_io_cpu
echo
errs=$(awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^errors=/ && $i != "errors=0") n++ } END { print n + 0 }' "$RES")
echo "rounds=$ROUNDS (medians) seconds=$SECS depth=$DEPTH/driver bs=4096 rw=randread nproc=$(nproc)" \
	"file=$IMG ($(stat -f -c %T "$DIR"), 256 MiB) runs-with-errors=$errs"
echo "loadavg before: $LOAD0, after: $LOAD1 (other processes compete for the same $(nproc) CPUs)"
echo "note: driver threads and I/O threads share $(nproc) CPUs; pq-2 runs 4 busy threads on them." \
	"'requests/s per I/O-thread CPU-second' = requests/s divided by the CPU time the I/O" \
	"threads used (schedstat), i.e. the rate one I/O thread would sustain with a core of its own;" \
	"io-wq workers (iou-wrk, where io_uring punts reads it cannot do without blocking) are not in it."
