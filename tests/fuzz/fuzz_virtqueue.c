// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Split virtqueues against arbitrary guest memory. Guest RAM is two exactly
 * sized heap blocks (so ASan sees any access outside them): 16 KiB at GPA 0
 * and 4 KiB at 4 GiB. Input:
 *
 *   [0]      queue size 1 << (v % 9)
 *   [1]      bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 rings at the offsets below,
 *            3 start from the indices in [10..11] (as after a restore),
 *            4 call enable/notify between pops
 *   [2]      iovec entries for each pop (e.max)
 *   [3]      unused
 *   [4..9]   desc, avail, used offsets (le16; bit 15 puts it in the high region)
 *   [10..11] initial last_avail / used_idx
 *   [12..13] length of the memory image that follows (low RAM, then high RAM)
 *   then     records {le16 offset, le16 value}: the guest writes the value into
 *            low RAM, and the device drains the queue again
 *
 * The device pops until empty or broken, completes every head and checks that
 * each iovec lies inside guest RAM, no device-writable one on the queue's own
 * rings (which vq_init refuses to place on top of each other), and the totals
 * add up.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_ring.h>

#include "mm/guest_mem.h"
#include "virtio/virtqueue.h"

#define LOW_SIZE  0x4000u
#define HIGH_GPA  0x100000000ULL
#define HIGH_SIZE 0x1000u
#define HDR_SIZE  14

struct fuzz_ram {
	struct guest_mem mem;
	unsigned char *low, *high;
};

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static bool in_block(const void *p, size_t len, const unsigned char *base, size_t size)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

	return a >= b && a - b <= size && len <= size - (a - b);
}

static bool in_ram(const struct fuzz_ram *r, const void *p, size_t len)
{
	return in_block(p, len, r->low, LOW_SIZE) || in_block(p, len, r->high, HIGH_SIZE);
}

/* What vq_init must have checked, computed independently. */
static bool ring_ok(uint64_t gpa, uint64_t len)
{
	return (gpa + len >= gpa) &&
	       ((gpa + len <= LOW_SIZE) || (gpa >= HIGH_GPA && gpa + len <= HIGH_GPA + HIGH_SIZE));
}

static bool apart(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a + alen <= b || b + blen <= a;
}

/* Host ranges of the three areas, for the device-writable buffer check. */
static const unsigned char *area[3];
static size_t area_len[3];

static bool on_area(const unsigned char *p, size_t len)
{
	for (int i = 0; i < 3; i++)
		if (p < area[i] + area_len[i] && area[i] < p + len)
			return true;
	return false;
}

static void check_elem(const struct fuzz_ram *r, const struct virtqueue *vq,
		       const struct vq_elem *e)
{
	uint64_t out = 0, in = 0;
	volatile unsigned char sink = 0;
	unsigned int i;

	if (e->head >= vq->size || e->out_num + e->in_num > e->max)
		abort();
	for (i = 0; i < e->out_num + e->in_num; i++) {
		const unsigned char *p = e->iov[i].iov_base;
		size_t len = e->iov[i].iov_len;

		/* Zero-length buffers are documented to give no iovec. */
		if (!len || !in_ram(r, p, len))
			abort();
		if (i >= e->out_num && on_area(p, len))
			abort();
		/* Touch both ends so ASan checks them too. */
		sink ^= p[0] ^ p[len - 1];
		if (i < e->out_num)
			out += len;
		else
			in += len;
	}
	(void)sink;
	if (out != e->out_len || in != e->in_len)
		abort();
}

static void check_dead(struct virtqueue *vq, struct vq_elem *e)
{
	if (!vq->broken || vq_pop(vq, e) != VQ_BROKEN || vq_has_avail(vq) || vq_should_notify(vq) ||
	    vq_enable_notify(vq, true))
		abort();
	vq_push(vq, 0, 0);
}

/* Pop and complete until empty or broken. Returns false once broken. */
static bool drain(struct fuzz_ram *r, struct virtqueue *vq, struct vq_elem *e, bool bounded,
		  bool notify)
{
	unsigned int k;

	for (k = 0; k <= 2u * vq->size; k++) {
		int ret = vq_pop(vq, e);

		switch (ret) {
		case VQ_EMPTY:
			return true;
		case VQ_BROKEN:
			check_dead(vq, e);
			return false;
		case VQ_BAD_CHAIN:
			if (e->head >= vq->size || e->out_num || e->in_num || e->out_len ||
			    e->in_len)
				abort();
			vq_push(vq, e->head, 0);
			break;
		case VQ_OK:
			check_elem(r, vq, e);
			vq_push(vq, e->head, (uint32_t)e->in_len);
			break;
		default:
			abort();
		}
		if (notify && (k & 1)) {
			vq_should_notify(vq);
			vq_enable_notify(vq, k & 2);
		}
		/* Nothing writes the avail ring here, so at most size heads can be ready. */
		if (bounded && k >= vq->size)
			abort();
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *hdr = data;
	struct fuzz_ram r;
	struct virtqueue vq;
	struct vq_elem e;
	unsigned int qsize, img;
	uint64_t gpa[3];
	bool custom, notify;
	uint8_t flags;
	int ret;

	if (size < HDR_SIZE)
		return 0;
	qsize = 1u << (data[0] % 9);
	flags = data[1];
	custom = flags & 4;
	notify = flags & 16;
	if (custom) {
		for (int i = 0; i < 3; i++) {
			uint16_t v = get16(data + 4 + 2 * i);

			gpa[i] = (v & 0x8000) ? HIGH_GPA + (v & 0x7fff) : v;
		}
	} else {
		gpa[0] = 0;
		gpa[1] = 16 * qsize;
		gpa[2] = (gpa[1] + 6 + 2 * qsize + 3) & ~3ULL;
	}

	memset(&r, 0, sizeof(r));
	r.low = calloc(1, LOW_SIZE);
	r.high = calloc(1, HIGH_SIZE);
	if (!r.low || !r.high)
		abort();
	r.mem.r[0] = (struct mem_region){ .gpa = 0, .size = LOW_SIZE, .hva = r.low };
	r.mem.r[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = HIGH_SIZE, .hva = r.high };
	r.mem.nr = 2;
	r.mem.total = LOW_SIZE + HIGH_SIZE;

	img = get16(data + 12);
	data += HDR_SIZE;
	size -= HDR_SIZE;
	if (img > size)
		img = size;
	if (img > LOW_SIZE + HIGH_SIZE)
		img = LOW_SIZE + HIGH_SIZE;
	memcpy(r.low, data, img < LOW_SIZE ? img : LOW_SIZE);
	if (img > LOW_SIZE)
		memcpy(r.high, data + LOW_SIZE, img - LOW_SIZE);
	data += img;
	size -= img;

	ret = vq_init(&vq, &r.mem, qsize, gpa[0], gpa[1], gpa[2], flags & 1, flags & 2);
	if (!ret !=
	    (!(gpa[0] & 15) && !(gpa[1] & 1) && !(gpa[2] & 3) && ring_ok(gpa[0], 16ULL * qsize) &&
	     ring_ok(gpa[1], 6 + 2ULL * qsize) && ring_ok(gpa[2], 6 + 8ULL * qsize) &&
	     apart(gpa[0], 16ULL * qsize, gpa[1], 6 + 2ULL * qsize) &&
	     apart(gpa[0], 16ULL * qsize, gpa[2], 6 + 8ULL * qsize) &&
	     apart(gpa[1], 6 + 2ULL * qsize, gpa[2], 6 + 8ULL * qsize)))
		abort();
	if (!ret) {
		area[0] = (const unsigned char *)vq.desc, area_len[0] = 16ULL * qsize;
		area[1] = (const unsigned char *)vq.avail, area_len[1] = 6 + 2ULL * qsize;
		area[2] = (const unsigned char *)vq.used, area_len[2] = 6 + 8ULL * qsize;
	}

	memset(&e, 0, sizeof(e));
	e.max = hdr[2];
	/* Exactly e.max entries: ASan sees an overrun. */
	e.iov = malloc(e.max * sizeof(*e.iov) + !e.max);
	if (!e.iov)
		abort();
	if (ret) {
		check_dead(&vq, &e);
		goto out;
	}
	if (flags & 8) {
		vq.last_avail = get16(hdr + 10);
		vq.used_idx = vq.last_avail;
	}

	if (!drain(&r, &vq, &e, !custom && !notify, notify))
		goto out;
	vq_should_notify(&vq);
	if (vq_enable_notify(&vq, true) != vq_has_avail(&vq))
		abort();
	while (size >= 4) {
		uint16_t off = get16(data) % (LOW_SIZE - 1), val = get16(data + 2);

		memcpy(r.low + off, &val, 2);
		data += 4;
		size -= 4;
		if (!drain(&r, &vq, &e, !custom && !notify, notify))
			break;
		vq_should_notify(&vq);
	}
out:
	free(e.iov);
	free(r.low);
	free(r.high);
	return 0;
}
