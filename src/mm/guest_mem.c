// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "layout.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "util.h"

#define HUGE_2M (2 * MiB)

void guest_mem_layout(uint64_t size, uint64_t *low, uint64_t *high)
{
	*low = MIN(size, MMIO32_START);
	*high = size - *low;
}

/* Guest memory is the guest's secrets: never in a core dump of the VMM. */
static void no_dump(void *p, uint64_t len)
{
	if (madvise(p, len, MADV_DONTDUMP))
		pr_warn("guest memory: MADV_DONTDUMP: %s", strerror(errno));
}

int guest_mem_map_file(const struct guest_mem *m, unsigned int i, int fd, uint64_t off)
{
	void *p;

	if (i >= m->nr || off % 4096)
		return -EINVAL;
	p = mmap(m->r[i].hva, m->r[i].size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	no_dump(p, m->r[i].size);
	/* A new mapping: KSM's flag went with the old one. */
	if (m->merge && madvise(p, m->r[i].size, MADV_MERGEABLE))
		return -errno;
	return 0;
}

/*
 * Anonymous memory whose address is a multiple of 2 MiB, like every region's guest
 * physical address: KVM maps a huge page into the guest only where the host address and
 * the guest address agree modulo its size, and otherwise disables huge pages for the
 * whole slot, so that every first touch of a 4 KiB page exits (costly when nested).
 * NORESERVE: untouched guest pages cost the host nothing.
 */
static void *map_aligned(uint64_t size)
{
	uint64_t head, end;
	char *p;

	p = mmap(NULL, size + HUGE_2M, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return p;
	head = (HUGE_2M - (uintptr_t)p % HUGE_2M) % HUGE_2M;
	if (head)
		munmap(p, head);
	end = ALIGN_UP(head + size, 4096ULL);
	if (end < size + HUGE_2M)
		munmap(p + end, size + HUGE_2M - end);
	return p + head;
}

int guest_mem_set_merge(struct guest_mem *m)
{
	for (unsigned int i = 0; i < m->nr; i++)
		if (madvise(m->r[i].hva, m->r[i].size, MADV_MERGEABLE))
			return -errno;
	m->merge = true;
	return 0;
}

int guest_mem_init(struct guest_mem *m, uint64_t size)
{
	uint64_t low, high;
	unsigned int i;

	memset(m, 0, sizeof(*m));
	guest_mem_layout(size, &low, &high);
	m->r[m->nr++] = (struct mem_region){ .gpa = 0, .size = low };
	if (high)
		m->r[m->nr++] = (struct mem_region){ .gpa = FOUR_GIB, .size = high };
	for (i = 0; i < m->nr; i++) {
		void *p = map_aligned(m->r[i].size);

		if (p == MAP_FAILED) {
			int ret = -errno;

			guest_mem_free(m);
			return ret;
		}
		/* Huge pages shorten the nested page walks; failure is harmless. */
		madvise(p, m->r[i].size, MADV_HUGEPAGE);
		no_dump(p, m->r[i].size);
		m->r[i].hva = p;
		m->total += m->r[i].size;
	}
	pr_info("guest memory: %llu MiB (%llu MiB below 3 GiB, %llu MiB above 4 GiB)",
		(unsigned long long)(size >> 20), (unsigned long long)(low >> 20),
		(unsigned long long)(high >> 20));
	return 0;
}

void guest_mem_free(struct guest_mem *m)
{
	unsigned int i;

	for (i = 0; i < m->nr; i++)
		if (m->r[i].hva)
			munmap(m->r[i].hva, m->r[i].size);
	memset(m, 0, sizeof(*m));
}

void *gpa_to_hva(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < m->nr; i++) {
		const struct mem_region *r = &m->r[i];

		/* Written so that no sum can wrap around. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return (char *)r->hva + (gpa - r->gpa);
	}
	return NULL;
}

uint64_t guest_mem_end(const struct guest_mem *m)
{
	const struct mem_region *r = &m->r[m->nr - 1];

	return r->gpa + r->size;
}

static int e820_add(struct e820_entry *tab, unsigned int *n, unsigned int max, uint64_t addr,
		    uint64_t size, uint32_t type)
{
	if (!size)
		return 0;
	if (*n >= max)
		return -ENOSPC;
	tab[(*n)++] = (struct e820_entry){ addr, size, type };
	return 0;
}

int e820_build(const struct guest_mem *m, struct e820_entry *tab, unsigned int max)
{
	uint64_t low = m->r[0].size;
	unsigned int n = 0;
	int ret;

	/* Conventional memory up to the EBDA, the BIOS area with our ACPI tables,
	 * then everything from 1 MiB up to the hole, then RAM above 4 GiB. */
	ret = e820_add(tab, &n, max, 0, MIN(low, EBDA_START), E820_RAM);
	ret = ret ?: e820_add(tab, &n, max, EBDA_START, 0xa0000 - EBDA_START, E820_RESERVED);
	ret = ret ?: e820_add(tab, &n, max, ACPI_TABLES_ADDR, ACPI_TABLES_SIZE, E820_RESERVED);
	if (low > HIGH_MEM_START)
		ret = ret ?: e820_add(tab, &n, max, HIGH_MEM_START, low - HIGH_MEM_START, E820_RAM);
	if (m->nr > 1)
		ret = ret ?: e820_add(tab, &n, max, m->r[1].gpa, m->r[1].size, E820_RAM);
	return ret ?: (int)n;
}
