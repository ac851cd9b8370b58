/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /dev/kvm: open it, check the API and the capabilities minivmm relies on. */
#ifndef MINIVMM_KVM_H
#define MINIVMM_KVM_H

#include <linux/kvm.h>

struct kvm_sys {
	int fd;
	int vcpu_mmap_size;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
};

/* Opens /dev/kvm (or $MINIVMM_KVM_DEV); prints a precise error and returns -errno. */
int kvm_sys_open(struct kvm_sys *k);
void kvm_sys_close(struct kvm_sys *k);
int kvm_check_extension(int fd, int cap);

#endif
