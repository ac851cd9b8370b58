// SPDX-License-Identifier: GPL-2.0-or-later
/* A tiny split-ring virtio driver for tests and fuzzers: see vring_drv.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mm/guest_mem.h"
#include "virtio/virtio.h"
#include "vring_drv.h"

void *vdrv_ram_map(struct guest_mem *mem, uint64_t size)
{
	void *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (ram == MAP_FAILED)
		return NULL;
	memset(mem, 0, sizeof(*mem));
	mem->r[0] = (struct mem_region){ .gpa = 0, .size = size, .hva = ram };
	mem->nr = 1;
	mem->total = size;
	return ram;
}

void vdrv_ram_unmap(struct guest_mem *mem)
{
	munmap(mem->r[0].hva, mem->r[0].size);
}

void *vdrv_ram_alloc(struct guest_mem *mem, uint64_t size)
{
	void *ram = aligned_alloc(4096, size);

	if (!ram)
		abort();
	memset(ram, 0, size);
	memset(mem, 0, sizeof(*mem));
	mem->r[0] = (struct mem_region){ .gpa = 0, .size = size, .hva = ram };
	mem->nr = 1;
	mem->total = size;
	return ram;
}

void vdrv_ram_free(struct guest_mem *mem)
{
	free(mem->r[0].hva);
}

int vdrv_init(struct vdrv *q, const struct guest_mem *mem, unsigned int size, uint64_t desc_gpa,
	      uint64_t avail_gpa, uint64_t used_gpa)
{
	/* The avail ring ends in used_event, the used ring in avail_event. */
	const uint64_t dlen = size * sizeof(struct vring_desc);
	const uint64_t alen = sizeof(struct vring_avail) + (size + 1) * sizeof(uint16_t);
	const uint64_t ulen =
	    sizeof(struct vring_used) + size * sizeof(struct vring_used_elem) + sizeof(uint16_t);

	*q = (struct vdrv){ .mem = mem,
			    .size = size,
			    .desc_gpa = desc_gpa,
			    .avail_gpa = avail_gpa,
			    .used_gpa = used_gpa,
			    .desc = gpa_to_hva(mem, desc_gpa, dlen),
			    .avail = gpa_to_hva(mem, avail_gpa, alen),
			    .used = gpa_to_hva(mem, used_gpa, ulen) };
	if (!size || !q->desc || !q->avail || !q->used)
		return -EFAULT;
	memset(q->desc, 0, dlen);
	memset(q->avail, 0, alen);
	memset(q->used, 0, ulen);
	return 0;
}

static void set_desc(struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(&t[i], &d, sizeof(d));
}

static uint16_t seg_flags(const struct vring_seg *s, unsigned int i, unsigned int n)
{
	return (s[i].wr ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
}

uint16_t vdrv_chain(struct vdrv *q, const struct vring_seg *s, unsigned int n)
{
	uint16_t head = q->next_desc;

	for (unsigned int i = 0; i < n; i++)
		set_desc(q->desc, (head + i) % q->size, s[i].gpa, s[i].len, seg_flags(s, i, n),
			 (head + i + 1) % q->size);
	q->next_desc = (head + (n ? n : 1)) % q->size;
	return head;
}

uint16_t vdrv_chain_indirect(struct vdrv *q, const struct vring_seg *s, unsigned int n,
			     uint64_t table_gpa)
{
	struct vring_desc *t = gpa_to_hva(q->mem, table_gpa, n * sizeof(struct vring_desc));
	uint16_t head = q->next_desc;

	if (!t) {
		fprintf(stderr, "vdrv: indirect table at %#llx is not RAM\n",
			(unsigned long long)table_gpa);
		abort();
	}
	for (unsigned int i = 0; i < n; i++)
		set_desc(t, i, s[i].gpa, s[i].len, seg_flags(s, i, n), i + 1);
	set_desc(q->desc, head, table_gpa, n * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	q->next_desc = (head + 1) % q->size;
	return head;
}

void vdrv_publish(struct vdrv *q, uint16_t head)
{
	q->avail->ring[q->avail_idx % q->size] = head;
	q->avail_idx++;
	__atomic_store_n(&q->avail->idx, q->avail_idx, __ATOMIC_RELEASE);
}

uint16_t vdrv_post(struct vdrv *q, const struct vring_seg *s, unsigned int n)
{
	uint16_t head = vdrv_chain(q, s, n);

	vdrv_publish(q, head);
	return head;
}

uint16_t vdrv_post_one(struct vdrv *q, uint64_t gpa, uint32_t len, bool wr)
{
	struct vring_seg s = { gpa, len, wr };

	return vdrv_post(q, &s, 1);
}

bool vdrv_used(struct vdrv *q, uint32_t *id, uint32_t *len)
{
	struct vring_used_elem *u;

	if (vdrv_used_idx(q) == q->last_used)
		return false;
	u = &q->used->ring[q->last_used % q->size];
	*id = u->id;
	*len = u->len;
	q->last_used++;
	return true;
}

bool vdrv_wait_used(struct vdrv *q, uint32_t *id, uint32_t *len, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (vdrv_used(q, id, len))
			return true;
		usleep(1000);
	}
	return false;
}

uint16_t vdrv_used_idx(const struct vdrv *q)
{
	return __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
}

uint16_t *vdrv_used_event(struct vdrv *q)
{
	return &q->avail->ring[q->size];
}

/* Sits right after used->ring[size]: not a uint16_t member of anything. */
uint16_t vdrv_avail_event(const struct vdrv *q)
{
	uint16_t v;

	memcpy(&v, &q->used->ring[q->size], sizeof(v));
	return v;
}

void vdrv_set_features(struct virtio_dev *d, uint64_t f)
{
	virtio_set_features(d, 0, (uint32_t)f);
	virtio_set_features(d, 1, (uint32_t)(f >> 32));
}

uint8_t vdrv_negotiate(struct virtio_dev *d, uint64_t f)
{
	virtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	virtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	vdrv_set_features(d, f);
	virtio_set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				 VIRTIO_CONFIG_S_FEATURES_OK);
	return virtio_get_status(d);
}

void vdrv_place(struct virtio_dev *d, unsigned int qi, const struct vdrv *q)
{
	d->q[qi].size = q->size;
	d->q[qi].desc = q->desc_gpa;
	d->q[qi].avail = q->avail_gpa;
	d->q[qi].used = q->used_gpa;
	d->q[qi].enabled = true;
}

int vdrv_map(struct virtio_dev *d, unsigned int qi, const struct vdrv *q, bool event_idx,
	     bool indirect)
{
	vdrv_place(d, qi, q);
	return vq_init(&d->q[qi].vq, q->mem, q->size, q->desc_gpa, q->avail_gpa, q->used_gpa,
		       event_idx, indirect);
}

int vdrv_set(struct virtio_dev *d, unsigned int qi, const struct vdrv *q)
{
	int ret;

	if ((ret = virtio_queue_set(d, qi, VIRTIO_QUEUE_SIZE, q->size)) ||
	    (ret = virtio_queue_set(d, qi, VIRTIO_QUEUE_DESC, q->desc_gpa)) ||
	    (ret = virtio_queue_set(d, qi, VIRTIO_QUEUE_DRIVER, q->avail_gpa)) ||
	    (ret = virtio_queue_set(d, qi, VIRTIO_QUEUE_DEVICE, q->used_gpa)))
		return ret;
	return virtio_queue_set(d, qi, VIRTIO_QUEUE_ENABLE, 1);
}

bool vdrv_kick(struct virtio_dev *d, unsigned int qi)
{
	uint64_t one = 1;

	return write(d->q[qi].kick_fd, &one, sizeof(one)) == sizeof(one);
}

bool vdrv_kick_pending(struct virtio_dev *d, unsigned int qi)
{
	uint64_t v;

	return read(d->q[qi].kick_fd, &v, sizeof(v)) == sizeof(v) && v;
}

static void quiet_notify_queue(struct virtio_dev *d, unsigned int q)
{
	(void)d;
	(void)q;
}

static void quiet_notify_config(struct virtio_dev *d)
{
	(void)d;
}

const struct virtio_transport_ops vdrv_quiet_tops = {
	.notify_queue = quiet_notify_queue,
	.notify_config = quiet_notify_config,
};

struct bounded_call {
	void (*fn)(void *);
	void *arg;
	atomic_bool done;
};

static void *bounded_thread(void *p)
{
	struct bounded_call *c = p;

	c->fn(c->arg);
	atomic_store(&c->done, true);
	return NULL;
}

bool returns_within(void (*fn)(void *), void *arg, int ms)
{
	/* Static: a call that does not return keeps using it after we do. */
	static struct bounded_call c;
	pthread_t t;

	c.fn = fn;
	c.arg = arg;
	atomic_store(&c.done, false);
	if (pthread_create(&t, NULL, bounded_thread, &c)) {
		fprintf(stderr, "returns_within: pthread_create failed\n");
		abort();
	}
	for (int i = 0; i < ms && !atomic_load(&c.done); i++)
		usleep(1000);
	if (!atomic_load(&c.done))
		return false;
	pthread_join(t, NULL);
	return true;
}
