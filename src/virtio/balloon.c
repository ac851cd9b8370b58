// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-balloon: inflate/deflate, statistics and free page reporting on one I/O thread. */
#include <endian.h>
#include <errno.h>
#include <linux/virtio_ids.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "iov.h"
#include "log.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/balloon.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"

#define PCI_CLASS_OTHER 0xff0000 /* what QEMU's virtio-balloon-pci reports */
#define MAX_IOV		(BALLOON_QUEUE_SIZE + 8)
/* Linux sends at most 256 PFNs a buffer; more than this in one chain is not a driver. */
#define MAX_PFNS_PER_CHAIN 65536u
#define MAX_STATS	   64u /* entries read from one statistics buffer */

enum balloon_role { R_INFLATE, R_DEFLATE, R_STATS, R_REPORTING, R_NONE };

struct balloon_vq {
	struct vio_queue vio;
	struct virtio_balloon *dev;
};

struct virtio_balloon {
	struct virtio_dev vdev;
	char name[16];
	struct virtio_balloon_opts o;
	unsigned int nq;
	struct balloon_vq *vqs;
	struct vio_engine engine;
	struct iovec iov[MAX_IOV]; /* one chain at a time: one thread serves every queue */

	pthread_mutex_t lock; /* config and info: vCPU, API and I/O threads */
	struct virtio_balloon_config cfg;
	struct virtio_balloon_info info;
	/* The statistics buffer the driver left with us (I/O thread only), and whether the
	 * host wants it back filled anew. */
	bool stats_held;
	uint16_t stats_head;
	atomic_bool stats_wanted;
};

/* Queue @qi's job, by the features the driver accepted (the spec numbers only the
 * queues that exist: without statistics, reporting is queue 2). */
static enum balloon_role role_of(struct virtio_balloon *b, unsigned int qi)
{
	bool stats = virtio_negotiated(&b->vdev, VIRTIO_BALLOON_F_STATS_VQ);
	bool rep = virtio_negotiated(&b->vdev, VIRTIO_BALLOON_F_REPORTING);

	if (qi == 0)
		return R_INFLATE;
	if (qi == 1)
		return R_DEFLATE;
	if (qi == 2 && stats)
		return R_STATS;
	if (rep && qi == (stats ? 3u : 2u))
		return R_REPORTING;
	return R_NONE;
}

static int discard(struct virtio_balloon *b, void *hva, size_t len)
{
	if (b->o.discard)
		return b->o.discard(b->o.ctx, hva, len);
	return madvise(hva, len, MADV_DONTNEED) ? -errno : 0;
}

/* A run of host-contiguous pages to give back. */
struct run {
	uint8_t *hva;
	size_t len;
};

static void run_flush(struct virtio_balloon *b, struct run *r, uint64_t *done)
{
	int ret;

	if (!r->len)
		return;
	ret = discard(b, r->hva, r->len);
	if (ret)
		pr_debug("%s: discard %zu bytes: %s", b->name, r->len, strerror(-ret));
	else
		*done += r->len;
	r->len = 0;
}

/* Inflate (give back) or deflate: the chain's readable part is an array of le32 PFNs. */
static bool handle_pfns(struct virtio_balloon *b, const struct vq_elem *e, bool inflate)
{
	uint64_t n = e->out_len / sizeof(uint32_t), pages = 0, bad = 0, done = 0;
	struct run r = { 0 };
	uint32_t pfns[256];

	if (e->out_len % sizeof(uint32_t) || n > MAX_PFNS_PER_CHAIN)
		return false;
	for (uint64_t i = 0; i < n;) {
		unsigned int k = n - i < 256 ? (unsigned int)(n - i) : 256;

		iov_to_buf(e->iov, e->out_num, i * sizeof(uint32_t), pfns, k * sizeof(uint32_t));
		for (unsigned int j = 0; j < k; j++) {
			uint64_t gpa = (uint64_t)le32toh(pfns[j]) << VIRTIO_BALLOON_PFN_SHIFT;
			uint8_t *hva = gpa_to_hva(b->vdev.mem, gpa, BALLOON_PAGE);

			if (!hva) {
				bad++;
				continue;
			}
			pages++;
			if (!inflate)
				continue; /* the guest's next touch brings a page back */
			if (r.len && hva == r.hva + r.len) {
				r.len += BALLOON_PAGE;
				continue;
			}
			run_flush(b, &r, &done);
			r = (struct run){ .hva = hva, .len = BALLOON_PAGE };
		}
		i += k;
	}
	run_flush(b, &r, &done);
	pthread_mutex_lock(&b->lock);
	if (inflate)
		b->info.inflated += pages;
	else
		b->info.deflated += pages;
	b->info.discarded_bytes += done;
	b->info.bad_pages += bad;
	pthread_mutex_unlock(&b->lock);
	return true;
}

/* Free page reporting: each writable buffer is a range of free guest memory. */
static bool handle_report(struct virtio_balloon *b, const struct vq_elem *e)
{
	uint64_t bytes = 0, done = 0;

	for (unsigned int i = e->out_num; i < e->out_num + e->in_num; i++) {
		uintptr_t s = (uintptr_t)e->iov[i].iov_base, end = s + e->iov[i].iov_len;
		struct run r;

		/* Whole pages only: vq_pop already checked the range is guest RAM. */
		s = ALIGN_UP(s, BALLOON_PAGE);
		end &= ~(uintptr_t)(BALLOON_PAGE - 1);
		if (end <= s)
			continue;
		r = (struct run){ .hva = (uint8_t *)s, .len = end - s };
		bytes += r.len;
		run_flush(b, &r, &done);
	}
	pthread_mutex_lock(&b->lock);
	b->info.reported_bytes += bytes;
	b->info.discarded_bytes += done;
	pthread_mutex_unlock(&b->lock);
	return true;
}

static void count_bad_chain(struct virtio_balloon *b)
{
	pthread_mutex_lock(&b->lock);
	b->info.bad_chains++;
	pthread_mutex_unlock(&b->lock);
}

/* A statistics buffer: packed { le16 tag; le64 val } entries. */
static void parse_stats(struct virtio_balloon *b, const struct vq_elem *e)
{
	uint8_t ent[10];
	uint64_t n = e->out_len / sizeof(ent);

	if (n > MAX_STATS)
		n = MAX_STATS;
	pthread_mutex_lock(&b->lock);
	for (uint64_t i = 0; i < n; i++) {
		uint16_t tag;
		uint64_t val;

		iov_to_buf(e->iov, e->out_num, i * sizeof(ent), ent, sizeof(ent));
		memcpy(&tag, ent, sizeof(tag));
		memcpy(&val, ent + 2, sizeof(val));
		tag = le16toh(tag);
		if (tag >= VIRTIO_BALLOON_S_NR)
			continue; /* a newer driver's: not ours to show */
		b->info.stat[tag] = le64toh(val);
		b->info.stat_valid[tag] = true;
	}
	b->info.have_stats = true;
	b->info.stats_updates++;
	pthread_mutex_unlock(&b->lock);
}

/*
 * The statistics queue: the driver leaves one buffer with us; we keep it until the
 * host wants fresh figures, then hand it back (the driver refills and returns it).
 */
static unsigned int drain_stats(struct virtio_balloon *b, struct vio_queue *v)
{
	struct vq_elem e = { .iov = b->iov, .max = MAX_IOV };
	struct virtqueue *vq = &v->q->vq;
	unsigned int taken = 0;
	int ret;

	if (b->stats_held && atomic_exchange(&b->stats_wanted, false)) {
		vq_push(vq, b->stats_head, 0);
		b->stats_held = false;
		v->need_signal = true;
	}
	/* One buffer at a time: a second one the driver should not have sent is returned. */
	while (!vio_stop_requested(v)) {
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			v->dead = true;
			virtio_needs_reset(&b->vdev, "corrupt statistics ring");
			break;
		}
		taken++;
		if (ret == VQ_BAD_CHAIN || b->stats_held) {
			count_bad_chain(b);
			vq_push(vq, e.head, 0);
			v->need_signal = true;
			continue;
		}
		parse_stats(b, &e);
		b->stats_held = true;
		b->stats_head = e.head;
	}
	return taken;
}

static unsigned int drain_ring(struct vio_queue *v, struct aio_ctx *ctx, unsigned int budget)
{
	struct balloon_vq *bq = container_of(v, struct balloon_vq, vio);
	struct virtio_balloon *b = bq->dev;
	enum balloon_role role = role_of(b, (unsigned int)(bq - b->vqs));
	struct vq_elem e = { .iov = b->iov, .max = MAX_IOV };
	struct virtqueue *vq = &v->q->vq;
	unsigned int taken = 0;
	bool ok;
	int ret;

	(void)ctx; /* requests are answered before drain returns */
	if (role == R_STATS)
		return drain_stats(b, v);
	while (taken < budget && !vio_stop_requested(v)) {
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			v->dead = true;
			virtio_needs_reset(&b->vdev, "corrupt available ring");
			break;
		}
		taken++;
		ok = ret == VQ_OK;
		if (ok && role == R_REPORTING)
			ok = handle_report(b, &e);
		else if (ok && (role == R_INFLATE || role == R_DEFLATE))
			ok = handle_pfns(b, &e, role == R_INFLATE);
		else
			ok = false; /* a queue the driver did not negotiate */
		if (!ok)
			count_bad_chain(b);
		vq_push(vq, e.head, 0);
		v->need_signal = true;
	}
	return taken;
}

static const struct vio_engine_ops balloon_engine_ops = { .drain = drain_ring };

/* --- virtio ops ------------------------------------------------------------------------ */

static void balloon_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct virtio_balloon *b = d->priv;

	pthread_mutex_lock(&b->lock);
	if (off < sizeof(b->cfg) && len <= sizeof(b->cfg) - off)
		memcpy(buf, (uint8_t *)&b->cfg + off, len);
	else
		memset(buf, 0, len);
	pthread_mutex_unlock(&b->lock);
}

/* The driver writes only actual (how many pages its balloon holds). */
static void balloon_config_write(struct virtio_dev *d, unsigned int off, const void *buf,
				 unsigned int len)
{
	struct virtio_balloon *b = d->priv;
	uint32_t v, target;
	bool changed;

	if (off != offsetof(struct virtio_balloon_config, actual) || len != sizeof(v))
		return;
	memcpy(&v, buf, sizeof(v));
	pthread_mutex_lock(&b->lock);
	changed = b->cfg.actual != v;
	b->cfg.actual = v;
	b->info.actual = le32toh(v);
	target = b->info.target;
	pthread_mutex_unlock(&b->lock);
	if (changed && b->o.actual_changed)
		b->o.actual_changed(b->o.ctx, target, le32toh(v));
}

static int balloon_start(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;

	/* (A resume keeps the statistics buffer it held; a reset dropped it in stop.) */
	return vio_engine_start(&b->engine);
}

/* Reset: the driver's balloon is empty again and its statistics buffer is gone. */
static void balloon_stop(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;

	vio_engine_stop(&b->engine);
	b->stats_held = false;
	pthread_mutex_lock(&b->lock);
	b->cfg.actual = 0;
	b->info.actual = 0;
	pthread_mutex_unlock(&b->lock);
}

/* A pause keeps the statistics buffer the driver left with us. */
static void balloon_pause(struct virtio_dev *d)
{
	struct virtio_balloon *b = d->priv;

	vio_engine_stop(&b->engine);
}

/*
 * Snapshot: the target, what the driver holds, and the statistics buffer it left
 * with us (without it the driver would never send statistics again). The pages in
 * the balloon are nobody's data: the snapshot's zero pages.
 */
static int balloon_save(struct virtio_dev *d, void *fdt, int node)
{
	struct virtio_balloon *b = d->priv;
	int ret;

	pthread_mutex_lock(&b->lock);
	ret = st_put_u32(fdt, node, "num-pages", le32toh(b->cfg.num_pages));
	if (!ret)
		ret = st_put_u32(fdt, node, "actual", le32toh(b->cfg.actual));
	pthread_mutex_unlock(&b->lock);
	if (!ret)
		ret = st_put_u32(fdt, node, "stats-head",
				 b->stats_held ? b->stats_head : 0xffffffffu);
	return ret;
}

static int balloon_load(struct virtio_dev *d, const void *fdt, int node)
{
	struct virtio_balloon *b = d->priv;
	uint32_t target, actual, head;

	if (st_get_u32(fdt, node, "num-pages", &target) ||
	    st_get_u32(fdt, node, "actual", &actual) || st_get_u32(fdt, node, "stats-head", &head))
		return -EINVAL;
	if (head != 0xffffffffu && (head >= BALLOON_QUEUE_SIZE || !b->o.stats))
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	b->cfg.num_pages = htole32(target);
	b->cfg.actual = htole32(actual);
	b->info.target = target;
	b->info.actual = actual;
	pthread_mutex_unlock(&b->lock);
	b->stats_held = head != 0xffffffffu;
	b->stats_head = (uint16_t)head;
	return 0;
}

static const struct virtio_dev_ops balloon_ops = {
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.start = balloon_start,
	.stop = balloon_stop,
	.pause = balloon_pause,
	.save = balloon_save,
	.load = balloon_load,
};

/* --- the host's side ------------------------------------------------------------------- */

void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	struct virtio_dev *d = &b->vdev;

	pthread_mutex_lock(&b->lock);
	b->cfg.num_pages = htole32(pages);
	b->info.target = pages;
	pthread_mutex_unlock(&b->lock);
	atomic_fetch_add(&d->config_gen, 1);
	if (d->tops && d->tops->notify_config)
		d->tops->notify_config(d);
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
	unsigned int qi = 2;

	if (!b->o.stats || qi >= b->nq)
		return;
	atomic_store(&b->stats_wanted, true);
	/* Its thread comes back to the queue and hands the buffer over. */
	virtio_queue_kick(&b->vdev.q[qi]);
}

void virtio_balloon_info(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->info;
	pthread_mutex_unlock(&b->lock);
	out->deflate_on_oom = virtio_negotiated(&b->vdev, VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
}

unsigned int virtio_balloon_process(struct virtio_balloon *b, unsigned int qi)
{
	return vio_process(&b->engine, qi, NULL);
}

struct virtio_dev *virtio_balloon_virtio(struct virtio_balloon *b)
{
	return &b->vdev;
}

int virtio_balloon_create(struct virtio_balloon **out, const struct guest_mem *mem,
			  const struct virtio_balloon_opts *o)
{
	struct vio_engine_opts eo;
	struct virtio_balloon *b;
	uint64_t features = 0;
	int ret;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	b->o = *o;
	snprintf(b->name, sizeof(b->name), "%s", o->name ? o->name : "balloon");
	b->o.name = b->name;
	b->nq = 2 + o->stats + o->reporting;
	if (o->stats)
		features |= 1ull << VIRTIO_BALLOON_F_STATS_VQ;
	if (o->deflate_on_oom)
		features |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (o->reporting)
		features |= 1ull << VIRTIO_BALLOON_F_REPORTING;
	b->vqs = calloc(b->nq, sizeof(*b->vqs));
	if (!b->vqs) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = virtio_dev_init(&b->vdev, b->name, VIRTIO_ID_BALLOON, &balloon_ops, b, mem, b->nq,
			      BALLOON_QUEUE_SIZE, features, sizeof(b->cfg));
	if (ret)
		goto fail;
	b->vdev.pci_class = PCI_CLASS_OTHER;
	for (unsigned int i = 0; i < b->nq; i++)
		b->vqs[i].dev = b;
	eo = (struct vio_engine_opts){
		.name = b->name,
		.threads = 1, /* serves every queue */
		.thread_cpu = b->o.thread_cpu >= 0 ? &b->o.thread_cpu : NULL,
		.ring_entries = 16,
		.role = SANDBOX_BALLOON_IO,
	};
	ret = vio_engine_init(&b->engine, &balloon_engine_ops, b, &b->vqs[0].vio, sizeof(b->vqs[0]),
			      b->vdev.q, b->nq, &eo);
	if (ret)
		goto fail;
	if (o->stats) {
		b->vqs[2].vio.device_driven = true;
		b->vdev.q[2].holds_buffers = true;
	}
	*out = b;
	return 0;
fail:
	virtio_balloon_destroy(b);
	return ret;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	if (!b)
		return;
	if (b->vdev.q)
		virtio_dev_exit(&b->vdev);
	vio_engine_exit(&b->engine);
	free(b->vqs);
	pthread_mutex_destroy(&b->lock);
	free(b);
}
