/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-blk with one virtqueue per vCPU and one I/O thread per queue (or
 * queues spread over fewer threads). The vCPU threads never touch the disk:
 * kicks arrive on each queue's eventfd, which its I/O thread polls through
 * its own io_uring, the same ring that carries the block I/O.
 */
#ifndef MINIVMM_VIRTIO_BLK_H
#define MINIVMM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "mm/guest_mem.h"

struct blk_backend;
struct virtio_blk;
struct aio_ctx;
struct virtio_dev;
struct rl_config;

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX    (BLK_QUEUE_SIZE - 2) /* data segments per request */

struct virtio_blk_opts {
	const char *name;	    /* "vda", for messages and thread names */
	unsigned int queues;	    /* >= 1 */
	unsigned int threads;	    /* 1..queues; queue i is served by thread i % threads */
	const char *serial;	    /* GET_ID; NULL: empty */
	const int *thread_cpu;	    /* [threads] host CPU to pin each thread to, or NULL */
	unsigned int poll_us;	    /* busy-poll the rings this long before sleeping; 0: never */
	const struct rl_config *rl; /* iops and bandwidth limits; NULL: none */
	/* A request the backend failed (not one the guest got wrong), from an I/O thread. */
	void (*on_error)(void *opaque, int err, uint64_t offset);
	void *opaque;
};

/* The device takes ownership of @be (closed by virtio_blk_destroy). */
int virtio_blk_create(struct virtio_blk **out, struct blk_backend *be, const struct guest_mem *mem,
		   const struct virtio_blk_opts *o);
struct virtio_dev *virtio_blk_virtio(struct virtio_blk *b);
void virtio_blk_destroy(struct virtio_blk *b);
/* The backend; swapping it is only allowed while the device is quiesced or
 * not started, and to one of the same size. Returns the old one (the caller's). */
struct blk_backend *virtio_blk_backend(struct virtio_blk *b);
struct blk_backend *virtio_blk_swap_backend(struct virtio_blk *b, struct blk_backend *be);

/*
 * Serve queue @qi on the calling thread with @ctx, as its I/O thread would
 * (fuzzers and tests, with the device not started by a transport). Returns
 * the number of requests taken from the ring.
 */
unsigned int virtio_blk_process(struct virtio_blk *b, unsigned int qi, struct aio_ctx *ctx);
/* Requests submitted on queue @qi and not completed yet. */
unsigned int virtio_blk_inflight(struct virtio_blk *b, unsigned int qi);

struct virtio_blk_stats {
	uint64_t requests, errors, bad_chains;
	uint64_t flushes; /* completed FLUSHes: durable on the host */
	uint64_t kicks;	  /* guest notifications that woke an I/O thread */
	uint64_t polled;  /* times polling found requests without a kick */
	uint64_t irqs;	  /* interrupts sent */
	uint64_t poll_ns; /* the I/O threads' polling window now (the longest; adaptive) */
};
void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *st);

#endif
