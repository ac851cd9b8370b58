/* SPDX-License-Identifier: GPL-2.0-or-later */
/* virtio over PCI (modern interface, virtio 1.x section 4.1). */
#ifndef MINIVMM_VIRTIO_PCI_H
#define MINIVMM_VIRTIO_PCI_H

struct vm;
struct virtio_dev;

/*
 * Put @d on the VM's PCI bus: BAR 0 holds the common, ISR, device, notify
 * and MSI-X structures (one vector per queue plus one for config changes),
 * shared-memory regions get a 64-bit prefetchable BAR 2 with a KVM memory
 * slot each. Kicks reach the queues' eventfds through KVM ioeventfds,
 * interrupts leave through irqfds with MSI routes. The bus releases the
 * transport at teardown, after stopping the device; @d itself stays the
 * caller's.
 */
int virtio_pci_add(struct vm *vm, struct virtio_dev *d);

/* BAR 0 layout, exported for tests. */
#define VPCI_COMMON_OFF	 0x0000
#define VPCI_ISR_OFF	 0x1000
#define VPCI_DEVICE_OFF	 0x2000
#define VPCI_NOTIFY_OFF	 0x3000
#define VPCI_MSIX_OFF	 0x4000
#define VPCI_PBA_OFF	 0x5000
#define VPCI_BAR0_SIZE	 0x8000
#define VPCI_NOTIFY_MULT 4

#endif
