// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Raw images (regular files or block devices) on the I/O thread's io_uring.
 *
 * Each request in flight owns a struct raw_op from a free list kept per
 * backend and per thread, so the hot path neither allocates nor locks. Guest
 * buffers are not registered with the ring (IORING_REGISTER_BUFFERS): that
 * would pin all of guest RAM, which defeats lazy snapshot restore and memory
 * overcommit; only the file is registered, as a fixed file.
 */
#include "block/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/aio.h"
#include "iov.h"
#include "log.h"

/* One SQE moves at most this much, so the 32-bit SQE length never wraps. */
#define MAX_XFER (1U << 30)

/* Writing zeros by hand (no fallocate): up to 16 x 64 KiB per SQE. */
#define ZERO_CHUNK (64 * 1024)
#define ZERO_IOVS  16
static const uint8_t zero_buf[ZERO_CHUNK] __attribute__((aligned(4096)));
static const struct iovec zero_iov[ZERO_IOVS] = {
	[0 ... ZERO_IOVS - 1] = { (void *)zero_buf, ZERO_CHUNK },
};

enum raw_phase {
	PH_RW,	   /* READ/WRITE straight from the request's iovecs */
	PH_BOUNCE, /* the same through an aligned copy (O_DIRECT said EINVAL) */
	PH_FSYNC,
	PH_DISCARD,
	PH_PUNCH,      /* WRITE_ZEROES with unmap */
	PH_ZERO_RANGE, /* WRITE_ZEROES */
	PH_ZERO_WRITE, /* WRITE_ZEROES without fallocate support */
};

struct raw_thread;

struct raw_op {
	struct aio_op aio;
	struct raw_thread *t;
	struct blk_req *req;
	struct raw_op *next; /* free list */
	uint64_t pos;	     /* bytes of the request done */
	uint64_t bstart;     /* PH_BOUNCE: request byte at the start of bounce */
	uint8_t *bounce;
	struct iov_pos at; /* PH_RW: the iovec at pos, and the offset into it */
	enum raw_phase phase;
};

struct raw_chunk {
	struct raw_chunk *next;
	struct raw_op ops[];
};

/* A backend as seen from one I/O thread. */
struct raw_thread {
	struct raw_thread *next;
	struct raw_backend *rb;
	struct aio_ctx *ctx; /* NULL: detached, the node can be reused */
	int fd;		     /* for SQEs: the fixed-file index or the plain fd */
	int fixed_idx;	     /* -1: not registered */
	unsigned char sqe_flags;
	struct raw_op *free;
	struct raw_chunk *chunks;
	unsigned int nops, busy;
};

struct raw_backend {
	struct blk_backend be;
	int fd;
	bool direct;
	/* Learnt from EOPNOTSUPP, to skip the attempt next time. */
	bool no_punch, no_zero_range;
	pthread_mutex_t lock; /* attach/detach; lookups walk the list without it */
	struct raw_thread *threads;
};

static struct raw_backend *to_rb(struct blk_backend *be)
{
	return (struct raw_backend *)be;
}

static void raw_complete(struct aio_ctx *ctx, struct aio_op *aop, int res);

/* --- per-thread state ---------------------------------------------------- */

static struct raw_thread *thread_find(struct raw_backend *rb, struct aio_ctx *ctx)
{
	for (struct raw_thread *t = __atomic_load_n(&rb->threads, __ATOMIC_ACQUIRE); t; t = t->next)
		if (__atomic_load_n(&t->ctx, __ATOMIC_ACQUIRE) == ctx)
			return t;
	return NULL;
}

/* Rare: at attach, then whenever more requests are in flight than ever before. */
static int pool_grow(struct raw_thread *t, unsigned int n)
{
	struct raw_chunk *c = calloc(1, sizeof(*c) + n * sizeof(c->ops[0]));

	if (!c)
		return -ENOMEM;
	c->next = t->chunks;
	t->chunks = c;
	for (unsigned int i = 0; i < n; i++) {
		c->ops[i].aio.fn = raw_complete;
		c->ops[i].t = t;
		c->ops[i].next = t->free;
		t->free = &c->ops[i];
	}
	t->nops += n;
	return 0;
}

static struct raw_op *op_get(struct raw_thread *t)
{
	struct raw_op *op = t->free;

	if (!op) {
		if (pool_grow(t, t->nops))
			return NULL;
		op = t->free;
	}
	t->free = op->next;
	t->busy++;
	return op;
}

static void op_put(struct raw_op *op)
{
	struct raw_thread *t = op->t;

	free(op->bounce);
	op->bounce = NULL;
	op->next = t->free;
	t->free = op;
	t->busy--;
}

static int raw_attach(struct blk_backend *be, struct aio_ctx *ctx)
{
	struct raw_backend *rb = to_rb(be);
	struct raw_thread *t;
	int r = 0, idx;

	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&rb->lock);
	if (thread_find(rb, ctx))
		goto out;
	t = thread_find(rb, NULL);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			r = -ENOMEM;
			goto out;
		}
		t->next = rb->threads;
		__atomic_store_n(&rb->threads, t, __ATOMIC_RELEASE);
	}
	t->rb = rb;
	if (!t->nops) {
		r = pool_grow(t, ctx->ring.sq.ring_entries);
		if (r)
			goto out;
	}
	idx = aio_register_file(ctx, rb->fd);
	if (idx >= 0) {
		t->fd = idx;
		t->fixed_idx = idx;
		t->sqe_flags = IOSQE_FIXED_FILE;
	} else {
		/* Costs an fget per request, nothing else. */
		pr_debug("raw: cannot register a fixed file (%s), using the fd", strerror(-idx));
		t->fd = rb->fd;
		t->fixed_idx = -1;
		t->sqe_flags = 0;
	}
	__atomic_store_n(&t->ctx, ctx, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&rb->lock);
	return r;
}

static void raw_detach(struct blk_backend *be, struct aio_ctx *ctx)
{
	struct raw_backend *rb = to_rb(be);
	struct raw_thread *t;

	if (!ctx)
		return;
	pthread_mutex_lock(&rb->lock);
	t = thread_find(rb, ctx);
	if (t) {
		if (t->busy)
			pr_warn("raw: detached with %u requests in flight", t->busy);
		if (t->fixed_idx >= 0)
			aio_unregister_file(ctx, t->fixed_idx);
		t->fixed_idx = -1;
		/* The node and its pool stay until close: other threads may be walking. */
		__atomic_store_n(&t->ctx, NULL, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&rb->lock);
}

/* Move the request's cursor @n bytes on, past any empty iovecs. */
static void op_advance(struct raw_op *op, uint64_t n)
{
	op->pos += n;
	iov_pos_advance(op->req->iov, (unsigned int)op->req->iovcnt, &op->at, n);
}

/* --- issuing --------------------------------------------------------------- */

static struct io_uring_sqe *op_sqe(struct raw_op *op)
{
	return aio_get_sqe(op->t->ctx, &op->aio);
}

static int issue_rw(struct raw_op *op)
{
	const struct blk_req *req = op->req;
	const struct iovec *iov = req->iov + op->at.idx;
	int left = req->iovcnt - (int)op->at.idx;
	bool wr = req->op == BLK_WRITE;
	uint64_t off = req->offset + op->pos;
	struct io_uring_sqe *sqe = op_sqe(op);

	if (!sqe)
		return -EIO;
	if (op->at.off || left == 1) {
		/* One buffer, or the rest of one cut by a short transfer. */
		uint8_t *base = (uint8_t *)iov->iov_base + op->at.off;
		size_t n = iov->iov_len - op->at.off;

		if (n > MAX_XFER)
			n = MAX_XFER;
		if (wr)
			io_uring_prep_write(sqe, op->t->fd, base, n, off);
		else
			io_uring_prep_read(sqe, op->t->fd, base, n, off);
	} else {
		/* More than IOV_MAX: the kernel's short count brings us back. */
		if (left > IOV_MAX)
			left = IOV_MAX;
		if (wr)
			io_uring_prep_writev(sqe, op->t->fd, iov, left, off);
		else
			io_uring_prep_readv(sqe, op->t->fd, iov, left, off);
	}
	sqe->flags |= op->t->sqe_flags;
	return 0;
}

static int issue_bounce(struct raw_op *op)
{
	struct io_uring_sqe *sqe = op_sqe(op);
	uint64_t n = op->req->len - op->pos;
	uint8_t *buf = op->bounce + (op->pos - op->bstart);

	if (!sqe)
		return -EIO;
	if (n > MAX_XFER)
		n = MAX_XFER;
	if (op->req->op == BLK_WRITE)
		io_uring_prep_write(sqe, op->t->fd, buf, n, op->req->offset + op->pos);
	else
		io_uring_prep_read(sqe, op->t->fd, buf, n, op->req->offset + op->pos);
	sqe->flags |= op->t->sqe_flags;
	return 0;
}

static int issue_fsync(struct raw_op *op)
{
	struct io_uring_sqe *sqe = op_sqe(op);

	if (!sqe)
		return -EIO;
	io_uring_prep_fsync(sqe, op->t->fd, IORING_FSYNC_DATASYNC);
	sqe->flags |= op->t->sqe_flags;
	return 0;
}

static int issue_falloc(struct raw_op *op, int mode)
{
	struct io_uring_sqe *sqe = op_sqe(op);

	if (!sqe)
		return -EIO;
	io_uring_prep_fallocate(sqe, op->t->fd, mode | FALLOC_FL_KEEP_SIZE, op->req->offset,
				op->req->len);
	sqe->flags |= op->t->sqe_flags;
	return 0;
}

static int issue_zero_write(struct raw_op *op)
{
	struct io_uring_sqe *sqe = op_sqe(op);
	uint64_t left = op->req->len - op->pos, off = op->req->offset + op->pos;

	if (!sqe)
		return -EIO;
	/* Whole chunks from the static iovecs; a tail under 64 KiB alone. */
	if (left >= ZERO_CHUNK) {
		unsigned int n = left / ZERO_CHUNK > ZERO_IOVS ? ZERO_IOVS : left / ZERO_CHUNK;

		io_uring_prep_writev(sqe, op->t->fd, zero_iov, n, off);
	} else {
		io_uring_prep_write(sqe, op->t->fd, zero_buf, left, off);
	}
	sqe->flags |= op->t->sqe_flags;
	return 0;
}

static int issue(struct raw_op *op)
{
	switch (op->phase) {
	case PH_RW:
		return issue_rw(op);
	case PH_BOUNCE:
		return issue_bounce(op);
	case PH_FSYNC:
		return issue_fsync(op);
	case PH_DISCARD:
	case PH_PUNCH:
		return issue_falloc(op, FALLOC_FL_PUNCH_HOLE);
	case PH_ZERO_RANGE:
		return issue_falloc(op, FALLOC_FL_ZERO_RANGE);
	case PH_ZERO_WRITE:
		return issue_zero_write(op);
	}
	return -EINVAL;
}

/* --- completion ------------------------------------------------------------ */

/* WRITE_ZEROES: the cheapest way the file has not refused yet. */
static enum raw_phase zero_phase(struct raw_backend *rb, bool unmap)
{
	if (unmap && !__atomic_load_n(&rb->no_punch, __ATOMIC_RELAXED))
		return PH_PUNCH;
	if (!__atomic_load_n(&rb->no_zero_range, __ATOMIC_RELAXED))
		return PH_ZERO_RANGE;
	return PH_ZERO_WRITE;
}

static void op_finish(struct raw_op *op, int res)
{
	struct blk_req *req = op->req;

	/* Back on the free list first: done() may submit the next request. */
	op_put(op);
	req->done(req, res);
}

/* O_DIRECT refused the guest's buffers (alignment): finish through a copy. */
static int start_bounce(struct raw_op *op)
{
	const struct blk_req *req = op->req;
	uint64_t n = req->len - op->pos;
	void *buf;

	if (posix_memalign(&buf, 4096, (n + 4095) & ~4095ULL))
		return -ENOMEM;
	op->bounce = buf;
	op->bstart = op->pos;
	op->phase = PH_BOUNCE;
	if (req->op == BLK_WRITE)
		iov_to_buf(req->iov, (unsigned int)req->iovcnt, op->pos, op->bounce, n);
	return issue(op);
}

static void raw_complete(struct aio_ctx *ctx, struct aio_op *aop, int res)
{
	struct raw_op *op = (struct raw_op *)aop;
	struct raw_backend *rb = op->t->rb;
	const struct blk_req *req = op->req;
	bool wr = req->op == BLK_WRITE;

	(void)ctx;
	if (res == -EAGAIN || res == -EINTR)
		goto reissue;
	switch (op->phase) {
	case PH_RW:
		if (res == -EINVAL && rb->direct) {
			res = start_bounce(op);
			if (res)
				break;
			return;
		}
		if (res < 0)
			break;
		if (!res) {
			if (wr) {
				res = -EIO;
				break;
			}
			/* EOF inside the device (the file shrank under us): zeros. */
			iov_memset(req->iov, (unsigned int)req->iovcnt, op->pos, 0,
				   req->len - op->pos);
			break;
		}
		op_advance(op, res);
		if (op->pos < req->len)
			goto reissue;
		res = 0;
		break;
	case PH_BOUNCE:
		if (res < 0)
			break;
		if (!res) {
			if (wr) {
				res = -EIO;
				break;
			}
			memset(op->bounce + (op->pos - op->bstart), 0, req->len - op->pos);
			op->pos = req->len;
		}
		op->pos += res;
		if (op->pos < req->len)
			goto reissue;
		if (!wr)
			iov_from_buf(req->iov, (unsigned int)req->iovcnt, op->bstart, op->bounce,
				     req->len - op->bstart);
		res = 0;
		break;
	case PH_FSYNC:
		if (!res)
			__atomic_fetch_add(&rb->be.flushes, 1, __ATOMIC_RELAXED);
		break;
	case PH_DISCARD:
		/* Discard is a hint: a file without holes just keeps its data. */
		if (res == -EOPNOTSUPP) {
			__atomic_store_n(&rb->no_punch, true, __ATOMIC_RELAXED);
			res = 0;
		}
		break;
	case PH_PUNCH:
		if (res != -EOPNOTSUPP)
			break;
		__atomic_store_n(&rb->no_punch, true, __ATOMIC_RELAXED);
		op->phase = zero_phase(rb, false);
		goto reissue;
	case PH_ZERO_RANGE:
		if (res != -EOPNOTSUPP)
			break;
		__atomic_store_n(&rb->no_zero_range, true, __ATOMIC_RELAXED);
		op->phase = PH_ZERO_WRITE;
		goto reissue;
	case PH_ZERO_WRITE:
		if (res < 0)
			break;
		if (!res) {
			res = -EIO;
			break;
		}
		op->pos += res;
		if (op->pos < req->len)
			goto reissue;
		res = 0;
		break;
	}
	op_finish(op, res > 0 ? 0 : res);
	return;

reissue:
	res = issue(op);
	if (res)
		op_finish(op, res);
}

/* --- the ops table ------------------------------------------------------- */

static int raw_submit(struct blk_backend *be, struct aio_ctx *ctx, struct blk_req *req)
{
	struct raw_backend *rb = to_rb(be);
	struct raw_thread *t;
	struct raw_op *op;
	int r = blk_check_req(be, req);

	if (r)
		return r;
	t = ctx ? thread_find(rb, ctx) : NULL;
	if (!t) {
		/* The device model did not attach this thread: do it now. */
		r = raw_attach(be, ctx);
		if (r)
			return r;
		t = thread_find(rb, ctx);
	}
	if ((!req->len && req->op != BLK_FLUSH) ||
	    (req->op == BLK_DISCARD && __atomic_load_n(&rb->no_punch, __ATOMIC_RELAXED))) {
		req->done(req, 0);
		return 0;
	}
	op = op_get(t);
	if (!op)
		return -ENOMEM;
	op->req = req;
	op->pos = 0;
	op->at = (struct iov_pos){ 0, 0 };
	switch (req->op) {
	case BLK_READ:
	case BLK_WRITE:
		op->phase = PH_RW;
		op_advance(op, 0); /* skip leading empty iovecs */
		break;
	case BLK_FLUSH:
		op->phase = PH_FSYNC;
		break;
	case BLK_DISCARD:
		op->phase = PH_DISCARD;
		break;
	case BLK_WRITE_ZEROES:
		op->phase = zero_phase(rb, req->unmap);
		break;
	}
	r = issue(op);
	if (r)
		op_put(op);
	return r;
}

static int raw_open(struct blk_backend **out, const char *path, const struct blk_open_opts *o,
		    char *err, size_t errlen)
{
	bool direct = o->cache == BLK_CACHE_NONE;
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
	struct raw_backend *rb;
	struct stat st;
	uint64_t size;
	int fd, r;

	fd = open(path, flags);
	if (fd < 0) {
		r = -errno;
		if (r == -EINVAL && direct)
			snprintf(err, errlen,
				 "%s: the filesystem does not support O_DIRECT (cache = none); "
				 "use cache = writeback",
				 path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	rb = calloc(1, sizeof(*rb));
	if (!rb) {
		r = -ENOMEM;
		goto fail;
	}
	if (fstat(fd, &st)) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	rb->be.block_size = 512;
	if (S_ISREG(st.st_mode)) {
		size = st.st_size;
		/* fallocate; a filesystem without it is found out at the first request. */
		rb->be.can_discard = !o->readonly;
		rb->be.can_write_zeroes = !o->readonly;
	} else if (S_ISBLK(st.st_mode)) {
		int lbs;

		if (ioctl(fd, BLKGETSIZE64, &size)) {
			r = -errno;
			snprintf(err, errlen, "%s: BLKGETSIZE64: %s", path, strerror(-r));
			goto fail;
		}
		/* O_DIRECT needs the device's own sector size. */
		if (direct && !ioctl(fd, BLKSSZGET, &lbs) && lbs == 4096)
			rb->be.block_size = 4096;
		/* ZERO_RANGE falls back to writing zeros in the kernel; discard
		 * support depends on the device and is not probed. */
		rb->be.can_write_zeroes = !o->readonly;
	} else {
		snprintf(err, errlen, "%s: not a regular file or a block device", path);
		r = -EINVAL;
		goto fail;
	}
	if (size % 512) {
		snprintf(err, errlen, "%s: size %llu is not a multiple of 512", path,
			 (unsigned long long)size);
		r = -EINVAL;
		goto fail;
	}
	pthread_mutex_init(&rb->lock, NULL);
	rb->be.ops = &blk_raw_ops;
	rb->be.size = size;
	rb->be.readonly = o->readonly;
	rb->fd = fd;
	rb->direct = direct;
	*out = &rb->be;
	return 0;

fail:
	free(rb);
	close(fd);
	return r;
}

static void raw_close(struct blk_backend *be)
{
	struct raw_backend *rb = to_rb(be);
	struct raw_thread *t, *tn;

	/* Threads must have detached (or exited their ring): the fd's fixed
	 * slots would otherwise keep the file open until the ring goes. */
	for (t = rb->threads; t; t = tn) {
		struct raw_chunk *c, *cn;

		tn = t->next;
		for (c = t->chunks; c; c = cn) {
			cn = c->next;
			free(c);
		}
		free(t);
	}
	pthread_mutex_destroy(&rb->lock);
	close(rb->fd);
	free(rb);
}

const struct blk_backend_ops blk_raw_ops = {
	.name = "raw",
	.open = raw_open,
	.attach = raw_attach,
	.detach = raw_detach,
	.submit = raw_submit,
	.close = raw_close,
};
