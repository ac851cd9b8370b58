/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny split-ring virtio driver for the unit tests and fuzzers: fake guest
 * RAM, the three rings of a queue in it, descriptor chains written and made
 * available, used entries reaped, and the queue handed to a device the way a
 * transport would (or mapped directly, for a device served on the test's
 * thread). No Check here: the fuzzers link it too, so calls return what went
 * wrong and the tests assert on it.
 */
#ifndef MINIVMM_TESTS_VRING_DRV_H
#define MINIVMM_TESTS_VRING_DRV_H

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdbool.h>
#include <stdint.h>

struct guest_mem;
struct virtio_dev;
struct virtio_transport_ops;

/* The driver's side of one queue. */
struct vdrv {
	const struct guest_mem *mem;
	unsigned int size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t next_desc; /* descriptors are handed out round-robin */
	uint16_t avail_idx;
	uint16_t last_used;
};

/* One buffer of a chain: device-writable with @wr. */
struct vring_seg {
	uint64_t gpa;
	uint32_t len;
	bool wr;
};

/* Anonymous memory of @size bytes as the one RAM region, at GPA 0, of @mem; NULL on failure. */
void *vdrv_ram_map(struct guest_mem *mem, uint64_t size);
void vdrv_ram_unmap(struct guest_mem *mem);
/* The same from the heap, exactly @size bytes (page-aligned, zeroed): fuzzers, whose ASan
 * sees any access past it. Aborts on failure; vdrv_ram_free() gives it back. */
void *vdrv_ram_alloc(struct guest_mem *mem, uint64_t size);
void vdrv_ram_free(struct guest_mem *mem);

/* Rings of @size entries at the three addresses in @mem, zeroed; -EFAULT if one is not RAM. */
int vdrv_init(struct vdrv *q, const struct guest_mem *mem, unsigned int size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa);

/*
 * Write @n segments as one chain of descriptors from next_desc on, without
 * making it available; returns its head. _indirect: one descriptor pointing to
 * a table of @n written at @table_gpa (which must be RAM: abort() if not).
 */
uint16_t vdrv_chain(struct vdrv *q, const struct vring_seg *s, unsigned int n);
uint16_t vdrv_chain_indirect(struct vdrv *q, const struct vring_seg *s, unsigned int n,
			     uint64_t table_gpa);
/* Make the chain at @head available (again). */
void vdrv_publish(struct vdrv *q, uint16_t head);
/* Chain and publish; _one: a chain of one segment. Both return the head. */
uint16_t vdrv_post(struct vdrv *q, const struct vring_seg *s, unsigned int n);
uint16_t vdrv_post_one(struct vdrv *q, uint64_t gpa, uint32_t len, bool wr);

/* The next used element, if the device has published one. */
bool vdrv_used(struct vdrv *q, uint32_t *id, uint32_t *len);
/* The same, looking every millisecond for up to @ms. */
bool vdrv_wait_used(struct vdrv *q, uint32_t *id, uint32_t *len, int ms);
/* used->idx as the device last published it. */
uint16_t vdrv_used_idx(const struct vdrv *q);
/* VIRTIO_RING_F_EVENT_IDX: the driver's used_event, and the device's avail_event. */
uint16_t *vdrv_used_event(struct vdrv *q);
uint16_t vdrv_avail_event(const struct vdrv *q);

/* The device status once features are accepted, and once the driver is live. */
#define VDRV_S_FEAT                                                                                \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define VDRV_S_LIVE (VDRV_S_FEAT | VIRTIO_CONFIG_S_DRIVER_OK)

/* Both feature words, as the driver writes them. */
void vdrv_set_features(struct virtio_dev *d, uint64_t f);
/* ACKNOWLEDGE, DRIVER, features @f, FEATURES_OK: the status read back. */
uint8_t vdrv_negotiate(struct virtio_dev *d, uint64_t f);

/* Queue @qi of @d with its rings where @q has them, enabled (register writes, unchecked). */
void vdrv_place(struct virtio_dev *d, unsigned int qi, const struct vdrv *q);
/* The same, and mapped as DRIVER_OK would, for a device served on this thread. */
int vdrv_map(struct virtio_dev *d, unsigned int qi, const struct vdrv *q, bool event_idx,
	     bool indirect);
/* The same as vdrv_place through virtio_queue_set, as a transport does it: 0 or its error. */
int vdrv_set(struct virtio_dev *d, unsigned int qi, const struct vdrv *q);

/* Notify queue @qi of @d through its kick eventfd; false if the write failed. */
bool vdrv_kick(struct virtio_dev *d, unsigned int qi);
/* Take a kick pending on queue @qi of @d, if there is one. */
bool vdrv_kick_pending(struct virtio_dev *d, unsigned int qi);

/* A transport that drops every interrupt. */
extern const struct virtio_transport_ops vdrv_quiet_tops;

/* Run @fn(@arg) on a thread; false if it has not returned within @ms (it is left behind). */
bool returns_within(void (*fn)(void *), void *arg, int ms);

#endif
