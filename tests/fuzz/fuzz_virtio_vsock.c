// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virtio-vsock's packet handling against arbitrary guest packets. Guest RAM is
 * one exactly sized heap block (ASan sees any access outside it) holding the
 * rings (rx, tx, event: 16 entries each), 8 rx buffers and the tx packets. The
 * device serves its queues on this thread with virtio_vsock_process; its host
 * side is a fresh Unix socket in a temporary directory per input, and host port
 * 1 ("PATH_1") has a listener, so guest connections can succeed. Input: records
 *
 *   [0]      what: bit 0-1 the queue to process after posting (tx, rx, event),
 *            bit 2 post a tx packet (the header and payload follow), bit 3
 *            give rx buffers back, bit 4 write up to 64 bytes from the host side
 *            of every accepted connection
 *   [1..44]  a struct virtio_vsock_hdr (with bit 2), src_cid forced to the guest's
 *            when bit 5 of [0] is set, so that packets get past the CID check
 *   then     hdr.len % 512 payload bytes (as many as there are)
 *
 * Checked: used elements name heads < 16, used lengths fit the buffers, a packet
 * for the guest is well formed (host CID, the guest's CID, stream, a known op),
 * and nothing crashes or leaks.
 */
#include <errno.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "mm/guest_mem.h"
#include "virtio/virtio.h"
#include "virtio/vsock.h"
#include "vring_drv.h"

#define RAM	 0x20000u
#define QS	 16
#define RING(i)	 (0x1000u * (i))
#define RXB	 0x4000u /* 8 rx buffers of 512 */
#define RXLEN	 512
#define TXB	 0x8000u
#define GUEST	 5
#define MAX_RECS 32

static uint8_t *ram;
static struct vdrv qs[3];

static void check_used(unsigned int qi)
{
	struct vdrv *q = &qs[qi];
	uint32_t id, len;

	while (vdrv_used(q, &id, &len)) {
		struct virtio_vsock_hdr h;

		if (id >= QS)
			abort();
		if (qi == 0 && len) {
			if (len > RXLEN || len < sizeof(h))
				abort();
			memcpy(&h, ram + q->desc[id].addr, sizeof(h));
			if (h.src_cid != 2 || h.dst_cid != GUEST ||
			    h.type != VIRTIO_VSOCK_TYPE_STREAM || !h.op ||
			    h.op > VIRTIO_VSOCK_OP_CREDIT_REQUEST || len != sizeof(h) + h.len)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_vsock_opts o = { .name = "vsock", .cid = GUEST, .thread_cpu = -1 };
	char dir[] = "/tmp/fuzz-vsock.XXXXXX", path[96], lpath[104];
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	struct virtio_vsock *v;
	struct virtio_dev *d;
	uint32_t txoff = TXB;
	int lfd, recs = 0;

	log_verbosity = -1;
	if (!mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/v", dir);
	snprintf(lpath, sizeof(lpath), "%s_1", path);
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", lpath);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&u, sizeof(u)) || listen(lfd, 64))
		abort();
	ram = calloc(1, RAM);
	if (!ram)
		abort();
	{
		struct guest_mem m = { 0 };

		m.r[0] = (struct mem_region){ .gpa = 0, .size = RAM, .hva = ram };
		m.nr = 1;
		m.total = RAM;
		o.uds_path = path;
		static struct guest_mem mem;

		mem = m;
		if (virtio_vsock_create(&v, &mem, &o))
			abort();
		d = virtio_vsock_virtio(v);
		d->tops = &vdrv_quiet_tops;
		for (unsigned int i = 0; i < 3; i++)
			if (vdrv_init(&qs[i], &mem, QS, RING(i), RING(i) + 0x400,
				      RING(i) + 0x800) ||
			    vdrv_map(d, i, &qs[i], false, false))
				abort();
		d->started = true;
	}
	for (unsigned int i = 0; i < 8; i++)
		vdrv_post_one(&qs[0], RXB + i * RXLEN, RXLEN, true);
	while (size && recs++ < MAX_RECS) {
		uint8_t what = data[0];
		unsigned int qi = what & 3 ? (what & 3) - 1 : 1;

		data++;
		size--;
		if ((what & 4) && size >= sizeof(struct virtio_vsock_hdr)) {
			struct virtio_vsock_hdr h;
			uint32_t len;

			memcpy(&h, data, sizeof(h));
			data += sizeof(h);
			size -= sizeof(h);
			if (what & 32)
				h.src_cid = GUEST;
			len = h.len % 512;
			if (len > size)
				len = (uint32_t)size;
			if (txoff + sizeof(h) + len > RAM)
				txoff = TXB;
			memcpy(ram + txoff, &h, sizeof(h));
			memcpy(ram + txoff + sizeof(h), data, len);
			vdrv_post_one(&qs[1], txoff, (uint32_t)sizeof(h) + len, false);
			txoff += (uint32_t)sizeof(h) + len;
			data += len;
			size -= len;
		}
		if (what & 8) {
			/* The used rx buffers go back. */
			for (unsigned int i = 0; i < 8; i++)
				vdrv_post_one(&qs[0], RXB + i * RXLEN, RXLEN, true);
		}
		if (what & 16) {
			int c;

			while ((c = accept(lfd, NULL, NULL)) >= 0) {
				if (send(c, "host data for the guest", 23, MSG_NOSIGNAL) < 0)
					(void)0;
				close(c); /* the device sees data, then EOF */
			}
		}
		virtio_vsock_process(v, qi > 2 ? 1 : qi);
		virtio_vsock_process(v, 0);
		for (unsigned int i = 0; i < 3; i++)
			check_used(i);
	}
	d->started = false;
	virtio_vsock_destroy(v);
	free(ram);
	close(lfd);
	unlink(lpath);
	unlink(path);
	rmdir(dir);
	return 0;
}
