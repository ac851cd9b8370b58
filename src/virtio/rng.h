/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-rng (virtio 1.2, 5.4): entropy for the guest from the host's getrandom(),
 * one request queue on one I/O thread. Each buffer the driver makes available is
 * filled (at most RNG_MAX_REQUEST bytes of it) and given back at once, so a driver
 * that asks without end costs one bounded fill per buffer, nothing that grows.
 */
#ifndef MINIVMM_VIRTIO_RNG_H
#define MINIVMM_VIRTIO_RNG_H

#include <stdint.h>

#include "mm/guest_mem.h"

struct virtio_dev;
struct virtio_rng;

#define RNG_QUEUE_SIZE	64
#define RNG_MAX_REQUEST 4096u /* bytes given for one buffer (Linux asks for 64 or less) */

struct virtio_rng_opts {
	const char *name; /* "rng", for messages and the thread name */
	int thread_cpu;	  /* pin the I/O thread here, or -1 */
};

struct virtio_rng_stats {
	uint64_t requests, bytes, bad_chains;
};

int virtio_rng_create(struct virtio_rng **out, const struct guest_mem *mem,
		      const struct virtio_rng_opts *o);
void virtio_rng_destroy(struct virtio_rng *r);
struct virtio_dev *virtio_rng_virtio(struct virtio_rng *r);
void virtio_rng_stats(const struct virtio_rng *r, struct virtio_rng_stats *out);
/* Serve the queue on the calling thread (tests, fuzzers). */
unsigned int virtio_rng_process(struct virtio_rng *r);

#endif
