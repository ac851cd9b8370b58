// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-blk's request path against arbitrary guest memory. Guest RAM is two
 * exactly sized heap blocks (so ASan sees any access outside them): 16 KiB at
 * GPA 0 and 4 KiB at 4 GiB. The device serves queue 0 on this thread with
 * virtio_blk_process, as its I/O thread would, on a null backend or on a small
 * raw image (a memfd, or a temp file, made once per process). Input:
 *
 *   [0]      queue size 1 << (v % 9) (the transport allows at most 256)
 *   [1]      bit 0 EVENT_IDX, 1 INDIRECT_DESC, 2 raw backend, 3 read-only,
 *            4 start from the indices in [4..5] (as after a restore),
 *            5 rings at the offsets in [6..11], 6 leave raw requests in
 *            flight between passes
 *   [2]      passes of virtio_blk_process per step: 1 + v % 4
 *   [3]      null backend size: (v + 1) * 8 sectors (raw: always RAW_SIZE)
 *   [4..5]   initial last_avail and used_idx (le16)
 *   [6..11]  desc, avail, used offsets (le16; bit 15 puts it in the high region)
 *   [12..13] length of the memory image that follows (low RAM, then high RAM)
 *   [14..15] unused
 *   then     records {le16 offset, le16 value}: the guest writes the value into
 *            low RAM, then the device runs another step
 *
 * Checked: every used element the device publishes names a head < queue size;
 * nothing stays in flight once the event loop is drained (a hang otherwise);
 * a broken ring always leaves DEVICE_NEEDS_RESET set.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_ring.h>

#include "block/aio.h"
#include "block/backend.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "virtio/blk.h"
#include "virtio/virtio.h"

#define LOW_SIZE    0x4000u
#define HIGH_GPA    0x100000000ULL
#define HIGH_SIZE   0x1000u
#define HDR_SIZE    16
#define RAW_SIZE    (64 * 1024)
#define MAX_RECORDS 64

static struct aio_ctx ctx;
static int raw_fd = -1;
static char raw_path[64];
static char tmp_path[256];

static uint16_t get16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static void notify_queue(struct virtio_dev *d, unsigned int q)
{
	(void)d;
	(void)q;
}

static void notify_config(struct virtio_dev *d)
{
	(void)d;
}

static const struct virtio_transport_ops tops = {
	.notify_queue = notify_queue,
	.notify_config = notify_config,
};

static void unlink_tmp(void)
{
	if (tmp_path[0])
		unlink(tmp_path);
}

/* Once per process: the event loop and the raw image's file. */
static void init_once(void)
{
	const char *dir = getenv("TMPDIR");

	log_verbosity = -1; /* bad requests warn by design */
	if (aio_init(&ctx, 64))
		abort();
	raw_fd = memfd_create("fuzz-virtio-blk", MFD_CLOEXEC);
	if (raw_fd >= 0 && !access("/proc/self/fd", X_OK)) {
		snprintf(raw_path, sizeof(raw_path), "/proc/self/fd/%d", raw_fd);
		return;
	}
	if (raw_fd >= 0)
		close(raw_fd);
	snprintf(tmp_path, sizeof(tmp_path), "%s/fuzz-virtio-blk-XXXXXX",
		 dir && *dir ? dir : "/tmp");
	raw_fd = mkstemp(tmp_path);
	if (raw_fd < 0)
		abort();
	atexit(unlink_tmp);
	snprintf(raw_path, sizeof(raw_path), "%s", tmp_path);
}

static struct blk_backend *open_backend(uint8_t flags, uint8_t sectors)
{
	struct blk_open_opts o = { .readonly = flags & 8 };
	struct blk_backend *be = NULL;
	char err[256];

	if (flags & 4) {
		/* The same image every run: an input replays the same way. */
		if (ftruncate(raw_fd, 0) || ftruncate(raw_fd, RAW_SIZE))
			abort();
		o.format = BLK_FMT_RAW;
		if (blk_open(&be, raw_path, &o, err, sizeof(err)))
			abort();
	} else {
		o.format = BLK_FMT_NULL;
		o.null_size = (sectors + 1ULL) * 8 * 512;
		if (blk_open(&be, NULL, &o, err, sizeof(err)))
			abort();
	}
	return be;
}

/* Run the event loop until the device has nothing in flight. */
static void drain(struct virtio_blk *b)
{
	int idle = 0;

	while (virtio_blk_inflight(b, 0) || ctx.inflight) {
		int n = aio_run_once(&ctx, 1000);

		if (n < 0)
			abort();
		idle = n ? 0 : idle + 1;
		if (idle > 10)
			abort(); /* a request that never completes */
	}
}

/* The used elements published since *@seen: heads the device may name. */
static void check_used(struct virtio_dev *d, uint16_t *seen)
{
	struct virtqueue *vq = &d->q[0].vq;
	uint16_t n = vq->used_idx - *seen, i;

	if (vq->broken) {
		if (!(virtio_get_status(d) & VIRTIO_CONFIG_S_NEEDS_RESET))
			abort();
		return;
	}
	if (n > vq->size)
		n = vq->size; /* older ones were overwritten by newer ones */
	for (i = vq->used_idx - n; i != vq->used_idx; i++)
		if (le32toh(vq->used->ring[i & (vq->size - 1)].id) >= vq->size)
			abort();
	*seen = vq->used_idx;
}

static void step(struct virtio_blk *b, struct virtio_dev *d, unsigned int passes, bool leave,
		 uint16_t *seen)
{
	for (unsigned int k = 0; k < passes; k++) {
		virtio_blk_process(b, 0, &ctx);
		check_used(d, seen);
		if (!leave)
			drain(b);
	}
	drain(b);
	/* Completions from the loop signal on the next pass. */
	virtio_blk_process(b, 0, &ctx);
	drain(b);
	check_used(d, seen);
	if (virtio_blk_inflight(b, 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_blk_opts bo = { .name = "fz", .queues = 1, .threads = 1, .serial = "fuzz" };
	const uint8_t *hdr = data;
	struct guest_mem mem;
	struct blk_backend *be;
	struct virtio_blk *b;
	struct virtio_dev *d;
	unsigned char *low, *high;
	unsigned int qsize, img, passes, records = 0;
	uint64_t gpa[3];
	uint16_t seen;
	uint8_t flags;

	if (raw_fd < 0)
		init_once();
	if (size < HDR_SIZE)
		return 0;
	qsize = 1u << (data[0] % 9);
	flags = data[1];
	passes = 1 + data[2] % 4;
	if (flags & 32) {
		for (int i = 0; i < 3; i++) {
			uint16_t v = get16(data + 6 + 2 * i);

			gpa[i] = (v & 0x8000) ? HIGH_GPA + (v & 0x7fff) : v;
		}
	} else {
		gpa[0] = 0;
		gpa[1] = 16 * qsize;
		gpa[2] = (gpa[1] + 6 + 2 * qsize + 3) & ~3ULL;
	}

	low = calloc(1, LOW_SIZE);
	high = calloc(1, HIGH_SIZE);
	if (!low || !high)
		abort();
	memset(&mem, 0, sizeof(mem));
	mem.r[0] = (struct mem_region){ .gpa = 0, .size = LOW_SIZE, .hva = low };
	mem.r[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = HIGH_SIZE, .hva = high };
	mem.nr = 2;
	mem.total = LOW_SIZE + HIGH_SIZE;

	img = get16(data + 12);
	data += HDR_SIZE;
	size -= HDR_SIZE;
	if (img > size)
		img = size;
	if (img > LOW_SIZE + HIGH_SIZE)
		img = LOW_SIZE + HIGH_SIZE;
	memcpy(low, data, img < LOW_SIZE ? img : LOW_SIZE);
	if (img > LOW_SIZE)
		memcpy(high, data + LOW_SIZE, img - LOW_SIZE);
	data += img;
	size -= img;

	be = open_backend(flags, hdr[3]);
	if (virtio_blk_create(&b, be, &mem, &bo))
		abort();
	d = virtio_blk_virtio(b);
	d->tops = &tops;
	/* What DRIVER_OK does for queue 0, without starting the I/O threads. */
	d->q[0].size = qsize;
	d->q[0].desc = gpa[0];
	d->q[0].avail = gpa[1];
	d->q[0].used = gpa[2];
	d->q[0].enabled = true;
	if (vq_init(&d->q[0].vq, &mem, qsize, gpa[0], gpa[1], gpa[2], flags & 1, flags & 2))
		goto out;
	if (flags & 16) {
		d->q[0].vq.last_avail = hdr[4] | hdr[5] << 8;
		d->q[0].vq.used_idx = d->q[0].vq.last_avail;
	}
	seen = d->q[0].vq.used_idx;

	step(b, d, passes, flags & 64, &seen);
	while (size >= 4 && records++ < MAX_RECORDS) {
		uint16_t off = get16(data) % (LOW_SIZE - 1), val = get16(data + 2);

		memcpy(low + off, &val, 2);
		data += 4;
		size -= 4;
		step(b, d, passes, flags & 64, &seen);
	}
out:
	drain(b);
	/* The image's fixed-file slot in our long-lived ring. */
	if (be->ops->detach)
		be->ops->detach(be, &ctx);
	virtio_blk_destroy(b);
	free(low);
	free(high);
	return 0;
}
