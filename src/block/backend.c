// SPDX-License-Identifier: GPL-2.0-or-later
/* Opening a block backend by format, and the checks all backends share. */
#include "block/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct blk_backend_ops *const blk_formats[] = {
	[BLK_FMT_RAW] = &blk_raw_ops,
	[BLK_FMT_QCOW2] = &blk_qcow2_ops,
	[BLK_FMT_NULL] = &blk_null_ops,
};

int blk_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
	     size_t errlen)
{
	const struct blk_backend_ops *ops = NULL;
	int r;

	*out = NULL;
	if (err && errlen)
		err[0] = 0;
	if ((unsigned int)o->format < sizeof(blk_formats) / sizeof(blk_formats[0]))
		ops = blk_formats[o->format];
	if (!ops) {
		snprintf(err, errlen, "unknown block format %d", (int)o->format);
		return -EINVAL;
	}
	if (!path && o->format != BLK_FMT_NULL) {
		snprintf(err, errlen, "%s: no image path", ops->name);
		return -EINVAL;
	}
	r = ops->open(out, path, o, err, errlen);
	if (r) {
		*out = NULL;
		if (err && errlen && !err[0])
			snprintf(err, errlen, "%s: %s", path ? path : ops->name, strerror(-r));
		return r;
	}
	(*out)->ops = ops;
	return 0;
}

void blk_close(struct blk_backend *be)
{
	if (be)
		be->ops->close(be);
}

int blk_check_req(const struct blk_backend *be, const struct blk_req *req)
{
	uint64_t total = 0;

	switch (req->op) {
	case BLK_FLUSH:
		return 0;
	case BLK_WRITE:
	case BLK_DISCARD:
	case BLK_WRITE_ZEROES:
		if (be->readonly)
			return -EROFS;
		break;
	case BLK_READ:
		break;
	default:
		return -EINVAL;
	}
	/* Written so that offset + len cannot wrap. */
	if ((req->offset | req->len) & 511 || req->offset > be->size ||
	    req->len > be->size - req->offset)
		return -EINVAL;
	if (req->op != BLK_READ && req->op != BLK_WRITE)
		return 0;
	if (req->iovcnt < 0 || (req->iovcnt && !req->iov))
		return -EINVAL;
	for (int i = 0; i < req->iovcnt; i++)
		total += req->iov[i].iov_len;
	return total == req->len ? 0 : -EINVAL;
}
