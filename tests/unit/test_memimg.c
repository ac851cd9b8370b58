// SPDX-License-Identifier: GPL-2.0-or-later
/* Memory image: save/restore round trips (eager, lazy and mapped, compressed and raw)
 * on a fake two-region guest RAM with every kind of page, the statistics, and
 * every kind of bad input: truncated, flipped bytes, forged index entries,
 * corrupt chunks, other layouts and versions. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "snapshot/memimg.h"
#include "snapshot/memimg_int.h"
#include "util.h"
#include "unit.h"

#define PAGE	 4096u
#define HIGH_GPA 0x100000000ULL
#define SEC_OFF	 4113u /* the section starts at an odd offset of the file */

/* Not a multiple of the chunk size: each region ends with a partial chunk. */
static const uint64_t sizes[2] = { 6 * MiB + 12 * PAGE, 2 * MiB + PAGE };

static struct guest_mem src;
static uint64_t nonzero_pages, zero_pages, untouched_pages;
static int fd = -1;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void mem_map(struct guest_mem *m, uint64_t s0, uint64_t s1)
{
	memset(m, 0, sizeof(*m));
	m->r[0] = (struct mem_region){ .gpa = 0, .size = s0 };
	m->r[1] = (struct mem_region){ .gpa = HIGH_GPA, .size = s1 };
	m->nr = s1 ? 2 : 1;
	for (unsigned int i = 0; i < m->nr; i++) {
		m->r[i].hva = mmap(NULL, m->r[i].size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		ck_assert_ptr_ne(m->r[i].hva, MAP_FAILED);
		m->total += m->r[i].size;
	}
}

static void mem_unmap(struct guest_mem *m)
{
	for (unsigned int i = 0; i < m->nr; i++)
		munmap(m->r[i].hva, m->r[i].size);
	memset(m, 0, sizeof(*m));
}

static void text_page(uint8_t *p, uint64_t *s)
{
	static const char *const words[] = { "the ",	  "kernel ", "memory ", "page ",
					     "snapshot ", "0x1f3a ", "=",	"\n",
					     "struct ",	  "return ", "int ",	"guest " };
	size_t n = 0;

	while (n < PAGE) {
		const char *w = words[rnd(s) % ARRAY_SIZE(words)];
		size_t l = MIN(strlen(w), PAGE - n);

		memcpy(p + n, w, l);
		n += l;
	}
}

/* Every kind of page, and whole chunks of text, of random bytes, untouched. */
static void fill(struct guest_mem *m, uint64_t seed)
{
	uint64_t s = seed;

	nonzero_pages = zero_pages = untouched_pages = 0;
	for (unsigned int r = 0; r < m->nr; r++) {
		uint64_t pages = m->r[r].size / PAGE;

		for (uint64_t i = 0; i < pages; i++) {
			uint8_t *p = (uint8_t *)m->r[r].hva + i * PAGE;
			uint64_t chunk = i / MEMIMG_CHUNK_PAGES;
			unsigned int kind = rnd(&s) % 8;

			if (r == 0 && chunk == 1)
				kind = 3; /* all text */
			else if (r == 0 && chunk == 2)
				kind = 5; /* all random: stored raw even when compressing */
			else if (r == 0 && chunk == 3)
				kind = 0; /* untouched */
			switch (kind) {
			case 0:
			case 1:
				untouched_pages++;
				zero_pages++;
				continue;
			case 2:
				memset(p, 0, PAGE); /* touched, but zero */
				zero_pages++;
				continue;
			case 3:
			case 4:
				text_page(p, &s);
				break;
			case 5:
				for (unsigned int j = 0; j < PAGE; j += 8) {
					uint64_t v = rnd(&s);

					memcpy(p + j, &v, 8);
				}
				break;
			case 6:
				p[PAGE - 1] = 1; /* one byte, at the very end */
				break;
			default:
				p[rnd(&s) % PAGE] = rnd(&s) | 1;
				break;
			}
			nonzero_pages++;
		}
	}
}

static void setup(void)
{
	char path[] = "/tmp/test_memimg.XXXXXX";

	mem_map(&src, sizes[0], sizes[1]);
	fill(&src, 0x1234567);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
}

static void teardown(void)
{
	mem_unmap(&src);
	close(fd);
}

static uint64_t save(bool compress, unsigned int threads, struct memimg_stats *st)
{
	struct memimg_save_opts o = { .compress = compress, .threads = threads };
	uint64_t len = 0;

	ck_assert_int_eq(ftruncate(fd, 0), 0);
	ck_assert_int_eq(memimg_save(fd, SEC_OFF, &src, &o, &len, st), 0);
	ck_assert_uint_gt(len, MEMIMG_HDR_SIZE);
	return len;
}

static void assert_same(const struct guest_mem *a, const struct guest_mem *b)
{
	for (unsigned int r = 0; r < a->nr; r++)
		for (uint64_t o = 0; o < a->r[r].size; o += PAGE)
			if (memcmp((uint8_t *)a->r[r].hva + o, (uint8_t *)b->r[r].hva + o, PAGE))
				ck_abort_msg("region %u page %llu differs", r,
					     (unsigned long long)(o / PAGE));
}

/* Zero pages must not have been written: not resident after restore. */
static void assert_zero_untouched(const struct guest_mem *dst)
{
	uint64_t resident = 0;

	for (unsigned int r = 0; r < dst->nr; r++) {
		uint64_t pages = dst->r[r].size / PAGE;
		unsigned char *v = malloc(pages);

		ck_assert_int_eq(mincore(dst->r[r].hva, dst->r[r].size, v), 0);
		for (uint64_t i = 0; i < pages; i++)
			resident += v[i] & 1;
		free(v);
	}
	ck_assert_uint_eq(resident, nonzero_pages);
}

static int open_img(uint64_t len, const struct guest_mem *m, struct memimg **mi)
{
	return memimg_open(fd, SEC_OFF, len, m, mi);
}

static void roundtrip_eager(bool compress, unsigned int threads)
{
	struct memimg_stats st;
	struct guest_mem dst;
	struct memimg *mi;
	uint64_t len = save(compress, threads, &st);

	ck_assert_uint_eq(st.pages, (sizes[0] + sizes[1]) / PAGE);
	ck_assert_uint_eq(st.zero_pages, zero_pages);
	ck_assert_uint_eq(st.unread_pages, untouched_pages);
	if (!compress)
		ck_assert_uint_eq(st.stored_bytes, nonzero_pages * PAGE);
	/* Flat (uncompressed): every page has its place, zero ones are holes. */
	ck_assert_uint_eq(len, (compress ? MEMIMG_HDR_SIZE + st.stored_bytes
					 : memimg_flat_data_off(SEC_OFF) + sizes[0] + sizes[1]) +
				   st.chunks * ENT_SIZE((MEMIMG_CHUNK_PAGES + 63) / 64) + 4);
	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_restore(mi, &dst, threads, NULL), 0);
	assert_zero_untouched(&dst); /* before reading maps the zero page in */
	assert_same(&src, &dst);
	memimg_close(mi);
	mem_unmap(&dst);
}

START_TEST(eager_lzo_1)
{
	roundtrip_eager(true, 1);
}
END_TEST

START_TEST(eager_lzo_2)
{
	roundtrip_eager(true, 2);
}
END_TEST

START_TEST(eager_raw_1)
{
	roundtrip_eager(false, 1);
}
END_TEST

START_TEST(eager_raw_3)
{
	roundtrip_eager(false, 3);
}
END_TEST

/* Flat image mapped: same memory, nothing read up front, writes stay private. */
START_TEST(map_raw)
{
	uint64_t len = save(false, 2, NULL), at = SEC_OFF + memimg_flat_data_off(SEC_OFF);
	struct guest_mem dst, again;
	uint8_t page[PAGE], *p;
	struct memimg *mi;

	ck_assert_uint_eq(at % PAGE, 0);
	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_map(mi, &dst), 0);
	assert_same(&src, &dst);
	/* Region 1's pages follow region 0's in the file. */
	ck_assert_int_eq(pread(fd, page, PAGE, at + sizes[0] + PAGE), PAGE);
	ck_assert_mem_eq(page, (uint8_t *)src.r[1].hva + PAGE, PAGE);
	/* A write is the guest's own: neither the file nor another mapping sees it. */
	p = (uint8_t *)dst.r[0].hva + MEMIMG_CHUNK_PAGES * PAGE;
	memset(p, 0xa5, PAGE);
	ck_assert_int_eq(pread(fd, page, PAGE, at + MEMIMG_CHUNK_PAGES * PAGE), PAGE);
	ck_assert_mem_eq(page, (uint8_t *)src.r[0].hva + MEMIMG_CHUNK_PAGES * PAGE, PAGE);
	mem_map(&again, sizes[0], sizes[1]);
	ck_assert_int_eq(memimg_map(mi, &again), 0);
	assert_same(&src, &again);
	mem_unmap(&again);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

START_TEST(map_needs_flat)
{
	uint64_t len = save(true, 1, NULL);
	struct memimg *mi;

	ck_assert_int_eq(open_img(len, &src, &mi), 0);
	ck_assert_int_eq(memimg_map(mi, &src), -EOPNOTSUPP);
	memimg_close(mi);
}
END_TEST

START_TEST(stats_compress)
{
	struct memimg_stats lzo, raw;
	struct memimg *mi;

	save(false, 2, &raw);
	save(true, 2, &lzo);
	ck_assert_uint_lt(lzo.stored_bytes, raw.stored_bytes * 3 / 4);
	/* The random chunk did not shrink: stored raw. */
	ck_assert_uint_lt(lzo.lzo_chunks, lzo.chunks);
	ck_assert_uint_gt(lzo.lzo_chunks, 0);
	ck_assert_uint_eq(raw.lzo_chunks, 0);
	ck_assert_uint_eq(lzo.zero_pages, raw.zero_pages);
	/* Chunk 2 (random) raw, chunk 3 (untouched) empty, chunk 1 (text) LZO. */
	ck_assert_int_eq(open_img(save(true, 1, NULL), &src, &mi), 0);
	ck_assert_uint_eq(mi->c[2].flags, 0);
	ck_assert_uint_eq(mi->c[2].len, MEMIMG_CHUNK_PAGES * PAGE);
	ck_assert_uint_eq(mi->c[3].len, 0);
	ck_assert_uint_eq(mi->c[1].flags, MEMIMG_C_LZO);
	ck_assert_uint_lt(mi->c[1].len, MEMIMG_CHUNK_PAGES * PAGE / 2);
	memimg_close(mi);
}
END_TEST

struct prog {
	uint64_t last, total, calls;
	bool backwards;
};

static void prog_fn(void *ctx, uint64_t done, uint64_t total)
{
	struct prog *p = ctx;

	p->backwards |= done < p->last;
	p->last = done;
	p->total = total;
	p->calls++;
}

START_TEST(progress)
{
	struct prog ps = { 0 }, pr = { 0 };
	struct memimg_progress cs = { prog_fn, &ps }, cr = { prog_fn, &pr };
	struct memimg_save_opts o = { .compress = true, .threads = 2, .progress = &cs };
	struct guest_mem dst;
	struct memimg *mi;
	uint64_t len;

	ck_assert_int_eq(memimg_save(fd, SEC_OFF, &src, &o, &len, NULL), 0);
	ck_assert_uint_eq(ps.total, src.total);
	ck_assert_uint_eq(ps.last, src.total);
	ck_assert_uint_gt(ps.calls, 1);
	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_restore(mi, &dst, 2, &cr), 0);
	ck_assert_uint_eq(pr.last, src.total);
	ck_assert_uint_gt(pr.calls, 1);
	ck_assert(!ps.backwards);
	ck_assert(!pr.backwards);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

/* Lazy restore: readers in other threads block until their pages are in. */
struct reader {
	const struct guest_mem *m, *ref;
	bool backwards, write;
	uint64_t bad;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;

	for (unsigned int k = 0; k < rd->m->nr; k++) {
		unsigned int r = rd->backwards ? rd->m->nr - 1 - k : k;
		uint64_t pages = rd->m->r[r].size / PAGE;

		for (uint64_t j = 0; j < pages; j++) {
			uint64_t i = rd->backwards ? pages - 1 - j : j;
			uint8_t *p = (uint8_t *)rd->m->r[r].hva + i * PAGE;
			const uint8_t *q = (uint8_t *)rd->ref->r[r].hva + i * PAGE;

			if (memcmp(p, q, PAGE))
				rd->bad++;
		}
	}
	return NULL;
}

/*
 * After memimg_lazy_stop() with everything in: each non-zero chunk came in exactly once,
 * by a first touch or by the prefetcher; at least @touched first touches were served.
 */
static void lazy_stats_check(struct memimg_lazy *l, const struct memimg *mi, uint64_t touched)
{
	struct memimg_lazy_stats st;
	uint64_t nz = 0;

	for (uint64_t c = 0; c < mi->nr_chunks; c++)
		nz += mi->c[c].nz != 0;
	memimg_lazy_stats(l, &st);
	ck_assert_uint_eq(st.chunks, mi->nr_chunks);
	ck_assert_uint_eq(st.fault_chunks + st.prefetched, nz);
	ck_assert_uint_ge(st.faults, touched);
	ck_assert_uint_le(st.zero_faults + st.fault_chunks, st.faults);
}

static void lazy_roundtrip(bool compress, int nreaders)
{
	struct reader rd[2];
	pthread_t t[2];
	struct guest_mem dst;
	struct memimg_lazy *l;
	struct memimg *mi;
	uint64_t len = save(compress, 2, NULL);
	uint8_t *z = (uint8_t *)src.r[0].hva + 3 * MEMIMG_CHUNK_PAGES * PAGE + 5;
	uint8_t *e = (uint8_t *)src.r[1].hva + sizes[1] - 1;

	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_lazy_start(mi, &dst, &l), 0);
	/* First touches are writes: into an untouched page and a stored one. */
	*z = 7;
	*e ^= 0x5a;
	((volatile uint8_t *)dst.r[0].hva)[z - (uint8_t *)src.r[0].hva] = 7;
	((volatile uint8_t *)dst.r[1].hva)[sizes[1] - 1] ^= 0x5a;
	for (int i = 0; i < nreaders; i++) {
		rd[i] = (struct reader){ .m = &dst, .ref = &src, .backwards = i == 1 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &rd[i]), 0);
	}
	for (int i = 0; i < nreaders; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(memimg_lazy_stop(l), 0);
	lazy_stats_check(l, mi, 2);
	ck_assert_int_eq(memimg_lazy_finish(l), 0);
	for (int i = 0; i < nreaders; i++)
		ck_assert_uint_eq(rd[i].bad, 0);
	assert_same(&src, &dst);
	memimg_close(mi);
	mem_unmap(&dst);
}

START_TEST(lazy_one_reader)
{
	lazy_roundtrip(true, 1);
}
END_TEST

START_TEST(lazy_two_readers)
{
	lazy_roundtrip(true, 2);
}
END_TEST

START_TEST(lazy_raw_two_readers)
{
	lazy_roundtrip(false, 2);
}
END_TEST

/* Nobody touches memory: the prefetcher alone fills everything. */
START_TEST(lazy_prefetch_only)
{
	struct guest_mem dst;
	struct memimg_lazy *l;
	struct memimg *mi;

	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(save(true, 2, NULL), &dst, &mi), 0);
	ck_assert_int_eq(memimg_lazy_start(mi, &dst, &l), 0);
	for (bool done = false; !done;) {
		ck_assert_int_eq(memimg_lazy_error(l, &done), 0);
		usleep(1000);
	}
	ck_assert_int_eq(memimg_lazy_stop(l), 0);
	lazy_stats_check(l, mi, 0);
	ck_assert_int_eq(memimg_lazy_finish(l), 0);
	assert_zero_untouched(&dst);
	assert_same(&src, &dst);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

/*
 * The VM stops while memory is still coming in: memimg_lazy_cancel() ends the prefetch and
 * memimg_lazy_finish() returns without the rest, with no error. A fault thread stuck
 * waiting for it, or a finish that waits for every chunk, would time this out; what was
 * filled is the saved data.
 */
START_TEST(lazy_cancel)
{
	struct guest_mem dst;
	struct memimg_lazy *l;
	struct memimg *mi;
	uint8_t *a = (uint8_t *)src.r[0].hva + MEMIMG_CHUNK_PAGES * PAGE + 17;

	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(save(true, 2, NULL), &dst, &mi), 0);
	ck_assert_int_eq(memimg_lazy_start(mi, &dst, &l), 0);
	/* A first touch is served before and after the cancel. */
	ck_assert_uint_eq(((volatile uint8_t *)dst.r[0].hva)[a - (uint8_t *)src.r[0].hva], *a);
	memimg_lazy_cancel(l);
	memimg_lazy_cancel(l);
	ck_assert_uint_eq(((volatile uint8_t *)dst.r[1].hva)[sizes[1] - 1],
			  ((uint8_t *)src.r[1].hva)[sizes[1] - 1]);
	ck_assert_int_eq(memimg_lazy_stop(l), 0);
	ck_assert_int_eq(memimg_lazy_stop(l), 0);
	ck_assert_int_eq(memimg_lazy_finish(l), 0);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

/* A page already there (EEXIST) does not stop the rest of its run. */
START_TEST(lazy_page_present)
{
	struct guest_mem dst;
	struct memimg_lazy *l;
	struct memimg *mi;
	uint8_t *p;

	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(save(true, 2, NULL), &dst, &mi), 0);
	/* The middle of chunk 1, all text: one run of non-zero pages. */
	p = (uint8_t *)dst.r[0].hva + (MEMIMG_CHUNK_PAGES + 5) * PAGE;
	p[0] = 0xee;
	ck_assert_int_eq(memimg_lazy_start(mi, &dst, &l), 0);
	ck_assert_int_eq(memimg_lazy_finish(l), 0);
	/* That page is left as it was; every other one is filled. */
	ck_assert_uint_eq(p[0], 0xee);
	ck_assert_uint_eq(p[PAGE - 1], 0);
	memcpy(p, (uint8_t *)src.r[0].hva + (MEMIMG_CHUNK_PAGES + 5) * PAGE, PAGE);
	assert_same(&src, &dst);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

/* guest_mem_init's own mappings (MADV_HUGEPAGE) work with userfaultfd. */
START_TEST(real_guest_mem)
{
	struct guest_mem g, e, z;
	struct memimg_lazy *l;
	struct memimg *mi;
	uint64_t len;

	ck_assert_int_eq(guest_mem_init(&g, 64 * MiB), 0);
	for (uint64_t o = 0; o < 64 * MiB; o += 3 * PAGE + 512)
		((uint8_t *)g.r[0].hva)[o] = o >> 12 | 1;
	ck_assert_int_eq(memimg_save(fd, 0, &g, NULL, &len, NULL), 0);
	ck_assert_int_eq(guest_mem_init(&e, 64 * MiB), 0);
	ck_assert_int_eq(guest_mem_init(&z, 64 * MiB), 0);
	ck_assert_int_eq(memimg_open(fd, 0, len, &e, &mi), 0);
	ck_assert_int_eq(memimg_restore(mi, &e, 0, NULL), 0);
	ck_assert_int_eq(memcmp(g.r[0].hva, e.r[0].hva, 64 * MiB), 0);
	ck_assert_int_eq(memimg_lazy_start(mi, &z, &l), 0);
	ck_assert_int_eq(memcmp(g.r[0].hva, z.r[0].hva, 64 * MiB), 0);
	ck_assert_int_eq(memimg_lazy_finish(l), 0);
	memimg_close(mi);
	guest_mem_free(&g);
	guest_mem_free(&e);
	guest_mem_free(&z);
}
END_TEST

/*
 * Every region's host address is 2 MiB aligned like its guest address: else KVM maps no
 * huge page in the whole slot (every 4 KiB first touch exited; boots in the nested
 * harness took 4 s longer).
 */
START_TEST(guest_mem_aligned)
{
	static const uint64_t sizes[] = { 64 * MiB, 64 * MiB + PAGE, 3200 * MiB };
	struct guest_mem g;

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		ck_assert_int_eq(guest_mem_init(&g, sizes[i]), 0);
		ck_assert_uint_eq(g.total, sizes[i]);
		for (unsigned int r = 0; r < g.nr; r++) {
			uint8_t *p = g.r[r].hva;

			ck_assert_uint_eq((uintptr_t)p % (2 * MiB), 0);
			p[0] = 1;
			p[g.r[r].size - 1] = 2;
			ck_assert_int_eq(p[0] + p[g.r[r].size - 1], 3);
		}
		guest_mem_free(&g);
	}
}
END_TEST

/* Shared memory: absent from pagemap says nothing, every page is read. */
START_TEST(shared_mapping_scanned)
{
	struct guest_mem sh, dst;
	struct memimg_stats st;
	struct memimg *mi;
	uint64_t len;

	memset(&sh, 0, sizeof(sh));
	sh.nr = 1;
	sh.total = sh.r[0].size = 4 * MiB;
	sh.r[0].hva =
	    mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh.r[0].hva, MAP_FAILED);
	for (uint64_t o = 0; o < 4 * MiB; o += 2 * PAGE)
		((uint8_t *)sh.r[0].hva)[o + 100] = 0xaa;
	/* Pages out of memory but not zero: present in no page table of ours. */
	ck_assert_int_eq(madvise(sh.r[0].hva, 4 * MiB, MADV_DONTNEED), 0);
	ck_assert_int_eq(memimg_save(fd, 0, &sh, NULL, &len, &st), 0);
	ck_assert_uint_eq(st.unread_pages, 0);
	ck_assert_uint_eq(st.zero_pages, 4 * MiB / PAGE / 2);
	mem_map(&dst, 4 * MiB, 0);
	ck_assert_int_eq(memimg_open(fd, 0, len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_restore(mi, &dst, 2, NULL), 0);
	ck_assert_int_eq(memcmp(sh.r[0].hva, dst.r[0].hva, 4 * MiB), 0);
	memimg_close(mi);
	mem_unmap(&dst);
	munmap(sh.r[0].hva, 4 * MiB);
}
END_TEST

/* Bad input */

static uint8_t *file_copy(uint64_t len)
{
	uint8_t *b = malloc(len);

	ck_assert_int_eq(memimg_pread(fd, b, len, SEC_OFF), 0);
	return b;
}

static void file_put(const uint8_t *b, uint64_t len)
{
	ck_assert_int_eq(pwrite(fd, b, len, SEC_OFF), (ssize_t)len);
}

static int reopen(uint64_t len)
{
	struct memimg *mi;
	int ret = open_img(len, &src, &mi);

	if (!ret)
		memimg_close(mi);
	return ret;
}

START_TEST(truncated)
{
	uint64_t len = save(true, 2, NULL), step;

	log_verbosity = -2; /* thousands of rejections, each with its message */
	/* Too short a section: every length near the ends, a stride elsewhere. */
	for (uint64_t l = 0; l < len; l += step) {
		step = l < 2 * MEMIMG_HDR_SIZE || len - l < 4096 ? 1 : 997;
		ck_assert_int_ne(reopen(l), 0);
	}
	/* A file shorter than the section claims to be. */
	for (uint64_t l = 0; l < len; l += 4093) {
		ck_assert_int_eq(ftruncate(fd, SEC_OFF + l), 0);
		ck_assert_int_ne(reopen(len), 0);
	}
	log_verbosity = 0;
}
END_TEST

START_TEST(flip_header_and_index)
{
	uint64_t len = save(true, 2, NULL);
	uint8_t *b = file_copy(len);
	uint64_t ixoff = get_le64(b + HDR_INDEX_OFF);

	ck_assert_int_eq(reopen(len), 0);
	log_verbosity = -2;
	for (uint64_t i = 0; i < len; i++) {
		if (i == MEMIMG_HDR_SIZE)
			i = ixoff;
		for (int bit = 0; bit < 8; bit += 3) {
			uint8_t v = b[i];

			b[i] ^= 1 << bit;
			ck_assert_int_eq(pwrite(fd, b + i, 1, SEC_OFF + i), 1);
			ck_assert_int_ne(reopen(len), 0);
			b[i] = v;
			ck_assert_int_eq(pwrite(fd, b + i, 1, SEC_OFF + i), 1);
		}
	}
	log_verbosity = 0;
	ck_assert_int_eq(reopen(len), 0);
	free(b);
}
END_TEST

/* Header and index edits with valid checksums: the checks behind them. */
static void reseal(uint8_t *b)
{
	uint64_t ixoff = get_le64(b + HDR_INDEX_OFF), ixlen = get_le64(b + HDR_INDEX_LEN);

	put_le32(b + HDR_CRC, crc32(0, b, HDR_CRC));
	put_le32(b + ixoff + ixlen - 4, crc32(0, b + ixoff, ixlen - 4));
}

static int forged(uint64_t len, void (*edit)(uint8_t *b, uint8_t *ix, uint32_t esz))
{
	uint8_t *orig = file_copy(len), *b = file_copy(len);
	int ret;

	edit(b, b + get_le64(b + HDR_INDEX_OFF), get_le32(b + HDR_ENTRY_SIZE));
	reseal(b);
	file_put(b, len);
	ret = reopen(len);
	file_put(orig, len);
	ck_assert_int_eq(reopen(len), 0);
	free(b);
	free(orig);
	return ret;
}

static void e_version(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)ix, (void)esz;
	put_le32(b + HDR_VERSION, 2);
}

static void e_pagesize(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)ix, (void)esz;
	put_le32(b + HDR_PAGE_SIZE, 8192);
}

static void e_overlap(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	/* Chunk 1's data where chunk 0's is (both hold data). */
	put_le64(ix + esz + ENT_FILE_OFF, get_le64(ix + ENT_FILE_OFF) + 1);
}

static void e_past_data(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	put_le64(ix + esz + ENT_FILE_OFF, get_le64(b + HDR_INDEX_OFF) - 100);
}

static void e_huge_len(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	put_le32(ix + esz + ENT_STORED_LEN, 0xfffff000);
}

static void e_zmap_tail(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	uint64_t n = get_le64(b + HDR_NR_CHUNKS);
	uint8_t *e = ix + (n - 1) * esz; /* region 1's last chunk: 1 page */

	put_le64(e + ENT_ZMAP, get_le64(e + ENT_ZMAP) | 2);
}

static void e_gpa(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	put_le64(ix + 5 * esz + ENT_GPA, 0);
}

static void e_flags(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	put_le32(ix + 2 * esz + ENT_FLAGS, 2);
}

static void e_all_zero_with_data(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	for (unsigned int i = 0; i < esz - ENT_ZMAP; i++)
		ix[esz + ENT_ZMAP + i] = 0xff;
}

static void e_flat_moved(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)b;
	/* Chunk 1's data a page later: consistent for a reader, not for a mapping. */
	put_le64(ix + esz + ENT_FILE_OFF, get_le64(ix + esz + ENT_FILE_OFF) + PAGE);
}

static void e_flat_and_lzo(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)ix, (void)esz;
	put_le32(b + HDR_FLAGS, MEMIMG_F_FLAT | MEMIMG_F_COMPRESS);
}

static void e_flat_flag(uint8_t *b, uint8_t *ix, uint32_t esz)
{
	(void)ix, (void)esz;
	put_le32(b + HDR_FLAGS, MEMIMG_F_FLAT);
}

START_TEST(forged_flat)
{
	uint64_t len = save(false, 1, NULL);

	ck_assert_int_eq(forged(len, e_flat_moved), -EBADMSG);
	ck_assert_int_eq(forged(len, e_overlap), -EBADMSG);
	ck_assert_int_eq(forged(len, e_flags), -EBADMSG);
	ck_assert_int_eq(forged(len, e_flat_and_lzo), -EBADMSG);
	/* A packed image that claims to be flat. */
	len = save(true, 1, NULL);
	ck_assert_int_eq(forged(len, e_flat_flag), -EBADMSG);
}
END_TEST

START_TEST(forged_fields)
{
	uint64_t len = save(true, 1, NULL);

	ck_assert_int_eq(forged(len, e_version), -EPROTONOSUPPORT);
	ck_assert_int_eq(forged(len, e_pagesize), -EBADMSG);
	ck_assert_int_eq(forged(len, e_overlap), -EBADMSG);
	ck_assert_int_eq(forged(len, e_past_data), -EBADMSG);
	ck_assert_int_eq(forged(len, e_huge_len), -EBADMSG);
	ck_assert_int_eq(forged(len, e_zmap_tail), -EBADMSG);
	ck_assert_int_eq(forged(len, e_gpa), -EBADMSG);
	ck_assert_int_eq(forged(len, e_flags), -EBADMSG);
	ck_assert_int_eq(forged(len, e_all_zero_with_data), -EBADMSG);
}
END_TEST

START_TEST(bad_magic)
{
	uint64_t len = save(false, 1, NULL);
	uint8_t *b = file_copy(len);

	memcpy(b, "QFI\xfb\0\0\0\3", 8);
	reseal(b);
	file_put(b, len);
	ck_assert_int_eq(reopen(len), -EBADMSG);
	free(b);
}
END_TEST

START_TEST(layout_mismatch)
{
	uint64_t len = save(true, 2, NULL);
	struct guest_mem a, b;
	struct memimg *mi;

	mem_map(&a, sizes[0] + PAGE, sizes[1]);
	ck_assert_int_eq(open_img(len, &a, &mi), -EINVAL);
	mem_unmap(&a);
	mem_map(&b, sizes[0], 0);
	ck_assert_int_eq(open_img(len, &b, &mi), -EINVAL);
	mem_unmap(&b);
	/* The image opened for one layout, restored into another. */
	mem_map(&a, sizes[0], sizes[1]);
	mem_map(&b, sizes[0], sizes[1] * 2);
	ck_assert_int_eq(open_img(len, &a, &mi), 0);
	ck_assert_int_eq(memimg_restore(mi, &b, 1, NULL), -EINVAL);
	memimg_close(mi);
	mem_unmap(&a);
	mem_unmap(&b);
}
END_TEST

/* One flipped byte in chunk 1's data. */
static uint64_t corrupt_chunk(bool compress)
{
	uint64_t len = save(compress, 2, NULL);
	struct memimg *mi;
	uint8_t v;

	ck_assert_int_eq(open_img(len, &src, &mi), 0);
	ck_assert_uint_gt(mi->c[1].len, 100);
	ck_assert_int_eq(pread(fd, &v, 1, SEC_OFF + mi->c[1].file_off + 77), 1);
	v ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &v, 1, SEC_OFF + mi->c[1].file_off + 77), 1);
	memimg_close(mi);
	return len;
}

START_TEST(corrupt_eager)
{
	for (int compress = 0; compress <= 1; compress++) {
		uint64_t len = corrupt_chunk(compress);
		struct guest_mem dst;
		struct memimg *mi;

		mem_map(&dst, sizes[0], sizes[1]);
		/* The index is fine: it opens; the data is not. */
		ck_assert_int_eq(open_img(len, &dst, &mi), 0);
		ck_assert_int_eq(memimg_restore(mi, &dst, 2, NULL), -EBADMSG);
		memimg_close(mi);
		mem_unmap(&dst);
	}
}
END_TEST

START_TEST(corrupt_lazy)
{
	uint64_t len = corrupt_chunk(true);
	struct reader rd[2];
	struct guest_mem dst;
	struct memimg_lazy *l;
	struct memimg *mi;
	pthread_t t[2];
	uint8_t *c1;

	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_lazy_start(mi, &dst, &l), 0);
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){ .m = &dst, .ref = &src, .backwards = i == 1 };
		ck_assert_int_eq(pthread_create(&t[i], NULL, reader, &rd[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	/* Both readers went through chunk 1: the error is known already. */
	ck_assert_int_eq(memimg_lazy_error(l, NULL), -EBADMSG);
	ck_assert_int_eq(memimg_lazy_finish(l), -EBADMSG);
	/* Exactly chunk 1 (all text) differs: it reads as zero pages. */
	ck_assert_uint_eq(rd[0].bad, MEMIMG_CHUNK_PAGES);
	ck_assert_uint_eq(rd[1].bad, MEMIMG_CHUNK_PAGES);
	c1 = (uint8_t *)dst.r[0].hva + MEMIMG_CHUNK_PAGES * PAGE;
	for (unsigned int i = 0; i < MEMIMG_CHUNK_PAGES * PAGE; i++)
		if (c1[i])
			ck_abort_msg("corrupt chunk byte %u is not zero", i);
	memimg_close(mi);
	mem_unmap(&dst);
}
END_TEST

/* --- the memory cache (memimg_map_cached) --- */

static char cdir[64];

static void cache_dir_make(void)
{
	snprintf(cdir, sizeof(cdir), "/tmp/test_memcache.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(cdir));
	setenv("MINIVMM_CACHE_DIR", cdir, 1);
	unsetenv("MINIVMM_MEM_CACHE_MAX");
}

static void cache_dir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", cdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The names of the files in the cache directory: how many, the first "mem-*.img" in @name. */
static int cache_files(char *name, size_t size, int *tmps)
{
	DIR *d = opendir(cdir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	*tmps = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (strstr(e->d_name, ".tmp-"))
			++*tmps;
		else if (n++ == 0 && name && strlen(e->d_name) < size)
			memcpy(name, e->d_name, strlen(e->d_name) + 1);
	}
	closedir(d);
	return n;
}

/* A restore through the cache into fresh memory: same memory as saved; built or not. */
static bool cached_restore(uint64_t len, struct guest_mem *dst)
{
	struct memimg *mi;
	bool built;

	mem_map(dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, dst, &mi), 0);
	ck_assert_int_eq(memimg_map_cached(mi, dst, &built), 0);
	memimg_close(mi); /* the mapping does not need it */
	assert_same(&src, dst);
	return built;
}

/* Built once (sparse: zero pages are holes), then mapped; writes stay private. */
START_TEST(cache_build_then_map)
{
	uint64_t len = save(true, 2, NULL);
	struct guest_mem a, b;
	char name[128], path[256];
	struct stat st;
	int tmps;

	cache_dir_make();
	ck_assert(cached_restore(len, &a));
	ck_assert_int_eq(cache_files(name, sizeof(name), &tmps), 1);
	ck_assert_int_eq(tmps, 0);
	ck_assert(!strncmp(name, "mem-", 4));
	snprintf(path, sizeof(path), "%s/%s", cdir, name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_size, sizes[0] + sizes[1]);
	ck_assert_uint_eq(st.st_mode & 0777, 0400);
	ck_assert_uint_le((uint64_t)st.st_blocks * 512, (nonzero_pages + 16) * PAGE);
	memset(a.r[1].hva, 0x5a, PAGE); /* the guest's own write */
	ck_assert(!cached_restore(len, &b));
	mem_unmap(&b);
	mem_unmap(&a);
	cache_dir_remove();
}
END_TEST

/* A snapshot written again is another entry; MINIVMM_MEM_CACHE_MAX evicts the old one. */
START_TEST(cache_new_snapshot_evicts)
{
	uint64_t len = save(true, 2, NULL);
	struct guest_mem a;
	char first[128], second[128];
	int tmps;

	cache_dir_make();
	ck_assert(cached_restore(len, &a));
	mem_unmap(&a);
	ck_assert_int_eq(cache_files(first, sizeof(first), &tmps), 1);
	fill(&src, 0x7654321);
	len = save(true, 2, NULL);
	setenv("MINIVMM_MEM_CACHE_MAX", "0", 1);
	ck_assert(cached_restore(len, &a)); /* the new memory, not the old entry's */
	mem_unmap(&a);
	ck_assert_int_eq(cache_files(second, sizeof(second), &tmps), 1);
	ck_assert_str_ne(first, second);
	cache_dir_remove();
}
END_TEST

/* Entries that are not what we made are rebuilt, never mapped or followed. */
START_TEST(cache_hostile_entry)
{
	uint64_t len = save(true, 2, NULL);
	struct guest_mem a;
	char name[128], path[256], target[256];
	int tmps, f;

	cache_dir_make();
	ck_assert(cached_restore(len, &a));
	mem_unmap(&a);
	ck_assert_int_eq(cache_files(name, sizeof(name), &tmps), 1);
	snprintf(path, sizeof(path), "%s/%s", cdir, name);
	/* Writable by others, then the wrong size, then a symlink elsewhere. */
	ck_assert_int_eq(chmod(path, 0666), 0);
	ck_assert(cached_restore(len, &a));
	mem_unmap(&a);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(truncate(path, PAGE), 0);
	ck_assert(cached_restore(len, &a));
	mem_unmap(&a);
	snprintf(target, sizeof(target), "%s.target", cdir);
	f = open(target, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	ck_assert_int_ge(f, 0);
	ck_assert_int_eq(ftruncate(f, sizes[0] + sizes[1]), 0);
	close(f);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(symlink(target, path), 0);
	ck_assert(cached_restore(len, &a));
	mem_unmap(&a);
	f = open(target, O_RDONLY);
	ck_assert_int_ge(f, 0);
	for (uint64_t o = 0; o < sizes[0] + sizes[1]; o += 64 * PAGE) {
		uint8_t v = 1;

		ck_assert_int_eq(pread(f, &v, 1, o), 1);
		ck_assert_uint_eq(v, 0); /* not written through the link */
	}
	close(f);
	unlink(target);
	cache_dir_remove();
}
END_TEST

/* A corrupt chunk fails the restore and leaves nothing in the cache. */
START_TEST(cache_corrupt_chunk)
{
	uint64_t len = corrupt_chunk(true);
	struct guest_mem dst;
	struct memimg *mi;
	bool built;
	int tmps;

	cache_dir_make();
	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_map_cached(mi, &dst, &built), -EBADMSG);
	memimg_close(mi);
	mem_unmap(&dst);
	ck_assert_int_eq(cache_files(NULL, 0, &tmps), 0);
	ck_assert_int_eq(tmps, 0);
	cache_dir_remove();
}
END_TEST

/* No usable cache directory: -EAGAIN (restore another way) with guest memory untouched. */
START_TEST(cache_unusable)
{
	uint64_t len = save(true, 2, NULL);
	char path[] = "/tmp/test_memcache_file.XXXXXX";
	struct guest_mem dst;
	struct memimg *mi;
	bool built;
	int f = mkstemp(path);

	ck_assert_int_ge(f, 0);
	close(f);
	setenv("MINIVMM_CACHE_DIR", path, 1); /* a file, not a directory */
	mem_map(&dst, sizes[0], sizes[1]);
	ck_assert_int_eq(open_img(len, &dst, &mi), 0);
	ck_assert_int_eq(memimg_map_cached(mi, &dst, &built), -EAGAIN);
	ck_assert(!built);
	nonzero_pages = 0;
	assert_zero_untouched(&dst);
	memimg_close(mi);
	mem_unmap(&dst);
	unlink(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memimg");
	TCase *tc = tcase_create("memimg");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, eager_lzo_1);
	tcase_add_test(tc, eager_lzo_2);
	tcase_add_test(tc, eager_raw_1);
	tcase_add_test(tc, eager_raw_3);
	tcase_add_test(tc, map_raw);
	tcase_add_test(tc, map_needs_flat);
	tcase_add_test(tc, stats_compress);
	tcase_add_test(tc, progress);
	tcase_add_test(tc, lazy_one_reader);
	tcase_add_test(tc, lazy_two_readers);
	tcase_add_test(tc, lazy_raw_two_readers);
	tcase_add_test(tc, lazy_prefetch_only);
	tcase_add_test(tc, lazy_cancel);
	tcase_add_test(tc, lazy_page_present);
	tcase_add_test(tc, real_guest_mem);
	tcase_add_test(tc, guest_mem_aligned);
	tcase_add_test(tc, shared_mapping_scanned);
	tcase_add_test(tc, truncated);
	tcase_add_test(tc, flip_header_and_index);
	tcase_add_test(tc, forged_fields);
	tcase_add_test(tc, forged_flat);
	tcase_add_test(tc, bad_magic);
	tcase_add_test(tc, layout_mismatch);
	tcase_add_test(tc, corrupt_eager);
	tcase_add_test(tc, corrupt_lazy);
	tcase_add_test(tc, cache_build_then_map);
	tcase_add_test(tc, cache_new_snapshot_evicts);
	tcase_add_test(tc, cache_hostile_entry);
	tcase_add_test(tc, cache_corrupt_chunk);
	tcase_add_test(tc, cache_unusable);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
