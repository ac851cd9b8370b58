// SPDX-License-Identifier: GPL-2.0-or-later
/* Guest reads, writes, discards and flushes. */
#include <errno.h>
#include <stdlib.h>

#include "iov.h"
#include "qcow2/qcow2_int.h"

static int check_range(struct qcow2 *q, uint64_t off, uint64_t len)
{
	if (off % 512 || len % 512 || off > q->size || len > q->size - off)
		return -EINVAL;
	return 0;
}

/* A pending run of guest bytes going to contiguous host bytes. */
struct run {
	uint64_t host;
	size_t pos, len;
	bool wr;
};

static int run_flush(struct qcow2 *q, struct run *r, const struct iovec *iov, int cnt,
		     struct iovec *tmp)
{
	int k, e;

	if (!r->len)
		return 0;
	/* @tmp has @cnt slots: a range of the list never needs more. */
	k = iov_range(iov, (unsigned int)cnt, r->pos, r->len, tmp, (unsigned int)cnt);
	if (k < 0)
		return k;
	e = r->wr ? fio_pwritev(q->f, tmp, k, r->host) : fio_preadv(q->f, tmp, k, r->host);
	r->len = 0;
	return e;
}

static int run_add(struct qcow2 *q, struct run *r, uint64_t host, size_t pos, size_t n,
		   const struct iovec *iov, int cnt, struct iovec *tmp)
{
	if (r->len && r->host + r->len == host && r->pos + r->len == pos) {
		r->len += n;
		return 0;
	}
	int e = run_flush(q, r, iov, cnt, tmp);

	r->host = host;
	r->pos = pos;
	r->len = n;
	return e;
}

int qcow2_read_locked(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off)
{
	size_t len = iov_total(iov, (unsigned int)cnt), pos = 0;
	struct iovec stack[16], *tmp = cnt > 16 ? malloc(sizeof(*tmp) * cnt) : stack;
	struct run run = { .wr = false };
	int r = check_range(q, off, len);

	if (!tmp)
		return -ENOMEM;
	while (!r && pos < len) {
		uint64_t vo = off + pos, vcl = vo >> q->cluster_bits, e;
		size_t in = vo & (q->cluster_size - 1);
		size_t n = q->cluster_size - in < len - pos ? q->cluster_size - in : len - pos;

		r = l2_lookup(q, vcl, &e);
		if (r)
			break;
		switch (l2_classify(q, e)) {
		case L2_NORMAL:
			r = run_add(q, &run, (e & L2E_OFFSET_MASK) + in, pos, n, iov, cnt, tmp);
			break;
		case L2_UNALLOC:
			if (q->bq || q->braw) {
				uint8_t *b = malloc(n);

				r = b ? qcow2_backing_read(q, b, n, vo) : -ENOMEM;
				if (!r)
					iov_from_buf(iov, (unsigned int)cnt, pos, b, n);
				free(b);
				break;
			}
			/* fall through */
		case L2_ZERO_PLAIN:
		case L2_ZERO_ALLOC:
			iov_memset(iov, (unsigned int)cnt, pos, 0, n);
			break;
		case L2_COMPRESSED:
			if (!q->cbuf) {
				q->cbuf = malloc(q->cluster_size);
				if (!q->cbuf) {
					r = -ENOMEM;
					break;
				}
				q->cbuf_key = 0;
			}
			if (q->cbuf_key != e) {
				q->cbuf_key = 0;
				r = qcow2_decompress(q, e, q->cbuf);
				if (r)
					break;
				q->cbuf_key = e;
			}
			iov_from_buf(iov, (unsigned int)cnt, pos, q->cbuf + in, n);
			break;
		}
		pos += n;
	}
	if (!r)
		r = run_flush(q, &run, iov, cnt, tmp);
	if (tmp != stack)
		free(tmp);
	return r;
}

/* Drop the host cluster(s) an L2 entry held, once the new entry is durable. */
static int free_entry(struct qcow2 *q, uint64_t e)
{
	enum l2_type t = l2_classify(q, e);

	if (t == L2_NORMAL || t == L2_ZERO_ALLOC)
		return freed_add(q, (e & L2E_OFFSET_MASK) >> q->cluster_bits,
				 !!(e & QCOW_OFLAG_COPIED));
	if (t == L2_COMPRESSED) {
		unsigned int x = 62 - (q->cluster_bits - 8);
		uint64_t o = e & ((1ULL << x) - 1);
		uint64_t nsec = ((e >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;
		uint64_t end = o + nsec * 512 - (o & 511);

		if (q->cbuf_key == e)
			q->cbuf_key = 0;
		for (uint64_t c = o >> q->cluster_bits; c <= (end - 1) >> q->cluster_bits; c++) {
			int r = freed_add(q, c, false);

			if (r)
				return r;
		}
	}
	return 0;
}

/*
 * The old content of a cluster being reallocated, for a partial write.
 * Returns 1 with @buf filled when it is not all zeros, 0 when it reads as zeros.
 */
static int cow_source(struct qcow2 *q, uint64_t vcl, uint64_t e, uint8_t *buf)
{
	uint64_t vo = vcl << q->cluster_bits;
	size_t n = q->cluster_size;
	int r;

	if (vo + n > q->size)
		n = q->size - vo;
	memset(buf, 0, q->cluster_size);
	switch (l2_classify(q, e)) {
	case L2_UNALLOC:
		if (!q->bq && !q->braw)
			return 0;
		r = qcow2_backing_read(q, buf, n, vo);
		break;
	case L2_COMPRESSED:
		r = qcow2_decompress(q, e, buf);
		break;
	case L2_NORMAL:
		r = fio_pread(q->f, buf, q->cluster_size, e & L2E_OFFSET_MASK);
		break;
	default:
		return 0;
	}
	if (r)
		return r;
	for (size_t i = 0; i < q->cluster_size; i += 8)
		if (*(uint64_t *)(buf + i))
			return 1;
	return 0;
}

/*
 * Point guest cluster @vcl at a cluster from the pool. The entry may not reach
 * the disk before generation @extra_need (data it exposes) nor before the
 * pool cluster's own reservation is ordered.
 */
static int alloc_cluster(struct qcow2 *q, uint64_t vcl, uint64_t old, uint64_t *host,
			 uint64_t extra_need)
{
	struct tc_ent *tab;
	unsigned int idx;
	uint64_t c, gen;
	int r = pool_alloc(q, &c, &gen);

	if (r)
		return r;
	r = l2_for_write(q, vcl, &tab, &idx);
	if (r)
		return r;
	*host = c << q->cluster_bits;
	l2_set(q, tab, idx, *host | QCOW_OFLAG_COPIED, gen > extra_need ? gen : extra_need);
	q->st.allocs++;
	q->allocs_since_flush++;
	return free_entry(q, old);
}

static int write_locked(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off)
{
	size_t len = iov_total(iov, (unsigned int)cnt), pos = 0;
	struct iovec stack[16], *tmp = cnt > 16 ? malloc(sizeof(*tmp) * cnt) : stack;
	struct run run = { .wr = true };
	uint8_t *cow = NULL;
	int r = q->ro ? -EROFS : check_range(q, off, len);

	if (!tmp)
		return -ENOMEM;
	while (!r && pos < len) {
		uint64_t vo = off + pos, vcl = vo >> q->cluster_bits, e, host;
		size_t in = vo & (q->cluster_size - 1);
		size_t n = q->cluster_size - in < len - pos ? q->cluster_size - in : len - pos;
		enum l2_type t;
		uint64_t rc = 1;

		r = l2_lookup(q, vcl, &e);
		if (r)
			break;
		t = l2_classify(q, e);
		if (t == L2_NORMAL && !(e & QCOW_OFLAG_COPIED)) {
			r = rc_get(q, (e & L2E_OFFSET_MASK) >> q->cluster_bits, &rc);
			if (r)
				break;
		}
		if (t == L2_NORMAL && rc == 1) {
			r = run_add(q, &run, (e & L2E_OFFSET_MASK) + in, pos, n, iov, cnt, tmp);
		} else if (n == q->cluster_size) {
			r = alloc_cluster(q, vcl, e, &host, 0);
			if (!r)
				r = run_add(q, &run, host, pos, n, iov, cnt, tmp);
		} else {
			if (!cow && !(cow = malloc(q->cluster_size))) {
				r = -ENOMEM;
				break;
			}
			int has = cow_source(q, vcl, e, cow);

			if (has < 0) {
				r = has;
				break;
			}
			/* Old content must be on disk before the entry that exposes it. */
			r = alloc_cluster(q, vcl, e, &host, has ? q->sync_gen + 1 : 0);
			if (r)
				break;
			if (has) {
				iov_to_buf(iov, (unsigned int)cnt, pos, cow + in, n);
				r = run_flush(q, &run, iov, cnt, tmp);
				if (!r)
					r = fio_pwrite(q->f, cow, q->cluster_size, host);
				q->st.cow_bytes += q->cluster_size - n;
			} else {
				r = run_add(q, &run, host + in, pos, n, iov, cnt, tmp);
			}
		}
		pos += n;
	}
	if (!r)
		r = run_flush(q, &run, iov, cnt, tmp);
	if (len)
		q->dirty = true;
	q->st.data_bytes += len;
	free(cow);
	if (tmp != stack)
		free(tmp);
	return r;
}

/*
 * Whole clusters of [off, off+len) are deallocated (discard) or made to read
 * zeros (@zero); partial clusters are left to the caller.
 */
static int set_range(struct qcow2 *q, uint64_t off, uint64_t len, bool zero)
{
	uint64_t first = (off + q->cluster_size - 1) >> q->cluster_bits;
	uint64_t end = (off + len) >> q->cluster_bits;
	bool backing = q->bq || q->braw;
	int r = 0;

	if (off + len == q->size)
		end = (q->size + q->cluster_size - 1) >> q->cluster_bits;
	for (uint64_t vcl = first; vcl < end && !r; vcl++) {
		struct tc_ent *tab;
		unsigned int idx;
		uint64_t e, newe = 0, host;

		r = l2_lookup(q, vcl, &e);
		if (r)
			break;
		enum l2_type t = l2_classify(q, e);

		/* v3 hides the backing file with the zero flag; v2 discard reveals it. */
		if (t == L2_ZERO_PLAIN ||
		    (t == L2_UNALLOC && (!backing || (!zero && q->version < 3))))
			continue;
		if (backing && (zero || q->version >= 3)) {
			if (q->version >= 3) {
				newe = QCOW_OFLAG_ZERO;
			} else {
				/* v2 has no zero flag: a fresh pool cluster reads as zeros. */
				r = alloc_cluster(q, vcl, e, &host, 0);
				continue;
			}
		}
		r = l2_for_write(q, vcl, &tab, &idx);
		if (r)
			break;
		l2_set(q, tab, idx, newe, 0);
		r = free_entry(q, e);
	}
	return r;
}

static int zero_partial(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint8_t *z;
	int r;

	if (!len)
		return 0;
	z = calloc(1, len);
	if (!z)
		return -ENOMEM;
	struct iovec iov = { z, len };

	r = write_locked(q, &iov, 1, off);
	free(z);
	return r;
}

static int zeroes_locked(struct qcow2 *q, uint64_t off, uint64_t len)
{
	uint64_t a = (off + q->cluster_size - 1) & ~(q->cluster_size - 1);
	uint64_t b = (off + len) & ~(q->cluster_size - 1);
	int r;

	if (off + len == q->size)
		b = off + len;
	if (a >= b) /* inside one cluster */
		return zero_partial(q, off, len);
	r = zero_partial(q, off, a - off);
	if (!r)
		r = set_range(q, a, b - a, true);
	if (!r)
		r = zero_partial(q, b, off + len - b);
	return r;
}

int qcow2_flush_locked(struct qcow2 *q)
{
	struct fio_req *reqs = NULL;
	int n = 0, cap = 0, r = 0;
	uint64_t need;

	q->st.flushes++;
	if (q->ro || !q->dirty) {
		q->st.noop_flushes++;
		return 0;
	}
	/* The only ordering point: entries that expose something not yet durable. */
	need = tc_max_need(&q->l2c);
	if (q->l1_is_dirty && q->l1_need_gen > need)
		need = q->l1_need_gen;
	if (q->sync_gen < need)
		r = rc_write_dirty_and_barrier(q);
	if (!r && q->allocs_since_flush)
		r = pool_refill_ahead(q, q->allocs_since_flush);
	if (!r)
		r = tc_collect(q, &q->rbc, &reqs, &n, &cap);
	if (!r && q->rt_is_dirty)
		r = flat_collect(q, q->rt, q->rt_offset, (size_t)q->rt_entries * 8, q->rt_dirty,
				 &reqs, &n, &cap);
	if (!r)
		r = tc_collect(q, &q->l2c, &reqs, &n, &cap);
	if (!r && q->l1_is_dirty)
		r = flat_collect(q, q->l1, q->l1_offset, (size_t)q->l1_size * 8, q->l1_dirty, &reqs,
				 &n, &cap);
	if (!r)
		r = qcow2_meta_submit(q, reqs, n, true);
	free(reqs);
	if (r)
		return r;
	tc_clean_all(&q->rbc);
	tc_clean_all(&q->l2c);
	if (q->rt_is_dirty) {
		memset(q->rt_dirty, 0, ((size_t)q->rt_entries * 8 / QCOW2_SECTOR + 64) / 8);
		q->rt_is_dirty = false;
	}
	if (q->l1_is_dirty) {
		memset(q->l1_dirty, 0, ((size_t)q->l1_size * 8 / QCOW2_SECTOR + 64) / 8);
		q->l1_is_dirty = false;
		q->l1_need_gen = 0;
	}
	q->dirty = false;
	q->allocs_since_flush = 0;
	r = freed_process(q);
	q->flush_epoch++;
	return r;
}

int qcow2_preadv(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off)
{
	pthread_mutex_lock(&q->lock);
	int r = qcow2_read_locked(q, iov, cnt, off);

	pthread_mutex_unlock(&q->lock);
	return r;
}

int qcow2_pwritev(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off)
{
	pthread_mutex_lock(&q->lock);
	int r = write_locked(q, iov, cnt, off);

	pthread_mutex_unlock(&q->lock);
	return r;
}

int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { buf, len };

	return qcow2_preadv(q, &iov, 1, off);
}

int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { (void *)buf, len };

	return qcow2_pwritev(q, &iov, 1, off);
}

int qcow2_flush(struct qcow2 *q)
{
	pthread_mutex_lock(&q->lock);
	int r = qcow2_flush_locked(q);

	pthread_mutex_unlock(&q->lock);
	return r;
}

int qcow2_make_empty(struct qcow2 *q)
{
	uint64_t n;
	int r;

	pthread_mutex_lock(&q->lock);
	r = q->ro ? -EROFS : 0;
	n = (q->size + q->cluster_size - 1) >> q->cluster_bits;
	for (uint64_t vcl = 0; vcl < n && !r; vcl++) {
		struct tc_ent *tab;
		unsigned int idx;
		uint64_t e;

		r = l2_lookup(q, vcl, &e);
		if (r || !e)
			continue;
		r = l2_for_write(q, vcl, &tab, &idx);
		if (r)
			break;
		l2_set(q, tab, idx, 0, 0);
		r = free_entry(q, e);
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&q->lock);
	int r = q->ro ? -EROFS : check_range(q, off, len);

	if (!r)
		r = set_range(q, off, len, false);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qcow2_write_zeroes(struct qcow2 *q, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&q->lock);
	int r = q->ro ? -EROFS : check_range(q, off, len);

	if (!r)
		r = zeroes_locked(q, off, len);
	pthread_mutex_unlock(&q->lock);
	return r;
}
