// SPDX-License-Identifier: GPL-2.0-or-later
/* virtio-rng: fill the guest's buffers from getrandom() on one I/O thread. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"
#include "util.h"
#include "virtio/iothread.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"

#define PCI_CLASS_OTHER 0xff0000 /* what QEMU's virtio-rng-pci reports */
#define MAX_IOV		(RNG_QUEUE_SIZE + 8)

struct rng_vq {
	struct vio_queue vio;
	struct virtio_rng *dev;
};

struct virtio_rng {
	struct virtio_dev vdev;
	char name[16];
	struct virtio_rng_opts o;
	struct rng_vq vq;
	struct vio_engine engine;
	struct iovec iov[MAX_IOV]; /* one chain at a time: one thread */
	atomic_uint_fast64_t requests, bytes, bad_chains;
};

/* Fill the chain's writable buffers, at most RNG_MAX_REQUEST bytes; the bytes written. */
static uint32_t fill(const struct vq_elem *e)
{
	uint32_t done = 0;

	for (unsigned int i = e->out_num; i < e->out_num + e->in_num && done < RNG_MAX_REQUEST;
	     i++) {
		size_t want = MIN(e->iov[i].iov_len, (size_t)(RNG_MAX_REQUEST - done));

		/* The pool is initialised long before a VM runs: this never blocks. */
		while (want) {
			ssize_t n = getrandom(e->iov[i].iov_base, want, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return done;
			}
			want -= (size_t)n;
			done += (uint32_t)n;
		}
	}
	return done;
}

static unsigned int drain_ring(struct vio_queue *v, struct aio_ctx *ctx, unsigned int budget)
{
	struct virtio_rng *r = container_of(v, struct rng_vq, vio)->dev;
	struct vq_elem e = { .iov = r->iov, .max = MAX_IOV };
	struct virtqueue *vq = &v->q->vq;
	unsigned int taken = 0;
	uint32_t len;
	int ret;

	(void)ctx; /* every request is answered before drain returns */
	while (taken < budget && !vio_stop_requested(v)) {
		ret = vq_pop(vq, &e);
		if (ret == VQ_EMPTY)
			break;
		if (ret < 0) {
			v->dead = true;
			virtio_needs_reset(&r->vdev, "corrupt request ring");
			break;
		}
		taken++;
		len = 0;
		/* A buffer the device may not write (5.4.6.1: write-only) is a bad request. */
		if (ret == VQ_OK && e.out_num == 0 && e.in_num) {
			len = fill(&e);
			vio_stat_inc(&r->requests);
			atomic_fetch_add(&r->bytes, len);
		} else {
			vio_stat_inc(&r->bad_chains);
		}
		vq_push(vq, e.head, len);
		v->need_signal = true;
	}
	return taken;
}

static const struct vio_engine_ops rng_engine_ops = { .drain = drain_ring };

static int rng_start(struct virtio_dev *d)
{
	struct virtio_rng *r = d->priv;

	return vio_engine_start(&r->engine);
}

static void rng_stop(struct virtio_dev *d)
{
	struct virtio_rng *r = d->priv;

	vio_engine_stop(&r->engine);
}

/* No configuration space, no state beyond the queue (the core saves it). */
static const struct virtio_dev_ops rng_ops = {
	.start = rng_start,
	.stop = rng_stop,
};

struct virtio_dev *virtio_rng_virtio(struct virtio_rng *r)
{
	return &r->vdev;
}

void virtio_rng_stats(const struct virtio_rng *r, struct virtio_rng_stats *out)
{
	out->requests = atomic_load(&r->requests);
	out->bytes = atomic_load(&r->bytes);
	out->bad_chains = atomic_load(&r->bad_chains);
}

unsigned int virtio_rng_process(struct virtio_rng *r)
{
	return vio_process(&r->engine, 0, NULL);
}

int virtio_rng_create(struct virtio_rng **out, const struct guest_mem *mem,
		      const struct virtio_rng_opts *o)
{
	struct vio_engine_opts eo;
	struct virtio_rng *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o = *o;
	snprintf(r->name, sizeof(r->name), "%s", o->name ? o->name : "rng");
	r->o.name = r->name;
	r->vq.dev = r;
	ret = virtio_dev_init(&r->vdev, r->name, VIRTIO_ID_RNG, &rng_ops, r, mem, 1, RNG_QUEUE_SIZE,
			      0, 0);
	if (ret)
		goto fail;
	r->vdev.pci_class = PCI_CLASS_OTHER;
	eo = (struct vio_engine_opts){
		.name = r->name,
		.threads = 1,
		.thread_cpu = r->o.thread_cpu >= 0 ? &r->o.thread_cpu : NULL,
		.ring_entries = 16,
		.role = SANDBOX_RNG_IO,
	};
	ret = vio_engine_init(&r->engine, &rng_engine_ops, r, &r->vq.vio, sizeof(r->vq), r->vdev.q,
			      1, &eo);
	if (ret)
		goto fail;
	*out = r;
	return 0;
fail:
	virtio_rng_destroy(r);
	return ret;
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	if (r->vdev.q)
		virtio_dev_exit(&r->vdev);
	vio_engine_exit(&r->engine);
	free(r);
}
