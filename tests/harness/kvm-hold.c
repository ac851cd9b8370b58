// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * kvm-hold: keep one idle VM open in the nested harness's L1, so that the
 * VMs the tests start and stop are never the first or the last one.
 *
 * Why: the first VM makes KVM enable SVM on every CPU (an IPI to each), the
 * last one disables it again, and every vCPU's local APIC flips the
 * apic_hw_disabled/apic_sw_disabled static keys of the L1 kernel, which
 * patches kernel text through int3 breakpoints while the other vCPU runs.
 * Under QEMU's multi-threaded TCG that cross-CPU code patching is where the
 * L1 was caught wedged (one vCPU in asm_exc_int3) or crashed with a torn
 * instruction. One VM whose vCPU keeps its APIC disabled holds all of those
 * counts above zero for the L1's lifetime. It never runs.
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define MSR_IA32_APICBASE 0x1b

int main(void)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e = { .index = MSR_IA32_APICBASE, .data = 0xfee00000 } };
	int kvm, vm, vcpu;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		perror("kvm-hold: /dev/kvm");
		return 1;
	}
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP) < 0) {
		perror("kvm-hold: KVM_CREATE_VM/IRQCHIP");
		return 1;
	}
	/* A new vCPU's APIC is software-disabled until the guest sets SVR: never. */
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		perror("kvm-hold: KVM_CREATE_VCPU");
		return 1;
	}
	/* And hardware-disabled too (IA32_APICBASE without the enable bit). */
	if (ioctl(vcpu, KVM_SET_MSRS, &m) != 1)
		fprintf(stderr, "kvm-hold: cannot disable the APIC (continuing)\n");
	for (;;)
		pause();
}
