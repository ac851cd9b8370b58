// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "sandbox/sandbox.h"
#include "vcpu/cpuid.h"
#include "vcpu/vcpu.h"
#include "vm.h"

#define SIG_KICK SIGUSR1
/* KVM_RUN -EFAULTs in a row that a DAX window repair may answer before we give up. */
#define MAX_FAULT_REPAIRS 8

#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE    0x2ff

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN */
}

void vcpu_signals_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigaction(SIG_KICK, &sa, NULL);
}

static int set_msrs(struct vcpu *v)
{
	/* struct kvm_msrs ends in a flexible array: room for two entries. */
	uint64_t buf[(sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)) / 8] = { 0 };
	struct kvm_msrs *m = (struct kvm_msrs *)buf;

	m->nmsrs = 2;
	m->entries[0].index = MSR_IA32_MISC_ENABLE;
	m->entries[0].data = 1; /* fast strings */
	m->entries[1].index = MSR_MTRR_DEF_TYPE;
	m->entries[1].data = 0xc06; /* MTRRs on, default write-back: no firmware sets them */
	if (ioctl(v->fd, KVM_SET_MSRS, m) != 2)
		pr_debug("vcpu%u: KVM_SET_MSRS set fewer MSRs than asked", v->id);
	return 0;
}

int vcpu_create(struct vm *vm, unsigned int id, struct vcpu **out)
{
	struct kvm_cpuid2 *cpuid = NULL;
	struct vcpu *v;
	int ret;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0) {
		ret = -errno;
		pr_err("KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		goto fail;
	}
	v->run = mmap(NULL, vm->kvm->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		v->run = NULL;
		pr_err("mmap of vcpu%u's kvm_run: %s", id, strerror(errno));
		goto fail;
	}
	cpuid = cpuid_build(vm->kvm->cpuid, id, vm->nr_vcpus, vm->nested, true);
	if (!cpuid) {
		ret = -ENOMEM;
		goto fail;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		ret = -errno;
		pr_err("KVM_SET_CPUID2 on vcpu%u: %s", id, strerror(errno));
		goto fail;
	}
	free(cpuid);
	cpuid = NULL;
	ret = set_msrs(v);
	if (ret)
		goto fail;
	*out = v;
	return 0;
fail:
	free(cpuid);
	vcpu_destroy(v);
	return ret;
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	bool wr = r->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	/* "rep ins/outs" arrive as count accesses of size bytes each. */
	for (i = 0; i < r->io.count; i++) {
		if (log_verbosity >= 3 && r->io.port != 0x3f8)
			log_msg(3, "vcpu%u: %s port %#x size %u", v->id, wr ? "out" : "in",
				r->io.port, r->io.size);
		if (!io_bus_access(&v->vm->pio, r->io.port, data, r->io.size, wr))
			pr_debug("vcpu%u: unhandled %s port %#x size %u", v->id, wr ? "out" : "in",
				 r->io.port, r->io.size);
		data += r->io.size;
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;

	if (r->mmio.len > 8)
		return;
	if (log_verbosity >= 3)
		log_msg(3, "vcpu%u: mmio %s %#llx len %u", v->id,
			r->mmio.is_write ? "write" : "read", (unsigned long long)r->mmio.phys_addr,
			r->mmio.len);
	if (!io_bus_access(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, r->mmio.len,
			   r->mmio.is_write))
		pr_debug("vcpu%u: unhandled mmio %s %#llx len %u", v->id,
			 r->mmio.is_write ? "write" : "read", (unsigned long long)r->mmio.phys_addr,
			 r->mmio.len);
}

void vcpu_dump(struct vcpu *v)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	pr_err("vcpu%u: rip %#llx rsp %#llx rflags %#llx cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx",
	       v->id, regs.rip, regs.rsp, regs.rflags, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer);
}

/* Returns false when the VM must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *r = v->run;

	switch (r->exit_reason) {
	case KVM_EXIT_IO:
		v->exits_io++;
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		v->exits_mmio++;
		handle_mmio(v);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		/*
		 * A triple fault: how a PC resets when nothing else works. Linux
		 * reboots through ACPI or the 8042 here, so say it. No register dump:
		 * on AMD, KVM has already reset the registers (the VMCB is undefined
		 * after a shutdown intercept).
		 */
		pr_warn("vcpu%u: triple fault (shutdown): treating as reset", v->id);
		vm_request_stop(v->vm, VM_STOP_REBOOT, 0);
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		if (r->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN)
			vm_request_stop(v->vm, VM_STOP_POWEROFF, 0);
		else if (r->system_event.type == KVM_SYSTEM_EVENT_RESET)
			vm_request_stop(v->vm, VM_STOP_REBOOT, 0);
		else if (r->system_event.type == KVM_SYSTEM_EVENT_CRASH)
			vm_request_stop(v->vm, VM_STOP_PANIC, 0);
		return true;
	case KVM_EXIT_FAIL_ENTRY:
		pr_err("vcpu%u: KVM entry failed, hardware reason %#llx", v->id,
		       (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		pr_err("vcpu%u: KVM internal error, suberror %u", v->id, r->internal.suberror);
		break;
	default:
		pr_err("vcpu%u: unexpected exit reason %u", v->id, r->exit_reason);
		break;
	}
	vcpu_dump(v);
	vm_request_stop(v->vm, VM_STOP_ERROR, 0);
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	unsigned int repairs = 0;
	sigset_t set;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", v->id);
	pthread_setname_np(pthread_self(), name);
	if (vm_host_cpu(v->vm, v->id) >= 0) {
		/* [vm] pin: next to the I/O thread of "its" queue. */
		cpu_set_t cpus;

		CPU_ZERO(&cpus);
		CPU_SET(vm_host_cpu(v->vm, v->id), &cpus);
		if (pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus))
			pr_warn("vcpu%u: cannot pin to CPU %d", v->id, vm_host_cpu(v->vm, v->id));
	}
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	sandbox_thread_enter(SANDBOX_VCPU);

	while (!vm_stopping(v->vm)) {
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			int err = errno;

			/* A DAX window page past EOF (the host truncated a mapped file): KVM
			 * cannot say which, so every window clamps to its files and the
			 * guest retries the access; bounded, and only if something changed. */
			if (err == EFAULT && repairs < MAX_FAULT_REPAIRS &&
			    vm_fault_repair(v->vm) > 0) {
				repairs++;
				continue;
			}
			errno = err;
			if (errno == EINTR || errno == EAGAIN) {
				v->run->immediate_exit = 0;
				/* Only here: KVM finished any half-done I/O instruction. */
				if (atomic_load(&v->vm->pause_req))
					vm_vcpu_park(v->vm);
				continue;
			}
			pr_err("vcpu%u: KVM_RUN: %s", v->id, strerror(errno));
			vcpu_dump(v);
			vm_request_stop(v->vm, VM_STOP_ERROR, 0);
			break;
		}
		repairs = 0;
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret)
		return -ret;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* Set before the signal: a vCPU about to enter KVM_RUN returns at once. */
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, SIG_KICK);
}

void vcpu_join(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	if (v->run)
		munmap(v->run, v->vm->kvm->vcpu_mmap_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}
