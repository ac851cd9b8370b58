// SPDX-License-Identifier: GPL-2.0-or-later
/* Opening, closing and describing a qcow2 image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

#define DEFAULT_L2_CACHE (4u << 20)
#define DEFAULT_RC_CACHE (1u << 20)
#define MAX_CACHE	 (256u << 20)

static void q_free(struct qcow2 *q)
{
	if (!q)
		return;
	if (q->bq)
		qcow2_close(q->bq);
	fio_close(q->braw);
	fio_close(q->f);
	tc_free(&q->l2c);
	tc_free(&q->rbc);
	free(q->l1);
	free(q->l1_dirty);
	free(q->rt);
	free(q->rt_dirty);
	free(q->pool);
	free(q->freed);
	free(q->hdr);
	free(q->backing_name);
	free(q->path);
	free(q->cbuf);
	free(q->zbuf);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static size_t clamp_cache(size_t v, size_t def)
{
	if (!v)
		return def;
	return v > MAX_CACHE ? MAX_CACHE : v;
}

int qcow2_open_internal(struct qcow2 **out, const char *path, const struct qcow2_opts *o,
			unsigned int depth, const void *chain, int chain_n, char *err,
			size_t errlen)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	struct qcow2_opts def = { 0 };
	int r;

	if (!o)
		o = &def;
	if (err && errlen)
		err[0] = 0;
	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	q->err = err;
	q->errlen = errlen;
	q->ro = o->readonly;
	q->prefill = !o->sparse_reserve;
	if (path && !(q->path = strdup(path))) {
		r = -ENOMEM;
		goto fail;
	}
	if (o->file) {
		q->f = o->file;
	} else {
		r = fio_open_posix(&q->f, path,
				   (q->ro ? FIO_RDONLY : 0) | (o->no_uring ? FIO_NO_URING : 0));
		if (r) {
			qcow2_seterr(q, "%s: %s", path, strerror(-r));
			goto fail;
		}
	}
	r = qcow2_parse_header(q);
	if (r)
		goto fail;
	if (!q->ro && (q->incompat & INCOMPAT_CORRUPT)) {
		qcow2_seterr(q, "image is marked corrupt: open it read-only or repair it with "
				"'img check -r all'");
		r = -EUCLEAN;
		goto fail;
	}
	if (!q->ro && q->nb_snapshots) {
		qcow2_seterr(q, "images with internal snapshots can only be opened read-only");
		r = -EROFS;
		goto fail;
	}
	r = qcow2_load_tables(q);
	if (r)
		goto fail;
	r = tc_init(&q->l2c, q->cluster_size, clamp_cache(o->l2_cache_bytes, DEFAULT_L2_CACHE));
	if (!r)
		r = tc_init(&q->rbc, q->cluster_size,
			    clamp_cache(o->rc_cache_bytes, DEFAULT_RC_CACHE));
	if (r)
		goto fail;
	q->free_hint = 1;
	if (q->backing_name && !o->ignore_backing) {
		size_t idsz = qcow2_chain_id_size();
		char *nch = malloc(idsz * (chain_n + 1));
		int self = 0;

		if (!nch) {
			r = -ENOMEM;
			goto fail;
		}
		if (chain_n)
			memcpy(nch, chain, idsz * chain_n);
		if (!qcow2_chain_self(path, nch + idsz * chain_n))
			self = 1;
		r = qcow2_open_backing(q, o, depth, nch, chain_n + self);
		free(nch);
		if (r)
			goto fail;
	}
	if (!q->ro && (q->incompat & INCOMPAT_DIRTY) && !o->no_repair) {
		/* lazy_refcounts left refcounts stale: rebuild them before any allocation. */
		struct qcow2_check_result cr;

		r = qcow2_check(q, QCOW2_REPAIR_ALL, &cr, NULL, NULL);
		if (!r && cr.corruptions > cr.corruptions_fixed)
			r = -EIO;
		if (r) {
			qcow2_seterr(q, "could not repair the refcounts of a dirty image");
			goto fail;
		}
		q->incompat &= ~INCOMPAT_DIRTY;
		r = qcow2_write_header_field(q, HDR_INCOMPAT, 8);
		if (!r)
			r = qcow2_meta_submit(q, NULL, 0, true);
		if (r)
			goto fail;
	}
	if (!q->ro && (q->autoclear & AUTOCLEAR_POOL) && !o->no_repair) {
		/* Not closed cleanly: give back the clusters reserved then. */
		struct qcow2_check_result cr;

		r = qcow2_check(q, QCOW2_REPAIR_LEAKS, &cr, NULL, NULL);
		if (r) {
			qcow2_seterr(q, "could not reclaim reserved clusters");
			goto fail;
		}
	}
	if (!q->ro && q->autoclear) {
		/* We maintain none of the autoclear features (e.g. bitmaps): drop them. */
		q->autoclear = 0;
		r = qcow2_write_header_field(q, HDR_AUTOCLEAR, 8);
		if (!r)
			r = qcow2_meta_submit(q, NULL, 0, true);
		if (r)
			goto fail;
	}
	q->base_syncs = q->f->st.syncs;
	q->base_barriers = q->f->st.barriers;
	q->err = NULL;
	q->errlen = 0;
	*out = q;
	return 0;
fail:
	if (o->file)
		q->f = NULL; /* the caller keeps its file on failure */
	if (!r)
		r = -EIO;
	q_free(q);
	return r;
}

int qcow2_open(struct qcow2 **out, const char *path, const struct qcow2_opts *opts, char *err,
	       size_t errlen)
{
	return qcow2_open_internal(out, path, opts, 0, NULL, 0, err, errlen);
}

int qcow2_close(struct qcow2 *q)
{
	int r = 0;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->lock);
	if (!q->ro) {
		r = qcow2_flush_locked(q);
		/* Unused reservations go back; leaving them would only leak. */
		if (!r && (q->pool_n || q->freed_n || (q->autoclear & AUTOCLEAR_POOL))) {
			int e = freed_process(q);

			r = e ? e : pool_release_all(q);
			if (!r)
				r = rc_write_dirty(q);
			if (!r)
				r = qcow2_meta_submit(q, NULL, 0, true);
			/* The hint goes only after the releases are durable. */
			if (!r && (q->autoclear & AUTOCLEAR_POOL)) {
				q->autoclear &= ~AUTOCLEAR_POOL;
				r = qcow2_write_header_field(q, HDR_AUTOCLEAR, 8);
				if (!r)
					r = qcow2_meta_submit(q, NULL, 0, true);
			}
		}
	}
	pthread_mutex_unlock(&q->lock);
	q_free(q);
	return r;
}

uint64_t qcow2_size(struct qcow2 *q)
{
	return q->size;
}

struct fio *qcow2_file(struct qcow2 *q)
{
	return q->f;
}

void qcow2_get_stats(struct qcow2 *q, struct qcow2_stats *st)
{
	pthread_mutex_lock(&q->lock);
	*st = q->st;
	st->syncs = q->f->st.syncs - q->base_syncs;
	pthread_mutex_unlock(&q->lock);
}

void qcow2_get_info(struct qcow2 *q, struct qcow2_info *in)
{
	uint64_t fs = 0;

	memset(in, 0, sizeof(*in));
	pthread_mutex_lock(&q->lock);
	in->version = q->version;
	in->cluster_bits = q->cluster_bits;
	in->refcount_bits = 1u << q->refcount_order;
	in->size = q->size;
	fio_size(q->f, &fs);
	in->file_size = fs;
	in->lazy_refcounts = q->compat & COMPAT_LAZY_REFCOUNTS;
	in->dirty = q->incompat & INCOMPAT_DIRTY;
	in->corrupt = q->incompat & INCOMPAT_CORRUPT;
	in->zstd = q->zstd;
	in->has_backing = q->backing_name != NULL;
	if (q->backing_name)
		snprintf(in->backing_file, sizeof(in->backing_file), "%s", q->backing_name);
	snprintf(in->backing_fmt, sizeof(in->backing_fmt), "%s", q->backing_fmt);
	in->nb_snapshots = q->nb_snapshots;
	in->incompatible = q->incompat;
	in->compatible = q->compat;
	in->autoclear = q->autoclear;
	pthread_mutex_unlock(&q->lock);
}
