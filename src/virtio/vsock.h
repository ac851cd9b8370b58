/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-vsock in the VMM (no vhost module, no privilege), with the host side
 * Firecracker's way: one Unix socket per VM.
 *
 * - host to guest: connect to PATH and write "CONNECT <port>\n"; once the guest
 *   accepts, minivmm answers "OK <host port>\n" and the socket carries the stream.
 * - guest to host: a guest connection to CID 2 port P connects to "PATH_P".
 *
 * All of it runs on the device's one I/O thread (the engine's): the three
 * queues (rx, tx, event), the listening socket and every connection's socket.
 * Connections are not part of a snapshot: after a restore the guest gets a
 * transport reset event and its sockets see a reset, as Linux expects.
 */
#ifndef MINIVMM_VIRTIO_VSOCK_H
#define MINIVMM_VIRTIO_VSOCK_H

#include <stdint.h>

#include "mm/guest_mem.h"

struct virtio_dev;
struct virtio_vsock;

#define VSOCK_QUEUE_SIZE 128
#define VSOCK_HOST_CID	 2
#define VSOCK_MAX_CONNS	 256		/* at once, per VM */
#define VSOCK_BUF_ALLOC	 (256u << 10) /* what each connection buffers for the guest */

struct virtio_vsock_opts {
	const char *name;     /* "vsock", for messages and the thread name */
	uint64_t cid;	      /* the guest's CID, >= 3 */
	const char *uds_path; /* the host side's Unix socket */
	int thread_cpu;	      /* pin the I/O thread here, or -1 */
};

int virtio_vsock_create(struct virtio_vsock **out, const struct guest_mem *mem,
			const struct virtio_vsock_opts *o);
struct virtio_dev *virtio_vsock_virtio(struct virtio_vsock *v);
void virtio_vsock_destroy(struct virtio_vsock *v);
/*
 * Serve queue @qi (0 rx, 1 tx, 2 event) on the calling thread, as the I/O thread
 * would (fuzzers and tests, the device not started by a transport; the host
 * sockets are not watched then). Returns the chains taken.
 */
unsigned int virtio_vsock_process(struct virtio_vsock *v, unsigned int qi);

#endif
