// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Consistency check and repair, following qemu-img check: rebuild the
 * reference count of every cluster from the metadata, compare with the stored
 * refcounts (stored < referenced: corruption; stored > referenced: leak) and
 * verify the COPIED flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

#define CHECK_MAX_CLUSTERS (1ULL << 26) /* 256 MiB of counters */

struct ck {
	struct qcow2 *q;
	uint32_t *refs;
	uint64_t n;
	struct qcow2_check_result *res;
	void (*log)(void *, const char *);
	void *ctx;
	uint8_t *tbl;
	uint64_t compressed, allocated, fragmented;
	uint64_t end; /* one past the highest cluster stored or referenced */
};

static void __attribute__((format(printf, 2, 3))) ck_log(struct ck *k, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (!k->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	k->log(k->ctx, line);
}

static bool inc(struct ck *k, uint64_t off, uint64_t len, const char *what)
{
	uint64_t cb = k->q->cluster_bits;

	if (!len)
		return true;
	if (off + len < off || ((off + len - 1) >> cb) >= k->n) {
		ck_log(k, "ERROR %s at offset 0x%llx is beyond the end of the image file", what,
		       (unsigned long long)off);
		k->res->corruptions++;
		return false;
	}
	for (uint64_t c = off >> cb; c <= (off + len - 1) >> cb; c++)
		if (k->refs[c] != UINT32_MAX)
			k->refs[c]++;
	return true;
}

static int walk_l2(struct ck *k, uint64_t l2off, bool active)
{
	struct qcow2 *q = k->q;
	uint64_t per = q->cluster_size / 8, next = 0;
	int r = fio_pread(q->f, k->tbl, q->cluster_size, l2off);

	if (r)
		return r;
	for (uint64_t j = 0; j < per; j++) {
		uint64_t e = be64_at(k->tbl + j * 8);
		enum l2_type t = l2_classify(q, e);

		if (t == L2_COMPRESSED) {
			unsigned int x = 62 - (q->cluster_bits - 8);
			uint64_t o = e & ((1ULL << x) - 1);
			uint64_t nsec = ((e >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;

			inc(k, o & ~511ULL, nsec * 512, "compressed cluster");
			k->compressed += active;
			k->allocated += active;
			/* As qemu-img counts: compressed clusters are fragmented by nature. */
			k->fragmented += active;
			continue;
		}
		if (e & L2E_RESERVED_MASK) {
			ck_log(k, "ERROR L2 entry 0x%llx has reserved bits set",
			       (unsigned long long)e);
			k->res->corruptions++;
			continue;
		}
		if (t != L2_NORMAL && t != L2_ZERO_ALLOC)
			continue;
		uint64_t off = e & L2E_OFFSET_MASK;

		if (off % q->cluster_size) {
			ck_log(k,
			       "ERROR offset=%llx: Cluster is not properly aligned; L2 entry "
			       "corrupted",
			       (unsigned long long)off);
			k->res->corruptions++;
			continue;
		}
		inc(k, off, q->cluster_size, "data cluster");
		k->allocated += active;
		/* Fragmented: not right after the previous cluster of this L2 table. */
		k->fragmented += active && next && off != next;
		next = off + q->cluster_size;
	}
	return 0;
}

static int walk_l1(struct ck *k, const uint64_t *l1be, uint32_t l1_size, bool active)
{
	struct qcow2 *q = k->q;

	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t e = be64toh(l1be[i]), off = e & L1E_OFFSET_MASK;
		int r;

		if (!off)
			continue;
		if (off % q->cluster_size) {
			ck_log(k,
			       "ERROR l2_offset=%llx: Table is not cluster aligned; L1 entry "
			       "corrupted",
			       (unsigned long long)off);
			k->res->corruptions++;
			continue;
		}
		if (!inc(k, off, q->cluster_size, "L2 table"))
			continue;
		/* A table referenced twice is already an error; walking it again could loop. */
		if (k->refs[off >> q->cluster_bits] > 1)
			continue;
		r = walk_l2(k, off, active);
		if (r)
			return r;
	}
	return 0;
}

static int walk_snapshots(struct ck *k)
{
	struct qcow2 *q = k->q;
	uint64_t p = q->snapshots_offset;
	uint8_t h[40];

	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		int r = fio_pread(q->f, h, sizeof(h), p);

		if (r)
			return r;
		uint64_t l1off = be64_at(h), len;
		uint32_t l1n = be32_at(h + 8), extra = be32_at(h + 36);

		len = 40 + (uint64_t)extra + be16_at(h + 12) + be16_at(h + 14);
		p += (len + 7) & ~7ULL;
		if ((uint64_t)l1n * 8 > QCOW2_MAX_L1_BYTES || l1off % q->cluster_size) {
			ck_log(k, "ERROR snapshot %u has an invalid L1 table", i);
			k->res->corruptions++;
			continue;
		}
		if (!inc(k, l1off, (uint64_t)l1n * 8, "snapshot L1 table"))
			continue;
		uint64_t *l1 = malloc((uint64_t)l1n * 8 + 8);

		if (!l1)
			return -ENOMEM;
		r = fio_pread(q->f, l1, (uint64_t)l1n * 8, l1off);
		if (!r)
			r = walk_l1(k, l1, l1n, false);
		free(l1);
		if (r)
			return r;
	}
	inc(k, q->snapshots_offset, p - q->snapshots_offset, "snapshot table");
	return 0;
}

/* Count every reference from the metadata. */
static int count_refs(struct ck *k)
{
	struct qcow2 *q = k->q;
	int r;

	memset(k->refs, 0, k->n * sizeof(*k->refs));
	k->compressed = k->allocated = k->fragmented = 0;
	inc(k, 0, q->cluster_size, "header");
	inc(k, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
	r = walk_l1(k, q->l1, q->l1_size, true);
	if (r)
		return r;
	if (q->nb_snapshots) {
		r = walk_snapshots(k);
		if (r)
			return r;
	}
	inc(k, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits, "refcount table");
	for (uint32_t bi = 0; bi < q->rt_entries; bi++) {
		uint64_t off = rt_get(q, bi) & RTE_OFFSET_MASK;

		if (!off)
			continue;
		if (off % q->cluster_size) {
			ck_log(k,
			       "ERROR refcount block %u is not cluster aligned; refcount table "
			       "entry corrupted",
			       bi);
			k->res->corruptions++;
			continue;
		}
		if ((off >> q->cluster_bits) >= k->n) {
			ck_log(k, "ERROR refcount block %u is outside image", bi);
			k->res->corruptions++;
			continue;
		}
		inc(k, off, q->cluster_size, "refcount block");
	}
	return 0;
}

/* Stored vs. referenced, block by block; repair as allowed. */
static int compare(struct ck *k, enum qcow2_repair rep, bool count)
{
	struct qcow2 *q = k->q;
	uint64_t per = 1ULL << q->rb_bits;
	int r;

	/* Clusters inside the file only: bounded by its size whatever the tables claim. */
	for (uint64_t bi = 0; bi <= (k->n - 1) >> q->rb_bits; bi++) {
		uint64_t off = bi < q->rt_entries ? rt_get(q, bi) & RTE_OFFSET_MASK : 0;
		bool usable = off && !(off % q->cluster_size) && (off >> q->cluster_bits) < k->n;

		for (uint64_t c = bi * per; c < (bi + 1) * per && c < k->n; c++) {
			uint64_t want = k->refs[c], have = 0;

			if (usable) {
				r = rc_get(q, c, &have);
				if (r)
					return r;
			}
			if (count && (have || want))
				k->end = c + 1;
			if (have == want)
				continue;
			bool leak = have > want;

			if (count) {
				ck_log(k, "%s cluster %llu refcount=%llu reference=%llu",
				       (rep & (leak ? QCOW2_REPAIR_LEAKS : 2)) ? "Repairing"
				       : leak				       ? "Leaked"
									       : "ERROR",
				       (unsigned long long)c, (unsigned long long)have,
				       (unsigned long long)want);
				if (leak)
					k->res->leaks++;
				else
					k->res->corruptions++;
			}
			if (!(rep & (leak ? QCOW2_REPAIR_LEAKS : 2)) || !usable || want > rc_max(q))
				continue;
			r = rc_set(q, c, want);
			if (r)
				return r;
			if (count) {
				if (leak)
					k->res->leaks_fixed++;
				else
					k->res->corruptions_fixed++;
			}
		}
	}
	return 0;
}

static int check_copied(struct ck *k, enum qcow2_repair rep)
{
	struct qcow2 *q = k->q;
	bool fix = rep & 2;

	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t e = l1_get(q, i), off = e & L1E_OFFSET_MASK, rc;
		struct tc_ent *t;
		int r;

		if (!off || off % q->cluster_size || (off >> q->cluster_bits) >= k->n)
			continue;
		r = rc_get(q, off >> q->cluster_bits, &rc);
		if (r)
			return r;
		if ((rc == 1) != !!(e & QCOW_OFLAG_COPIED)) {
			ck_log(
			    k,
			    "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu",
			    fix ? "Repairing" : "ERROR", i, (unsigned long long)e,
			    (unsigned long long)rc);
			k->res->corruptions++;
			if (fix) {
				q->l1[i] = htobe64(rc == 1 ? e | QCOW_OFLAG_COPIED
							   : e & ~QCOW_OFLAG_COPIED);
				bit_set(q->l1_dirty, i * 8 / QCOW2_SECTOR);
				q->l1_is_dirty = true;
				q->dirty = true;
				k->res->corruptions_fixed++;
			}
		}
		r = tc_get(q, &q->l2c, off, false, &t);
		if (r)
			return r;
		for (uint64_t j = 0; j < q->cluster_size / 8; j++) {
			uint64_t e2 = be64_at(t->data + j * 8), d = e2 & L2E_OFFSET_MASK;

			if (l2_classify(q, e2) != L2_NORMAL || d % q->cluster_size ||
			    (d >> q->cluster_bits) >= k->n)
				continue;
			r = rc_get(q, d >> q->cluster_bits, &rc);
			if (r)
				return r;
			if ((rc == 1) == !!(e2 & QCOW_OFLAG_COPIED))
				continue;
			ck_log(k, "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
			       fix ? "Repairing" : "ERROR", (unsigned long long)e2,
			       (unsigned long long)rc);
			k->res->corruptions++;
			if (fix) {
				l2_set(q, t, j,
				       rc == 1 ? e2 | QCOW_OFLAG_COPIED : e2 & ~QCOW_OFLAG_COPIED,
				       0);
				k->res->corruptions_fixed++;
			}
		}
	}
	return 0;
}

int qcow2_check(struct qcow2 *q, enum qcow2_repair rep, struct qcow2_check_result *res,
		void (*log)(void *ctx, const char *line), void *ctx)
{
	struct ck k = { .q = q, .res = res, .log = log, .ctx = ctx };
	uint64_t fsize;
	int r;

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&q->lock);
	if (rep && q->ro) {
		r = -EROFS;
		goto out;
	}
	r = q->ro ? 0 : qcow2_flush_locked(q);
	if (!r)
		r = fio_size(q->f, &fsize);
	if (r)
		goto out;
	k.n = (fsize + q->cluster_size - 1) >> q->cluster_bits;
	if (k.n > CHECK_MAX_CLUSTERS) {
		r = -EFBIG;
		goto out;
	}
	if (!k.n)
		k.n = 1;
	k.refs = calloc(k.n, sizeof(*k.refs));
	k.tbl = malloc(q->cluster_size);
	if (!k.refs || !k.tbl) {
		r = -ENOMEM;
		goto out;
	}
	r = count_refs(&k);
	if (!r)
		r = compare(&k, rep, true);
	if (!r)
		r = check_copied(&k, rep);
	res->total_clusters = (q->size + q->cluster_size - 1) >> q->cluster_bits;
	res->allocated_clusters = k.allocated;
	res->compressed_clusters = k.compressed;
	res->fragmented_clusters = k.fragmented;
	/* As qemu-img: the end of the highest cluster in use, not the file's size. */
	res->image_end = k.end << q->cluster_bits;
	if (!r && rep && (res->leaks_fixed || res->corruptions_fixed)) {
		/* Persist the repair, then make sure it holds. */
		q->dirty = true;
		r = qcow2_flush_locked(q);
		if (!r)
			r = rc_write_dirty(q);
		if (!r)
			r = qcow2_meta_submit(q, NULL, 0, true);
		q->free_hint = 1;
	}
out:
	if (r)
		res->check_errors++;
	free(k.refs);
	free(k.tbl);
	pthread_mutex_unlock(&q->lock);
	return r;
}
