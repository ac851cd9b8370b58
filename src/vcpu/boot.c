// SPDX-License-Identifier: GPL-2.0-or-later
/* bzImage loading per Documentation/arch/x86/boot.rst (64-bit entry) and the
 * parts shared with PVH: command line, initrd, page tables, boot registers. */
#include <asm/bootparam.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "layout.h"
#include "log.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/boot_priv.h"
#include "vcpu/unpack.h"
#include "vm.h"

#define HDR_OFFSET	    0x1f1
#define HDRS_MAGIC	    0x53726448 /* "HdrS" */
#define KERNEL_MAX	    (512ULL << 20)
#define SETUP_SECTS_DEFAULT 4

int bzimage_parse(const void *img, size_t len, struct bzimage *bz)
{
	const struct setup_header *h;
	uint8_t sects;

	if (len < 0x1000)
		return -EINVAL;
	h = (const struct setup_header *)((const char *)img + HDR_OFFSET);
	if (h->header != HDRS_MAGIC || h->boot_flag != 0xaa55)
		return -EINVAL;
	memset(bz, 0, sizeof(*bz));
	bz->version = h->version;
	/* 2.12 brought xloadflags, which tells whether the 64-bit entry exists. */
	if (bz->version < 0x020c || !(h->xloadflags & XLF_KERNEL_64))
		return -ENOTSUP;
	sects = h->setup_sects ? h->setup_sects : SETUP_SECTS_DEFAULT;
	bz->setup_size = (size_t)(sects + 1) * 512;
	if (bz->setup_size >= len)
		return -EINVAL;
	bz->pref_address = h->pref_address;
	bz->init_size = h->init_size;
	bz->initrd_addr_max = h->initrd_addr_max;
	bz->kernel_alignment = h->kernel_alignment;
	bz->xloadflags = h->xloadflags;
	bz->relocatable = h->relocatable_kernel;
	bz->cmdline_size = h->cmdline_size;
	return 0;
}

int initrd_place(uint64_t floor, uint64_t limit, uint64_t size, uint64_t *addr)
{
	uint64_t a;

	if (size > limit)
		return -ENOSPC;
	a = ALIGN_DOWN(limit - size, 4096);
	if (a < floor)
		return -ENOSPC;
	*addr = a;
	return 0;
}

/* Read @path straight into guest memory at @gpa (whole file, @size bytes). */
int load_file_at(struct guest_mem *m, int fd, uint64_t gpa, uint64_t size)
{
	char *dst = gpa_to_hva(m, gpa, size);
	uint64_t done = 0;

	if (!dst)
		return -ENOSPC;
	while (done < size) {
		ssize_t n = pread(fd, dst + done, MIN(size - done, 1ULL << 30), done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	return 0;
}

int boot_load_initrd(struct vm *vm, uint64_t floor, uint64_t limit, uint64_t *addr, uint64_t *size)
{
	const char *path = vm->cfg->initrd;
	struct stat st;
	int fd, ret;

	*addr = *size = 0;
	if (!path)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		pr_err("initrd %s: %s", path, strerror(errno));
		goto out;
	}
	ret = initrd_place(floor, limit, st.st_size, addr);
	if (ret) {
		pr_err("initrd %s (%lld MiB) does not fit in guest memory below %#llx; "
		       "give the VM more memory",
		       path, (long long)st.st_size >> 20, (unsigned long long)limit);
		goto out;
	}
	ret = load_file_at(&vm->mem, fd, *addr, st.st_size);
	if (ret)
		pr_err("initrd %s: %s", path, strerror(-ret));
	*size = st.st_size;
	pr_info("initrd: %llu KiB at %#llx", (unsigned long long)(*size >> 10),
		(unsigned long long)*addr);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

int boot_write_cmdline(struct vm *vm, uint32_t max_len)
{
	const char *cmd = vm->cfg->cmdline ?: "";
	size_t len = strlen(cmd);
	char *dst;

	if (len >= max_len || len >= CMDLINE_MAX) {
		pr_err("kernel command line is %zu bytes; this kernel takes at most %u", len,
		       MIN(max_len, (uint32_t)CMDLINE_MAX) - 1);
		return -E2BIG;
	}
	dst = gpa_to_hva(&vm->mem, CMDLINE_ADDR, len + 1);
	if (!dst)
		return -ENOSPC;
	memcpy(dst, cmd, len + 1);
	return 0;
}

/* Identity map of the first 4 GiB with 2 MiB pages, and a flat GDT. */
int boot_write_tables(struct guest_mem *m, bool long_mode)
{
	uint64_t *pml4 = gpa_to_hva(m, PML4_ADDR, 4096);
	uint64_t *pdpt = gpa_to_hva(m, PDPT_ADDR, 4096);
	uint64_t *pd = gpa_to_hva(m, PD_ADDR, 4 * 4096);
	uint64_t *gdt = gpa_to_hva(m, GDT_ADDR, 5 * 8);
	unsigned int i;

	if (!pml4 || !pdpt || !pd || !gdt)
		return -ENOSPC;
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = PDPT_ADDR | 0x3;
	for (i = 0; i < 4; i++)
		pdpt[i] = (PD_ADDR + i * 4096) | 0x3;
	for (i = 0; i < 4 * 512; i++)
		pd[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB */

	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = long_mode ? 0x00af9b000000ffffULL : 0x00cf9b000000ffffULL; /* 0x10 code */
	gdt[3] = 0x00cf93000000ffffULL;					    /* 0x18 data */
	gdt[4] = 0x00008b0000000067ULL;					    /* 0x20 TSS */
	return 0;
}

/*
 * Decompress on the host (or take the cached result) and load the kernel
 * proper: the guest then enters its startup_64 directly with the same
 * boot_params, skipping the decompressor (and with it KASLR). Returns
 * non-zero when the guest has to decompress after all.
 */
static int host_unpack(struct vm *vm, const void *k, size_t klen, const struct bzimage *bz,
		       uint64_t *kend, uint64_t *entry)
{
	uint64_t t0 = now_ns(), end, e;
	struct kimage ki;
	int ret, cached;

	ret = bzimage_unpack_cached(k, klen, bz, &ki, &cached);
	if (ret) {
		pr_info("kernel: cannot decompress on the host (%s); the guest will",
			strerror(-ret));
		return ret;
	}
	ret = elf_load(vm, ki.data, ki.len, ki.fd, &end, &e);
	kimage_release(&ki);
	if (ret)
		return ret;
	*kend = MAX(*kend, end);
	*entry = e;
	pr_info("kernel: %s on the host in %llu ms",
		cached ? "cached decompression" : "decompressed",
		(unsigned long long)((now_ns() - t0) / 1000000));
	return 0;
}

static int load_bzimage(struct vm *vm, const char *k, size_t klen, uint64_t rsdp,
			struct boot_info *bi)
{
	struct boot_params *bp = gpa_to_hva(&vm->mem, BOOT_PARAMS_ADDR, sizeof(*bp));
	uint64_t load, kend, entry, initrd_addr, initrd_size, limit, low_end = vm->mem.r[0].size;
	struct e820_entry e820[E820_MAX_ENTRIES_ZEROPAGE];
	size_t hdr_len;
	struct bzimage bz;
	void *dst;
	int ret, n, i;

	ret = bzimage_parse(k, klen, &bz);
	if (ret == -ENOTSUP) {
		pr_err("%s: bzImage protocol %#x has no 64-bit entry (need 2.12+)", vm->cfg->kernel,
		       bz.version);
		return ret;
	}
	if (ret)
		return ret;
	/* pref_address (protocol 2.10+) is where a non-relocatable kernel must
	 * run, and spares a relocatable one's decompressor a move. */
	load = bz.pref_address;
	if (load < HIGH_MEM_START || (bz.kernel_alignment && load % bz.kernel_alignment))
		load = ALIGN_UP(HIGH_MEM_START, MAX(bz.kernel_alignment, 4096U));
	kend = load + MAX((uint64_t)bz.init_size, klen - bz.setup_size);
	if (kend > low_end) {
		pr_err("kernel needs %llu MiB of memory above %#llx; the VM has %llu MiB",
		       (unsigned long long)((kend - load) >> 20), (unsigned long long)load,
		       (unsigned long long)(vm->mem.total >> 20));
		return -ENOSPC;
	}
	dst = gpa_to_hva(&vm->mem, load, klen - bz.setup_size);
	if (!dst || !bp)
		return -ENOSPC;
	entry = load + 0x200; /* startup_64 of the decompressor */
	if (vm->cfg->decompress != DECOMPRESS_HOST || host_unpack(vm, k, klen, &bz, &kend, &entry))
		memcpy(dst, k + bz.setup_size, klen - bz.setup_size);

	limit = MIN(low_end, (uint64_t)bz.initrd_addr_max + 1);
	ret = boot_load_initrd(vm, ALIGN_UP(kend, 4096), limit, &initrd_addr, &initrd_size);
	if (ret)
		return ret;
	ret = boot_write_cmdline(vm, bz.cmdline_size ? bz.cmdline_size + 1 : 256);
	if (ret)
		return ret;

	memset(bp, 0, sizeof(*bp));
	/* The setup header runs from 0x1f1 to 0x202 + the jump's offset byte. */
	hdr_len = 0x202 + ((const uint8_t *)k)[0x201] - HDR_OFFSET;
	hdr_len = MIN(hdr_len, sizeof(bp->hdr));
	memcpy(&bp->hdr, k + HDR_OFFSET, hdr_len);
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
	bp->hdr.loadflags &= ~KEEP_SEGMENTS;
	bp->hdr.heap_end_ptr = 0xfe00;
	bp->hdr.code32_start = load;
	bp->hdr.cmd_line_ptr = CMDLINE_ADDR;
	bp->hdr.ramdisk_image = initrd_addr;
	bp->hdr.ramdisk_size = initrd_size;
	bp->ext_ramdisk_image = initrd_addr >> 32;
	bp->ext_ramdisk_size = initrd_size >> 32;
	bp->acpi_rsdp_addr = rsdp;

	n = e820_build(&vm->mem, e820, E820_MAX_ENTRIES_ZEROPAGE);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		bp->e820_table[i].addr = e820[i].addr;
		bp->e820_table[i].size = e820[i].size;
		bp->e820_table[i].type = e820[i].type;
	}
	bp->e820_entries = n;

	ret = boot_write_tables(&vm->mem, true);
	if (ret)
		return ret;
	bi->mode = BOOT_LINUX64;
	bi->entry = entry;
	bi->params = BOOT_PARAMS_ADDR;
	pr_info("kernel: bzImage protocol %x.%02x, %zu KiB at %#llx, entry %#llx", bz.version >> 8,
		bz.version & 0xff, (klen - bz.setup_size) >> 10, (unsigned long long)load,
		(unsigned long long)bi->entry);
	return 0;
}

/*
 * There is no BIOS, but Linux falls back to jumping to the reset vector
 * (f000:fff0) when ACPI and EFI resets did not work: in hardware-reduced
 * ACPI mode it picks EFI first, and without EFI ends up there. Put a stub at
 * that address that resets through port 0xcf9, like a real BIOS would.
 */
static int write_reset_vector(struct guest_mem *m)
{
	static const uint8_t stub[] = {
		0xba, 0xf9, 0x0c, /* mov dx, 0xcf9 */
		0xb0, 0x06,	  /* mov al, 6 (RST_CPU | SYS_RST) */
		0xee,		  /* out dx, al */
		0xf4,		  /* hlt */
		0xeb, 0xfd,	  /* jmp hlt */
	};
	uint8_t *p = gpa_to_hva(m, RESET_VECTOR_ADDR, sizeof(stub));

	if (!p)
		return -ENOSPC;
	memcpy(p, stub, sizeof(stub));
	return 0;
}

int boot_load(struct vm *vm, struct boot_info *bi)
{
	const char *path = vm->cfg->kernel;
	size_t klen;
	void *k;
	int ret;

	ret = read_file(path, KERNEL_MAX, &k, &klen);
	if (ret) {
		pr_err("kernel %s: %s", path, strerror(-ret));
		return ret;
	}
	if (klen >= 4 && !memcmp(k, "\177ELF", 4))
		ret = pvh_load(vm, k, klen, ACPI_TABLES_ADDR, bi);
	else
		ret = load_bzimage(vm, k, klen, ACPI_TABLES_ADDR, bi);
	if (ret == -EINVAL)
		pr_err("kernel %s: neither a bzImage nor an ELF vmlinux with a PVH entry", path);
	free(k);
	return ret ?: write_reset_vector(&vm->mem);
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = code64;
	s->db = db;
	s->g = 1;
}

int boot_setup_bsp(int fd, const struct boot_info *bi)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	bool lm = bi->mode == BOOT_LINUX64;

	if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	seg(&sregs.cs, 0x10, 0xb, lm, !lm);
	seg(&sregs.ds, 0x18, 0x3, false, true);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = 0x20;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 0xb; /* busy TSS */
	sregs.tr.present = 1;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = 5 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = 0x31; /* PE, ET, NE */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (lm) {
		sregs.cr0 |= 0x80000000; /* PG */
		sregs.cr3 = PML4_ADDR;
		sregs.cr4 = 0x20;   /* PAE */
		sregs.efer = 0x500; /* LME | LMA */
	}
	if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rflags = 0x2;
	regs.rip = bi->entry;
	regs.rsp = BOOT_STACK_ADDR;
	if (lm)
		regs.rsi = bi->params;
	else
		regs.rbx = bi->params;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}
