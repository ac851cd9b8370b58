// SPDX-License-Identifier: GPL-2.0-or-later
/* A keyboard controller without a keyboard: ACPI does not announce it, so
 * Linux leaves it alone, but "reboot=k" still resets through command 0xfe. */
#include <string.h>

#include "devices/legacy.h"
#include "layout.h"
#include "vm.h"

#define I8042_CMD_RESET 0xfe

static void i8042_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	(void)opaque;
	(void)off;
	memset(data, 0, len); /* status: output buffer empty, input buffer empty */
}

static void i8042_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct vm *vm = opaque;

	(void)off;
	if (len == 1 && *(const uint8_t *)data == I8042_CMD_RESET)
		vm_request_stop(vm, VM_STOP_REBOOT, 0);
}

static const struct io_ops i8042_data_ops = { .read = i8042_read };
static const struct io_ops i8042_cmd_ops = { .read = i8042_read, .write = i8042_write };

int i8042_init(struct vm *vm)
{
	return io_bus_register(&vm->pio, PORT_I8042_DATA, 1, &i8042_data_ops, vm)
		   ?: io_bus_register(&vm->pio, PORT_I8042_CMD, 1, &i8042_cmd_ops, vm);
}
