/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /dev/kvm: open it, check the API and the capabilities minivmm relies on. */
#ifndef MINIVMM_KVM_H
#define MINIVMM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct kvm_sys {
	int fd;
	int api_version;
	int vcpu_mmap_size;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
};

struct kvm_cap_name {
	int cap;
	const char *name;
};
extern const struct kvm_cap_name kvm_required_caps[];
extern const unsigned int kvm_nr_required_caps;

/* $MINIVMM_KVM_DEV, else /dev/kvm. */
const char *kvm_dev_path(void);
/* Opens /dev/kvm (or $MINIVMM_KVM_DEV); prints a precise error and returns -errno. */
int kvm_sys_open(struct kvm_sys *k);
void kvm_sys_close(struct kvm_sys *k);
int kvm_check_extension(int fd, int cap);

/* --- can this KVM run a stock kernel? (kvm_probe.c) ----------------------------------- */

struct kvm_probe_result {
	int status;    /* 0: the test guest ran correctly; else -errno */
	char why[240]; /* what went wrong, one line */
	uint64_t ns;   /* how long the whole test took */
};

/*
 * Runs a tiny 64-bit test guest (CPUID, lock cmpxchg16b, an MMIO store, port I/O, HLT) in
 * a VM of its own, at most 5 s; fills @r and returns r->status. Installs the vCPU kick
 * signal handler (vcpu_signals_init) to end a guest that never exits.
 */
int kvm_probe_guest(const struct kvm_sys *k, struct kvm_probe_result *r);

/*
 * The same, opening /dev/kvm first, in a thread of its own while the caller does other
 * work (a restore reads its snapshot meanwhile). NULL if no thread could start: then
 * open and probe in line. The thread takes no signal but the vCPU kick.
 */
struct kvm_probe_job *kvm_probe_start(void);
/* Wait for @j and free it: kvm_sys_open's result (its message printed), then *@k is
 * open and *@r the test guest's result. */
int kvm_probe_finish(struct kvm_probe_job *j, struct kvm_sys *k, struct kvm_probe_result *r);
/* Wait for @j and throw its result away (a caller that fails before using it). */
void kvm_probe_cancel(struct kvm_probe_job *j);

/* Facts for messages only; the decision is the test guest's. */
struct kvm_host_facts {
	bool pvm;	  /* the kvm_pvm module is loaded */
	bool kvm_amd;	  /* kvm_amd is loaded */
	bool kvm_intel;	  /* kvm_intel is loaded */
	const char *virt; /* "svm", "vmx" or NULL: the host CPU's flags in /proc/cpuinfo */
};
void kvm_host_facts(struct kvm_host_facts *f);

/* Says on stderr why this KVM cannot run a stock guest and what to do instead. */
void kvm_explain_unusable(const struct kvm_probe_result *r);

#endif
