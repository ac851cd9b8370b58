// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-blk: requests from the rings to a block backend, one I/O thread per queue. */
#include <errno.h>
#include <libfdt.h>
#include <linux/virtio_blk.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "block/aio.h"
#include "block/backend.h"
#include "iov.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox/sandbox.h"
#include "util.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_BLOCK	 2
#define PCI_CLASS_SCSI	 0x010000 /* what QEMU and kvmtool report for virtio-blk */
#define SECTOR		 512ULL
#define MAX_IOV		 (BLK_SEG_MAX + 2)
#define SIZE_MAX_SEG	 (1U << 20)
#define MAX_DISCARD	 (1U << 22) /* sectors per discard / write-zeroes segment (2 GiB) */
#define AIO_RING_ENTRIES 256

struct blk_vq;
struct blk_thread;

/* One request in flight, indexed by its head descriptor. */
struct blk_io {
	struct blk_req req;
	struct blk_vq *bq;
	uint8_t *status;
	uint32_t in_len;
	uint16_t head;
	struct iovec data[MAX_IOV];
};

struct blk_vq {
	struct blk_dev *dev;
	struct virtio_queue *q;
	struct aio_handler kick;
	struct blk_io *ios; /* [size_max], touched only when used: 4 KiB each */
	uint8_t *busy;	    /* [size_max]: head in flight */
	struct iovec scratch[MAX_IOV];
	unsigned int inflight;
	bool need_signal;
	bool dead;		     /* the driver broke the protocol: ignore until reset */
	bool throttled;		     /* waiting for the rate limit: the ring is left alone */
	const atomic_bool *stopping; /* its I/O thread's; NULL: served by blk_dev_process */
	struct blk_thread *thread;   /* whose timer ends a wait for the rate limit */
	atomic_uint_fast64_t requests, errors, bad_chains;
	atomic_uint_fast64_t kicks, polled, irqs;
};

struct blk_thread {
	struct blk_dev *dev;
	unsigned int id;
	pthread_t thr;
	struct aio_ctx aio;
	struct aio_handler stop;
	struct aio_handler timer; /* timerfd: a throttled queue may go on */
	uint64_t timer_at;	  /* when it fires (CLOCK_MONOTONIC ns); 0: disarmed */
	atomic_bool stopping;
	int cpu;
	bool running;
	uint64_t poll_ns; /* busy-wait this long for more work before sleeping */
};

struct blk_dev {
	struct virtio_dev vdev;
	struct blk_backend *be;
	struct virtio_blk_config cfg;
	char serial[VIRTIO_BLK_ID_BYTES];
	char name[16];
	unsigned int nq, nt;
	unsigned int poll_us;
	bool limited;	     /* iops or bandwidth set: rl is in use */
	struct ratelimit rl; /* shared by all its queues */
	struct blk_vq *vqs;
	struct blk_thread *threads;
};

/* Statistics: each queue's counters have one writer, its I/O thread; no locked add. */
static inline void stat_inc(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* --- requests -------------------------------------------------------------------------- */

static void complete(struct blk_io *io, uint8_t status)
{
	struct blk_vq *bq = io->bq;

	if (status != VIRTIO_BLK_S_OK)
		stat_inc(&bq->errors);
	*io->status = status;
	bq->busy[io->head] = 0;
	bq->inflight--;
	vq_push(&bq->q->vq, io->head, io->in_len);
	bq->need_signal = true;
}

static void io_done(struct blk_req *req, int res)
{
	struct blk_io *io = req->opaque;

	if (res)
		pr_debug("%s: request at %llu failed: %s", io->bq->dev->name,
			 (unsigned long long)req->offset, strerror(-res));
	complete(io, !res		  ? VIRTIO_BLK_S_OK
		     : res == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP
					  : VIRTIO_BLK_S_IOERR);
}

static bool in_range(const struct blk_dev *b, uint64_t sector, uint64_t bytes)
{
	uint64_t size = b->be->size;

	return sector <= size / SECTOR && bytes <= size - sector * SECTOR;
}

/* DISCARD / WRITE_ZEROES: one {sector, num_sectors, flags} segment after the header. */
static uint8_t prep_range(struct blk_dev *b, struct blk_io *io, const struct vq_elem *e,
			  uint32_t type)
{
	struct virtio_blk_discard_write_zeroes seg;
	uint32_t allowed =
	    type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0;
	bool can = type == VIRTIO_BLK_T_DISCARD ? b->be->can_discard : b->be->can_write_zeroes;

	if (!can)
		return VIRTIO_BLK_S_UNSUPP;
	if (b->be->readonly)
		return VIRTIO_BLK_S_IOERR;
	if (e->out_len - sizeof(struct virtio_blk_outhdr) != sizeof(seg) ||
	    iov_to_buf(e->iov, e->out_num, sizeof(struct virtio_blk_outhdr), &seg, sizeof(seg)) !=
		sizeof(seg))
		return VIRTIO_BLK_S_IOERR;
	if (seg.flags & ~allowed)
		return VIRTIO_BLK_S_UNSUPP;
	if (!seg.num_sectors || seg.num_sectors > MAX_DISCARD ||
	    !in_range(b, seg.sector, (uint64_t)seg.num_sectors * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	io->req.op = type == VIRTIO_BLK_T_DISCARD ? BLK_DISCARD : BLK_WRITE_ZEROES;
	io->req.offset = seg.sector * SECTOR;
	io->req.len = (uint64_t)seg.num_sectors * SECTOR;
	io->req.unmap = seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	return VIRTIO_BLK_S_OK;
}

/*
 * Turn a popped chain into a backend request. Returns VIRTIO_BLK_S_OK when
 * io->req is ready to submit, 0xff when the request is already done (GET_ID,
 * read-only flush), or the status to fail it with.
 */
static uint8_t prep(struct blk_dev *b, struct blk_io *io, const struct vq_elem *e)
{
	const size_t hsz = sizeof(struct virtio_blk_outhdr);
	struct virtio_blk_outhdr h;
	const struct iovec *in = e->iov + e->out_num;
	uint64_t dlen;
	int n;

	if (iov_to_buf(e->iov, e->out_num, 0, &h, hsz) != hsz)
		return VIRTIO_BLK_S_IOERR;
	memset(&io->req, 0, sizeof(io->req));
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		dlen = e->in_len - 1;
		/* The used length is 32 bits; no real request comes near. */
		if (dlen % SECTOR || dlen >= UINT32_MAX || !in_range(b, h.sector, dlen))
			return VIRTIO_BLK_S_IOERR;
		n = iov_range(in, e->in_num, 0, dlen, io->data, MAX_IOV);
		if (n < 0)
			return VIRTIO_BLK_S_IOERR;
		io->req.op = BLK_READ;
		io->req.iovcnt = n;
		io->in_len = dlen + 1;
		break;
	case VIRTIO_BLK_T_OUT:
		dlen = e->out_len - hsz;
		if (b->be->readonly)
			return VIRTIO_BLK_S_IOERR;
		if (dlen % SECTOR || !in_range(b, h.sector, dlen))
			return VIRTIO_BLK_S_IOERR;
		n = iov_range(e->iov, e->out_num, hsz, dlen, io->data, MAX_IOV);
		if (n < 0)
			return VIRTIO_BLK_S_IOERR;
		io->req.op = BLK_WRITE;
		io->req.iovcnt = n;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (b->be->readonly)
			return 0xff;
		io->req.op = BLK_FLUSH;
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t room = e->in_len - 1;
		size_t len = MIN(room, (uint64_t)VIRTIO_BLK_ID_BYTES);

		if (iov_from_buf(in, e->in_num, 0, b->serial, len) != len)
			return VIRTIO_BLK_S_IOERR;
		io->in_len = len + 1;
		return 0xff;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return prep_range(b, io, e, h.type);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
	io->req.offset = h.sector * SECTOR;
	io->req.len = dlen;
	io->req.iov = io->data;
	return VIRTIO_BLK_S_OK;
}

/* The status byte: the last byte of the last non-empty device-writable buffer. */
static uint8_t *status_byte(const struct vq_elem *e)
{
	unsigned int i;

	for (i = e->out_num + e->in_num; i > e->out_num; i--)
		if (e->iov[i - 1].iov_len)
			return (uint8_t *)e->iov[i - 1].iov_base + e->iov[i - 1].iov_len - 1;
	return NULL;
}

static bool stop_requested(const struct blk_vq *bq)
{
	return bq->stopping && atomic_load_explicit(bq->stopping, memory_order_relaxed);
}

/* Fire @t's timer at @at_ns at the latest. */
static void arm_timer(struct blk_thread *t, uint64_t at_ns)
{
	int ret = rl_timer_arm(t->timer.fd, &t->timer_at, at_ns);

	if (ret)
		pr_err("%s: timerfd: %s", t->dev->name, strerror(-ret));
}

/*
 * The device's rate limit before a request is taken: true when it must wait.
 * The ring is then left alone (notifications off) until the thread's timer
 * fires; nothing is refused, and the thread sleeps, so no core spins.
 */
static bool must_wait(struct blk_vq *bq)
{
	uint64_t now = now_ns(), w = rl_wait(&bq->dev->rl, now);

	if (!w)
		return false;
	bq->throttled = true;
	if (bq->thread)
		arm_timer(bq->thread, now + w);
	return true;
}

/* Take what the ring offers, at most @budget chains; returns the number taken. */
static unsigned int drain_ring(struct blk_vq *bq, struct aio_ctx *ctx, unsigned int budget)
{
	struct blk_dev *b = bq->dev;
	struct virtqueue *vq = &bq->q->vq;
	struct vq_elem e = { .iov = bq->scratch, .max = MAX_IOV };
	unsigned int taken = 0;
	uint8_t st;
	int ret;

	bq->throttled = false;
	while (taken < budget && !stop_requested(bq)) {
		struct blk_io *io;

		if (b->limited && vq_has_avail(vq) && must_wait(bq))
			break;
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			bq->dead = true;
			virtio_needs_reset(&b->vdev, "corrupt available ring");
			break;
		}
		taken++;
		stat_inc(&bq->requests);
		/* Every chain is an operation; bytes are charged once known (below). */
		if (b->limited)
			rl_charge(&b->rl, 1, 0);
		io = &bq->ios[e.head];
		if (bq->busy[e.head]) {
			/* The same head twice in flight: nothing in this ring is safe now. */
			bq->dead = true;
			virtio_needs_reset(&b->vdev, "descriptor reused while in flight");
			break;
		}
		if (ret == VQ_BAD_CHAIN) {
			stat_inc(&bq->bad_chains);
			vq_push(vq, e.head, 0);
			bq->need_signal = true;
			continue;
		}
		io->status = status_byte(&e);
		if (!io->status || e.out_len < sizeof(struct virtio_blk_outhdr)) {
			/* Nowhere to put a status, or no header: fail it without writing. */
			stat_inc(&bq->errors);
			vq_push(vq, e.head, 0);
			bq->need_signal = true;
			continue;
		}
		io->bq = bq;
		io->head = e.head;
		io->in_len = 1;
		bq->busy[e.head] = 1;
		bq->inflight++;
		st = prep(b, io, &e);
		if (st == 0xff) {
			complete(io, VIRTIO_BLK_S_OK);
			continue;
		}
		if (st != VIRTIO_BLK_S_OK) {
			io->in_len = 1;
			complete(io, st);
			continue;
		}
		if (b->limited && (io->req.op == BLK_READ || io->req.op == BLK_WRITE))
			rl_charge(&b->rl, 0, io->req.len);
		io->req.done = io_done;
		io->req.opaque = io;
		ret = blk_submit(b->be, ctx, &io->req);
		if (ret)
			complete(io, ret == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP : VIRTIO_BLK_S_IOERR);
	}
	return taken;
}

/*
 * One pass over the ring for a kick: at most a ring's worth of chains. A guest
 * that refills the ring as fast as it is served (or a ring that refills itself)
 * must not keep the thread from its stop eventfd and its completions, so it
 * kicks itself to come back for the rest (docs/virtio.md).
 */
static unsigned int serve(struct blk_vq *bq, struct aio_ctx *ctx)
{
	struct virtqueue *vq = &bq->q->vq;
	unsigned int n = 0, budget = vq->size;

	if (bq->dead || vq->broken || !bq->q->enabled)
		return 0;
	/* No kicks while we are looking anyway; re-check after re-enabling (2.7.10). */
	do {
		vq_enable_notify(vq, false);
		n += drain_ring(bq, ctx, budget - n);
		if (n >= budget) {
			virtio_queue_kick(bq->q);
			break;
		}
		/* Whoever stops us restarts with a look at every ring (or resets it). */
		if (stop_requested(bq))
			break;
		/* Kicks stay off: the timer brings us back (re-enabling would loop here). */
		if (bq->throttled)
			break;
	} while (!bq->dead && vq_enable_notify(vq, true));
	return n;
}

unsigned int blk_dev_process(struct blk_dev *b, unsigned int qi, struct aio_ctx *ctx)
{
	struct blk_vq *bq;
	unsigned int n;

	if (qi >= b->nq)
		return 0;
	bq = &b->vqs[qi];
	n = serve(bq, ctx);
	if (bq->need_signal) {
		bq->need_signal = false;
		virtio_queue_signal(bq->q);
	}
	return n;
}

unsigned int blk_dev_inflight(struct blk_dev *b, unsigned int qi)
{
	return qi < b->nq ? b->vqs[qi].inflight : 0;
}

/* --- I/O threads ----------------------------------------------------------------------- */

static void on_kick(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct blk_vq *bq = container_of(h, struct blk_vq, kick);
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: kick read: %s", bq->dev->name, strerror(errno));
	stat_inc(&bq->kicks);
	serve(bq, ctx);
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
	struct blk_thread *t = container_of(h, struct blk_thread, timer);
	struct blk_dev *b = t->dev;
	unsigned int i;
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: timerfd read: %s", b->name, strerror(errno));
	t->timer_at = 0;
	for (i = t->id; i < b->nq; i += b->nt)
		if (b->vqs[i].throttled)
			serve(&b->vqs[i], ctx);
}

static void signal_queues(struct blk_thread *t)
{
	struct blk_dev *b = t->dev;
	unsigned int i;

	for (i = t->id; i < b->nq; i += b->nt) {
		struct blk_vq *bq = &b->vqs[i];

		if (bq->need_signal) {
			bq->need_signal = false;
			if (virtio_queue_signal(bq->q))
				stat_inc(&bq->irqs);
		}
	}
}

/*
 * Before sleeping, watch the rings a little longer with notifications off:
 * a guest that submits again soon then needs no kick (a VM exit), which
 * under nested virtualization costs far more than the spin. Completions
 * that arrive meanwhile are reaped without sleeping.
 */
static void poll_rings(struct blk_thread *t)
{
	struct blk_dev *b = t->dev;
	uint64_t end = now_ns() + t->poll_ns;
	unsigned int i;
	bool found;

	for (i = t->id; i < b->nq; i += b->nt)
		if (!b->vqs[i].dead && b->vqs[i].q->enabled)
			vq_enable_notify(&b->vqs[i].q->vq, false);
	/* A throttled queue is not polled: only its timer ends the wait (no spinning on it). */
	do {
		found = false;
		for (i = t->id; i < b->nq; i += b->nt) {
			struct blk_vq *bq = &b->vqs[i];

			if (bq->dead || bq->throttled || !bq->q->enabled ||
			    !vq_has_avail(&bq->q->vq))
				continue;
			found = true;
			stat_inc(&bq->polled);
			drain_ring(bq, &t->aio, bq->q->vq.size);
		}
		if (found || io_uring_cq_ready(&t->aio.ring)) {
			aio_run_once(&t->aio, 0); /* submit, and reap what completed */
			signal_queues(t);
			end = now_ns() + t->poll_ns;
			continue;
		}
		__builtin_ia32_pause();
	} while (now_ns() < end && !atomic_load_explicit(&t->stopping, memory_order_relaxed));
	/* Kicks again; anything that slipped in is served now (2.7.10). */
	for (i = t->id; i < b->nq; i += b->nt)
		if (!b->vqs[i].dead && !b->vqs[i].throttled && b->vqs[i].q->enabled &&
		    vq_enable_notify(&b->vqs[i].q->vq, true))
			serve(&b->vqs[i], &t->aio);
}

static unsigned int thread_inflight(struct blk_thread *t)
{
	unsigned int i, n = 0;

	for (i = t->id; i < t->dev->nq; i += t->dev->nt)
		n += t->dev->vqs[i].inflight;
	return n;
}

static void *blk_thread_fn(void *arg)
{
	struct blk_thread *t = arg;
	char name[32];

	/* Thread names are cut at 15 characters by the kernel anyway. */
	snprintf(name, sizeof(name), "%s-io%u", t->dev->name, t->id);
	name[15] = 0;
	pthread_setname_np(pthread_self(), name);
	if (t->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warn("%s: cannot pin to CPU %d", name, t->cpu);
	}
	sandbox_thread_enter(SANDBOX_BLK_IO);
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
		signal_queues(t);
	}
	/* Stop means quiesced: every request the guest gave us is answered first. */
	while (thread_inflight(t)) {
		if (aio_run_once(&t->aio, 100) < 0)
			break;
		signal_queues(t);
	}
	return NULL;
}

static void stop_threads(struct blk_dev *b)
{
	unsigned int i;
	uint64_t one = 1;

	for (i = 0; i < b->nt; i++) {
		struct blk_thread *t = &b->threads[i];

		if (!t->running)
			continue;
		atomic_store(&t->stopping, true);
		if (write(t->stop.fd, &one, sizeof(one)) < 0)
			pr_debug("stop eventfd: %s", strerror(errno));
		pthread_join(t->thr, NULL);
		t->running = false;
	}
	for (i = 0; i < b->nt; i++) {
		struct blk_thread *t = &b->threads[i];

		if (t->stop.fd < 0)
			continue;
		if (b->be->ops->detach)
			b->be->ops->detach(b->be, &t->aio);
		aio_exit(&t->aio);
		close(t->stop.fd);
		t->stop.fd = -1;
		if (t->timer.fd >= 0)
			close(t->timer.fd);
		t->timer.fd = -1;
	}
}

static int start_thread(struct blk_dev *b, struct blk_thread *t)
{
	unsigned int i;
	int ret;

	atomic_store(&t->stopping, false);
	t->poll_ns = b->poll_us * 1000ULL;
	ret = aio_init(&t->aio, AIO_RING_ENTRIES);
	if (ret)
		return ret;
	t->stop.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->stop.fd < 0) {
		ret = -errno;
		aio_exit(&t->aio);
		return ret;
	}
	t->stop.fn = on_stop;
	/* A new ring: nothing is polled in it yet (the last one died with its polls). */
	t->stop.armed = false;
	ret = aio_watch(&t->aio, &t->stop);
	t->timer_at = 0;
	if (!ret && b->limited) {
		t->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		t->timer.fn = on_timer;
		t->timer.armed = false;
		ret = t->timer.fd < 0 ? -errno : aio_watch(&t->aio, &t->timer);
	}
	if (!ret && b->be->ops->attach)
		ret = b->be->ops->attach(b->be, &t->aio);
	for (i = t->id; !ret && i < b->nq; i += b->nt) {
		struct blk_vq *bq = &b->vqs[i];

		bq->kick.fd = bq->q->kick_fd;
		bq->kick.fn = on_kick;
		bq->kick.armed = false;
		bq->stopping = &t->stopping;
		bq->thread = t;
		ret = aio_watch(&t->aio, &bq->kick);
	}
	if (!ret) {
		ret = -pthread_create(&t->thr, NULL, blk_thread_fn, t);
		t->running = !ret;
	}
	return ret;
}

/* --- virtio ops ------------------------------------------------------------------------ */

static void blk_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct blk_dev *b = d->priv;

	if (off < sizeof(b->cfg) && len <= sizeof(b->cfg) - off)
		memcpy(buf, (uint8_t *)&b->cfg + off, len);
	else
		memset(buf, 0, len);
}

static int blk_start(struct virtio_dev *d)
{
	struct blk_dev *b = d->priv;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < b->nq; i++) {
		struct blk_vq *bq = &b->vqs[i];

		bq->dead = false;
		bq->throttled = false;
		bq->inflight = 0;
		bq->need_signal = false;
		memset(bq->busy, 0, bq->q->size_max);
	}
	for (i = 0; !ret && i < b->nt; i++)
		ret = start_thread(b, &b->threads[i]);
	if (ret) {
		pr_err("%s: cannot start its I/O threads: %s", b->name, strerror(-ret));
		stop_threads(b);
	}
	return ret;
}

static void blk_stop(struct virtio_dev *d)
{
	stop_threads(d->priv);
}

/*
 * Beyond the core's state (features, status, ring indices) a virtio-blk has
 * none of its own once quiesced (stop answers every in-flight request first):
 * record what the guest saw, so a restore onto another disk is refused.
 */
static int blk_save(struct virtio_dev *d, void *fdt, int node)
{
	struct blk_dev *b = d->priv;

	return fdt_setprop_u64(fdt, node, "capacity", b->cfg.capacity) ?:
	       fdt_setprop_u32(fdt, node, "num-queues", b->nq) ?:
	       fdt_setprop(fdt, node, "serial", b->serial, sizeof(b->serial)) ?:
	       fdt_setprop_u32(fdt, node, "readonly", b->be->readonly);
}

static int blk_load(struct virtio_dev *d, const void *fdt, int node)
{
	struct blk_dev *b = d->priv;
	const void *cap, *nq, *ser, *ro;
	int l1, l2, l3, l4;

	cap = fdt_getprop(fdt, node, "capacity", &l1);
	nq = fdt_getprop(fdt, node, "num-queues", &l2);
	ser = fdt_getprop(fdt, node, "serial", &l3);
	ro = fdt_getprop(fdt, node, "readonly", &l4);
	if (!cap || l1 != 8 || !nq || l2 != 4 || !ser || l3 != sizeof(b->serial) || !ro || l4 != 4)
		return -EINVAL;
	if (fdt64_ld(cap) != b->cfg.capacity || fdt32_ld(nq) != b->nq ||
	    memcmp(ser, b->serial, sizeof(b->serial)) || fdt32_ld(ro) != b->be->readonly)
		return -ESTALE;
	return 0;
}

static const struct virtio_dev_ops blk_ops = {
	.config_read = blk_config_read,
	.start = blk_start,
	.stop = blk_stop,
	.save = blk_save,
	.load = blk_load,
};

/* --- creation -------------------------------------------------------------------------- */

static void fill_config(struct blk_dev *b, uint64_t *features)
{
	struct virtio_blk_config *c = &b->cfg;
	struct blk_backend *be = b->be;

	c->capacity = be->size / SECTOR;
	c->size_max = SIZE_MAX_SEG;
	c->seg_max = BLK_SEG_MAX;
	c->blk_size = be->block_size ? be->block_size : SECTOR;
	c->num_queues = b->nq;
	*features = (1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |
		    (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
		    (1ULL << VIRTIO_BLK_F_MQ);
	if (be->opt_io_size >= c->blk_size) {
		c->min_io_size = 1;
		c->opt_io_size = be->opt_io_size / c->blk_size;
		*features |= 1ULL << VIRTIO_BLK_F_TOPOLOGY;
	}
	if (be->readonly)
		*features |= 1ULL << VIRTIO_BLK_F_RO;
	if (be->can_discard && !be->readonly) {
		c->max_discard_sectors = MAX_DISCARD;
		c->max_discard_seg = 1;
		c->discard_sector_alignment = c->blk_size / SECTOR;
		*features |= 1ULL << VIRTIO_BLK_F_DISCARD;
	}
	if (be->can_write_zeroes && !be->readonly) {
		c->max_write_zeroes_sectors = MAX_DISCARD;
		c->max_write_zeroes_seg = 1;
		c->write_zeroes_may_unmap = be->can_discard;
		*features |= 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	}
}

int blk_dev_create(struct blk_dev **out, struct blk_backend *be, const struct guest_mem *mem,
		   const struct blk_dev_opts *o)
{
	struct blk_dev *b;
	uint64_t features;
	unsigned int i;
	int ret;

	if (!o->queues || o->queues > VIRTIO_MAX_QUEUES || !o->threads || o->threads > o->queues)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->be = be;
	b->nq = o->queues;
	b->nt = o->threads;
	b->poll_us = o->poll_us;
	b->limited = rl_config_limited(o->rl);
	if (b->limited)
		rl_init(&b->rl, o->rl, now_ns());
	snprintf(b->name, sizeof(b->name), "%s", o->name ? o->name : "vd");
	if (o->serial)
		memcpy(b->serial, o->serial, MIN(strlen(o->serial), sizeof(b->serial)));
	fill_config(b, &features);
	ret = virtio_dev_init(&b->vdev, b->name, VIRTIO_ID_BLOCK, &blk_ops, b, mem, b->nq,
			      BLK_QUEUE_SIZE, features, sizeof(b->cfg));
	if (ret)
		goto fail;
	b->vdev.pci_class = PCI_CLASS_SCSI;
	b->vqs = calloc(b->nq, sizeof(*b->vqs));
	b->threads = calloc(b->nt, sizeof(*b->threads));
	if (!b->vqs || !b->threads) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < b->nq; i++) {
		b->vqs[i].dev = b;
		b->vqs[i].q = &b->vdev.q[i];
		/* calloc'd pages stay untouched (not resident) until a head uses them. */
		b->vqs[i].ios = calloc(BLK_QUEUE_SIZE, sizeof(struct blk_io));
		b->vqs[i].busy = calloc(BLK_QUEUE_SIZE, 1);
		if (!b->vqs[i].ios || !b->vqs[i].busy) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	for (i = 0; i < b->nt; i++) {
		b->threads[i].dev = b;
		b->threads[i].id = i;
		b->threads[i].stop.fd = -1;
		b->threads[i].timer.fd = -1;
		b->threads[i].cpu = o->thread_cpu ? o->thread_cpu[i] : -1;
	}
	*out = b;
	return 0;
fail:
	b->be = NULL; /* still the caller's */
	blk_dev_destroy(b);
	return ret;
}

struct virtio_dev *blk_dev_virtio(struct blk_dev *b)
{
	return &b->vdev;
}

struct blk_backend *blk_dev_backend(struct blk_dev *b)
{
	return b->be;
}

struct blk_backend *blk_dev_swap_backend(struct blk_dev *b, struct blk_backend *be)
{
	struct blk_backend *old = b->be;

	/* The threads attach the backend when they start: none runs now. */
	b->be = be;
	return old;
}

void blk_dev_get_stats(struct blk_dev *b, struct blk_dev_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < b->nq; i++) {
		st->requests += atomic_load(&b->vqs[i].requests);
		st->errors += atomic_load(&b->vqs[i].errors);
		st->bad_chains += atomic_load(&b->vqs[i].bad_chains);
		st->kicks += atomic_load(&b->vqs[i].kicks);
		st->polled += atomic_load(&b->vqs[i].polled);
		st->irqs += atomic_load(&b->vqs[i].irqs);
	}
	st->flushes = __atomic_load_n(&b->be->flushes, __ATOMIC_RELAXED);
}

void blk_dev_destroy(struct blk_dev *b)
{
	unsigned int i;

	if (!b)
		return;
	virtio_dev_exit(&b->vdev);
	if (b->vqs)
		for (i = 0; i < b->nq; i++) {
			free(b->vqs[i].ios);
			free(b->vqs[i].busy);
		}
	free(b->vqs);
	free(b->threads);
	if (b->limited)
		rl_destroy(&b->rl);
	if (b->be)
		blk_close(b->be);
	free(b);
}
