// SPDX-License-Identifier: GPL-2.0-or-later
/* bzImage header parsing, initrd placement, guest memory layout and e820. */
#include <asm/bootparam.h>
#include <check.h>
#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "mm/guest_mem.h"
#include "util.h"
#include "vcpu/boot.h"
#include "unit.h"

#define IMG_SIZE 0x10000

static uint8_t img[IMG_SIZE];

static struct setup_header *hdr(void)
{
	return (struct setup_header *)(img + 0x1f1);
}

/* A minimal valid 2.15 bzImage header in img. */
static void make_bzimage(void)
{
	struct setup_header *h = hdr();

	memset(img, 0, sizeof(img));
	h->setup_sects = 0x1b;
	h->boot_flag = 0xaa55;
	h->header = 0x53726448; /* "HdrS" */
	h->version = 0x020f;
	h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	h->pref_address = 0x1000000;
	h->init_size = 0x2000000;
	h->initrd_addr_max = 0x7fffffff;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->cmdline_size = 2047;
}

START_TEST(test_header_offsets)
{
	/* The offsets boot.rst documents, as struct setup_header lays them out. */
	make_bzimage();
	ck_assert_uint_eq(img[0x1f1], 0x1b);
	ck_assert_uint_eq(img[0x1fe] | img[0x1ff] << 8, 0xaa55);
	ck_assert_mem_eq(img + 0x202, "HdrS", 4);
	ck_assert_uint_eq(img[0x206] | img[0x207] << 8, 0x020f);
	ck_assert_uint_eq(img[0x236] & XLF_KERNEL_64, XLF_KERNEL_64);
	ck_assert_uint_eq(img[0x25b], 0x01); /* pref_address 0x1000000, little-endian */
	ck_assert_uint_eq(img[0x263], 0x02); /* init_size 0x2000000 */
	ck_assert_uint_eq(img[0x22f], 0x7f); /* initrd_addr_max */
	ck_assert_uint_eq(img[0x232], 0x20); /* kernel_alignment 0x200000 */
	ck_assert_uint_eq(img[0x234], 1);
	ck_assert_uint_eq(img[0x238] | img[0x239] << 8, 2047);
}
END_TEST

START_TEST(test_parse_valid)
{
	struct bzimage bz;

	make_bzimage();
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), 0);
	ck_assert_uint_eq(bz.version, 0x020f);
	ck_assert_uint_eq(bz.setup_size, (0x1b + 1) * 512);
	ck_assert_uint_eq(bz.pref_address, 0x1000000);
	ck_assert_uint_eq(bz.init_size, 0x2000000);
	ck_assert_uint_eq(bz.initrd_addr_max, 0x7fffffff);
	ck_assert_uint_eq(bz.kernel_alignment, 0x200000);
	ck_assert_uint_eq(bz.xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	ck_assert(bz.relocatable);
	ck_assert_uint_eq(bz.cmdline_size, 2047);

	/* setup_sects 0 means 4. */
	hdr()->setup_sects = 0;
	hdr()->relocatable_kernel = 0;
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), 0);
	ck_assert_uint_eq(bz.setup_size, 5 * 512);
	ck_assert(!bz.relocatable);

	/* Exactly 2.12 is enough. */
	hdr()->version = 0x020c;
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), 0);
	ck_assert_uint_eq(bz.version, 0x020c);
}
END_TEST

START_TEST(test_parse_rejects)
{
	struct bzimage bz;

	make_bzimage();
	/* Too short to hold the header (and the minimum the parser accepts). */
	ck_assert_int_eq(bzimage_parse(img, 0x200, &bz), -EINVAL);
	ck_assert_int_eq(bzimage_parse(img, 0xfff, &bz), -EINVAL);

	/* Bad magic, bad boot flag. */
	make_bzimage();
	img[0x202] = 'X';
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), -EINVAL);
	make_bzimage();
	hdr()->boot_flag = 0x55aa;
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), -EINVAL);

	/* Protocol older than 2.12: no xloadflags. The version is still reported. */
	make_bzimage();
	hdr()->version = 0x020b;
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), -ENOTSUP);
	ck_assert_uint_eq(bz.version, 0x020b);

	/* No 64-bit entry point. */
	make_bzimage();
	hdr()->xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), -ENOTSUP);

	/* Setup code as large as or larger than the file. */
	make_bzimage();
	hdr()->setup_sects = 0xff; /* 128 KiB of setup in a 64 KiB file */
	ck_assert_int_eq(bzimage_parse(img, sizeof(img), &bz), -EINVAL);
	hdr()->setup_sects = 7; /* 4 KiB: nothing left for the kernel */
	ck_assert_int_eq(bzimage_parse(img, 0x1000, &bz), -EINVAL);
	ck_assert_int_eq(bzimage_parse(img, 0x1001, &bz), 0);
}
END_TEST

START_TEST(test_parse_host_kernel)
{
	glob_t g;
	size_t i, parsed = 0;

	/* make deps installs linux-image-amd64: its absence is a broken setup. */
	ck_assert_msg(glob("/boot/vmlinuz-*", 0, NULL, &g) == 0, "no /boot/vmlinuz-*");
	for (i = 0; i < g.gl_pathc; i++) {
		struct bzimage bz;
		size_t len;
		void *k;

		if (read_file(g.gl_pathv[i], 512 << 20, &k, &len))
			continue; /* unreadable: not our business */
		ck_assert_msg(bzimage_parse(k, len, &bz) == 0, "%s", g.gl_pathv[i]);
		ck_assert_uint_ge(bz.version, 0x020c);
		ck_assert_uint_gt(bz.init_size, 0);
		ck_assert_uint_ge(bz.init_size, len - bz.setup_size);
		ck_assert_uint_eq(bz.pref_address, 0x1000000);
		ck_assert(bz.xloadflags & XLF_KERNEL_64);
		ck_assert(bz.relocatable);
		ck_assert_uint_gt(bz.setup_size, 512);
		ck_assert_uint_lt(bz.setup_size, len);
		ck_assert_uint_gt(bz.cmdline_size, 255);
		ck_assert_uint_ne(bz.kernel_alignment, 0);
		ck_assert_uint_eq(bz.kernel_alignment & (bz.kernel_alignment - 1), 0);
		free(k);
		parsed++;
	}
	globfree(&g);
	ck_assert_uint_gt(parsed, 0);
}
END_TEST

START_TEST(test_initrd_place)
{
	uint64_t a = 0;

	/* Top-aligned: the highest page boundary that still fits. */
	ck_assert_int_eq(initrd_place(0x2000000, 0x10000000, 0x100000, &a), 0);
	ck_assert_uint_eq(a, 0x10000000 - 0x100000);
	ck_assert_int_eq(initrd_place(0x2000000, 0x10000000, 0x100001, &a), 0);
	ck_assert_uint_eq(a, 0x10000000 - 0x101000);
	ck_assert_uint_eq(a % 4096, 0);
	/* A limit that is not page aligned (initrd_addr_max + 1 usually is). */
	ck_assert_int_eq(initrd_place(0, 0x7fffffff, 10, &a), 0);
	ck_assert_uint_eq(a, 0x7ffff000);
	ck_assert_uint_le(a + 10, 0x7fffffff);
	/* Exactly fills [floor, limit). */
	ck_assert_int_eq(initrd_place(0x1000, 0x3000, 0x2000, &a), 0);
	ck_assert_uint_eq(a, 0x1000);

	/* Too big for the whole space; below the floor; untouched output. */
	a = 42;
	ck_assert_int_eq(initrd_place(0, 0x1000, 0x1001, &a), -ENOSPC);
	ck_assert_int_eq(initrd_place(0x1000, 0x3000, 0x2001, &a), -ENOSPC);
	ck_assert_int_eq(initrd_place(0x2000000, 0x10000000, 0x10000000, &a), -ENOSPC);
	ck_assert_int_eq(initrd_place(0x2000000, 0x10000000, UINT64_MAX, &a), -ENOSPC);
	ck_assert_uint_eq(a, 42);
}
END_TEST

START_TEST(test_layout)
{
	uint64_t low, high;

	guest_mem_layout(256 * MiB, &low, &high);
	ck_assert_uint_eq(low, 256 * MiB);
	ck_assert_uint_eq(high, 0);
	guest_mem_layout(3 * GiB, &low, &high);
	ck_assert_uint_eq(low, 3 * GiB);
	ck_assert_uint_eq(high, 0);
	guest_mem_layout(3 * GiB + 4096, &low, &high);
	ck_assert_uint_eq(low, 3 * GiB);
	ck_assert_uint_eq(high, 4096);
	guest_mem_layout(4 * GiB, &low, &high);
	ck_assert_uint_eq(low, 3 * GiB);
	ck_assert_uint_eq(high, 1 * GiB);
	ck_assert_uint_eq(low, MMIO32_START);
}
END_TEST

START_TEST(test_gpa_to_hva)
{
	struct guest_mem m;
	const uint64_t sz = 64 * MiB;
	uint8_t *base, *p;

	ck_assert_int_eq(guest_mem_init(&m, sz), 0);
	ck_assert_uint_eq(m.nr, 1);
	ck_assert_uint_eq(m.total, sz);
	ck_assert_uint_eq(guest_mem_end(&m), sz);
	base = gpa_to_hva(&m, 0, 1);
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_eq(base, m.r[0].hva);

	p = gpa_to_hva(&m, 0x123456, 100);
	ck_assert_ptr_eq(p, base + 0x123456);
	p[0] = 0xa5; /* it is writable memory */
	ck_assert_uint_eq(base[0x123456], 0xa5);
	ck_assert_ptr_eq(gpa_to_hva(&m, 0, sz), base);
	/* Last byte; straddling the end; past the end. */
	ck_assert_ptr_eq(gpa_to_hva(&m, sz - 1, 1), base + sz - 1);
	ck_assert_ptr_eq(gpa_to_hva(&m, sz - 4, 4), base + sz - 4);
	ck_assert_ptr_null(gpa_to_hva(&m, sz - 4, 5));
	ck_assert_ptr_null(gpa_to_hva(&m, sz - 1, 2));
	ck_assert_ptr_null(gpa_to_hva(&m, 0, sz + 1));
	ck_assert_ptr_null(gpa_to_hva(&m, sz, 1));
	ck_assert_ptr_null(gpa_to_hva(&m, FOUR_GIB, 1));
	/* gpa + len wrapping around must not look like a small range. */
	ck_assert_ptr_null(gpa_to_hva(&m, UINT64_MAX - 1, 4));
	ck_assert_ptr_null(gpa_to_hva(&m, UINT64_MAX, 1));
	ck_assert_ptr_null(gpa_to_hva(&m, 16, UINT64_MAX));
	ck_assert_ptr_null(gpa_to_hva(&m, 16, UINT64_MAX - 8));
	/* len 0: fine inside, not at or past the end. */
	ck_assert_ptr_eq(gpa_to_hva(&m, 0, 0), base);
	ck_assert_ptr_eq(gpa_to_hva(&m, sz - 1, 0), base + sz - 1);
	ck_assert_ptr_null(gpa_to_hva(&m, sz, 0));
	ck_assert_ptr_null(gpa_to_hva(&m, UINT64_MAX, 0));
	guest_mem_free(&m);
	ck_assert_uint_eq(m.nr, 0);
}
END_TEST

START_TEST(test_gpa_to_hva_high)
{
	struct guest_mem m;
	uint8_t *hi;

	ck_assert_int_eq(guest_mem_init(&m, 4 * GiB), 0);
	ck_assert_uint_eq(m.nr, 2);
	ck_assert_uint_eq(m.total, 4 * GiB);
	ck_assert_uint_eq(m.r[0].gpa, 0);
	ck_assert_uint_eq(m.r[0].size, 3 * GiB);
	ck_assert_uint_eq(m.r[1].gpa, FOUR_GIB);
	ck_assert_uint_eq(m.r[1].size, 1 * GiB);
	ck_assert_uint_eq(guest_mem_end(&m), 5 * GiB);

	ck_assert_ptr_eq(gpa_to_hva(&m, 3 * GiB - 1, 1), (char *)m.r[0].hva + 3 * GiB - 1);
	/* The hole is not RAM, and no range spans the hole. */
	ck_assert_ptr_null(gpa_to_hva(&m, 3 * GiB, 1));
	ck_assert_ptr_null(gpa_to_hva(&m, 0xfee00000, 4));
	ck_assert_ptr_null(gpa_to_hva(&m, 3 * GiB - 4, 8));
	ck_assert_ptr_null(gpa_to_hva(&m, 4 * GiB - 1, 2));
	hi = gpa_to_hva(&m, FOUR_GIB, 4096);
	ck_assert_ptr_eq(hi, m.r[1].hva);
	ck_assert_ptr_eq(gpa_to_hva(&m, 5 * GiB - 1, 1), hi + GiB - 1);
	ck_assert_ptr_null(gpa_to_hva(&m, 5 * GiB - 1, 2));
	ck_assert_ptr_null(gpa_to_hva(&m, 5 * GiB, 1));
	ck_assert_ptr_null(gpa_to_hva(&m, UINT64_MAX - 1, 4));
	guest_mem_free(&m);
}
END_TEST

/* The VmFlags line of the mapping that starts at @p in /proc/self/smaps, "" if none. */
static void vm_flags(const void *p, char *out, size_t len)
{
	char line[500], want[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	bool in = false;

	ck_assert_ptr_nonnull(f);
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)p);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' '))
			in = !strncmp(line, want, strlen(want));
		else if (in && !strncmp(line, "VmFlags:", 8))
			snprintf(out, len, "%s", line + 8);
	}
	fclose(f);
}

/* [vm] merge = on: guest RAM is mergeable (KSM's "mg"), also a file mapped over it. */
START_TEST(test_merge)
{
	char flags[512], path[] = "/tmp/minivmm-merge.XXXXXX";
	struct guest_mem m;
	int fd;

	ck_assert_int_eq(guest_mem_init(&m, 64 << 20), 0);
	vm_flags(m.r[0].hva, flags, sizeof(flags));
	ck_assert_ptr_null(strstr(flags, " mg"));
	if (guest_mem_set_merge(&m) == -EINVAL) {
		printf("SKIP test_merge: this kernel has no KSM\n");
		guest_mem_free(&m);
		return;
	}
	vm_flags(m.r[0].hva, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " mg"), "VmFlags:%s", flags);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	ck_assert_int_eq(ftruncate(fd, 64 << 20), 0);
	ck_assert_int_eq(guest_mem_map_file(&m, 0, fd, 0), 0);
	vm_flags(m.r[0].hva, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " mg"), "after map_file: VmFlags:%s", flags);
	close(fd);
	guest_mem_free(&m);
}
END_TEST

/* Sorted, non-overlapping, non-empty entries. */
static void check_e820_sane(const struct e820_entry *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_uint_ne(t[i].size, 0);
		ck_assert_uint_gt(t[i].addr + t[i].size, t[i].addr);
		if (i)
			ck_assert_uint_le(t[i - 1].addr + t[i - 1].size, t[i].addr);
	}
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	ck_assert_uint_eq(e->addr, addr);
	ck_assert_uint_eq(e->size, size);
	ck_assert_uint_eq(e->type, type);
}

START_TEST(test_e820_low_only)
{
	struct e820_entry t[16];
	struct guest_mem m;
	int n;

	ck_assert_int_eq(guest_mem_init(&m, 256 * MiB), 0);
	n = e820_build(&m, t, 16);
	ck_assert_int_eq(n, 4);
	check_e820_sane(t, n);
	check_entry(&t[0], 0, 0x9fc00, E820_RAM);
	check_entry(&t[1], EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED);
	check_entry(&t[2], 0xe0000, 0x20000, E820_RESERVED);
	check_entry(&t[3], 1 * MiB, 255 * MiB, E820_RAM);

	/* Every room short of 4 fails cleanly. */
	ck_assert_int_eq(e820_build(&m, t, 4), 4);
	ck_assert_int_eq(e820_build(&m, t, 3), -ENOSPC);
	ck_assert_int_eq(e820_build(&m, t, 1), -ENOSPC);
	ck_assert_int_eq(e820_build(&m, t, 0), -ENOSPC);
	guest_mem_free(&m);
}
END_TEST

START_TEST(test_e820_high)
{
	struct e820_entry t[16];
	struct guest_mem m;
	uint64_t ram = 0;
	int n, i;

	ck_assert_int_eq(guest_mem_init(&m, 4 * GiB), 0);
	n = e820_build(&m, t, 16);
	ck_assert_int_eq(n, 5);
	check_e820_sane(t, n);
	check_entry(&t[0], 0, 0x9fc00, E820_RAM);
	check_entry(&t[1], EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED);
	check_entry(&t[2], 0xe0000, 0x20000, E820_RESERVED);
	check_entry(&t[3], 1 * MiB, 3 * GiB - 1 * MiB, E820_RAM);
	check_entry(&t[4], FOUR_GIB, 1 * GiB, E820_RAM);
	for (i = 0; i < n; i++) {
		/* Nothing but RAM-backed addresses is called RAM, and not the hole. */
		if (t[i].type == E820_RAM) {
			ram += t[i].size;
			ck_assert_ptr_nonnull(gpa_to_hva(&m, t[i].addr, t[i].size));
		}
		ck_assert(t[i].addr + t[i].size <= MMIO32_START || t[i].addr >= FOUR_GIB);
	}
	/* All RAM but the EBDA and the BIOS area [0xa0000, 1M). */
	ck_assert_uint_eq(ram, 4 * GiB - (1 * MiB - 0x9fc00));
	ck_assert_int_eq(e820_build(&m, t, 5), 5);
	ck_assert_int_eq(e820_build(&m, t, 4), -ENOSPC);
	guest_mem_free(&m);
}
END_TEST

static Suite *boot_suite(void)
{
	Suite *s = suite_create("boot");
	TCase *tc = tcase_create("bzimage");
	TCase *mem = tcase_create("guest_mem");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_merge);
	tcase_add_test(tc, test_header_offsets);
	tcase_add_test(tc, test_parse_valid);
	tcase_add_test(tc, test_parse_rejects);
	tcase_add_test(tc, test_parse_host_kernel);
	tcase_add_test(tc, test_initrd_place);
	suite_add_tcase(s, tc);

	tcase_set_timeout(mem, 30);
	tcase_add_test(mem, test_layout);
	tcase_add_test(mem, test_gpa_to_hva);
	tcase_add_test(mem, test_gpa_to_hva_high);
	tcase_add_test(mem, test_e820_low_only);
	tcase_add_test(mem, test_e820_high);
	suite_add_tcase(s, mem);
	return s;
}

int main(void)
{
	return unit_run(boot_suite());
}
