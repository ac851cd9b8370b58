// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Bounded cache of cluster-sized tables with per-sector dirty tracking, so a
 * writeback sends only the changed 512-byte sectors, never whole tables.
 */
#include <errno.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

#define TC_MAX_ENTRIES 1024
#define TC_MIN_ENTRIES 4

int tc_init(struct tcache *c, size_t table_size, size_t budget)
{
	unsigned int n = budget / table_size;

	if (n < TC_MIN_ENTRIES)
		n = TC_MIN_ENTRIES;
	if (n > TC_MAX_ENTRIES)
		n = TC_MAX_ENTRIES;
	c->table_size = table_size;
	c->sectors = table_size / QCOW2_SECTOR;
	c->n = n;
	c->ents = calloc(n, sizeof(*c->ents));
	c->nbuckets = 1;
	while (c->nbuckets < 2 * n)
		c->nbuckets *= 2;
	c->bucket = malloc(sizeof(*c->bucket) * c->nbuckets);
	if (!c->ents || !c->bucket)
		return -ENOMEM;
	for (unsigned int i = 0; i < c->nbuckets; i++)
		c->bucket[i] = -1;
	while ((1ULL << c->shift) < table_size)
		c->shift++;
	/* One block: pages are only touched as slots fill, so a big budget costs nothing up front.
	 */
	c->mem = aligned_alloc(4096, ((size_t)n * table_size + 4095) & ~(size_t)4095);
	c->dirty_mem = calloc((size_t)n * ((c->sectors + 63) / 64), 8);
	if (!c->mem || !c->dirty_mem)
		return -ENOMEM;
	for (unsigned int i = 0; i < n; i++) {
		c->ents[i].data = c->mem + (size_t)i * table_size;
		c->ents[i].dirty = c->dirty_mem + (size_t)i * ((c->sectors + 63) / 64);
	}
	return 0;
}

void tc_free(struct tcache *c)
{
	free(c->mem);
	free(c->dirty_mem);
	c->mem = NULL;
	c->dirty_mem = NULL;
	free(c->ents);
	free(c->bucket);
	c->ents = NULL;
	c->bucket = NULL;
}

static unsigned int hash(struct tcache *c, uint64_t off)
{
	return ((off >> c->shift) * 0x9e3779b97f4a7c15ULL >> 32) & (c->nbuckets - 1);
}

static void unhash(struct tcache *c, struct tc_ent *e)
{
	int *p = &c->bucket[hash(c, e->off)], idx = e - c->ents;

	while (*p >= 0 && *p != idx)
		p = &c->ents[*p].next;
	if (*p == idx)
		*p = e->next;
	e->off = 0;
}

static void rehash(struct tcache *c, struct tc_ent *e, uint64_t off)
{
	unsigned int h = hash(c, off);

	e->off = off;
	e->next = c->bucket[h];
	c->bucket[h] = e - c->ents;
}

/* Write back one entry's dirty sectors (its dependencies first). */
static int tc_writeback(struct qcow2 *q, struct tcache *c, struct tc_ent *e)
{
	struct fio_req *reqs = NULL;
	int n = 0, cap = 0, r;

	if (!e->is_dirty)
		return 0;
	if (q->sync_gen < e->need_gen) {
		r = rc_write_dirty_and_barrier(q);
		if (r)
			return r;
	}
	/* Big-endian on disk: tables are kept in disk format in the cache. */
	r = flat_collect(q, e->data, e->off, (size_t)c->sectors * QCOW2_SECTOR, e->dirty, &reqs, &n,
			 &cap);
	if (!r)
		r = qcow2_meta_submit(q, reqs, n, false);
	free(reqs);
	if (r)
		return r;
	memset(e->dirty, 0, (c->sectors + 63) / 64 * 8);
	e->is_dirty = false;
	e->need_gen = 0;
	return 0;
}

int tc_get(struct qcow2 *q, struct tcache *c, uint64_t off, bool fresh, struct tc_ent **out)
{
	struct tc_ent *victim = NULL;
	int r;

	if (c->ents[c->last].off == off) {
		*out = &c->ents[c->last];
		(*out)->lru = ++c->tick;
		return 0;
	}
	for (int i = c->bucket[hash(c, off)]; i >= 0; i = c->ents[i].next) {
		if (c->ents[i].off == off) {
			c->ents[i].lru = ++c->tick;
			c->last = i;
			*out = &c->ents[i];
			return 0;
		}
	}
	for (unsigned int i = 0; i < c->n; i++) {
		struct tc_ent *e = &c->ents[i];

		if (!e->off) {
			victim = e;
			break;
		}
		if (!victim || e->lru < victim->lru)
			victim = e;
	}
	if (victim->off) {
		r = tc_writeback(q, c, victim);
		if (r)
			return r;
		unhash(c, victim);
	}
	if (fresh) {
		memset(victim->data, 0, c->table_size);
	} else {
		r = fio_pread(q->f, victim->data, c->table_size, off);
		if (r)
			return r;
	}
	rehash(c, victim, off);
	victim->lru = ++c->tick;
	victim->need_gen = 0;
	c->last = victim - c->ents;
	*out = victim;
	return 0;
}

void tc_mark(struct tcache *c, struct tc_ent *e, size_t byte_off, size_t len)
{
	for (size_t s = byte_off / QCOW2_SECTOR; s * QCOW2_SECTOR < byte_off + len; s++)
		bit_set(e->dirty, s);
	e->is_dirty = true;
	(void)c;
}

int tc_collect(struct qcow2 *q, struct tcache *c, struct fio_req **reqs, int *n, int *cap)
{
	for (unsigned int i = 0; i < c->n; i++) {
		struct tc_ent *e = &c->ents[i];

		if (!e->off || !e->is_dirty)
			continue;
		int r = flat_collect(q, e->data, e->off, c->table_size, e->dirty, reqs, n, cap);

		if (r)
			return r;
	}
	return 0;
}

void tc_clean_all(struct tcache *c)
{
	for (unsigned int i = 0; i < c->n; i++) {
		struct tc_ent *e = &c->ents[i];

		if (!e->is_dirty)
			continue;
		memset(e->dirty, 0, (c->sectors + 63) / 64 * 8);
		e->is_dirty = false;
		e->need_gen = 0;
	}
}

uint64_t tc_max_need(struct tcache *c)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < c->n; i++)
		if (c->ents[i].off && c->ents[i].is_dirty && c->ents[i].need_gen > m)
			m = c->ents[i].need_gen;
	return m;
}

void tc_drop(struct tcache *c, uint64_t off)
{
	for (unsigned int i = 0; i < c->n; i++)
		if (c->ents[i].off == off)
			unhash(c, &c->ents[i]);
}
