/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block backends: what a disk image looks like to a block device model.
 *
 * Asynchronous by design: a request is submitted on an I/O thread's context
 * (struct aio_ctx, one io_uring per thread) and completes later by a call of
 * req->done on that same thread. Backends that have no asynchronous path (the
 * qcow2 engine, the null backend) complete inside submit(), which is allowed.
 * Backends never touch guest memory beyond the iovecs they are given.
 */
#ifndef MINIVMM_BLOCK_BACKEND_H
#define MINIVMM_BLOCK_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct aio_ctx;
struct blk_backend;

enum blk_op { BLK_READ, BLK_WRITE, BLK_FLUSH, BLK_DISCARD, BLK_WRITE_ZEROES };

struct blk_req {
	enum blk_op op;
	uint64_t offset; /* bytes */
	uint64_t len;	 /* bytes; for READ/WRITE the iovec total */
	const struct iovec *iov;
	int iovcnt;
	bool unmap; /* WRITE_ZEROES: may deallocate */
	/* Called once, on the submitting thread: @res is 0 or a negative errno. */
	void (*done)(struct blk_req *req, int res);
	void *opaque;
};

enum blk_cache { BLK_CACHE_WRITEBACK, BLK_CACHE_NONE };
enum blk_format { BLK_FMT_RAW, BLK_FMT_QCOW2, BLK_FMT_NULL };

struct blk_open_opts {
	enum blk_format format;
	bool readonly;
	enum blk_cache cache;	 /* NONE: O_DIRECT */
	bool allow_backing;	 /* qcow2: follow backing files (needs backing_dir) */
	const char *backing_dir; /* qcow2 with allow_backing: every file of the chain in here */
	/* qcow2: NULL-terminated frozen snapshot images minivmm made (see qcow2_opts.trusted) */
	const char *const *trusted_backing;
	uint64_t null_size; /* BLK_FMT_NULL: the size to report */
};

struct blk_backend_ops {
	const char *name;
	int (*open)(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
		    char *err, size_t errlen);
	/* Per-thread set-up (register the file with the ring, ...); may be NULL. */
	int (*attach)(struct blk_backend *be, struct aio_ctx *ctx);
	void (*detach)(struct blk_backend *be, struct aio_ctx *ctx);
	/* Queue @req; returns 0 (req->done will be called) or a negative errno
	 * (req->done will not be called). */
	int (*submit)(struct blk_backend *be, struct aio_ctx *ctx, struct blk_req *req);
	void (*close)(struct blk_backend *be);
};

struct blk_backend {
	const struct blk_backend_ops *ops;
	uint64_t size; /* bytes, a multiple of 512 */
	bool readonly;
	bool can_discard; /* DISCARD does something (holes, deallocation) */
	bool can_write_zeroes;
	uint32_t block_size;  /* logical block size to advertise (512 or 4096) */
	uint32_t opt_io_size; /* bytes, 0: unknown */
	uint64_t flushes;     /* FLUSH requests completed (durable) */
};

/* Open @path as @o->format. On failure returns a negative errno and a message in @err. */
int blk_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o, char *err,
	     size_t errlen);
void blk_close(struct blk_backend *be);
/* The trusted_backing list @be was opened with (a copy; NULL when none or not qcow2). */
const char *const *blk_trusted_backing(const struct blk_backend *be);

/*
 * For backends: the checks every submit() makes before touching the file.
 * -EROFS for a write-type request on a read-only backend; -EINVAL for an op
 * outside enum blk_op, an offset or length not a multiple of 512, a range that
 * overflows or ends beyond be->size, or iovecs that do not add up to len.
 */
int blk_check_req(const struct blk_backend *be, const struct blk_req *req);
static inline int blk_submit(struct blk_backend *be, struct aio_ctx *ctx, struct blk_req *req)
{
	return be->ops->submit(be, ctx, req);
}

extern const struct blk_backend_ops blk_raw_ops, blk_qcow2_ops, blk_null_ops;

#endif
