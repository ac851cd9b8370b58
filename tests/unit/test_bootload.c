// SPDX-License-Identifier: GPL-2.0-or-later
/* boot_load end to end into guest memory: bzImage (guest and host decompression,
 * the kernel cache), boot_params, initrd, command line, and PVH ELF kernels. */
#include <asm/bootparam.h>
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/unpack.h"
#include "vm.h"
#include "unit.h"

static char dir[] = "/tmp/minivmm-bootload-XXXXXX";
static char initrd_path[256], cache_path[256];
static struct vm_config cfg;
static struct vm vm;
static uint8_t initrd_data[12345];

static const char *host_kernel(void)
{
	static char path[256];
	glob_t g;

	ck_assert_msg(glob("/boot/vmlinuz-*", 0, NULL, &g) == 0, "no /boot/vmlinuz-*");
	snprintf(path, sizeof(path), "%s", g.gl_pathv[g.gl_pathc - 1]);
	globfree(&g);
	return path;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write_all(fd, data, len), 0);
	close(fd);
}

static void setup(void)
{
	unsigned int i;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (i = 0; i < sizeof(initrd_data); i++)
		initrd_data[i] = (uint8_t)(i * 7 + 3);
	snprintf(initrd_path, sizeof(initrd_path), "%s/initrd", dir);
	write_file(initrd_path, initrd_data, sizeof(initrd_data));
	snprintf(cache_path, sizeof(cache_path), "%s/cache", dir);
	setenv("MINIVMM_CACHE_DIR", cache_path, 1);
	memset(&cfg, 0, sizeof(cfg));
	cfg.kernel = (char *)host_kernel();
	cfg.initrd = initrd_path;
	cfg.cmdline = "console=ttyS0 hello=world";
	cfg.vcpus = 1;
	cfg.decompress = DECOMPRESS_GUEST;
	memset(&vm, 0, sizeof(vm));
	vm.cfg = &cfg;
	ck_assert_int_eq(guest_mem_init(&vm.mem, 256 << 20), 0);
}

static void teardown(void)
{
	char cmd[300];

	guest_mem_free(&vm.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(dir, "/tmp/minivmm-bootload-XXXXXX");
}

static void *gmem(uint64_t gpa, uint64_t len)
{
	void *p = gpa_to_hva(&vm.mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void check_common(const struct boot_info *bi)
{
	static const uint8_t reset_stub[] = { 0xba, 0xf9, 0x0c, 0xb0, 0x06, 0xee };
	const uint64_t *pml4 = gmem(PML4_ADDR, 8), *pdpt = gmem(PDPT_ADDR, 32);
	const uint64_t *pd = gmem(PD_ADDR, 4 * 4096);

	(void)bi;
	ck_assert_str_eq(gmem(CMDLINE_ADDR, 32), cfg.cmdline);
	ck_assert_mem_eq(gmem(RESET_VECTOR_ADDR, sizeof(reset_stub)), reset_stub,
			 sizeof(reset_stub));
	ck_assert_uint_eq(pml4[0], PDPT_ADDR | 3);
	ck_assert_uint_eq(pdpt[3], (PD_ADDR + 3 * 4096) | 3);
	ck_assert_uint_eq(pd[0], 0x83);
	ck_assert_uint_eq(pd[2047], (2047ULL << 21) | 0x83);
}

static const struct boot_params *check_boot_params(uint64_t kernel_end)
{
	const struct boot_params *bp = gmem(BOOT_PARAMS_ADDR, sizeof(*bp));
	struct e820_entry e[8];
	int n = e820_build(&vm.mem, e, 8), i;

	ck_assert_uint_eq(bp->hdr.header, 0x53726448);
	ck_assert_uint_eq(bp->hdr.boot_flag, 0xaa55);
	ck_assert_uint_eq(bp->hdr.type_of_loader, 0xff);
	ck_assert(bp->hdr.loadflags & LOADED_HIGH);
	ck_assert(bp->hdr.loadflags & CAN_USE_HEAP);
	ck_assert_uint_eq(bp->hdr.cmd_line_ptr, CMDLINE_ADDR);
	ck_assert_uint_eq(bp->acpi_rsdp_addr, ACPI_TABLES_ADDR);
	/* The initrd: page-aligned, above the kernel, below the hole, intact. */
	ck_assert_uint_eq(bp->hdr.ramdisk_size, sizeof(initrd_data));
	ck_assert_uint_eq(bp->hdr.ramdisk_image % 4096, 0);
	ck_assert_uint_ge(bp->hdr.ramdisk_image, kernel_end);
	ck_assert_uint_le(bp->hdr.ramdisk_image + bp->hdr.ramdisk_size, 256 << 20);
	ck_assert_mem_eq(gmem(bp->hdr.ramdisk_image, sizeof(initrd_data)), initrd_data,
			 sizeof(initrd_data));
	ck_assert_int_eq(bp->e820_entries, n);
	for (i = 0; i < n; i++) {
		ck_assert_uint_eq(bp->e820_table[i].addr, e[i].addr);
		ck_assert_uint_eq(bp->e820_table[i].size, e[i].size);
		ck_assert_uint_eq(bp->e820_table[i].type, e[i].type);
	}
	return bp;
}

START_TEST(test_bzimage_guest_decompress)
{
	struct boot_info bi;
	struct bzimage bz;
	size_t klen;
	void *k;

	ck_assert_int_eq(read_file(cfg.kernel, 512 << 20, &k, &klen), 0);
	ck_assert_int_eq(bzimage_parse(k, klen, &bz), 0);
	ck_assert_int_eq(boot_load(&vm, &bi), 0);
	ck_assert_int_eq(bi.mode, BOOT_LINUX64);
	ck_assert_uint_eq(bi.entry, bz.pref_address + 0x200);
	ck_assert_uint_eq(bi.params, BOOT_PARAMS_ADDR);
	/* The compressed kernel, byte for byte, at its preferred address. */
	ck_assert_mem_eq(gmem(bz.pref_address, klen - bz.setup_size), (char *)k + bz.setup_size,
			 klen - bz.setup_size);
	check_boot_params(bz.pref_address + bz.init_size);
	check_common(&bi);
	free(k);
}
END_TEST

START_TEST(test_bzimage_host_decompress_and_cache)
{
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	struct boot_info bi;
	struct bzimage bz;
	struct stat st;
	size_t klen, elen;
	void *k, *elf;
	glob_t g;
	int round;

	cfg.decompress = DECOMPRESS_HOST;
	ck_assert_int_eq(read_file(cfg.kernel, 512 << 20, &k, &klen), 0);
	ck_assert_int_eq(bzimage_parse(k, klen, &bz), 0);
	ck_assert_int_eq(bzimage_unpack(k, klen, &bz, &elf, &elen), 0);
	eh = elf;
	ph = (const Elf64_Phdr *)((char *)elf + eh->e_phoff);
	/* Twice: decompressed (and stored), then mapped from the cache. */
	for (round = 0; round < 2; round++) {
		unsigned int i;

		if (round) {
			guest_mem_free(&vm.mem);
			ck_assert_int_eq(guest_mem_init(&vm.mem, 256 << 20), 0);
		}
		ck_assert_int_eq(boot_load(&vm, &bi), 0);
		ck_assert_int_eq(bi.mode, BOOT_LINUX64);
		ck_assert_uint_eq(bi.entry, eh->e_entry);
		for (i = 0; i < eh->e_phnum; i++) {
			const uint8_t *g;
			uint64_t j;

			if (ph[i].p_type != PT_LOAD)
				continue;
			g = gmem(ph[i].p_paddr, ph[i].p_memsz);
			ck_assert_mem_eq(g, (char *)elf + ph[i].p_offset, ph[i].p_filesz);
			for (j = ph[i].p_filesz; j < ph[i].p_memsz; j += 509)
				ck_assert_uint_eq(g[j], 0);
		}
		check_boot_params(bz.pref_address + bz.init_size);
		check_common(&bi);
		ck_assert_int_eq(glob("/tmp/minivmm-bootload-*/cache/vmlinux-*.elf", 0, NULL, &g),
				 0);
		ck_assert_uint_eq(g.gl_pathc, 1);
		ck_assert_int_eq(stat(g.gl_pathv[0], &st), 0);
		ck_assert_uint_eq(st.st_size, elen);
		globfree(&g);
	}
	free(elf);
	free(k);
}
END_TEST

START_TEST(test_bzimage_errors)
{
	struct boot_info bi;
	static char big[CMDLINE_MAX + 10];

	/* A command line longer than the kernel takes. */
	memset(big, 'x', sizeof(big) - 1);
	cfg.cmdline = big;
	ck_assert_int_eq(boot_load(&vm, &bi), -E2BIG);
	cfg.cmdline = "console=ttyS0";
	/* Too little memory for the kernel's decompression area. */
	guest_mem_free(&vm.mem);
	ck_assert_int_eq(guest_mem_init(&vm.mem, 32 << 20), 0);
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOSPC);
	/* Not a kernel at all. */
	cfg.kernel = initrd_path;
	ck_assert_int_eq(boot_load(&vm, &bi), -EINVAL);
}
END_TEST

/* A minimal ELF: one PT_LOAD at 2 MiB, a PT_NOTE with Xen's PHYS32_ENTRY. */
struct mini_elf {
	Elf64_Ehdr eh;
	Elf64_Phdr ph[2];
	Elf64_Nhdr nh;
	char name[4];
	uint32_t entry;
	uint8_t code[64];
};

static void make_elf(struct mini_elf *e, bool with_note)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->eh.e_ident, ELFMAG, SELFMAG);
	e->eh.e_ident[EI_CLASS] = ELFCLASS64;
	e->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	e->eh.e_type = ET_EXEC;
	e->eh.e_machine = EM_X86_64;
	e->eh.e_entry = 0x200000;
	e->eh.e_phoff = offsetof(struct mini_elf, ph);
	e->eh.e_phentsize = sizeof(Elf64_Phdr);
	e->eh.e_phnum = 2;
	e->ph[0].p_type = PT_LOAD;
	e->ph[0].p_offset = offsetof(struct mini_elf, code);
	e->ph[0].p_paddr = 0x200000;
	e->ph[0].p_filesz = sizeof(e->code);
	e->ph[0].p_memsz = 8192;
	e->ph[1].p_type = with_note ? PT_NOTE : PT_NULL;
	e->ph[1].p_offset = offsetof(struct mini_elf, nh);
	e->ph[1].p_filesz = sizeof(e->nh) + sizeof(e->name) + sizeof(e->entry);
	e->nh.n_namesz = 4;
	e->nh.n_descsz = 4;
	e->nh.n_type = 18; /* XEN_ELFNOTE_PHYS32_ENTRY */
	memcpy(e->name, "Xen", 4);
	e->entry = 0x200010;
	memset(e->code, 0x90, sizeof(e->code));
}

START_TEST(test_pvh)
{
	char path[300];
	struct mini_elf e;
	struct boot_info bi;
	const uint32_t *si;
	const uint64_t *mod;

	make_elf(&e, true);
	snprintf(path, sizeof(path), "%s/vmlinux", dir);
	write_file(path, &e, sizeof(e));
	cfg.kernel = path;
	memset(gmem(0x200000 + 64, 100), 0xee, 100); /* bss must come back zero */
	ck_assert_int_eq(boot_load(&vm, &bi), 0);
	ck_assert_int_eq(bi.mode, BOOT_PVH);
	ck_assert_uint_eq(bi.entry, 0x200010);
	ck_assert_uint_eq(bi.params, PVH_INFO_ADDR);
	ck_assert_mem_eq(gmem(0x200000, sizeof(e.code)), e.code, sizeof(e.code));
	ck_assert_uint_eq(((uint8_t *)gmem(0x200000 + 64, 100))[50], 0);
	si = gmem(PVH_INFO_ADDR, 56);
	ck_assert_uint_eq(si[0], 0x336ec578); /* magic */
	ck_assert_uint_eq(si[1], 1);	      /* version */
	ck_assert_uint_eq(si[3], 1);	      /* nr_modules: the initrd */
	ck_assert_uint_eq(*(uint64_t *)(si + 6), CMDLINE_ADDR);
	ck_assert_uint_eq(*(uint64_t *)(si + 8), ACPI_TABLES_ADDR);
	ck_assert_uint_eq(si[12], 4); /* memmap entries for 256 MiB */
	mod = gmem(*(uint64_t *)(si + 4), 16);
	ck_assert_uint_eq(mod[1], sizeof(initrd_data));
	ck_assert_mem_eq(gmem(mod[0], sizeof(initrd_data)), initrd_data, sizeof(initrd_data));
	check_common(&bi);
}
END_TEST

START_TEST(test_pvh_errors)
{
	char path[300];
	struct mini_elf e;
	struct boot_info bi;

	snprintf(path, sizeof(path), "%s/vmlinux", dir);
	cfg.kernel = path;
	make_elf(&e, false); /* no PVH note */
	write_file(path, &e, sizeof(e));
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOEXEC);
	make_elf(&e, true); /* a segment past the end of the file */
	e.ph[0].p_filesz = 1 << 20;
	write_file(path, &e, sizeof(e));
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOEXEC);
	make_elf(&e, true); /* a segment over the boot structures below 1 MiB */
	e.ph[0].p_paddr = 0x7000;
	write_file(path, &e, sizeof(e));
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOSPC);
	make_elf(&e, true); /* a segment beyond guest RAM */
	e.ph[0].p_paddr = 255 << 20;
	e.ph[0].p_memsz = 2 << 20;
	write_file(path, &e, sizeof(e));
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOSPC);
	make_elf(&e, true); /* program headers past the end */
	e.eh.e_phnum = 1000;
	write_file(path, &e, sizeof(e));
	ck_assert_int_eq(boot_load(&vm, &bi), -ENOEXEC);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bootload");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_bzimage_guest_decompress);
	tcase_add_test(tc, test_bzimage_host_decompress_and_cache);
	tcase_add_test(tc, test_bzimage_errors);
	tcase_add_test(tc, test_pvh);
	tcase_add_test(tc, test_pvh_errors);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
