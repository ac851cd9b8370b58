// SPDX-License-Identifier: GPL-2.0-or-later
/* Uncompressed ELF vmlinux through the PVH entry (Xen's PHYS32_ENTRY note):
 * 32-bit protected mode, paging off, %ebx = hvm_start_info. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"
#include "log.h"
#include "util.h"
#include "vcpu/boot_priv.h"
#include "vm.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC		 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#define PVH_MODLIST_ADDR (PVH_INFO_ADDR + 0x40)
#define PVH_MEMMAP_ADDR	 (PVH_INFO_ADDR + 0x80)
#define PVH_MEMMAP_MAX	 32

static bool in_file(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* Search PT_NOTE segments for the 32-bit PVH entry point. */
static int find_pvh_entry(const char *img, size_t len, const Elf64_Phdr *ph, unsigned int n,
			  uint64_t *entry)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t off, end;

		if (ph[i].p_type != PT_NOTE || !in_file(len, ph[i].p_offset, ph[i].p_filesz))
			continue;
		off = ph[i].p_offset;
		end = off + ph[i].p_filesz;
		while (end - off >= sizeof(Elf64_Nhdr)) {
			Elf64_Nhdr note, *nh = &note;
			uint64_t name, desc, next;

			/* Copied out: a hostile file may put the note anywhere. */
			memcpy(&note, img + off, sizeof(note));
			name = off + sizeof(note);
			desc = name + ALIGN_UP((uint64_t)nh->n_namesz, 4);
			next = desc + ALIGN_UP((uint64_t)nh->n_descsz, 4);
			if (next > end)
				break;
			if (nh->n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh->n_namesz == 4 &&
			    !memcmp(img + name, "Xen", 4)) {
				if (nh->n_descsz == 4) {
					uint32_t v;

					memcpy(&v, img + desc, 4);
					*entry = v;
					return 0;
				}
				if (nh->n_descsz == 8) {
					memcpy(entry, img + desc, 8);
					return 0;
				}
			}
			off = next;
		}
	}
	return -ENOENT;
}

/*
 * Read a segment from @fd straight into guest RAM: one copy, no faults on a
 * source mapping, and the kernel lands in (transparent) huge pages, which
 * measurably speeds up its boot under nested paging compared with mapping the
 * file's 4 KiB page-cache pages into the guest.
 */
static bool read_segment(int fd, char *dst, uint64_t off, uint64_t filesz)
{
	uint64_t done = 0;

	if (fd < 0)
		return false;
	while (done < filesz) {
		ssize_t n = pread(fd, dst + done, MIN(filesz - done, 1ULL << 30), off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

int elf_load(struct vm *vm, const void *img, size_t len, int fd, uint64_t *kend, uint64_t *entry)
{
	const Elf64_Ehdr *eh = img;
	const Elf64_Phdr *ph;
	const char *path = vm->cfg->kernel;
	unsigned int i;

	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff % 8 ||
	    !in_file(len, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))) {
		pr_err("kernel %s: not a valid x86-64 ELF executable", path);
		return -ENOEXEC;
	}
	ph = (const void *)((const char *)img + eh->e_phoff);
	*kend = 0;
	for (i = 0; i < eh->e_phnum; i++) {
		char *dst;

		if (ph[i].p_type != PT_LOAD)
			continue;
		if (!in_file(len, ph[i].p_offset, ph[i].p_filesz) ||
		    ph[i].p_filesz > ph[i].p_memsz) {
			pr_err("kernel %s: segment %u lies outside the file", path, i);
			return -ENOEXEC;
		}
		dst = gpa_to_hva(&vm->mem, ph[i].p_paddr, ph[i].p_memsz);
		if (!dst || ph[i].p_paddr < HIGH_MEM_START) {
			pr_err(
			    "kernel %s: segment %u (%#llx + %llu KiB) is not inside guest RAM above 1 MiB",
			    path, i, (unsigned long long)ph[i].p_paddr,
			    (unsigned long long)ph[i].p_memsz >> 10);
			return -ENOSPC;
		}
		if (!read_segment(fd, dst, ph[i].p_offset, ph[i].p_filesz))
			memcpy(dst, (const char *)img + ph[i].p_offset, ph[i].p_filesz);
		memset(dst + ph[i].p_filesz, 0, ph[i].p_memsz - ph[i].p_filesz);
		*kend = MAX(*kend, ph[i].p_paddr + ph[i].p_memsz);
	}
	if (!*kend) {
		pr_err("kernel %s: ELF without loadable segments", path);
		return -ENOEXEC;
	}
	*entry = eh->e_entry;
	return 0;
}

int pvh_load(struct vm *vm, const void *img, size_t len, uint64_t rsdp, struct boot_info *bi)
{
	struct e820_entry e820[PVH_MEMMAP_MAX];
	const Elf64_Ehdr *eh = img;
	struct hvm_start_info *si;
	struct hvm_memmap_entry *mm;
	struct hvm_modlist_entry *mod;
	uint64_t entry, e_entry, kend, initrd_addr, initrd_size;
	unsigned int i;
	int n, ret;

	ret = elf_load(vm, img, len, -1, &kend, &e_entry);
	if (ret)
		return ret;
	if (find_pvh_entry(img, len, (const void *)((const char *)img + eh->e_phoff), eh->e_phnum,
			   &entry)) {
		pr_err("kernel %s: ELF without a PVH entry note (build it with CONFIG_PVH=y, "
		       "or boot the bzImage)",
		       vm->cfg->kernel);
		return -ENOEXEC;
	}

	ret = boot_load_initrd(vm, ALIGN_UP(kend, 4096), vm->mem.r[0].size, &initrd_addr,
			       &initrd_size);
	if (ret)
		return ret;
	ret = boot_write_cmdline(vm, CMDLINE_MAX);
	if (ret)
		return ret;

	si = gpa_to_hva(&vm->mem, PVH_INFO_ADDR, sizeof(*si));
	mod = gpa_to_hva(&vm->mem, PVH_MODLIST_ADDR, sizeof(*mod));
	mm = gpa_to_hva(&vm->mem, PVH_MEMMAP_ADDR, PVH_MEMMAP_MAX * sizeof(*mm));
	if (!si || !mod || !mm)
		return -ENOSPC;
	memset(si, 0, sizeof(*si));
	si->magic = HVM_START_MAGIC;
	si->version = 1;
	si->cmdline_paddr = CMDLINE_ADDR;
	si->rsdp_paddr = rsdp;
	if (initrd_size) {
		memset(mod, 0, sizeof(*mod));
		mod->paddr = initrd_addr;
		mod->size = initrd_size;
		si->nr_modules = 1;
		si->modlist_paddr = PVH_MODLIST_ADDR;
	}
	n = e820_build(&vm->mem, e820, PVH_MEMMAP_MAX);
	if (n < 0)
		return n;
	for (i = 0; i < (unsigned int)n; i++)
		mm[i] = (struct hvm_memmap_entry){ e820[i].addr, e820[i].size, e820[i].type, 0 };
	si->memmap_paddr = PVH_MEMMAP_ADDR;
	si->memmap_entries = n;

	ret = boot_write_tables(&vm->mem, false);
	if (ret)
		return ret;
	bi->mode = BOOT_PVH;
	bi->entry = entry;
	bi->params = PVH_INFO_ADDR;
	pr_info("kernel: ELF vmlinux, PVH entry %#llx", (unsigned long long)entry);
	return 0;
}
