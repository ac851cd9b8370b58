// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-balloon's queues against arbitrary guest buffers. Guest RAM is one
 * exactly sized, page-aligned block (ASan sees any access outside it) holding
 * the four rings (16 entries each) and a buffer area the input fills. The
 * device serves its queues on this thread with virtio_balloon_process; its
 * discard callback checks that every range it is asked to give back is whole
 * pages inside guest RAM (abort otherwise). Input: [0] the features the driver
 * accepted (bit 0 statistics, bit 1 reporting), then records
 *
 *   [0]      what: bits 0-1 the queue, bit 2 the buffer is device-writable,
 *            bit 3 ask for statistics first, bit 4 set a target first
 *   [1..2]   where the buffer starts in the buffer area (le16)
 *   [3..4]   its length (le16, % 4096)
 *   then     up to that many bytes, copied into the buffer (PFNs, statistics)
 *
 * Checked: used elements name heads < 16, discards stay in guest RAM, and
 * nothing crashes or leaks.
 */
#include <linux/virtio_balloon.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mm/guest_mem.h"
#include "virtio/balloon.h"
#include "virtio/virtio.h"
#include "vring_drv.h"

#define RAM	 0x40000u
#define QS	 16
#define NQ	 4
#define RING(i)	 (0x1000u * (i))
#define BUF	 0x8000u
#define MAX_RECS 32

static uint8_t *ram;
static struct vdrv qs[NQ];

static int discard(void *ctx, void *hva, size_t len)
{
	uintptr_t a = (uintptr_t)hva;

	(void)ctx;
	if (!len || a % 4096 || len % 4096 || a < (uintptr_t)ram || a + len > (uintptr_t)ram + RAM)
		abort();
	memset(hva, 0, len); /* what MADV_DONTNEED does to anonymous memory */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_balloon_opts o = {
		.name = "balloon",
		.stats = true,
		.reporting = true,
		.deflate_on_oom = true,
		.thread_cpu = -1,
		.discard = discard,
	};
	static struct guest_mem mem;
	struct virtio_balloon *b;
	struct virtio_dev *d;
	int recs = 0;

	if (!size)
		return 0;
	log_verbosity = -1;
	ram = vdrv_ram_alloc(&mem, RAM);
	if (virtio_balloon_create(&b, &mem, &o))
		abort();
	d = virtio_balloon_virtio(b);
	d->tops = &vdrv_quiet_tops;
	d->acked = d->features & ~((data[0] & 1 ? 0 : 1ULL << VIRTIO_BALLOON_F_STATS_VQ) |
				   (data[0] & 2 ? 0 : 1ULL << VIRTIO_BALLOON_F_REPORTING));
	data++;
	size--;
	for (unsigned int i = 0; i < NQ; i++)
		if (vdrv_init(&qs[i], &mem, QS, RING(i), RING(i) + 0x400, RING(i) + 0x800) ||
		    vdrv_map(d, i, &qs[i], false, false))
			abort();
	d->started = true;
	while (size >= 5 && recs++ < MAX_RECS) {
		uint8_t what = data[0];
		uint32_t off = (data[1] | data[2] << 8) % (RAM - BUF);
		uint32_t len = (data[3] | data[4] << 8) % 4096, n;
		unsigned int qi = what & 3;
		uint32_t id, ulen;

		data += 5;
		size -= 5;
		if (BUF + off + len > RAM)
			len = RAM - BUF - off;
		n = len < size ? len : (uint32_t)size;
		memcpy(ram + BUF + off, data, n);
		data += n;
		size -= n;
		if (what & 8)
			virtio_balloon_request_stats(b);
		if (what & 16)
			virtio_balloon_set_target(b, off);
		vdrv_post_one(&qs[qi], BUF + off, len, what & 4);
		virtio_balloon_process(b, qi);
		for (unsigned int i = 0; i < NQ; i++)
			while (vdrv_used(&qs[i], &id, &ulen))
				if (id >= QS)
					abort();
	}
	d->started = false;
	virtio_balloon_destroy(b);
	vdrv_ram_free(&mem);
	return 0;
}
