#!/bin/sh
# A guest that runs minivmm itself (a hypervisor VM): mounts the share "root" (the host's
# own /, read-only) on /newroot with proc, sys, dev and a tmpfs of its own, the share
# "job" (read-write) on /newroot/tmp/job, loads kvm_amd or kvm_intel from the host's
# modules (the same kernel), and runs /tmp/job/job.sh chrooted there: a script the host
# wrote, which starts minivmm with a guest of its own (tests/e2e/balloon.sh
# balloon_nested). Prints NESTED_READY before the job, NESTED_JOB_STATUS=N after it, or
# NESTED_FAIL: why; then idles until the host stops it.
# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck source=lib.sh disable=SC1091
. /scenarios/lib.sh
r=/newroot
modprobe -q virtio_balloon
modprobe -q virtiofs 2>/dev/null
print_modules
idle() { while :; do sleep 1; done; }
fail() {
	echo "NESTED_FAIL: $*"
	idle
}
mkdir -p "$r"
mount -t virtiofs root "$r" -o ro 2>/tmp/mount.err || fail "mount root: $(cat /tmp/mount.err)"
for m in proc:proc sys:sysfs dev:devtmpfs tmp:tmpfs; do
	mount -t "${m#*:}" "${m#*:}" "$r/${m%%:*}" || fail "mount $r/${m%%:*}"
done
mkdir -p "$r/tmp/job"
mount -t virtiofs job "$r/tmp/job" 2>/tmp/mount.err || fail "mount job: $(cat /tmp/mount.err)"
chroot "$r" /sbin/modprobe kvm_amd 2>/dev/null || chroot "$r" /sbin/modprobe kvm_intel 2>/dev/null
[ -c "$r/dev/kvm" ] || fail "no /dev/kvm (kvm_amd/kvm_intel did not load: no SVM/VMX?)"
echo NESTED_READY
chroot "$r" /bin/sh /tmp/job/job.sh
echo "NESTED_JOB_STATUS=$?"
idle
