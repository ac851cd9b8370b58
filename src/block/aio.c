// SPDX-License-Identifier: GPL-2.0-or-later
/* One io_uring per I/O thread: polls, block I/O and their completions. */
#include "block/aio.h"

#include <errno.h>
#include <poll.h>
#include <string.h>

#include "log.h"

/* user_data tags in the low bits of an aio_handler pointer (8-byte aligned). */
#define UDATA_HANDLER 1ULL /* not an aio_op */
#define UDATA_SINGLE  2ULL /* the poll was armed single-shot */
#define UDATA_TAGS    7ULL

/* Extra CQ room: polls and many requests complete in one batch. */
#define CQ_FACTOR 4

int aio_init(struct aio_ctx *ctx, unsigned int entries)
{
	struct io_uring_params p;
	int r;

	memset(ctx, 0, sizeof(*ctx));
	for (unsigned int i = 0; i < sizeof(ctx->files) / sizeof(ctx->files[0]); i++)
		ctx->files[i] = -1;
	/* The thread always waits in the ring, so task work needs no IPI. */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = entries * CQ_FACTOR;
	r = io_uring_queue_init_params(entries, &ctx->ring, &p);
	if (r == -EINVAL) {
		/* Older kernel: the flags above are optimisations only. */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = entries * CQ_FACTOR;
		r = io_uring_queue_init_params(entries, &ctx->ring, &p);
	}
	return r;
}

void aio_exit(struct aio_ctx *ctx)
{
	/* Pending requests are cancelled by the kernel; their callbacks never run. */
	io_uring_queue_exit(&ctx->ring);
}

static int arm_poll(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct io_uring_sqe *sqe = aio_get_sqe(ctx, NULL);

	if (!sqe)
		return -EBUSY;
	if (ctx->no_multishot) {
		io_uring_prep_poll_add(sqe, h->fd, h->events ? h->events : POLLIN);
		io_uring_sqe_set_data64(sqe, (uintptr_t)h | UDATA_HANDLER | UDATA_SINGLE);
	} else {
		io_uring_prep_poll_multishot(sqe, h->fd, h->events ? h->events : POLLIN);
		io_uring_sqe_set_data64(sqe, (uintptr_t)h | UDATA_HANDLER);
	}
	h->armed = true;
	return 0;
}

int aio_watch(struct aio_ctx *ctx, struct aio_handler *h)
{
	if ((uintptr_t)h & UDATA_TAGS)
		return -EINVAL;
	h->cancel = false;
	if (h->armed)
		return 0;
	return arm_poll(ctx, h);
}

int aio_unwatch(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct io_uring_sqe *sqe;

	if (!h->armed || h->cancel) {
		h->cancel = true;
		return 0;
	}
	/* The poll's last CQE (-ECANCELED, or an event racing with us) clears armed.
	 * After a switch to single-shot the poll may be of either kind: try both. */
	for (int single = 0; single <= ctx->no_multishot; single++) {
		sqe = aio_get_sqe(ctx, NULL);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_remove(sqe, (uintptr_t)h | UDATA_HANDLER |
						   (single ? UDATA_SINGLE : 0));
		io_uring_sqe_set_data64(sqe, 0);
	}
	h->cancel = true;
	return 0;
}

static int submit(struct aio_ctx *ctx)
{
	int r;

	do {
		r = io_uring_submit(&ctx->ring);
	} while (r == -EINTR);
	ctx->queued = io_uring_sq_ready(&ctx->ring);
	return r < 0 ? r : 0;
}

struct io_uring_sqe *aio_get_sqe(struct aio_ctx *ctx, struct aio_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ctx->ring);

	if (!sqe) {
		/* SQ full: hand the batch to the kernel to make room. */
		int r = submit(ctx);

		if (r < 0)
			pr_err("io_uring submit: %s", strerror(-r));
		sqe = io_uring_get_sqe(&ctx->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	ctx->queued++;
	if (op)
		ctx->inflight++;
	return sqe;
}

int aio_register_file(struct aio_ctx *ctx, int fd)
{
	const unsigned int n = sizeof(ctx->files) / sizeof(ctx->files[0]);
	unsigned int i;
	int r;

	if (!ctx->files_registered) {
		/* A sparse table once; slots change by update, which needs no quiesce. */
		r = io_uring_register_files(&ctx->ring, ctx->files, n);
		if (r < 0)
			return r;
		ctx->files_registered = true;
	}
	for (i = 0; i < n && ctx->files[i] >= 0; i++)
		;
	if (i == n)
		return -ENOSPC;
	r = io_uring_register_files_update(&ctx->ring, i, &fd, 1);
	if (r < 0)
		return r;
	if (r != 1)
		return -EIO;
	ctx->files[i] = fd;
	return i;
}

void aio_unregister_file(struct aio_ctx *ctx, int idx)
{
	int none = -1;

	if (idx < 0 || idx >= (int)(sizeof(ctx->files) / sizeof(ctx->files[0])) ||
	    ctx->files[idx] < 0)
		return;
	/* Requests still in flight keep their own reference to the file. */
	if (io_uring_register_files_update(&ctx->ring, idx, &none, 1) == 1)
		ctx->files[idx] = -1;
}

int aio_flush(struct aio_ctx *ctx)
{
	if (!io_uring_sq_ready(&ctx->ring))
		return 0;
	return submit(ctx);
}

static void handler_cqe(struct aio_ctx *ctx, uint64_t ud, int res, unsigned int flags)
{
	struct aio_handler *h = (struct aio_handler *)(uintptr_t)(ud & ~UDATA_TAGS);
	bool more = flags & IORING_CQE_F_MORE;

	if (!more)
		h->armed = false;
	if (h->cancel)
		return;
	if (res == -EINVAL && !(ud & UDATA_SINGLE)) {
		/* Kernel before 5.13: single-shot polls, re-armed after each event. */
		ctx->no_multishot = true;
		arm_poll(ctx, h);
		return;
	}
	if (res < 0 && res != -ECANCELED) {
		pr_err("poll on fd %d: %s", h->fd, strerror(-res));
		return;
	}
	if (res > 0)
		h->fn(ctx, h);
	/* fn may have called aio_unwatch(); it reads the fd before the re-arm. */
	if (!more && !h->armed && !h->cancel && arm_poll(ctx, h))
		pr_err("cannot re-arm the poll on fd %d", h->fd);
}

int aio_run_once(struct aio_ctx *ctx, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0, handled = 0;
	int r;

	if (timeout_ms == 0) {
		r = io_uring_submit_and_get_events(&ctx->ring);
	} else if (timeout_ms < 0) {
		r = io_uring_submit_and_wait(&ctx->ring, 1);
	} else {
		struct __kernel_timespec ts = {
			.tv_sec = timeout_ms / 1000,
			.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
		};

		r = io_uring_submit_and_wait_timeout(&ctx->ring, &cqe, 1, &ts, NULL);
	}
	ctx->queued = io_uring_sq_ready(&ctx->ring);
	/* Timeout, signal, or a CQ too full to take more: reap what is there. */
	if (r == -ETIME || r == -EINTR || r == -EBUSY || r == -EAGAIN)
		r = 0;

	io_uring_for_each_cqe(&ctx->ring, head, cqe)
	{
		uint64_t ud = cqe->user_data;

		n++;
		if (!ud || ud == LIBURING_UDATA_TIMEOUT)
			continue;
		handled++;
		if (ud & UDATA_HANDLER) {
			handler_cqe(ctx, ud, cqe->res, cqe->flags);
		} else {
			struct aio_op *op = (struct aio_op *)(uintptr_t)ud;

			ctx->inflight--;
			op->fn(ctx, op, cqe->res);
		}
	}
	io_uring_cq_advance(&ctx->ring, n);
	if (r < 0 && !n)
		return r;
	return handled;
}
