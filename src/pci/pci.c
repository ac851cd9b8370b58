// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "log.h"
#include "pci/pci.h"
#include "util.h"
#include "snapshot/state.h"
#include "vm.h"

#define CONF_ENABLE (1U << 31)

void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision)
{
	memset(dev, 0, sizeof(*dev));
	memcpy(dev->cfg + PCI_VENDOR_ID, &vendor, 2);
	memcpy(dev->cfg + PCI_DEVICE_ID, &device, 2);
	dev->cfg[PCI_REVISION_ID] = revision;
	dev->cfg[PCI_CLASS_PROG] = class_code & 0xff;
	dev->cfg[PCI_CLASS_PROG + 1] = (class_code >> 8) & 0xff;
	dev->cfg[PCI_CLASS_PROG + 2] = (class_code >> 16) & 0xff;
	dev->wmask[PCI_COMMAND] = PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER;
	dev->wmask[PCI_COMMAND + 1] = PCI_CMD_INTX_OFF >> 8;
	dev->wmask[PCI_INT_LINE] = 0xff;
	dev->cap_next = 0x40;
}

void pci_dev_set_bar(struct pci_dev *dev, unsigned int bar, enum pci_bar_type type, bool prefetch,
		     uint64_t size, const struct io_ops *ops, void *opaque)
{
	dev->bar[bar] = (struct pci_bar){
		.type = type, .prefetch = prefetch, .size = size, .ops = ops, .opaque = opaque
	};
}

int pci_dev_add_cap(struct pci_dev *dev, uint8_t id, unsigned int len)
{
	unsigned int off = dev->cap_next;

	len = ALIGN_UP(MAX(len, 2U), 4U);
	if (off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0;
	if (dev->cap_last)
		dev->cfg[dev->cap_last + 1] = off;
	else
		dev->cfg[PCI_CAP_PTR] = off;
	dev->cfg[PCI_STATUS] |= PCI_STATUS_CAPS;
	dev->cap_last = off;
	dev->cap_next = off + len;
	return off;
}

static uint64_t bar_addr(const struct pci_dev *dev, unsigned int i)
{
	uint32_t lo, hi = 0;

	memcpy(&lo, dev->cfg + PCI_BAR0 + 4 * i, 4);
	if (dev->bar[i].type == PCI_BAR_MEM64)
		memcpy(&hi, dev->cfg + PCI_BAR0 + 4 * (i + 1), 4);
	if (dev->bar[i].type == PCI_BAR_IO)
		return lo & ~3U;
	return ((uint64_t)hi << 32) | (lo & ~0xfU);
}

static void bar_set_addr(struct pci_dev *dev, unsigned int i, uint64_t addr)
{
	const struct pci_bar *b = &dev->bar[i];
	uint32_t lo, hi = addr >> 32;

	if (b->type == PCI_BAR_IO)
		lo = (addr & ~3U) | 1;
	else
		lo = (addr & ~0xfU) | (b->type == PCI_BAR_MEM64 ? 4 : 0) | (b->prefetch ? 8 : 0);
	memcpy(dev->cfg + PCI_BAR0 + 4 * i, &lo, 4);
	if (b->type == PCI_BAR_MEM64)
		memcpy(dev->cfg + PCI_BAR0 + 4 * (i + 1), &hi, 4);
}

/* Map each BAR where its address says, if its decoding is enabled. */
static void bars_update(struct pci_bus *bus, struct pci_dev *dev)
{
	uint16_t cmd;
	unsigned int i;

	memcpy(&cmd, dev->cfg + PCI_COMMAND, 2);
	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bar[i];
		struct io_bus *iob = b->type == PCI_BAR_IO ? &bus->vm->pio : &bus->vm->mmio;
		bool on = b->type == PCI_BAR_IO ? (cmd & PCI_CMD_IO) : (cmd & PCI_CMD_MEM);
		uint64_t want = b->type != PCI_BAR_NONE && on ? bar_addr(dev, i) : 0;

		if (b->type == PCI_BAR_NONE || want == b->mapped_at)
			continue;
		if (b->mapped_at && b->ops)
			io_bus_unregister(iob, b->mapped_at, b->opaque);
		b->mapped_at = 0;
		/* A BAR placed over something else stays unmapped. A BAR without ops is
		 * memory the device maps itself (a KVM slot) from bar_moved. */
		if (want && want + b->size > want &&
		    (!b->ops || !io_bus_register(iob, want, b->size, b->ops, b->opaque)))
			b->mapped_at = want;
		if (dev->bar_moved)
			dev->bar_moved(dev, i, b->mapped_at);
	}
}

static uint64_t alloc(uint64_t *next, uint64_t end, uint64_t size)
{
	uint64_t a = ALIGN_UP(*next, size);

	if (a + size > end || a + size < a)
		return 0;
	*next = a + size;
	return a;
}

int pci_register(struct pci_bus *bus, struct pci_dev *dev)
{
	/* Cursors move only when every BAR fits: a failure costs no address space. */
	uint64_t io_next = bus->io_next, m32 = bus->mmio32_next, m64 = bus->mmio64_next;
	unsigned int slot, i;
	uint16_t cmd = 0;

	for (slot = 0; slot < PCI_MAX_DEVS && bus->devs[slot]; slot++)
		;
	if (slot == PCI_MAX_DEVS)
		return -ENOSPC;
	for (i = 0; i < PCI_NUM_BARS; i++) {
		struct pci_bar *b = &dev->bar[i];
		uint64_t a;

		if (b->type == PCI_BAR_NONE)
			continue;
		if (b->type == PCI_BAR_IO) {
			a = alloc(&io_next, bus->io_end, b->size);
			cmd |= PCI_CMD_IO;
		} else if (b->type == PCI_BAR_MEM64 && b->prefetch) {
			a = alloc(&m64, bus->mmio64_end, b->size);
			cmd |= PCI_CMD_MEM;
		} else {
			a = alloc(&m32, bus->mmio32_end, b->size);
			cmd |= PCI_CMD_MEM;
		}
		if (!a)
			return -ENOSPC;
		bar_set_addr(dev, i, a);
	}
	bus->io_next = io_next;
	bus->mmio32_next = m32;
	bus->mmio64_next = m64;
	/* Like firmware: BARs assigned and decoding on before the OS starts. */
	memcpy(dev->cfg + PCI_COMMAND, &cmd, 2);
	dev->slot = slot;
	pthread_mutex_lock(&bus->lock);
	bus->devs[slot] = dev;
	bars_update(bus, dev);
	pthread_mutex_unlock(&bus->lock);
	return 0;
}

/* Returns the BAR index whose register covers config byte @off, or -1. */
static int bar_of(const struct pci_dev *dev, unsigned int off, bool *high)
{
	int i;

	if (off < PCI_BAR0 || off >= PCI_BAR0 + 4 * PCI_NUM_BARS)
		return -1;
	i = (off - PCI_BAR0) / 4;
	*high = false;
	if (i > 0 && dev->bar[i - 1].type == PCI_BAR_MEM64) {
		*high = true;
		return i - 1;
	}
	return i;
}

static void bar_write(struct pci_dev *dev, unsigned int off, uint8_t v)
{
	unsigned int reg = off & ~3U, byte = off & 3;
	uint32_t cur, mask;
	bool high;
	int i = bar_of(dev, off, &high);
	struct pci_bar *b;

	if (i < 0 || dev->bar[i].type == PCI_BAR_NONE)
		return;
	b = &dev->bar[i];
	memcpy(&cur, dev->cfg + reg, 4);
	if (high)
		mask = (uint32_t)(~(b->size - 1) >> 32);
	else if (b->type == PCI_BAR_IO)
		mask = (uint32_t) ~(b->size - 1) & ~3U;
	else
		mask = (uint32_t) ~(b->size - 1) & ~0xfU;
	/* Writable bits are the address bits above the size: sizing reads back the mask. */
	cur = (cur & ~(0xffU << (8 * byte))) | ((uint32_t)v << (8 * byte));
	cur &= mask;
	memcpy(dev->cfg + reg, &cur, 4);
	if (!high)
		bar_set_addr(dev, i, bar_addr(dev, i));
}

uint32_t pci_cfg_read(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int len)
{
	struct pci_dev *dev;
	uint32_t v = 0;

	if (slot >= PCI_MAX_DEVS || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return 0xffffffff;
	pthread_mutex_lock(&bus->lock);
	dev = bus->devs[slot];
	if (dev)
		memcpy(&v, dev->cfg + off, len);
	else
		v = 0xffffffff;
	pthread_mutex_unlock(&bus->lock);
	return v;
}

void pci_cfg_write(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int len,
		   uint32_t val)
{
	struct pci_dev *dev;
	unsigned int i;
	bool touched_bar = false, touched_cmd = false;

	if (slot >= PCI_MAX_DEVS || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return;
	pthread_mutex_lock(&bus->lock);
	dev = bus->devs[slot];
	if (!dev)
		goto out;
	for (i = 0; i < len; i++) {
		unsigned int o = off + i;
		uint8_t b = val >> (8 * i);

		if (o >= PCI_BAR0 && o < PCI_BAR0 + 4 * PCI_NUM_BARS) {
			bar_write(dev, o, b);
			touched_bar = true;
			continue;
		}
		if (o == PCI_COMMAND || o == PCI_COMMAND + 1)
			touched_cmd = true;
		dev->cfg[o] = (dev->cfg[o] & ~dev->wmask[o]) | (b & dev->wmask[o]);
	}
	if (touched_bar || touched_cmd)
		bars_update(bus, dev);
	if (dev->cfg_written)
		dev->cfg_written(dev, off, len);
out:
	pthread_mutex_unlock(&bus->lock);
}

/* Ports 0xcf8-0xcff: address (dword at 0xcf8), reset control (byte at 0xcf9), data. */
static void conf1_read(void *opaque, uint64_t off, void *data, unsigned int len)
{
	struct pci_bus *bus = opaque;
	uint32_t v = 0xffffffff, a;

	if (len > 4) { /* port I/O is at most a dword */
		memset(data, 0xff, len);
		return;
	}
	if (off == 0 && len == 4) {
		v = bus->conf_addr;
	} else if (off >= 4) {
		a = bus->conf_addr;
		if ((a & CONF_ENABLE) && ((a >> 16) & 0xff) == 0 && ((a >> 8) & 7) == 0)
			v = pci_cfg_read(bus, (a >> 11) & 0x1f, (a & 0xfc) + (off - 4), len);
	} else if (off == 1 && len == 1) {
		v = 0;
	}
	memcpy(data, &v, len);
}

static void conf1_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct pci_bus *bus = opaque;
	uint32_t v = 0, a;

	if (len > 4)
		return;
	memcpy(&v, data, len);
	if (off == 0 && len == 4) {
		bus->conf_addr = v;
	} else if (off == 1 && len == 1) {
		/* Reset control register: RST_CPU (bit 2) resets the machine. */
		if (v & 0x4)
			vm_request_stop(bus->vm, VM_STOP_REBOOT, 0);
	} else if (off >= 4) {
		a = bus->conf_addr;
		if ((a & CONF_ENABLE) && ((a >> 16) & 0xff) == 0 && ((a >> 8) & 7) == 0)
			pci_cfg_write(bus, (a >> 11) & 0x1f, (a & 0xfc) + (off - 4), len, v);
	}
}

static const struct io_ops conf1_ops = {
	.read = conf1_read,
	.write = conf1_write,
};

struct pci_bus *pci_bus_create(struct vm *vm, uint64_t mmio64_base, uint64_t mmio64_size)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return NULL;
	bus->vm = vm;
	pthread_mutex_init(&bus->lock, NULL);
	bus->mmio32_next = PCI_MMIO32_BASE;
	bus->mmio32_end = PCI_MMIO32_BASE + PCI_MMIO32_SIZE;
	bus->mmio64_next = mmio64_base;
	bus->mmio64_end = mmio64_base + mmio64_size;
	bus->io_next = PCI_IO_BASE;
	bus->io_end = PCI_IO_BASE + PCI_IO_SIZE;
	/* 00:00.0: a host bridge, as every PC has; Red Hat's generic IDs. */
	pci_dev_init(&bus->host_bridge, 0x1b36, 0x0008, 0x060000, 0);
	if (pci_register(bus, &bus->host_bridge) ||
	    io_bus_register(&vm->pio, PORT_PCI_CONF_ADDR, 8, &conf1_ops, bus)) {
		pci_bus_destroy(bus);
		return NULL;
	}
	return bus;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	unsigned int i, j;

	if (!bus)
		return;
	for (i = 0; i < PCI_MAX_DEVS; i++) {
		struct pci_dev *dev = bus->devs[i];

		if (!dev)
			continue;
		for (j = 0; j < PCI_NUM_BARS; j++) {
			struct pci_bar *b = &dev->bar[j];

			if (b->mapped_at && b->ops)
				io_bus_unregister(b->type == PCI_BAR_IO ? &bus->vm->pio
									: &bus->vm->mmio,
						  b->mapped_at, b->opaque);
		}
		if (dev != &bus->host_bridge && dev->release)
			dev->release(dev);
	}
	io_bus_unregister(&bus->vm->pio, PORT_PCI_CONF_ADDR, bus);
	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

void pci_bus_quiesce(struct pci_bus *bus, bool on)
{
	unsigned int i;

	for (i = 0; i < PCI_MAX_DEVS; i++)
		if (bus->devs[i] && bus->devs[i]->quiesce)
			bus->devs[i]->quiesce(bus->devs[i], on);
}

int pci_bus_save(struct pci_bus *bus, void *fdt, int node)
{
	unsigned int i;
	int ret = 0;

	pthread_mutex_lock(&bus->lock);
	ret = st_put_u64(fdt, node, "conf-addr", bus->conf_addr);
	for (i = 0; !ret && i < PCI_MAX_DEVS; i++) {
		struct pci_dev *dev = bus->devs[i];
		char name[16];
		int n;

		if (!dev)
			continue;
		snprintf(name, sizeof(name), "dev@%u", i);
		n = st_add_node(fdt, node, name);
		ret = n < 0 ? n : st_put_blob(fdt, n, "cfg", dev->cfg, sizeof(dev->cfg));
		if (!ret && dev->save)
			ret = dev->save(dev, fdt, n);
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

/*
 * A saved config space may differ from the device model only where a guest could
 * have written: bits in wmask, and the address bits of the BARs the model has
 * (fixed up by the caller). Capability pointers, MSI-X table sizes, IDs and the
 * registers of absent BARs are the model's. Returns the first offending offset.
 */
static int cfg_foreign_byte(const struct pci_dev *dev, const uint8_t *cfg)
{
	unsigned int o, i;

	for (o = 0; o < PCI_CFG_SIZE; o++) {
		if (o >= PCI_BAR0 && o < PCI_BAR0 + 4 * PCI_NUM_BARS) {
			i = (o - PCI_BAR0) / 4;
			if (dev->bar[i].type != PCI_BAR_NONE ||
			    (i > 0 && dev->bar[i - 1].type == PCI_BAR_MEM64))
				continue;
		}
		if ((cfg[o] ^ dev->cfg[o]) & ~dev->wmask[o])
			return (int)o;
	}
	return -1;
}

int pci_bus_load(struct pci_bus *bus, const void *fdt, int node)
{
	uint8_t cfg[PCI_CFG_SIZE];
	unsigned int i, b;
	uint64_t ca;
	int ret = 0, bad;

	if (st_get_u64(fdt, node, "conf-addr", &ca) || ca > 0xffffffffu)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	bus->conf_addr = (uint32_t)ca;
	for (i = 0; !ret && i < PCI_MAX_DEVS; i++) {
		struct pci_dev *dev = bus->devs[i];
		char name[16];
		int n;

		snprintf(name, sizeof(name), "dev@%u", i);
		n = fdt_subnode_offset(fdt, node, name);
		if (!dev != (n < 0)) {
			pr_err("snapshot: PCI slot %u: %s", i,
			       dev ? "device missing from the snapshot" : "unknown device");
			ret = -EINVAL;
			break;
		}
		if (!dev)
			continue;
		if (st_get_blob(fdt, n, "cfg", cfg, sizeof(cfg)) || memcmp(cfg, dev->cfg, 4) ||
		    cfg[PCI_HEADER_TYPE] != dev->cfg[PCI_HEADER_TYPE]) {
			pr_err("snapshot: PCI slot %u holds another device", i);
			ret = -EINVAL;
			break;
		}
		bad = cfg_foreign_byte(dev, cfg);
		if (bad >= 0) {
			pr_err("snapshot: PCI slot %u: read-only config byte %#x differs from the "
			       "device's",
			       i, bad);
			ret = -EINVAL;
			break;
		}
		memcpy(dev->cfg, cfg, sizeof(cfg));
		/* BAR type bits come from the device model, not the file. */
		for (b = 0; b < PCI_NUM_BARS; b++)
			if (dev->bar[b].type != PCI_BAR_NONE)
				bar_set_addr(dev, b, bar_addr(dev, b) & ~(dev->bar[b].size - 1));
		bars_update(bus, dev);
		if (dev->load)
			ret = dev->load(dev, fdt, n);
	}
	pthread_mutex_unlock(&bus->lock);
	return ret;
}
