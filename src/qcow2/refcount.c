// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Refcounts, the reserved-cluster pool and refcount-structure growth.
 *
 * Invariant: the on-disk refcount of a cluster is never below the number of
 * references to it that can be durable. Clusters are reserved in batches
 * (refcount 1, zeroed content) and become usable without further ordering once
 * a sync has passed; a crash leaks at most the unused part of the pool.
 */
#include <errno.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

#define POOL_MIN_BATCH	  64
#define POOL_MIN_BYTES	  (8ULL << 20)
#define PREFILL_MAX_BYTES (32ULL << 20)
#define POOL_MAX_BYTES	  (256ULL << 20)
#define FREE_SCAN_MAX	  65536

uint64_t rc_max(struct qcow2 *q)
{
	return q->refcount_order == 6 ? UINT64_MAX : (1ULL << (1u << q->refcount_order)) - 1;
}

static uint64_t rc_decode(const uint8_t *b, uint64_t i, unsigned int order)
{
	switch (order) {
	case 0:
		return b[i / 8] >> (i % 8) & 1;
	case 1:
		return b[i / 4] >> (2 * (i % 4)) & 3;
	case 2:
		return b[i / 2] >> (4 * (i % 2)) & 15;
	case 3:
		return b[i];
	case 4:
		return be16_at(b + 2 * i);
	case 5:
		return be32_at(b + 4 * i);
	default:
		return be64_at(b + 8 * i);
	}
}

static void rc_encode(uint8_t *b, uint64_t i, unsigned int order, uint64_t v)
{
	unsigned int bits = 1u << order;

	switch (order) {
	case 0:
	case 1:
	case 2: {
		unsigned int per = 8 / bits, sh = bits * (i % per);
		uint8_t mask = ((1u << bits) - 1) << sh;

		b[i / per] = (b[i / per] & ~mask) | ((v << sh) & mask);
		break;
	}
	case 3:
		b[i] = v;
		break;
	case 4: {
		uint16_t x = htobe16(v);

		memcpy(b + 2 * i, &x, 2);
		break;
	}
	case 5:
		put_be32(b + 4 * i, v);
		break;
	default:
		put_be64(b + 8 * i, v);
		break;
	}
}

/* The refcount block covering @cluster; -ENOENT when none is allocated. */
static int rc_block(struct qcow2 *q, uint64_t cluster, struct tc_ent **e, uint64_t *idx)
{
	uint64_t bi = cluster >> q->rb_bits, off;
	int r;

	if (bi >= q->rt_entries)
		return -ENOENT;
	off = rt_get(q, bi);
	if (off & ~RTE_OFFSET_MASK) {
		qcow2_seterr(q, "refcount table entry %llu has reserved bits set",
			     (unsigned long long)bi);
		return -EIO;
	}
	if (!off)
		return -ENOENT;
	r = qcow2_check_meta_off(q, off, q->cluster_size, "refcount block");
	if (r)
		return r;
	r = tc_get(q, &q->rbc, off, false, e);
	if (r)
		return r;
	*idx = cluster & ((1ULL << q->rb_bits) - 1);
	return 0;
}

int rc_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
	struct tc_ent *e;
	uint64_t idx;
	int r = rc_block(q, cluster, &e, &idx);

	if (r == -ENOENT) {
		*rc = 0;
		return 0;
	}
	if (r)
		return r;
	*rc = rc_decode(e->data, idx, q->refcount_order);
	return 0;
}

int rc_set(struct qcow2 *q, uint64_t cluster, uint64_t rc)
{
	struct tc_ent *e;
	uint64_t idx;
	int r;

	if (rc > rc_max(q))
		return -ERANGE;
	r = rc_block(q, cluster, &e, &idx);
	if (r == -ENOENT)
		return -EIO;
	if (r)
		return r;
	rc_encode(e->data, idx, q->refcount_order, rc);
	tc_mark(&q->rbc, e, (idx << q->refcount_order) / 8, 1);
	if (rc == 0 && cluster < q->free_hint)
		q->free_hint = cluster;
	return 0;
}

/*
 * Make every refcount change so far durable-before whatever comes next: the
 * in-memory refcount state is always safe to persist, so it is simply written.
 */
int rc_write_dirty(struct qcow2 *q)
{
	struct fio_req *reqs = NULL;
	int n = 0, cap = 0, r;

	r = tc_collect(q, &q->rbc, &reqs, &n, &cap);
	if (!r && q->rt_is_dirty)
		r = flat_collect(q, q->rt, q->rt_offset, (size_t)q->rt_entries * 8, q->rt_dirty,
				 &reqs, &n, &cap);
	if (!r)
		r = qcow2_meta_submit(q, reqs, n, false);
	free(reqs);
	if (r)
		return r;
	tc_clean_all(&q->rbc);
	if (q->rt_is_dirty) {
		memset(q->rt_dirty, 0, ((size_t)q->rt_entries * 8 / QCOW2_SECTOR + 64) / 8);
		q->rt_is_dirty = false;
	}
	return 0;
}

int rc_write_dirty_and_barrier(struct qcow2 *q)
{
	int r = rc_write_dirty(q);

	if (r)
		return r;
	q->st.barriers++;
	r = fio_barrier(q->f);
	if (r)
		return r;
	q->sync_gen++;
	return 0;
}

static void rt_set(struct qcow2 *q, uint64_t bi, uint64_t off)
{
	q->rt[bi] = htobe64(off);
	bit_set(q->rt_dirty, bi * 8 / QCOW2_SECTOR);
	q->rt_is_dirty = true;
}

/* A new refcount block at cluster @c, covering itself. Ordered before the table entry. */
static int new_refblock_at(struct qcow2 *q, uint64_t c, uint64_t bi)
{
	struct tc_ent *e;
	uint64_t idx = c & ((1ULL << q->rb_bits) - 1);
	int r = tc_get(q, &q->rbc, c << q->cluster_bits, true, &e);

	if (r)
		return r;
	rc_encode(e->data, idx, q->refcount_order, 1);
	/* The whole cluster: it may be a recycled area rather than fresh zeros. */
	tc_mark(&q->rbc, e, 0, q->cluster_size);
	r = rc_write_dirty_and_barrier(q);
	if (r)
		return r;
	rt_set(q, bi, c << q->cluster_bits);
	return 0;
}

static int ensure_file_size(struct qcow2 *q)
{
	uint64_t want = q->file_end << q->cluster_bits, have;
	int r = fio_size(q->f, &have);

	if (r)
		return r;
	return have < want ? fio_truncate(q->f, want) : 0;
}

/*
 * Grow the refcount table to cover block index @need_bi. The new table and
 * the refcount blocks for its own clusters go at the end of the file, are
 * written and ordered before the header switch; the old table is freed after.
 */
static int rt_grow(struct qcow2 *q, uint64_t need_bi)
{
	uint64_t epc = q->cluster_size / 8, entries = need_bi + 1;
	uint64_t start = q->file_end, k, nrb, end;
	uint8_t *nt = NULL, *blk = NULL;
	uint64_t *nt_dirty = NULL;
	int r;

	if (entries < (uint64_t)q->rt_entries * 2)
		entries = (uint64_t)q->rt_entries * 2;
again:
	k = (entries + epc - 1) / epc;
	if (k << q->cluster_bits > QCOW2_MAX_RT_BYTES) {
		qcow2_seterr(q, "refcount table would exceed %u bytes", QCOW2_MAX_RT_BYTES);
		return -EFBIG;
	}
	entries = k * epc;
	nrb = 0;
	for (;;) {
		uint64_t missing = 0;

		end = start + k + nrb;
		if ((end - 1) >> q->rb_bits >= entries) {
			entries = ((end - 1) >> q->rb_bits) + 1 + epc;
			goto again;
		}
		for (uint64_t bi = start >> q->rb_bits; bi <= (end - 1) >> q->rb_bits; bi++)
			if (bi >= q->rt_entries || !rt_get(q, bi))
				missing++;
		if (missing == nrb)
			break;
		nrb = missing;
	}
	nt = calloc(1, k << q->cluster_bits);
	blk = calloc(1, q->cluster_size);
	nt_dirty = calloc(1, ((k << q->cluster_bits) / QCOW2_SECTOR + 64) / 8);
	if (!nt || !blk || !nt_dirty) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(nt, q->rt, (size_t)q->rt_entries * 8);

	/* New refcount blocks, each written whole with the counts it holds. */
	uint64_t next_rb = start + k;

	for (uint64_t bi = start >> q->rb_bits; bi <= (end - 1) >> q->rb_bits; bi++) {
		if (bi < q->rt_entries && rt_get(q, bi))
			continue;
		uint64_t rb = next_rb++, first = bi << q->rb_bits;

		memset(blk, 0, q->cluster_size);
		for (uint64_t c = start; c < end; c++)
			if (c >> q->rb_bits == bi)
				rc_encode(blk, c - first, q->refcount_order, 1);
		struct fio_req req = { blk, rb << q->cluster_bits, q->cluster_size };

		r = qcow2_meta_submit(q, &req, 1, false);
		if (r)
			goto out;
		put_be64(nt + bi * 8, rb << q->cluster_bits);
	}
	/* Clusters of the range covered by blocks that already exist. */
	for (uint64_t c = start; c < end; c++) {
		uint64_t bi = c >> q->rb_bits;

		if (bi < q->rt_entries && rt_get(q, bi)) {
			r = rc_set(q, c, 1);
			if (r)
				goto out;
		}
	}
	struct fio_req req = { nt, start << q->cluster_bits, k << q->cluster_bits };

	r = qcow2_meta_submit(q, &req, 1, false);
	if (!r)
		r = rc_write_dirty_and_barrier(q);
	if (r)
		goto out;

	/* Switch the header to the new table. */
	uint64_t old_off = q->rt_offset, old_n = q->rt_clusters;

	free(q->rt);
	free(q->rt_dirty);
	q->rt = (uint64_t *)nt;
	q->rt_dirty = nt_dirty;
	q->rt_is_dirty = false;
	q->rt_entries = entries;
	q->rt_offset = start << q->cluster_bits;
	q->rt_clusters = k;
	nt = NULL;
	nt_dirty = NULL;
	q->file_end = end;
	r = qcow2_write_header_field(q, HDR_RT_OFFSET, 12);
	if (!r)
		r = rc_write_dirty_and_barrier(q);
	for (uint64_t i = 0; !r && i < old_n; i++)
		r = rc_set(q, (old_off >> q->cluster_bits) + i, 0);
	if (!r)
		r = ensure_file_size(q);
out:
	free(nt);
	free(blk);
	free(nt_dirty);
	return r;
}

/* One cluster at the end of the file, its refcount set to 1. */
static int alloc_at_end(struct qcow2 *q, uint64_t *out)
{
	for (int guard = 0; guard < 8; guard++) {
		uint64_t c = q->file_end, bi = c >> q->rb_bits;
		int r;

		if (bi >= q->rt_entries) {
			r = rt_grow(q, bi);
			if (r)
				return r;
			continue;
		}
		if (!rt_get(q, bi)) {
			q->file_end++;
			r = new_refblock_at(q, c, bi);
			if (r)
				return r;
			continue;
		}
		r = rc_set(q, c, 1);
		if (r)
			return r;
		q->file_end++;
		if (q->free_hint <= c)
			q->free_hint = c + 1; /* nothing free below the end to rescan */
		*out = c;
		return 0;
	}
	return -EIO;
}

static int pool_add(struct qcow2 *q, uint64_t c, uint64_t n, uint64_t gen)
{
	if (q->pool_n) {
		struct pool_ext *l = &q->pool[q->pool_n - 1];

		if (l->start + l->count == c && l->gen == gen) {
			l->count += n;
			return 0;
		}
	}
	if (q->pool_n == q->pool_cap) {
		unsigned int nc = q->pool_cap ? q->pool_cap * 2 : 16;
		struct pool_ext *np = realloc(q->pool, sizeof(*np) * nc);

		if (!np)
			return -ENOMEM;
		q->pool = np;
		q->pool_cap = nc;
	}
	q->pool[q->pool_n++] = (struct pool_ext){ c, n, gen };
	return 0;
}

uint64_t pool_ready(struct qcow2 *q, uint64_t by_gen)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < q->pool_n; i++)
		if (q->pool[i].gen <= by_gen)
			n += q->pool[i].count;
	return n;
}

/* Small batches for huge clusters: a reservation should not dwarf the image. */
static uint64_t pool_min_batch(struct qcow2 *q)
{
	uint64_t m = POOL_MIN_BYTES >> q->cluster_bits;

	return m < 4 ? 4 : m > POOL_MIN_BATCH ? POOL_MIN_BATCH : m;
}

static uint64_t pool_max_batch(struct qcow2 *q)
{
	uint64_t m = POOL_MAX_BYTES >> q->cluster_bits;

	return m < pool_min_batch(q) ? pool_min_batch(q) : m > 65536 ? 65536 : m;
}

/*
 * Reserve @n clusters: free ones found below the end of the file (punched to
 * zeros), then fresh ones at the end. All of it becomes durable with the next
 * sync, which is what the returned extents' generation says.
 */
/*
 * Write zeros over reserved clusters: later guest writes are then plain
 * overwrites, so the flush's fdatasync needs no file-system block allocation.
 */
static int prefill(struct qcow2 *q, const uint64_t *c, uint64_t n)
{
	static const uint8_t zero[1 << 20];
	uint64_t i = 0;

	while (i < n) {
		uint64_t j = i + 1;

		while (j < n && c[j] == c[j - 1] + 1 && (j - i) << q->cluster_bits < sizeof(zero))
			j++;
		uint64_t len = (j - i) << q->cluster_bits, off = c[i] << q->cluster_bits;

		while (len) {
			uint64_t k = len < sizeof(zero) ? len : sizeof(zero);
			int r = fio_pwrite(q->f, zero, k, off);

			if (r)
				return r;
			q->st.prefill_bytes += k;
			off += k;
			len -= k;
		}
		i = j;
	}
	return 0;
}

int pool_reserve(struct qcow2 *q, uint64_t n, bool fill)
{
	uint64_t scanned = 0, got = 0, *tmp;
	int r = 0;

	if (q->ro)
		return -EROFS;
	if (q->version >= 3 && !(q->autoclear & AUTOCLEAR_POOL)) {
		q->autoclear |= AUTOCLEAR_POOL;
		r = qcow2_write_header_field(q, HDR_AUTOCLEAR, 8);
		if (!r)
			r = rc_write_dirty_and_barrier(q);
		if (r)
			return r;
	}
	tmp = malloc(sizeof(*tmp) * n);
	if (!tmp)
		return -ENOMEM;
	while (got < n && q->free_hint < q->file_end && scanned < FREE_SCAN_MAX) {
		uint64_t c = q->free_hint++, rc;

		scanned++;
		if (c == 0)
			continue;
		r = rc_get(q, c, &rc);
		if (r)
			goto out;
		if (rc)
			continue;
		if (c >> q->rb_bits >= q->rt_entries || !rt_get(q, c >> q->rb_bits))
			continue;
		r = rc_set(q, c, 1);
		if (!r && !fill)
			r = fio_punch(q->f, c << q->cluster_bits, q->cluster_size);
		if (r)
			goto out;
		tmp[got++] = c;
	}
	while (got < n) {
		r = alloc_at_end(q, &tmp[got]);
		if (r)
			goto out;
		got++;
	}
	r = ensure_file_size(q);
	if (!r && fill)
		r = prefill(q, tmp, got);
out:
	/* Generation after any structural barrier taken above. */
	for (uint64_t i = 0; i < got; i++) {
		int e = pool_add(q, tmp[i], 1, q->sync_gen + 1);

		if (e && !r)
			r = e;
	}
	q->st.reserved += got;
	q->allocs_since_refill = 0;
	free(tmp);
	return r;
}

int pool_alloc(struct qcow2 *q, uint64_t *cluster, uint64_t *gen)
{
	for (int tries = 0; tries < 2; tries++) {
		int pick = -1;

		for (unsigned int i = 0; i < q->pool_n; i++) {
			if (q->pool[i].gen <= q->sync_gen) {
				pick = i;
				break;
			}
			if (pick < 0)
				pick = i;
		}
		if (pick >= 0) {
			struct pool_ext *e = &q->pool[pick];

			*cluster = e->start++;
			*gen = e->gen;
			if (--e->count == 0)
				memmove(e, e + 1, sizeof(*e) * (--q->pool_n - pick));
			q->allocs_since_refill++;
			return 0;
		}
		uint64_t batch = q->allocs_since_refill * 2, max = pool_max_batch(q);

		batch = batch < pool_min_batch(q) ? pool_min_batch(q) : batch > max ? max : batch;
		/* Between flushes: sparse, the data is about to be written anyway. */
		int r = pool_reserve(q, batch, false);

		if (r)
			return r;
	}
	return -ENOSPC;
}

/* Called by flush before its sync: top the pool up so the next allocations are durable. */
int pool_refill_ahead(struct qcow2 *q, uint64_t demand)
{
	uint64_t have = pool_ready(q, UINT64_MAX), max = pool_max_batch(q);
	uint64_t want = demand * 4;

	if (have > demand * 2 + 8 && have >= 8)
		return 0;
	/* Written zeros cost real space if a crash leaks them: keep those batches small. */
	if (q->prefill && max > (PREFILL_MAX_BYTES >> q->cluster_bits))
		max = PREFILL_MAX_BYTES >> q->cluster_bits;
	if (max < pool_min_batch(q))
		max = pool_min_batch(q);
	want = want < pool_min_batch(q) ? pool_min_batch(q) : want > max ? max : want;
	return pool_reserve(q, want, q->prefill);
}

/* Clean close: give the unused reservations back. Only after the last flush. */
int pool_release_all(struct qcow2 *q)
{
	for (unsigned int i = 0; i < q->pool_n; i++) {
		for (uint64_t j = 0; j < q->pool[i].count; j++) {
			int r = rc_set(q, q->pool[i].start + j, 0);

			if (r)
				return r;
		}
	}
	q->pool_n = 0;
	return 0;
}

int freed_add(struct qcow2 *q, uint64_t cluster, bool to_pool)
{
	if (q->freed_n == q->freed_cap) {
		unsigned int nc = q->freed_cap ? q->freed_cap * 2 : 64;
		struct freed *nf = realloc(q->freed, sizeof(*nf) * nc);

		if (!nf)
			return -ENOMEM;
		q->freed = nf;
		q->freed_cap = nc;
	}
	q->freed[q->freed_n++] = (struct freed){ cluster, q->flush_epoch, to_pool };
	return 0;
}

/*
 * After a flush made every L2/L1 update durable: clusters they dropped can be
 * punched and reused (plain clusters keep refcount 1 and join the pool) or
 * have their refcount lowered (compressed data, shared clusters).
 */
int freed_process(struct qcow2 *q)
{
	uint64_t cap = pool_max_batch(q) * 2;
	int r = 0;

	for (unsigned int i = 0; i < q->freed_n && !r; i++) {
		struct freed *f = &q->freed[i];
		uint64_t rc;

		if (f->to_pool && pool_ready(q, UINT64_MAX) < cap) {
			r = fio_punch(q->f, f->cluster << q->cluster_bits, q->cluster_size);
			if (!r)
				r = pool_add(q, f->cluster, 1, q->sync_gen + 1);
			continue;
		}
		r = rc_get(q, f->cluster, &rc);
		if (!r && rc)
			r = rc_set(q, f->cluster, rc - 1);
	}
	q->freed_n = 0;
	return r;
}
