#!/bin/sh
# virtio-blk checks. Prints one line per /dev/vd*:
#   DISK_vda=sectors:N queues:N ro:0|1 serial:S discard:BYTES
# then runs the operations listed in minivmm.blk=op,op,... on /dev/vda:
#   read     READ_SHA256= of its first MiB (read with O_DIRECT)
#   write    writes `seq 1 300000` (first MiB of it) at 1 MiB with fsync (a FLUSH)
#   discard  blkdiscard of [1 MiB, 5 MiB)
#   rowrite  tries a write; ROWRITE=written|refused
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
for d in /sys/block/vd*; do
	[ -e "$d" ] || continue
	n=${d##*/}
	echo "DISK_$n=sectors:$(cat "$d/size") queues:$(ls "$d/mq" | wc -l) ro:$(cat "$d/ro")" \
		"serial:$(cat "$d/serial" 2>/dev/null) discard:$(cat "$d/queue/discard_max_bytes")"
done
# Which CPU each request queue's MSI-X vector interrupts (blk-mq: queue i -> CPU i).
grep -E 'virtio[0-9]+-req\.[0-9]+' /proc/interrupts | while read -r irq rest; do
	name=${rest##* }
	echo "IRQ_$name=$(cat "/proc/irq/${irq%:}/effective_affinity_list" 2>/dev/null)"
done
ops=$(cmdline_arg minivmm.blk)
rc=0
for op in $(echo "$ops" | tr , ' '); do
	case $op in
	read)
		echo "READ_SHA256=$(dd if=/dev/vda bs=1M count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
		;;
	write)
		seq 1 300000 | head -c 1048576 >/tmp/pattern
		dd if=/tmp/pattern of=/dev/vda bs=64k seek=16 conv=fsync 2>/dev/null || rc=1
		echo "WRITE=done"
		;;
	discard)
		blkdiscard -o 1048576 -l 4194304 /dev/vda && echo "DISCARD=done" || rc=1
		;;
	rowrite)
		if echo hello | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null; then
			echo "ROWRITE=written"
		else
			echo "ROWRITE=refused"
		fi
		;;
	*)
		echo "blk: unknown operation '$op'" >&2
		rc=2
		;;
	esac
done
exit $rc
