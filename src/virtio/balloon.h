/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * virtio-balloon (virtio 1.2, 5.5): the host asks for guest memory back (a
 * target in 4 KiB pages), the guest gives pages (inflate) and takes them back
 * (deflate), reports statistics, and, with free page reporting, hands over
 * pages it freed without being asked. Pages given or reported are discarded
 * on the host (their contents are the guest's to lose), so they leave the
 * host's RSS.
 *
 * Queues (the order of the spec, only those offered): inflate, deflate, stats
 * (VIRTIO_BALLOON_F_STATS_VQ), reporting (VIRTIO_BALLOON_F_REPORTING); all on
 * one I/O thread. Everything the guest sends is checked against guest RAM: a
 * page outside it is counted and ignored, never touched.
 */
#ifndef MINIVMM_VIRTIO_BALLOON_H
#define MINIVMM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_balloon.h>

#include "mm/guest_mem.h"

struct virtio_dev;
struct virtio_balloon;

#define BALLOON_QUEUE_SIZE 128
#define BALLOON_PAGE	   4096u /* the unit of PFNs and targets, whatever the guest's page size */

struct virtio_balloon_opts {
	const char *name; /* "balloon", for messages and the thread name */
	bool stats;	  /* offer the statistics queue */
	bool deflate_on_oom;
	bool reporting; /* offer free page reporting */
	int thread_cpu; /* pin the I/O thread here, or -1 */
	/*
	 * Give [hva, hva + len) (page-aligned, inside guest RAM) back to the host;
	 * NULL: madvise(MADV_DONTNEED), right for private guest RAM. The VM layer
	 * supplies its own where the backing needs more (lazy restore).
	 */
	int (*discard)(void *ctx, void *hva, size_t len);
	/* The driver wrote how many pages its balloon holds (a vCPU thread); NULL: none. */
	void (*actual_changed)(void *ctx, uint32_t target, uint32_t actual);
	void *ctx; /* for both */
};

/* What the balloon has done and the guest's last statistics. */
struct virtio_balloon_info {
	uint32_t target;		/* pages the host asked for (num_pages) */
	uint32_t actual;		/* pages the driver says it holds */
	uint64_t inflated, deflated;	/* pages, as sent */
	uint64_t reported_bytes;	/* free page reporting */
	uint64_t discarded_bytes;	/* given back to the host (inflated + reported) */
	uint64_t bad_pages, bad_chains; /* outside guest RAM, malformed */
	bool deflate_on_oom;		/* negotiated: the guest counts balloon pages as used */
	bool have_stats;
	uint64_t stats_updates;		      /* statistics buffers received */
	bool stat_valid[VIRTIO_BALLOON_S_NR]; /* the driver sent this tag */
	uint64_t stat[VIRTIO_BALLOON_S_NR];   /* by VIRTIO_BALLOON_S_* tag */
};

int virtio_balloon_create(struct virtio_balloon **out, const struct guest_mem *mem,
			  const struct virtio_balloon_opts *o);
struct virtio_dev *virtio_balloon_virtio(struct virtio_balloon *b);
void virtio_balloon_destroy(struct virtio_balloon *b);
/* Ask the guest to hold @pages pages in its balloon (a configuration change). */
void virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages);
/* Ask the driver for fresh statistics (they arrive asynchronously). */
void virtio_balloon_request_stats(struct virtio_balloon *b);
void virtio_balloon_info(struct virtio_balloon *b, struct virtio_balloon_info *out);
/*
 * Serve queue @qi on the calling thread, as the I/O thread would (fuzzers and
 * tests, the device not started by a transport). Returns the chains taken.
 */
unsigned int virtio_balloon_process(struct virtio_balloon *b, unsigned int qi);

#endif
