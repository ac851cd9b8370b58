// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Split virtqueues, device side (virtio 1.2, 2.7).
 *
 * The rings live in guest RAM and another CPU (the guest) writes them while we
 * read: shared indices go through __atomic loads/stores, and each descriptor is
 * copied to the stack once before it is checked and used, so a guest that
 * rewrites it concurrently can only change which (checked) values we see.
 * Virtio 1.x rings are little-endian.
 */
#include <endian.h>
#include <string.h>
#include <linux/virtio_ring.h>

#include "virtio/virtqueue.h"

/* A chain reachable through a 16-bit next field has at most this many distinct descriptors. */
#define VQ_TABLE_WALK_MAX 65536u

#define vq_load16(p, order) le16toh(__atomic_load_n((p), (order)))

/* Host pointer for the guest range, NULL unless it lies wholly inside one RAM region. */
static inline void *vq_map(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (len > UINT64_MAX - gpa)
		return NULL;
	return gpa_to_hva(mem, gpa, len);
}

void vq_clear(struct virtqueue *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->broken = true;
}

static bool overlaps(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
	return a < b_end && b < a_end;
}

/* Whether [gpa, gpa+len) (already known to be inside RAM) touches one of the rings. */
static bool on_rings(const struct virtqueue *vq, uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < 3; i++)
		if (overlaps(gpa, gpa + len, vq->area[i], vq->area_end[i]))
			return true;
	return false;
}

int vq_init(struct virtqueue *vq, const struct guest_mem *mem, unsigned int size, uint64_t desc_gpa,
	    uint64_t avail_gpa, uint64_t used_gpa, bool event_idx, bool indirect)
{
	/* desc[size]; avail flags, idx, ring[size], used_event; used flags, idx,
	 * ring[size], avail_event */
	const uint64_t len[3] = { 16ULL * size, 6 + 2ULL * size, 6 + 8ULL * size };
	const uint64_t gpa[3] = { desc_gpa, avail_gpa, used_gpa };
	void *p[3];

	/* Until every check passed, every call on this queue fails safely. */
	vq_clear(vq);
	vq->mem = mem;
	if (!size || size > VQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3))
		return -EINVAL;
	for (unsigned int i = 0; i < 3; i++) {
		p[i] = vq_map(mem, gpa[i], len[i]);
		if (!p[i])
			return -EINVAL;
		vq->area[i] = gpa[i];
		vq->area_end[i] = gpa[i] + len[i];
	}
	/* Apart: what the device writes in the used ring must not turn into descriptors
	 * or available entries (a ring that feeds itself). */
	for (unsigned int i = 0; i < 3; i++)
		for (unsigned int j = i + 1; j < 3; j++)
			if (overlaps(vq->area[i], vq->area_end[i], vq->area[j], vq->area_end[j]))
				return -EINVAL;
	vq->desc = p[0];
	vq->avail = p[1];
	vq->used = p[2];
	vq->size = size;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->broken = false;
	return 0;
}

/*
 * Walk the chain at @e->head into @e. Out-of-range indices, loops, buffers
 * outside RAM, bad ordering or indirect use and iovec overflow are errors.
 * Zero-length buffers are checked for flags and ordering but add no iovec.
 */
static int vq_walk(struct virtqueue *vq, struct vq_elem *e)
{
	/* Bytes, not descriptors: an indirect table need not be aligned. */
	const unsigned char *table = (const unsigned char *)vq->desc;
	unsigned int entries = vq->size; /* descriptors in @table */
	unsigned int budget = vq->size;	 /* descriptors we may still visit in @table */
	unsigned int n = 0, in_num = 0;
	uint64_t out_len = 0, in_len = 0;
	bool in_table = false, seen_in = false;
	unsigned int i = e->head;

	for (;;) {
		struct vring_desc d;
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		void *p;

		/* More descriptors than the table holds: there is a loop. */
		if (!budget--)
			return -ELOOP;
		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		/* Use only the copy from here on, never the guest's memory again. */
		__asm__ __volatile__("" ::: "memory");
		addr = le64toh(d.addr);
		len = le32toh(d.len);
		flags = le16toh(d.flags);

		if (flags & VRING_DESC_F_INDIRECT) {
			/* The WRITE flag of the descriptor that points to a table is ignored. */
			if (!vq->indirect || in_table || (flags & VRING_DESC_F_NEXT))
				return -EINVAL;
			if (!len || (len % sizeof(struct vring_desc)))
				return -EINVAL;
			table = vq_map(vq->mem, addr, len);
			if (!table)
				return -EFAULT;
			in_table = true;
			entries = len / sizeof(struct vring_desc);
			budget = entries < VQ_TABLE_WALK_MAX ? entries : VQ_TABLE_WALK_MAX;
			i = 0;
			continue;
		}

		if (flags & VRING_DESC_F_WRITE)
			seen_in = true;
		else if (seen_in)
			return -EINVAL; /* device-readable after device-writable */

		if (len) {
			p = vq_map(vq->mem, addr, len);
			if (!p)
				return -EFAULT;
			/* The device would write its own rings: refused (docs/virtio.md). */
			if ((flags & VRING_DESC_F_WRITE) && on_rings(vq, addr, len))
				return -EFAULT;
			if (n >= e->max)
				return -ENOBUFS;
			e->iov[n].iov_base = p;
			e->iov[n].iov_len = len;
			n++;
			if (seen_in) {
				in_num++;
				in_len += len;
			} else {
				out_len += len;
			}
		}

		if (!(flags & VRING_DESC_F_NEXT))
			break;
		i = le16toh(d.next);
		if (i >= entries)
			return -EINVAL;
	}
	e->out_num = n - in_num;
	e->in_num = in_num;
	e->out_len = out_len;
	e->in_len = in_len;
	return 0;
}

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	uint16_t avail_idx, head;

	if (vq->broken)
		return VQ_BROKEN;
	/* Acquire: the ring entry and descriptors were written before idx. */
	avail_idx = vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
	if (avail_idx == vq->last_avail)
		return VQ_EMPTY;
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->size)
		goto broken;
	head = vq_load16(&vq->avail->ring[vq->last_avail & (vq->size - 1)], __ATOMIC_RELAXED);
	if (head >= vq->size)
		goto broken;
	vq->last_avail++;

	e->head = head;
	if (vq_walk(vq, e) < 0) {
		/* Nothing of a bad chain may be used: report it empty. */
		e->out_num = e->in_num = 0;
		e->out_len = e->in_len = 0;
		return VQ_BAD_CHAIN;
	}
	return VQ_OK;

broken:
	vq->broken = true;
	return VQ_BROKEN;
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *u;

	if (vq->broken)
		return;
	u = &vq->used->ring[vq->used_idx & (vq->size - 1)];
	__atomic_store_n(&u->id, htole32(head), __ATOMIC_RELAXED);
	__atomic_store_n(&u->len, htole32(len), __ATOMIC_RELAXED);
	vq->used_idx++;
	/* Release: the element is visible before the index that publishes it. */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old, used_event;
	bool valid;

	if (vq->broken)
		return false;
	/* Our used->idx store must be visible before we read the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(vq_load16(&vq->avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);

	old = vq->signalled_used;
	valid = vq->signalled_valid;
	used_event = vq_load16(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
	vq->signalled_used = vq->used_idx;
	vq->signalled_valid = true;
	return !valid || vring_need_event(used_event, vq->used_idx, old);
}

bool vq_has_avail(struct virtqueue *vq)
{
	if (vq->broken)
		return false;
	return vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

bool vq_indices(struct virtqueue *vq, struct vq_indices *ix)
{
	if (vq->broken || !vq->avail)
		return false;
	ix->avail = vq_load16(&vq->avail->idx, __ATOMIC_ACQUIRE);
	ix->taken = vq->last_avail;
	ix->used = vq->used_idx;
	ix->used_event =
	    vq->event_idx ? vq_load16(&vq->avail->ring[vq->size], __ATOMIC_RELAXED) : vq->used_idx;
	ix->signalled = vq->signalled_used;
	return true;
}

bool vq_enable_notify(struct virtqueue *vq, bool enable)
{
	if (vq->broken)
		return false;
	if (vq->event_idx) {
		/* avail_event sits right after used->ring[size]. */
		if (enable)
			__atomic_store_n((uint16_t *)&vq->used->ring[vq->size],
					 htole16(vq->last_avail), __ATOMIC_RELAXED);
	} else {
		/* Only NO_NOTIFY is defined in used->flags: no need to read it back. */
		__atomic_store_n(&vq->used->flags, htole16(enable ? 0 : VRING_USED_F_NO_NOTIFY),
				 __ATOMIC_RELAXED);
	}
	if (!enable)
		return false;
	/* The guest must see the request before we look for buffers it missed. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vq_has_avail(vq);
}
