// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-rng's queue against arbitrary chains. Guest RAM is one exactly sized,
 * page-aligned block (ASan sees any access outside it) holding the ring (16
 * entries) and a buffer area. Input: records
 *
 *   [0]      bits 0-1: segments in the chain - 1; bits 2-5: which are writable
 *   then per segment [0..1] where it starts (le16, may be past guest RAM),
 *            [2..3] its length (le16)
 *
 * The device serves the queue on this thread (virtio_rng_process). Checked: used
 * elements name heads < 16 and never claim more than the chain's writable bytes
 * or RNG_MAX_REQUEST; nothing crashes or leaks.
 */
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mm/guest_mem.h"
#include "virtio/rng.h"
#include "virtio/virtio.h"
#include "vring_drv.h"

#define RAM	 0x20000u
#define QS	 16
#define BUF	 0x2000u
#define MAX_RECS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_rng_opts o = { .name = "rng", .thread_cpu = -1 };
	static struct guest_mem mem;
	struct virtio_rng *r;
	struct virtio_dev *d;
	struct vdrv q;
	int recs = 0;

	log_verbosity = -1;
	vdrv_ram_alloc(&mem, RAM);
	if (virtio_rng_create(&r, &mem, &o))
		abort();
	d = virtio_rng_virtio(r);
	d->tops = &vdrv_quiet_tops;
	d->acked = d->features;
	if (vdrv_init(&q, &mem, QS, 0, 0x400, 0x800) || vdrv_map(d, 0, &q, false, false))
		abort();
	d->started = true;
	while (size >= 1 && recs++ < MAX_RECS) {
		struct vring_seg s[4];
		unsigned int n = (data[0] & 3) + 1;
		uint64_t writable = 0;
		uint32_t id, ulen;

		if (size < 1 + 4 * (size_t)n)
			break;
		for (unsigned int i = 0; i < n; i++) {
			const uint8_t *p = data + 1 + 4 * i;

			s[i].gpa = BUF + (uint32_t)(p[0] | p[1] << 8) * 2;
			s[i].len = (uint32_t)(p[2] | p[3] << 8);
			s[i].wr = data[0] >> (2 + i) & 1;
			writable += s[i].wr ? s[i].len : 0;
		}
		data += 1 + 4 * n;
		size -= 1 + 4 * (size_t)n;
		vdrv_post(&q, s, n);
		virtio_rng_process(r);
		while (vdrv_used(&q, &id, &ulen))
			if (id >= QS || ulen > writable || ulen > RNG_MAX_REQUEST)
				abort();
	}
	d->started = false;
	virtio_rng_destroy(r);
	vdrv_ram_free(&mem);
	return 0;
}
