#!/bin/bash
# minivmm - run a command with a working /dev/kvm.
#
# usage: tests/harness/in-vm.sh CMD [ARGS...]
#
# When this host's KVM runs minivmm's test guest (`minivmm check-kvm`, $MINIVMM or
# build/minivmm) this just execs CMD. Otherwise (no /dev/kvm, or one that cannot run a
# stock kernel, such as PVM) it boots an L1 Linux (the host's
# Debian kernel) under QEMU/TCG with an emulated AMD CPU with SVM and nested paging, loads
# kvm_amd (nested=1 npt=1) there, shares the host's / read-only and the repo's build/
# read-write over virtio-9p, chroots into the host view and runs CMD in the same cwd with
# the variables that matter (PATH HOME LANG LC_ALL TZ MINIVMM MINIVMM_* TEST_*, TERM on a
# terminal). CMD's stdout/stderr stream live to ours, each whole and in order; its exit
# status is ours. Which way was taken is said in one line on stderr.
#
# The L1 kernel logs (warnings and worse, plus backtraces) to a third serial port in a file;
# when the L1 dies without a status its tail is printed. A soft lockup in the L1 kernel
# panics it (softlockup_panic) instead of hanging until the timeout. The L1's init writes
# a heartbeat into that log every 10 s; when it stops for MINIVMM_L1_HANG seconds (default
# 60) the L1 is wedged (seen under TCG: both vCPUs spinning, no timer interrupts): the
# harness prints where each L1 vCPU is (QEMU monitor, symbols from the L1's kallsyms) and ends the L1.
#
# Environment: MINIVMM_L1_TIMEOUT (seconds, default 1800), MINIVMM_L1_MEM (default 4G),
# MINIVMM_L1_CPUS (default 2), MINIVMM_L1_FORCE=1 (use the L1 even with /dev/kvm),
# MINIVMM_L1_VERBOSE=1 (show all of the L1 kernel's messages live), MINIVMM_L1_LOCK (the
# lock file that keeps to one L1 VM at a time, default /tmp/minivmm-l1.lock),
# MINIVMM_L1_RETRIES (default 2): how often a job is started again after the L1 *kernel*
# panicked, hung or reset itself once booted (an emulation fault of the L1, reported
# loudly; never after CMD failed or the timeout).
# Exit status: CMD's; 124 when the L1 timed out; 125 when the L1 failed (no /dev/kvm in it,
# boot failure, crash); 126 when QEMU is missing.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck disable=SC2054 # QEMU option values are comma-separated on purpose
set -eu

[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)

# Direct or nested: decided by minivmm's own test guest (`minivmm check-kvm`), not by
# whether /dev/kvm opens: a software KVM such as PVM opens and fails deep into a boot.
minivmm=${MINIVMM:-$repo/build/minivmm}
if [ "${MINIVMM_L1_FORCE:-0}" = 1 ]; then
	why="MINIVMM_L1_FORCE=1"
elif ! [ -c /dev/kvm ]; then
	why="there is no /dev/kvm"
elif ! [ -x "$minivmm" ]; then
	why="no minivmm binary to check /dev/kvm with ($minivmm; make)"
elif check=$("$minivmm" check-kvm 2>/dev/null); then
	echo "in-vm: /dev/kvm runs minivmm's test guest (minivmm check-kvm): running directly" >&2
	exec "$@"
else
	why="/dev/kvm cannot run a stock guest (minivmm check-kvm:$(printf '%s\n' "$check" |
		sed -n 's/^PVM: *yes.*/ PVM;/p; s/^test guest: */ test guest: /p' | tr -d '\n'))"
fi
echo "in-vm: running in an L1 VM under QEMU/TCG with emulated SVM: $why" >&2
# shellcheck source=../guest/initramfs-lib.sh disable=SC1091
. "$repo/tests/guest/initramfs-lib.sh"

# The QEMU that emulates the L1: the system's qemu-system-x86_64, or MINIVMM_L1_QEMU: a
# path, or "backports" for Debian's backported QEMU 10 that tests/harness/l1-qemu.sh
# unpacks into build/l1/qemu. One unpacked elsewhere (PREFIX/bin/qemu-system-x86_64) gets
# its firmware from PREFIX/share/{qemu,seabios}. (QEMU 10 ran fs_ops faster and without
# the nested stalls of 7.2, but its L1 lost timer interrupts: three L1 faults in six runs,
# against one in eight under 7.2; so 7.2 stays the default.)
l1_qemu=${MINIVMM_L1_QEMU:-qemu-system-x86_64}
if [ "$l1_qemu" = backports ]; then
	l1_qemu=$repo/build/l1/qemu/usr/bin/qemu-system-x86_64
	"$repo/tests/harness/l1-qemu.sh" "$repo/build/l1/qemu" || exit 126
fi
command -v "$l1_qemu" >/dev/null ||
	{ echo "in-vm: no /dev/kvm and no $l1_qemu (apt-get install qemu-system-x86)" >&2; exit 126; }
l1_qemu_data=()
if [[ $l1_qemu == */* ]]; then
	for d in qemu seabios; do
		[ -d "$(dirname "$l1_qemu")/../share/$d" ] && l1_qemu_data+=(-L "$(dirname "$l1_qemu")/../share/$d")
	done
fi
echo "in-vm: L1 emulator: $("$l1_qemu" --version | head -n 1) ($l1_qemu)" >&2

build=$repo/build
l1=$build/l1
mkdir -p "$l1/jobs"

# --- the L1 initramfs (rebuilt only when an input changed) --------------------------------
L1_MODULES="kvm kvm_amd kvm_intel ccp irqbypass 9p 9pnet 9pnet_virtio netfs fscache virtio
	virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev"
kernel=$(newest_kernel)
kver=$(kernel_version "$kernel")
stamp=$({
	cat "$here/in-vm.sh" "$here/l1-init" "$repo/tests/guest/initramfs-lib.sh"
	echo "$L1_MODULES"
	stat -L -c '%n %s %Y' "$kernel" "/lib/modules/$kver/modules.dep" /bin/busybox
} | sha256sum | cut -d' ' -f1)
if ! [ -f "$l1/initramfs.cpio.gz" ] || [ "$(cat "$l1/.stamp" 2>/dev/null)" != "$stamp" ]; then
	stage=$(mktemp -d "${TMPDIR:-/tmp}/minivmm-l1.XXXXXX")
	stage_busybox "$stage"
	# shellcheck disable=SC2086 # word splitting wanted
	stage_modules "$stage" "$kver" $L1_MODULES
	cp "$here/l1-init" "$stage/init"
	chmod 755 "$stage/init"
	pack_cpio "$stage" "$l1/initramfs.cpio.gz"
	rm -rf "$stage"
	echo "$stamp" >"$l1/.stamp"
fi

# --- kvm-hold: one idle VM for the L1's lifetime (see kvm-hold.c for why) --------------
if ! [ -x "$l1/kvm-hold" ] || [ "$here/kvm-hold.c" -nt "$l1/kvm-hold" ]; then
	${CC:-cc} -O2 -Wall -o "$l1/kvm-hold.tmp" "$here/kvm-hold.c" && mv "$l1/kvm-hold.tmp" "$l1/kvm-hold" ||
		echo "in-vm: cannot build kvm-hold; running without it" >&2
fi

# --- the job: environment, cwd and command, in a script on the build share ---------------
jobdir=$(mktemp -d "$l1/jobs/job.XXXXXX")
# shellcheck disable=SC2317 # called by the trap
cleanup() { rm -rf "$jobdir"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cwd=$(pwd -P)
tty=0
[ -t 0 ] && [ -t 1 ] && tty=1
printf '%s\n' "$cwd" >"$jobdir/cwd"
{
	echo '# generated by tests/harness/in-vm.sh'
	for v in PATH HOME LANG LC_ALL TZ $(compgen -e | grep -E '^(MINIVMM|TEST_)' || true); do
		[ -n "${!v+set}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	[ "$tty" = 1 ] && [ -n "${TERM:-}" ] && printf 'export TERM=%q\n' "$TERM"
	echo 'export MINIVMM_IN_L1=1 # the job may end a wedged L1 (tests/e2e/run.sh)'
	printf 'cd -- %q || { echo "in-vm: cannot cd to %q in the L1 VM" >&2; echo 125 >%q; exit 125; }\n' \
		"$cwd" "$cwd" "$jobdir/status"
	printf '%q ' "$@"
	echo
	# shellcheck disable=SC2016
	echo 'rc=$?'
	# shellcheck disable=SC2016 # expanded by the job script
	printf 'echo "$rc" >%q.tmp && mv %q.tmp %q\n' "$jobdir/status" "$jobdir/status" "$jobdir/status"
	# shellcheck disable=SC2016
	echo 'exit "$rc"'
} >"$jobdir/job.sh"

# --- the L1 VM --------------------------------------------------------------------------
# EPYC minus the features TCG cannot emulate (QEMU warns about each of them otherwise).
cpu=EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec
klog=$jobdir/l1-kernel.log
append="panic=-1 softlockup_panic=1 softlockup_all_cpu_backtrace=1 watchdog_thresh=20"
append="$append minivmm.job=$jobdir minivmm.build=$build minivmm.tty=$tty"
if [ "${MINIVMM_L1_VERBOSE:-0}" = 1 ]; then
	append="$append console=ttyS2 console=ttyS0 loglevel=7"
else
	append="$append console=ttyS2 loglevel=5"
fi
# CMD's stdout and stderr: two serial ports, each into a FIFO that `sed -u` copies to our
# stdout or stderr a whole line per write. (The serial ports deliver bytes in pieces; QEMU
# writing our stdout and reopening our stderr itself lost or cut lines when both are one
# file.) The FIFOs are also held open here, so that no open blocks and the copiers end only
# after QEMU is gone. On a terminal QEMU keeps the console (stdio) for stdout.
outfifo=$jobdir/out
errfifo=$jobdir/err
mkfifo "$outfifo" "$errfifo"
if [ "$tty" = 1 ]; then
	outdev=(-chardev stdio,id=out -serial chardev:out)
else
	outdev=(-chardev "file,id=out,path=$outfifo" -serial chardev:out)
fi
errdev=(-chardev "file,id=err,path=$errfifo" -serial chardev:err)
append="$append minivmm.err=ttyS1"
qemu=("$l1_qemu" "${l1_qemu_data[@]}" -nodefaults -no-user-config -display none -vga none -no-reboot
	-M pc -accel tcg,thread=multi -cpu "$cpu"
	-smp "${MINIVMM_L1_CPUS:-2}" -m "${MINIVMM_L1_MEM:-4G}"
	-kernel "$kernel" -initrd "$l1/initramfs.cpio.gz" -append "$append"
	"${outdev[@]}" "${errdev[@]}"
	-chardev "file,id=klog,path=$klog" -serial chardev:klog
	-d cpu_reset -D "$jobdir/qemu.log"
	-chardev "pipe,id=mon,path=$jobdir/mon" -mon chardev=mon,mode=readline
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
	-virtfs "local,path=$build,mount_tag=hostbuild,security_model=none,multidevs=remap")

# One L1 at a time on this machine: two emulated L1s starve each other's vCPUs into
# timeouts. The lock is held until this script (and QEMU) ends.
lock=${MINIVMM_L1_LOCK:-/tmp/minivmm-l1.lock}
exec 4>>"$lock"
if ! flock -n 4; then
	echo "in-vm: another L1 VM is running; waiting for it to end (lock $lock)" >&2
	flock 4
fi

limit=${MINIVMM_L1_TIMEOUT:-1800}
retries=${MINIVMM_L1_RETRIES:-2}
hang_limit=${MINIVMM_L1_HANG:-60}
sysmap=$jobdir/kallsyms # written by the L1's init

# The monitor's FIFOs, held open read-write here so that QEMU's open never blocks.
mkfifo "$jobdir/mon.in" "$jobdir/mon.out"
exec 7<>"$jobdir/mon.in" 8<>"$jobdir/mon.out"

# l1_hung: the L1 gave a heartbeat once and none for $hang_limit seconds. Counted, not
# judged by the log's mtime: a wedged L1 still logs hung-task warnings every 2 minutes.
beats=0
beat_at=0
l1_hung() {
	local n now
	[ -f "$klog" ] || return 1
	n=$(grep -c 'in-vm: heartbeat' "$klog" 2>/dev/null) || n=0
	now=$(date +%s)
	if [ "$n" != "$beats" ]; then
		beats=$n
		beat_at=$now
		return 1
	fi
	[ "$beats" -gt 0 ] && [ $((now - beat_at)) -gt "$hang_limit" ]
}

# dump_l1_cpus: each L1 vCPU's RIP, with the kernel symbol from the L1's kallsyms.
dump_l1_cpus() {
	local out
	timeout 2 cat <&8 >/dev/null 2>&1 # drop the monitor's banner
	printf 'info registers -a\n' >&7
	sleep 2
	out=$(timeout 2 cat <&8 2>/dev/null | tr -d '\r')
	echo "in-vm: the L1 is wedged: no heartbeat for ${hang_limit}s; where its vCPUs are:" >&2
	printf '%s\n' "$out" | grep -E '^(CPU#|RIP=)' | while read -r line; do
		case $line in
		RIP=*)
			rip=${line#RIP=}
			rip=${rip%% *}
			sym=""
			# Same-width lowercase hex compares as strings; offsets fit in the low 32 bits.
			[ -r "$sysmap" ] && sym=$(awk -v a="$(echo "$rip" | tr 'A-F' 'a-f')" '
				function h(s,  i, n) { n = 0
					for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
					return n }
				length($1) == 16 && $1 <= a && $1 > best { best = $1; name = $3; mod = $4 }
				END { if (name != "") printf "%s+0x%x %s", name, h(substr(a, 9)) - h(substr(best, 9)), mod }' "$sysmap")
			echo "  RIP $rip ${sym:-?}" >&2 ;;
		*) echo "  $line" >&2 ;;
		esac
	done
}

# run_l1: one boot of the L1 VM; sets $qrc.
run_l1() {
	local copiers
	rm -f "$klog" "$jobdir/status" "$jobdir/qemu.log"
	exec 5<>"$outfifo" 6<>"$errfifo"
	sed -u '' <"$errfifo" >&2 5>&- 6>&- &
	copiers=$!
	if [ "$tty" = 0 ]; then
		sed -u '' <"$outfifo" 5>&- 6>&- &
		copiers="$copiers $!"
	fi
	set +e
	if [ "$tty" = 1 ]; then
		# On a terminal QEMU owns it (raw mode): Ctrl-C ends QEMU, other keys go to CMD.
		timeout --foreground -k 10 "$limit" "${qemu[@]}" 5>&- 6>&-
		qrc=$?
	else
		# In the background so that a signal to us stops the VM instead of waiting for it.
		timeout -k 10 "$limit" "${qemu[@]}" </dev/null 5>&- 6>&- &
		qpid=$!
		trap 'kill -TERM "$qpid" 2>/dev/null; wait "$qpid"; exit 143' TERM HUP
		trap 'kill -TERM "$qpid" 2>/dev/null; wait "$qpid"; exit 130' INT
		hung=0
		beats=0
		while kill -0 "$qpid" 2>/dev/null; do
			sleep 5 &
			wait $! 2>/dev/null
			if [ "$hung" = 0 ] && l1_hung; then
				hung=1
				dump_l1_cpus
				kill -TERM "$qpid" 2>/dev/null
			fi
		done
		wait "$qpid"
		qrc=$?
		trap - TERM HUP INT
	fi
	exec 5>&- 6>&-
	# shellcheck disable=SC2086 # a list of pids
	wait $copiers
	set -e
}

# show_klog: the start of the L1 kernel's first oops (where a fault began) and the tail of
# its log, on stderr.
show_klog() {
	local first
	[ -s "$klog" ] || return 0
	first=$(grep -n -m1 -E 'BUG:|Oops|general protection|stack guard|soft lockup|Kernel panic' \
		"$klog" | cut -d: -f1)
	if [ -n "$first" ] && [ "$(wc -l <"$klog")" -gt $((first + 60)) ]; then
		echo "in-vm: the L1 kernel's first fault report (line $first of its log):" >&2
		tr -d '\r' <"$klog" | sed -n "$first,$((first + 40))p" | sed 's/^/  l1| /' >&2
	fi
	echo "in-vm: last lines of the L1 kernel log:" >&2
	tr -d '\r' <"$klog" | grep -v 'in-vm: heartbeat' | tail -n 60 | sed 's/^/  l1| /' >&2
}

while :; do
	run_l1
	if [ -f "$jobdir/status" ]; then
		rc=$(cat "$jobdir/status")
		[ "$rc" = 125 ] && show_klog
		exit "$rc"
	fi
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		show_klog
		echo "in-vm: the L1 VM timed out after ${limit}s (MINIVMM_L1_TIMEOUT)" >&2
		exit 124
	fi
	show_klog
	# An L1 that booted (it gave a heartbeat) and then ended with neither a status nor a
	# panic reset itself: QEMU logs a triple fault of the emulated CPU (-d cpu_reset).
	# CMD cannot do that from inside the L1's chroot; it is a fault of the emulation.
	fault=""
	if [ "${hung:-0}" = 1 ]; then
		fault="hung"
	elif grep -q 'Kernel panic' "$klog" 2>/dev/null; then
		fault="panicked"
	elif [ "$qrc" = 0 ] && grep -q 'in-vm: heartbeat' "$klog" 2>/dev/null; then
		fault="reset itself ($(grep -m1 -i 'triple fault' "$jobdir/qemu.log" 2>/dev/null ||
			echo 'no panic, no status'))"
	fi
	if [ -n "$fault" ] && [ "$retries" -gt 0 ]; then
		retries=$((retries - 1))
		cp "$klog" "$jobdir/l1-kernel.fault-$((${MINIVMM_L1_RETRIES:-2} - retries)).log" 2>/dev/null
		echo "in-vm: the L1 *kernel* $fault (above: a fault of the emulated L1, not a" \
			"failure of CMD); starting the job again in a new L1 ($retries more retries)" >&2
		continue
	fi
	[ -n "$fault" ] && echo "in-vm: the L1 *kernel* $fault; no retries left" >&2
	break
done
echo "in-vm: the L1 VM ended without reporting a status (QEMU exit $qrc): it failed to boot" \
	"or crashed; rerun with MINIVMM_L1_VERBOSE=1 to see its kernel log live" >&2
exit 125
