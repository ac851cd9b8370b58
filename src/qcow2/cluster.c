// SPDX-License-Identifier: GPL-2.0-or-later
/* Guest-cluster to host mapping through the L1 table and cached L2 tables. */
#include <errno.h>

#include "qcow2/qcow2_int.h"

enum l2_type l2_classify(struct qcow2 *q, uint64_t e)
{
	if (e & QCOW_OFLAG_COMPRESSED)
		return L2_COMPRESSED;
	if ((e & QCOW_OFLAG_ZERO) && q->version >= 3)
		return (e & L2E_OFFSET_MASK) ? L2_ZERO_ALLOC : L2_ZERO_PLAIN;
	return (e & L2E_OFFSET_MASK) ? L2_NORMAL : L2_UNALLOC;
}

static int l1_entry(struct qcow2 *q, uint64_t vcl, uint64_t *l2off)
{
	uint64_t i = vcl >> q->l2_bits, e;

	if (i >= q->l1_size) {
		qcow2_seterr(q, "guest cluster %llu beyond the L1 table", (unsigned long long)vcl);
		return -EIO;
	}
	e = l1_get(q, i);
	if (e & L1E_RESERVED_MASK) {
		qcow2_seterr(q, "L1 entry %llu has reserved bits set", (unsigned long long)i);
		return -EIO;
	}
	*l2off = e & L1E_OFFSET_MASK;
	if (*l2off)
		return qcow2_check_meta_off(q, *l2off, q->cluster_size, "L2 table");
	return 0;
}

static int check_l2e(struct qcow2 *q, uint64_t e)
{
	enum l2_type t = l2_classify(q, e);

	if (t == L2_COMPRESSED) {
		unsigned int x = 62 - (q->cluster_bits - 8);
		uint64_t off = e & ((1ULL << x) - 1);

		if (off < q->cluster_size) {
			qcow2_seterr(q, "compressed cluster overlaps the header");
			return -EIO;
		}
		return 0;
	}
	if (e & L2E_RESERVED_MASK) {
		qcow2_seterr(q, "L2 entry 0x%llx has reserved bits set", (unsigned long long)e);
		return -EIO;
	}
	if (t == L2_NORMAL || t == L2_ZERO_ALLOC) {
		uint64_t off = e & L2E_OFFSET_MASK;

		if (off % q->cluster_size || off < q->cluster_size) {
			qcow2_seterr(q, "data cluster offset 0x%llx invalid",
				     (unsigned long long)off);
			return -EIO;
		}
	}
	return 0;
}

int l2_lookup(struct qcow2 *q, uint64_t vcl, uint64_t *entry)
{
	struct tc_ent *t;
	uint64_t l2off;
	int r = l1_entry(q, vcl, &l2off);

	if (r)
		return r;
	if (!l2off) {
		*entry = 0;
		return 0;
	}
	r = tc_get(q, &q->l2c, l2off, false, &t);
	if (r)
		return r;
	*entry = be64_at(t->data + (vcl & ((1ULL << q->l2_bits) - 1)) * 8);
	return check_l2e(q, *entry);
}

/* The L2 table for @vcl, allocating it from the pool when missing. */
int l2_for_write(struct qcow2 *q, uint64_t vcl, struct tc_ent **tab, unsigned int *idx)
{
	uint64_t i = vcl >> q->l2_bits, l2off, e;
	int r = l1_entry(q, vcl, &l2off);

	if (r)
		return r;
	e = l1_get(q, i);
	if (l2off && !(e & QCOW_OFLAG_COPIED)) {
		uint64_t rc;

		/* Shared L2 tables would need copy-on-write; those images open read-only. */
		r = rc_get(q, l2off >> q->cluster_bits, &rc);
		if (r)
			return r;
		if (rc != 1) {
			qcow2_seterr(q, "L2 table at 0x%llx is shared", (unsigned long long)l2off);
			return -EIO;
		}
		q->l1[i] = htobe64(e | QCOW_OFLAG_COPIED);
		bit_set(q->l1_dirty, i * 8 / QCOW2_SECTOR);
		q->l1_is_dirty = true;
	}
	if (!l2off) {
		uint64_t c, gen;

		r = pool_alloc(q, &c, &gen);
		if (r)
			return r;
		l2off = c << q->cluster_bits;
		/* Pool clusters read as zeros on disk: the empty table needs no write. */
		r = tc_get(q, &q->l2c, l2off, true, tab);
		if (r)
			return r;
		q->l1[i] = htobe64(l2off | QCOW_OFLAG_COPIED);
		bit_set(q->l1_dirty, i * 8 / QCOW2_SECTOR);
		q->l1_is_dirty = true;
		if (gen > q->l1_need_gen)
			q->l1_need_gen = gen;
	} else {
		r = tc_get(q, &q->l2c, l2off, false, tab);
		if (r)
			return r;
	}
	*idx = vcl & ((1ULL << q->l2_bits) - 1);
	return 0;
}

void l2_set(struct qcow2 *q, struct tc_ent *tab, unsigned int idx, uint64_t e, uint64_t need)
{
	put_be64(tab->data + (size_t)idx * 8, e);
	tc_mark(&q->l2c, tab, (size_t)idx * 8, 8);
	if (need > tab->need_gen)
		tab->need_gen = need;
	q->dirty = true;
}
