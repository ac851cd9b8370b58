// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-fs: chains from the rings to the in-process FUSE server, one I/O thread per queue. */
#include <errno.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "block/aio.h"
#include "fs/dax.h"
#include "fs/fuse_server.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox/sandbox.h"
#include "util.h"
#include "virtio/fs.h"
#include "virtio/virtio.h"

#define PCI_CLASS_STORAGE_OTHER 0x018000 /* what QEMU's vhost-user-fs-pci reports */
/* The Linux driver sends at most queue size - 4 pages of data plus its headers. */
#define MAX_IOV		 (FS_QUEUE_SIZE + 8)
#define AIO_RING_ENTRIES 8 /* kicks, the stop eventfd and a timer: requests are synchronous */

/* The spec's layout; <linux/virtio_fs.h> of Linux 6.1 lacks notify_buf_size. */
struct fs_config {
	uint8_t tag[FS_TAG_MAX];
	uint32_t num_request_queues; /* le32 (x86 only) */
	uint32_t notify_buf_size;    /* no notification queue: 0 */
} __attribute__((packed));

struct fs_thread;

struct fs_vq {
	struct fs_dev *dev;
	struct virtio_queue *q;
	struct aio_handler kick;
	bool need_signal;
	bool dead;		     /* the driver broke the ring: ignore until reset */
	bool throttled;		     /* waiting for the rate limit: the ring is left alone */
	const atomic_bool *stopping; /* its I/O thread's; NULL: served by fs_dev_process */
	struct fs_thread *thread;    /* whose timer ends a wait for the rate limit */
	atomic_uint_fast64_t requests, bad_chains, kicks, irqs;
};

struct fs_thread {
	struct fs_dev *dev;
	unsigned int id;
	pthread_t thr;
	struct aio_ctx aio;
	struct aio_handler stop;
	struct aio_handler timer; /* timerfd: a throttled queue may go on */
	uint64_t timer_at;	  /* when it fires (CLOCK_MONOTONIC ns); 0: disarmed */
	atomic_bool stopping;
	int cpu;
	bool running;
	struct iovec iov[MAX_IOV];
};

struct fs_dev {
	struct virtio_dev vdev;
	struct fs_config cfg;
	char name[16];
	struct fuse_server *srv;
	struct dax_window *win;
	unsigned int nq;     /* 1 + request queues */
	unsigned int nt;     /* one per request queue */
	bool limited;	     /* iops or bandwidth set: rl is in use */
	struct ratelimit rl; /* shared by its request queues (not hiprio: FORGETs only) */
	struct fs_vq *vqs;
	struct fs_thread *threads;
	struct iovec *scratch; /* fs_dev_process()'s */
};

/* Each queue's counters have one writer, its thread. */
static inline void stat_inc(atomic_uint_fast64_t *c)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Queue 0 (hiprio) and queue 1 go to thread 0, queue i to thread i - 1. */
static unsigned int thread_of(const struct fs_dev *f, unsigned int qi)
{
	return qi ? (qi - 1) % f->nt : 0;
}

/* --- requests -------------------------------------------------------------------------- */

static void handle(struct fs_vq *fq, const struct vq_elem *e)
{
	struct fs_dev *f = fq->dev;
	ssize_t n;

	n = fuse_server_handle(f->srv, e->iov, e->out_num, e->iov + e->out_num, e->in_num);
	/* Whatever size this reply reports must be backed by the file in the window. */
	if (f->win)
		dax_window_refresh(f->win);
	if (n < 0 || (uint64_t)n > e->in_len) {
		stat_inc(&fq->bad_chains);
		n = 0;
	}
	vq_push(&fq->q->vq, e->head, (uint32_t)n);
	fq->need_signal = true;
}

static bool stop_requested(const struct fs_vq *fq)
{
	return fq->stopping && atomic_load_explicit(fq->stopping, memory_order_relaxed);
}

/* Fire @t's timer at @at_ns at the latest. */
static void arm_timer(struct fs_thread *t, uint64_t at_ns)
{
	int ret = rl_timer_arm(t->timer.fd, &t->timer_at, at_ns);

	if (ret)
		pr_err("%s: timerfd: %s", t->dev->name, strerror(-ret));
}

/*
 * The share's rate limit before a request is taken: true when it must wait.
 * The ring is left alone (notifications off) until the thread's timer fires.
 */
static bool must_wait(struct fs_vq *fq)
{
	uint64_t now = now_ns(), w = rl_wait(&fq->dev->rl, now);

	if (!w)
		return false;
	fq->throttled = true;
	if (fq->thread)
		arm_timer(fq->thread, now + w);
	return true;
}

/* Serve what the ring offers, at most @budget chains; returns the number taken. */
static unsigned int drain_ring(struct fs_vq *fq, struct iovec *iov, unsigned int budget)
{
	struct vq_elem e = { .iov = iov, .max = MAX_IOV };
	struct virtqueue *vq = &fq->q->vq;
	/* The hiprio queue carries FORGETs: no reply, no data, and they free host state. */
	bool limited = fq->dev->limited && fq != &fq->dev->vqs[0];
	unsigned int taken = 0;
	int ret;

	fq->throttled = false;
	while (taken < budget && !stop_requested(fq)) {
		if (limited && vq_has_avail(vq) && must_wait(fq))
			break;
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			fq->dead = true;
			virtio_needs_reset(&fq->dev->vdev, "corrupt available ring");
			break;
		}
		taken++;
		stat_inc(&fq->requests);
		/* Bad chains count as operations too; a good one costs its payload. */
		if (limited)
			rl_charge(&fq->dev->rl, 1,
				  ret == VQ_BAD_CHAIN ? 0 : (uint64_t)e.out_len + e.in_len);
		if (ret == VQ_BAD_CHAIN) {
			stat_inc(&fq->bad_chains);
			vq_push(vq, e.head, 0);
			fq->need_signal = true;
			continue;
		}
		handle(fq, &e);
	}
	return taken;
}

/*
 * One pass for a kick: at most a ring's worth of chains, then the thread kicks
 * itself and goes back to its event loop, where a stop request is seen. A guest
 * that refills the ring as fast as it is served cannot keep it here.
 */
static unsigned int serve(struct fs_vq *fq, struct iovec *iov)
{
	struct virtqueue *vq = &fq->q->vq;
	unsigned int n = 0, budget = vq->size;

	if (fq->dead || vq->broken || !fq->q->enabled)
		return 0;
	/* No kicks while we look anyway; re-check after re-enabling (virtio 1.2, 2.7.10). */
	do {
		vq_enable_notify(vq, false);
		n += drain_ring(fq, iov, budget - n);
		if (n >= budget) {
			virtio_queue_kick(fq->q);
			break;
		}
		/* Whoever stops us restarts with a look at every ring (or resets it). */
		if (stop_requested(fq))
			break;
		/* Kicks stay off: the timer brings us back (re-enabling would loop here). */
		if (fq->throttled)
			break;
	} while (!fq->dead && vq_enable_notify(vq, true));
	if (fq->need_signal) {
		fq->need_signal = false;
		if (virtio_queue_signal(fq->q))
			stat_inc(&fq->irqs);
	}
	return n;
}

unsigned int fs_dev_process(struct fs_dev *f, unsigned int qi)
{
	return qi < f->nq ? serve(&f->vqs[qi], f->scratch) : 0;
}

/* --- I/O threads ----------------------------------------------------------------------- */

static void on_kick(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct fs_vq *fq = container_of(h, struct fs_vq, kick);
	struct fs_thread *t = container_of(ctx, struct fs_thread, aio);
	uint64_t v;

	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: kick read: %s", fq->dev->name, strerror(errno));
	stat_inc(&fq->kicks);
	serve(fq, t->iov);
}

/* The rate limit's wait is over: serve the queues that waited for it. */
static void on_timer(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct fs_thread *t = container_of(h, struct fs_thread, timer);
	struct fs_dev *f = t->dev;
	unsigned int i;
	uint64_t v;

	(void)ctx;
	if (read(h->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("%s: timerfd read: %s", f->name, strerror(errno));
	t->timer_at = 0;
	for (i = 0; i < f->nq; i++)
		if (thread_of(f, i) == t->id && f->vqs[i].throttled)
			serve(&f->vqs[i], t->iov);
}

static void on_stop(struct aio_ctx *ctx, struct aio_handler *h)
{
	uint64_t v;

	(void)ctx;
	if (read(h->fd, &v, sizeof(v)) < 0)
		(void)0;
}

static void *fs_thread_fn(void *arg)
{
	struct fs_thread *t = arg;
	char name[32];

	snprintf(name, sizeof(name), "%s-io%u", t->dev->name, t->id);
	name[15] = 0; /* the kernel's limit */
	pthread_setname_np(pthread_self(), name);
	if (t->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warn("%s: cannot pin to CPU %d", name, t->cpu);
	}
	sandbox_thread_enter(SANDBOX_FS_IO);
	/* Requests complete before on_kick returns: stopping leaves nothing in flight. */
	while (!atomic_load(&t->stopping)) {
		int ret = aio_run_once(&t->aio, -1);

		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			pr_err("%s: io_uring: %s", name, strerror(-ret));
			break;
		}
	}
	return NULL;
}

static void stop_threads(struct fs_dev *f)
{
	uint64_t one = 1;
	unsigned int i;

	for (i = 0; i < f->nt; i++) {
		struct fs_thread *t = &f->threads[i];

		if (!t->running)
			continue;
		atomic_store(&t->stopping, true);
		if (write(t->stop.fd, &one, sizeof(one)) < 0)
			pr_debug("stop eventfd: %s", strerror(errno));
		pthread_join(t->thr, NULL);
		t->running = false;
	}
	for (i = 0; i < f->nt; i++) {
		struct fs_thread *t = &f->threads[i];

		if (t->stop.fd < 0)
			continue;
		aio_exit(&t->aio);
		close(t->stop.fd);
		t->stop.fd = -1;
		if (t->timer.fd >= 0)
			close(t->timer.fd);
		t->timer.fd = -1;
	}
}

static int start_thread(struct fs_dev *f, struct fs_thread *t)
{
	unsigned int i;
	int ret;

	atomic_store(&t->stopping, false);
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
	t->stop.armed = false;
	t->stop.cancel = false;
	ret = aio_watch(&t->aio, &t->stop);
	t->timer_at = 0;
	if (!ret && f->limited) {
		t->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		t->timer.fn = on_timer;
		t->timer.armed = false;
		t->timer.cancel = false;
		ret = t->timer.fd < 0 ? -errno : aio_watch(&t->aio, &t->timer);
	}
	for (i = 0; !ret && i < f->nq; i++) {
		struct fs_vq *fq = &f->vqs[i];

		if (thread_of(f, i) != t->id)
			continue;
		fq->kick.fd = fq->q->kick_fd;
		fq->kick.fn = on_kick;
		fq->kick.armed = false;
		fq->kick.cancel = false;
		fq->stopping = &t->stopping;
		fq->thread = t;
		ret = aio_watch(&t->aio, &fq->kick);
	}
	if (!ret) {
		ret = -pthread_create(&t->thr, NULL, fs_thread_fn, t);
		t->running = !ret;
	}
	return ret;
}

/* --- virtio ops ------------------------------------------------------------------------ */

static void fs_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct fs_dev *f = d->priv;

	if (off < sizeof(f->cfg) && len <= sizeof(f->cfg) - off)
		memcpy(buf, (uint8_t *)&f->cfg + off, len);
	else
		memset(buf, 0, len);
}

static int fs_start(struct virtio_dev *d)
{
	struct fs_dev *f = d->priv;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < f->nq; i++) {
		f->vqs[i].dead = false;
		f->vqs[i].throttled = false;
		f->vqs[i].need_signal = false;
	}
	for (i = 0; !ret && i < f->nt; i++)
		ret = start_thread(f, &f->threads[i]);
	if (ret) {
		pr_err("%s: cannot start its I/O threads: %s", f->name, strerror(-ret));
		stop_threads(f);
	}
	return ret;
}

/* Reset: the driver forgot every inode, handle and mapping it had. */
static void fs_stop(struct virtio_dev *d)
{
	struct fs_dev *f = d->priv;

	stop_threads(f);
	fuse_server_reset(f->srv);
	if (f->win)
		dax_window_clear(f->win);
}

/* Pause: the guest's session, inodes, handles and mappings stay for the resume. */
static void fs_pause(struct virtio_dev *d)
{
	stop_threads(d->priv);
}

/* The FUSE server's inodes and open files are host state a snapshot cannot carry. */
static int fs_save(struct virtio_dev *d, void *fdt, int node)
{
	(void)fdt;
	(void)node;
	pr_err("%s: a VM with a virtio-fs share cannot be snapshotted", d->name);
	return -EOPNOTSUPP;
}

static const struct virtio_dev_ops fs_ops = {
	.config_read = fs_config_read,
	.start = fs_start,
	.stop = fs_stop,
	.pause = fs_pause,
	.save = fs_save,
};

/* --- creation -------------------------------------------------------------------------- */

int fs_dev_create(struct fs_dev **out, struct fuse_server *srv, struct dax_window *win,
		  const struct guest_mem *mem, const struct fs_dev_opts *o)
{
	size_t tlen = o->tag ? strlen(o->tag) : 0;
	struct fs_dev *f;
	unsigned int i;
	int ret;

	if (!srv || !tlen || tlen > FS_TAG_MAX || !o->queues || o->queues >= VIRTIO_MAX_QUEUES)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->srv = srv;
	f->win = win;
	f->nq = o->queues + 1;
	f->nt = o->queues;
	f->limited = rl_config_limited(o->rl);
	if (f->limited)
		rl_init(&f->rl, o->rl, now_ns());
	snprintf(f->name, sizeof(f->name), "%s", o->name ? o->name : "fs");
	memcpy(f->cfg.tag, o->tag, tlen);
	f->cfg.num_request_queues = o->queues;
	ret = virtio_dev_init(&f->vdev, f->name, VIRTIO_ID_FS, &fs_ops, f, mem, f->nq,
			      FS_QUEUE_SIZE, 0, sizeof(f->cfg));
	if (ret)
		goto fail;
	f->vdev.pci_class = PCI_CLASS_STORAGE_OTHER;
	if (win) {
		ret = virtio_dev_add_shm(&f->vdev, VIRTIO_FS_SHMCAP_ID_CACHE, dax_window_hva(win),
					 dax_window_size(win));
		if (ret)
			goto fail;
	}
	f->vqs = calloc(f->nq, sizeof(*f->vqs));
	f->threads = calloc(f->nt, sizeof(*f->threads));
	f->scratch = calloc(MAX_IOV, sizeof(*f->scratch));
	if (!f->vqs || !f->threads || !f->scratch) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < f->nq; i++) {
		f->vqs[i].dev = f;
		f->vqs[i].q = &f->vdev.q[i];
	}
	for (i = 0; i < f->nt; i++) {
		f->threads[i].dev = f;
		f->threads[i].id = i;
		f->threads[i].stop.fd = -1;
		f->threads[i].timer.fd = -1;
		f->threads[i].cpu = o->thread_cpu ? o->thread_cpu[i] : -1;
	}
	*out = f;
	return 0;
fail:
	fs_dev_destroy(f);
	return ret;
}

struct virtio_dev *fs_dev_virtio(struct fs_dev *f)
{
	return &f->vdev;
}

void fs_dev_get_stats(struct fs_dev *f, struct fs_dev_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < f->nq; i++) {
		st->requests += atomic_load(&f->vqs[i].requests);
		st->bad_chains += atomic_load(&f->vqs[i].bad_chains);
		st->kicks += atomic_load(&f->vqs[i].kicks);
		st->irqs += atomic_load(&f->vqs[i].irqs);
	}
}

void fs_dev_destroy(struct fs_dev *f)
{
	if (!f)
		return;
	virtio_dev_exit(&f->vdev);
	free(f->vqs);
	free(f->threads);
	free(f->scratch);
	if (f->limited)
		rl_destroy(&f->rl);
	free(f);
}
