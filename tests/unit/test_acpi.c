// SPDX-License-Identifier: GPL-2.0-or-later
/* ACPI tables and the AML emitter: walk the tables as a guest would. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi/acpi.h"
#include "acpi/aml.h"
#include "layout.h"
#include "unit.h"

static uint8_t tbuf[ACPI_TABLES_SIZE];

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

/* The table at @gpa inside tbuf, with its signature, length and checksum checked. */
static const uint8_t *table(uint64_t gpa, const char *sig, int used)
{
	const uint8_t *t;
	uint32_t len;

	ck_assert_uint_ge(gpa, ACPI_TABLES_ADDR);
	ck_assert_uint_le(gpa - ACPI_TABLES_ADDR + ACPI_HDR_SIZE, (uint64_t)used);
	t = tbuf + (gpa - ACPI_TABLES_ADDR);
	len = (uint32_t)le(t + 4, 4);
	ck_assert_mem_eq(t, sig, 4);
	ck_assert_uint_ge(len, ACPI_HDR_SIZE);
	ck_assert_uint_le(gpa - ACPI_TABLES_ADDR + len, (uint64_t)used);
	ck_assert_uint_eq(acpi_checksum(t, len), 0);
	ck_assert_mem_eq(t + 10, "MINVMM", 6);
	ck_assert_mem_eq(t + 16, "MINIVMM ", 8);
	ck_assert_mem_eq(t + 28, "MVMM", 4);
	return t;
}

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	ck_assert_uint_eq(g[0], 1); /* SystemIO */
	ck_assert_uint_eq(g[1], 8);
	ck_assert_uint_eq(g[2], 0);
	ck_assert_uint_eq(g[3], 1); /* byte access */
	ck_assert_uint_eq(le(g + 4, 8), port);
}

static const uint8_t *memfind(const uint8_t *h, size_t hn, const void *n, size_t nn)
{
	return memmem(h, hn, n, nn);
}

static void check_madt(const uint8_t *t, unsigned int ncpus)
{
	uint32_t len = (uint32_t)le(t + 4, 4);
	unsigned int nlapic = 0, nioapic = 0, niso = 0, nnmi = 0;

	ck_assert_uint_eq(le(t + 36, 4), LAPIC_ADDR);
	ck_assert_uint_eq(le(t + 40, 4), 0); /* no PCAT_COMPAT */
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = t + off;

		ck_assert_uint_ge(e[1], 2);
		ck_assert_uint_le(off + e[1], len);
		switch (e[0]) {
		case 0:
			ck_assert_uint_eq(e[1], 8);
			ck_assert_uint_eq(e[2], nlapic); /* UID */
			ck_assert_uint_eq(e[3], nlapic); /* APIC ID */
			ck_assert_uint_eq(le(e + 4, 4), 1);
			nlapic++;
			break;
		case 1:
			ck_assert_uint_eq(e[1], 12);
			ck_assert_uint_eq(e[2], 0);
			ck_assert_uint_eq(le(e + 4, 4), IOAPIC_ADDR);
			ck_assert_uint_eq(le(e + 8, 4), 0);
			nioapic++;
			break;
		case 2:
			ck_assert_uint_eq(e[1], 10);
			ck_assert_uint_eq(e[2], 0);
			ck_assert_uint_eq(e[3], 0);
			ck_assert_uint_eq(le(e + 4, 4), 2);
			ck_assert_uint_eq(le(e + 8, 2), 0);
			niso++;
			break;
		case 4:
			ck_assert_uint_eq(e[1], 6);
			ck_assert_uint_eq(e[2], 0xff);
			ck_assert_uint_eq(le(e + 3, 2), 0);
			ck_assert_uint_eq(e[5], 1);
			nnmi++;
			break;
		default:
			ck_abort_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	ck_assert_uint_eq(nlapic, ncpus);
	ck_assert_uint_eq(nioapic, 1);
	ck_assert_uint_eq(niso, 1);
	ck_assert_uint_eq(nnmi, 1);
}

static void check_fadt(const uint8_t *t, uint64_t *dsdt)
{
	ck_assert_uint_eq(le(t + 4, 4), 276);
	ck_assert_uint_eq(t[8], 6);
	ck_assert_uint_eq(le(t + 36, 4), 0);	    /* FIRMWARE_CTRL: no FACS */
	ck_assert_uint_eq(le(t + 46, 2), 0);	    /* no SCI */
	ck_assert_uint_eq(le(t + 109, 2), 1U << 2); /* VGA not present only */
	ck_assert_uint_eq(le(t + 112, 4), (1U << 20) | (1U << 10));
	check_gas_io8(t + 116, PORT_RESET_CF9);
	ck_assert_uint_eq(t[128], ACPI_RESET_VALUE);
	ck_assert_uint_eq(t[131], 0);
	ck_assert_uint_eq(le(t + 132, 8), 0); /* X_FIRMWARE_CTRL */
	ck_assert_uint_eq(le(t + 40, 4), le(t + 140, 8));
	check_gas_io8(t + 244, PORT_ACPI_SLEEP_CTL);
	check_gas_io8(t + 256, PORT_ACPI_SLEEP_STS);
	ck_assert_mem_eq(t + 268, "MINIVMM", 7);
	*dsdt = le(t + 140, 8);
}

static void check_dsdt(const uint8_t *t, const struct acpi_config *cfg)
{
	uint32_t len = (uint32_t)le(t + 4, 4);
	/* Name(\_S5_, Package(4){ 5, 5, 0, 0 }) */
	/* clang-format off */
	static const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04,
				      0x0a, ACPI_S5_SLP_TYP, 0x0a, ACPI_S5_SLP_TYP, 0x00, 0x00 };
	/* clang-format on */
	/* Name(_HID, EisaId("PNP0A03")): 0x41d00a03 stored big-endian. */
	static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
	static const uint8_t cf8[] = { 0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08 };
	uint8_t q[8];
	const uint8_t *p;

	ck_assert_uint_eq(t[8], 2);
	ck_assert_ptr_nonnull(memfind(t, len, s5, sizeof(s5)));
	ck_assert_ptr_nonnull(memfind(t, len, hid, sizeof(hid)));
	ck_assert_ptr_nonnull(memfind(t, len, "PCI0", 4));
	ck_assert_ptr_nonnull(memfind(t, len, "\\_SB_", 5));
	ck_assert_ptr_nonnull(memfind(t, len, cf8, sizeof(cf8)));
	ck_assert_ptr_null(memfind(t, len, "_PRT", 4));
	/* QWordMemory: tag 0x8a, 43 bytes, memory, min/max of the 64-bit window. */
	p = memfind(t, len, "\x8a\x2b\x00\x00\x0c\x07", 6);
	ck_assert_ptr_nonnull(p);
	for (int i = 0; i < 8; i++)
		q[i] = (uint8_t)(cfg->mmio64_base >> (8 * i));
	ck_assert_mem_eq(p + 14, q, 8);
	ck_assert_uint_eq(le(p + 22, 8), cfg->mmio64_base + cfg->mmio64_size - 1);
	ck_assert_uint_eq(le(p + 38, 8), cfg->mmio64_size);
	/* DWordMemory: non-cacheable read-write. */
	p = memfind(t, len, "\x87\x17\x00\x00\x0c\x01", 6);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(le(p + 10, 4), cfg->mmio32_base);
	ck_assert_uint_eq(le(p + 14, 4), cfg->mmio32_base + cfg->mmio32_size - 1);
	/* The resource template ends with an EndTag. */
	ck_assert_ptr_nonnull(memfind(t, len, "\x79\x00", 2));
}

static void build_and_walk(unsigned int ncpus)
{
	struct acpi_config cfg;
	const uint8_t *rsdp = tbuf, *xsdt, *rsdt;
	uint64_t dsdt = 0;
	uint32_t xlen;
	int used, nfadt = 0, nmadt = 0;

	acpi_config_init(&cfg, ncpus, 6ULL << 30);
	ck_assert_uint_eq(cfg.mmio64_base, 6ULL << 30);
	memset(tbuf, 0xaa, sizeof(tbuf));
	used = acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg);
	ck_assert_int_gt(used, 0);
	ck_assert_uint_le((unsigned int)used, ACPI_TABLES_SIZE);

	ck_assert_mem_eq(rsdp, "RSD PTR ", 8);
	ck_assert_uint_eq(acpi_checksum(rsdp, 20), 0);
	ck_assert_uint_eq(acpi_checksum(rsdp, 36), 0);
	ck_assert_uint_eq(rsdp[15], 2);
	ck_assert_uint_eq(le(rsdp + 20, 4), 36);
	ck_assert_mem_eq(rsdp + 9, "MINVMM", 6);

	xsdt = table(le(rsdp + 24, 8), "XSDT", used);
	xlen = (uint32_t)le(xsdt + 4, 4);
	ck_assert_uint_eq((xlen - 36) % 8, 0);
	ck_assert_uint_eq(xlen, 36 + 2 * 8);
	rsdt = table(le(rsdp + 16, 4), "RSDT", used);
	ck_assert_uint_eq(le(rsdt + 4, 4), 36 + 2 * 4);
	for (uint32_t i = 0; i < 2; i++) {
		uint64_t gpa = le(xsdt + 36 + 8 * i, 8);
		const uint8_t *t = tbuf + (gpa - ACPI_TABLES_ADDR);

		ck_assert_uint_eq(le(rsdt + 36 + 4 * i, 4), gpa);
		if (!memcmp(t, "FACP", 4)) {
			check_fadt(table(gpa, "FACP", used), &dsdt);
			nfadt++;
		} else {
			check_madt(table(gpa, "APIC", used), ncpus);
			nmadt++;
		}
	}
	ck_assert_int_eq(nfadt, 1);
	ck_assert_int_eq(nmadt, 1);
	check_dsdt(table(dsdt, "DSDT", used), &cfg);
}

START_TEST(test_tables_1cpu)
{
	build_and_walk(1);
}
END_TEST

START_TEST(test_tables_2cpus)
{
	build_and_walk(2);
}
END_TEST

START_TEST(test_tables_64cpus)
{
	build_and_walk(64);
}
END_TEST

START_TEST(test_enospc)
{
	struct acpi_config cfg;
	int used;

	acpi_config_init(&cfg, 4, 1ULL << 30);
	used = acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg);
	ck_assert_int_gt(used, 0);
	/* Every size short of the full build fails cleanly. */
	for (size_t sz = 0; sz < (size_t)used; sz += sz < 600 ? 1 : 7)
		ck_assert_int_eq(acpi_build(tbuf, sz, ACPI_TABLES_ADDR, &cfg), -ENOSPC);
	ck_assert_int_eq(acpi_build(tbuf, (size_t)used - 1, ACPI_TABLES_ADDR, &cfg), -ENOSPC);
	ck_assert_int_eq(acpi_build(tbuf, (size_t)used, ACPI_TABLES_ADDR, &cfg), used);
}
END_TEST

START_TEST(test_einval)
{
	struct acpi_config cfg;

	acpi_config_init(&cfg, 0, 1ULL << 30);
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	acpi_config_init(&cfg, ACPI_MAX_CPUS + 1, 1ULL << 30);
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	acpi_config_init(&cfg, 2, 1ULL << 30);
	ck_assert_uint_eq(cfg.mmio64_base, FOUR_GIB);
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR + 8, &cfg), -EINVAL);
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), FOUR_GIB, &cfg), -EINVAL);
	ck_assert_int_eq(acpi_build(NULL, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, NULL), -EINVAL);
	cfg.io_size = 0x8000; /* 0xc000 + 0x8000 > 64 KiB */
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	acpi_config_init(&cfg, 2, 1ULL << 30);
	cfg.mmio32_size = FOUR_GIB;
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	acpi_config_init(&cfg, 2, 1ULL << 30);
	cfg.mmio64_base = 1ULL << 30;
	ck_assert_int_eq(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), -EINVAL);
	/* No 64-bit window at all is fine: the QWordMemory is left out. */
	cfg.mmio64_size = 0;
	ck_assert_int_gt(acpi_build(tbuf, sizeof(tbuf), ACPI_TABLES_ADDR, &cfg), 0);
}
END_TEST

START_TEST(test_pkglen_encode)
{
	static const struct {
		uint32_t len;
		int n;
		uint8_t b[4];
	} cases[] = {
		{ 0, 1, { 0x00 } },
		{ 63, 1, { 0x3f } },
		{ 64, 2, { 0x40, 0x04 } },
		{ 4095, 2, { 0x4f, 0xff } },
		{ 4096, 3, { 0x80, 0x00, 0x01 } },
		{ 1048575, 3, { 0x8f, 0xff, 0xff } },
		{ 1048576, 4, { 0xc0, 0x00, 0x00, 0x01 } },
		{ 0x0fffffff, 4, { 0xcf, 0xff, 0xff, 0xff } },
	};
	uint8_t b[4];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(b, 0, sizeof(b));
		ck_assert_int_eq(aml_pkglen_encode(cases[i].len, b), cases[i].n);
		ck_assert_mem_eq(b, cases[i].b, (size_t)cases[i].n);
	}
	ck_assert_int_eq(aml_pkglen_encode(0x10000000, b), -EINVAL);

	/* Body sizes: the encoding counts itself, so limits move by n. */
	ck_assert_int_eq(aml_pkglen_size(62), 1);
	ck_assert_int_eq(aml_pkglen_size(63), 2);
	ck_assert_int_eq(aml_pkglen_size(4093), 2);
	ck_assert_int_eq(aml_pkglen_size(4094), 3);
	ck_assert_int_eq(aml_pkglen_size(1048572), 3);
	ck_assert_int_eq(aml_pkglen_size(1048573), 4);
	ck_assert_int_eq(aml_pkglen_size(0x0ffffffb), 4);
	ck_assert_int_eq(aml_pkglen_size(0x0ffffffc), -EINVAL);
}
END_TEST

/* A Buffer of @n bytes; its PkgLength counts BufferSize, data and itself. */
static void check_buffer_pkglen(size_t n)
{
	size_t cap = n + 32;
	uint8_t *out = calloc(1, cap), *data = calloc(1, n ? n : 1);
	uint8_t enc[4];
	size_t isz = n == 0 || n == 1 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5;
	struct aml a;
	long len;
	int pn;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(data);
	memset(data, 0x5a, n);
	aml_init(&a, out, cap);
	aml_buffer(&a, data, n);
	len = aml_finish(&a);
	ck_assert_int_gt(len, 0);
	ck_assert_uint_eq(out[0], AML_BUFFER_OP);
	pn = aml_pkglen_encode((uint32_t)(len - 1), enc);
	ck_assert_int_gt(pn, 0);
	ck_assert_mem_eq(out + 1, enc, (size_t)pn);
	ck_assert_uint_eq((size_t)len, 1 + (size_t)pn + isz + n);
	ck_assert_uint_eq(out[len - 1], n ? 0x5a : out[len - 1]);
	free(out);
	free(data);
}

START_TEST(test_pkglen_backpatch)
{
	/* Around each limit: 1/2 bytes at 63, 2/3 at 4095, 3/4 at 1048575. */
	/* clang-format off */
	static const size_t sizes[] = { 0, 1, 58, 59, 60, 61, 62, 4088, 4089, 4090, 4091,
					4092, 1048566, 1048567, 1048568, 1048569, 1048570 };
	/* clang-format on */

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_buffer_pkglen(sizes[i]);
}
END_TEST

START_TEST(test_aml_basics)
{
	uint8_t out[256];
	struct aml a;
	long len;

	aml_init(&a, out, sizeof(out));
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, UINT64_MAX);
	aml_integer(&a, 0xff);
	aml_integer(&a, 0x100);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0x100000000ULL);
	len = aml_finish(&a);
	ck_assert_int_eq(len, 1 + 1 + 1 + 2 + 3 + 5 + 9);
	ck_assert_mem_eq(out, "\x00\x01\xff\x0a\xff\x0b\x00\x01\x0c\x00\x00\x01\x00", 13);
	ck_assert_mem_eq(out + 13, "\x0e\x00\x00\x00\x00\x01\x00\x00\x00", 9);

	aml_init(&a, out, sizeof(out));
	aml_namestring(&a, "\\_SB.PCI0");
	aml_namestring(&a, "\\_SB.PCI0.ISA");
	aml_namestring(&a, "^FOO");
	aml_namestring(&a, "");
	aml_string(&a, "hi");
	len = aml_finish(&a);
	ck_assert_int_eq(len, 10 + 15 + 5 + 1 + 4); /* "FOO" pads to "FOO_" */
	ck_assert_mem_eq(out, "\\\x2e_SB_PCI0", 10);
	ck_assert_mem_eq(out + 10, "\\\x2f\x03_SB_PCI0ISA_", 15);
	ck_assert_mem_eq(out + 25, "^FOO_\x00\x0dhi\x00", 10);

	/* Scope(\_SB){ Device(PCI0){} }: nested PkgLengths. */
	aml_init(&a, out, sizeof(out));
	aml_scope_begin(&a, "\\_SB");
	aml_device_begin(&a, "PCI0");
	aml_end(&a);
	aml_end(&a);
	ck_assert_int_eq(aml_finish(&a), 14);
	ck_assert_mem_eq(out, "\x10\x0d\\_SB_\x5b\x82\x05PCI0", 14);

	/* Method(_EVT, 1){ Notify(\_SB.VGEN, 0x80) }: what iasl emits for it. */
	aml_init(&a, out, sizeof(out));
	aml_method_begin(&a, "_EVT", 1);
	aml_notify(&a, "\\_SB.VGEN", 0x80);
	aml_end(&a);
	ck_assert_int_eq(aml_finish(&a), 20);
	ck_assert_mem_eq(out, "\x14\x13_EVT\x01\x86\\\x2e_SB_VGEN\x0a\x80", 20);
	aml_init(&a, out, sizeof(out));
	aml_method_begin(&a, "_EVT", 8);
	aml_end(&a);
	ck_assert_int_eq(aml_finish(&a), -EINVAL);

	/* Bad input and misuse are sticky errors. */
	aml_init(&a, out, sizeof(out));
	aml_namestring(&a, "TOOLONG");
	ck_assert_int_eq(aml_finish(&a), -EINVAL);
	aml_init(&a, out, sizeof(out));
	aml_eisaid(&a, "pnp0a03");
	ck_assert_int_eq(aml_finish(&a), -EINVAL);
	aml_init(&a, out, sizeof(out));
	aml_scope_begin(&a, "\\_SB");
	ck_assert_int_eq(aml_finish(&a), -EINVAL); /* left open */
	aml_init(&a, out, sizeof(out));
	aml_end(&a);
	ck_assert_int_eq(aml_finish(&a), -EINVAL);
	aml_init(&a, out, 3);
	aml_string(&a, "abc");
	ck_assert_int_eq(aml_finish(&a), -ENOSPC);
}
END_TEST

START_TEST(test_eisaid)
{
	uint8_t out[8];
	uint32_t v;
	struct aml a;

	ck_assert_int_eq(aml_eisaid_value("PNP0A03", &v), 0);
	ck_assert_uint_eq(v, 0x41d00a03);
	ck_assert_int_eq(aml_eisaid_value("PNP0A08", &v), 0);
	ck_assert_uint_eq(v, 0x41d00a08);
	aml_init(&a, out, sizeof(out));
	aml_eisaid(&a, "PNP0A03");
	ck_assert_int_eq(aml_finish(&a), 5);
	/* What iasl emits for EisaId("PNP0A03"): DWordConst 0x030AD041. */
	ck_assert_mem_eq(out, "\x0c\x41\xd0\x0a\x03", 5);
}
END_TEST

START_TEST(test_resource_template)
{
	uint8_t out[128];
	struct aml a;
	long len;

	aml_init(&a, out, sizeof(out));
	aml_rt_begin(&a);
	aml_rt_io16(&a, 0xcf8, 0xcf8, 1, 8);
	aml_rt_word_bus(&a, 0, 0xff);
	aml_rt_end(&a);
	len = aml_finish(&a);
	/* BufferOp, PkgLength, WordConst size, IO (8), WordBus (16), EndTag (2). */
	ck_assert_int_eq(len, 1 + 1 + 3 + 8 + 16 + 2);
	ck_assert_uint_eq(out[1], len - 1);
	ck_assert_mem_eq(out + 2, "\x0b\x1a\x00", 3);
	ck_assert_mem_eq(out + 5, "\x47\x01\xf8\x0c\xf8\x0c\x01\x08", 8);
	ck_assert_mem_eq(out + 13,
			 "\x88\x0d\x00\x02\x0c\x00\x00\x00\x00\x00\xff\x00\x00\x00\x00\x01", 16);
	ck_assert_mem_eq(out + 29, "\x79\x00", 2);

	aml_init(&a, out, sizeof(out));
	aml_rt_begin(&a);
	aml_rt_begin(&a); /* nesting is a bug */
	ck_assert_int_eq(aml_finish(&a), -EINVAL);
	aml_init(&a, out, sizeof(out));
	aml_rt_begin(&a);
	aml_rt_dword_mem(&a, AML_MEM_RW, 2, 1); /* max < min */
	aml_rt_end(&a);
	ck_assert_int_eq(aml_finish(&a), -EINVAL);
}
END_TEST

static Suite *acpi_suite(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tables_1cpu);
	tcase_add_test(tc, test_tables_2cpus);
	tcase_add_test(tc, test_tables_64cpus);
	tcase_add_test(tc, test_enospc);
	tcase_add_test(tc, test_einval);
	tcase_add_test(tc, test_pkglen_encode);
	tcase_add_test(tc, test_pkglen_backpatch);
	tcase_add_test(tc, test_aml_basics);
	tcase_add_test(tc, test_eisaid);
	tcase_add_test(tc, test_resource_template);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(acpi_suite());
}
