// SPDX-License-Identifier: GPL-2.0-or-later
/* How much memory the VMM itself uses: resident pages outside guest RAM. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mm/guest_mem.h"

/* Inside guest RAM, including the kernel pages mapped over it from a file. */
static bool is_guest(const struct guest_mem *m, uintptr_t start)
{
	unsigned int i;

	for (i = 0; i < m->nr; i++) {
		uintptr_t b = (uintptr_t)m->r[i].hva;

		if (start >= b && start - b < m->r[i].size)
			return true;
	}
	return false;
}

long vmm_rss_kib(const struct guest_mem *m)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool skip = false;
	long total = 0, kib;
	uintptr_t start, end;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &start, &end) == 2 &&
		    strchr(line, ' '))
			skip = is_guest(m, start);
		else if (!skip && sscanf(line, "Rss: %ld kB", &kib) == 1)
			total += kib;
	}
	fclose(f);
	return total;
}
