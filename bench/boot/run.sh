#!/bin/bash
# bench/boot: wall time from VMM process start to the guest's /init and to VMM exit,
# minivmm vs QEMU (-M pc and -M microvm), same kernel, initramfs, memory and vCPUs,
# interleaved, several rounds. Needs /dev/kvm: run through the harness,
#   tests/harness/in-vm.sh bench/boot/run.sh [ROUNDS]
# or `make bench-boot`. The guest's /init prints a marker and powers off at once.
# Also reports minivmm's own resident memory outside guest RAM. "minivmm" boots with the
# host-decompressed kernel from a warm cache (its default); "minivmm-gd" with
# [boot] decompress = guest, the same work as QEMU's guest does.
# SPDX-License-Identifier: GPL-2.0-or-later
set -eu
cd "$(dirname "$0")/../.."
ROUNDS=${1:-5}
MEM=${BENCH_MEM:-256}
CPUS=${BENCH_CPUS:-1}
MINIVMM=${MINIVMM:-$PWD/build/minivmm}
G=build/guest
W=$(mktemp -d "${TMPDIR:-/tmp}/bench-boot.XXXXXX")
trap 'rm -rf "$W"' EXIT

[ -f "$G/vmlinuz" ] || { echo "bench/boot: run 'make guest' first" >&2; exit 2; }

# A minimal initramfs: busybox, an /init that prints the marker and powers off.
mkdir -p "$W/rd/bin" "$W/rd/proc"
cp /bin/busybox "$W/rd/bin/"
cat >"$W/rd/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read -r up _ </proc/uptime
/bin/busybox echo "BENCH-INIT-REACHED $up"
/bin/busybox poweroff -f
INIT
chmod 755 "$W/rd/init"
(cd "$W/rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$W/initrd.gz"
CMD="console=ttyS0 quiet"

cat >"$W/guest.cfg" <<CFG
[vm]
memory = ${MEM}M
vcpus = $CPUS
[boot]
kernel = $PWD/$G/vmlinuz
initrd = $W/initrd.gz
cmdline = $CMD
CFG

# timed LABEL CMD...: runs CMD, prints "t_init t_exit uptime" (seconds; t_init -1 if
# the marker never came; uptime: the guest kernel's clock at /init). Output goes to
# $W/LABEL.log.
timed() {
	local label=$1
	shift
	perl -MTime::HiRes=time -e '
		my $s = time; my $init = -1; my $up = -1;
		open(my $p, "-|", @ARGV) or die "spawn: $!";
		while (<$p>) {
			if ($init < 0 && /BENCH-INIT-REACHED ([0-9.]+)/) { $init = time - $s; $up = $1 }
			print STDERR $_;
		}
		close($p);
		printf("%.3f %.3f %.3f\n", $init, time - $s, $up);' -- "$@" 2>"$W/$label.log"
}

QEMU_COMMON=(-accel kvm -cpu host -m "$MEM" -smp "$CPUS" -nographic -nodefaults
	-serial stdio -no-reboot -kernel "$G/vmlinuz" -initrd "$W/initrd.gz")
# minivmm decompresses the bzImage on the host and caches the result (the default);
# minivmm-gd lets the guest decompress itself ([boot] decompress = guest), like QEMU.
export MINIVMM_CACHE_DIR=${MINIVMM_CACHE_DIR:-$PWD/build/cache}
"$MINIVMM" kernel cache "$G/vmlinuz"
run_one() {
	case $1 in
	minivmm) timed "$1" "$MINIVMM" run -v "$W/guest.cfg" --timeout 120 ;;
	minivmm-gd) timed "$1" "$MINIVMM" run -v "$W/guest.cfg" --timeout 120 \
		--set boot.decompress=guest ;;
	qemu-pc) timed "$1" qemu-system-x86_64 -M pc "${QEMU_COMMON[@]}" -append "$CMD" ;;
	qemu-microvm) timed "$1" qemu-system-x86_64 -M microvm "${QEMU_COMMON[@]}" \
		-append "$CMD earlyprintk=ttyS0" ;;
	esac
}

VMMS="minivmm minivmm-gd qemu-pc qemu-microvm"
for r in $(seq "$ROUNDS"); do
	for v in $VMMS; do
		res=$(run_one "$v")
		read -r ti te up <<<"$res"
		echo "$v $ti $te $up" >>"$W/results"
		rss=""
		[ "$v" != "${v#minivmm}" ] && rss=$(sed -n 's/.*VMM memory: \([0-9]*\) KiB.*/\1/p' "$W/$v.log" | tail -n 1)
		[ -n "$rss" ] && echo "$rss" >>"$W/rss"
		printf 'round %d %-13s init %6.2f s  exit %6.2f s  guest uptime at init %5.2f s%s\n' \
			"$r" "$v" "$ti" "$te" "$up" \
			"${rss:+  vmm rss ${rss} KiB}"
		if [ "$ti" = "-1.000" ]; then
			echo "  $v never reached /init; log tail:"; tail -n 5 "$W/$v.log" | sed 's/^/  | /'
		fi
	done
done

python3 - "$W/results" "$W/rss" "$ROUNDS" "$MEM" "$CPUS" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
rss = [int(l) for l in open(sys.argv[2])] if __import__('os').path.exists(sys.argv[2]) else []
vals = {}
pre = {}
for v, ti, te, up in rows:
    vals.setdefault(v, ([], []))
    pre.setdefault(v, [])
    if float(ti) >= 0:
        vals[v][0].append(float(ti))
        pre[v].append(float(ti) - float(up))
    vals[v][1].append(float(te))
print(f"\nboot benchmark: {sys.argv[3]} rounds, {sys.argv[4]} MiB, {sys.argv[5]} vCPU, interleaved")
print("init: process start to the guest's /init; exit: to the VMM's exit; pre-kernel: init")
print("minus the guest's uptime at /init (VMM start, firmware, decompression: all before")
print("the kernel's clock starts); all in seconds")
print(f"{'vmm':14} {'init min':>9} {'init med':>9} {'exit min':>9} {'exit med':>9} {'pre-kernel med':>15}")
med = {}
nan = float('nan')
for v, (ti, te) in vals.items():
    pk = st.median(pre[v]) if pre[v] else nan
    med[v] = (st.median(ti) if ti else nan, st.median(te), pk)
    print(f"{v:14} {min(ti) if ti else nan:9.2f} {med[v][0]:9.2f} {min(te):9.2f} {med[v][1]:9.2f} {pk:15.2f}")
for mine in ('minivmm', 'minivmm-gd'):
    for peer in ('qemu-pc', 'qemu-microvm'):
        m = med.get(mine)
        if m and peer in med:
            print(f"ratio {mine}/{peer}: to /init {m[0]/med[peer][0]:.2f}, to exit {m[1]/med[peer][1]:.2f}, "
                  f"pre-kernel {m[2]/med[peer][2]:.2f} (medians; goal <= 0.50)")
if rss:
    print(f"minivmm resident memory outside guest RAM: median {st.median(rss)} KiB (goal < 5120 KiB)")
PY
