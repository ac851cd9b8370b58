/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PCI bus 0 behind configuration mechanism #1 (ports 0xcf8/0xcfc). */
#ifndef MINIVMM_PCI_H
#define MINIVMM_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/iobus.h"

struct vm;

#define PCI_MAX_DEVS 32
#define PCI_CFG_SIZE 256
#define PCI_NUM_BARS 6

#define PCI_VENDOR_ID	0x00
#define PCI_DEVICE_ID	0x02
#define PCI_COMMAND	0x04
#define PCI_STATUS	0x06
#define PCI_REVISION_ID 0x08
#define PCI_CLASS_PROG	0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0	0x10
#define PCI_SUBSYS_VID	0x2c
#define PCI_SUBSYS_ID	0x2e
#define PCI_CAP_PTR	0x34
#define PCI_INT_LINE	0x3c
#define PCI_INT_PIN	0x3d

#define PCI_CMD_IO	 0x1
#define PCI_CMD_MEM	 0x2
#define PCI_CMD_MASTER	 0x4
#define PCI_CMD_INTX_OFF 0x400
#define PCI_STATUS_CAPS	 0x10

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	bool prefetch;
	uint64_t size;		  /* power of two */
	const struct io_ops *ops; /* NULL: the device maps it itself in bar_moved */
	void *opaque;
	uint64_t mapped_at; /* 0: not mapped */
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change, outside BARs */
	struct pci_bar bar[PCI_NUM_BARS];
	uint8_t slot;
	uint8_t cap_last;  /* offset of the last capability, 0: none */
	uint16_t cap_next; /* first free byte for the next capability */
	/* Called after the guest wrote config bytes [off, off+len). */
	void (*cfg_written)(struct pci_dev *dev, unsigned int off, unsigned int len);
	/* Called when a BAR becomes mapped at @addr (0: unmapped). */
	void (*bar_moved)(struct pci_dev *dev, unsigned int bar, uint64_t addr);
	/* Stop (@on) or restart the device's own threads around a snapshot. */
	void (*quiesce)(struct pci_dev *dev, bool on);
	/* Snapshot state beyond config space (the bus saves and restores that). */
	int (*save)(struct pci_dev *dev, void *fdt, int node);
	int (*load)(struct pci_dev *dev, const void *fdt, int node);
	/* Called by pci_bus_destroy for each registered device but the host bridge. */
	void (*release)(struct pci_dev *dev);
	void *priv;
};

struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;
	uint32_t conf_addr;
	struct pci_dev *devs[PCI_MAX_DEVS];
	struct pci_dev host_bridge;
	uint64_t mmio32_next, mmio32_end;
	uint64_t mmio64_next, mmio64_end;
	uint32_t io_next, io_end;
};

struct pci_bus *pci_bus_create(struct vm *vm, uint64_t mmio64_base, uint64_t mmio64_size);
void pci_bus_destroy(struct pci_bus *bus);

/* Fill the identity of @dev before registering it. */
void pci_dev_init(struct pci_dev *dev, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint8_t revision);
void pci_dev_set_bar(struct pci_dev *dev, unsigned int bar, enum pci_bar_type type, bool prefetch,
		     uint64_t size, const struct io_ops *ops, void *opaque);
/* Append a capability of @len bytes with id @id; returns its offset or -ENOSPC. */
int pci_dev_add_cap(struct pci_dev *dev, uint8_t id, unsigned int len);
/* Place @dev in the next free slot, assign and map its BARs. */
int pci_register(struct pci_bus *bus, struct pci_dev *dev);

/* Every device's config space and its own state; load remaps the BARs. */
void pci_bus_quiesce(struct pci_bus *bus, bool on);
int pci_bus_save(struct pci_bus *bus, void *fdt, int node);
int pci_bus_load(struct pci_bus *bus, const void *fdt, int node);

/* Config-space access as the guest sees it (also used by tests). */
uint32_t pci_cfg_read(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int len);
void pci_cfg_write(struct pci_bus *bus, unsigned int slot, unsigned int off, unsigned int len,
		   uint32_t val);

#endif
