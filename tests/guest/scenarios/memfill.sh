#!/bin/sh
# Snapshot benchmark guest (bench/snapshot): fill a tmpfs with about minivmm.fill_pct
# percent (default 50) of MemTotal of mixed data, print READY, then answer the console.
# The data, in rounds until the target is reached:
#   ~1/8 random (/dev/urandom: incompressible, like compressed media or keys)
#   ~3/8 text (/proc/kallsyms, seq output, dmesg)
#   ~4/8 binaries (/bin/busybox and the initramfs's kernel modules)
# The rest of memory stays as the kernel left it (mostly zero pages).
# Then each console line L is answered with "PONG L" ("quit" ends with status 0), so the
# host can time a restored guest until it answers a command. The tty's echo is off, so
# "PONG" only ever comes from this loop.
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
pct=$(cmdline_arg minivmm.fill_pct)
[ -n "$pct" ] || pct=50
kb=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
target=$((kb * 1024 * pct / 100))
mkdir -p /fill
mount -t tmpfs -o size=95% tmpfs /fill
cd /fill || exit 1

# The seeds: one file each of text and binaries, a few MiB.
cat /proc/kallsyms >seed.text
seq 1 300000 >>seed.text
dmesg >>seed.text
find /lib/modules -name "*.ko" -exec cat /bin/busybox {} + >seed.bin
size() { wc -c <"$1"; }
text=$(size seed.text)
bin=$(size seed.bin)
filled=$((text + bin))
i=0
while [ "$filled" -lt "$target" ]; do
	i=$((i + 1))
	# Per round: 3 text copies, 4 binary copies, then random data 1/7 of those (1/8 of all).
	cat seed.text seed.text seed.text >"t$i"
	cat seed.bin seed.bin seed.bin seed.bin >"b$i"
	r=$(((3 * text + 4 * bin) / 7))
	head -c "$r" /dev/urandom >"r$i"
	filled=$((filled + 3 * text + 4 * bin + r))
done
sync
echo "MEMFILL bytes=$filled target=$target rounds=$i text=$text bin=$bin memtotal_kb=$kb"
stty -echo 2>/dev/null
echo READY
while IFS= read -r line; do
	case $line in
	quit) exit 0 ;;
	*) echo "PONG $line" ;;
	esac
done
exit 0
