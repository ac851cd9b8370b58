// SPDX-License-Identifier: GPL-2.0-or-later
/* The I/O bus, PCI (config space, BARs, conf1), the 8250, the RTC and the
 * power/reset ports, driven through io_bus_access as a vCPU exit would. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "console.h"
#include "devices/iobus.h"
#include "devices/legacy.h"
#include "devices/serial.h"
#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "util.h"
#include "vm.h"
#include <libfdt.h>
#include "unit.h"

/* A fake VM: port and MMIO buses, a stop eventfd, no KVM (fd -1). */
static struct vm vm;

static void vm_setup(void)
{
	memset(&vm, 0, sizeof(vm));
	io_bus_init(&vm.pio);
	io_bus_init(&vm.mmio);
	vm.fd = -1;
	vm.serial_fd = -1;
	vm.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(vm.stop_efd, 0);
}

static void vm_teardown(void)
{
	close(vm.stop_efd);
	io_bus_destroy(&vm.pio);
	io_bus_destroy(&vm.mmio);
}

/* How many times the stop eventfd was signalled since the last call. */
static uint64_t stop_signals(void)
{
	uint64_t v = 0;

	if (read(vm.stop_efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void reset_stop(void)
{
	atomic_store(&vm.stop_reason, VM_RUNNING);
	vm.stop_code = 0;
	stop_signals();
}

static void outb(struct io_bus *b, uint64_t a, uint8_t v)
{
	ck_assert(io_bus_access(b, a, &v, 1, true));
}

static uint8_t inb(struct io_bus *b, uint64_t a)
{
	uint8_t v = 0;

	ck_assert(io_bus_access(b, a, &v, 1, false));
	return v;
}

static void outl(struct io_bus *b, uint64_t a, uint32_t v)
{
	ck_assert(io_bus_access(b, a, &v, 4, true));
}

static uint32_t inl(struct io_bus *b, uint64_t a)
{
	uint32_t v = 0;

	ck_assert(io_bus_access(b, a, &v, 4, false));
	return v;
}

/* A device that records accesses and backs them with 64 bytes of memory. */
struct rec {
	uint8_t mem[64];
	uint64_t off;
	unsigned int len, reads, writes;
};

static void rec_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct rec *r = opaque;

	r->off = off;
	r->len = len;
	r->reads++;
	memcpy(data, r->mem + (off % 32), len);
}

static void rec_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct rec *r = opaque;

	r->off = off;
	r->len = len;
	r->writes++;
	memcpy(r->mem + (off % 32), data, len);
}

static const struct io_ops rec_ops = { .read = rec_read, .write = rec_write };
static const struct io_ops wo_ops = { .write = rec_write };
static const struct io_ops ro_ops = { .read = rec_read };

/* ---- I/O bus ---- */

START_TEST(test_iobus_register)
{
	struct io_bus *b = &vm.pio;
	struct rec a = { 0 }, c = { 0 };

	ck_assert_int_eq(io_bus_register(b, 0x100, 0x10, &rec_ops, &a), 0);
	/* Adjacent on both sides is fine. */
	ck_assert_int_eq(io_bus_register(b, 0x110, 0x10, &rec_ops, &c), 0);
	ck_assert_int_eq(io_bus_register(b, 0xf0, 0x10, &rec_ops, &c), 0);
	/* Any overlap is refused. */
	ck_assert_int_eq(io_bus_register(b, 0x10f, 2, &rec_ops, &c), -EBUSY);
	ck_assert_int_eq(io_bus_register(b, 0x104, 1, &rec_ops, &c), -EBUSY);
	ck_assert_int_eq(io_bus_register(b, 0x0, 0x1000, &rec_ops, &c), -EBUSY);
	ck_assert_int_eq(io_bus_register(b, 0x11f, 1, &rec_ops, &c), -EBUSY);
	ck_assert_int_eq(io_bus_register(b, 0xef, 2, &rec_ops, &c), -EBUSY);
	ck_assert_int_eq(io_bus_register(b, 0x100, 0x10, &rec_ops, &a), -EBUSY);
	/* Empty and wrapping ranges are invalid. */
	ck_assert_int_eq(io_bus_register(b, 0x1000, 0, &rec_ops, &c), -EINVAL);
	ck_assert_int_eq(io_bus_register(b, UINT64_MAX, 2, &rec_ops, &c), -EINVAL);
	ck_assert_int_eq(io_bus_register(b, UINT64_MAX - 0x10, 0x20, &rec_ops, &c), -EINVAL);
	ck_assert_uint_eq(b->n, 3);

	/* Unregistering wants both the base and the owner. */
	ck_assert_int_eq(io_bus_unregister(b, 0x100, &c), -ENOENT);
	ck_assert_int_eq(io_bus_unregister(b, 0x104, &a), -ENOENT);
	ck_assert_int_eq(io_bus_unregister(b, 0x100, &a), 0);
	ck_assert_int_eq(io_bus_unregister(b, 0x100, &a), -ENOENT);
	ck_assert_uint_eq(b->n, 2);
	/* The hole can be reused, by a differently shaped range too. */
	ck_assert_int_eq(io_bus_register(b, 0x100, 0x8, &rec_ops, &a), 0);
	ck_assert_int_eq(io_bus_register(b, 0x108, 0x8, &rec_ops, &a), 0);
	/* The others are still where they were. */
	ck_assert_int_eq(io_bus_unregister(b, 0x110, &c), 0);
	ck_assert_int_eq(io_bus_unregister(b, 0xf0, &c), 0);
}
END_TEST

START_TEST(test_iobus_access)
{
	struct io_bus *b = &vm.mmio;
	struct rec a = { 0 }, c = { 0 };
	uint64_t q = 0;
	uint32_t v;

	ck_assert_int_eq(io_bus_register(b, 0xd0000000, 0x10, &rec_ops, &a), 0);
	ck_assert_int_eq(io_bus_register(b, 0xd0000010, 0x10, &rec_ops, &c), 0);

	v = 0x11223344;
	ck_assert(io_bus_access(b, 0xd0000004, &v, 4, true));
	ck_assert_uint_eq(a.writes, 1);
	ck_assert_uint_eq(a.off, 4);
	ck_assert_uint_eq(a.len, 4);
	v = 0;
	ck_assert(io_bus_access(b, 0xd0000004, &v, 4, false));
	ck_assert_uint_eq(v, 0x11223344);
	ck_assert_uint_eq(a.reads, 1);

	/* The last bytes of a range; 8-byte accesses. */
	ck_assert(io_bus_access(b, 0xd000000c, &v, 4, false));
	ck_assert_uint_eq(a.off, 0xc);
	ck_assert(io_bus_access(b, 0xd0000018, &q, 8, false));
	ck_assert_uint_eq(c.off, 8);
	ck_assert_uint_eq(c.len, 8);
	ck_assert(io_bus_access(b, 0xd000001f, &v, 1, false));
	ck_assert_uint_eq(c.off, 0xf);

	/* Straddling two ranges, or the end of one: nobody sees it. */
	a.reads = a.writes = c.reads = c.writes = 0;
	v = 0;
	ck_assert(!io_bus_access(b, 0xd000000e, &v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	ck_assert(!io_bus_access(b, 0xd000000e, &v, 4, true));
	ck_assert(!io_bus_access(b, 0xd000001c, &q, 8, false));
	ck_assert_uint_eq(q, UINT64_MAX);
	ck_assert(!io_bus_access(b, 0xcfffffff, &v, 2, false));
	ck_assert_uint_eq(a.reads + a.writes + c.reads + c.writes, 0);

	/* Unmapped: reads are all-ones, writes vanish. */
	v = 0x12345678;
	ck_assert(!io_bus_access(b, 0xe0000000, &v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	ck_assert(!io_bus_access(b, 0xe0000000, &v, 2, false));
	ck_assert(!io_bus_access(b, 0xe0000000, &v, 4, true));
	ck_assert(!io_bus_access(b, 0xd0000020, &v, 1, true));

	/* After unregistering, the range is gone. */
	ck_assert_int_eq(io_bus_unregister(b, 0xd0000000, &a), 0);
	v = 0;
	ck_assert(!io_bus_access(b, 0xd0000004, &v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	ck_assert(io_bus_access(b, 0xd0000014, &v, 4, false));
	ck_assert_int_eq(io_bus_unregister(b, 0xd0000010, &c), 0);
	ck_assert_uint_eq(b->n, 0);
}
END_TEST

START_TEST(test_iobus_partial_ops)
{
	struct io_bus *b = &vm.pio;
	struct rec w = { 0 }, r = { 0 };
	uint32_t v = 0;

	ck_assert_int_eq(io_bus_register(b, 0x500, 4, &wo_ops, &w), 0);
	ck_assert_int_eq(io_bus_register(b, 0x504, 4, &ro_ops, &r), 0);
	/* No read handler: claimed, but reads all-ones. */
	ck_assert(io_bus_access(b, 0x500, &v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	ck_assert_uint_eq(w.reads, 0);
	/* No write handler: claimed and dropped. */
	v = 0xdead;
	ck_assert(io_bus_access(b, 0x504, &v, 2, true));
	ck_assert_uint_eq(r.writes, 0);
	ck_assert_uint_eq(r.mem[0], 0);
}
END_TEST

START_TEST(test_iobus_full)
{
	struct io_bus *b = &vm.pio;
	struct rec a = { 0 };
	uint8_t v;
	int i;

	for (i = 0; i < IO_BUS_MAX; i++)
		ck_assert_int_eq(io_bus_register(b, 0x1000 + 16 * i, 16, &rec_ops, &a), 0);
	ck_assert_int_eq(io_bus_register(b, 0x8000, 1, &rec_ops, &a), -ENOSPC);
	ck_assert_int_eq(io_bus_register(b, 0x1000, 1, &rec_ops, &a), -EBUSY);
	/* Every one of them still dispatches. */
	for (i = 0; i < IO_BUS_MAX; i++) {
		ck_assert(io_bus_access(b, 0x1000 + 16 * i + 15, &v, 1, false));
		ck_assert_uint_eq(a.off, 15);
	}
	ck_assert_int_eq(io_bus_unregister(b, 0x1000 + 16 * 7, &a), 0);
	ck_assert(!io_bus_access(b, 0x1000 + 16 * 7, &v, 1, false));
	ck_assert_int_eq(io_bus_register(b, 0x8000, 1, &rec_ops, &a), 0);
	ck_assert_int_eq(io_bus_register(b, 0x8001, 1, &rec_ops, &a), -ENOSPC);
	ck_assert(io_bus_access(b, 0x1000 + 16 * 63, &v, 1, false));
	ck_assert(io_bus_access(b, 0x8000, &v, 1, false));
}
END_TEST

/* ---- PCI ---- */

struct tdev {
	struct pci_dev dev;
	struct rec bar0, bar1, bar3;
	unsigned int released, moved;
	unsigned int moved_bar;
	uint64_t moved_to;
};

static void tdev_release(struct pci_dev *dev)
{
	((struct tdev *)dev)->released++;
}

static void tdev_moved(struct pci_dev *dev, unsigned int bar, uint64_t addr)
{
	struct tdev *t = (struct tdev *)dev;

	t->moved++;
	t->moved_bar = bar;
	t->moved_to = addr;
}

/* BAR0: 4 KiB MEM32; BAR1/2: 1 MiB 64-bit prefetchable; BAR3: 32 bytes of I/O. */
static void tdev_init(struct tdev *t)
{
	memset(t, 0, sizeof(*t));
	pci_dev_init(&t->dev, 0x1af4, 0x1042, 0x010000, 1);
	pci_dev_set_bar(&t->dev, 0, PCI_BAR_MEM32, false, 4096, &rec_ops, &t->bar0);
	pci_dev_set_bar(&t->dev, 1, PCI_BAR_MEM64, true, 1 * MiB, &rec_ops, &t->bar1);
	pci_dev_set_bar(&t->dev, 3, PCI_BAR_IO, false, 32, &rec_ops, &t->bar3);
	t->dev.release = tdev_release;
	t->dev.bar_moved = tdev_moved;
}

static struct pci_bus *bus;
static struct tdev td;

static void pci_setup(void)
{
	vm_setup();
	bus = pci_bus_create(&vm, FOUR_GIB, 1ULL << 30);
	ck_assert_ptr_nonnull(bus);
	vm.pci = bus;
}

static void pci_teardown(void)
{
	pci_bus_destroy(bus);
	bus = NULL;
	vm_teardown();
}

static uint32_t cfg32(unsigned int slot, unsigned int off)
{
	return pci_cfg_read(bus, slot, off, 4);
}

static uint64_t bar64(unsigned int slot, unsigned int bar)
{
	return (cfg32(slot, PCI_BAR0 + 4 * bar) & ~0xfULL) |
	       (uint64_t)cfg32(slot, PCI_BAR0 + 4 * bar + 4) << 32;
}

START_TEST(test_pci_host_bridge)
{
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_VENDOR_ID, 2), 0x1b36);
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_DEVICE_ID, 2), 0x0008);
	ck_assert_uint_eq(cfg32(0, PCI_VENDOR_ID), 0x00081b36);
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_CLASS_PROG + 1, 2), 0x0600);
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_CLASS_PROG, 1), 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_HEADER_TYPE, 1), 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 0, PCI_STATUS, 2) & PCI_STATUS_CAPS, 0);
	ck_assert_ptr_eq(bus->devs[0], &bus->host_bridge);
	/* Empty slots and impossible ones read all-ones. */
	ck_assert_uint_eq(cfg32(1, 0), 0xffffffff);
	ck_assert_uint_eq(cfg32(31, 0), 0xffffffff);
	ck_assert_uint_eq(cfg32(32, 0), 0xffffffff);
	ck_assert_uint_eq(pci_cfg_read(bus, 5, 2, 2), 0xffffffff);
	pci_cfg_write(bus, 5, PCI_COMMAND, 2, 0xffff); /* nobody there: nothing happens */
	pci_cfg_write(bus, 40, PCI_COMMAND, 2, 0xffff);
	ck_assert_uint_eq(cfg32(5, 0), 0xffffffff);
}
END_TEST

START_TEST(test_pci_bars_assigned)
{
	uint32_t lo0, lo1, lo3;
	uint64_t a0, a1, a3;

	tdev_init(&td);
	ck_assert_int_eq(pci_register(bus, &td.dev), 0);
	ck_assert_uint_eq(td.dev.slot, 1);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_VENDOR_ID, 2), 0x1af4);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_DEVICE_ID, 2), 0x1042);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_REVISION_ID, 1), 1);
	ck_assert_uint_eq(cfg32(1, PCI_REVISION_ID) >> 8, 0x010000);
	/* Decoding on, as firmware leaves it. */
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_COMMAND, 2), PCI_CMD_IO | PCI_CMD_MEM);

	lo0 = cfg32(1, PCI_BAR0);
	lo1 = cfg32(1, PCI_BAR0 + 4);
	lo3 = cfg32(1, PCI_BAR0 + 12);
	ck_assert_uint_eq(lo0 & 0xf, 0);   /* MEM32, not prefetchable */
	ck_assert_uint_eq(lo1 & 0xf, 0xc); /* MEM64, prefetchable */
	ck_assert_uint_eq(lo3 & 0x3, 0x1); /* I/O */
	ck_assert_uint_eq(cfg32(1, PCI_BAR0 + 16), 0);
	ck_assert_uint_eq(cfg32(1, PCI_BAR0 + 20), 0);

	a0 = lo0 & ~0xfU;
	ck_assert_uint_ge(a0, PCI_MMIO32_BASE);
	ck_assert_uint_le(a0 + 4096, PCI_MMIO32_BASE + PCI_MMIO32_SIZE);
	ck_assert_uint_eq(a0 % 4096, 0);
	a1 = bar64(1, 1);
	ck_assert_uint_ge(a1, FOUR_GIB);
	ck_assert_uint_le(a1 + MiB, FOUR_GIB + GiB);
	ck_assert_uint_eq(a1 % MiB, 0);
	a3 = lo3 & ~3U;
	ck_assert_uint_ge(a3, PCI_IO_BASE);
	ck_assert_uint_le(a3 + 32, PCI_IO_BASE + PCI_IO_SIZE);
	ck_assert_uint_eq(a3 % 32, 0);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, a0);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, a1);
	ck_assert_uint_eq(td.dev.bar[3].mapped_at, a3);
	ck_assert_uint_eq(td.moved, 3); /* each BAR reported once */

	/* The BARs reach the device's handlers. */
	outl(&vm.mmio, a0 + 8, 0xcafef00d);
	ck_assert_uint_eq(td.bar0.writes, 1);
	ck_assert_uint_eq(td.bar0.off, 8);
	ck_assert_uint_eq(inl(&vm.mmio, a0 + 8), 0xcafef00d);
	outl(&vm.mmio, a1 + MiB - 4, 0x1234);
	ck_assert_uint_eq(td.bar1.off, MiB - 4);
	ck_assert_uint_eq(td.bar1.writes, 1);
	outb(&vm.pio, a3 + 31, 0x5a);
	ck_assert_uint_eq(td.bar3.off, 31);
	ck_assert_uint_eq(inb(&vm.pio, a3 + 31), 0x5a);
	/* Just past each BAR is nothing. */
	ck_assert(!io_bus_access(&vm.mmio, a0 + 4096, &lo3, 4, false));
	ck_assert(!io_bus_access(&vm.pio, a3 + 32, &lo3, 1, false));
	ck_assert(!io_bus_access(&vm.mmio, a1 + MiB, &lo3, 4, false));

	/* A second device's BARs do not overlap and keep their alignment. */
	{
		struct tdev t2;

		tdev_init(&t2);
		pci_dev_set_bar(&t2.dev, 0, PCI_BAR_MEM32, false, 64 * 1024, &rec_ops, &t2.bar0);
		ck_assert_int_eq(pci_register(bus, &t2.dev), 0);
		ck_assert_uint_eq(t2.dev.slot, 2);
		ck_assert_uint_eq(t2.dev.bar[0].mapped_at % (64 * 1024), 0);
		ck_assert_uint_ge(t2.dev.bar[0].mapped_at, a0 + 4096);
		ck_assert_uint_ge(t2.dev.bar[1].mapped_at, a1 + MiB);
		ck_assert_uint_ge(t2.dev.bar[3].mapped_at, a3 + 32);
		ck_assert_uint_eq(t2.dev.bar[3].mapped_at % 32, 0);
		/* Taken off the bus before it goes out of scope. */
		t2.dev.release = NULL;
		pci_cfg_write(bus, 2, PCI_COMMAND, 2, 0);
		ck_assert_uint_eq(t2.dev.bar[0].mapped_at, 0);
		ck_assert_uint_eq(t2.dev.bar[3].mapped_at, 0);
		bus->devs[2] = NULL;
	}
}
END_TEST

START_TEST(test_pci_bar_sizing)
{
	uint32_t lo0, lo1, hi1, lo3;

	tdev_init(&td);
	ck_assert_int_eq(pci_register(bus, &td.dev), 0);
	lo0 = cfg32(1, 0x10);
	lo1 = cfg32(1, 0x14);
	hi1 = cfg32(1, 0x18);
	lo3 = cfg32(1, 0x1c);

	/* As Linux does it: decoding off, all-ones, read back, restore. */
	pci_cfg_write(bus, 1, PCI_COMMAND, 2, 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_COMMAND, 2), 0);
	pci_cfg_write(bus, 1, 0x10, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, 0x10), 0xfffff000);
	pci_cfg_write(bus, 1, 0x14, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, 0x14), 0xfff0000c);
	pci_cfg_write(bus, 1, 0x18, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, 0x18), 0xffffffff);
	pci_cfg_write(bus, 1, 0x1c, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, 0x1c) & 0xffff, 0xffe1);
	ck_assert_uint_eq(cfg32(1, 0x1c) & 3, 1);
	/* Unimplemented BARs stay zero. */
	pci_cfg_write(bus, 1, 0x20, 4, 0xffffffff);
	pci_cfg_write(bus, 1, 0x24, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, 0x20), 0);
	ck_assert_uint_eq(cfg32(1, 0x24), 0);
	/* Nothing was mapped meanwhile. */
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, 0);
	ck_assert_uint_eq(td.dev.bar[3].mapped_at, 0);
	ck_assert_uint_eq(vm.mmio.n, 0);

	pci_cfg_write(bus, 1, 0x10, 4, lo0);
	pci_cfg_write(bus, 1, 0x14, 4, lo1);
	pci_cfg_write(bus, 1, 0x18, 4, hi1);
	pci_cfg_write(bus, 1, 0x1c, 4, lo3);
	ck_assert_uint_eq(cfg32(1, 0x10), lo0);
	ck_assert_uint_eq(cfg32(1, 0x14), lo1);
	ck_assert_uint_eq(cfg32(1, 0x18), hi1);
	ck_assert_uint_eq(cfg32(1, 0x1c), lo3);
	pci_cfg_write(bus, 1, PCI_COMMAND, 2, PCI_CMD_IO | PCI_CMD_MEM);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, lo0);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, (uint64_t)hi1 << 32 | (lo1 & ~0xfU));
	ck_assert_uint_eq(td.dev.bar[3].mapped_at, lo3 & ~3U);
	ck_assert_uint_eq(inl(&vm.mmio, lo0), 0);

	/* Flag bits are read-only; low address bits below the size too. */
	pci_cfg_write(bus, 1, 0x10, 4, lo0 | 0xfff);
	ck_assert_uint_eq(cfg32(1, 0x10), lo0);
	pci_cfg_write(bus, 1, 0x14, 4, lo1 & ~0xfU);
	ck_assert_uint_eq(cfg32(1, 0x14), lo1);
	/* Byte-wide BAR writes work as well. */
	pci_cfg_write(bus, 1, 0x13, 1, 0xff);
	ck_assert_uint_eq(cfg32(1, 0x10), lo0 | 0xff000000);
	pci_cfg_write(bus, 1, 0x13, 1, lo0 >> 24);
	ck_assert_uint_eq(cfg32(1, 0x10), lo0);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, lo0);
}
END_TEST

START_TEST(test_pci_bar_move)
{
	uint64_t a0, a1, n0, n1;
	uint32_t v;

	tdev_init(&td);
	ck_assert_int_eq(pci_register(bus, &td.dev), 0);
	a0 = td.dev.bar[0].mapped_at;
	a1 = td.dev.bar[1].mapped_at;

	/* Move BAR0 (decoding on): the old address goes dead, the new one answers. */
	n0 = 0xd0000000;
	td.moved = 0;
	pci_cfg_write(bus, 1, 0x10, 4, (uint32_t)n0);
	ck_assert_uint_eq(cfg32(1, 0x10), n0);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, n0);
	ck_assert_uint_eq(td.moved, 1);
	ck_assert_uint_eq(td.moved_bar, 0);
	ck_assert_uint_eq(td.moved_to, n0);
	ck_assert(!io_bus_access(&vm.mmio, a0, &v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	outl(&vm.mmio, n0 + 0x10, 77);
	ck_assert_uint_eq(td.bar0.off, 0x10);
	ck_assert_uint_eq(inl(&vm.mmio, n0 + 0x10), 77);

	/* Move the 64-bit BAR, high half included. */
	n1 = 0x2340000000ULL;
	pci_cfg_write(bus, 1, 0x14, 4, (uint32_t)n1);
	pci_cfg_write(bus, 1, 0x18, 4, (uint32_t)(n1 >> 32));
	ck_assert_uint_eq(bar64(1, 1), n1);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, n1);
	ck_assert(!io_bus_access(&vm.mmio, a1, &v, 4, false));
	outl(&vm.mmio, n1 + 4, 5);
	ck_assert_uint_eq(td.bar1.off, 4);
	ck_assert_uint_eq(td.bar1.writes, 1);

	/* Memory decoding off: both memory BARs unmapped, the I/O BAR stays. */
	td.moved = 0;
	pci_cfg_write(bus, 1, PCI_COMMAND, 2, PCI_CMD_IO);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, 0);
	ck_assert_uint_ne(td.dev.bar[3].mapped_at, 0);
	ck_assert_uint_eq(td.moved, 2);
	ck_assert_uint_eq(td.moved_to, 0);
	ck_assert(!io_bus_access(&vm.mmio, n0, &v, 4, false));
	ck_assert(!io_bus_access(&vm.mmio, n1, &v, 4, false));
	ck_assert(io_bus_access(&vm.pio, td.dev.bar[3].mapped_at, &v, 1, false));
	ck_assert_uint_eq(vm.mmio.n, 0);
	/* Moving a BAR while decoding is off maps nothing. */
	pci_cfg_write(bus, 1, 0x10, 4, 0xd0010000);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0);
	ck_assert_uint_eq(vm.mmio.n, 0);

	/* I/O off too, then everything back on at the latest addresses. */
	pci_cfg_write(bus, 1, PCI_COMMAND, 2, 0);
	ck_assert_uint_eq(td.dev.bar[3].mapped_at, 0);
	ck_assert_uint_eq(vm.pio.n, 1); /* just conf1 */
	pci_cfg_write(bus, 1, PCI_COMMAND, 1, PCI_CMD_IO | PCI_CMD_MEM);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0xd0010000);
	ck_assert_uint_eq(td.dev.bar[1].mapped_at, n1);
	ck_assert_uint_ne(td.dev.bar[3].mapped_at, 0);
	ck_assert(io_bus_access(&vm.mmio, 0xd0010000, &v, 4, false));

	/* A BAR moved over another device's range stays unmapped. */
	{
		struct rec other = { 0 };

		ck_assert_int_eq(io_bus_register(&vm.mmio, 0xd8000000, 0x1000, &rec_ops, &other),
				 0);
		pci_cfg_write(bus, 1, 0x10, 4, 0xd8000000);
		ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0);
		outl(&vm.mmio, 0xd8000000, 1);
		ck_assert_uint_eq(other.writes, 1);
		ck_assert_uint_eq(td.bar0.writes, 1);
		pci_cfg_write(bus, 1, 0x10, 4, 0xd8001000);
		ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0xd8001000);
		ck_assert_int_eq(io_bus_unregister(&vm.mmio, 0xd8000000, &other), 0);
	}
}
END_TEST

START_TEST(test_pci_cfg_write_masks)
{
	uint8_t before[PCI_CFG_SIZE];

	tdev_init(&td);
	ck_assert_int_eq(pci_register(bus, &td.dev), 0);
	/* IDs, class, status are read-only; command and interrupt line are not. */
	pci_cfg_write(bus, 1, PCI_VENDOR_ID, 4, 0x12345678);
	ck_assert_uint_eq(cfg32(1, 0), 0x10421af4);
	pci_cfg_write(bus, 1, PCI_REVISION_ID, 4, 0xffffffff);
	ck_assert_uint_eq(cfg32(1, PCI_REVISION_ID), 0x01000001);
	pci_cfg_write(bus, 1, PCI_COMMAND, 4, 0xffffffff);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_COMMAND, 2),
			  PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_STATUS, 2), 0);
	pci_cfg_write(bus, 1, PCI_INT_LINE, 1, 11);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_INT_LINE, 1), 11);
	pci_cfg_write(bus, 1, PCI_INT_PIN, 1, 3);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_INT_PIN, 1), 0);

	/* Out of range offsets and lengths are ignored / read all-ones. */
	memcpy(before, td.dev.cfg, sizeof(before));
	pci_cfg_write(bus, 1, 0x100, 4, 0);
	pci_cfg_write(bus, 1, 0xfe, 4, 0);
	pci_cfg_write(bus, 1, 0xffff, 1, 0);
	pci_cfg_write(bus, 1, UINT32_MAX, 4, 0);
	ck_assert_mem_eq(before, td.dev.cfg, sizeof(before));
	ck_assert_uint_eq(pci_cfg_read(bus, 1, 0x100, 4), 0xffffffff);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, 0xfd, 4), 0xffffffff);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, UINT32_MAX, 1), 0xffffffff);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, 0xfc, 4), 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, 0xff, 1), 0);
}
END_TEST

START_TEST(test_pci_caps)
{
	struct pci_dev d;
	unsigned int off, n;
	int ret;

	pci_dev_init(&d, 0x1af4, 0x1000, 0x020000, 0);
	ck_assert_uint_eq(d.cfg[PCI_CAP_PTR], 0);
	ck_assert_uint_eq(d.cfg[PCI_STATUS] & PCI_STATUS_CAPS, 0);

	ck_assert_int_eq(pci_dev_add_cap(&d, 0x11, 12), 0x40); /* MSI-X */
	ck_assert_uint_eq(d.cfg[PCI_CAP_PTR], 0x40);
	ck_assert_uint_eq(d.cfg[PCI_STATUS] & PCI_STATUS_CAPS, PCI_STATUS_CAPS);
	ck_assert_uint_eq(d.cfg[0x40], 0x11);
	ck_assert_uint_eq(d.cfg[0x41], 0);
	/* Lengths round up to dwords, and at least 4. */
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x09, 14), 0x4c);
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x09, 1), 0x5c);
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x09, 0), 0x60);
	ck_assert_uint_eq(d.cfg[0x41], 0x4c);
	ck_assert_uint_eq(d.cfg[0x4d], 0x5c);
	ck_assert_uint_eq(d.cfg[0x5d], 0x60);
	ck_assert_uint_eq(d.cfg[0x61], 0);
	ck_assert_uint_eq(d.cfg[PCI_CAP_PTR], 0x40); /* the head does not move */

	/* Fill the rest of the 256 bytes exactly, then no more. */
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x10, 0x98), 0x64);
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x05, 4), 0xfc);
	ck_assert_int_eq(pci_dev_add_cap(&d, 0x05, 1), -ENOSPC);
	ret = pci_dev_add_cap(&d, 0x05, 0x200);
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_uint_eq(d.cfg[0xfd], 0); /* the list still ends at the last one */

	/* Walk it through config space as a guest would. */
	ck_assert_int_eq(pci_register(bus, &d), 0);
	off = pci_cfg_read(bus, 1, PCI_CAP_PTR, 1);
	for (n = 0; off && n < 64; n++) {
		ck_assert_uint_ge(off, 0x40);
		ck_assert_uint_eq(off % 4, 0);
		off = pci_cfg_read(bus, 1, off + 1, 1);
	}
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_STATUS, 2) & PCI_STATUS_CAPS, PCI_STATUS_CAPS);
	bus->devs[1] = NULL; /* on the stack */
}
END_TEST

static uint32_t conf_addr(unsigned int busno, unsigned int slot, unsigned int fn, unsigned int off)
{
	return 0x80000000U | busno << 16 | slot << 11 | fn << 8 | off;
}

START_TEST(test_pci_conf1)
{
	struct io_bus *p = &vm.pio;
	uint16_t w = 0;
	uint32_t v;
	uint8_t b;

	tdev_init(&td);
	ck_assert_int_eq(pci_register(bus, &td.dev), 0);

	/* The address register reads back. */
	outl(p, 0xcf8, conf_addr(0, 1, 0, 0));
	ck_assert_uint_eq(inl(p, 0xcf8), conf_addr(0, 1, 0, 0));
	ck_assert_uint_eq(inl(p, 0xcfc), 0x10421af4);
	ck_assert(io_bus_access(p, 0xcfc, &w, 2, false));
	ck_assert_uint_eq(w, 0x1af4);
	ck_assert(io_bus_access(p, 0xcfe, &w, 2, false));
	ck_assert_uint_eq(w, 0x1042);
	ck_assert_uint_eq(inb(p, 0xcfd), 0x1a);
	ck_assert_uint_eq(inb(p, 0xcff), 0x10);
	/* A 4-byte access at 0xcfe runs off the port range. */
	ck_assert(!io_bus_access(p, 0xcfe, &v, 4, false));

	/* Slot 0: the host bridge, class at dword 2. */
	outl(p, 0xcf8, conf_addr(0, 0, 0, 8));
	ck_assert_uint_eq(inl(p, 0xcfc) >> 16, 0x0600);
	/* The low two address bits are ignored: the dword is what counts. */
	outl(p, 0xcf8, conf_addr(0, 0, 0, 0) | 3);
	ck_assert_uint_eq(inl(p, 0xcfc), 0x00081b36);

	/* Disabled, other buses and functions, empty slots: all-ones. */
	outl(p, 0xcf8, conf_addr(0, 1, 0, 0) & ~0x80000000U);
	ck_assert_uint_eq(inl(p, 0xcfc), 0xffffffff);
	outl(p, 0xcf8, conf_addr(1, 1, 0, 0));
	ck_assert_uint_eq(inl(p, 0xcfc), 0xffffffff);
	outl(p, 0xcf8, conf_addr(0, 1, 1, 0));
	ck_assert_uint_eq(inl(p, 0xcfc), 0xffffffff);
	outl(p, 0xcf8, conf_addr(0, 9, 0, 0));
	ck_assert_uint_eq(inl(p, 0xcfc), 0xffffffff);
	/* Writes there go nowhere. */
	outl(p, 0xcf8, conf_addr(0, 1, 1, PCI_INT_LINE));
	outb(p, 0xcfc, 9);
	ck_assert_uint_eq(td.dev.cfg[PCI_INT_LINE], 0);

	/* Writes through the data port, at every byte lane. */
	outl(p, 0xcf8, conf_addr(0, 1, 0, PCI_INT_LINE));
	outb(p, 0xcfc, 10);
	ck_assert_uint_eq(td.dev.cfg[PCI_INT_LINE], 10);
	outl(p, 0xcf8, conf_addr(0, 1, 0, PCI_COMMAND));
	w = PCI_CMD_IO;
	ck_assert(io_bus_access(p, 0xcfc, &w, 2, true));
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0);
	ck_assert_uint_ne(td.dev.bar[3].mapped_at, 0);
	outl(p, 0xcf8, conf_addr(0, 1, 0, PCI_BAR0));
	outl(p, 0xcfc, 0xffffffff);
	ck_assert_uint_eq(inl(p, 0xcfc), 0xfffff000);
	outb(p, 0xcfe, 0x00); /* bits 23:16 */
	outb(p, 0xcff, 0xd1); /* bits 31:24 */
	ck_assert_uint_eq(inl(p, 0xcfc), 0xd100f000);
	outl(p, 0xcf8, conf_addr(0, 1, 0, PCI_COMMAND));
	outb(p, 0xcfc, PCI_CMD_IO | PCI_CMD_MEM);
	ck_assert_uint_eq(td.dev.bar[0].mapped_at, 0xd100f000);

	/* Partial accesses to the address register do not change it. */
	w = 0;
	ck_assert(io_bus_access(p, 0xcf8, &w, 2, true));
	outb(p, 0xcf8, 0);
	ck_assert_uint_eq(inl(p, 0xcf8), conf_addr(0, 1, 0, PCI_COMMAND));
	ck_assert(io_bus_access(p, 0xcf8, &w, 2, false));
	ck_assert_uint_eq(w, 0xffff);
	/* 0xcf9 reads as the reset control register (0). */
	ck_assert_uint_eq(inb(p, 0xcf9), 0);
	b = 0;
	ck_assert(io_bus_access(p, 0xcfa, &b, 1, false));
	ck_assert_uint_eq(b, 0xff);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);
}
END_TEST

START_TEST(test_pci_reset_cf9)
{
	/* Only RST_CPU (bit 2) resets; SYS_RST alone does nothing. */
	outb(&vm.pio, PORT_RESET_CF9, 0x02);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);
	ck_assert_uint_eq(stop_signals(), 0);
	outb(&vm.pio, PORT_RESET_CF9, ACPI_RESET_VALUE);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_REBOOT);
	ck_assert_uint_eq(stop_signals(), 1);
	/* The address register is not the reset register. */
	ck_assert_uint_eq(inl(&vm.pio, 0xcf8), 0);
}
END_TEST

START_TEST(test_pci_full_and_release)
{
	static struct tdev devs[PCI_MAX_DEVS];
	struct pci_bus *b2;
	unsigned int i;

	for (i = 1; i < PCI_MAX_DEVS; i++) {
		tdev_init(&devs[i]);
		ck_assert_int_eq(pci_register(bus, &devs[i].dev), 0);
		ck_assert_uint_eq(devs[i].dev.slot, i);
	}
	tdev_init(&devs[0]);
	ck_assert_int_eq(pci_register(bus, &devs[0].dev), -ENOSPC);
	ck_assert_uint_eq(vm.mmio.n, 2 * (PCI_MAX_DEVS - 1));
	ck_assert_uint_eq(vm.pio.n, PCI_MAX_DEVS); /* conf1 + I/O BARs */

	/* Destroy releases every device once (not the host bridge) and unmaps all. */
	pci_bus_destroy(bus);
	bus = NULL;
	for (i = 1; i < PCI_MAX_DEVS; i++)
		ck_assert_uint_eq(devs[i].released, 1);
	ck_assert_uint_eq(devs[0].released, 0);
	ck_assert_uint_eq(vm.mmio.n, 0);
	ck_assert_uint_eq(vm.pio.n, 0);

	/* A fresh bus can be created on the same VM again. */
	b2 = pci_bus_create(&vm, FOUR_GIB, GiB);
	ck_assert_ptr_nonnull(b2);
	/* ...and not twice: conf1 is taken. */
	ck_assert_ptr_null(pci_bus_create(&vm, FOUR_GIB, GiB));
	bus = b2;
}
END_TEST

START_TEST(test_pci_window_full)
{
	struct tdev t;

	/* A BAR larger than the 64-bit window cannot be placed. */
	tdev_init(&t);
	pci_dev_set_bar(&t.dev, 1, PCI_BAR_MEM64, true, 2 * GiB, &rec_ops, &t.bar1);
	ck_assert_int_eq(pci_register(bus, &t.dev), -ENOSPC);
	ck_assert_ptr_null(bus->devs[1]);
	/* An I/O BAR larger than the I/O window neither. */
	tdev_init(&t);
	pci_dev_set_bar(&t.dev, 3, PCI_BAR_IO, false, 0x10000, &rec_ops, &t.bar3);
	ck_assert_int_eq(pci_register(bus, &t.dev), -ENOSPC);
	ck_assert_ptr_null(bus->devs[1]);
}
END_TEST

START_TEST(test_pvpanic)
{
	uint64_t a;

	ck_assert_int_eq(pvpanic_init(&vm), 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_VENDOR_ID, 4), 0x00111b36);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_CLASS_PROG + 1, 2), 0x0880);
	a = bus->devs[1]->bar[0].mapped_at;
	ck_assert_uint_ne(a, 0);
	ck_assert_uint_eq(inb(&vm.mmio, a), 3); /* PANICKED | CRASH_LOADED supported */
	log_verbosity = LOG_ERR;		/* the expected warning below */
	outb(&vm.mmio, a, 2);			/* crash kernel loaded: no stop */
	log_verbosity = LOG_WARN;
	outb(&vm.mmio, a + 1, 1); /* wrong register */
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);
	outb(&vm.mmio, a, 1);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_PANIC);
	/* pci_bus_destroy (teardown) frees it: LSan checks. */
}
END_TEST

/* ---- 8250 UART ---- */

#define COM 0x3f8

static struct serial *ser;
static int pfd[2];

static void serial_setup(void)
{
	vm_setup();
	ck_assert_int_eq(pipe2(pfd, O_NONBLOCK | O_CLOEXEC), 0);
	ser = serial_create(&vm, COM, IRQ_COM1, pfd[1]);
	ck_assert_ptr_nonnull(ser);
}

static void serial_teardown(void)
{
	serial_destroy(ser);
	ser = NULL;
	close(pfd[0]);
	close(pfd[1]);
	vm_teardown();
}

static uint8_t uin(unsigned int reg)
{
	return inb(&vm.pio, COM + reg);
}

static void uout(unsigned int reg, uint8_t v)
{
	outb(&vm.pio, COM + reg, v);
}

static size_t drain(char *buf, size_t max)
{
	ssize_t n = read(pfd[0], buf, max);

	return n < 0 ? 0 : (size_t)n;
}

START_TEST(test_serial_tx)
{
	char buf[16];
	uint16_t w = 0;

	ck_assert_uint_eq(uin(5), 0x60); /* THRE | TEMT */
	uout(0, 'h');
	uout(0, 'i');
	uout(0, '\n');
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 3);
	ck_assert_mem_eq(buf, "hi\n", 3);
	ck_assert_uint_eq(uin(5), 0x60);
	/* Only byte accesses are meaningful. */
	w = 'x';
	ck_assert(io_bus_access(&vm.pio, COM, &w, 2, true));
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 0);
	ck_assert(io_bus_access(&vm.pio, COM + 5, &w, 2, false));
	ck_assert_uint_eq(w, 0xffff);
	/* The port range is 8 wide. */
	ck_assert(!io_bus_access(&vm.pio, COM + 8, &w, 1, false));
	ck_assert(!io_bus_access(&vm.pio, COM + 7, &w, 2, false));
	/* Scratch register. */
	uout(7, 0x5a);
	ck_assert_uint_eq(uin(7), 0x5a);
	/* MSR without loopback: carrier, DSR, CTS. */
	ck_assert_uint_eq(uin(6), 0xb0);
	/* Writes to LSR/MSR are ignored. */
	uout(5, 0);
	uout(6, 0);
	ck_assert_uint_eq(uin(5), 0x60);
	ck_assert_uint_eq(uin(6), 0xb0);
	/* The port is taken. */
	ck_assert_ptr_null(serial_create(&vm, COM, IRQ_COM1, -1));
}
END_TEST

START_TEST(test_serial_rx)
{
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"abc", 3), 3);
	ck_assert_uint_eq(uin(5), 0x61); /* DR */
	ck_assert_uint_eq(uin(0), 'a');
	ck_assert_uint_eq(uin(0), 'b');
	ck_assert_uint_eq(uin(5) & 1, 1);
	ck_assert_uint_eq(uin(0), 'c');
	ck_assert_uint_eq(uin(5), 0x60);
	ck_assert_uint_eq(uin(0), 0); /* empty */
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"", 0), 0);
	ck_assert_uint_eq(uin(5), 0x60);
}
END_TEST

/* Read exactly @len bytes from @fd within 2 s. */
static void read_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		ck_assert_msg(poll(&p, 1, 2000) == 1, "only %zu of %zu bytes", got, len);
		n = read(fd, buf + got, len - got);
		ck_assert_int_gt(n, 0);
		got += n;
	}
}

/* [console] serial = api: scrollback to a new client, live output, keys to the UART, one
 * client at a time, and only the last 64 KiB kept. */
START_TEST(test_console_api)
{
	struct console_api *c;
	char buf[70000];
	int fd, fd2;

	ck_assert_int_eq(console_api_create(&c), 0);
	ser = serial_create(&vm, COM, IRQ_COM1, console_api_out_fd(c));
	ck_assert_ptr_nonnull(ser);
	vm.serial = ser;
	ck_assert_int_eq(console_api_start(c, &vm), 0);
	uout(0, 'h');
	uout(0, 'i');
	ck_assert_int_eq(console_api_attach(c, &fd), 0);
	read_exact(fd, buf, 2);
	ck_assert_mem_eq(buf, "hi", 2);
	ck_assert_int_eq(console_api_attach(c, &fd2), -EBUSY);
	uout(0, '!');
	read_exact(fd, buf, 1);
	ck_assert_int_eq(buf[0], '!');
	/* Keys reach the guest's receive buffer. */
	ck_assert_int_eq(write(fd, "ls\n", 3), 3);
	for (int i = 0; i < 200 && !(uin(5) & 1); i++)
		usleep(10000);
	ck_assert_uint_eq(uin(0), 'l');
	ck_assert_uint_eq(uin(0), 's');
	ck_assert_uint_eq(uin(0), '\n');
	/* Gone: the next client gets everything kept so far. */
	close(fd);
	for (int i = 0; i < 200 && console_api_attach(c, &fd) == -EBUSY; i++)
		usleep(10000);
	read_exact(fd, buf, 3);
	ck_assert_mem_eq(buf, "hi!", 3);
	close(fd);
	/* More than the ring: a client that comes later sees only the last 64 KiB. */
	for (int i = 0; i < 70000; i++) {
		uout(0, 'a' + i % 26);
		if (i % 4096 == 0) /* the pipe holds 64 KiB: let the thread take it */
			usleep(2000);
	}
	usleep(50000);
	for (int i = 0; i < 200 && console_api_attach(c, &fd) == -EBUSY; i++)
		usleep(10000);
	read_exact(fd, buf, 65536);
	ck_assert_int_eq(buf[65535], 'a' + 69999 % 26);
	ck_assert_int_eq(buf[0], 'a' + (69999 - 65535) % 26);
	console_api_stop(c);
	/* Stopped: the client sees the end, new ones are refused. */
	ck_assert_int_eq(read(fd, buf, 1), 0);
	close(fd);
	ck_assert_int_eq(console_api_attach(c, &fd), -ESRCH);
	serial_destroy(ser);
	ser = NULL;
	console_api_destroy(c);
	vm.serial = NULL;
}
END_TEST

START_TEST(test_serial_iir)
{
	char buf[4];

	ck_assert_uint_eq(uin(2), 0x01); /* no interrupt */
	ck_assert_uint_eq(uin(1), 0);
	/* Enabling THRI with an empty THR raises it at once. */
	uout(1, 0x03);
	ck_assert_uint_eq(uin(1), 0x03);
	ck_assert_uint_eq(uin(2), 0x02);
	ck_assert_uint_eq(uin(2), 0x01); /* reading IIR acknowledged it */
	/* Received data outranks THRE. */
	serial_input(ser, (const uint8_t *)"z", 1);
	uout(0, '!');
	ck_assert_uint_eq(uin(2), 0x04);
	ck_assert_uint_eq(uin(2), 0x04); /* not acknowledged by IIR */
	ck_assert_uint_eq(uin(0), 'z');
	ck_assert_uint_eq(uin(2), 0x02);
	ck_assert_uint_eq(uin(2), 0x01);
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 1);
	/* RDI masked: data alone raises nothing. */
	uout(1, 0x02);
	serial_input(ser, (const uint8_t *)"y", 1);
	ck_assert_uint_eq(uin(2), 0x01);
	ck_assert_uint_eq(uin(1), 0x02);
	/* Only the low nibble of IER exists. */
	uout(1, 0xff);
	ck_assert_uint_eq(uin(1), 0x0f);
	ck_assert_uint_eq(uin(2), 0x04);

	/* FIFO enable shows in IIR bits 7:6; clearing the RX FIFO drops the data. */
	uout(2, 0x01);
	ck_assert_uint_eq(uin(2), 0xc4);
	uout(2, 0x03);
	ck_assert_uint_eq(uin(5), 0x60);
	ck_assert_uint_eq(uin(2), 0xc1);
	uout(2, 0x00);
	ck_assert_uint_eq(uin(2), 0x01);
}
END_TEST

START_TEST(test_serial_dlab)
{
	char buf[4];

	uout(1, 0x01);
	uout(3, 0x83); /* DLAB, 8N1 */
	ck_assert_uint_eq(uin(3), 0x83);
	uout(0, 0x0c); /* 9600 baud */
	uout(1, 0x00);
	ck_assert_uint_eq(uin(0), 0x0c);
	ck_assert_uint_eq(uin(1), 0x00);
	uout(1, 0x12);
	ck_assert_uint_eq(uin(1), 0x12);
	/* Divisor writes are not data. */
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 0);
	/* Input waits behind the latch. */
	serial_input(ser, (const uint8_t *)"q", 1);
	ck_assert_uint_eq(uin(0), 0x0c);
	uout(3, 0x03);
	ck_assert_uint_eq(uin(1), 0x01); /* IER kept */
	ck_assert_uint_eq(uin(0), 'q');
	uout(3, 0x83);
	ck_assert_uint_eq(uin(0), 0x0c);
	ck_assert_uint_eq(uin(1), 0x12);
	uout(3, 0x03);
}
END_TEST

START_TEST(test_serial_loopback)
{
	char buf[4];

	ck_assert_uint_eq(uin(4), 0x08); /* OUT2 at reset */
	uout(4, 0x10 | 0x0b);		 /* LOOP | OUT2 | RTS | DTR */
	ck_assert_uint_eq(uin(4), 0x1b);
	ck_assert_uint_eq(uin(6), 0xb0); /* DCD | DSR | CTS */
	uout(4, 0x10);
	ck_assert_uint_eq(uin(6), 0x00);
	uout(4, 0x10 | 0x04); /* OUT1 -> RI */
	ck_assert_uint_eq(uin(6), 0x40);
	uout(4, 0x10 | 0x02); /* RTS -> CTS */
	ck_assert_uint_eq(uin(6), 0x10);
	uout(4, 0x10 | 0x01); /* DTR -> DSR */
	ck_assert_uint_eq(uin(6), 0x20);
	uout(4, 0xff);
	ck_assert_uint_eq(uin(4), 0x1f);
	ck_assert_uint_eq(uin(6), 0xf0);

	/* THR comes back in RBR and never reaches the output. */
	uout(0, 'L');
	uout(0, 'b');
	ck_assert_uint_eq(uin(5), 0x61);
	ck_assert_uint_eq(uin(0), 'L');
	ck_assert_uint_eq(uin(0), 'b');
	ck_assert_uint_eq(uin(5), 0x60);
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 0);

	uout(4, 0x0b);
	ck_assert_uint_eq(uin(6), 0xb0);
	uout(0, 'o');
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 1);
	ck_assert_uint_eq(buf[0], 'o');
	ck_assert_uint_eq(uin(5), 0x60);
}
END_TEST

START_TEST(test_serial_rx_full)
{
	static uint8_t in[5000];
	unsigned int i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + i / 256);
	ck_assert_uint_eq(serial_input(ser, in, sizeof(in)), 4096);
	ck_assert_uint_eq(serial_input(ser, in, 1), 0);
	/* Loopback bytes are dropped when full, too. */
	uout(4, 0x10);
	uout(0, 0xee);
	uout(4, 0x08);
	ck_assert_uint_eq(uin(0), in[0]);
	ck_assert_uint_eq(serial_input(ser, in + 4096, 10), 1);
	for (i = 1; i < 4097; i++)
		ck_assert_uint_eq(uin(0), in[i]);
	ck_assert_uint_eq(uin(5), 0x60);
	/* The ring wraps around correctly. */
	ck_assert_uint_eq(serial_input(ser, in, 4000), 4000);
	for (i = 0; i < 3000; i++)
		ck_assert_uint_eq(uin(0), in[i]);
	ck_assert_uint_eq(serial_input(ser, in + 100, 3096), 3096);
	for (i = 3000; i < 4000; i++)
		ck_assert_uint_eq(uin(0), in[i]);
	for (i = 100; i < 3196; i++)
		ck_assert_uint_eq(uin(0), in[i]);
	ck_assert_uint_eq(uin(5), 0x60);
}
END_TEST

START_TEST(test_serial_discard)
{
	struct serial *s2 = serial_create(&vm, 0x2f8, 3, -1);

	ck_assert_ptr_nonnull(s2);
	outb(&vm.pio, 0x2f8, 'x'); /* goes nowhere, harmlessly */
	ck_assert_uint_eq(inb(&vm.pio, 0x2f8 + 5), 0x60);
	serial_destroy(s2);
	ck_assert(!io_bus_access(&vm.pio, 0x2f8, &(uint8_t){ 0 }, 1, false));
	serial_destroy(NULL);
}
END_TEST

/* ---- RTC, power and reset ports ---- */

static bool is_bcd(uint8_t v, unsigned int max)
{
	return (v & 0xf) <= 9 && (v >> 4) <= 9 && (unsigned int)((v >> 4) * 10 + (v & 0xf)) <= max;
}

static uint8_t cmos(uint8_t idx)
{
	outb(&vm.pio, PORT_CMOS_INDEX, idx);
	return inb(&vm.pio, PORT_CMOS_DATA);
}

START_TEST(test_rtc)
{
	struct rtc *r = rtc_create(&vm);
	uint8_t v;

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(cmos(0x0a), 0x26);
	ck_assert_uint_eq(cmos(0x0a) & 0x80, 0); /* never update-in-progress */
	ck_assert_uint_eq(cmos(0x0b), 0x02);	 /* 24 h, BCD */
	ck_assert_uint_eq(cmos(0x0c), 0);
	ck_assert_uint_eq(cmos(0x0d), 0x80);
	ck_assert_msg(is_bcd(cmos(0x00), 59), "seconds %#x", cmos(0x00));
	ck_assert_msg(is_bcd(cmos(0x02), 59), "minutes %#x", cmos(0x02));
	ck_assert_msg(is_bcd(cmos(0x04), 23), "hours %#x", cmos(0x04));
	v = cmos(0x06);
	ck_assert(is_bcd(v, 7) && v >= 1);
	v = cmos(0x07);
	ck_assert(is_bcd(v, 31) && v >= 1);
	v = cmos(0x08);
	ck_assert(is_bcd(v, 12) && v >= 1);
	ck_assert(is_bcd(cmos(0x09), 99));
	v = cmos(0x32);
	ck_assert_msg(v == 0x20 || v == 0x21, "century %#x", v);

	/* CMOS RAM above the clock stores what is written. */
	outb(&vm.pio, PORT_CMOS_INDEX, 0x0e);
	outb(&vm.pio, PORT_CMOS_DATA, 0x42);
	outb(&vm.pio, PORT_CMOS_INDEX, 0x7f);
	outb(&vm.pio, PORT_CMOS_DATA, 0x99);
	outb(&vm.pio, PORT_CMOS_INDEX, 0x80 | 0x10); /* NMI mask bit ignored */
	outb(&vm.pio, PORT_CMOS_DATA, 0x37);
	ck_assert_uint_eq(cmos(0x0e), 0x42);
	ck_assert_uint_eq(cmos(0x7f), 0x99);
	ck_assert_uint_eq(cmos(0x10), 0x37);
	ck_assert_uint_eq(cmos(0x90), 0x37);
	ck_assert_uint_eq(cmos(0x11), 0);
	/* The clock registers are the host's. */
	outb(&vm.pio, PORT_CMOS_INDEX, 0x0b);
	outb(&vm.pio, PORT_CMOS_DATA, 0x46);
	ck_assert_uint_eq(cmos(0x0b), 0x02);
	outb(&vm.pio, PORT_CMOS_INDEX, 0x0a);
	outb(&vm.pio, PORT_CMOS_DATA, 0xa6);
	ck_assert_uint_eq(cmos(0x0a), 0x26);
	outb(&vm.pio, PORT_CMOS_INDEX, 0x04);
	outb(&vm.pio, PORT_CMOS_DATA, 0x99);
	ck_assert(is_bcd(cmos(0x04), 23));
	/* The index port reads as all-ones. */
	ck_assert_uint_eq(inb(&vm.pio, PORT_CMOS_INDEX), 0xff);

	ck_assert_ptr_null(rtc_create(&vm)); /* ports taken */
	rtc_destroy(r);
	ck_assert(!io_bus_access(&vm.pio, PORT_CMOS_DATA, &v, 1, false));
	rtc_destroy(NULL);
}
END_TEST

/* ---- snapshot loads: every field within what a guest could have set ---- */

static char fdt[16384];

/* A tree holding @save's output under "/d"; returns that node. */
static int saved(int (*save)(void *dev, void *fdt, int node), void *dev)
{
	int n;

	ck_assert_int_eq(fdt_create_empty_tree(fdt, sizeof(fdt)), 0);
	n = fdt_add_subnode(fdt, 0, "d");
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(save(dev, fdt, n), 0);
	return n;
}

static int rtc_save_v(void *d, void *f, int n)
{
	return rtc_save(d, f, n);
}

static int serial_save_v(void *d, void *f, int n)
{
	return serial_save(d, f, n);
}

static int pci_save_v(void *d, void *f, int n)
{
	return pci_bus_save(d, f, n);
}

/*
 * The RTC's index selects a byte of its 128-byte RAM. A saved index above 0x7f
 * used to load, and the guest's next write to 0x71 landed past the array.
 */
START_TEST(test_rtc_load_bounds)
{
	struct rtc *r = rtc_create(&vm);
	static const uint64_t bad[] = { 0x80, 0x8e, 0xff, 0x100, ~0ULL };
	uint8_t ram[128];
	int n;

	ck_assert_ptr_nonnull(r);
	outb(&vm.pio, PORT_CMOS_INDEX, 0x20);
	outb(&vm.pio, PORT_CMOS_DATA, 0x5a);
	n = saved(rtc_save_v, r);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(fdt_setprop_u64(fdt, n, "index", bad[i]), 0);
		ck_assert_msg(rtc_load(r, fdt, n) == -EINVAL, "index %#llx loaded",
			      (unsigned long long)bad[i]);
	}
	/* The largest legal index, then a data write: inside the RAM, read back. */
	ck_assert_int_eq(fdt_setprop_u64(fdt, n, "index", 0x7f), 0);
	ck_assert_int_eq(rtc_load(r, fdt, n), 0);
	outb(&vm.pio, PORT_CMOS_DATA, 0x42);
	ck_assert_uint_eq(inb(&vm.pio, PORT_CMOS_DATA), 0x42);
	ck_assert_uint_eq(cmos(0x20), 0x5a); /* the RAM came back */
	/* RAM of another size, or none. */
	ck_assert_int_eq(fdt_setprop(fdt, n, "ram", ram, 64), 0);
	ck_assert_int_eq(rtc_load(r, fdt, n), -EINVAL);
	ck_assert_int_eq(fdt_delprop(fdt, n, "ram"), 0);
	ck_assert_int_eq(rtc_load(r, fdt, n), -EINVAL);
	rtc_destroy(r);
}
END_TEST

/* UART registers: only values reg_write can produce load. */
START_TEST(test_serial_load_bounds)
{
	struct serial *s = serial_create(&vm, COM, IRQ_COM1, -1);
	static const struct {
		unsigned int reg;
		uint8_t v;
	} bad[] = { { 2, 0x10 }, { 2, 0xff }, { 3, 0x02 }, { 3, 0x04 }, { 5, 0x20 }, { 7, 2 } };
	uint8_t regs[8];
	int n, len;

	ck_assert_ptr_nonnull(s);
	n = saved(serial_save_v, s);
	memcpy(regs, fdt_getprop(fdt, n, "regs", &len), sizeof(regs));
	ck_assert_int_eq(len, 8);
	ck_assert_int_eq(serial_load(s, fdt, n), 0);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t r[8];

		memcpy(r, regs, sizeof(r));
		r[bad[i].reg] = bad[i].v;
		ck_assert_int_eq(fdt_setprop(fdt, n, "regs", r, sizeof(r)), 0);
		ck_assert_msg(serial_load(s, fdt, n) == -EINVAL, "reg %u = %#x loaded", bad[i].reg,
			      bad[i].v);
	}
	/* Everything a guest can write, loads. */
	regs[0] = regs[1] = regs[4] = regs[6] = 0xff;
	regs[2] = 0x0f, regs[3] = 0xc9, regs[5] = 0x1f, regs[7] = 1;
	ck_assert_int_eq(fdt_setprop(fdt, n, "regs", regs, sizeof(regs)), 0);
	ck_assert_int_eq(serial_load(s, fdt, n), 0);
	ck_assert_int_eq(fdt_setprop_u64(fdt, n, "irq-level", 2), 0);
	ck_assert_int_eq(serial_load(s, fdt, n), -EINVAL);
	serial_destroy(s);
}
END_TEST

/*
 * PCI config space: only guest-writable bits and the BAR addresses may differ from
 * the device model; capability pointers, IDs and absent BARs are the model's.
 */
START_TEST(test_pci_load_bounds)
{
	uint8_t cfg[PCI_CFG_SIZE], orig[PCI_CFG_SIZE];
	struct pci_dev *pv;
	uint32_t bar;
	int n, d, len;

	ck_assert_int_eq(pvpanic_init(&vm), 0);
	pv = bus->devs[1];
	n = saved(pci_save_v, bus);
	d = fdt_subnode_offset(fdt, n, "dev@1");
	ck_assert_int_ge(d, 0);
	memcpy(orig, fdt_getprop(fdt, d, "cfg", &len), sizeof(orig));
	ck_assert_int_eq(len, PCI_CFG_SIZE);
	ck_assert_int_eq(pci_bus_load(bus, fdt, n), 0);

	/* Read-only bytes: the capability pointer, the status register, an absent BAR. */
	static const unsigned int ro[] = { PCI_CAP_PTR,	  PCI_STATUS, PCI_BAR0 + 4,
					   PCI_BAR0 + 20, 0x40,	      0xff };
	for (unsigned int i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		memcpy(cfg, orig, sizeof(cfg));
		cfg[ro[i]] ^= 0x40;
		ck_assert_int_eq(fdt_setprop(fdt, d, "cfg", cfg, sizeof(cfg)), 0);
		ck_assert_msg(pci_bus_load(bus, fdt, n) == -EINVAL, "byte %#x loaded", ro[i]);
	}
	/* Writable: the interrupt line, and BAR 0 moved (its type bits are the model's). */
	memcpy(cfg, orig, sizeof(cfg));
	cfg[PCI_INT_LINE] = 0x0b;
	bar = PCI_MMIO32_BASE + 0x10000 + 0xf; /* low bits set: ignored */
	memcpy(cfg + PCI_BAR0, &bar, 4);
	ck_assert_int_eq(fdt_setprop(fdt, d, "cfg", cfg, sizeof(cfg)), 0);
	ck_assert_int_eq(pci_bus_load(bus, fdt, n), 0);
	ck_assert_uint_eq(pci_cfg_read(bus, 1, PCI_INT_LINE, 1), 0x0b);
	ck_assert_uint_eq(cfg32(1, PCI_BAR0), PCI_MMIO32_BASE + 0x10000);
	ck_assert_uint_eq(pv->bar[0].mapped_at, PCI_MMIO32_BASE + 0x10000);
	ck_assert_uint_eq(inb(&vm.mmio, PCI_MMIO32_BASE + 0x10000), 3);
	/* A device the bus does not have, and one missing. */
	ck_assert_int_ge(fdt_add_subnode(fdt, n, "dev@5"), 0);
	ck_assert_int_eq(pci_bus_load(bus, fdt, n), -EINVAL);
}
END_TEST

START_TEST(test_exit_port)
{
	ck_assert_int_eq(power_init(&vm), 0);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);
	outb(&vm.pio, PORT_EXIT, 42);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT);
	ck_assert_int_eq(vm.stop_code, 42);
	ck_assert_uint_eq(stop_signals(), 1);
	/* The first reason wins. */
	outb(&vm.pio, PORT_EXIT, 7);
	outb(&vm.pio, PORT_ACPI_SLEEP_CTL, (ACPI_S5_SLP_TYP << 2) | ACPI_SLP_EN);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT);
	ck_assert_int_eq(vm.stop_code, 42);
	ck_assert_uint_eq(stop_signals(), 0);

	reset_stop();
	outb(&vm.pio, PORT_EXIT, 0);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_EXIT_PORT);
	ck_assert_int_eq(vm.stop_code, 0);
	reset_stop();
	outb(&vm.pio, PORT_EXIT, 255);
	ck_assert_int_eq(vm.stop_code, 255);
	/* The exit port has no read side: all-ones, but claimed. */
	ck_assert_uint_eq(inb(&vm.pio, PORT_EXIT), 0xff);
	ck_assert_int_eq(power_init(&vm), -EBUSY);
}
END_TEST

START_TEST(test_acpi_sleep)
{
	static const uint8_t harmless[] = {
		0x00,
		ACPI_S5_SLP_TYP << 2,	/* S5 without SLP_EN */
		ACPI_SLP_EN,		/* S0 */
		(3 << 2) | ACPI_SLP_EN, /* S3 */
		(4 << 2) | ACPI_SLP_EN, /* S4 */
		(7 << 2) | ACPI_SLP_EN,
		0xff & ~(ACPI_S5_SLP_TYP << 2), /* everything but the type */
	};
	unsigned int i;

	ck_assert_int_eq(power_init(&vm), 0);
	for (i = 0; i < sizeof(harmless); i++) {
		outb(&vm.pio, PORT_ACPI_SLEEP_CTL, harmless[i]);
		ck_assert_msg(atomic_load(&vm.stop_reason) == VM_RUNNING,
			      "value %#x stopped the VM", harmless[i]);
	}
	ck_assert_uint_eq(stop_signals(), 0);
	ck_assert_uint_eq(inb(&vm.pio, PORT_ACPI_SLEEP_CTL), 0);
	ck_assert_uint_eq(inb(&vm.pio, PORT_ACPI_SLEEP_STS), 0);
	outb(&vm.pio, PORT_ACPI_SLEEP_STS, 0x34); /* status is read-only */
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);

	outb(&vm.pio, PORT_ACPI_SLEEP_CTL, (5 << 2) | 0x20);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_POWEROFF);
	ck_assert_int_eq(vm.stop_code, 0);
	ck_assert_uint_eq(stop_signals(), 1);
	/* Other bits alongside do not matter. */
	reset_stop();
	outb(&vm.pio, PORT_ACPI_SLEEP_CTL, 0xc0 | (5 << 2) | 0x20 | 0x3);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_POWEROFF);
}
END_TEST

START_TEST(test_i8042)
{
	uint16_t w = 0x00fe;

	ck_assert_int_eq(i8042_init(&vm), 0);
	ck_assert_uint_eq(inb(&vm.pio, PORT_I8042_CMD), 0);
	ck_assert_uint_eq(inb(&vm.pio, PORT_I8042_DATA), 0);
	outb(&vm.pio, PORT_I8042_CMD, 0xd1);
	outb(&vm.pio, PORT_I8042_DATA, 0xfe); /* data, not a command */
	ck_assert(!io_bus_access(&vm.pio, PORT_I8042_CMD, &w, 2, true));
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_RUNNING);
	outb(&vm.pio, PORT_I8042_CMD, 0xfe);
	ck_assert_int_eq(atomic_load(&vm.stop_reason), VM_STOP_REBOOT);
	ck_assert_uint_eq(stop_signals(), 1);
	ck_assert_int_eq(i8042_init(&vm), -EBUSY);
}
END_TEST

static Suite *devices_suite(void)
{
	Suite *s = suite_create("devices");
	TCase *iobus = tcase_create("iobus");
	TCase *pci = tcase_create("pci");
	TCase *uart = tcase_create("serial");
	TCase *misc = tcase_create("legacy");

	tcase_add_checked_fixture(iobus, vm_setup, vm_teardown);
	tcase_add_test(iobus, test_iobus_register);
	tcase_add_test(iobus, test_iobus_access);
	tcase_add_test(iobus, test_iobus_partial_ops);
	tcase_add_test(iobus, test_iobus_full);
	suite_add_tcase(s, iobus);

	tcase_add_checked_fixture(pci, pci_setup, pci_teardown);
	tcase_add_test(pci, test_pci_host_bridge);
	tcase_add_test(pci, test_pci_bars_assigned);
	tcase_add_test(pci, test_pci_bar_sizing);
	tcase_add_test(pci, test_pci_bar_move);
	tcase_add_test(pci, test_pci_cfg_write_masks);
	tcase_add_test(pci, test_pci_caps);
	tcase_add_test(pci, test_pci_conf1);
	tcase_add_test(pci, test_pci_reset_cf9);
	tcase_add_test(pci, test_pci_full_and_release);
	tcase_add_test(pci, test_pci_window_full);
	tcase_add_test(pci, test_pvpanic);
	tcase_add_test(pci, test_pci_load_bounds);
	suite_add_tcase(s, pci);

	tcase_add_checked_fixture(uart, serial_setup, serial_teardown);
	tcase_add_test(uart, test_serial_tx);
	tcase_add_test(uart, test_serial_rx);
	tcase_add_test(uart, test_serial_iir);
	tcase_add_test(uart, test_serial_dlab);
	tcase_add_test(uart, test_serial_loopback);
	tcase_add_test(uart, test_serial_rx_full);
	tcase_add_test(uart, test_serial_discard);
	suite_add_tcase(s, uart);

	tcase_add_checked_fixture(misc, vm_setup, vm_teardown);
	tcase_add_test(misc, test_rtc);
	tcase_add_test(misc, test_rtc_load_bounds);
	tcase_add_test(misc, test_serial_load_bounds);
	tcase_add_test(misc, test_exit_port);
	tcase_add_test(misc, test_acpi_sleep);
	tcase_add_test(misc, test_i8042);
	tcase_add_test(misc, test_console_api);
	suite_add_tcase(s, misc);
	return s;
}

int main(void)
{
	return unit_run(devices_suite());
}
