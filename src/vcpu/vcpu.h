/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One thread per vCPU running KVM_RUN and dispatching its exits. */
#ifndef MINIVMM_VCPU_H
#define MINIVMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	uint64_t exits_io, exits_mmio; /* exits to userspace, for -v */
};

/* Create vCPU @id with its CPUID table and initial MSRs. */
int vcpu_create(struct vm *vm, unsigned int id, struct vcpu **out);
int vcpu_start(struct vcpu *v);
/* Make KVM_RUN return promptly (vCPU threads then see the VM stopping). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);
/* Print the vCPU's main registers on stderr (diagnostics). */
void vcpu_dump(struct vcpu *v);
/* Install the kick signal handler; call once per process. */
void vcpu_signals_init(void);

#endif
