// SPDX-License-Identifier: GPL-2.0-or-later
/* Memory image: open and check a section (nothing in it is trusted), and the
 * helpers the save and restore paths share. */
#include <errno.h>
#include <fcntl.h>
#include <lzo/lzo1x.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "snapshot/memimg_int.h"
#include "util.h"

#define MAX_THREADS 64

uint64_t memimg_region_chunks(uint64_t size, uint32_t chunk_pages)
{
	uint64_t pages = size / MEMIMG_PAGE;

	return pages / chunk_pages + (pages % chunk_pages != 0);
}

unsigned int memimg_threads(unsigned int threads, uint64_t work)
{
	if (!threads) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		threads = n > 0 ? (unsigned int)n : 1;
	}
	threads = MIN(threads, MAX_THREADS);
	if (work < threads)
		threads = work ? (unsigned int)work : 1;
	return threads;
}

static int lzo_status;
static pthread_once_t lzo_once = PTHREAD_ONCE_INIT;

static void lzo_init_once(void)
{
	lzo_status = lzo_init() == LZO_E_OK ? 0 : -EIO;
}

int memimg_lzo_init(void)
{
	pthread_once(&lzo_once, lzo_init_once);
	if (lzo_status)
		pr_err("snapshot: liblzo2 failed to initialize");
	return lzo_status;
}

bool memimg_page_is_zero(const void *p)
{
	const uint64_t *w = p;

	/* 64 bytes per step without branches inside: the compiler vectorizes. */
	for (size_t i = 0; i < MEMIMG_PAGE / 8; i += 8) {
		uint64_t v = w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] |
			     w[i + 6] | w[i + 7];

		if (v)
			return false;
	}
	return true;
}

int memimg_pread(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA; /* truncated */
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

int memimg_check_layout(const struct memimg *mi, const struct guest_mem *m)
{
	unsigned int i;

	if (mi->nr_regions != m->nr) {
		pr_err("snapshot: memory image has %u RAM regions, this VM %u", mi->nr_regions,
		       m->nr);
		return -EINVAL;
	}
	for (i = 0; i < m->nr; i++) {
		if (mi->gpa[i] != m->r[i].gpa || mi->size[i] != m->r[i].size) {
			pr_err("snapshot: memory image RAM region %u is %llu KiB at %#llx, this "
			       "VM's %llu KiB at %#llx (different memory size?)",
			       i, (unsigned long long)(mi->size[i] >> 10),
			       (unsigned long long)mi->gpa[i],
			       (unsigned long long)(m->r[i].size >> 10),
			       (unsigned long long)m->r[i].gpa);
			return -EINVAL;
		}
	}
	return 0;
}

/* Flat: the chunk's non-zero pages, packed into @buf, one read per run. */
static int read_flat(const struct memimg *mi, const struct memimg_chunk *ch, uint64_t c,
		     uint8_t *buf)
{
	const uint64_t *zm = memimg_zmap(mi, c);
	uint32_t i = 0, j;
	int ret = 0;

	while (!ret && i < ch->npages) {
		if (zmap_test(zm, i)) {
			i++;
			continue;
		}
		for (j = i + 1; j < ch->npages && !zmap_test(zm, j); j++)
			;
		ret = memimg_pread(mi->fd, buf, (size_t)(j - i) * MEMIMG_PAGE,
				   mi->off + ch->file_off + (uint64_t)i * MEMIMG_PAGE);
		buf += (size_t)(j - i) * MEMIMG_PAGE;
		i = j;
	}
	return ret;
}

int memimg_read_chunk(const struct memimg *mi, uint64_t c, void *buf, void *tmp)
{
	const struct memimg_chunk *ch = &mi->c[c];
	size_t want = (size_t)ch->nz * MEMIMG_PAGE;
	void *in = ch->flags & MEMIMG_C_LZO ? tmp : buf;
	size_t len = mi->flags & MEMIMG_F_FLAT ? want : ch->len;
	int ret;

	if (mi->flags & MEMIMG_F_FLAT)
		ret = read_flat(mi, ch, c, buf);
	else
		ret = memimg_pread(mi->fd, in, ch->len, mi->off + ch->file_off);
	if (ret == -ENODATA) {
		pr_err("snapshot: memory chunk %llu: file truncated", (unsigned long long)c);
		return -EBADMSG;
	}
	if (ret) {
		pr_err("snapshot: memory chunk %llu: read: %s", (unsigned long long)c,
		       strerror(-ret));
		return ret;
	}
	if (!crc_ok(crc32(0, in, len), ch->crc)) {
		pr_err("snapshot: memory chunk %llu: checksum mismatch", (unsigned long long)c);
		return -EBADMSG;
	}
	if (ch->flags & MEMIMG_C_LZO) {
		lzo_uint out = want;

		if (lzo1x_decompress_safe(in, ch->len, buf, &out, NULL) != LZO_E_OK ||
		    out != want) {
			pr_err("snapshot: memory chunk %llu: bad compressed data",
			       (unsigned long long)c);
			return -EBADMSG;
		}
	}
	return 0;
}

static int bad(const char *what)
{
	pr_err("snapshot: memory image: %s", what);
	return -EBADMSG;
}

static int parse_header(struct memimg *mi, const uint8_t *h, const struct guest_mem *m)
{
	uint64_t nr = 0;
	unsigned int i;
	int ret;

	if (memcmp(h + HDR_MAGIC, MEMIMG_MAGIC, 8))
		return bad("bad magic (not a minivmm memory image)");
	if (!crc_ok(crc32(0, h, HDR_CRC), get_le32(h + HDR_CRC)))
		return bad("header checksum mismatch");
	if (get_le32(h + HDR_VERSION) != MEMIMG_VERSION) {
		pr_err("snapshot: memory image: version %u, this minivmm reads %u",
		       get_le32(h + HDR_VERSION), MEMIMG_VERSION);
		return -EPROTONOSUPPORT;
	}
	mi->flags = get_le32(h + HDR_FLAGS);
	if (mi->flags & ~(MEMIMG_F_COMPRESS | MEMIMG_F_FLAT) ||
	    (mi->flags & MEMIMG_F_COMPRESS && mi->flags & MEMIMG_F_FLAT))
		return bad("unknown flags");
	if (get_le32(h + HDR_PAGE_SIZE) != MEMIMG_PAGE)
		return bad("page size is not 4096");
	mi->chunk_pages = get_le32(h + HDR_CHUNK_PAGES);
	if (!mi->chunk_pages || mi->chunk_pages > MEMIMG_MAX_CHUNK_PAGES)
		return bad("bad chunk size");
	mi->bmwords = (mi->chunk_pages + 63) / 64;
	if (get_le32(h + HDR_ENTRY_SIZE) != ENT_SIZE(mi->bmwords))
		return bad("bad index entry size");
	mi->nr_regions = get_le32(h + HDR_NR_REGIONS);
	if (!mi->nr_regions || mi->nr_regions > GUEST_MEM_MAX_REGIONS)
		return bad("bad number of RAM regions");
	for (i = 0; i < mi->nr_regions; i++) {
		mi->gpa[i] = get_le64(h + HDR_REGIONS + 16 * i);
		mi->size[i] = get_le64(h + HDR_REGIONS + 16 * i + 8);
		if (!mi->size[i] || mi->size[i] % MEMIMG_PAGE)
			return bad("bad RAM region size");
	}
	for (i = HDR_REGIONS + 16 * mi->nr_regions; i < HDR_CRC; i++)
		if (h[i])
			return bad("reserved header bytes set");
	ret = memimg_check_layout(mi, m);
	if (ret)
		return ret;
	/* The layout is @m's, so the chunk count and index size are bounded. */
	for (i = 0; i < mi->nr_regions; i++)
		nr += memimg_region_chunks(mi->size[i], mi->chunk_pages);
	mi->nr_chunks = get_le64(h + HDR_NR_CHUNKS);
	if (mi->nr_chunks != nr)
		return bad("wrong number of chunks for this layout");
	if (get_le64(h + HDR_INDEX_LEN) != nr * ENT_SIZE(mi->bmwords) + 4)
		return bad("bad index length");
	if (get_le64(h + HDR_INDEX_OFF) < MEMIMG_HDR_SIZE ||
	    get_le64(h + HDR_INDEX_OFF) > mi->len ||
	    mi->len - get_le64(h + HDR_INDEX_OFF) != get_le64(h + HDR_INDEX_LEN))
		return bad("index is not at the end of the section (truncated?)");
	if (mi->flags & MEMIMG_F_FLAT) {
		mi->data_off = memimg_flat_data_off(mi->off);
		if (get_le64(h + HDR_INDEX_OFF) != memimg_flat_region_off(mi, mi->nr_regions))
			return bad("flat image: the index does not follow the last page");
	}
	return 0;
}

struct span {
	uint64_t off, end, chunk;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* What is wrong with chunk @ch's index entry, or NULL. */
static const char *check_entry(const struct memimg *mi, const struct memimg_chunk *ch,
			       const uint64_t *zm, uint64_t gpa_off, uint32_t npages,
			       uint64_t data_end)
{
	uint32_t i;

	if (gpa_off != ch->page * MEMIMG_PAGE || npages != ch->npages)
		return "index entry for another guest address";
	if (ch->flags & ~MEMIMG_C_LZO || (ch->flags && !(mi->flags & MEMIMG_F_COMPRESS)))
		return "bad chunk flags";
	/* No bit past the chunk's last page. */
	if (ch->npages % 64 && zm[ch->npages / 64] >> (ch->npages % 64))
		return "zero-page bitmap past the chunk's end";
	for (i = ch->npages / 64 + (ch->npages % 64 != 0); i < mi->bmwords; i++)
		if (zm[i])
			return "zero-page bitmap past the chunk's end";
	if (!ch->nz)
		return ch->len || ch->file_off || ch->flags || ch->crc
			   ? "data stored for a chunk of zero pages"
			   : NULL;
	/* Flat: the chunk's pages where the mapping will find them. */
	if (mi->flags & MEMIMG_F_FLAT) {
		uint64_t at = memimg_flat_region_off(mi, ch->region) + ch->page * MEMIMG_PAGE;

		return ch->file_off != at || ch->len != (uint64_t)ch->npages * MEMIMG_PAGE
			   ? "flat image: chunk data out of place"
			   : NULL;
	}
	/* Raw: exactly the pages; LZO: only kept if smaller. */
	if ((ch->flags & MEMIMG_C_LZO) ? !ch->len || ch->len >= (uint64_t)ch->nz * MEMIMG_PAGE
				       : ch->len != (uint64_t)ch->nz * MEMIMG_PAGE)
		return "bad stored length";
	if (ch->file_off < MEMIMG_HDR_SIZE || ch->file_off > data_end ||
	    data_end - ch->file_off < ch->len)
		return "data outside the section's data area";
	return NULL;
}

static int parse_index(struct memimg *mi, const uint8_t *ix)
{
	uint64_t data_end = mi->len - (mi->nr_chunks * ENT_SIZE(mi->bmwords) + 4);
	uint32_t esz = ENT_SIZE(mi->bmwords);
	uint64_t c = 0, nspans = 0;
	struct span *sp;
	unsigned int r;
	int ret = 0;

	if (!crc_ok(crc32(0, ix, mi->nr_chunks * esz), get_le32(ix + mi->nr_chunks * esz)))
		return bad("index checksum mismatch");
	mi->c = calloc(mi->nr_chunks, sizeof(*mi->c));
	mi->zmap = calloc(mi->nr_chunks * mi->bmwords, sizeof(uint64_t));
	sp = calloc(mi->nr_chunks, sizeof(*sp));
	if (!mi->c || !mi->zmap || !sp) {
		free(sp);
		return -ENOMEM;
	}
	for (r = 0; r < mi->nr_regions; r++) {
		uint64_t pages = mi->size[r] / MEMIMG_PAGE;

		for (uint64_t pg = 0; pg < pages; pg += mi->chunk_pages, c++) {
			const uint8_t *e = ix + c * esz;
			struct memimg_chunk *ch = &mi->c[c];
			uint64_t *zm = mi->zmap + c * mi->bmwords;
			uint32_t zeros = 0, i;
			const char *why;

			ch->region = r;
			ch->page = pg;
			ch->npages = MIN(mi->chunk_pages, pages - pg);
			ch->file_off = get_le64(e + ENT_FILE_OFF);
			ch->len = get_le32(e + ENT_STORED_LEN);
			ch->crc = get_le32(e + ENT_CRC);
			ch->flags = get_le32(e + ENT_FLAGS);
			for (i = 0; i < mi->bmwords; i++) {
				zm[i] = get_le64(e + ENT_ZMAP + 8 * i);
				zeros += __builtin_popcountll(zm[i]);
			}
			ch->nz = ch->npages - zeros;
			why = check_entry(mi, ch, zm, get_le64(e + ENT_GPA) - mi->gpa[r],
					  get_le32(e + ENT_NPAGES), data_end);
			if (why) {
				pr_err("snapshot: memory chunk %llu: %s", (unsigned long long)c,
				       why);
				ret = -EBADMSG;
				goto out;
			}
			if (!ch->nz)
				continue;
			sp[nspans++] = (struct span){ ch->file_off, ch->file_off + ch->len, c };
		}
	}
	qsort(sp, nspans, sizeof(*sp), span_cmp);
	for (uint64_t i = 1; i < nspans; i++) {
		if (sp[i].off < sp[i - 1].end) {
			char msg[96];

			snprintf(msg, sizeof(msg), "chunks %llu and %llu overlap",
				 (unsigned long long)sp[i - 1].chunk,
				 (unsigned long long)sp[i].chunk);
			ret = bad(msg);
			goto out;
		}
	}
out:
	free(sp);
	return ret;
}

int memimg_open(int fd, uint64_t off, uint64_t len, const struct guest_mem *m, struct memimg **out)
{
	uint8_t h[MEMIMG_HDR_SIZE];
	struct memimg *mi;
	uint8_t *ix = NULL;
	uint64_t ixlen;
	struct stat st;
	int ret;

	*out = NULL;
	if (len < MEMIMG_HDR_SIZE || off > UINT64_MAX - len || off + len > INT64_MAX)
		return bad("section too short");
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < off + len)
		return bad("file truncated");
	mi = calloc(1, sizeof(*mi));
	if (!mi)
		return -ENOMEM;
	mi->off = off;
	mi->len = len;
	mi->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (mi->fd < 0) {
		ret = -errno;
		goto err;
	}
	ret = memimg_pread(fd, h, sizeof(h), off);
	if (ret)
		goto err_read;
	ret = parse_header(mi, h, m);
	if (ret)
		goto err;
	ixlen = get_le64(h + HDR_INDEX_LEN);
	ix = malloc(ixlen);
	if (!ix) {
		ret = -ENOMEM;
		goto err;
	}
	ret = memimg_pread(fd, ix, ixlen, off + get_le64(h + HDR_INDEX_OFF));
	if (ret)
		goto err_read;
	ret = parse_index(mi, ix);
	if (ret)
		goto err;
	free(ix);
	*out = mi;
	return 0;
err_read:
	if (ret == -ENODATA)
		ret = bad("file truncated");
	else
		pr_err("snapshot: memory image: read: %s", strerror(-ret));
err:
	free(ix);
	memimg_close(mi);
	return ret;
}

void memimg_close(struct memimg *mi)
{
	if (!mi)
		return;
	if (mi->fd >= 0)
		close(mi->fd);
	free(mi->c);
	free(mi->zmap);
	free(mi);
}
