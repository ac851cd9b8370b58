/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The virtio I/O-thread engine: what every device that serves its queues off
 * the vCPU threads shares. Each thread owns an io_uring (block/aio.c) that
 * watches its queues' kick eventfds, a stop eventfd and, for a rate-limited
 * device, a timerfd; the serve loop turns notifications off while it looks,
 * re-checks after turning them on again (virtio 1.2, 2.7.10), takes at most a
 * ring's worth of chains per pass, optionally polls the rings before sleeping
 * (a window that adapts to how soon work comes, like QEMU's),
 * signals the guest once per batch, and on stop answers everything in flight
 * before the thread ends.
 *
 * A device embeds one struct vio_queue per virtqueue and supplies only
 * "drain this queue" (take chains from the ring, at most a budget) and, when
 * its requests complete asynchronously, "how many are in flight".
 */
#ifndef MINIVMM_VIRTIO_IOTHREAD_H
#define MINIVMM_VIRTIO_IOTHREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/aio.h"
#include "sandbox/sandbox.h"

struct ratelimit;
struct virtio_queue;
struct vio_engine;
struct vio_thread;

/* One virtqueue as the engine sees it; embedded in the device's own queue struct. */
struct vio_queue {
	struct virtio_queue *q;
	struct vio_thread *thread; /* NULL until started, or served by vio_process() */
	struct aio_handler kick;
	bool need_signal; /* used entries added since the last interrupt */
	bool dead;	  /* the driver broke the protocol: ignored until reset */
	bool throttled;	  /* waiting for the rate limit: the ring is left alone */
	/*
	 * Set by the device: the driver's buffers wait here for the device to have
	 * something (a receive or event queue). A kick means "more buffers", drain
	 * uses what it needs; available buffers are no reason to serve again.
	 */
	bool device_driven;
	atomic_uint_fast64_t kicks, polled, irqs;
};

struct vio_engine_ops {
	/*
	 * Take at most @budget chains from @vq's ring and handle them; returns how
	 * many were taken. Stop early when vio_stop_requested() or vio_rl_wait() says so.
	 */
	unsigned int (*drain)(struct vio_queue *vq, struct aio_ctx *ctx, unsigned int budget);
	/* Chains of @vq taken and not answered yet; NULL: a device that answers at once. */
	unsigned int (*inflight)(struct vio_queue *vq);
	/* A thread's ring was set up / is going away (the block backend's fixed files). */
	int (*attach)(struct vio_engine *e, struct aio_ctx *ctx);
	void (*detach)(struct vio_engine *e, struct aio_ctx *ctx);
};

struct vio_engine_opts {
	const char *name;	   /* threads are called NAME-ioN */
	unsigned int threads;	   /* >= 1 */
	const unsigned int *map;   /* [queues]: the thread of each queue; NULL: i % threads */
	const int *thread_cpu;	   /* [threads] host CPU to pin each to, or NULL */
	unsigned int poll_us;	   /* the longest polling window (adaptive); 0: never poll */
	unsigned int ring_entries; /* io_uring entries per thread */
	bool timer;		   /* a rate limit is in use: a timerfd per thread */
	enum sandbox_role role;	   /* seccomp role the threads take */
};

struct vio_thread {
	struct vio_engine *e;
	unsigned int id;
	pthread_t thr;
	struct aio_ctx aio;
	struct aio_handler stop;
	struct aio_handler timer; /* timerfd: a throttled queue may go on */
	uint64_t timer_at;	  /* when it fires (CLOCK_MONOTONIC ns); 0: disarmed */
	atomic_bool stopping;
	int cpu;
	bool running;
	uint64_t poll_ns;    /* the polling window now: adapts between 0 and the engine's */
	uint64_t idle_since; /* when the thread last finished work (CLOCK_MONOTONIC ns) */
};

struct vio_engine {
	const struct vio_engine_ops *ops;
	void *dev; /* the device, for its ops */
	char name[16];
	unsigned int nq, nt, ring_entries;
	uint64_t poll_ns; /* the longest polling window */
	bool timer;
	enum sandbox_role role;
	struct vio_queue **queues; /* [nq] */
	unsigned int *map;	   /* [nq] */
	struct vio_thread *threads;
};

/*
 * The device's @nq queues are struct vio_queues @stride bytes apart from @first
 * (one in each element of its per-queue array); the i-th serves @vqs[i].
 * Nothing runs until vio_engine_start().
 */
int vio_engine_init(struct vio_engine *e, const struct vio_engine_ops *ops, void *dev,
		    struct vio_queue *first, size_t stride, struct virtio_queue *vqs,
		    unsigned int nq, const struct vio_engine_opts *o);
void vio_engine_exit(struct vio_engine *e);

/* Start the threads, every queue fresh (not dead, not throttled). */
int vio_engine_start(struct vio_engine *e);
/* Stop the threads; each answers what it has in flight first. Safe if not started. */
void vio_engine_stop(struct vio_engine *e);

/*
 * Serve queue @qi on the calling thread with @ctx, as its I/O thread would
 * (fuzzers and tests, the device not started by a transport); signals the
 * guest. Returns the chains taken.
 */
unsigned int vio_process(struct vio_engine *e, unsigned int qi, struct aio_ctx *ctx);

/*
 * The next polling window after an idle spell of @idle ns with window @cur and
 * maximum @max: grown (x VIO_POLL_GROW, from VIO_POLL_START_NS) when a window up
 * to @max would have caught the work, shrunk (/ VIO_POLL_SHRINK, to 0 below the
 * start) when none would have, unchanged when @cur did.
 */
#define VIO_POLL_START_NS 4000
#define VIO_POLL_GROW	  2
#define VIO_POLL_SHRINK	  2
uint64_t vio_poll_adjust(uint64_t cur, uint64_t max, uint64_t idle);
/* The longest polling window of the engine's threads now (ns). */
uint64_t vio_engine_poll_ns(const struct vio_engine *e);

/* For drain(): the queue's thread is being stopped, leave the rest of the ring. */
bool vio_stop_requested(const struct vio_queue *vq);
/*
 * For drain(), before taking a chain: true when @rl says wait. The queue is then
 * left alone (notifications off) until its thread's timer fires; nothing is
 * refused and no core spins.
 */
bool vio_rl_wait(struct vio_queue *vq, struct ratelimit *rl);

/* Statistics have one writer (the queue's thread): no locked add. */
static inline void vio_stat_inc(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

#endif
