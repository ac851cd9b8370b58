// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VM's devices, built from one table (Firecracker's builder): the order
 * they are created in, the two teardown phases (unplug: stop and detach what
 * the guest can reach, every device, last first; then destroy, last first),
 * and the state-tree node each one saves to and loads from.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "acpi/acpi.h"
#include "console.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "snapshot/state.h"
#include "vm.h"

/*
 * The layout of each device's node, written in it as "version". A node without
 * one (snapshots from before) is version 1; a later change bumps it for that device.
 */
#define VM_DEVICE_STATE_VERSION 1

struct vm_device {
	const char *what; /* for messages; NULL: create() says what failed itself */
	const char *name; /* its state-tree node; NULL: no state of its own */
	int (*create)(struct vm *vm, const struct acpi_config *ac);
	void (*unplug)(struct vm *vm);
	void (*destroy)(struct vm *vm);
	int (*save)(struct vm *vm, void *fdt, int node);
	int (*load)(struct vm *vm, const void *fdt, int node);
};

/* --- the console ------------------------------------------------------------------------- */

static int open_serial_out(struct vm *vm)
{
	const struct vm_config *c = vm->cfg;

	vm->serial_fd = -1;
	switch (c->serial) {
	case SERIAL_STDIO:
		vm->serial_fd = STDOUT_FILENO;
		return 0;
	case SERIAL_FILE:
		vm->serial_fd =
		    open(c->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->serial_fd < 0) {
			pr_err("serial file %s: %s", c->serial_path, strerror(errno));
			return -errno;
		}
		vm->serial_fd_owned = true;
		return 0;
	case SERIAL_NONE:
		return 0;
	case SERIAL_API: {
		int ret = console_api_create(&vm->console_api);

		if (ret) {
			pr_err("[console] serial = api: %s", strerror(-ret));
			return ret;
		}
		vm->serial_fd = console_api_out_fd(vm->console_api);
		return 0;
	}
	}
	return -EINVAL;
}

static int serial_add(struct vm *vm, const struct acpi_config *ac)
{
	int ret = open_serial_out(vm);

	(void)ac;
	if (ret)
		return ret;
	vm->serial = serial_create(vm, PORT_COM1, IRQ_COM1, vm->serial_fd);
	if (!vm->serial)
		return -ENOMEM;
	if (vm->cfg->serial == SERIAL_FILE)
		serial_set_limit(vm->serial, vm->cfg->serial_max);
	return 0;
}

static void serial_remove(struct vm *vm)
{
	serial_destroy(vm->serial);
	vm->serial = NULL;
	console_api_destroy(vm->console_api);
	vm->console_api = NULL;
	if (vm->serial_fd_owned) {
		fsync(vm->serial_fd);
		close(vm->serial_fd);
		vm->serial_fd_owned = false;
	}
	vm->serial_fd = -1;
}

static int serial_save_dev(struct vm *vm, void *fdt, int node)
{
	return serial_save(vm->serial, fdt, node);
}

static int serial_load_dev(struct vm *vm, const void *fdt, int node)
{
	return serial_load(vm->serial, fdt, node);
}

/* --- the RTC ----------------------------------------------------------------------------- */

static int rtc_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	vm->rtc = rtc_create(vm);
	return vm->rtc ? 0 : -ENOMEM;
}

static void rtc_remove(struct vm *vm)
{
	rtc_destroy(vm->rtc);
	vm->rtc = NULL;
}

static int rtc_save_dev(struct vm *vm, void *fdt, int node)
{
	return rtc_save(vm->rtc, fdt, node);
}

static int rtc_load_dev(struct vm *vm, const void *fdt, int node)
{
	return rtc_load(vm->rtc, fdt, node);
}

/* --- the PCI bus (its functions' state is the virtio devices') --------------------------- */

static int pci_add(struct vm *vm, const struct acpi_config *ac)
{
	vm->pci = pci_bus_create(vm, ac->mmio64_base, ac->mmio64_size);
	return vm->pci ? 0 : -ENOMEM;
}

/* Before the devices behind it go: the bus stops and releases its functions. */
static void pci_unplug(struct vm *vm)
{
	pci_bus_destroy(vm->pci);
	vm->pci = NULL;
}

static int pci_save_dev(struct vm *vm, void *fdt, int node)
{
	return pci_bus_save(vm->pci, fdt, node);
}

static int pci_load_dev(struct vm *vm, const void *fdt, int node)
{
	return pci_bus_load(vm->pci, fdt, node);
}

/* --- ports with no state: the 8042 reset line, ACPI power, pvpanic ----------------------- */

static int ports_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return i8042_init(vm) ?: power_init(vm) ?: pvpanic_init(vm);
}

/* --- [disk.N], [share.N]: on the PCI bus; their images and directories are not state ----- */

static int disks_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return vm_add_disks(vm);
}

static int shares_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return vm_add_shares(vm);
}

static int vsock_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return vm_add_vsock(vm);
}

static int balloon_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return vm_add_balloon(vm);
}

static int rng_add(struct vm *vm, const struct acpi_config *ac)
{
	(void)ac;
	return vm_add_rng(vm);
}

static const struct vm_device devices[] = {
	{ .what = "serial port",
	  .name = "serial",
	  .create = serial_add,
	  .destroy = serial_remove,
	  .save = serial_save_dev,
	  .load = serial_load_dev },
	{ .what = "RTC",
	  .name = "rtc",
	  .create = rtc_add,
	  .destroy = rtc_remove,
	  .save = rtc_save_dev,
	  .load = rtc_load_dev },
	{ .what = "PCI bus",
	  .name = "pci",
	  .create = pci_add,
	  .unplug = pci_unplug,
	  .save = pci_save_dev,
	  .load = pci_load_dev },
	{ .what = "8042, ACPI power and pvpanic ports", .create = ports_add },
	{ .create = disks_add, .destroy = vm_remove_disks },
	{ .create = shares_add, .destroy = vm_remove_shares },
	{ .create = vsock_add, .destroy = vm_remove_vsock },
	{ .create = balloon_add, .destroy = vm_remove_balloon },
	{ .create = rng_add, .destroy = vm_remove_rng },
};

#define N_DEVICES (sizeof(devices) / sizeof(devices[0]))

int vm_devices_create(struct vm *vm, const struct acpi_config *ac)
{
	for (size_t i = 0; i < N_DEVICES; i++) {
		int ret = devices[i].create(vm, ac);

		if (ret) {
			if (devices[i].what)
				pr_err("cannot create the %s: %s", devices[i].what, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

void vm_devices_destroy(struct vm *vm)
{
	for (size_t i = N_DEVICES; i-- > 0;)
		if (devices[i].unplug)
			devices[i].unplug(vm);
	for (size_t i = N_DEVICES; i-- > 0;)
		if (devices[i].destroy)
			devices[i].destroy(vm);
}

int vm_devices_save(struct vm *vm, void *fdt, int root)
{
	for (size_t i = 0; i < N_DEVICES; i++) {
		int n, ret;

		if (!devices[i].save)
			continue;
		n = st_add_node(fdt, root, devices[i].name);
		ret = n < 0 ? n : st_put_u64(fdt, n, "version", VM_DEVICE_STATE_VERSION);
		if (!ret)
			ret = devices[i].save(vm, fdt, n);
		if (ret)
			return ret;
	}
	return 0;
}

int vm_devices_load(struct vm *vm, const void *fdt, int root)
{
	for (size_t i = 0; i < N_DEVICES; i++) {
		uint64_t version = VM_DEVICE_STATE_VERSION;
		int n, ret;

		if (!devices[i].load)
			continue;
		n = st_node(fdt, root, devices[i].name);
		if (n < 0)
			return n;
		if (st_get_raw(fdt, n, "version", NULL) && st_get_u64(fdt, n, "version", &version))
			return -EINVAL;
		if (version != VM_DEVICE_STATE_VERSION) {
			pr_err("snapshot: %s state version %llu; this minivmm reads %u",
			       devices[i].name, (unsigned long long)version, VM_DEVICE_STATE_VERSION);
			return -EINVAL;
		}
		ret = devices[i].load(vm, fdt, n);
		if (ret)
			return ret;
	}
	return 0;
}
