// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The null backend: no file, reads return zeros, writes vanish. Everything
 * completes inside submit(); it exists to measure the rest of the I/O path,
 * so it does nothing else.
 */
#include "block/backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int null_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
		     char *err, size_t errlen)
{
	struct blk_backend *be;

	(void)path;
	if (!o->null_size || o->null_size % 512) {
		snprintf(err, errlen, "null backend: size %llu is not a positive multiple of 512",
			 (unsigned long long)o->null_size);
		return -EINVAL;
	}
	be = calloc(1, sizeof(*be));
	if (!be)
		return -ENOMEM;
	be->ops = &blk_null_ops;
	be->size = o->null_size;
	be->readonly = o->readonly;
	be->can_discard = true;
	be->can_write_zeroes = true;
	be->block_size = 512;
	*out = be;
	return 0;
}

static int null_submit(struct blk_backend *be, struct aio_ctx *ctx, struct blk_req *req)
{
	int r = blk_check_req(be, req);

	(void)ctx;
	if (r)
		return r;
	if (req->op == BLK_READ) {
		for (int i = 0; i < req->iovcnt; i++)
			memset(req->iov[i].iov_base, 0, req->iov[i].iov_len);
	} else if (req->op == BLK_FLUSH) {
		__atomic_fetch_add(&be->flushes, 1, __ATOMIC_RELAXED);
	}
	req->done(req, 0);
	return 0;
}

static void null_close(struct blk_backend *be)
{
	free(be);
}

const struct blk_backend_ops blk_null_ops = {
	.name = "null",
	.open = null_open,
	.submit = null_submit,
	.close = null_close,
};
