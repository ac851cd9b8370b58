// SPDX-License-Identifier: GPL-2.0-or-later
/* The transport-independent half of a virtio device: features, status, queues. */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "snapshot/state.h"
#include "virtio/virtio.h"

#define CORE_FEATURES                                                                              \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |                        \
	 (1ULL << VIRTIO_RING_F_INDIRECT_DESC))
/* The status bits the driver writes; NEEDS_RESET is the device's. */
#define DRIVER_BITS                                                                                \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |        \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_FAILED)
/* Protocol errors a device reports as warnings; the rest at debug level. */
#define MAX_WARNINGS 8

int virtio_dev_init(struct virtio_dev *d, const char *name, uint16_t device_id,
		    const struct virtio_dev_ops *ops, void *priv, const struct guest_mem *mem,
		    unsigned int nr_queues, unsigned int qsize, uint64_t features,
		    size_t config_size)
{
	unsigned int i;

	if (!nr_queues || nr_queues > VIRTIO_MAX_QUEUES || !qsize || qsize > VQ_MAX_SIZE ||
	    (qsize & (qsize - 1)))
		return -EINVAL;
	memset(d, 0, sizeof(*d));
	d->name = name;
	d->device_id = device_id;
	d->ops = ops;
	d->priv = priv;
	d->mem = mem;
	d->config_size = config_size;
	d->features = features | CORE_FEATURES;
	d->config_vector = VIRTIO_NO_VECTOR;
	pthread_mutex_init(&d->lock, NULL);
	d->q = calloc(nr_queues, sizeof(*d->q));
	if (!d->q)
		return -ENOMEM;
	d->nr_queues = nr_queues;
	for (i = 0; i < nr_queues; i++)
		d->q[i].kick_fd = -1;
	for (i = 0; i < nr_queues; i++) {
		struct virtio_queue *q = &d->q[i];

		vq_clear(&q->vq);
		q->index = i;
		q->dev = d;
		q->size_max = qsize;
		q->size = qsize;
		q->vector = VIRTIO_NO_VECTOR;
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0) {
			int ret = -errno;

			virtio_dev_exit(d);
			return ret;
		}
	}
	return 0;
}

void virtio_report_pending(struct virtio_dev *d)
{
	struct vq_indices ix;
	unsigned int i;

	pthread_mutex_lock(&d->lock);
	for (i = 0; d->started && i < d->nr_queues; i++) {
		if (!d->q[i].enabled || !vq_indices(&d->q[i].vq, &ix))
			continue;
		if ((ix.avail == ix.taken || d->q[i].holds_buffers) && ix.used_event == ix.used)
			continue;
		pr_info(
		    "%s: queue %u at exit: %u buffers made available and not taken, "
		    "%u completions past the driver's used_event (avail %u, used %u, used_event "
		    "%u, last interrupt at %u)",
		    d->name, i, (uint16_t)(ix.avail - ix.taken),
		    (uint16_t)(ix.used - ix.used_event), ix.avail, ix.used, ix.used_event,
		    ix.signalled);
	}
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_exit(struct virtio_dev *d)
{
	unsigned int i;

	if (!d->q)
		return;
	if (d->started && !d->quiesced && d->ops->stop)
		d->ops->stop(d);
	d->started = false;
	d->quiesced = false;
	for (i = 0; i < d->nr_queues; i++)
		if (d->q[i].kick_fd >= 0)
			close(d->q[i].kick_fd);
	free(d->q);
	d->q = NULL;
	pthread_mutex_destroy(&d->lock);
}

int virtio_dev_add_shm(struct virtio_dev *d, uint8_t id, void *hva, uint64_t size)
{
	if (d->nr_shm == VIRTIO_MAX_SHM)
		return -ENOSPC;
	d->shm[d->nr_shm++] = (struct virtio_shm){ .id = id, .size = size, .hva = hva };
	return 0;
}

bool virtio_negotiated(const struct virtio_dev *d, unsigned int bit)
{
	return bit < 64 && (d->acked >> bit) & 1;
}

uint8_t virtio_get_status(struct virtio_dev *d)
{
	return atomic_load(&d->status);
}

uint32_t virtio_get_features(struct virtio_dev *d, unsigned int word)
{
	return word < 2 ? (uint32_t)(d->features >> (32 * word)) : 0;
}

void virtio_set_features(struct virtio_dev *d, unsigned int word, uint32_t val)
{
	uint64_t mask;

	pthread_mutex_lock(&d->lock);
	/* Features are frozen once FEATURES_OK was accepted. */
	if (word < 2 && !(atomic_load(&d->status) & VIRTIO_CONFIG_S_FEATURES_OK)) {
		mask = 0xffffffffULL << (32 * word);
		d->acked = (d->acked & ~mask) | ((uint64_t)val << (32 * word));
	}
	pthread_mutex_unlock(&d->lock);
}

static void reset_locked(struct virtio_dev *d)
{
	unsigned int i;
	uint64_t v;

	if (d->started && !d->quiesced && d->ops->stop)
		d->ops->stop(d);
	d->started = false;
	d->quiesced = false;
	for (i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->q[i];

		vq_clear(&q->vq);
		q->size = q->size_max;
		q->enabled = false;
		q->desc = q->avail = q->used = 0;
		__atomic_store_n(&q->vector, VIRTIO_NO_VECTOR, __ATOMIC_RELAXED);
		/* A kick left over from before the reset means nothing now. */
		if (read(q->kick_fd, &v, sizeof(v)) < 0)
			(void)0;
	}
	d->acked = 0;
	__atomic_store_n(&d->config_vector, VIRTIO_NO_VECTOR, __ATOMIC_RELAXED);
	atomic_store(&d->status, 0);
}

/* Nothing of a failed start stays mapped. */
static void unmap_queues_locked(struct virtio_dev *d)
{
	for (unsigned int i = 0; i < d->nr_queues; i++)
		vq_clear(&d->q[i].vq);
}

/*
 * DRIVER_OK: map every enabled queue, then let the device run. A restore
 * passes the ring indices to put back (vq_init starts them at zero).
 */
static int start_locked(struct virtio_dev *d, const uint16_t *last_avail, const uint16_t *used_idx)
{
	bool ev = virtio_negotiated(d, VIRTIO_RING_F_EVENT_IDX);
	bool ind = virtio_negotiated(d, VIRTIO_RING_F_INDIRECT_DESC);
	unsigned int i;
	int ret;

	for (i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->q[i];

		/* A queue the driver did not enable stays unusable: never served. */
		if (!q->enabled) {
			vq_clear(&q->vq);
			continue;
		}
		ret = vq_init(&q->vq, d->mem, q->size, q->desc, q->avail, q->used, ev, ind);
		if (ret) {
			pr_debug("%s: queue %u: rings outside RAM, misaligned or overlapping",
				 d->name, i);
			unmap_queues_locked(d);
			return ret;
		}
		if (last_avail) {
			q->vq.last_avail = last_avail[i];
			q->vq.used_idx = used_idx[i];
		}
	}
	ret = d->ops->start ? d->ops->start(d) : 0;
	if (ret) {
		unmap_queues_locked(d);
		return ret;
	}
	d->started = true;
	/* Resumed mid-stream (restore, unquiesce): a kick may have been eaten by the
	 * threads that stopped, or work left when they were told to; look at every
	 * ring once. */
	for (i = 0; last_avail && i < d->nr_queues; i++)
		if (d->q[i].enabled)
			virtio_queue_kick(&d->q[i]);
	return 0;
}

void virtio_queue_kick(struct virtio_queue *q)
{
	if (write(q->kick_fd, &(uint64_t){ 1 }, sizeof(uint64_t)) < 0)
		pr_debug("%s: kick: %s", q->dev->name, strerror(errno));
}

void virtio_quiesce(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->started && !d->quiesced) {
		if (d->ops->pause)
			d->ops->pause(d);
		else if (d->ops->stop)
			d->ops->stop(d);
		d->quiesced = true;
	}
	pthread_mutex_unlock(&d->lock);
}

int virtio_unquiesce(struct virtio_dev *d)
{
	uint16_t la[VIRTIO_MAX_QUEUES], ui[VIRTIO_MAX_QUEUES];
	unsigned int i;
	int ret = 0;

	pthread_mutex_lock(&d->lock);
	if (d->quiesced) {
		d->quiesced = false;
		for (i = 0; i < d->nr_queues; i++) {
			la[i] = d->q[i].vq.last_avail;
			ui[i] = d->q[i].vq.used_idx;
		}
		ret = start_locked(d, la, ui);
		if (ret)
			atomic_fetch_or(&d->status, VIRTIO_CONFIG_S_NEEDS_RESET);
	}
	pthread_mutex_unlock(&d->lock);
	return ret;
}

static void notify_config(struct virtio_dev *d)
{
	if (d->tops && d->tops->notify_config)
		d->tops->notify_config(d);
}

/* Set NEEDS_RESET; true when it was not set yet (the caller then notifies the driver). */
static bool mark_needs_reset(struct virtio_dev *d, const char *why)
{
	uint8_t old = atomic_fetch_or(&d->status, VIRTIO_CONFIG_S_NEEDS_RESET);
	unsigned int n;

	if (old & VIRTIO_CONFIG_S_NEEDS_RESET)
		return false;
	/* A guest can make these as fast as it can reset: the log must not follow. */
	n = atomic_fetch_add(&d->nr_warned, 1);
	if (n < MAX_WARNINGS)
		pr_warn("%s: device needs reset: %s", d->name, why);
	else
		pr_debug("%s: device needs reset: %s", d->name, why);
	if (n == MAX_WARNINGS - 1)
		pr_warn("%s: further protocol errors are logged at debug level only", d->name);
	atomic_fetch_add(&d->config_gen, 1);
	return true;
}

void virtio_set_status(struct virtio_dev *d, uint8_t val)
{
	const char *err = NULL;
	uint8_t old;

	pthread_mutex_lock(&d->lock);
	if (val == 0) {
		reset_locked(d);
		goto out;
	}
	old = atomic_load(&d->status);
	val &= DRIVER_BITS;
	/* The driver only ever adds bits; a reset is the one way back (2.1.2). */
	if (old & DRIVER_BITS & ~val) {
		err = "the driver cleared a status bit without a reset";
		goto out;
	}
	if (old & VIRTIO_CONFIG_S_NEEDS_RESET) {
		/* Until the reset, giving up is all that is left to the driver. */
		atomic_fetch_or(&d->status, val & VIRTIO_CONFIG_S_FAILED);
		goto out;
	}
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK)) {
		/* Only what we offered, and only the modern interface. */
		if ((d->acked & ~d->features) || !virtio_negotiated(d, VIRTIO_F_VERSION_1)) {
			pr_debug("%s: refusing features %#llx", d->name,
				 (unsigned long long)d->acked);
			val &= ~VIRTIO_CONFIG_S_FEATURES_OK;
		}
	}
	/* An OR: a device thread may set NEEDS_RESET meanwhile (val holds all of old's bits). */
	atomic_fetch_or(&d->status, val);
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !d->started && !(val & VIRTIO_CONFIG_S_FAILED)) {
		if (!(val & VIRTIO_CONFIG_S_FEATURES_OK))
			err = "DRIVER_OK without FEATURES_OK";
		else if (start_locked(d, NULL, NULL))
			err = "cannot start: rings outside RAM, misaligned or overlapping";
	}
out:
	if (err && !mark_needs_reset(d, err))
		err = NULL;
	pthread_mutex_unlock(&d->lock);
	if (err)
		notify_config(d);
}

int virtio_queue_set(struct virtio_dev *d, unsigned int qi, enum virtio_queue_field f, uint64_t val)
{
	struct virtio_queue *q;
	int ret = 0;

	if (qi >= d->nr_queues)
		return -EINVAL;
	q = &d->q[qi];
	pthread_mutex_lock(&d->lock);
	/* The device threads may be reading it: fixed until the reset (no RING_RESET). */
	if (q->enabled || d->started ||
	    (atomic_load(&d->status) & (VIRTIO_CONFIG_S_DRIVER_OK | VIRTIO_CONFIG_S_NEEDS_RESET))) {
		ret = -EBUSY;
		goto out;
	}
	switch (f) {
	case VIRTIO_QUEUE_SIZE:
		if (!val || val > q->size_max || (val & (val - 1)))
			ret = -EINVAL;
		else
			q->size = val;
		break;
	case VIRTIO_QUEUE_DESC:
		q->desc = val;
		break;
	case VIRTIO_QUEUE_DRIVER:
		q->avail = val;
		break;
	case VIRTIO_QUEUE_DEVICE:
		q->used = val;
		break;
	case VIRTIO_QUEUE_ENABLE:
		if (val == 1)
			q->enabled = true;
		else
			ret = -EINVAL;
		break;
	default:
		ret = -EINVAL;
	}
out:
	pthread_mutex_unlock(&d->lock);
	return ret;
}

bool virtio_queue_signal(struct virtio_queue *q)
{
	struct virtio_dev *d = q->dev;

	if (!vq_should_notify(&q->vq) || !d->tops || !d->tops->notify_queue)
		return false;
	d->tops->notify_queue(d, q->index);
	return true;
}

void virtio_needs_reset(struct virtio_dev *d, const char *why)
{
	if (mark_needs_reset(d, why))
		notify_config(d);
}

/* --- snapshot state -------------------------------------------------------------------- */

/*
 * The layout of a virtio device's node. Absent in snapshots from before it was
 * written: those are version 1 too. A later change bumps it and loads both.
 */
#define VIRTIO_STATE_VERSION 1

int virtio_save(struct virtio_dev *d, void *fdt, int node)
{
	unsigned int i;
	int ret;

	pthread_mutex_lock(&d->lock);
	ret = st_put_u64(fdt, node, "version", VIRTIO_STATE_VERSION) ?:
	      st_put_u64(fdt, node, "features", d->features) ?:
	      st_put_u64(fdt, node, "acked", d->acked) ?:
	      st_put_u64(fdt, node, "status", atomic_load(&d->status)) ?:
	      st_put_u64(fdt, node, "config-vector",
		      __atomic_load_n(&d->config_vector, __ATOMIC_RELAXED)) ?:
	      st_put_u64(fdt, node, "queues", d->nr_queues);
	for (i = 0; !ret && i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->q[i];
		char name[24];
		int qn;

		snprintf(name, sizeof(name), "queue@%u", i);
		qn = st_add_node(fdt, node, name);
		if (qn < 0) {
			ret = qn;
			break;
		}
		ret = st_put_u64(fdt, qn, "size", q->size) ?: st_put_u64(fdt, qn, "enabled", q->enabled) ?:
		      st_put_u64(fdt, qn, "desc", q->desc) ?: st_put_u64(fdt, qn, "avail", q->avail) ?:
		      st_put_u64(fdt, qn, "used", q->used) ?:
		      st_put_u64(fdt, qn, "vector", __atomic_load_n(&q->vector, __ATOMIC_RELAXED)) ?:
		      st_put_u64(fdt, qn, "last-avail", q->vq.last_avail) ?:
		      st_put_u64(fdt, qn, "used-idx", q->vq.used_idx);
	}
	if (!ret && d->ops->save) {
		int dn = st_add_node(fdt, node, "device");

		ret = dn < 0 ? dn : d->ops->save(d, fdt, dn);
	}
	pthread_mutex_unlock(&d->lock);
	/* -ENOSPC makes the caller grow the tree; any other error is the device's. */
	return ret;
}

/* Restores into a freshly initialised (reset) device; starts it if the driver had. */
int virtio_load(struct virtio_dev *d, const void *fdt, int node)
{
	uint64_t features, acked, status, cv, nq, v[8];
	uint16_t last_avail[VIRTIO_MAX_QUEUES], used_idx[VIRTIO_MAX_QUEUES];
	unsigned int i;
	uint64_t version = VIRTIO_STATE_VERSION;
	int ret = -EINVAL;

	if (st_get_raw(fdt, node, "version", NULL) && st_get_u64(fdt, node, "version", &version))
		return -EINVAL;
	if (version != VIRTIO_STATE_VERSION) {
		pr_err("%s: device state version %llu; this minivmm reads %u", d->name,
		       (unsigned long long)version, VIRTIO_STATE_VERSION);
		return -EINVAL;
	}
	if (st_get_u64(fdt, node, "features", &features) || st_get_u64(fdt, node, "acked", &acked) ||
	    st_get_u64(fdt, node, "status", &status) || st_get_u64(fdt, node, "config-vector", &cv) ||
	    st_get_u64(fdt, node, "queues", &nq))
		return -EINVAL;
	/* The same device model, or nothing. */
	if (features != d->features || nq != d->nr_queues || (acked & ~features))
		return -EINVAL;
	/* A state the driver could have reached, or nothing. */
	if ((status & ~(uint64_t)(DRIVER_BITS | VIRTIO_CONFIG_S_NEEDS_RESET)) || cv > 0xffff)
		return -EINVAL;
	if ((status & VIRTIO_CONFIG_S_FEATURES_OK) && !(acked & (1ULL << VIRTIO_F_VERSION_1)))
		return -EINVAL;
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !(status & VIRTIO_CONFIG_S_NEEDS_RESET))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	reset_locked(d);
	if (d->ops->load) {
		/* The device's own part first: it refuses state of another disk, say. */
		int dn = fdt_subnode_offset(fdt, node, "device");

		ret = dn < 0 ? -EINVAL : d->ops->load(d, fdt, dn);
		if (ret)
			goto fail;
		ret = -EINVAL;
	}
	for (i = 0; i < d->nr_queues; i++) {
		struct virtio_queue *q = &d->q[i];
		char name[24];
		int qn;

		snprintf(name, sizeof(name), "queue@%u", i);
		qn = fdt_subnode_offset(fdt, node, name);
		if (qn < 0 || st_get_u64(fdt, qn, "size", &v[0]) ||
		    st_get_u64(fdt, qn, "enabled", &v[1]) || st_get_u64(fdt, qn, "desc", &v[2]) ||
		    st_get_u64(fdt, qn, "avail", &v[3]) || st_get_u64(fdt, qn, "used", &v[4]) ||
		    st_get_u64(fdt, qn, "vector", &v[5]) || st_get_u64(fdt, qn, "last-avail", &v[6]) ||
		    st_get_u64(fdt, qn, "used-idx", &v[7]))
			goto fail;
		if (!v[0] || v[0] > q->size_max || (v[0] & (v[0] - 1)) || v[1] > 1 ||
		    v[5] > 0xffff || v[6] > 0xffff || v[7] > 0xffff)
			goto fail;
		q->size = v[0];
		q->enabled = v[1];
		q->desc = v[2];
		q->avail = v[3];
		q->used = v[4];
		__atomic_store_n(&q->vector, v[5], __ATOMIC_RELAXED);
		last_avail[i] = v[6];
		used_idx[i] = v[7];
	}
	d->acked = acked;
	__atomic_store_n(&d->config_vector, cv, __ATOMIC_RELAXED);
	atomic_store(&d->status, status);
	if ((status & VIRTIO_CONFIG_S_DRIVER_OK) && !(status & VIRTIO_CONFIG_S_NEEDS_RESET)) {
		ret = start_locked(d, last_avail, used_idx);
		if (ret)
			goto fail;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
fail:
	reset_locked(d);
	pthread_mutex_unlock(&d->lock);
	return ret;
}
