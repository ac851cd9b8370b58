/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One virtual machine: KVM handles, memory, vCPUs, devices, and how it stops. */
#ifndef MINIVMM_VM_H
#define MINIVMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "devices/iobus.h"
#include "kvm.h"
#include "mm/guest_mem.h"

struct vcpu;
struct serial;
struct pci_bus;
struct rtc;
struct virtio_blk;
struct vm_share;
struct virtio_vsock;
struct virtio_balloon;
struct virtio_rng;
struct balloon_timer;

enum vm_stop {
	VM_RUNNING = 0,
	VM_STOP_POWEROFF,
	VM_STOP_REBOOT,
	VM_STOP_PANIC,
	VM_STOP_EXIT_PORT, /* code = the byte written */
	VM_STOP_TIMEOUT,
	VM_STOP_SIGNAL, /* code = signal number */
	VM_STOP_USER,	/* console escape */
	VM_STOP_API,	/* "stop" on the API socket, or save --stop */
	VM_STOP_ERROR,
};

struct vm {
	struct kvm_sys *kvm;
	const struct vm_config *cfg;
	int fd;
	struct guest_mem mem;
	unsigned int nr_vcpus;
	struct vcpu **vcpus;
	bool nested; /* SVM/VMX exposed to the guest */

	struct io_bus pio;
	struct io_bus mmio;
	struct serial *serial;
	struct console_api *console_api; /* [console] serial = api */
	struct pci_bus *pci;
	struct rtc *rtc;
	int serial_fd; /* where the guest console goes; -1: nowhere */
	bool serial_fd_owned;

	/* vm_irq.c: MSI routes (the whole table, irqchip defaults first), memory slots. */
	pthread_mutex_t irq_lock;
	struct kvm_irq_routing *routes;
	unsigned int next_gsi;
	bool routes_committed;
	int next_slot;
	struct virtio_blk *disks[CONFIG_MAX_DISKS];    /* [disk.N], by N */
	struct vm_share *shares[CONFIG_MAX_SHARES]; /* [share.N], by N */
	struct virtio_vsock *vsock;		    /* [vsock], NULL: none */
	struct virtio_balloon *balloon;		    /* [balloon], NULL: none */
	struct virtio_rng *rng;			    /* [vm] rng = on, NULL: none */
	/* A lazy restore is still filling guest RAM (userfaultfd): nothing may be given
	 * back to the host until it is done (the balloon waits). */
	atomic_bool mem_filling;
	struct balloon_timer *balloon_timer; /* [balloon] stats_s, NULL: none */
	int *host_cpus; /* [vm] pin = on: the CPUs we may run on; vCPU i and I/O thread i pin to [i % n] */
	unsigned int nr_host_cpus;
	/* Owners of memory a vCPU's KVM_RUN can fault on (DAX windows): vm_fault_repair() asks them. */
	struct vm_fault_handler {
		int (*repair)(void *opaque);
		void *opaque;
	} fault_handlers[CONFIG_MAX_SHARES];
	unsigned int nr_fault_handlers;
	/* Events for the API socket's subscribers (session.c sets it after vm_create); NULL:
	 * nobody listens. Called from any thread. */
	void (*event)(void *ctx, const char *name, const char *data);
	void *event_ctx;
	/* [disk.N] backend errors: counted, an event at most once a second per disk. */
	struct vm_disk_errors {
		struct vm *vm;
		unsigned int idx;
		atomic_uint_fast64_t count, last_ns;
	} disk_errors[CONFIG_MAX_DISKS];

	/* vm_pause(): vCPUs park outside KVM_RUN with their state consistent. */
	pthread_mutex_t pause_lock;
	pthread_cond_t pause_cond;
	atomic_bool pause_req;
	unsigned int parked;
	bool paused;	/* vm_pause() returned and vm_resume() was not called yet */
	bool restoring; /* vm_create: state comes from a snapshot, no kernel is loaded */
	uint64_t started_ns;

	atomic_int stop_reason;
	int stop_code;
	int stop_efd; /* eventfd: signalled once on the first stop request */
};

int vm_create(struct vm *vm, struct kvm_sys *kvm, const struct vm_config *cfg);
/* The same machine without a kernel or ACPI tables: a snapshot fills memory and state. */
int vm_create_for_restore(struct vm *vm, struct kvm_sys *kvm, const struct vm_config *cfg);
/* Start the vCPUs and wait until the VM stops, @timeout_ms (<= 0: none) passes,
 * or a signal arrives on @sig_fd (a signalfd, or -1). */
enum vm_stop vm_run(struct vm *vm, int timeout_ms, int sig_fd);
void vm_destroy(struct vm *vm);

/*
 * Park every vCPU outside KVM_RUN (pending I/O completed first, as KVM wants
 * before its state is read) and quiesce the devices: in-flight requests are
 * answered, the queues keep their state. -ESHUTDOWN when the VM stops meanwhile.
 * Not nestable: one caller (the API thread) pauses and resumes.
 */
int vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* vCPU threads: park here while a pause is requested. */
void vm_vcpu_park(struct vm *vm);

/* Any thread: ask the VM to stop; the first reason wins. */
void vm_request_stop(struct vm *vm, enum vm_stop reason, int code);
static inline bool vm_stopping(struct vm *vm)
{
	return atomic_load(&vm->stop_reason) != VM_RUNNING;
}

/* Raise or lower a GSI of the in-kernel irqchip. */
int vm_irq_line(struct vm *vm, unsigned int gsi, int level);

/*
 * vm_vmgenid.c: [vm] vmgenid. vm_vmgenid_acpi puts the device into @ac's tables;
 * vm_vmgenid_new writes a new generation ID into guest memory (boot, restore) and,
 * with @notify, raises the interrupt that makes the guest read it.
 */
#define VMGENID_SIZE 16
struct acpi_config;
void vm_vmgenid_acpi(const struct vm *vm, struct acpi_config *ac);
int vm_vmgenid_new(struct vm *vm, bool notify);

/*
 * vm_devices.c: the one table of the VM's devices. Create in order; destroy
 * unplugs every device (last first) and then frees them (last first); save and
 * load give each its node of the state tree (under @root).
 */
struct acpi_config;
int vm_devices_create(struct vm *vm, const struct acpi_config *ac);
void vm_devices_destroy(struct vm *vm);
int vm_devices_save(struct vm *vm, void *fdt, int root);
int vm_devices_load(struct vm *vm, const void *fdt, int root);

/* vm_disks.c: the [disk.N] virtio-blk devices */
int vm_add_disks(struct vm *vm);
/* An event with @data, a JSON object or NULL, for whoever set vm->event. */
void vm_event(struct vm *vm, const char *name, const char *data);
void vm_remove_disks(struct vm *vm);
/* vm_vsock.c: the [vsock] device */
int vm_add_vsock(struct vm *vm);
void vm_remove_vsock(struct vm *vm);
/* vm_balloon.c: the [balloon] device */
int vm_add_balloon(struct vm *vm);
void vm_remove_balloon(struct vm *vm);
int vm_balloon_request(struct vm *vm, bool set, uint64_t size, char *json, size_t len);
/* vm_rng.c: [vm] rng, a virtio-rng device */
int vm_add_rng(struct vm *vm);
void vm_remove_rng(struct vm *vm);
int vm_vsock_connect(struct vm *vm, uint32_t port, int *fd);
/* vm_shares.c: the [share.N] virtio-fs devices */
int vm_add_shares(struct vm *vm);
void vm_remove_shares(struct vm *vm);
/*
 * Memory that a vCPU's KVM_RUN may fault on (EFAULT) and that its owner can mend
 * (a DAX window clamps mappings that reach past the end of their files): @repair
 * returns how many things it changed. Registered while the VM is built.
 */
int vm_add_fault_handler(struct vm *vm, int (*repair)(void *opaque), void *opaque);
/* A vCPU's KVM_RUN failed with EFAULT: ask every handler. 0: nothing to retry for. */
int vm_fault_repair(struct vm *vm);
/* [vm] pin = on: the host CPU vCPU @i (and each device's I/O thread @i) is pinned to; else -1. */
int vm_host_cpu(const struct vm *vm, unsigned int i);

/* vm_irq.c */
int vm_irq_init(struct vm *vm);
void vm_irq_exit(struct vm *vm);
/* A GSI for an MSI route (parked until vm_msi_set), or a negative errno. */
int vm_msi_alloc(struct vm *vm);
/* Point @gsi at the MSI @addr/@data and commit the routing table. */
int vm_msi_set(struct vm *vm, unsigned int gsi, uint64_t addr, uint32_t data);
int vm_irqfd(struct vm *vm, int fd, unsigned int gsi, bool assign);
/* A write of @len bytes at @addr (MMIO, or a port when @pio) signals @fd in the kernel. */
int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned int len, int fd, bool pio, bool assign);
/* KVM memory slots beyond guest RAM (size 0 in vm_memslot_set deletes). */
int vm_memslot_alloc(struct vm *vm);
int vm_memslot_set(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *hva);

#endif
