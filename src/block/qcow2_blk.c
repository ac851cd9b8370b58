// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * qcow2 images as a block backend. The engine is synchronous and serialises
 * callers on one mutex per image, so every request completes inside submit()
 * on the calling I/O thread; several threads may share the backend.
 */
#include "block/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "qcow2/qcow2.h"
#include "util.h"

struct qcow2_blk {
	struct blk_backend be;
	struct qcow2 *q;
	char **trusted; /* NULL-terminated copy of blk_open_opts.trusted_backing */
};

static void free_list(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

static char **copy_list(const char *const *l)
{
	size_t n = 0, i;
	char **c;

	while (l && l[n])
		n++;
	c = calloc(n + 1, sizeof(*c));
	for (i = 0; c && i < n; i++) {
		c[i] = strdup(l[i]);
		if (!c[i]) {
			free_list(c);
			return NULL;
		}
	}
	return c;
}

static int qblk_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
		     char *err, size_t errlen)
{
	struct qcow2_opts qo = {
		.readonly = o->readonly,
		.backing = QCOW2_BACKING_DENY,
		.backing_dir = o->backing_dir,
		.trusted = o->trusted_backing,
		.policy_hint = "set backing = on and backing_dir = DIR (holding the chain)",
	};
	struct qcow2_blk *qb;
	unsigned int n = 0;
	uint64_t size;
	int r;

	/* Never "anywhere": an image the guest may have written names any host file. */
	if (o->allow_backing && !o->backing_dir) {
		snprintf(err, errlen, "%s: backing = on needs a backing_dir", path);
		return -EINVAL;
	}
	if (o->allow_backing)
		qo.backing = QCOW2_BACKING_DIR;
	/* Frozen snapshot images each add a level to the chain. */
	while (o->trusted_backing && o->trusted_backing[n])
		n++;
	qo.backing_depth = MIN(QCOW2_DEFAULT_BACKING_DEPTH + n, QCOW2_MAX_BACKING_DEPTH);
	/*
	 * The engine's file layer has no O_DIRECT (its metadata I/O is not
	 * sector-aligned in memory): the image goes through the page cache, and a
	 * guest flush still ends in an fdatasync, so data are as durable.
	 */
	if (o->cache == BLK_CACHE_NONE)
		pr_warn("%s: qcow2 images use the host page cache; cache = none is ignored", path);
	qb = calloc(1, sizeof(*qb));
	if (!qb)
		return -ENOMEM;
	if (o->trusted_backing) {
		qb->trusted = copy_list(o->trusted_backing);
		if (!qb->trusted) {
			r = -ENOMEM;
			goto fail;
		}
	}
	r = qcow2_open(&qb->q, path, &qo, err, errlen);
	if (r)
		goto fail;
	/* A virtual size off a sector boundary: the last partial sector is hidden. */
	size = qcow2_size(qb->q) & ~511ULL;
	if (!size) {
		snprintf(err, errlen, "%s: image smaller than one sector", path);
		r = -EINVAL;
		goto fail_close;
	}
	qb->be.ops = &blk_qcow2_ops;
	qb->be.size = size;
	qb->be.readonly = o->readonly;
	qb->be.can_discard = !o->readonly;
	qb->be.can_write_zeroes = !o->readonly;
	qb->be.block_size = 512;
	*out = &qb->be;
	return 0;

fail_close:
	qcow2_close(qb->q);
fail:
	free_list(qb->trusted);
	free(qb);
	return r;
}

const char *const *blk_trusted_backing(const struct blk_backend *be)
{
	if (!be || be->ops != &blk_qcow2_ops)
		return NULL;
	return (const char *const *)((const struct qcow2_blk *)be)->trusted;
}

static int qblk_submit(struct blk_backend *be, struct aio_ctx *ctx, struct blk_req *req)
{
	struct qcow2 *q = ((struct qcow2_blk *)be)->q;
	int r = blk_check_req(be, req);

	(void)ctx;
	if (r)
		return r;
	switch (req->op) {
	case BLK_READ:
		r = qcow2_preadv(q, req->iov, req->iovcnt, req->offset);
		break;
	case BLK_WRITE:
		r = qcow2_pwritev(q, req->iov, req->iovcnt, req->offset);
		break;
	case BLK_FLUSH:
		r = qcow2_flush(q);
		if (!r)
			__atomic_fetch_add(&be->flushes, 1, __ATOMIC_RELAXED);
		break;
	case BLK_DISCARD:
		/* Whole clusters only; the guest may not rely on discarded contents. */
		r = qcow2_discard(q, req->offset, req->len);
		break;
	case BLK_WRITE_ZEROES:
		/*
		 * The engine deallocates whole clusters (or marks them zero over a
		 * backing file) and writes zeros into partial ones, with or without
		 * unmap: keeping clusters allocated would reserve no space anyway on
		 * a thin format, and both read back as zeros.
		 */
		r = qcow2_write_zeroes(q, req->offset, req->len);
		break;
	}
	req->done(req, r);
	return 0;
}

static void qblk_close(struct blk_backend *be)
{
	struct qcow2_blk *qb = (struct qcow2_blk *)be;
	int r = qcow2_close(qb->q);

	if (r)
		pr_err("closing a qcow2 image: %s", strerror(-r));
	free_list(qb->trusted);
	free(qb);
}

const struct blk_backend_ops blk_qcow2_ops = {
	.name = "qcow2",
	.open = qblk_open,
	.submit = qblk_submit,
	.close = qblk_close,
};
