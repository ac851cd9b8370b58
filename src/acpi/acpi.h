/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ACPI tables for the guest: RSDP, XSDT (+ RSDT), FADT (hardware-reduced),
 * MADT and a DSDT with \_S5_ and the PCI host bridge \_SB.PCI0.
 */
#ifndef MINIVMM_ACPI_ACPI_H
#define MINIVMM_ACPI_ACPI_H

#include <stddef.h>
#include <stdint.h>

/* xAPIC MADT entries carry 8-bit ids and 0xff is broadcast. */
#define ACPI_MAX_CPUS 255

#define ACPI_OEM_ID	   "MINVMM"   /* 6 bytes */
#define ACPI_OEM_TABLE_ID  "MINIVMM " /* 8 bytes */
#define ACPI_CREATOR_ID	   "MVMM"
#define ACPI_HYPERVISOR_ID "MINIVMM " /* FADT Hypervisor Vendor Identity, 8 bytes */

/* Byte offsets fixed by the ACPI 6.0 spec (section 5.2). */
#define ACPI_HDR_SIZE	    36
#define ACPI_RSDP_SIZE	    36
#define ACPI_FADT_SIZE	    276 /* revision 6 */
#define ACPI_FADT_DSDT	    40
#define ACPI_FADT_SCI_INT   46
#define ACPI_FADT_BOOT_ARCH 109
#define ACPI_FADT_FLAGS	    112
#define ACPI_FADT_RESET_REG 116
#define ACPI_FADT_RESET_VAL 128
#define ACPI_FADT_MINOR	    131
#define ACPI_FADT_X_DSDT    140
#define ACPI_FADT_SLEEP_CTL 244
#define ACPI_FADT_SLEEP_STS 256
#define ACPI_FADT_HV_ID	    268

#define ACPI_FADT_F_RESET_REG_SUP (1U << 10)
#define ACPI_FADT_F_HW_REDUCED	  (1U << 20)
#define ACPI_BOOT_ARCH_8042	  (1U << 1)
#define ACPI_BOOT_ARCH_NO_VGA	  (1U << 2)

#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

#define ACPI_MADT_LAPIC	    0
#define ACPI_MADT_IOAPIC    1
#define ACPI_MADT_ISO	    2
#define ACPI_MADT_LAPIC_NMI 4
#define ACPI_MADT_IOAPIC_ID 0 /* the in-kernel KVM IOAPIC's reset value */

struct acpi_config {
	unsigned int ncpus;		   /* APIC IDs and processor UIDs 0..ncpus-1 */
	uint64_t mmio32_base, mmio32_size; /* below 4 GiB, non-prefetchable */
	uint64_t mmio64_base, mmio64_size; /* above 4 GiB, prefetchable */
	uint32_t io_base, io_size;	   /* PCI I/O port window */
	/* VM generation ID (VMGENCTR): its 16 bytes' address, 0 for none; the generic
	 * event device's ISA IRQ that tells the guest it changed. */
	uint64_t vmgenid_addr;
	uint8_t ged_irq;
};

/*
 * Defaults from layout.h. @ram_top is one past the highest guest-physical RAM
 * byte: the 64-bit window starts at the first PCI_MMIO64_ALIGN boundary at or
 * above it, and never below 4 GiB.
 */
void acpi_config_init(struct acpi_config *cfg, unsigned int ncpus, uint64_t ram_top);

/*
 * Build every table into @buf (to be copied to guest-physical @gpa), RSDP at
 * offset 0. Returns the bytes used, -ENOSPC when @size is too small, -EINVAL
 * for a bad @cfg or a @gpa that is unaligned or puts tables above 4 GiB.
 * The whole of @buf is cleared first.
 */
int acpi_build(void *buf, size_t size, uint64_t gpa, const struct acpi_config *cfg);

/* Sum of @n bytes, mod 256: 0 for a valid table. */
uint8_t acpi_checksum(const void *p, size_t n);

#endif
