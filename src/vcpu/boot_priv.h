/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the bzImage and PVH loaders. */
#ifndef MINIVMM_BOOT_PRIV_H
#define MINIVMM_BOOT_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "mm/guest_mem.h"
#include "vcpu/boot.h"

struct vm;

int load_file_at(struct guest_mem *m, int fd, uint64_t gpa, uint64_t size);
int boot_load_initrd(struct vm *vm, uint64_t floor, uint64_t limit, uint64_t *addr, uint64_t *size);
int boot_write_cmdline(struct vm *vm, uint32_t max_len);
int boot_write_tables(struct guest_mem *m, bool long_mode);
/* Load the PT_LOAD segments of an ELF kernel; @kend: end of the highest one.
 * With @fd >= 0 (@img is a mapping of it) segments are read from the file. */
int elf_load(struct vm *vm, const void *img, size_t len, int fd, uint64_t *kend, uint64_t *entry);
int pvh_load(struct vm *vm, const void *img, size_t len, uint64_t rsdp, struct boot_info *bi);

#endif
