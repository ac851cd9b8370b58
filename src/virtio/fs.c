// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-fs: chains from the rings to the in-process FUSE server, one I/O thread per queue. */
#include <errno.h>
#include <linux/virtio_fs.h>
#include <linux/virtio_ids.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/aio.h"
#include "fs/dax.h"
#include "fs/fuse_server.h"
#include "log.h"
#include "ratelimit.h"
#include "sandbox/sandbox.h"
#include "util.h"
#include "virtio/fs.h"
#include "virtio/iothread.h"
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

struct fs_vq {
	struct vio_queue vio; /* the engine's part: ring, kicks, thread */
	struct virtio_fs *dev;
	atomic_uint_fast64_t requests, bad_chains;
};

struct virtio_fs {
	struct virtio_dev vdev;
	struct fs_config cfg;
	char name[16];
	struct fuse_server *srv;
	struct dax_window *win;
	unsigned int nq;     /* 1 + request queues */
	bool limited;	     /* iops or bandwidth set: rl is in use */
	struct ratelimit rl; /* shared by its request queues (not hiprio: FORGETs only) */
	struct fs_vq *vqs;
	struct vio_engine engine;
	struct iovec *scratch; /* [nq][MAX_IOV]: requests are synchronous, one per queue */
};

/* --- requests -------------------------------------------------------------------------- */

static void handle(struct fs_vq *fq, const struct vq_elem *e)
{
	struct virtio_fs *f = fq->dev;
	ssize_t n;

	n = fuse_server_handle(f->srv, e->iov, e->out_num, e->iov + e->out_num, e->in_num);
	/* Whatever size this reply reports must be backed by the file in the window. */
	if (f->win)
		dax_window_refresh(f->win);
	if (n < 0 || (uint64_t)n > e->in_len) {
		vio_stat_inc(&fq->bad_chains);
		n = 0;
	}
	vq_push(&fq->vio.q->vq, e->head, (uint32_t)n);
	fq->vio.need_signal = true;
}

/* Serve what the ring offers, at most @budget chains; returns the number taken. */
static unsigned int drain_ring(struct vio_queue *v, struct aio_ctx *ctx, unsigned int budget)
{
	struct fs_vq *fq = container_of(v, struct fs_vq, vio);
	struct virtio_fs *f = fq->dev;
	struct vq_elem e = { .iov = f->scratch + (fq - f->vqs) * MAX_IOV, .max = MAX_IOV };
	struct virtqueue *vq = &v->q->vq;
	/* The hiprio queue carries FORGETs: no reply, no data, and they free host state. */
	bool limited = f->limited && fq != &f->vqs[0];
	unsigned int taken = 0;
	int ret;

	(void)ctx; /* requests are answered before drain returns */
	while (taken < budget && !vio_stop_requested(v)) {
		if (limited && vq_has_avail(vq) && vio_rl_wait(v, &f->rl))
			break;
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			v->dead = true;
			virtio_needs_reset(&fq->dev->vdev, "corrupt available ring");
			break;
		}
		taken++;
		vio_stat_inc(&fq->requests);
		/* Bad chains count as operations too; a good one costs its payload. */
		if (limited)
			rl_charge(&fq->dev->rl, 1,
				  ret == VQ_BAD_CHAIN ? 0 : (uint64_t)e.out_len + e.in_len);
		if (ret == VQ_BAD_CHAIN) {
			vio_stat_inc(&fq->bad_chains);
			vq_push(vq, e.head, 0);
			v->need_signal = true;
			continue;
		}
		handle(fq, &e);
	}
	return taken;
}

unsigned int virtio_fs_process(struct virtio_fs *f, unsigned int qi)
{
	return vio_process(&f->engine, qi, NULL);
}

static const struct vio_engine_ops fs_engine_ops = { .drain = drain_ring };

/* --- virtio ops ------------------------------------------------------------------------ */

static void fs_config_read(struct virtio_dev *d, unsigned int off, void *buf, unsigned int len)
{
	struct virtio_fs *f = d->priv;

	if (off < sizeof(f->cfg) && len <= sizeof(f->cfg) - off)
		memcpy(buf, (uint8_t *)&f->cfg + off, len);
	else
		memset(buf, 0, len);
}

static int fs_start(struct virtio_dev *d)
{
	struct virtio_fs *f = d->priv;

	return vio_engine_start(&f->engine);
}

/* Reset: the driver forgot every inode, handle and mapping it had. */
static void fs_stop(struct virtio_dev *d)
{
	struct virtio_fs *f = d->priv;

	vio_engine_stop(&f->engine);
	fuse_server_reset(f->srv);
	if (f->win)
		dax_window_clear(f->win);
}

/* Pause: the guest's session, inodes, handles and mappings stay for the resume. */
static void fs_pause(struct virtio_dev *d)
{
	struct virtio_fs *f = d->priv;

	vio_engine_stop(&f->engine);
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

int virtio_fs_create(struct virtio_fs **out, struct fuse_server *srv, struct dax_window *win,
		  const struct guest_mem *mem, const struct virtio_fs_opts *o)
{
	size_t tlen = o->tag ? strlen(o->tag) : 0;
	struct vio_engine_opts eo;
	unsigned int *map = NULL;
	struct virtio_fs *f;
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
	f->scratch = calloc((size_t)f->nq * MAX_IOV, sizeof(*f->scratch));
	map = calloc(f->nq, sizeof(*map));
	if (!f->vqs || !f->scratch || !map) {
		ret = -ENOMEM;
		goto fail;
	}
	/* A thread per request queue; queue 0 (hiprio) goes with queue 1 to thread 0. */
	for (i = 0; i < f->nq; i++) {
		f->vqs[i].dev = f;
		map[i] = i ? (i - 1) % o->queues : 0;
	}
	eo = (struct vio_engine_opts){
		.name = f->name,
		.threads = o->queues,
		.map = map,
		.thread_cpu = o->thread_cpu,
		.ring_entries = AIO_RING_ENTRIES,
		.timer = f->limited,
		.role = SANDBOX_FS_IO,
	};
	ret = vio_engine_init(&f->engine, &fs_engine_ops, f, &f->vqs[0].vio, sizeof(*f->vqs),
			      f->vdev.q, f->nq, &eo);
	if (ret)
		goto fail;
	free(map);
	*out = f;
	return 0;
fail:
	free(map);
	virtio_fs_destroy(f);
	return ret;
}

struct virtio_dev *virtio_fs_virtio(struct virtio_fs *f)
{
	return &f->vdev;
}

void virtio_fs_get_stats(struct virtio_fs *f, struct virtio_fs_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	for (i = 0; i < f->nq; i++) {
		st->requests += atomic_load(&f->vqs[i].requests);
		st->bad_chains += atomic_load(&f->vqs[i].bad_chains);
		st->kicks += atomic_load(&f->vqs[i].vio.kicks);
		st->irqs += atomic_load(&f->vqs[i].vio.irqs);
	}
}

void virtio_fs_destroy(struct virtio_fs *f)
{
	if (!f)
		return;
	virtio_dev_exit(&f->vdev);
	free(f->vqs);
	vio_engine_exit(&f->engine);
	free(f->scratch);
	if (f->limited)
		rl_destroy(&f->rl);
	free(f);
}
