// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-blk: requests from the rings to a block backend, one I/O thread per queue. */
#include <errno.h>
#include <libfdt.h>
#include <linux/virtio_blk.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/aio.h"
#include "block/backend.h"
#include "iov.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox/sandbox.h"
#include "snapshot/state.h"
#include "util.h"
#include "virtio/blk.h"
#include "virtio/iothread.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_BLOCK	 2
#define PCI_CLASS_SCSI	 0x010000 /* what QEMU and kvmtool report for virtio-blk */
#define SECTOR		 512ULL
#define MAX_IOV		 (BLK_SEG_MAX + 2)
#define SIZE_MAX_SEG	 (1U << 20)
#define MAX_DISCARD	 (1U << 22) /* sectors per discard / write-zeroes segment (2 GiB) */
#define AIO_RING_ENTRIES 256

struct blk_vq;

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
	struct vio_queue vio; /* the engine's part: ring, kicks, thread */
	struct virtio_blk *dev;
	struct blk_io *ios; /* [size_max], touched only when used: 4 KiB each */
	uint8_t *busy;	    /* [size_max]: head in flight */
	struct iovec scratch[MAX_IOV];
	unsigned int inflight;
	atomic_uint_fast64_t requests, errors, bad_chains;
};

struct virtio_blk {
	struct virtio_dev vdev;
	struct blk_backend *be;
	struct virtio_blk_config cfg;
	char serial[VIRTIO_BLK_ID_BYTES];
	char name[16];
	unsigned int nq;
	bool limited;	     /* iops or bandwidth set: rl is in use */
	struct ratelimit rl; /* shared by all its queues */
	struct blk_vq *vqs;
	struct vio_engine engine;
	void (*on_error)(void *opaque, int err, uint64_t offset);
	void *opaque;
};

/* --- requests -------------------------------------------------------------------------- */

static void complete(struct blk_io *io, uint8_t status)
{
	struct blk_vq *bq = io->bq;

	if (status != VIRTIO_BLK_S_OK)
		vio_stat_inc(&bq->errors);
	*io->status = status;
	bq->busy[io->head] = 0;
	bq->inflight--;
	vq_push(&bq->vio.q->vq, io->head, io->in_len);
	bq->vio.need_signal = true;
}

static void io_done(struct blk_req *req, int res)
{
	struct blk_io *io = req->opaque;

	if (res) {
		struct virtio_blk *b = io->bq->dev;

		pr_debug("%s: request at %llu failed: %s", b->name, (unsigned long long)req->offset,
			 strerror(-res));
		if (b->on_error && res != -EOPNOTSUPP)
			b->on_error(b->opaque, res, req->offset);
	}
	complete(io, !res		  ? VIRTIO_BLK_S_OK
		     : res == -EOPNOTSUPP ? VIRTIO_BLK_S_UNSUPP
					  : VIRTIO_BLK_S_IOERR);
}

static bool in_range(const struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t size = b->be->size;

	return sector <= size / SECTOR && bytes <= size - sector * SECTOR;
}

/* DISCARD / WRITE_ZEROES: one {sector, num_sectors, flags} segment after the header. */
static uint8_t prep_range(struct virtio_blk *b, struct blk_io *io, const struct vq_elem *e,
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
static uint8_t prep(struct virtio_blk *b, struct blk_io *io, const struct vq_elem *e)
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

/* Take what the ring offers, at most @budget chains; returns the number taken. */
static unsigned int drain_ring(struct vio_queue *v, struct aio_ctx *ctx, unsigned int budget)
{
	struct blk_vq *bq = container_of(v, struct blk_vq, vio);
	struct virtio_blk *b = bq->dev;
	struct virtqueue *vq = &v->q->vq;
	struct vq_elem e = { .iov = bq->scratch, .max = MAX_IOV };
	unsigned int taken = 0;
	uint8_t st;
	int ret;

	while (taken < budget && !vio_stop_requested(v)) {
		struct blk_io *io;

		if (b->limited && vq_has_avail(vq) && vio_rl_wait(v, &b->rl))
			break;
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			bq->vio.dead = true;
			virtio_needs_reset(&b->vdev, "corrupt available ring");
			break;
		}
		taken++;
		vio_stat_inc(&bq->requests);
		/* Every chain is an operation; bytes are charged once known (below). */
		if (b->limited)
			rl_charge(&b->rl, 1, 0);
		io = &bq->ios[e.head];
		if (bq->busy[e.head]) {
			/* The same head twice in flight: nothing in this ring is safe now. */
			bq->vio.dead = true;
			virtio_needs_reset(&b->vdev, "descriptor reused while in flight");
			break;
		}
		if (ret == VQ_BAD_CHAIN) {
			vio_stat_inc(&bq->bad_chains);
			vq_push(vq, e.head, 0);
			bq->vio.need_signal = true;
			continue;
		}
		io->status = status_byte(&e);
		if (!io->status || e.out_len < sizeof(struct virtio_blk_outhdr)) {
			/* Nowhere to put a status, or no header: fail it without writing. */
			vio_stat_inc(&bq->errors);
			vq_push(vq, e.head, 0);
			bq->vio.need_signal = true;
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

unsigned int virtio_blk_process(struct virtio_blk *b, unsigned int qi, struct aio_ctx *ctx)
{
	return vio_process(&b->engine, qi, ctx);
}

unsigned int virtio_blk_inflight(struct virtio_blk *b, unsigned int qi)
{
	return qi < b->nq ? b->vqs[qi].inflight : 0;
}

/* --- the I/O-thread engine's callbacks --------------------------------------------------- */

static unsigned int blk_inflight(struct vio_queue *v)
{
	return container_of(v, struct blk_vq, vio)->inflight;
}

/* Each thread's ring gets the backend (fixed files, its own I/O state). */
static int blk_attach(struct vio_engine *e, struct aio_ctx *ctx)
{
	struct virtio_blk *b = e->dev;

	return b->be->ops->attach ? b->be->ops->attach(b->be, ctx) : 0;
}

static void blk_detach(struct vio_engine *e, struct aio_ctx *ctx)
{
	struct virtio_blk *b = e->dev;

	if (b->be->ops->detach)
		b->be->ops->detach(b->be, ctx);
}

static const struct vio_engine_ops blk_engine_ops = {
	.drain = drain_ring,
	.inflight = blk_inflight,
	.attach = blk_attach,
	.detach = blk_detach,
};

/* --- virtio ops ------------------------------------------------------------------------ */

static void blk_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct virtio_blk *b = d->priv;

	if (off < sizeof(b->cfg) && len <= sizeof(b->cfg) - off)
		memcpy(buf, (uint8_t *)&b->cfg + off, len);
	else
		memset(buf, 0, len);
}

static int blk_start(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;
	unsigned int i;

	for (i = 0; i < b->nq; i++) {
		b->vqs[i].inflight = 0;
		memset(b->vqs[i].busy, 0, b->vqs[i].vio.q->size_max);
	}
	return vio_engine_start(&b->engine);
}

static void blk_stop(struct virtio_dev *d)
{
	struct virtio_blk *b = d->priv;

	vio_engine_stop(&b->engine);
}

/*
 * Beyond the core's state (features, status, ring indices) a virtio-blk has
 * none of its own once quiesced (stop answers every in-flight request first):
 * record what the guest saw, so a restore onto another disk is refused.
 */
static int blk_save(struct virtio_dev *d, void *fdt, int node)
{
	struct virtio_blk *b = d->priv;

	return st_put_u64(fdt, node, "capacity", b->cfg.capacity) ?:
	       st_put_u32(fdt, node, "num-queues", b->nq) ?:
	       st_put_blob(fdt, node, "serial", b->serial, sizeof(b->serial)) ?:
	       st_put_u32(fdt, node, "readonly", b->be->readonly);
}

static int blk_load(struct virtio_dev *d, const void *fdt, int node)
{
	struct virtio_blk *b = d->priv;
	char serial[sizeof(b->serial)];
	uint32_t nq, ro;
	uint64_t cap;

	if (st_get_u64(fdt, node, "capacity", &cap) || st_get_u32(fdt, node, "num-queues", &nq) ||
	    st_get_blob(fdt, node, "serial", serial, sizeof(serial)) ||
	    st_get_u32(fdt, node, "readonly", &ro))
		return -EINVAL;
	if (cap != b->cfg.capacity || nq != b->nq || memcmp(serial, b->serial, sizeof(serial)) ||
	    ro != b->be->readonly)
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

static void fill_config(struct virtio_blk *b, uint64_t *features)
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

int virtio_blk_create(struct virtio_blk **out, struct blk_backend *be, const struct guest_mem *mem,
		   const struct virtio_blk_opts *o)
{
	struct vio_engine_opts eo;
	struct virtio_blk *b;
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
	b->limited = rl_config_limited(o->rl);
	b->on_error = o->on_error;
	b->opaque = o->opaque;
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
	if (!b->vqs) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < b->nq; i++) {
		b->vqs[i].dev = b;
		/* calloc'd pages stay untouched (not resident) until a head uses them. */
		b->vqs[i].ios = calloc(BLK_QUEUE_SIZE, sizeof(struct blk_io));
		b->vqs[i].busy = calloc(BLK_QUEUE_SIZE, 1);
		if (!b->vqs[i].ios || !b->vqs[i].busy) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	eo = (struct vio_engine_opts){
		.name = b->name,
		.threads = o->threads, /* queue i on thread i % threads */
		.thread_cpu = o->thread_cpu,
		.poll_us = o->poll_us,
		.ring_entries = AIO_RING_ENTRIES,
		.timer = b->limited,
		.role = SANDBOX_BLK_IO,
	};
	ret = vio_engine_init(&b->engine, &blk_engine_ops, b, &b->vqs[0].vio, sizeof(*b->vqs),
			      b->vdev.q, b->nq, &eo);
	if (ret)
		goto fail;
	*out = b;
	return 0;
fail:
	b->be = NULL; /* still the caller's */
	virtio_blk_destroy(b);
	return ret;
}

struct virtio_dev *virtio_blk_virtio(struct virtio_blk *b)
{
	return &b->vdev;
}

struct blk_backend *virtio_blk_backend(struct virtio_blk *b)
{
	return b->be;
}

struct blk_backend *virtio_blk_swap_backend(struct virtio_blk *b, struct blk_backend *be)
{
	struct blk_backend *old = b->be;

	/* The threads attach the backend when they start: none runs now. */
	b->be = be;
	return old;
}

void virtio_blk_get_stats(struct virtio_blk *b, struct virtio_blk_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < b->nq; i++) {
		st->requests += atomic_load(&b->vqs[i].requests);
		st->errors += atomic_load(&b->vqs[i].errors);
		st->bad_chains += atomic_load(&b->vqs[i].bad_chains);
		st->kicks += atomic_load(&b->vqs[i].vio.kicks);
		st->polled += atomic_load(&b->vqs[i].vio.polled);
		st->irqs += atomic_load(&b->vqs[i].vio.irqs);
	}
	st->flushes = __atomic_load_n(&b->be->flushes, __ATOMIC_RELAXED);
	st->poll_ns = vio_engine_poll_ns(&b->engine);
}

void virtio_blk_destroy(struct virtio_blk *b)
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
	vio_engine_exit(&b->engine);
	if (b->limited)
		rl_destroy(&b->rl);
	if (b->be)
		blk_close(b->be);
	free(b);
}
