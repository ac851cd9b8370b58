/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Guest memory as one self-contained section of a snapshot file: zero pages
 * in a per-chunk bitmap, the other pages of each chunk LZO1X-1 compressed
 * (or raw), an index with file offsets and checksums at the end. See
 * docs/snapshot.md, "Memory image".
 */
#ifndef MINIVMM_SNAPSHOT_MEMIMG_H
#define MINIVMM_SNAPSHOT_MEMIMG_H

#include <stdbool.h>
#include <stdint.h>

#include "mm/guest_mem.h"

/* Called with the bytes of guest memory handled so far; never concurrently. */
struct memimg_progress {
	void (*fn)(void *ctx, uint64_t done, uint64_t total);
	void *ctx;
};

struct memimg_save_opts {
	bool compress;	      /* false: non-zero pages stored raw */
	unsigned int threads; /* 0: online CPUs */
	const struct memimg_progress *progress;
};

struct memimg_stats {
	uint64_t pages;	       /* guest pages in the image */
	uint64_t zero_pages;   /* of which zero (not stored) */
	uint64_t unread_pages; /* of which never touched: skipped without reading */
	uint64_t chunks;
	uint64_t lzo_chunks;   /* chunks stored compressed */
	uint64_t stored_bytes; /* page data in the file (without header and index) */
	uint64_t ns;	       /* wall time */
};

struct memimg;
struct memimg_lazy;

/*
 * Write @m as a section at offset @off of @fd (pwrite only; the file position
 * is not used); *@len is the section's length. @m's regions must be private
 * anonymous mappings for untouched pages to be skipped unread (anything else
 * is scanned). The guest must not run meanwhile. @o and @st may be NULL.
 */
int memimg_save(int fd, uint64_t off, const struct guest_mem *m, const struct memimg_save_opts *o,
		uint64_t *len, struct memimg_stats *st);

/*
 * Parse and check the section [@off, @off+@len) of @fd: header, version,
 * layout (must equal @m's regions), the whole index. Reads no page data.
 * Keeps its own duplicate of @fd.
 */
int memimg_open(int fd, uint64_t off, uint64_t len, const struct guest_mem *m, struct memimg **out);

/* Fill fresh (all zero, untouched) @m with every chunk, checksums verified.
 * @threads 0: online CPUs. @p may be NULL. */
int memimg_restore(struct memimg *mi, const struct guest_mem *m, unsigned int threads,
		   const struct memimg_progress *p);

/*
 * Make @m's regions copy-on-write mappings of @mi's file (flat images only,
 * i.e. saved uncompressed; else -EOPNOTSUPP). Reads nothing; page checksums
 * are not checked (the data is the guest's own, never trusted by the VMM).
 * The file must not be truncated while @m is in use (SIGBUS).
 */
int memimg_map(struct memimg *mi, const struct guest_mem *m);

/*
 * Through the memory cache: map @m's regions copy-on-write from a flat copy of
 * @mi's memory in the cache directory, decompressing it there first if it is
 * not yet (*@built then true). Flat images are simply mapped (memimg_map).
 * Clones of one snapshot thus share every page they do not write. -EAGAIN: no
 * usable cache (no directory, not ours, full, no shared mappings there: said
 * why), @m untouched: restore it another way.
 */
int memimg_map_cached(struct memimg *mi, const struct guest_mem *m, bool *built);

/*
 * Lazy restore into fresh, untouched @m: register it with userfaultfd and
 * return at once; a fault thread fills the chunk of each first touch, a
 * prefetch thread the rest in order. @mi must stay open until
 * memimg_lazy_finish().
 */
int memimg_lazy_start(struct memimg *mi, const struct guest_mem *m, struct memimg_lazy **out);

/* Wait until every chunk is in (or memimg_lazy_cancel() was called), unregister,
 * end the threads; @l stays allocated. Returns 0 or the first error (-EBADMSG: a
 * corrupt chunk, which reads as zero pages). Idempotent. */
int memimg_lazy_stop(struct memimg_lazy *l);
/* Any thread, until memimg_lazy_finish(): stop prefetching and let
 * memimg_lazy_stop() return without the rest of memory (the VM is going away). */
void memimg_lazy_cancel(struct memimg_lazy *l);
/* Where a lazy restore's chunks came from, so far (restore -v). */
struct memimg_lazy_stats {
	uint64_t faults;       /* first touches the fault thread served */
	uint64_t zero_faults;  /* ... of them on zero pages */
	uint64_t fault_chunks; /* chunks brought in by a first touch */
	uint64_t fault_ns;     /* the fault thread's time serving them */
	uint64_t fault_read_ns; /* ... of it reading (and decompressing) chunks */
	uint64_t prefetched;   /* non-zero chunks the prefetcher filled */
	uint64_t chunks;       /* all chunks, zero ones included */
};
void memimg_lazy_stats(const struct memimg_lazy *l, struct memimg_lazy_stats *st);
/* memimg_lazy_stop(), then free @l. */
int memimg_lazy_finish(struct memimg_lazy *l);

/* Without waiting: the first error so far (0: none), so that a caller can stop
 * the VM as soon as a corrupt chunk turned up; and whether all chunks are in. */
int memimg_lazy_error(const struct memimg_lazy *l, bool *complete);

void memimg_close(struct memimg *mi);

#endif
