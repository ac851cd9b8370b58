/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Per-vCPU CPUID: KVM's supported set with our topology and feature policy. */
#ifndef MINIVMM_CPUID_H
#define MINIVMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "config.h"

/* True when the host KVM can run nested guests (SVM or VMX offered). */
bool cpuid_nested_supported(const struct kvm_cpuid2 *supported);

/*
 * Build vCPU @index's table (of @ncpus: one socket, @ncpus cores, one thread
 * each; APIC ID = index). @nested_on says whether SVM/VMX stays visible.
 * Returns a malloc'd table or NULL.
 */
struct kvm_cpuid2 *cpuid_build(const struct kvm_cpuid2 *supported, unsigned int index,
			       unsigned int ncpus, bool nested_on, bool tsc_deadline);

/* Find an entry (NULL if absent). */
struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, unsigned int function,
				    unsigned int index);

/* Bits of the CPU's count of cores rounded up to a power of two. */
unsigned int cpuid_core_shift(unsigned int ncpus);

#endif
