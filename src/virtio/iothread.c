// SPDX-License-Identifier: GPL-2.0-or-later
/* The virtio I/O-thread engine (see iothread.h): threads, the serve loop, polling, stop. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "ratelimit.h"
#include "util.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"

bool vio_stop_requested(const struct vio_queue *vq)
{
	return vq->thread && atomic_load_explicit(&vq->thread->stopping, memory_order_relaxed);
}

bool vio_rl_wait(struct vio_queue *vq, struct ratelimit *rl)
{
	uint64_t now = now_ns(), w = rl_wait(rl, now);
	struct vio_thread *t = vq->thread;
	int ret;

	if (!w)
		return false;
	vq->throttled = true;
	if (t && t->timer.fd >= 0) {
		ret = rl_timer_arm(t->timer.fd, &t->timer_at, now + w);
		if (ret)
			pr_err("%s: timerfd: %s", t->e->name, strerror(-ret));
	}
	return true;
}

/* The device's drain, for a queue that is not waiting any more. */
static unsigned int take(struct vio_engine *e, struct vio_queue *vq, struct aio_ctx *ctx,
			 unsigned int budget)
{
	vq->throttled = false;
	return e->ops->drain(vq, ctx, budget);
}

/*
 * One pass over the ring for a kick: at most a ring's worth of chains. A guest
 * that refills the ring as fast as it is served (or a ring that refills itself)
 * must not keep the thread from its stop eventfd and its completions, so it
 * kicks itself to come back for the rest (docs/virtio.md).
 */
static unsigned int serve(struct vio_engine *e, struct vio_queue *vq, struct aio_ctx *ctx)
{
	struct virtqueue *ring = &vq->q->vq;
	unsigned int n = 0, budget = ring->size;

	if (vq->dead || ring->broken || !vq->q->enabled)
		return 0;
	if (vq->device_driven) {
		/* Kicks stay on: each says the driver added buffers. */
		vq_enable_notify(ring, true);
		return take(e, vq, ctx, budget);
	}
	/* No kicks while we are looking anyway; re-check after re-enabling (2.7.10). */
	do {
		vq_enable_notify(ring, false);
		n += take(e, vq, ctx, budget - n);
		if (n >= budget) {
			virtio_queue_kick(vq->q);
			break;
		}
		/* Whoever stops us restarts with a look at every ring (or resets it). */
		if (vio_stop_requested(vq))
			break;
		/* Kicks stay off: the timer brings us back (re-enabling would loop here). */
		if (vq->throttled)
			break;
	} while (!vq->dead && vq_enable_notify(ring, true));
	return n;
}

static void signal_queue(struct vio_queue *vq)
{
	if (!vq->need_signal)
		return;
	vq->need_signal = false;
	if (virtio_queue_signal(vq->q))
		vio_stat_inc(&vq->irqs);
}

unsigned int vio_process(struct vio_engine *e, unsigned int qi, struct aio_ctx *ctx)
{
	unsigned int n;

	if (qi >= e->nq)
		return 0;
	n = serve(e, e->queues[qi], ctx);
	signal_queue(e->queues[qi]);
	return n;
}

/* --- the threads ------------------------------------------------------------------------ */

#define for_each_queue(t, vq, i)                                                                   \
	for ((i) = 0; (i) < (t)->e->nq; (i)++)                                                     \
		if ((t)->e->map[i] == (t)->id && ((vq) = (t)->e->queues[i]))

static void on_kick(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct vio_queue *vq = container_of(h, struct vio_queue, kick);
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: kick read: %s", vq->thread->e->name, strerror(errno));
	vio_stat_inc(&vq->kicks);
	serve(vq->thread->e, vq, ctx);
}

static void on_stop(struct aio_ctx *ctx, struct aio_handler *h)
{
	uint64_t v;

	(void)ctx;
	if (read(h->fd, &v, sizeof(v)) < 0)
		(void)0;
}

/* The rate limit's wait is over: serve the queues that waited for it. */
static void on_timer(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct vio_thread *t = container_of(h, struct vio_thread, timer);
	struct vio_queue *vq;
	unsigned int i;
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: timerfd read: %s", t->e->name, strerror(errno));
	t->timer_at = 0;
	for_each_queue(t, vq, i)
		if (vq->throttled)
			serve(t->e, vq, ctx);
}

static void signal_queues(struct vio_thread *t)
{
	struct vio_queue *vq;
	unsigned int i;

	for_each_queue(t, vq, i)
		signal_queue(vq);
}

static bool live(const struct vio_queue *vq)
{
	return !vq->dead && vq->q->enabled;
}

/*
 * The polling window adapts as QEMU's does (util/aio-posix.c): an idle spell
 * that a window up to the maximum would have caught grows it, one longer than
 * the maximum shrinks it, one the window caught leaves it. A guest that keeps
 * the queue busy gets the whole window, an idle one costs no CPU.
 */
uint64_t vio_poll_adjust(uint64_t cur, uint64_t max, uint64_t idle)
{
	uint64_t start = max < VIO_POLL_START_NS ? max : VIO_POLL_START_NS;

	if (idle <= cur)
		return cur;
	if (idle > max)
		return cur / VIO_POLL_SHRINK < start ? 0 : cur / VIO_POLL_SHRINK;
	cur = cur ? cur * VIO_POLL_GROW : start;
	return cur > max ? max : cur;
}

/* Work arrived @now: how long the thread was idle before it sets the next window. */
static void poll_adapt(struct vio_thread *t, uint64_t now)
{
	/* Atomic: vio_engine_poll_ns() reads it from other threads. */
	__atomic_store_n(&t->poll_ns,
			 vio_poll_adjust(t->poll_ns, t->e->poll_ns, now - t->idle_since),
			 __ATOMIC_RELAXED);
}

uint64_t vio_engine_poll_ns(const struct vio_engine *e)
{
	uint64_t n, max = 0;
	unsigned int i;

	for (i = 0; i < e->nt; i++) {
		n = __atomic_load_n(&e->threads[i].poll_ns, __ATOMIC_RELAXED);
		if (n > max)
			max = n;
	}
	return max;
}

/*
 * Before sleeping, watch the rings a little longer with notifications off:
 * a guest that submits again soon then needs no kick (a VM exit), which
 * under nested virtualization costs far more than the spin. Completions
 * that arrive meanwhile are reaped without sleeping.
 */
static void poll_rings(struct vio_thread *t)
{
	uint64_t now = now_ns(), end = t->idle_since + t->poll_ns;
	struct vio_queue *vq;
	unsigned int i;
	bool found;

	for_each_queue(t, vq, i)
		if (live(vq) && !vq->device_driven)
			vq_enable_notify(&vq->q->vq, false);
	/* A throttled queue is not polled: only its timer ends the wait (no spinning on it). */
	do {
		found = false;
		for_each_queue(t, vq, i) {
			if (!live(vq) || vq->throttled || vq->device_driven ||
			    !vq_has_avail(&vq->q->vq))
				continue;
			found = true;
			vio_stat_inc(&vq->polled);
			take(t->e, vq, &t->aio, vq->q->vq.size);
		}
		if (found || io_uring_cq_ready(&t->aio.ring)) {
			poll_adapt(t, now); /* the work was there when this pass began */
			aio_run_once(&t->aio, 0); /* submit, and reap what completed */
			signal_queues(t);
			now = t->idle_since = now_ns();
			end = now + t->poll_ns;
			continue;
		}
		__builtin_ia32_pause();
		now = now_ns();
	} while (now < end && !atomic_load_explicit(&t->stopping, memory_order_relaxed));
	/* Kicks again; anything that slipped in is served now (2.7.10). */
	for_each_queue(t, vq, i)
		if (live(vq) && !vq->throttled && !vq->device_driven &&
		    vq_enable_notify(&vq->q->vq, true))
			serve(t->e, vq, &t->aio);
	/* What that answered at once (a synchronous backend) is owed its interrupt now: the
	 * thread may sleep next, or stop, and the guest would wait for it forever. */
	signal_queues(t);
}

static unsigned int thread_inflight(struct vio_thread *t)
{
	struct vio_queue *vq;
	unsigned int i, n = 0;

	if (!t->e->ops->inflight)
		return 0;
	for_each_queue(t, vq, i)
		n += t->e->ops->inflight(vq);
	return n;
}

static void *thread_fn(void *arg)
{
	struct vio_thread *t = arg;
	char name[32];

	/* Thread names are cut at 15 characters by the kernel anyway. */
	snprintf(name, sizeof(name), "%s-io%u", t->e->name, t->id);
	name[15] = 0;
	pthread_setname_np(pthread_self(), name);
	if (t->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warn("%s: cannot pin to CPU %d", name, t->cpu);
	}
	sandbox_thread_enter(t->e->role);
	__atomic_store_n(&t->poll_ns, t->e->poll_ns, __ATOMIC_RELAXED);
	t->idle_since = now_ns();
	while (!atomic_load(&t->stopping)) {
		int ret;

		if (t->poll_ns)
			poll_rings(t);
		/* Polling may have taken the stop event already: do not wait for another. */
		if (atomic_load(&t->stopping))
			break;
		ret = aio_run_once(&t->aio, -1);
		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			pr_err("%s: io_uring: %s", name, strerror(-ret));
			break;
		}
		if (t->e->poll_ns)
			poll_adapt(t, now_ns());
		signal_queues(t);
		t->idle_since = now_ns();
	}
	/* Stop means quiesced: every request the guest gave us is answered first, and
	 * signalled (a restored snapshot would not know it owes an interrupt). */
	signal_queues(t);
	while (thread_inflight(t)) {
		if (aio_run_once(&t->aio, 100) < 0)
			break;
		signal_queues(t);
	}
	return NULL;
}

static void watch_init(struct aio_handler *h, int fd,
		       void (*fn)(struct aio_ctx *, struct aio_handler *))
{
	/* A new ring: nothing is polled in it yet (the last one died with its polls). */
	h->fd = fd;
	h->fn = fn;
	h->armed = false;
	h->cancel = false;
}

static int start_thread(struct vio_engine *e, struct vio_thread *t)
{
	struct vio_queue *vq;
	unsigned int i;
	int ret, fd;

	atomic_store(&t->stopping, false);
	t->timer_at = 0;
	ret = aio_init(&t->aio, e->ring_entries);
	if (ret)
		return ret;
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		aio_exit(&t->aio);
		return ret;
	}
	watch_init(&t->stop, fd, on_stop);
	ret = aio_watch(&t->aio, &t->stop);
	if (!ret && e->timer) {
		fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		watch_init(&t->timer, fd, on_timer);
		ret = fd < 0 ? -errno : aio_watch(&t->aio, &t->timer);
	}
	if (!ret && e->ops->attach)
		ret = e->ops->attach(e, &t->aio);
	for_each_queue(t, vq, i) {
		if (ret)
			break;
		watch_init(&vq->kick, vq->q->kick_fd, on_kick);
		vq->thread = t;
		ret = aio_watch(&t->aio, &vq->kick);
	}
	if (!ret) {
		ret = -pthread_create(&t->thr, NULL, thread_fn, t);
		t->running = !ret;
	}
	return ret;
}

int vio_engine_start(struct vio_engine *e)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < e->nq; i++) {
		e->queues[i]->dead = false;
		e->queues[i]->throttled = false;
		e->queues[i]->need_signal = false;
	}
	for (i = 0; !ret && i < e->nt; i++)
		ret = start_thread(e, &e->threads[i]);
	if (ret) {
		pr_err("%s: cannot start its I/O threads: %s", e->name, strerror(-ret));
		vio_engine_stop(e);
	}
	return ret;
}

void vio_engine_stop(struct vio_engine *e)
{
	uint64_t one = 1;
	unsigned int i;

	for (i = 0; i < e->nt; i++) {
		struct vio_thread *t = &e->threads[i];

		if (!t->running)
			continue;
		atomic_store(&t->stopping, true);
		if (write(t->stop.fd, &one, sizeof(one)) < 0)
			pr_debug("stop eventfd: %s", strerror(errno));
		pthread_join(t->thr, NULL);
		t->running = false;
	}
	for (i = 0; i < e->nt; i++) {
		struct vio_thread *t = &e->threads[i];

		if (t->stop.fd < 0)
			continue;
		if (e->ops->detach)
			e->ops->detach(e, &t->aio);
		aio_exit(&t->aio);
		close(t->stop.fd);
		t->stop.fd = -1;
		if (t->timer.fd >= 0)
			close(t->timer.fd);
		t->timer.fd = -1;
	}
	/* Until started again the queues are served, if at all, by vio_process(). */
	for (i = 0; i < e->nq; i++)
		e->queues[i]->thread = NULL;
}

int vio_engine_init(struct vio_engine *e, const struct vio_engine_ops *ops, void *dev,
		    struct vio_queue *first, size_t stride, struct virtio_queue *vqs,
		    unsigned int nq, const struct vio_engine_opts *o)
{
	unsigned int i;

	memset(e, 0, sizeof(*e));
	if (!nq || !o->threads || !ops->drain)
		return -EINVAL;
	for (i = 0; o->map && i < nq; i++)
		if (o->map[i] >= o->threads)
			return -EINVAL;
	e->ops = ops;
	e->dev = dev;
	snprintf(e->name, sizeof(e->name), "%s", o->name ? o->name : "virtio");
	e->nq = nq;
	e->nt = o->threads;
	e->ring_entries = o->ring_entries ? o->ring_entries : 8;
	e->poll_ns = o->poll_us * 1000ULL;
	e->timer = o->timer;
	e->role = o->role;
	e->queues = calloc(nq, sizeof(*e->queues));
	e->map = calloc(nq, sizeof(*e->map));
	e->threads = calloc(e->nt, sizeof(*e->threads));
	if (!e->queues || !e->map || !e->threads) {
		vio_engine_exit(e);
		return -ENOMEM;
	}
	for (i = 0; i < nq; i++) {
		e->queues[i] = (struct vio_queue *)((char *)first + i * stride);
		e->queues[i]->q = &vqs[i];
		e->queues[i]->thread = NULL;
		e->map[i] = o->map ? o->map[i] : i % o->threads;
	}
	for (i = 0; i < e->nt; i++) {
		e->threads[i].e = e;
		e->threads[i].id = i;
		e->threads[i].stop.fd = -1;
		e->threads[i].timer.fd = -1;
		e->threads[i].cpu = o->thread_cpu ? o->thread_cpu[i] : -1;
	}
	return 0;
}

void vio_engine_exit(struct vio_engine *e)
{
	free(e->queues);
	free(e->map);
	free(e->threads);
	e->queues = NULL;
	e->map = NULL;
	e->threads = NULL;
}
