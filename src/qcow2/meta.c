// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What every qcow2 metadata unit (header, cache, cluster, refcount) uses: error
 * reporting, the bounds of a metadata offset, and batching dirty sectors into
 * ordered writes. Kept here so those units depend on this one, not on each other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

void qcow2_seterr(struct qcow2 *q, const char *fmt, ...)
{
	va_list ap;

	if (!q->err || !q->errlen || q->err[0])
		return; /* keep the first, most specific reason */
	va_start(ap, fmt);
	vsnprintf(q->err, q->errlen, fmt, ap);
	va_end(ap);
}

void qcow2_log(const char *fmt, ...)
{
	va_list ap;

	if (!getenv("MINIVMM_QCOW2_DEBUG"))
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* Metadata must be cluster aligned, clear of the header and inside the file. */
int qcow2_check_meta_off(struct qcow2 *q, uint64_t off, uint64_t len, const char *what)
{
	uint64_t end = q->file_end << q->cluster_bits;

	if (off % q->cluster_size) {
		qcow2_seterr(q, "%s offset 0x%llx is not cluster aligned", what,
			     (unsigned long long)off);
		return -EIO;
	}
	if (off < q->cluster_size) {
		qcow2_seterr(q, "%s overlaps the image header", what);
		return -EIO;
	}
	if (off > end || len > end - off) {
		qcow2_seterr(q, "%s at 0x%llx lies past the end of the file", what,
			     (unsigned long long)off);
		return -EIO;
	}
	return 0;
}

int req_push(struct fio_req **reqs, int *n, int *cap, const void *buf, uint64_t off, uint32_t len)
{
	if (*n > 0) {
		struct fio_req *l = &(*reqs)[*n - 1];

		/* Merge with the previous request when contiguous in both places. */
		if ((const char *)l->buf + l->len == buf && l->off + l->len == off) {
			l->len += len;
			return 0;
		}
	}
	if (*n == *cap) {
		int nc = *cap ? *cap * 2 : 32;
		struct fio_req *nr = realloc(*reqs, sizeof(*nr) * nc);

		if (!nr)
			return -ENOMEM;
		*reqs = nr;
		*cap = nc;
	}
	(*reqs)[(*n)++] = (struct fio_req){ buf, off, len };
	return 0;
}

static int collect_bitmap(const uint8_t *base, uint64_t host_off, unsigned int sectors,
			  uint64_t *dirty, struct fio_req **reqs, int *n, int *cap)
{
	for (unsigned int s = 0; s < sectors; s++) {
		if (!bit_test(dirty, s))
			continue;
		int r = req_push(reqs, n, cap, base + (size_t)s * QCOW2_SECTOR,
				 host_off + (uint64_t)s * QCOW2_SECTOR, QCOW2_SECTOR);
		if (r)
			return r;
	}
	return 0;
}

int flat_collect(struct qcow2 *q, void *table, uint64_t host_off, size_t bytes, uint64_t *dirty,
		 struct fio_req **reqs, int *n, int *cap)
{
	(void)q;
	return collect_bitmap(table, host_off, (bytes + QCOW2_SECTOR - 1) / QCOW2_SECTOR, dirty,
			      reqs, n, cap);
}

int qcow2_meta_submit(struct qcow2 *q, struct fio_req *reqs, int n, bool sync)
{
	int r;

	if (q->ro)
		return -EROFS;
	for (int i = 0; i < n; i++) {
		q->st.meta_bytes += reqs[i].len;
		q->st.meta_writes++;
	}
	if (!n && !sync)
		return 0;
	r = fio_submit(q->f, reqs, n, sync);
	if (!r && sync)
		q->sync_gen++;
	return r;
}
