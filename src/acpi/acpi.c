// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ACPI table builder. The guest is a "hardware-reduced" ACPI platform (ACPI
 * 6.0, 4.1): no PM1/GPE blocks, no SCI, no FACS, no legacy 8259. Poweroff
 * and reset go through the FADT sleep control and reset registers, which are
 * plain I/O ports the VMM traps (layout.h).
 *
 * Buffer layout, each table 16-byte aligned:
 *   RSDP | XSDT | RSDT | FADT | MADT | DSDT
 */
#include <errno.h>
#include <string.h>

#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "layout.h"

#define ALIGN16(x) (((x) + 15) & ~(size_t)15)

/* FADT, MADT: what the XSDT and RSDT list. */
#define ACPI_NTABLES 2

#define MADT_LAPIC_LEN	   8
#define MADT_IOAPIC_LEN	   12
#define MADT_ISO_LEN	   10
#define MADT_LAPIC_NMI_LEN 6

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

uint8_t acpi_checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *b++);
	return sum;
}

/* Make the bytes of [p, p + n) sum to 0 through the byte at p[at]. */
static void fix_checksum(uint8_t *p, size_t n, size_t at)
{
	p[at] = 0;
	p[at] = (uint8_t)(0x100 - acpi_checksum(p, n));
}

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put32(t + 24, 1); /* OEM revision */
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, 1); /* creator revision */
}

/* Generic Address Structure for one byte-wide I/O port. */
static void gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = ACPI_GAS_SYSTEM_IO;
	g[1] = 8; /* bit width; Linux's acpi_reboot() insists on 8 */
	g[2] = 0; /* bit offset; likewise must be 0 */
	g[3] = ACPI_GAS_ACCESS_BYTE;
	put64(g + 4, port);
}

static int check_config(const struct acpi_config *cfg)
{
	if (!cfg->ncpus || cfg->ncpus > ACPI_MAX_CPUS)
		return -EINVAL;
	if (!cfg->mmio32_size || cfg->mmio32_base > FOUR_GIB ||
	    cfg->mmio32_size > FOUR_GIB - cfg->mmio32_base)
		return -EINVAL;
	/* An empty 64-bit window is allowed: the QWordMemory is left out. */
	if (cfg->mmio64_size &&
	    (cfg->mmio64_base < FOUR_GIB || cfg->mmio64_size - 1 > UINT64_MAX - cfg->mmio64_base))
		return -EINVAL;
	if (!cfg->io_size || cfg->io_base > 0xffff || cfg->io_size > 0x10000 - cfg->io_base)
		return -EINVAL;
	if (cfg->vmgenid_addr && (cfg->vmgenid_addr % 8 || cfg->ged_irq > 15))
		return -EINVAL;
	return 0;
}

void acpi_config_init(struct acpi_config *cfg, unsigned int ncpus, uint64_t ram_top)
{
	uint64_t base = (ram_top + PCI_MMIO64_ALIGN - 1) & ~(PCI_MMIO64_ALIGN - 1);

	memset(cfg, 0, sizeof(*cfg));
	cfg->ncpus = ncpus;
	cfg->mmio32_base = PCI_MMIO32_BASE;
	cfg->mmio32_size = PCI_MMIO32_SIZE;
	cfg->mmio64_base = base < FOUR_GIB ? FOUR_GIB : base;
	cfg->mmio64_size = PCI_MMIO64_SIZE;
	cfg->io_base = PCI_IO_BASE;
	cfg->io_size = PCI_IO_SIZE;
}

static void build_rsdp(uint8_t *t, uint64_t rsdt, uint64_t xsdt)
{
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + 9, ACPI_OEM_ID, 6);
	t[15] = 2; /* ACPI 2.0+: XsdtAddress is valid */
	put32(t + 16, (uint32_t)rsdt);
	put32(t + 20, ACPI_RSDP_SIZE);
	put64(t + 24, xsdt);
	fix_checksum(t, 20, 8);		     /* ACPI 1.0 part */
	fix_checksum(t, ACPI_RSDP_SIZE, 32); /* whole structure */
}

static void build_sdt(uint8_t *t, const char *sig, unsigned int entry_size, const uint64_t *tables,
		      unsigned int n)
{
	uint32_t len = ACPI_HDR_SIZE + entry_size * n;

	header(t, sig, len, 1);
	for (unsigned int i = 0; i < n; i++) {
		if (entry_size == 8)
			put64(t + ACPI_HDR_SIZE + 8 * i, tables[i]);
		else
			put32(t + ACPI_HDR_SIZE + 4 * i, (uint32_t)tables[i]);
	}
	fix_checksum(t, len, 9);
}

static void build_fadt(uint8_t *t, uint64_t dsdt)
{
	header(t, "FACP", ACPI_FADT_SIZE, 6);
	/* FIRMWARE_CTRL/X_FIRMWARE_CTRL stay 0: no FACS in HW-reduced mode. */
	put32(t + ACPI_FADT_DSDT, (uint32_t)dsdt);
	/* SCI_INT, SMI_CMD, PM1/PM2/PM_TMR/GPE blocks: all 0 (HW-reduced). */
	/*
	 * Only "no VGA": no 8042 bit, so Linux marks the i8042 firmware-absent
	 * and does not probe it; CMOS_RTC_NOT_PRESENT is clear, so the RTC is
	 * registered. MSI and ASPM are allowed (bits 3 and 4 clear).
	 */
	put16(t + ACPI_FADT_BOOT_ARCH, ACPI_BOOT_ARCH_NO_VGA);
	put32(t + ACPI_FADT_FLAGS, ACPI_FADT_F_HW_REDUCED | ACPI_FADT_F_RESET_REG_SUP);
	gas_io8(t + ACPI_FADT_RESET_REG, PORT_RESET_CF9);
	t[ACPI_FADT_RESET_VAL] = ACPI_RESET_VALUE;
	t[ACPI_FADT_MINOR] = 0; /* ACPI 6.0 */
	put64(t + ACPI_FADT_X_DSDT, dsdt);
	gas_io8(t + ACPI_FADT_SLEEP_CTL, PORT_ACPI_SLEEP_CTL);
	gas_io8(t + ACPI_FADT_SLEEP_STS, PORT_ACPI_SLEEP_STS);
	memcpy(t + ACPI_FADT_HV_ID, ACPI_HYPERVISOR_ID, 8);
	fix_checksum(t, ACPI_FADT_SIZE, 9);
}

static size_t madt_size(unsigned int ncpus)
{
	return ACPI_HDR_SIZE + 8 + MADT_LAPIC_LEN * ncpus + MADT_IOAPIC_LEN + MADT_ISO_LEN +
	       MADT_LAPIC_NMI_LEN;
}

static void build_madt(uint8_t *t, unsigned int ncpus)
{
	uint32_t len = (uint32_t)madt_size(ncpus);
	uint8_t *e = t + ACPI_HDR_SIZE + 8;

	/* Revision 4 (ACPI 6.0); Linux only looks at it for "online capable" (>= 5). */
	header(t, "APIC", len, 4);
	put32(t + ACPI_HDR_SIZE, (uint32_t)LAPIC_ADDR);
	/*
	 * PCAT_COMPAT clear: there is no 8259 pair. Linux x86 ignores this flag
	 * anyway; HW-reduced mode already makes it use null_legacy_pic.
	 */
	put32(t + ACPI_HDR_SIZE + 4, 0);

	for (unsigned int i = 0; i < ncpus; i++, e += MADT_LAPIC_LEN) {
		e[0] = ACPI_MADT_LAPIC;
		e[1] = MADT_LAPIC_LEN;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		put32(e + 4, 1);   /* enabled */
	}

	e[0] = ACPI_MADT_IOAPIC;
	e[1] = MADT_IOAPIC_LEN;
	/*
	 * ID 0 as QEMU does: it is what KVM's in-kernel IOAPIC resets to, so
	 * Linux (which only needs IOAPIC ids unique among IOAPICs) never has to
	 * reprogram it.
	 */
	e[2] = ACPI_MADT_IOAPIC_ID;
	e[3] = 0;
	put32(e + 4, (uint32_t)IOAPIC_ADDR);
	put32(e + 8, 0); /* GSI base */
	e += MADT_IOAPIC_LEN;

	/* ISA IRQ0 (PIT) is wired to IOAPIC pin 2, as on every PC. */
	e[0] = ACPI_MADT_ISO;
	e[1] = MADT_ISO_LEN;
	e[2] = 0; /* bus: ISA */
	e[3] = 0; /* source IRQ */
	put32(e + 4, 2);
	put16(e + 8, 0); /* bus-conformant polarity and trigger */
	e += MADT_ISO_LEN;

	/* NMI on LINT1 of every processor. */
	e[0] = ACPI_MADT_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_LEN;
	e[2] = 0xff; /* all processors */
	put16(e + 3, 0);
	e[5] = 1; /* LINT1 */

	fix_checksum(t, len, 9);
}

/*
 * The VM generation ID (Microsoft's "Virtual Machine Generation ID" spec, Linux's
 * drivers/virt/vmgenid.c): ADDR is the 16 bytes' guest-physical address as a package
 * of two 32-bit halves. Hardware-reduced ACPI has no GPE blocks, so the change is
 * signalled by a generic event device (ACPI0013): its interrupt makes the guest run
 * _EVT, which notifies VGEN (0x80); Linux then reads the new ID and reseeds its RNG.
 */
static void build_vmgenid_aml(struct aml *a, const struct acpi_config *cfg)
{
	aml_device_begin(a, "VGEN");
	aml_name(a, "_HID");
	aml_string(a, "VMGENCTR");
	aml_name(a, "_DDN");
	aml_string(a, "VM_Gen_Counter");
	aml_name(a, "ADDR");
	aml_package_begin(a, 2);
	aml_integer(a, cfg->vmgenid_addr & 0xffffffffu);
	aml_integer(a, cfg->vmgenid_addr >> 32);
	aml_end(a);
	aml_end(a); /* Device */

	aml_device_begin(a, "GED0");
	aml_name(a, "_HID");
	aml_string(a, "ACPI0013");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_irq(a, cfg->ged_irq);
	aml_rt_end(a);
	aml_method_begin(a, "_EVT", 1);
	aml_notify(a, "\\_SB.VGEN", 0x80);
	aml_end(a); /* Method */
	aml_end(a); /* Device */
}

/*
 * \_S5_ for poweroff and the PCI host bridge. There is no _PRT: every device
 * we emulate uses MSI/MSI-X, so INTx is never routed (Linux logs "no IRQ
 * known for pin" for a device that still has an interrupt pin, harmlessly).
 */
static void build_dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	/*
	 * Package(){ SLP_TYPa, SLP_TYPb, 0, 0 }: ACPICA's acpi_get_sleep_type_data()
	 * takes the first two integers (any count >= 1 is accepted).
	 */
	aml_name(a, "\\_S5_");
	aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);

	aml_scope_begin(a, "\\_SB");
	/* Without a PNP0A03 device Linux does not scan PCI at all under ACPI. */
	aml_device_begin(a, "PCI0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0A03");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_SEG");
	aml_integer(a, 0);
	aml_name(a, "_BBN");
	aml_integer(a, 0);

	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_word_bus(a, 0x00, 0xff);
	/* The config ports are consumed by the bridge itself, not forwarded. */
	aml_rt_io16(a, PORT_PCI_CONF_ADDR, PORT_PCI_CONF_ADDR, 1, 8);
	aml_rt_word_io(a, (uint16_t)cfg->io_base, (uint16_t)(cfg->io_base + cfg->io_size - 1));
	aml_rt_dword_mem(a, AML_MEM_RW | AML_MEM_NONCACHE, (uint32_t)cfg->mmio32_base,
			 (uint32_t)(cfg->mmio32_base + cfg->mmio32_size - 1));
	if (cfg->mmio64_size)
		aml_rt_qword_mem(a, AML_MEM_RW | AML_MEM_PREFETCH, cfg->mmio64_base,
				 cfg->mmio64_base + cfg->mmio64_size - 1);
	aml_rt_end(a);

	aml_end(a); /* Device */

	/*
	 * Legacy devices must be described too: in hardware-reduced mode Linux
	 * has no legacy PIC, so ISA IRQs 0-15 get no identity mapping and only
	 * a _CRS interrupt makes IRQ 4 reach the 8250 driver.
	 */
	aml_device_begin(a, "COM1");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0501");
	aml_name(a, "_UID");
	aml_integer(a, 0);
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io16(a, PORT_COM1, PORT_COM1, 1, 8);
	aml_rt_irq(a, IRQ_COM1);
	aml_rt_end(a);
	aml_end(a); /* Device */

	/* The CMOS clock, without its alarm interrupt (we emulate none). */
	aml_device_begin(a, "RTC0");
	aml_name(a, "_HID");
	aml_eisaid(a, "PNP0B00");
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_io16(a, PORT_CMOS_INDEX, PORT_CMOS_INDEX, 1, 2);
	aml_rt_end(a);
	aml_end(a); /* Device */

	if (cfg->vmgenid_addr)
		build_vmgenid_aml(a, cfg);
	aml_end(a); /* Scope */
}

int acpi_build(void *buf, size_t size, uint64_t gpa, const struct acpi_config *cfg)
{
	uint8_t *b = buf;
	size_t xsdt, rsdt, fadt, madt, dsdt, end;
	uint64_t tables[ACPI_NTABLES];
	struct aml a;
	long aml_len;
	int ret;

	if (!buf || !cfg || (gpa & 15))
		return -EINVAL;
	ret = check_config(cfg);
	if (ret)
		return ret;

	xsdt = ALIGN16(ACPI_RSDP_SIZE);
	rsdt = ALIGN16(xsdt + ACPI_HDR_SIZE + 8 * ACPI_NTABLES);
	fadt = ALIGN16(rsdt + ACPI_HDR_SIZE + 4 * ACPI_NTABLES);
	madt = ALIGN16(fadt + ACPI_FADT_SIZE);
	dsdt = ALIGN16(madt + madt_size(cfg->ncpus));
	if (size < dsdt + ACPI_HDR_SIZE)
		return -ENOSPC;
	memset(buf, 0, size);

	aml_init(&a, b + dsdt + ACPI_HDR_SIZE, size - dsdt - ACPI_HDR_SIZE);
	build_dsdt_aml(&a, cfg);
	aml_len = aml_finish(&a);
	if (aml_len < 0)
		return (int)aml_len;
	end = dsdt + ACPI_HDR_SIZE + (size_t)aml_len;
	/* RSDT, FADT.DSDT and the MADT addresses are 32-bit. */
	if (end > INT32_MAX || gpa > UINT32_MAX || end - 1 > UINT32_MAX - gpa)
		return -EINVAL;
	/* Revision 2: integers in the AML are 64-bit (the QWord window needs it). */
	header(b + dsdt, "DSDT", (uint32_t)(end - dsdt), 2);
	fix_checksum(b + dsdt, end - dsdt, 9);

	build_madt(b + madt, cfg->ncpus);
	build_fadt(b + fadt, gpa + dsdt);
	tables[0] = gpa + fadt;
	tables[1] = gpa + madt;
	build_sdt(b + xsdt, "XSDT", 8, tables, ACPI_NTABLES);
	build_sdt(b + rsdt, "RSDT", 4, tables, ACPI_NTABLES);
	build_rsdp(b, gpa + rsdt, gpa + xsdt);
	return (int)end;
}
