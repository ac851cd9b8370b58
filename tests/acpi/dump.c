// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test helper: build the ACPI tables as the VMM would and write each one to
 * DIR/<SIG>.dat (RSDP.dat too), walking RSDP -> XSDT like a guest does.
 *   usage: acpi-dump DIR [NCPUS [RAM_TOP]]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "layout.h"

static uint8_t tables[ACPI_TABLES_SIZE];

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

static int write_file(const char *dir, const char *sig, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%.4s.dat", dir, sig);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	ok = fwrite(p, 1, n, f) == n;
	if (fclose(f) || !ok) {
		perror(path);
		return -1;
	}
	printf("%s %zu\n", path, n);
	return 0;
}

/* The table at guest address @gpa, bounds-checked against the buffer. */
static const uint8_t *table_at(uint64_t gpa, size_t used, uint32_t *len)
{
	const uint8_t *t;

	if (gpa < ACPI_TABLES_ADDR || gpa - ACPI_TABLES_ADDR + ACPI_HDR_SIZE > used)
		return NULL;
	t = tables + (gpa - ACPI_TABLES_ADDR);
	*len = (uint32_t)get_le(t + 4, 4);
	if (*len < ACPI_HDR_SIZE || gpa - ACPI_TABLES_ADDR + *len > used)
		return NULL;
	return t;
}

int main(int argc, char **argv)
{
	struct acpi_config cfg;
	unsigned int ncpus = 2;
	uint64_t ram_top = 1ULL << 30;
	const uint8_t *xsdt, *fadt = NULL, *t;
	uint32_t xlen, len;
	int used;

	if (argc < 2 || argc > 5) {
		fprintf(stderr, "usage: %s DIR [NCPUS [RAM_TOP [vmgenid]]]\n", argv[0]);
		return 2;
	}
	if (argc > 2)
		ncpus = (unsigned int)strtoul(argv[2], NULL, 0);
	if (argc > 3)
		ram_top = strtoull(argv[3], NULL, 0);
	acpi_config_init(&cfg, ncpus, ram_top);
	if (argc > 4 && !strcmp(argv[4], "vmgenid")) {
		cfg.vmgenid_addr = VMGENID_ADDR;
		cfg.ged_irq = IRQ_GED;
	}
	used = acpi_build(tables, sizeof(tables), ACPI_TABLES_ADDR, &cfg);
	if (used < 0) {
		fprintf(stderr, "acpi_build: %s\n", strerror(-used));
		return 1;
	}
	if (write_file(argv[1], "RSDP", tables, ACPI_RSDP_SIZE))
		return 1;
	xsdt = table_at(get_le(tables + 24, 8), (size_t)used, &xlen);
	if (!xsdt || write_file(argv[1], "XSDT", xsdt, xlen))
		return 1;
	t = table_at(get_le(tables + 16, 4), (size_t)used, &len);
	if (!t || write_file(argv[1], "RSDT", t, len))
		return 1;
	for (uint32_t off = ACPI_HDR_SIZE; off + 8 <= xlen; off += 8) {
		t = table_at(get_le(xsdt + off, 8), (size_t)used, &len);
		if (!t || write_file(argv[1], (const char *)t, t, len))
			return 1;
		if (!memcmp(t, "FACP", 4))
			fadt = t;
	}
	t = fadt ? table_at(get_le(fadt + ACPI_FADT_X_DSDT, 8), (size_t)used, &len) : NULL;
	if (!t || write_file(argv[1], "DSDT", t, len))
		return 1;
	return 0;
}
