#!/bin/sh
# fio benchmark (needs initramfs-fio.cpio.gz). Parameters from the kernel command line:
#   minivmm.fio.dev=/dev/vda minivmm.fio.rw=randread minivmm.fio.bs=4k minivmm.fio.iodepth=32
#   minivmm.fio.jobs=<online CPUs> minivmm.fio.engine=io_uring minivmm.fio.runtime=10
#   minivmm.fio.size=<whole device> minivmm.fio.direct=1 minivmm.fio.format=normal|json|terse
# Prints fio's report; exits with fio's status.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
command -v fio >/dev/null || { echo "fio: not in this initramfs (use initramfs-fio.cpio.gz)" >&2; exit 127; }
p() { v=$(cmdline_arg "minivmm.fio.$1"); echo "${v:-$2}"; }
dev=$(p dev /dev/vda)
[ -e "$dev" ] || { echo "fio: $dev does not exist" >&2; ls /dev/vd* 2>/dev/null; exit 1; }
size=$(p size "")
echo "FIO_DEV=$dev"
fio --name=minivmm --filename="$dev" --rw="$(p rw randread)" --bs="$(p bs 4k)" \
	--iodepth="$(p iodepth 32)" --numjobs="$(p jobs "$(nproc)")" --ioengine="$(p engine io_uring)" \
	--direct="$(p direct 1)" --runtime="$(p runtime 10)" --time_based --group_reporting \
	${size:+--size="$size"} --output-format="$(p format normal)"
