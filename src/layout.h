/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest's physical address map and I/O ports, in one place. */
#ifndef MINIVMM_LAYOUT_H
#define MINIVMM_LAYOUT_H

/* Low memory used by the boot path (all inside the first 1 MiB). */
#define GDT_ADDR	  0x500ULL
#define PVH_INFO_ADDR	  0x6000ULL /* hvm_start_info + memmap */
#define BOOT_PARAMS_ADDR  0x7000ULL /* the "zero page" */
#define BOOT_STACK_ADDR	  0x8ff0ULL
#define PML4_ADDR	  0x9000ULL
#define PDPT_ADDR	  0xa000ULL
#define PD_ADDR		  0xb000ULL /* 4 pages: identity map of 4 GiB with 2 MiB pages */
#define CMDLINE_ADDR	  0x20000ULL
#define CMDLINE_MAX	  0x10000ULL
#define EBDA_START	  0x9fc00ULL /* top of usable low RAM */
#define ACPI_TABLES_ADDR  0xe0000ULL /* RSDP first; found by the BIOS-area scan too */
#define ACPI_TABLES_SIZE  0x20000ULL
#define RESET_VECTOR_ADDR 0xffff0ULL /* f000:fff0, inside the ACPI/BIOS area */
/* The VM generation ID (16 bytes) in a page of its own, past the ACPI tables. */
#define VMGENID_ADDR	  0xfe000ULL
#define HIGH_MEM_START	  0x100000ULL

/* The 32-bit hole: [MMIO32_START, 4 GiB) is never RAM. */
#define MMIO32_START	0xc0000000ULL
#define PCI_MMIO32_BASE 0xc0000000ULL
#define PCI_MMIO32_SIZE 0x3c000000ULL /* up to 0xfc000000 */
#define IOAPIC_ADDR	0xfec00000ULL
#define LAPIC_ADDR	0xfee00000ULL
#define FOUR_GIB	0x100000000ULL

/* 64-bit PCI window: starts at the first 1 GiB boundary above RAM. */
#define PCI_MMIO64_ALIGN (1ULL << 30)
#define PCI_MMIO64_SIZE	 (64ULL << 30)

/* I/O ports. */
#define PORT_I8042_DATA	    0x60
#define PORT_I8042_CMD	    0x64
#define PORT_CMOS_INDEX	    0x70
#define PORT_CMOS_DATA	    0x71
#define PORT_COM1	    0x3f8
#define IRQ_COM1	    4
#define IRQ_GED		    5	  /* ACPI generic event device: the generation ID changed */
#define PORT_EXIT	    0x501 /* a byte v written here ends minivmm with status v */
#define PORT_ACPI_SLEEP_CTL 0x600 /* FADT SLEEP_CONTROL_REG (HW-reduced ACPI) */
#define PORT_ACPI_SLEEP_STS 0x601 /* FADT SLEEP_STATUS_REG */
#define PORT_PCI_CONF_ADDR  0xcf8
#define PORT_RESET_CF9	    0xcf9 /* FADT RESET_REG, value ACPI_RESET_VALUE */
#define PORT_PCI_CONF_DATA  0xcfc
#define PCI_IO_BASE	    0xc000 /* PCI I/O window for BARs */
#define PCI_IO_SIZE	    0x4000

#define ACPI_RESET_VALUE 0x06
#define ACPI_S5_SLP_TYP	 5 /* _S5_ package value; poweroff writes (5 << 2) | SLP_EN */
#define ACPI_SLP_EN	 (1 << 5)

#endif
