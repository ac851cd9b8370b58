#!/bin/sh
# fio benchmark (needs initramfs-fio.cpio.gz). Parameters from the kernel command line:
#   minivmm.fio.dev=/dev/vda minivmm.fio.rw=randread minivmm.fio.bs=4k minivmm.fio.iodepth=32
#   minivmm.fio.jobs=<online CPUs> minivmm.fio.engine=io_uring minivmm.fio.runtime=10
#   minivmm.fio.size=<whole device> minivmm.fio.direct=1 minivmm.fio.format=normal|json|terse
#   minivmm.fio.pin=0|1 (1: job i on CPU i)
# Prints fio's report; exits with fio's status.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
command -v fio >/dev/null || { echo "fio: not in this initramfs (use initramfs-fio.cpio.gz)" >&2; exit 127; }
p() { v=$(cmdline_arg "minivmm.fio.$1"); echo "${v:-$2}"; }
dev=$(p dev /dev/vda)
[ -e "$dev" ] || { echo "fio: $dev does not exist" >&2; ls /dev/vd* 2>/dev/null; exit 1; }
size=$(p size "")
jobs=$(p jobs "$(nproc)")
echo "FIO_DEV=$dev"
# Which guest CPUs submit to which queue (blk-mq's map), for the reader of a result.
for q in /sys/block/"${dev##*/}"/mq/*; do
	[ -r "$q/cpu_list" ] && echo "FIO_MQ queue ${q##*/}: CPUs $(cat "$q/cpu_list")"
done
# minivmm.fio.pin=1: job i runs on CPU i only (so on queue i when blk-mq maps CPU i there).
pin=""
if [ "$(p pin 0)" = 1 ]; then
	pin="--cpus_allowed=0-$((jobs - 1)) --cpus_allowed_policy=split"
	echo "FIO_PIN job i on CPU i (0-$((jobs - 1)))"
fi
# shellcheck disable=SC2086 # $pin: options
fio --name=minivmm --filename="$dev" --rw="$(p rw randread)" --bs="$(p bs 4k)" \
	--iodepth="$(p iodepth 32)" --numjobs="$jobs" --ioengine="$(p engine io_uring)" \
	--direct="$(p direct 1)" --runtime="$(p runtime 10)" --time_based --group_reporting \
	$pin ${size:+--size="$size"} --output-format="$(p format normal)"
