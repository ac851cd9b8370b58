/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Loading a Linux kernel: bzImage (64-bit boot protocol) or ELF vmlinux (PVH). */
#ifndef MINIVMM_BOOT_H
#define MINIVMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/guest_mem.h"

struct vm;

enum boot_mode { BOOT_LINUX64, BOOT_PVH };

struct boot_info {
	enum boot_mode mode;
	uint64_t entry;	 /* guest-physical entry point */
	uint64_t params; /* boot_params (LINUX64) or hvm_start_info (PVH) */
};

/* What the bzImage header says, after validation. */
struct bzimage {
	uint16_t version;
	size_t setup_size; /* real-mode part, bytes */
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint16_t xloadflags;
	bool relocatable;
	uint32_t cmdline_size;
};

int bzimage_parse(const void *img, size_t len, struct bzimage *bz);

/* Highest page-aligned address for @size bytes below @limit and above @floor. */
int initrd_place(uint64_t floor, uint64_t limit, uint64_t size, uint64_t *addr);

/* Load kernel, initrd, command line, ACPI tables, and page tables for the BSP. */
int boot_load(struct vm *vm, struct boot_info *bi);
/* Registers of the boot CPU for @bi's entry convention. */
int boot_setup_bsp(int vcpu_fd, const struct boot_info *bi);

#endif
