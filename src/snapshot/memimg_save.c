// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory image: save. Worker threads take chunks in turn, find the zero pages
 * (never-touched ones straight from /proc/self/pagemap, without reading them),
 * compress the rest and pwrite each chunk at an offset reserved with an atomic
 * add: chunks land out of order, the index says where. Uncompressed images are
 * flat instead: each page at its own page-aligned place, zero pages left as
 * holes, so that a restore can map the file (memimg_map).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lzo/lzo1x.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "snapshot/memimg_int.h"
#include "util.h"

#define PM_PRESENT (1ULL << 63)
#define PM_SWAP	   (1ULL << 62)

struct save {
	int fd;
	uint64_t off;
	const struct guest_mem *m;
	bool compress, flat;
	uint64_t region_off[GUEST_MEM_MAX_REGIONS]; /* flat: where each region's pages are */
	int pm_fd;
	bool use_pm[GUEST_MEM_MAX_REGIONS];
	uint32_t chunk_pages, bmwords;
	uint64_t nr_chunks, total;
	struct memimg_chunk *c;
	uint64_t *zmap;
	const struct memimg_progress *progress;
	pthread_mutex_t plock;
	_Atomic uint64_t next, cursor, done, zero, unread, lzo, stored;
	_Atomic int err;
};

/*
 * Untouched pages of a private anonymous mapping are zero and absent from
 * pagemap; of any other mapping (shared, file, memfd) absent says nothing.
 */
static bool private_anon(const void *hva, uint64_t len)
{
	uint64_t start = (uintptr_t)hva, end = start + len, covered = 0;
	char *line = NULL;
	size_t cap = 0;
	bool ok = true;
	FILE *f;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		return false;
	while (ok && getline(&line, &cap, f) > 0) {
		unsigned long long lo, hi, pgoff, ino;
		char perms[5], path[2] = "";
		unsigned int maj, min;

		if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %1s", &lo, &hi, perms, &pgoff, &maj,
			   &min, &ino, path) < 7) {
			ok = false;
			break;
		}
		if (hi <= start || lo >= end)
			continue;
		ok = perms[3] == 'p' && ino == 0 && !path[0];
		covered += MIN(hi, end) - MAX(lo, start);
	}
	free(line);
	fclose(f);
	return ok && covered == len;
}

static int pwrite_iov(int fd, struct iovec *iov, int n, uint64_t off)
{
	while (n) {
		ssize_t w = pwritev(fd, iov, MIN(n, IOV_MAX), (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -EIO;
		off += w;
		while (n && (size_t)w >= iov->iov_len) {
			w -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= w;
		}
	}
	return 0;
}

/* Zero-page bitmap of chunk @ch at @hva; returns the non-zero page count. */
static uint32_t scan_chunk(struct save *s, const struct memimg_chunk *ch, const uint8_t *hva,
			   uint64_t *zm, uint64_t *pm)
{
	bool have_pm = false;
	uint32_t nz = 0, unread = 0;

	if (s->use_pm[ch->region])
		have_pm = !memimg_pread(s->pm_fd, pm, ch->npages * 8ULL,
					(uintptr_t)hva / MEMIMG_PAGE * 8);
	for (uint32_t i = 0; i < ch->npages; i++) {
		if (have_pm && !(pm[i] & (PM_PRESENT | PM_SWAP))) {
			unread++;
		} else if (!memimg_page_is_zero(hva + (size_t)i * MEMIMG_PAGE)) {
			nz++;
			continue;
		}
		zm[i / 64] |= 1ULL << (i % 64);
	}
	atomic_fetch_add(&s->unread, unread);
	atomic_fetch_add(&s->zero, ch->npages - nz);
	return nz;
}

/* Flat: each run of non-zero pages at its own place; the chunk spans all its pages. */
static int save_flat(struct save *s, struct memimg_chunk *ch, const uint8_t *hva, struct iovec *iov,
		     int n)
{
	int ret = 0;

	ch->file_off = s->region_off[ch->region] + ch->page * MEMIMG_PAGE;
	ch->len = ch->npages * MEMIMG_PAGE;
	for (int i = 0; i < n && !ret; i++) {
		uint64_t at = ch->file_off + (uint64_t)((const uint8_t *)iov[i].iov_base - hva);

		ret = pwrite_iov(s->fd, &iov[i], 1, s->off + at);
	}
	return ret;
}

struct wbuf {
	uint8_t *gather, *out, *wrk;
	uint64_t *pm;
	struct iovec *iov;
};

static int save_chunk(struct save *s, uint64_t c, struct wbuf *b)
{
	struct memimg_chunk *ch = &s->c[c];
	const struct mem_region *r = &s->m->r[ch->region];
	uint8_t *hva = (uint8_t *)r->hva + ch->page * MEMIMG_PAGE;
	uint64_t *zm = s->zmap + c * s->bmwords;
	size_t raw, len;
	int n = 0;

	ch->nz = scan_chunk(s, ch, hva, zm, b->pm);
	if (!ch->nz)
		return 0;
	raw = (size_t)ch->nz * MEMIMG_PAGE;
	/* Runs of non-zero pages, straight from guest memory. */
	for (uint32_t i = 0; i < ch->npages; i++) {
		if (zmap_test(zm, i))
			continue;
		if (n && (uint8_t *)b->iov[n - 1].iov_base + b->iov[n - 1].iov_len ==
			     hva + (size_t)i * MEMIMG_PAGE)
			b->iov[n - 1].iov_len += MEMIMG_PAGE;
		else
			b->iov[n++] = (struct iovec){ hva + (size_t)i * MEMIMG_PAGE, MEMIMG_PAGE };
	}
	if (s->compress) {
		const uint8_t *src = b->iov[0].iov_base;
		lzo_uint clen = 0;

		if (n > 1) {
			uint8_t *p = b->gather;

			for (int i = 0; i < n; i++) {
				memcpy(p, b->iov[i].iov_base, b->iov[i].iov_len);
				p += b->iov[i].iov_len;
			}
			src = b->gather;
		}
		if (lzo1x_1_compress(src, raw, b->out, &clen, b->wrk) != LZO_E_OK)
			return -EIO;
		if (clen < raw) {
			ch->flags = MEMIMG_C_LZO;
			b->iov[0] = (struct iovec){ b->out, clen };
			n = 1;
		}
	}
	len = ch->flags ? b->iov[0].iov_len : raw;
	ch->crc = 0;
	for (int i = 0; i < n; i++)
		ch->crc = crc32(ch->crc, b->iov[i].iov_base, b->iov[i].iov_len);
	atomic_fetch_add(&s->stored, len);
	if (s->flat)
		return save_flat(s, ch, hva, b->iov, n);
	ch->len = len;
	ch->file_off = atomic_fetch_add(&s->cursor, len);
	if (ch->flags)
		atomic_fetch_add(&s->lzo, 1);
	return pwrite_iov(s->fd, b->iov, n, s->off + ch->file_off);
}

static void *save_worker(void *arg)
{
	struct save *s = arg;
	size_t cb = (size_t)s->chunk_pages * MEMIMG_PAGE;
	struct wbuf b = {
		.gather = malloc(cb),
		.out = malloc(cb + cb / 16 + 64 + 3),
		.wrk = malloc(LZO1X_1_MEM_COMPRESS),
		.pm = malloc(s->chunk_pages * 8ULL),
		.iov = malloc(s->chunk_pages * sizeof(struct iovec)),
	};
	uint64_t c;
	int ret = 0;

	if (!b.gather || !b.out || !b.wrk || !b.pm || !b.iov)
		ret = -ENOMEM;
	while (!ret && !atomic_load(&s->err) &&
	       (c = atomic_fetch_add(&s->next, 1)) < s->nr_chunks) {
		ret = save_chunk(s, c, &b);
		if (ret)
			break;
		atomic_fetch_add(&s->done, s->c[c].npages * (uint64_t)MEMIMG_PAGE);
		/* Read under the lock: the reports never go backwards. */
		if (s->progress && !pthread_mutex_trylock(&s->plock)) {
			s->progress->fn(s->progress->ctx, atomic_load(&s->done), s->total);
			pthread_mutex_unlock(&s->plock);
		}
	}
	if (ret) {
		int zero = 0;

		atomic_compare_exchange_strong(&s->err, &zero, ret);
	}
	free(b.gather);
	free(b.out);
	free(b.wrk);
	free(b.pm);
	free(b.iov);
	return NULL;
}

static void encode(const struct save *s, uint8_t *h, uint8_t *ix, uint64_t ixoff)
{
	uint32_t esz = ENT_SIZE(s->bmwords);
	unsigned int i;

	for (uint64_t c = 0; c < s->nr_chunks; c++) {
		const struct memimg_chunk *ch = &s->c[c];
		uint8_t *e = ix + c * esz;

		put_le64(e + ENT_GPA, s->m->r[ch->region].gpa + ch->page * MEMIMG_PAGE);
		put_le64(e + ENT_FILE_OFF, ch->nz ? ch->file_off : 0);
		put_le32(e + ENT_STORED_LEN, ch->len);
		put_le32(e + ENT_CRC, ch->crc);
		put_le32(e + ENT_NPAGES, ch->npages);
		put_le32(e + ENT_FLAGS, ch->flags);
		for (i = 0; i < s->bmwords; i++)
			put_le64(e + ENT_ZMAP + 8 * i, s->zmap[c * s->bmwords + i]);
	}
	put_le32(ix + s->nr_chunks * esz, crc32(0, ix, s->nr_chunks * esz));

	memset(h, 0, MEMIMG_HDR_SIZE);
	memcpy(h + HDR_MAGIC, MEMIMG_MAGIC, 8);
	put_le32(h + HDR_VERSION, MEMIMG_VERSION);
	put_le32(h + HDR_FLAGS, s->compress ? MEMIMG_F_COMPRESS : MEMIMG_F_FLAT);
	put_le32(h + HDR_PAGE_SIZE, MEMIMG_PAGE);
	put_le32(h + HDR_CHUNK_PAGES, s->chunk_pages);
	put_le32(h + HDR_NR_REGIONS, s->m->nr);
	put_le32(h + HDR_ENTRY_SIZE, esz);
	put_le64(h + HDR_NR_CHUNKS, s->nr_chunks);
	put_le64(h + HDR_INDEX_OFF, ixoff);
	put_le64(h + HDR_INDEX_LEN, s->nr_chunks * esz + 4);
	for (i = 0; i < s->m->nr; i++) {
		put_le64(h + HDR_REGIONS + 16 * i, s->m->r[i].gpa);
		put_le64(h + HDR_REGIONS + 16 * i + 8, s->m->r[i].size);
	}
	put_le32(h + HDR_CRC, crc32(0, h, HDR_CRC));
}

int memimg_save(int fd, uint64_t off, const struct guest_mem *m, const struct memimg_save_opts *o,
		uint64_t *len, struct memimg_stats *st)
{
	static const struct memimg_save_opts defaults = { .compress = true };
	struct save s = { .fd = fd, .off = off, .m = m, .pm_fd = -1 };
	uint64_t t0 = now_ns(), c = 0, ixlen;
	uint8_t h[MEMIMG_HDR_SIZE], *ix = NULL;
	unsigned int i, nt, started = 0;
	pthread_t *tids = NULL;
	int ret;

	if (!o)
		o = &defaults;
	if (!m->nr || m->nr > GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	for (i = 0; i < m->nr; i++)
		if (m->r[i].size % MEMIMG_PAGE || !m->r[i].size)
			return -EINVAL;
	ret = memimg_lzo_init();
	if (ret)
		return ret;
	s.compress = o->compress;
	s.progress = o->progress && o->progress->fn ? o->progress : NULL;
	s.chunk_pages = MEMIMG_CHUNK_PAGES;
	s.bmwords = (s.chunk_pages + 63) / 64;
	for (i = 0; i < m->nr; i++)
		s.nr_chunks += memimg_region_chunks(m->r[i].size, s.chunk_pages);
	s.total = m->total;
	s.c = calloc(s.nr_chunks, sizeof(*s.c));
	s.zmap = calloc(s.nr_chunks * s.bmwords, sizeof(uint64_t));
	ixlen = s.nr_chunks * ENT_SIZE(s.bmwords) + 4;
	ix = malloc(ixlen);
	if (!s.c || !s.zmap || !ix) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < m->nr; i++) {
		uint64_t pages = m->r[i].size / MEMIMG_PAGE;

		for (uint64_t pg = 0; pg < pages; pg += s.chunk_pages, c++)
			s.c[c] = (struct memimg_chunk){ .region = i,
							.page = pg,
							.npages = MIN(s.chunk_pages, pages - pg) };
	}
	s.pm_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < m->nr && s.pm_fd >= 0; i++)
		s.use_pm[i] = private_anon(m->r[i].hva, m->r[i].size);
	s.flat = !s.compress;
	if (s.flat) {
		uint64_t at = memimg_flat_data_off(off);

		for (i = 0; i < m->nr; i++) {
			s.region_off[i] = at;
			at += m->r[i].size;
		}
		/* The index follows the last page, holes included. */
		atomic_init(&s.cursor, at);
	} else {
		atomic_init(&s.cursor, MEMIMG_HDR_SIZE);
	}
	pthread_mutex_init(&s.plock, NULL);

	nt = memimg_threads(o->threads, s.nr_chunks);
	tids = calloc(nt, sizeof(*tids));
	if (!tids) {
		ret = -ENOMEM;
		goto out_mutex;
	}
	/* The caller's thread is worker 0; fewer threads if some fail to start. */
	for (i = 1; i < nt; i++)
		if (!pthread_create(&tids[started], NULL, save_worker, &s))
			started++;
	save_worker(&s);
	for (i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	ret = atomic_load(&s.err);
	if (ret) {
		pr_err("snapshot: writing guest memory: %s", strerror(-ret));
		goto out_mutex;
	}
	encode(&s, h, ix, atomic_load(&s.cursor));
	ret = pwrite_iov(fd, &(struct iovec){ ix, ixlen }, 1, off + atomic_load(&s.cursor));
	ret = ret ?: pwrite_iov(fd, &(struct iovec){ h, sizeof(h) }, 1, off);
	if (ret) {
		pr_err("snapshot: writing guest memory index: %s", strerror(-ret));
		goto out_mutex;
	}
	*len = atomic_load(&s.cursor) + ixlen;
	if (s.progress)
		s.progress->fn(s.progress->ctx, s.total, s.total);
	if (st) {
		*st = (struct memimg_stats){
			.pages = m->total / MEMIMG_PAGE,
			.zero_pages = atomic_load(&s.zero),
			.unread_pages = atomic_load(&s.unread),
			.chunks = s.nr_chunks,
			.lzo_chunks = atomic_load(&s.lzo),
			.stored_bytes = atomic_load(&s.stored),
			.ns = now_ns() - t0,
		};
	}
out_mutex:
	pthread_mutex_destroy(&s.plock);
out:
	if (s.pm_fd >= 0)
		close(s.pm_fd);
	free(tids);
	free(ix);
	free(s.c);
	free(s.zmap);
	return ret;
}
