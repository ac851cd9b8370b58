// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory image: restore by mapping. A flat image holds each page at a fixed,
 * page-aligned place, so guest RAM can simply be the file, mapped private:
 * nothing is read up front, pages come from the page cache on first touch
 * (shared by every VM mapping the same snapshot) and writes are copied.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "snapshot/memimg_int.h"

int memimg_map(struct memimg *mi, const struct guest_mem *m)
{
	int ret;

	if (!(mi->flags & MEMIMG_F_FLAT)) {
		pr_err("snapshot: memory is %s: only an uncompressed snapshot (minivmm save "
		       "--raw) can be mapped",
		       mi->flags & MEMIMG_F_COMPRESS ? "compressed" : "packed (older --raw)");
		return -EOPNOTSUPP;
	}
	ret = memimg_check_layout(mi, m);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < m->nr; i++) {
		uint64_t off = mi->off + memimg_flat_region_off(mi, i);

		pr_debug("snapshot: region %u mapped from file offset %#llx%s", i,
			 (unsigned long long)off, off % (2 * MiB) ? "" : " (2 MiB aligned)");
		ret = guest_mem_map_file(m, i, mi->fd, off);
		if (ret) {
			pr_err("snapshot: mapping guest memory: %s", strerror(-ret));
			return ret;
		}
	}
	return 0;
}
