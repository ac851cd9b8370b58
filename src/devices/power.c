// SPDX-License-Identifier: GPL-2.0-or-later
/* How a guest ends the VM: the exit port (a byte v -> exit status v) and the
 * HW-reduced ACPI sleep control register (S5 = power off). */
#include <string.h>

#include "devices/legacy.h"
#include "layout.h"
#include "vm.h"

static void exit_port_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	(void)off;
	(void)len;
	vm_request_stop(opaque, VM_STOP_EXIT_PORT, *(const uint8_t *)data);
}

static void sleep_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len); /* never asleep, wake status clear */
}

static void sleep_ctl_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	uint8_t v = *(const uint8_t *)data;

	(void)off;
	(void)len;
	if ((v & ACPI_SLP_EN) && ((v >> 2) & 7) == ACPI_S5_SLP_TYP)
		vm_request_stop(opaque, VM_STOP_POWEROFF, 0);
}

static const struct io_ops exit_ops = { .write = exit_port_write };
static const struct io_ops sleep_ctl_ops = { .read = sleep_read, .write = sleep_ctl_write };
static const struct io_ops sleep_sts_ops = { .read = sleep_read };

int power_init(struct vm *vm)
{
	return io_bus_register(&vm->pio, PORT_EXIT, 1, &exit_ops, vm) ?:
	       io_bus_register(&vm->pio, PORT_ACPI_SLEEP_CTL, 1, &sleep_ctl_ops, vm) ?:
	       io_bus_register(&vm->pio, PORT_ACPI_SLEEP_STS, 1, &sleep_sts_ops, vm);
}
