/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Memory image internals: the on-disk layout and helpers shared by save,
 * open, eager and lazy restore. All on-disk integers are little-endian. */
#ifndef MINIVMM_SNAPSHOT_MEMIMG_INT_H
#define MINIVMM_SNAPSHOT_MEMIMG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mm/guest_mem.h"
#include "snapshot/memimg.h"
#include "util.h"

#define MEMIMG_MAGIC   "MVMMEMIM"
#define MEMIMG_VERSION 1
#define MEMIMG_PAGE    4096u
#ifndef MEMIMG_CHUNK_PAGES     /* benchmarks may try others */
#define MEMIMG_CHUNK_PAGES 64u /* 256 KiB of guest memory: see docs/snapshot.md */
#endif
#define MEMIMG_MAX_CHUNK_PAGES 1024u

/* Header flags */
#define MEMIMG_F_COMPRESS 1u
/* Raw pages at fixed, page-aligned places (zero pages are holes): mappable. */
#define MEMIMG_F_FLAT 2u
/* Chunk flags */
#define MEMIMG_C_LZO 1u

/* Header: fixed 128 bytes at the section's start; page data follows. */
#define MEMIMG_HDR_SIZE 128u
#define HDR_MAGIC	0
#define HDR_VERSION	8
#define HDR_FLAGS	12
#define HDR_PAGE_SIZE	16
#define HDR_CHUNK_PAGES 20
#define HDR_NR_REGIONS	24
#define HDR_ENTRY_SIZE	28
#define HDR_NR_CHUNKS	32
#define HDR_INDEX_OFF	40
#define HDR_INDEX_LEN	48
#define HDR_REGIONS	56  /* 2 x { gpa, size } */
#define HDR_CRC		124 /* crc32 of bytes 0..123 */

/* Index entry: 32 bytes, then the zero-page bitmap in 64-bit words. */
#define ENT_GPA		  0
#define ENT_FILE_OFF	  8
#define ENT_STORED_LEN	  16
#define ENT_CRC		  20
#define ENT_NPAGES	  24
#define ENT_FLAGS	  28
#define ENT_ZMAP	  32
#define ENT_SIZE(bmwords) (32u + 8u * (bmwords))

/* Fuzzing builds accept bad checksums: the checks behind them get fuzzed too. */
#ifdef MINIVMM_FUZZ
#define crc_ok(a, b) ((void)(a), (void)(b), true)
#else
#define crc_ok(a, b) ((a) == (b))
#endif

struct memimg_chunk {
	uint64_t file_off; /* relative to the section */
	uint32_t len;	   /* stored bytes; 0 if every page is zero */
	uint32_t crc;
	uint32_t npages;
	uint32_t nz; /* non-zero pages */
	uint32_t flags;
	uint32_t region;
	uint64_t page; /* first page, counted from the region's start */
};

struct memimg {
	int fd;
	uint64_t off, len;
	uint32_t flags, chunk_pages, bmwords;
	unsigned int nr_regions;
	uint64_t gpa[GUEST_MEM_MAX_REGIONS], size[GUEST_MEM_MAX_REGIONS];
	uint64_t nr_chunks;
	uint64_t data_off; /* flat: region 0's first page; page-aligned in the file */
	struct memimg_chunk *c;
	uint64_t *zmap; /* bmwords per chunk: bit set = zero page */
};

static inline bool zmap_test(const uint64_t *zm, uint32_t i)
{
	return zm[i / 64] >> (i % 64) & 1;
}

static inline const uint64_t *memimg_zmap(const struct memimg *mi, uint64_t c)
{
	return mi->zmap + c * mi->bmwords;
}

/* The next run of non-zero pages of chunk @ch at or after page *@i: [*@i, *@end); false
 * when there is none. Callers step on with *@i = *@end. */
static inline bool memimg_next_run(const struct memimg_chunk *ch, const uint64_t *zm, uint32_t *i,
				   uint32_t *end)
{
	while (*i < ch->npages && zmap_test(zm, *i))
		++*i;
	if (*i >= ch->npages)
		return false;
	for (*end = *i + 1; *end < ch->npages && !zmap_test(zm, *end); ++*end)
		;
	return true;
}

/* Flat images: where the data starts in a section at @off (page-aligned in the file). */
static inline uint64_t memimg_flat_data_off(uint64_t off)
{
	return ALIGN_UP(off + MEMIMG_HDR_SIZE, MEMIMG_PAGE) - off;
}

/* Flat images: where region @r's pages start, relative to the section (@r may be
 * nr_regions: the end of the last region, where the index is). */
static inline uint64_t memimg_flat_region_off(const struct memimg *mi, uint32_t r)
{
	uint64_t at = mi->data_off;

	for (uint32_t i = 0; i < r; i++)
		at += mi->size[i];
	return at;
}

/* Chunks per region: ceil(size / chunk bytes). */
uint64_t memimg_region_chunks(uint64_t size, uint32_t chunk_pages);
/* Worker threads for @threads (0: online CPUs), at most @work. */
unsigned int memimg_threads(unsigned int threads, uint64_t work);
/* lzo_init() once; 0 or -EIO. */
int memimg_lzo_init(void);
/* True if the page at @p holds only zero bytes. */
bool memimg_page_is_zero(const void *p);
int memimg_pread(int fd, void *buf, size_t len, uint64_t off);
/* Same chunks in @m as in @mi? Prints why not. */
int memimg_check_layout(const struct memimg *mi, const struct guest_mem *m);

/*
 * Read chunk @c into @buf (nz pages, packed; room for chunk_pages pages),
 * using @tmp (as large) for the compressed bytes; verify and decompress.
 * Returns 0, -EBADMSG (corrupt, message printed) or -errno.
 */
int memimg_read_chunk(const struct memimg *mi, uint64_t c, void *buf, void *tmp);

#endif
