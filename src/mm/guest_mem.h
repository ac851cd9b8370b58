/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Guest RAM: host mappings, the hole below 4 GiB, and the e820 map. */
#ifndef MINIVMM_GUEST_MEM_H
#define MINIVMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 2

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;
};

struct guest_mem {
	struct mem_region r[GUEST_MEM_MAX_REGIONS];
	unsigned int nr;
	uint64_t total;
	bool merge; /* [vm] merge = on: pages KSM may merge (also after guest_mem_map_file) */
};

/* RAM below the 32-bit hole and above 4 GiB for @size bytes of guest memory. */
void guest_mem_layout(uint64_t size, uint64_t *low, uint64_t *high);
/* Map @size bytes of anonymous memory, split around the hole. */
int guest_mem_init(struct guest_mem *m, uint64_t size);
void guest_mem_free(struct guest_mem *m);
/*
 * [vm] merge = on: let KSM merge identical guest pages (MADV_MERGEABLE), here and in
 * every later guest_mem_map_file. -EINVAL: this kernel has no KSM.
 */
int guest_mem_set_merge(struct guest_mem *m);
/*
 * Replace region @i's pages by a copy-on-write mapping of @fd from @off (page
 * aligned): reads come from the file's page cache, shared with every other
 * mapping of it; writes stay private. The file must not shrink meanwhile.
 */
int guest_mem_map_file(const struct guest_mem *m, unsigned int i, int fd, uint64_t off);
/* Host pointer for [gpa, gpa+len) if it lies inside one RAM region, else NULL. */
void *gpa_to_hva(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* First guest-physical address past the end of RAM. */
uint64_t guest_mem_end(const struct guest_mem *m);

/* Resident KiB of this process outside guest RAM (the VMM's own footprint), or -1. */
long vmm_rss_kib(const struct guest_mem *m);

/* e820 types */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

/* Fill @tab (room for @max) with the guest's memory map; returns the count or -ENOSPC. */
int e820_build(const struct guest_mem *m, struct e820_entry *tab, unsigned int max);

#endif
