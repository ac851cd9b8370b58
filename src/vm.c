// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "console.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/cpuid.h"
#include "vcpu/vcpu.h"
#include "vm.h"

/* Real-mode helpers KVM needs on Intel; in the hole, below the LAPIC. */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define KVM_TSS_ADDR	      0xfffbd000ULL

void vm_request_stop(struct vm *vm, enum vm_stop reason, int code)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&vm->stop_reason, &expected, reason))
		return;
	vm->stop_code = code;
	if (write(vm->stop_efd, &one, sizeof(one)) < 0)
		pr_debug("stop eventfd: %s", strerror(errno));
	/* Parked vCPUs and a waiting vm_pause() must see it. */
	pthread_mutex_lock(&vm->pause_lock);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
}

void vm_vcpu_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && !vm_stopping(vm))
		pthread_cond_wait(&vm->pause_cond, &vm->pause_lock);
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
}

int vm_pause(struct vm *vm)
{
	unsigned int i;

	if (vm->paused)
		return 0;
	atomic_store(&vm->pause_req, true);
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < vm->nr_vcpus && !vm_stopping(vm)) {
		struct timespec ts;

		/* Kick again now and then: a vCPU clearing immediate_exit just as the
		 * first kick landed would otherwise sleep in the guest's HLT. */
		for (i = 0; i < vm->nr_vcpus; i++)
			vcpu_kick(vm->vcpus[i]);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (vm_stopping(vm)) {
		atomic_store(&vm->pause_req, false);
		return -ESHUTDOWN;
	}
	/* No vCPU runs: no new kicks; let the devices answer what they hold. */
	pci_bus_quiesce(vm->pci, true);
	vm->paused = true;
	return 0;
}

void vm_resume(struct vm *vm)
{
	if (!vm->paused)
		return;
	pci_bus_quiesce(vm->pci, false);
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	vm->paused = false;
}

int vm_irq_line(struct vm *vm, unsigned int gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	return ioctl(vm->fd, KVM_IRQ_LINE, &irq) < 0 ? -errno : 0;
}

static int set_mem_slots(struct vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->mem.nr; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = vm->mem.r[i].gpa,
			.memory_size = vm->mem.r[i].size,
			.userspace_addr = (uintptr_t)vm->mem.r[i].hva,
		};

		if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
			pr_err("KVM_SET_USER_MEMORY_REGION slot %u: %s", i, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * [vm] merge = on: KSM may merge identical guest pages, within this VM and with every
 * other mergeable memory on the host (other VMs): memory saved, at the price of a side
 * channel (docs/config.md). Nothing merges while KSM is not running.
 */
static int vm_mem_merge(struct vm *vm)
{
	char run = '0';
	int ret, fd;

	ret = guest_mem_set_merge(&vm->mem);
	if (ret) {
		pr_err("[vm] merge = on: MADV_MERGEABLE: %s%s", strerror(-ret),
		       ret == -EINVAL ? " (this kernel has no KSM, CONFIG_KSM)" : "");
		return ret;
	}
	fd = open("/sys/kernel/mm/ksm/run", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &run, 1) != 1)
			run = '0';
		close(fd);
	}
	if (run != '1')
		pr_warn("[vm] merge = on, but KSM is not running (/sys/kernel/mm/ksm/run is not 1): "
			"no page is merged until it is");
	else
		pr_info("guest memory: KSM may merge its pages ([vm] merge = on)");
	return 0;
}

static int setup_platform(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0 ||
	    ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &(uint64_t){ KVM_IDENTITY_MAP_ADDR }) < 0) {
		pr_err("KVM_SET_TSS_ADDR/IDENTITY_MAP_ADDR: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP) < 0) {
		pr_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return -errno;
	}
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit) < 0) {
		pr_err("KVM_CREATE_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int setup_acpi(struct vm *vm, const struct acpi_config *ac)
{
	/* The tables may use the BIOS area up to the generation ID's page. */
	size_t room = VMGENID_ADDR - ACPI_TABLES_ADDR;
	void *dst = gpa_to_hva(&vm->mem, ACPI_TABLES_ADDR, room);
	int n;

	if (!dst)
		return -ENOSPC;
	n = acpi_build(dst, room, ACPI_TABLES_ADDR, ac);
	if (n < 0) {
		pr_err("building ACPI tables: %s", strerror(-n));
		return n;
	}
	pr_debug("ACPI tables: %d bytes at %#llx", n, (unsigned long long)ACPI_TABLES_ADDR);
	return 0;
}

static int decide_nested(struct vm *vm)
{
	bool can = cpuid_nested_supported(vm->kvm->cpuid);

	switch (vm->cfg->nested) {
	case NESTED_OFF:
		vm->nested = false;
		return 0;
	case NESTED_AUTO:
		vm->nested = can;
		return 0;
	case NESTED_ON:
		if (!can) {
			pr_err("[vm] nested = on, but this host's KVM cannot run nested guests "
			       "(load kvm_amd or kvm_intel with nested=1)");
			return -ENOTSUP;
		}
		vm->nested = true;
		return 0;
	}
	return -EINVAL;
}

/* --- VM policy: host CPUs, memory faults --------------------------------------------- */

int vm_host_cpu(const struct vm *vm, unsigned int i)
{
	return vm->nr_host_cpus ? vm->host_cpus[i % vm->nr_host_cpus] : -1;
}

/* [vm] pin = on: the CPUs this process may run on, in order. */
static int pick_host_cpus(struct vm *vm)
{
	cpu_set_t set;
	int c;

	if (!vm->cfg->pin)
		return 0;
	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	vm->host_cpus = calloc(CPU_COUNT(&set), sizeof(int));
	if (!vm->host_cpus)
		return -ENOMEM;
	for (c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			vm->host_cpus[vm->nr_host_cpus++] = c;
	return 0;
}

int vm_add_fault_handler(struct vm *vm, int (*repair)(void *opaque), void *opaque)
{
	if (vm->nr_fault_handlers == sizeof(vm->fault_handlers) / sizeof(vm->fault_handlers[0]))
		return -ENOSPC;
	vm->fault_handlers[vm->nr_fault_handlers++] =
	    (struct vm_fault_handler){ .repair = repair, .opaque = opaque };
	return 0;
}

int vm_fault_repair(struct vm *vm)
{
	int n = 0;

	for (unsigned int i = 0; i < vm->nr_fault_handlers; i++)
		n += vm->fault_handlers[i].repair(vm->fault_handlers[i].opaque);
	return n;
}

static int create(struct vm *vm, struct kvm_sys *kvm, const struct vm_config *cfg, bool restoring)
{
	struct boot_info bi;
	struct acpi_config ac;
	unsigned int i;
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->kvm = kvm;
	vm->cfg = cfg;
	vm->fd = -1;
	vm->serial_fd = -1;
	vm->nr_vcpus = cfg->vcpus;
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0)
		return -errno;

	pr_debug("creating the VM");
	ret = decide_nested(vm);
	if (ret)
		return ret;
	vm->fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		pr_err("KVM_CREATE_VM: %s", strerror(errno));
		return -errno;
	}
	ret = setup_platform(vm);
	if (ret)
		return ret;
	ret = guest_mem_init(&vm->mem, cfg->mem_size);
	if (ret) {
		pr_err("cannot map %llu MiB of guest memory: %s",
		       (unsigned long long)(cfg->mem_size >> 20), strerror(-ret));
		return ret;
	}
	if (cfg->merge) {
		ret = vm_mem_merge(vm);
		if (ret)
			return ret;
	}
	ret = set_mem_slots(vm);
	if (ret)
		return ret;
	ret = vm_irq_init(vm);
	if (ret)
		return ret;

	ret = pick_host_cpus(vm);
	if (ret)
		return ret;
	acpi_config_init(&ac, vm->nr_vcpus, guest_mem_end(&vm->mem));
	vm_vmgenid_acpi(vm, &ac);
	ret = vm_devices_create(vm, &ac);
	if (ret)
		return ret;
	vm->restoring = restoring;
	if (!restoring) {
		ret = setup_acpi(vm, &ac) ?: vm_vmgenid_new(vm, false) ?: boot_load(vm, &bi);
		if (ret)
			return ret;
	}

	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->nr_vcpus; i++) {
		ret = vcpu_create(vm, i, &vm->vcpus[i]);
		if (ret)
			return ret;
	}
	ret = restoring ? 0 : boot_setup_bsp(vm->vcpus[0]->fd, &bi);
	if (ret) {
		pr_err("setting up the boot vCPU: %s", strerror(-ret));
		return ret;
	}
	pr_info("VM ready: %u vCPU%s, %llu MiB, nested virtualization %s", vm->nr_vcpus,
		vm->nr_vcpus > 1 ? "s" : "", (unsigned long long)(vm->mem.total >> 20),
		vm->nested ? "on" : "off");
	return 0;
}

void vm_event(struct vm *vm, const char *name, const char *data)
{
	if (vm->event)
		vm->event(vm->event_ctx, name, data);
}

int vm_create(struct vm *vm, struct kvm_sys *kvm, const struct vm_config *cfg)
{
	return create(vm, kvm, cfg, false);
}

int vm_create_for_restore(struct vm *vm, struct kvm_sys *kvm, const struct vm_config *cfg)
{
	return create(vm, kvm, cfg, true);
}

enum vm_stop vm_run(struct vm *vm, int timeout_ms, int sig_fd)
{
	uint64_t deadline = timeout_ms > 0 ? now_ns() + (uint64_t)timeout_ms * 1000000 : 0;
	struct console *con = NULL;
	bool dump = false;
	unsigned int i;

	if (vm->cfg->serial == SERIAL_STDIO)
		con = console_start(vm);
	if (vm->console_api && console_api_start(vm->console_api, vm))
		pr_warn("[console] serial = api: no console thread, output is not kept");
	pr_debug("starting %u vCPU thread%s", vm->nr_vcpus, vm->nr_vcpus > 1 ? "s" : "");
	for (i = 0; i < vm->nr_vcpus; i++) {
		if (vcpu_start(vm->vcpus[i])) {
			pr_err("cannot start vcpu%u", i);
			vm_request_stop(vm, VM_STOP_ERROR, 0);
			break;
		}
	}
	while (!vm_stopping(vm)) {
		struct pollfd p[2] = { { vm->stop_efd, POLLIN, 0 }, { sig_fd, POLLIN, 0 } };
		int wait = -1;

		if (deadline) {
			uint64_t now = now_ns();

			if (now >= deadline) {
				vm_request_stop(vm, VM_STOP_TIMEOUT, 0);
				break;
			}
			wait = (int)((deadline - now + 999999) / 1000000);
		}
		if (poll(p, sig_fd >= 0 ? 2 : 1, wait) < 0 && errno != EINTR)
			break;
		if (sig_fd >= 0 && (p[1].revents & POLLIN)) {
			int sig = console_read_signal(sig_fd);

			/* SIGUSR2: for a guest that stopped making progress (test harness,
			 * users): stop and print each vCPU's registers. */
			dump |= sig == SIGUSR2;
			if (sig > 0)
				vm_request_stop(vm, VM_STOP_SIGNAL, sig);
		}
	}
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
	console_stop(con);
	console_api_stop(vm->console_api);
	for (i = 0; i < vm->nr_vcpus; i++)
		pr_info("vcpu%u: %llu port I/O and %llu MMIO exits to minivmm", i,
			(unsigned long long)vm->vcpus[i]->exits_io,
			(unsigned long long)vm->vcpus[i]->exits_mmio);
	pr_info("VMM memory: %ld KiB resident outside guest RAM", vmm_rss_kib(&vm->mem));
	/* Where was a guest that had to be stopped? */
	if (dump ||
	    (log_verbosity >= LOG_DEBUG && atomic_load(&vm->stop_reason) == VM_STOP_TIMEOUT))
		for (i = 0; i < vm->nr_vcpus; i++)
			vcpu_dump(vm->vcpus[i]);
	return atomic_load(&vm->stop_reason);
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (vm->vcpus) {
		for (i = 0; i < vm->nr_vcpus; i++)
			vcpu_destroy(vm->vcpus[i]);
		free(vm->vcpus);
	}
	vm_devices_destroy(vm);
	free(vm->host_cpus);
	vm_irq_exit(vm);
	if (vm->fd >= 0)
		close(vm->fd);
	guest_mem_free(&vm->mem);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_cond_destroy(&vm->pause_cond);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	memset(vm, 0, sizeof(*vm));
}
