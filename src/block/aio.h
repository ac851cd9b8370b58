/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One I/O thread's event loop on one io_uring: guest kicks (eventfds polled
 * through the ring), block I/O submitted by backends, and a stop eventfd all
 * complete as CQEs of the same ring, so one io_uring_submit_and_wait() both
 * sends a batch of requests and sleeps until the next thing happens.
 */
#ifndef MINIVMM_BLOCK_AIO_H
#define MINIVMM_BLOCK_AIO_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

struct aio_ctx;

/*
 * Something to run when a polled fd becomes readable. The ring's user_data
 * tells the two kinds of completion apart: a handler's pointer has its low bit
 * set, an aio_op's does not (both are at least 8-byte aligned); 0 is ignored.
 */
struct aio_handler {
	void (*fn)(struct aio_ctx *ctx, struct aio_handler *h);
	int fd;
	short events; /* poll events; 0: POLLIN */
	bool armed;  /* a poll is queued in the ring */
	bool cancel; /* aio_unwatch() was called: no more fn calls, no re-arm */
};

/* A backend's in-flight operation: @fn gets the CQE's result. */
struct aio_op {
	void (*fn)(struct aio_ctx *ctx, struct aio_op *op, int res);
};

struct aio_ctx {
	struct io_uring ring;
	unsigned int queued;   /* SQEs prepared but not submitted */
	unsigned int inflight; /* aio_op SQEs queued or in the kernel */
	bool stop;
	/* Registered files: slot per backend file, -1 = unused. */
	int files[8];
	bool files_registered; /* the sparse table exists in the kernel */
	bool no_multishot;     /* the kernel refused multishot polls */
	void *owner;	       /* for handlers: whoever runs this ring */
};

/* @entries: ring size (a power of two). */
int aio_init(struct aio_ctx *ctx, unsigned int entries);
void aio_exit(struct aio_ctx *ctx);

/* Watch @h->fd for readability (multishot when the kernel has it); @h->fn runs
 * from aio_run_once() each time. The fd is read (8-byte eventfd counter) by fn.
 * fn may run when there is nothing left to read (two wakeups in one batch), so
 * the fd should be non-blocking. */
int aio_watch(struct aio_ctx *ctx, struct aio_handler *h);
/* Stop watching: fn is not called again. The poll is removed asynchronously,
 * so @h must stay valid until aio_run_once() has cleared h->armed. */
int aio_unwatch(struct aio_ctx *ctx, struct aio_handler *h);

/* An SQE to fill for @op (submitted at the next aio_run_once / aio_flush);
 * flushes the ring first when it is full. NULL only on a broken ring. */
struct io_uring_sqe *aio_get_sqe(struct aio_ctx *ctx, struct aio_op *op);

/* Register @fd as a fixed file; returns its index or a negative errno. */
int aio_register_file(struct aio_ctx *ctx, int fd);
void aio_unregister_file(struct aio_ctx *ctx, int idx);

/* Submit what is queued. */
int aio_flush(struct aio_ctx *ctx);

/* Submit what is queued, wait for at least one completion (or @timeout_ms,
 * -1 = forever, 0 = do not wait) and dispatch all available CQEs. Returns the
 * number handled (0 on timeout or signal) or a negative errno. Callbacks may
 * queue SQEs but must not call aio_run_once() themselves. */
int aio_run_once(struct aio_ctx *ctx, int timeout_ms);

#endif
