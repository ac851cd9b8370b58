// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VM assembly: the VM generation ID ([vm] vmgenid, ACPI VMGENCTR). 16 random bytes
 * in a reserved page of the BIOS area, new at every boot and every restore; after a
 * restore the generic event device's interrupt tells the guest, which reseeds its
 * RNG (Linux: add_vmfork_randomness), so clones of one snapshot stop drawing the
 * same "random" numbers. The tables: src/acpi/acpi.c.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "acpi/acpi.h"
#include "layout.h"
#include "log.h"
#include "vm.h"

void vm_vmgenid_acpi(const struct vm *vm, struct acpi_config *ac)
{
	if (!vm->cfg->vmgenid)
		return;
	ac->vmgenid_addr = VMGENID_ADDR;
	ac->ged_irq = IRQ_GED;
}

int vm_vmgenid_new(struct vm *vm, bool notify)
{
	uint8_t id[VMGENID_SIZE];
	void *p;
	int ret;

	if (!vm->cfg->vmgenid)
		return 0;
	p = gpa_to_hva(&vm->mem, VMGENID_ADDR, sizeof(id));
	if (!p)
		return -ENOSPC;
	if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
		return -EIO;
	/* Before the vCPUs run (a lazy restore's fault thread brings the page first). */
	memcpy(p, id, sizeof(id));
	if (!notify)
		return 0;
	/* An edge: the guest's _EVT runs once per change. */
	ret = vm_irq_line(vm, IRQ_GED, 1);
	ret = ret ?: vm_irq_line(vm, IRQ_GED, 0);
	if (ret)
		pr_err("VM generation ID: interrupt: %s", strerror(-ret));
	else
		pr_debug("VM generation ID: a new one, the guest notified");
	return ret;
}
