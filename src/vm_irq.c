// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * KVM plumbing for devices that bypass the vCPU threads: MSI routes and
 * irqfds (device threads raise interrupts without a vCPU exit), ioeventfds
 * (guest kicks land on an eventfd), and extra memory slots (shared-memory
 * BARs). KVM_SET_GSI_ROUTING replaces the whole table, so the irqchip's
 * default routes are kept in our copy and written back every time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "log.h"
#include "vm.h"

#define IOAPIC_PINS   24
#define PIC_PINS      16
#define MAX_ROUTES    1024
#define FIRST_MSI_GSI IOAPIC_PINS

int vm_irq_init(struct vm *vm)
{
	struct kvm_irq_routing_entry *e;
	unsigned int i;

	pthread_mutex_init(&vm->irq_lock, NULL);
	vm->routes = calloc(1, sizeof(*vm->routes) + MAX_ROUTES * sizeof(*e));
	if (!vm->routes)
		return -ENOMEM;
	vm->next_gsi = FIRST_MSI_GSI;
	vm->next_slot = vm->mem.nr;
	/* What KVM_CREATE_IRQCHIP set up: GSI i -> IOAPIC pin i, and the PICs for 0-15. */
	e = vm->routes->entries;
	for (i = 0; i < IOAPIC_PINS; i++) {
		*e++ = (struct kvm_irq_routing_entry){ .gsi = i,
						       .type = KVM_IRQ_ROUTING_IRQCHIP,
						       .u.irqchip = { KVM_IRQCHIP_IOAPIC, i } };
		if (i < PIC_PINS)
			*e++ = (struct kvm_irq_routing_entry){ .gsi = i,
							       .type = KVM_IRQ_ROUTING_IRQCHIP,
							       .u.irqchip = {
								   i < 8 ? KVM_IRQCHIP_PIC_MASTER
									 : KVM_IRQCHIP_PIC_SLAVE,
								   i % 8 } };
	}
	vm->routes->nr = e - vm->routes->entries;
	return 0;
}

void vm_irq_exit(struct vm *vm)
{
	if (!vm->routes)
		return;
	free(vm->routes);
	vm->routes = NULL;
	pthread_mutex_destroy(&vm->irq_lock);
}

static struct kvm_irq_routing_entry *find_route(struct vm *vm, unsigned int gsi)
{
	unsigned int i;

	for (i = 0; i < vm->routes->nr; i++)
		if (vm->routes->entries[i].gsi == gsi &&
		    vm->routes->entries[i].type == KVM_IRQ_ROUTING_MSI)
			return &vm->routes->entries[i];
	return NULL;
}

int vm_msi_alloc(struct vm *vm)
{
	struct kvm_irq_routing_entry *e;
	int gsi;

	pthread_mutex_lock(&vm->irq_lock);
	if (vm->routes->nr >= MAX_ROUTES) {
		pthread_mutex_unlock(&vm->irq_lock);
		return -ENOSPC;
	}
	gsi = vm->next_gsi++;
	e = &vm->routes->entries[vm->routes->nr++];
	/* Parked until the guest programs it: an MSI to nowhere is never sent. */
	*e = (struct kvm_irq_routing_entry){ .gsi = gsi, .type = KVM_IRQ_ROUTING_MSI };
	pthread_mutex_unlock(&vm->irq_lock);
	return gsi;
}

int vm_msi_set(struct vm *vm, unsigned int gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e;
	int ret = 0;

	pthread_mutex_lock(&vm->irq_lock);
	e = find_route(vm, gsi);
	if (!e) {
		ret = -ENOENT;
		goto out;
	}
	if (e->u.msi.address_lo == (uint32_t)addr && e->u.msi.address_hi == addr >> 32 &&
	    e->u.msi.data == data && vm->routes_committed)
		goto out;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = addr >> 32;
	e->u.msi.data = data;
	if (ioctl(vm->fd, KVM_SET_GSI_ROUTING, vm->routes) < 0) {
		ret = -errno;
		pr_warn("KVM_SET_GSI_ROUTING: %s", strerror(errno));
		goto out;
	}
	vm->routes_committed = true;
out:
	pthread_mutex_unlock(&vm->irq_lock);
	return ret;
}

int vm_irqfd(struct vm *vm, int fd, unsigned int gsi, bool assign)
{
	struct kvm_irqfd r = { .fd = fd,
			       .gsi = gsi,
			       .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN };

	return ioctl(vm->fd, KVM_IRQFD, &r) < 0 ? -errno : 0;
}

int vm_ioeventfd(struct vm *vm, uint64_t addr, unsigned int len, int fd, bool pio, bool assign)
{
	struct kvm_ioeventfd r = {
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags =
		    (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->fd, KVM_IOEVENTFD, &r) < 0 ? -errno : 0;
}

int vm_memslot_alloc(struct vm *vm)
{
	int slot;

	pthread_mutex_lock(&vm->irq_lock);
	slot = vm->next_slot++;
	pthread_mutex_unlock(&vm->irq_lock);
	return slot;
}

int vm_memslot_set(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size, /* 0 deletes the slot */
		.userspace_addr = (uintptr_t)hva,
	};

	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		pr_warn("KVM_SET_USER_MEMORY_REGION slot %d at %#llx: %s", slot,
			(unsigned long long)gpa, strerror(errno));
		return -errno;
	}
	return 0;
}
