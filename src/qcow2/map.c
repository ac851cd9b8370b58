// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Where each guest range of an image chain comes from (`minivmm img map`): the layer
 * that answers a read of it and how (data at a host offset, compressed data, zeros), in
 * qemu-img map's terms (depth, present, zero, data, offset).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "block/file_io.h"
#include "qcow2/qcow2_int.h"

/* The run at @off of at most @len bytes as image @q (layer @depth) answers it. */
static int map_at(struct qcow2 *q, unsigned int depth, uint64_t off, uint64_t len,
		  struct qcow2_map_ent *m)
{
	uint64_t in = off & (q->cluster_size - 1), e;
	enum l2_type t;
	int r;

	if (len > q->cluster_size - in)
		len = q->cluster_size - in;
	pthread_mutex_lock(&q->lock);
	r = l2_lookup(q, off >> q->cluster_bits, &e);
	pthread_mutex_unlock(&q->lock);
	if (r)
		return r;
	*m = (struct qcow2_map_ent){ .start = off, .length = len, .depth = depth, .file = q->path };
	t = l2_classify(q, e);
	switch (t) {
	case L2_NORMAL:
		m->present = m->data = m->has_offset = true;
		m->offset = (e & L2E_OFFSET_MASK) + in;
		return 0;
	case L2_COMPRESSED:
		m->present = m->data = m->compressed = true;
		return 0;
	case L2_ZERO_PLAIN:
	case L2_ZERO_ALLOC:
		m->present = m->zero = true;
		return 0;
	case L2_UNALLOC:
		break;
	}
	if (q->bq && off < q->bsize)
		return map_at(q->bq, depth + 1, off, len < q->bsize - off ? len : q->bsize - off,
			      m);
	if (q->braw && off < q->bsize) {
		/* A raw backing file: its bytes at the same offset (holes not told apart). */
		m->depth = depth + 1;
		m->length = len < q->bsize - off ? len : q->bsize - off;
		m->present = m->data = m->has_offset = true;
		m->offset = off;
		m->file = q->backing_name;
		return 0;
	}
	/* Unallocated in the whole chain: qemu-img names the bottom layer. */
	m->zero = true;
	m->depth = depth + (q->bq || q->braw);
	return 0;
}

static bool joins(const struct qcow2_map_ent *a, const struct qcow2_map_ent *b)
{
	return a->depth == b->depth && a->present == b->present && a->zero == b->zero &&
	       a->data == b->data && a->compressed == b->compressed &&
	       a->has_offset == b->has_offset && a->file == b->file &&
	       (!a->has_offset || a->offset + a->length == b->offset);
}

int qcow2_map(struct qcow2 *q, uint64_t off, struct qcow2_map_ent *m)
{
	struct qcow2_map_ent next;
	int r;

	if (off >= q->size)
		return -ERANGE;
	r = map_at(q, 0, off, q->size - off, m);
	while (!r && m->start + m->length < q->size) {
		r = map_at(q, 0, m->start + m->length, q->size - m->start - m->length, &next);
		if (r || !joins(m, &next))
			break;
		m->length += next.length;
	}
	return r;
}
