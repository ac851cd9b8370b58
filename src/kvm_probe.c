// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Can this /dev/kvm run a stock kernel? Decided by running a tiny guest, not by names:
 * a software KVM such as PVM opens, creates VMs and even runs real-mode code, and only
 * fails on the first instruction it cannot emulate (lock cmpxchg16b, tens of seconds into
 * a Linux boot). The test guest starts in 64-bit mode as minivmm's boot does and uses
 * what every x86-64 kernel uses early: CPUID, CMPXCHG16B, an MMIO store and port I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm.h"
#include "log.h"
#include "util.h"
#include "vcpu/vcpu.h"

#define PROBE_MEM_SIZE	 0x10000ULL
#define PROBE_CODE	 0x1000ULL
#define PROBE_DATA	 0x3000ULL
#define PROBE_PML4	 0x4000ULL
#define PROBE_PDPT	 0x5000ULL
#define PROBE_PD	 0x6000ULL
#define PROBE_MMIO	 0x20000000ULL /* no memory slot there: an MMIO exit */
#define PROBE_MMIO_VAL	 0x4b564d21U
#define PROBE_PORT	 0x80
#define PROBE_PORT_VAL	 0x4b
#define PROBE_TSS_ADDR	 0xfffbd000ULL
#define PROBE_TIMEOUT_MS 5000
#define PROBE_MAX_EXITS	 16

/*
 * .code64
 *	mov $0x3000, %esi; xor %eax, %eax; cpuid
 *	mov %ebx, (%rsi); mov %edx, 4(%rsi); mov %ecx, 8(%rsi)      vendor string
 *	xor %eax, %eax; xor %edx, %edx                               expect 0:0
 *	movabs $0x1122334455667788, %rbx; movabs $0x99aabbccddeeff00, %rcx
 *	lock cmpxchg16b 16(%rsi); setz 32(%rsi)
 *	movl $0x4b564d21, 0x20000000                                 MMIO exit
 *	mov $0x4b, %al; out %al, $0x80                               PIO exit
 *	hlt                                                          HLT exit
 */
static const uint8_t probe_code[] = {
	0xbe, 0x00, 0x30, 0x00, 0x00, 0x31, 0xc0, 0x0f, 0xa2, 0x89, 0x1e, 0x89, 0x56, 0x04,
	0x89, 0x4e, 0x08, 0x31, 0xc0, 0x31, 0xd2, 0x48, 0xbb, 0x88, 0x77, 0x66, 0x55, 0x44,
	0x33, 0x22, 0x11, 0x48, 0xb9, 0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0xf0,
	0x48, 0x0f, 0xc7, 0x4e, 0x10, 0x0f, 0x94, 0x46, 0x20, 0xc7, 0x04, 0x25, 0x00, 0x00,
	0x00, 0x20, 0x21, 0x4d, 0x56, 0x4b, 0xb0, 0x4b, 0xe6, 0x80, 0xf4,
};
#define PROBE_CMPXCHG_RIP (PROBE_CODE + 0x29)

struct probe {
	const struct kvm_sys *k;
	struct kvm_probe_result *r;
	int vm, vcpu;
	uint8_t *mem;
	struct kvm_run *run;
	atomic_bool timed_out; /* set by the caller before it kicks the vCPU */
};

static void result(struct kvm_probe_result *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result(struct kvm_probe_result *r, int status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static void setup_memory(uint8_t *mem)
{
	uint64_t *pml4 = (uint64_t *)(mem + PROBE_PML4);
	uint64_t *pdpt = (uint64_t *)(mem + PROBE_PDPT);
	uint64_t *pd = (uint64_t *)(mem + PROBE_PD);
	unsigned int i;

	pml4[0] = PROBE_PDPT | 3;
	pdpt[0] = PROBE_PD | 3;
	for (i = 0; i < 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* 2 MiB pages: the first GiB, identity */
	memcpy(mem + PROBE_CODE, probe_code, sizeof(probe_code));
}

static int setup_vcpu(struct probe *p)
{
	struct kvm_segment cs = {
		.limit = 0xffffffff,
		.selector = 8,
		.type = 11,
		.present = 1,
		.s = 1,
		.l = 1,
		.g = 1,
	};
	struct kvm_segment ds = {
		.limit = 0xffffffff,
		.selector = 16,
		.type = 3,
		.present = 1,
		.s = 1,
		.db = 1,
		.g = 1,
	};
	struct kvm_regs regs = { .rip = PROBE_CODE, .rflags = 2 };
	struct kvm_sregs sregs;

	if (ioctl(p->vcpu, KVM_SET_CPUID2, p->k->cpuid) < 0 ||
	    ioctl(p->vcpu, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = cs;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
	sregs.cr3 = PROBE_PML4;
	sregs.cr4 = 0x20;	/* PAE */
	sregs.cr0 = 0x80050033; /* PG WP NE ET MP PE */
	sregs.efer = 0x500;	/* LME LMA */
	if (ioctl(p->vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(p->vcpu, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN:
		return "unknown exit";
	case KVM_EXIT_SHUTDOWN:
		return "shutdown (triple fault)";
	case KVM_EXIT_FAIL_ENTRY:
		return "failed VM entry";
	case KVM_EXIT_INTERNAL_ERROR:
		return "KVM internal error";
	case KVM_EXIT_EXCEPTION:
		return "exception";
	default:
		return "unexpected exit";
	}
}

/* The vCPU's run: the three expected exits in order, then the data the guest wrote. */
static void *probe_thread(void *arg)
{
	struct probe *p = arg;
	struct kvm_probe_result *r = p->r;
	struct kvm_run *run = p->run;
	struct kvm_regs regs;
	unsigned int stage = 0, n;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	for (n = 0; n < PROBE_MAX_EXITS && stage < 3; n++) {
		if (ioctl(p->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR && !atomic_load(&p->timed_out))
				continue;
			if (errno == EINTR)
				result(r, -ETIMEDOUT, "the test guest did not finish in %d ms",
				       PROBE_TIMEOUT_MS);
			else
				result(r, -errno, "KVM_RUN: %s", strerror(errno));
			goto out;
		}
		if (stage == 0 && run->exit_reason == KVM_EXIT_MMIO && run->mmio.is_write &&
		    run->mmio.phys_addr == PROBE_MMIO && run->mmio.len == 4 &&
		    get_le32(run->mmio.data) == PROBE_MMIO_VAL) {
			stage = 1;
		} else if (stage == 1 && run->exit_reason == KVM_EXIT_IO &&
			   run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PROBE_PORT &&
			   run->io.size == 1 &&
			   ((uint8_t *)run)[run->io.data_offset] == PROBE_PORT_VAL) {
			stage = 2;
		} else if (stage == 2 && run->exit_reason == KVM_EXIT_HLT) {
			stage = 3;
		} else {
			static const char *const wants[] = { "an MMIO exit", "a port I/O exit",
							     "a HLT exit" };
			char extra[96] = "";

			if (ioctl(p->vcpu, KVM_GET_REGS, &regs) < 0)
				memset(&regs, 0, sizeof(regs));
			if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR)
				snprintf(extra, sizeof(extra), ", suberror %u%s",
					 run->internal.suberror,
					 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
					     ? ": instruction emulation failed"
					     : "");
			else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY)
				snprintf(extra, sizeof(extra), ", reason 0x%llx",
					 (unsigned long long)
					     run->fail_entry.hardware_entry_failure_reason);
			result(r, -ENOTSUP, "%s (exit %u%s) at rip 0x%llx%s where %s was due",
			       exit_name(run->exit_reason), run->exit_reason, extra,
			       (unsigned long long)regs.rip,
			       regs.rip == PROBE_CMPXCHG_RIP ? ", a lock cmpxchg16b" : "",
			       wants[stage]);
			goto out;
		}
	}
	if (stage < 3) {
		result(r, -ENOTSUP, "the test guest made %u exits without reaching its end", n);
		goto out;
	}
	result(r, 0, "ok");
out:
	return NULL;
}

/* What the guest left in memory: CPUID's vendor and the CMPXCHG16B result. */
static void check_data(struct probe *p)
{
	const uint8_t *d = p->mem + PROBE_DATA;
	const struct kvm_cpuid_entry2 *e = NULL;
	uint32_t i, want[3];

	for (i = 0; i < p->k->cpuid->nent; i++)
		if (p->k->cpuid->entries[i].function == 0)
			e = &p->k->cpuid->entries[i];
	if (e) {
		want[0] = e->ebx;
		want[1] = e->edx;
		want[2] = e->ecx;
		if (memcmp(d, want, 12)) {
			result(p->r, -ENOTSUP,
			       "CPUID in the test guest returned '%.12s', KVM's "
			       "supported CPUID says '%.12s'",
			       (const char *)d, (const char *)want);
			return;
		}
	}
	if (get_le64(d + 16) != 0x1122334455667788ULL ||
	    get_le64(d + 24) != 0x99aabbccddeeff00ULL || d[32] != 1)
		result(p->r, -ENOTSUP, "lock cmpxchg16b in the test guest gave a wrong result");
}

int kvm_probe_guest(const struct kvm_sys *k, struct kvm_probe_result *r)
{
	struct probe p = { .k = k, .r = r, .vm = -1, .vcpu = -1 };
	struct kvm_userspace_memory_region slot = { .memory_size = PROBE_MEM_SIZE };
	uint64_t start = now_ns();
	struct timespec deadline;
	pthread_t thr;
	int ret;

	memset(r, 0, sizeof(*r));
	vcpu_signals_init();
	p.vm = ioctl(k->fd, KVM_CREATE_VM, 0);
	if (p.vm < 0) {
		result(r, -errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	p.mem =
	    mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p.mem == MAP_FAILED) {
		p.mem = NULL;
		result(r, -ENOMEM, "no memory for the test guest");
		goto out;
	}
	setup_memory(p.mem);
	slot.userspace_addr = (uintptr_t)p.mem;
	if (ioctl(p.vm, KVM_SET_USER_MEMORY_REGION, &slot) < 0 ||
	    ioctl(p.vm, KVM_SET_TSS_ADDR, PROBE_TSS_ADDR) < 0) {
		result(r, -errno, "setting up the test VM: %s", strerror(errno));
		goto out;
	}
	p.vcpu = ioctl(p.vm, KVM_CREATE_VCPU, 0);
	if (p.vcpu < 0) {
		result(r, -errno, "KVM_CREATE_VCPU: %s", strerror(errno));
		goto out;
	}
	p.run = mmap(NULL, k->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, p.vcpu, 0);
	if (p.run == MAP_FAILED) {
		p.run = NULL;
		result(r, -errno, "mapping the vCPU's run area: %s", strerror(errno));
		goto out;
	}
	ret = setup_vcpu(&p);
	if (ret) {
		result(r, ret, "setting up the test vCPU: %s", strerror(-ret));
		goto out;
	}
	ret = pthread_create(&thr, NULL, probe_thread, &p);
	if (ret) {
		result(r, -ret, "cannot start the test vCPU thread: %s", strerror(ret));
		goto out;
	}
	/*
	 * A vCPU that never exits is kicked out of KVM_RUN (SIGUSR1 has a handler: see
	 * vcpu_signals_init); immediate_exit covers a kick between two KVM_RUNs.
	 */
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += PROBE_TIMEOUT_MS / 1000;
	if (pthread_timedjoin_np(thr, NULL, &deadline)) {
		atomic_store(&p.timed_out, true);
		p.run->immediate_exit = 1;
		pthread_kill(thr, SIGUSR1);
		pthread_join(thr, NULL);
	}
	if (!r->status)
		check_data(&p);
out:
	r->ns = now_ns() - start;
	if (p.run)
		munmap(p.run, k->vcpu_mmap_size);
	if (p.vcpu >= 0)
		close(p.vcpu);
	if (p.vm >= 0)
		close(p.vm);
	if (p.mem)
		munmap(p.mem, PROBE_MEM_SIZE);
	return r->status;
}

struct kvm_probe_job {
	pthread_t thr;
	struct kvm_sys kvm;
	struct kvm_probe_result r;
	int open_ret;
};

static void *probe_job_fn(void *arg)
{
	struct kvm_probe_job *j = arg;

	j->open_ret = kvm_sys_open(&j->kvm);
	if (!j->open_ret)
		kvm_probe_guest(&j->kvm, &j->r);
	return NULL;
}

struct kvm_probe_job *kvm_probe_start(void)
{
	struct kvm_probe_job *j = calloc(1, sizeof(*j));
	sigset_t all, old;

	if (!j)
		return NULL;
	/* SIGINT, SIGTERM and the like are the main thread's (its signalfd). */
	sigfillset(&all);
	sigdelset(&all, SIGUSR1);
	vcpu_signals_init();
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (pthread_create(&j->thr, NULL, probe_job_fn, j)) {
		free(j);
		j = NULL;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return j;
}

int kvm_probe_finish(struct kvm_probe_job *j, struct kvm_sys *k, struct kvm_probe_result *r)
{
	int ret;

	pthread_join(j->thr, NULL);
	ret = j->open_ret;
	*k = j->kvm;
	*r = j->r;
	free(j);
	return ret;
}

void kvm_probe_cancel(struct kvm_probe_job *j)
{
	struct kvm_probe_result r;
	struct kvm_sys k;

	if (j && !kvm_probe_finish(j, &k, &r))
		kvm_sys_close(&k);
}

static bool module_loaded(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/module/%s", name);
	return access(path, F_OK) == 0;
}

void kvm_host_facts(struct kvm_host_facts *f)
{
	char line[4096];
	FILE *fp;

	memset(f, 0, sizeof(*f));
	f->pvm = module_loaded("kvm_pvm");
	f->kvm_amd = module_loaded("kvm_amd");
	f->kvm_intel = module_loaded("kvm_intel");
	fp = fopen("/proc/cpuinfo", "re");
	if (!fp)
		return;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, "flags", 5))
			continue;
		if (strstr(line, " svm ") || strstr(line, " svm\n"))
			f->virt = "svm";
		else if (strstr(line, " vmx ") || strstr(line, " vmx\n"))
			f->virt = "vmx";
		break;
	}
	fclose(fp);
}

void kvm_explain_unusable(const struct kvm_probe_result *r)
{
	struct kvm_host_facts f;

	kvm_host_facts(&f);
	pr_err("%s cannot run a stock Linux guest: minivmm's test guest failed: %s", kvm_dev_path(),
	       r->why);
	if (f.pvm)
		pr_err("this KVM is PVM (module kvm_pvm), a software KVM that runs only "
		       "PVM-enabled guest kernels; a stock kernel needs KVM with hardware "
		       "virtualization (VMX or SVM: kvm_intel or kvm_amd)%s",
		       f.virt ? "" : ", and this CPU shows neither vmx nor svm");
	else if (!f.virt)
		pr_err("this CPU shows neither vmx nor svm in /proc/cpuinfo: stock kernels need "
		       "KVM with hardware virtualization (kvm_intel or kvm_amd)");
	pr_err("way out: run minivmm inside a VM that has a working KVM, e.g. the project's "
	       "nested harness, which boots one under QEMU/TCG with emulated SVM: "
	       "tests/harness/in-vm.sh build/minivmm run CONFIG (make demo and make check "
	       "do this by themselves); `minivmm check-kvm` prints what was found");
}
