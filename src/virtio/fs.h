/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-fs (device ID 26): queue 0 is the high-priority queue (FORGET and
 * BATCH_FORGET, no reply), queues 1..N carry requests, one per vCPU, each
 * served by its own I/O thread (the first also serves queue 0). Every chain
 * goes to the in-process FUSE server as it came; the DAX window, when there
 * is one, is shared-memory region 0.
 */
#ifndef MINIVMM_VIRTIO_FS_H
#define MINIVMM_VIRTIO_FS_H

#include <stdint.h>

#include "mm/guest_mem.h"

struct virtio_fs;
struct fuse_server;
struct dax_window;
struct virtio_dev;
struct rl_config;

#define FS_QUEUE_SIZE 1024
#define FS_TAG_MAX    36 /* bytes, not NUL-terminated when all are used */

struct virtio_fs_opts {
	const char *name;	    /* "fs0", for messages and thread names */
	const char *tag;	    /* what the guest mounts, at most FS_TAG_MAX bytes */
	unsigned int queues;	    /* request queues, 1..VIRTIO_MAX_QUEUES-1 */
	const int *thread_cpu;	    /* [queues] host CPU for each queue's thread, or NULL */
	const struct rl_config *rl; /* iops and bandwidth limits; NULL: none */
};

/* @srv and @win (NULL: no DAX window) stay the caller's and must outlive the device. */
int virtio_fs_create(struct virtio_fs **out, struct fuse_server *srv, struct dax_window *win,
		  const struct guest_mem *mem, const struct virtio_fs_opts *o);
struct virtio_dev *virtio_fs_virtio(struct virtio_fs *f);
void virtio_fs_destroy(struct virtio_fs *f);

/*
 * Serve queue @qi on the calling thread as its I/O thread would (tests and
 * fuzzers, with the device not started by a transport). Returns the number of
 * chains taken.
 */
unsigned int virtio_fs_process(struct virtio_fs *f, unsigned int qi);

struct virtio_fs_stats {
	uint64_t requests, bad_chains, kicks, irqs;
};
void virtio_fs_get_stats(struct virtio_fs *f, struct virtio_fs_stats *st);

#endif
