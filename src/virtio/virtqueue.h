/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Split virtqueues (virtio 1.x, 2.7), device side.
 *
 * Everything in the rings is guest-controlled and re-read only through the
 * checks here: ring placement against guest RAM at enable time (and the three
 * areas apart from each other); per chain the head index, every next index,
 * the chain length (<= queue size, which also breaks loops), each buffer's
 * [addr, addr+len) inside one RAM region without wrap-around, write-only
 * buffers only after read-only ones and never on the queue's own rings, and
 * indirect tables (one level, 16-byte aligned length, inside RAM, not nested).
 * A bad chain is returned as VQ_BAD_CHAIN with its head so the device can fail
 * that one request; a bad avail index or head is VQ_BROKEN (the device sets
 * DEVICE_NEEDS_RESET) because nothing in the ring can be trusted after it.
 */
#ifndef MINIVMM_VIRTQUEUE_H
#define MINIVMM_VIRTQUEUE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mm/guest_mem.h"

#define VQ_MAX_SIZE 32768

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtqueue {
	const struct guest_mem *mem;
	uint16_t size;	/* power of two, 1..VQ_MAX_SIZE */
	bool event_idx; /* VIRTIO_F_RING_EVENT_IDX negotiated */
	bool indirect;	/* VIRTIO_F_RING_INDIRECT_DESC negotiated */
	bool broken;	/* unmapped, or set on VQ_BROKEN: every call fails safely */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t last_avail;	 /* next avail slot the device consumes */
	uint16_t used_idx;	 /* device's copy of used->idx */
	uint16_t signalled_used; /* used_idx at the last notification */
	bool signalled_valid;
	uint64_t area[3], area_end[3]; /* guest-physical [start, end) of desc, avail, used */
};

/* One popped chain: out (device-readable) segments first, then in (device-writable). */
struct vq_elem {
	uint16_t head;
	unsigned int out_num, in_num;
	uint64_t out_len, in_len; /* byte totals */
	struct iovec *iov;	  /* caller's array of @max entries */
	unsigned int max;
};

enum {
	VQ_EMPTY = 0,	  /* nothing available */
	VQ_OK = 1,	  /* @e holds a valid chain */
	VQ_BAD_CHAIN = 2, /* @e->head is valid, the chain is not: fail the request */
};
#define VQ_BROKEN (-EIO) /* the ring itself is corrupt: the device needs a reset */

/* A queue that is not mapped: every call below fails safely until vq_init. */
void vq_clear(struct virtqueue *vq);

/*
 * Check and map a ring of @size entries whose parts sit at the guest-physical
 * addresses given (alignment and placement in RAM per the spec, no two parts
 * overlapping). -EINVAL when anything is off; the queue is then unusable.
 */
int vq_init(struct virtqueue *vq, const struct guest_mem *mem, unsigned int size, uint64_t desc_gpa,
	    uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect);

/*
 * Take the next available chain. Returns VQ_EMPTY, VQ_OK, VQ_BAD_CHAIN (the
 * head is consumed; complete it with vq_push(..., 0) and write nothing into
 * it) or VQ_BROKEN. A chain longer than @e->max segments is bad, and so is one
 * with a device-writable buffer on this queue's own rings: what the device
 * writes there would rewrite the ring under it.
 * Zero-length descriptors take no iovec entry (their address is not checked);
 * a chain may thus have no segments at all. On VQ_BAD_CHAIN the counts and
 * lengths in @e are 0.
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *e);

/* Put @head back as used with @len bytes written into its in-buffers. */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/*
 * After pushing a batch: whether the driver wants an interrupt (EVENT_IDX's
 * used_event, else the NO_INTERRUPT flag). Resets the event-idx window.
 */
bool vq_should_notify(struct virtqueue *vq);

/*
 * Ask the driver for kicks (@enable) or tell it not to bother (while the
 * device is busy polling). With EVENT_IDX this writes avail_event. Returns
 * true when, after enabling, more buffers are already available (the caller
 * must poll again instead of sleeping: the race the spec describes).
 */
bool vq_enable_notify(struct virtqueue *vq, bool enable);

/* True when the driver has made buffers available that were not popped yet. */
bool vq_has_avail(struct virtqueue *vq);

/* The ring's indices as both sides see them now, for diagnostics. */
struct vq_indices {
	uint16_t avail;	     /* avail->idx (the driver's) */
	uint16_t taken;	     /* our last_avail */
	uint16_t used;	     /* our used_idx */
	uint16_t used_event; /* the driver's used_event (EVENT_IDX only) */
	uint16_t signalled;  /* used_idx at our last interrupt */
};
bool vq_indices(struct virtqueue *vq, struct vq_indices *ix);

#endif
