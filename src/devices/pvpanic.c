// SPDX-License-Identifier: GPL-2.0-or-later
/* pvpanic-pci: Linux's pvpanic-pci driver writes PVPANIC_PANICKED to BAR 0
 * from its panic notifier; we end the VM with "guest panicked". */
#include <stdlib.h>
#include <string.h>

#include "devices/legacy.h"
#include "log.h"
#include "pci/pci.h"
#include "vm.h"

#define PVPANIC_PANICKED     (1 << 0)
#define PVPANIC_CRASH_LOADED (1 << 1)

static void pvpanic_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque;
	memset(data, 0, len);
	if (off == 0)
		*(uint8_t *)data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
}

static void pvpanic_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct vm *vm = ((struct pci_dev *)opaque)->priv;
	uint8_t v = *(const uint8_t *)data;

	(void)len;
	if (off != 0)
		return;
	if (v & PVPANIC_PANICKED)
		vm_request_stop(vm, VM_STOP_PANIC, 0);
	else if (v & PVPANIC_CRASH_LOADED)
		pr_warn("guest crashed and loaded its crash kernel");
}

static void pvpanic_release(struct pci_dev *dev)
{
	free(dev);
}

static const struct io_ops pvpanic_ops = { .read = pvpanic_read, .write = pvpanic_write };

int pvpanic_init(struct vm *vm)
{
	/* Owned by the bus from here on: pci_bus_destroy releases it. */
	struct pci_dev *dev = calloc(1, sizeof(*dev));
	int ret;

	if (!dev)
		return -1;
	pci_dev_init(dev, 0x1b36, 0x0011, 0x088000, 1);
	dev->priv = vm;
	dev->release = pvpanic_release;
	pci_dev_set_bar(dev, 0, PCI_BAR_MEM32, false, 0x1000, &pvpanic_ops, dev);
	ret = pci_register(vm->pci, dev);
	if (ret)
		free(dev);
	return ret;
}
