// SPDX-License-Identifier: GPL-2.0-or-later
/* Fuzz the device models a guest reaches through port I/O and MMIO: the UART,
 * RTC, i8042, power and exit ports, PCI configuration space (BAR sizing and
 * moves) and pvpanic. Input: records of {op, port/addr, size, value}. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/legacy.h"
#include "devices/serial.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "vm.h"

static void setup(struct vm *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->fd = -1;
	io_bus_init(&vm->pio);
	io_bus_init(&vm->mmio);
	vm->stop_efd = eventfd(0, EFD_NONBLOCK);
	vm->serial = serial_create(vm, PORT_COM1, IRQ_COM1, -1);
	vm->rtc = rtc_create(vm);
	vm->pci = pci_bus_create(vm, 1ULL << 32, 1ULL << 30);
	if (!vm->serial || !vm->rtc || !vm->pci || i8042_init(vm) || power_init(vm) ||
	    pvpanic_init(vm))
		abort();
}

static void teardown(struct vm *vm)
{
	pci_bus_destroy(vm->pci);
	rtc_destroy(vm->rtc);
	serial_destroy(vm->serial);
	close(vm->stop_efd);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned int sizes[] = { 1, 2, 4, 8 };
	struct vm vm;

	log_verbosity = -2;
	setup(&vm);
	while (size >= 8) {
		uint8_t op = data[0], v8[8];
		unsigned int len = sizes[(op >> 2) & 3];
		uint16_t port;
		uint32_t val;

		memcpy(&port, data + 1, 2);
		memcpy(&val, data + 3, 4);
		memset(v8, 0, sizeof(v8));
		memcpy(v8, &val, 4);
		switch (op & 3) {
		case 0: /* port read */
		case 1: /* port write; the interesting ones are near the devices */
			if (op & 0x10)
				port = (port & 0xff) + 0xcf8 - 0x80;
			else if (op & 0x20)
				port = PORT_COM1 + (port & 7);
			io_bus_access(&vm.pio, port, v8, len, op & 1);
			break;
		case 2: /* MMIO into the 32-bit PCI window, where BARs live */
		case 3:
			io_bus_access(&vm.mmio, PCI_MMIO32_BASE + ((uint64_t)val & 0xffff), v8, len,
				      op & 1);
			break;
		}
		if (data[7] == 0xa5)
			serial_input(vm.serial, data, 8);
		data += 8;
		size -= 8;
	}
	teardown(&vm);
	return 0;
}
