// SPDX-License-Identifier: GPL-2.0-or-later
/* qcow2 engine: formats, I/O, sync accounting, discard, growth, backing files. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../qcow2/qtest.h"
#include "unit.h"

static void check_clean(struct qcow2 *q, bool allow_leaks)
{
	struct qcow2_check_result r;

	ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_NONE, &r, NULL, NULL), 0);
	ck_assert_uint_eq(r.corruptions, 0);
	if (!allow_leaks)
		ck_assert_uint_eq(r.leaks, 0);
}

/* Write random extents, verify before and after a close/reopen, then check. */
static void roundtrip(unsigned int cb, int ver, unsigned int rbits)
{
	uint64_t size = 8ULL << 20, seed = cb * 1000 + ver * 100 + rbits;
	uint8_t *model = calloc(1, size), *buf = malloc(1 << 20);
	struct fio *f = qt_new_image(size, cb, ver, rbits);
	struct qcow2 *q;
	char err[128];

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(qt_open(f, &q, false, err, sizeof(err)), 0);
	for (int i = 0; i < 60; i++) {
		uint64_t len = (qt_rand(&seed) % 256 + 1) * 512;
		uint64_t off = (qt_rand(&seed) % ((size - len) / 512)) * 512;

		for (uint64_t s = 0; s < len / 512; s++)
			qt_fill(buf + s * 512, off / 512 + s, i + 1);
		ck_assert_int_eq(qcow2_pwrite(q, buf, len, off), 0);
		memcpy(model + off, buf, len);
		if (i % 7 == 0)
			ck_assert_int_eq(qcow2_flush(q), 0);
	}
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		ck_assert_int_eq(qcow2_pread(q, buf, 1 << 20, off), 0);
		ck_assert(!memcmp(buf, model + off, 1 << 20));
	}
	check_clean(q, true);
	ck_assert_int_eq(qcow2_close(q), 0); /* frees f too */
	free(model);
	free(buf);
}

START_TEST(t_roundtrip_formats)
{
	static const unsigned int cbs[] = { 9, 12, 16, 21 };
	static const unsigned int rb[] = { 1, 2, 4, 8, 16, 32, 64 };

	for (unsigned int i = 0; i < 4; i++)
		roundtrip(cbs[i], 2, 16);
	for (unsigned int i = 0; i < 7; i++)
		roundtrip(i % 2 ? 9 : 16, 3, rb[i]);
}
END_TEST

/* The state a flush leaves reads back exactly and checks without corruption. */
START_TEST(t_reopen_and_check)
{
	static const unsigned int cbs[] = { 9, 12, 16, 21 };

	for (unsigned int v = 2; v <= 3; v++) {
		for (unsigned int i = 0; i < 4; i++) {
			uint64_t size = 4ULL << 20, seed = 77 + i;
			uint8_t *model = calloc(1, size), *buf = malloc(size);
			struct fio *f = qt_new_image(size, cbs[i], v, v == 3 && i == 1 ? 2 : 16);
			struct fio *copy;
			struct qcow2 *q;
			char err[128];

			ck_assert_int_eq(qt_open(f, &q, false, err, sizeof(err)), 0);
			for (int k = 0; k < 40; k++) {
				uint64_t len = (qt_rand(&seed) % 64 + 1) * 512;
				uint64_t off = (qt_rand(&seed) % ((size - len) / 512)) * 512;

				memset(buf, k + 1, len);
				ck_assert_int_eq(qcow2_pwrite(q, buf, len, off), 0);
				memset(model + off, k + 1, len);
			}
			ck_assert_int_eq(qcow2_flush(q), 0);
			check_clean(q, true); /* the reservation pool shows as leaks */
			/* The bytes right after the flush, as a crash would leave them. */
			copy = qt_clone(f);
			ck_assert_int_eq(qcow2_close(q), 0);
			ck_assert_int_eq(qt_open(copy, &q, true, err, sizeof(err)), 0);
			check_clean(q, true);
			ck_assert_int_eq(qcow2_pread(q, buf, size, 0), 0);
			ck_assert(!memcmp(buf, model, size));
			ck_assert_int_eq(qcow2_close(q), 0);
			free(model);
			free(buf);
		}
	}
}
END_TEST

/* A file whose bytes we keep after the engine closes it. */
struct keep {
	struct fio f;
	struct fio *inner;
};

static int k_preadv(struct fio *f, const struct iovec *v, int c, uint64_t o)
{
	return fio_preadv(((struct keep *)f)->inner, v, c, o);
}
static int k_pwritev(struct fio *f, const struct iovec *v, int c, uint64_t o)
{
	return fio_pwritev(((struct keep *)f)->inner, v, c, o);
}
static int k_sync(struct fio *f)
{
	return fio_sync(((struct keep *)f)->inner);
}
static int k_barrier(struct fio *f)
{
	return fio_barrier(((struct keep *)f)->inner);
}
static int k_trunc(struct fio *f, uint64_t s)
{
	return fio_truncate(((struct keep *)f)->inner, s);
}
static int k_size(struct fio *f, uint64_t *s)
{
	return fio_size(((struct keep *)f)->inner, s);
}
static int k_punch(struct fio *f, uint64_t o, uint64_t l)
{
	return fio_punch(((struct keep *)f)->inner, o, l);
}
static int k_submit(struct fio *f, const struct fio_req *r, int n, bool s)
{
	return fio_submit(((struct keep *)f)->inner, r, n, s);
}
static void k_close(struct fio *f)
{
	free(f);
}
static const struct fio_ops keep_ops = { k_preadv, k_pwritev, k_sync,	k_barrier, k_trunc,
					 k_size,   k_punch,   k_submit, k_close };

static struct fio *keep(struct fio *inner)
{
	struct keep *k = calloc(1, sizeof(*k));

	k->f.ops = &keep_ops;
	k->inner = inner;
	return &k->f;
}

static struct qcow2 *open_keep(struct fio *inner, bool ro)
{
	struct qcow2 *q;
	char err[160];
	int r = qt_open(keep(inner), &q, ro, err, sizeof(err));

	ck_assert_msg(r == 0, "open: %d %s", r, err);
	return q;
}

START_TEST(t_persist_close_reopen)
{
	for (unsigned int cb = 9; cb <= 21; cb += 4) {
		uint64_t size = 6ULL << 20, seed = cb;
		struct fio *f = qt_new_image(size, cb, 3, 16);
		uint8_t *model = calloc(1, size), *buf = malloc(size);
		struct qcow2 *q = open_keep(f, false);

		for (int k = 0; k < 50; k++) {
			uint64_t len = (qt_rand(&seed) % 300 + 1) * 512;
			uint64_t off = (qt_rand(&seed) % ((size - len) / 512)) * 512;

			memset(buf, k + 1, len);
			ck_assert_int_eq(qcow2_pwrite(q, buf, len, off), 0);
			memset(model + off, k + 1, len);
			if (k % 10 == 9) {
				ck_assert_int_eq(qcow2_discard(q, off, len), 0);
				ck_assert_int_eq(qcow2_pread(q, buf, len, off), 0);
				/* Partial clusters keep data; whole ones read zero. */
				memcpy(model + off, buf, len);
			}
		}
		ck_assert_int_eq(qcow2_close(q), 0);
		q = open_keep(f, false);
		check_clean(q, false); /* a clean close leaves no leaks */
		ck_assert_int_eq(qcow2_pread(q, buf, size, 0), 0);
		ck_assert(!memcmp(buf, model, size));
		ck_assert_int_eq(qcow2_close(q), 0);
		fio_close(f);
		free(model);
		free(buf);
	}
}
END_TEST

START_TEST(t_sync_accounting)
{
	struct fio *f = qt_new_image(64ULL << 20, 16, 3, 16);
	struct qcow2 *q = open_keep(f, false);
	struct qcow2_stats st;
	static uint8_t buf[65536];
	uint64_t s0;

	memset(buf, 7, sizeof(buf));
	/* Allocating 64 KiB writes, flush after each: one sync per flush. */
	for (int i = 0; i < 300; i++) {
		ck_assert_int_eq(qcow2_pwrite(q, buf, sizeof(buf), (uint64_t)i << 16), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
	}
	qcow2_get_stats(q, &st);
	ck_assert_uint_eq(st.allocs, 300);
	/* Once per session: the leak hint in the header, then the first reservation. */
	ck_assert_uint_le(st.syncs, 300 + 2);
	ck_assert_uint_le(st.meta_bytes / st.allocs, 8192);
	/* Nothing written: no sync. */
	s0 = st.syncs;
	ck_assert_int_eq(qcow2_flush(q), 0);
	qcow2_get_stats(q, &st);
	ck_assert_uint_eq(st.syncs, s0);
	ck_assert_uint_eq(st.noop_flushes, 1);
	/* Overwrites: exactly one each. */
	for (int i = 0; i < 20; i++) {
		ck_assert_int_eq(qcow2_pwrite(q, buf, 4096, (uint64_t)i << 16), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
	}
	qcow2_get_stats(q, &st);
	ck_assert_uint_eq(st.syncs, s0 + 20);
	ck_assert_int_eq(qcow2_close(q), 0);
	fio_close(f);
}
END_TEST

START_TEST(t_discard_and_zeroes)
{
	for (int v = 2; v <= 3; v++) {
		struct fio *f = qt_new_image(4ULL << 20, 12, v, 16);
		struct qcow2 *q = open_keep(f, false);
		uint8_t *buf = malloc(1 << 20), *zero = calloc(1, 1 << 20);

		memset(buf, 0x5a, 1 << 20);
		ck_assert_int_eq(qcow2_pwrite(q, buf, 1 << 20, 0), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
		ck_assert_int_eq(qcow2_write_zeroes(q, 512, 8192), 0);
		ck_assert_int_eq(qcow2_pread(q, buf, 16384, 0), 0);
		for (int i = 0; i < 16384; i++)
			if (buf[i] != ((i >= 512 && i < 512 + 8192) ? 0 : 0x5a))
				ck_abort_msg("byte %d", i);
		ck_assert_int_eq(qcow2_discard(q, 65536, 65536), 0);
		ck_assert_int_eq(qcow2_pread(q, buf, 65536, 65536), 0);
		ck_assert(!memcmp(buf, zero, 65536));
		ck_assert_int_eq(qcow2_flush(q), 0);
		/* Freed clusters return to the pool and are reused without growth. */
		uint64_t before, after;

		fio_size(f, &before);
		memset(buf, 0x11, 65536);
		ck_assert_int_eq(qcow2_flush(q), 0);
		ck_assert_int_eq(qcow2_pwrite(q, buf, 65536, 2 << 20), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
		fio_size(f, &after);
		ck_assert_uint_eq(before, after);
		ck_assert_int_eq(qcow2_close(q), 0);
		q = open_keep(f, true);
		check_clean(q, false);
		ck_assert_int_eq(qcow2_pread(q, buf, 65536, 2 << 20), 0);
		ck_assert_int_eq(buf[100], 0x11);
		ck_assert_int_eq(qcow2_close(q), 0);
		fio_close(f);
		free(buf);
		free(zero);
	}
}
END_TEST

/* 512-byte clusters with 64-bit refcounts: many refcount blocks and table growth. */
START_TEST(t_refcount_growth)
{
	struct fio *f = qt_new_image(64ULL << 20, 9, 3, 64);
	struct qcow2 *q = open_keep(f, false);
	uint8_t *buf = malloc(1 << 20);
	uint64_t seed = 5;

	for (int i = 0; i < 16; i++) {
		memset(buf, i + 1, 1 << 20);
		ck_assert_int_eq(qcow2_pwrite(q, buf, 1 << 20, (uint64_t)i << 22), 0);
		if (qt_rand(&seed) & 1)
			ck_assert_int_eq(qcow2_flush(q), 0);
	}
	ck_assert_int_eq(qcow2_close(q), 0);
	q = open_keep(f, false);
	check_clean(q, false);
	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(qcow2_pread(q, buf, 1 << 20, (uint64_t)i << 22), 0);
		ck_assert_int_eq(buf[0], i + 1);
		ck_assert_int_eq(buf[(1 << 20) - 1], i + 1);
	}
	ck_assert_int_eq(qcow2_close(q), 0);
	fio_close(f);
	free(buf);
}
END_TEST

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = v;
}

/* Open a copy of a fresh image with one header field changed. */
static int open_mutant(void (*mut)(uint8_t *img, uint64_t n), char *err, size_t errlen, bool ro)
{
	struct fio *f = qt_new_image(1ULL << 30, 16, 3, 16);
	uint64_t n;
	const uint8_t *d = crashsim_data(f, &n);
	uint8_t *img = malloc(n);
	struct qcow2 *q;
	int r;

	memcpy(img, d, n);
	fio_close(f);
	mut(img, n);
	f = crashsim_new(img, n, 64ULL << 20);
	free(img);
	r = qt_open(f, &q, ro, err, errlen);
	if (r) {
		fio_close(f);
		return r;
	}
	/* Opened: exercise it; nothing may crash or escape. */
	uint8_t *buf = malloc(1 << 20);

	for (uint64_t off = 0; off < (1ULL << 30); off += 64ULL << 20)
		qcow2_pread(q, buf, 1 << 20, off);
	if (!ro) {
		memset(buf, 3, 1 << 20);
		qcow2_pwrite(q, buf, 1 << 20, 0);
		qcow2_flush(q);
	}
	struct qcow2_check_result cr;

	qcow2_check(q, QCOW2_REPAIR_NONE, &cr, NULL, NULL);
	free(buf);
	qcow2_close(q);
	return 0;
}

static void m_l1_huge(uint8_t *h, uint64_t n)
{
	(void)n;
	put32(h + 36, 0xffffffff);
}
static void m_l1_header(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 40, 0);
}
static void m_rt_past_eof(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 48, 1ULL << 40);
}
static void m_rt_overlap_l1(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 48, 3 << 16); /* the L1 table's cluster */
}
static void m_incompat(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 72, 1ULL << 40);
}
static void m_extl2(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 72, 1ULL << 4);
}
static void m_corrupt(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 72, 1ULL << 1);
}
static void m_cluster_bits(uint8_t *h, uint64_t n)
{
	(void)n;
	put32(h + 20, 31);
}
static void m_refcount_order(uint8_t *h, uint64_t n)
{
	(void)n;
	put32(h + 96, 7);
}
static void m_ext_len(uint8_t *h, uint64_t n)
{
	(void)n;
	put32(h + 104, 0x12345678);
	put32(h + 108, 0xfffffff0);
}
static void m_backing_len(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 8, 200);
	put32(h + 16, 1u << 30);
}
static void m_rt_huge(uint8_t *h, uint64_t n)
{
	(void)n;
	put32(h + 56, 0x7fffffff);
}
/* L1 entry 0 points at the header; refcount table entry 0 points at the table itself. */
static void m_l2_in_header(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + (3 << 16), (1ULL << 63) | 0);
	put64(h + (3 << 16) + 8, (1ULL << 63) | 65536);
}
static void m_rt_loop(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + 65536, 65536);
}
static void m_l2_past_eof(uint8_t *h, uint64_t n)
{
	(void)n;
	put64(h + (3 << 16), (1ULL << 63) | (1ULL << 45));
}

START_TEST(t_malicious_headers)
{
	char err[256];

	ck_assert_int_eq(open_mutant(m_l1_huge, err, sizeof(err), true), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err, "l1_size"));
	ck_assert_int_lt(open_mutant(m_l1_header, err, sizeof(err), true), 0);
	ck_assert_ptr_nonnull(strstr(err, "header"));
	ck_assert_int_lt(open_mutant(m_rt_past_eof, err, sizeof(err), true), 0);
	ck_assert_ptr_nonnull(strstr(err, "past the end"));
	ck_assert_int_lt(open_mutant(m_rt_overlap_l1, err, sizeof(err), true), 0);
	ck_assert_ptr_nonnull(strstr(err, "overlaps"));
	ck_assert_int_eq(open_mutant(m_incompat, err, sizeof(err), true), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "bit 40"));
	ck_assert_int_eq(open_mutant(m_extl2, err, sizeof(err), true), -ENOTSUP);
	ck_assert_ptr_nonnull(strstr(err, "extended L2"));
	ck_assert_int_eq(open_mutant(m_corrupt, err, sizeof(err), false), -EUCLEAN);
	ck_assert_ptr_nonnull(strstr(err, "corrupt"));
	ck_assert_int_eq(open_mutant(m_corrupt, err, sizeof(err), true), 0);
	ck_assert_int_lt(open_mutant(m_cluster_bits, err, sizeof(err), true), 0);
	ck_assert_int_lt(open_mutant(m_refcount_order, err, sizeof(err), true), 0);
	ck_assert_int_lt(open_mutant(m_ext_len, err, sizeof(err), true), 0);
	ck_assert_ptr_nonnull(strstr(err, "extension"));
	ck_assert_int_lt(open_mutant(m_backing_len, err, sizeof(err), true), 0);
	ck_assert_int_lt(open_mutant(m_rt_huge, err, sizeof(err), true), 0);
	/* These open; I/O on the bad parts fails cleanly. */
	ck_assert_int_eq(open_mutant(m_l2_in_header, err, sizeof(err), false), 0);
	ck_assert_int_eq(open_mutant(m_rt_loop, err, sizeof(err), false), 0);
	ck_assert_int_eq(open_mutant(m_l2_past_eof, err, sizeof(err), false), 0);
}
END_TEST

static void write_file(const char *path, const void *d, size_t n)
{
	FILE *fp = fopen(path, "wb");

	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(d, 1, n, fp), n);
	fclose(fp);
}

START_TEST(t_backing_policy)
{
	char dir[] = "/tmp/qcow2-bk-XXXXXX", path[512], top[512], err[256];
	struct qcow2_create_opts co = { .size = 4 << 20, .cluster_bits = 16 };
	uint8_t *raw = malloc(4 << 20), *buf = malloc(1 << 20);
	struct qcow2_opts o = { 0 };
	struct qcow2 *q;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (int i = 0; i < (4 << 20); i++)
		raw[i] = i * 7 + 3;
	snprintf(path, sizeof(path), "%s/base.raw", dir);
	write_file(path, raw, 4 << 20);
	snprintf(top, sizeof(top), "%s/top.qcow2", dir);
	co.backing_file = "base.raw";
	co.backing_fmt = "raw";
	ck_assert_int_eq(qcow2_create(top, &co, err, sizeof(err)), 0);

	/* Denied by default. */
	ck_assert_int_eq(qcow2_open(&q, top, &o, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "not allowed"));
	/* Outside the allowed directory. */
	o.backing = QCOW2_BACKING_DIR;
	o.backing_dir = "/usr";
	ck_assert_int_eq(qcow2_open(&q, top, &o, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "outside"));
	/* Allowed: reads fall through, a partial write copies the rest. */
	o.backing_dir = dir;
	ck_assert_int_eq(qcow2_open(&q, top, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_pread(q, buf, 1 << 20, 1 << 20), 0);
	ck_assert(!memcmp(buf, raw + (1 << 20), 1 << 20));
	memset(buf, 0xee, 4096);
	ck_assert_int_eq(qcow2_pwrite(q, buf, 4096, 8192), 0);
	ck_assert_int_eq(qcow2_flush(q), 0);
	ck_assert_int_eq(qcow2_pread(q, buf, 65536, 0), 0);
	ck_assert(!memcmp(buf, raw, 8192));
	ck_assert_int_eq(buf[8192], 0xee);
	ck_assert(!memcmp(buf + 12288, raw + 12288, 65536 - 12288));
	ck_assert_int_eq(qcow2_write_zeroes(q, 1 << 20, 1 << 20), 0);
	ck_assert_int_eq(qcow2_pread(q, buf, 1 << 20, 1 << 20), 0);
	for (int i = 0; i < (1 << 20); i++)
		if (buf[i])
			ck_abort_msg("byte %d not zero", i);
	ck_assert_int_eq(qcow2_close(q), 0);

	/* A loop: a -> b -> a. */
	char a[512], b[512];

	snprintf(a, sizeof(a), "%s/a.qcow2", dir);
	snprintf(b, sizeof(b), "%s/b.qcow2", dir);
	co.backing_fmt = "qcow2";
	co.backing_file = "b.qcow2";
	ck_assert_int_eq(qcow2_create(a, &co, err, sizeof(err)), 0);
	co.backing_file = "a.qcow2";
	ck_assert_int_eq(qcow2_create(b, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_open(&q, a, &o, err, sizeof(err)), -ELOOP);
	ck_assert_ptr_nonnull(strstr(err, "loop"));
	/* A chain longer than allowed. */
	char c[512];

	for (int i = 0; i < 4; i++) {
		char name[64];

		snprintf(c, sizeof(c), "%s/c%d.qcow2", dir, i);
		snprintf(name, sizeof(name), "c%d.qcow2", i - 1);
		co.backing_file = i ? name : "base.raw";
		co.backing_fmt = i ? "qcow2" : "raw";
		ck_assert_int_eq(qcow2_create(c, &co, err, sizeof(err)), 0);
	}
	o.backing_depth = 2;
	ck_assert_int_eq(qcow2_open(&q, c, &o, err, sizeof(err)), -ELOOP);
	/*
	 * No format in the header: raw, never probed. A qcow2 file named that way is
	 * refused (it used to be probed and opened as qcow2, its own links followed).
	 */
	char probe[512];

	snprintf(probe, sizeof(probe), "%s/probe.qcow2", dir);
	co.backing_file = "c1.qcow2";
	co.backing_fmt = NULL;
	ck_assert_int_eq(qcow2_create(probe, &co, err, sizeof(err)), 0);
	o.backing_depth = 4;
	ck_assert_int_eq(qcow2_open(&q, probe, &o, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "looks like qcow2"));
	o.backing_depth = 4;
	ck_assert_int_eq(qcow2_open(&q, c, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_pread(q, buf, 4096, 40960), 0);
	ck_assert(!memcmp(buf, raw + 40960, 4096));
	ck_assert_int_eq(qcow2_close(q), 0);
	/* Absolute path outside the directory through a probed format. */
	snprintf(c, sizeof(c), "%s/evil.qcow2", dir);
	co.backing_file = "/etc/passwd";
	co.backing_fmt = NULL;
	co.size = 1 << 20;
	ck_assert_int_eq(qcow2_create(c, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_open(&q, c, &o, err, sizeof(err)), -EPERM);
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	free(raw);
	free(buf);
}
END_TEST

static void make_image(const char *path, uint64_t size, const char *backing, const char *fmt)
{
	struct qcow2_create_opts co = {
		.size = size, .cluster_bits = 16, .backing_file = backing, .backing_fmt = fmt
	};
	char err[256];

	ck_assert_msg(!qcow2_create(path, &co, err, sizeof(err)), "%s: %s", path, err);
}

/* Open @top with @o; 0 or the error, with the first 4 KiB checked against @want. */
static int open_read(const char *top, const struct qcow2_opts *o, const uint8_t *want, char *err,
		     size_t n)
{
	uint8_t buf[4096];
	struct qcow2 *q;
	int r = qcow2_open(&q, top, o, err, n);

	if (r)
		return r;
	ck_assert_int_eq(qcow2_pread(q, buf, sizeof(buf), 0), 0);
	if (want)
		ck_assert(!memcmp(buf, want, sizeof(buf)));
	ck_assert_int_eq(qcow2_close(q), 0);
	return 0;
}

/*
 * backing_dir after symlinks and "..": the file must resolve inside it, for every
 * image of the chain; a header without a format means raw; special files refused.
 */
START_TEST(t_backing_beneath)
{
	char dir[] = "/tmp/qcow2-bn-XXXXXX", d[600], p[700], top[700], base[700], cmd[700];
	struct qcow2_opts o = { .backing = QCOW2_BACKING_DIR, .policy_hint = "HINT" };
	uint8_t raw[4096];
	char err[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(d, sizeof(d), "%s/d", dir);
	ck_assert_int_eq(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/sub", d);
	ck_assert_int_eq(mkdir(p, 0700), 0);
	memset(raw, 0x5c, sizeof(raw));
	snprintf(base, sizeof(base), "%s/base.raw", d);
	write_file(base, raw, sizeof(raw));
	snprintf(p, sizeof(p), "%s/outside.raw", dir);
	write_file(p, raw, sizeof(raw));
	o.backing_dir = d;
	snprintf(top, sizeof(top), "%s/top.qcow2", d);

	/* Relative, absolute and through a symlink that stays inside: fine. */
	make_image(top, 1 << 20, "base.raw", "raw");
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);
	unlink(top);
	make_image(top, 1 << 20, base, "raw");
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);
	unlink(top);
	snprintf(p, sizeof(p), "%s/in.raw", d);
	ck_assert_int_eq(symlink("sub/../base.raw", p), 0);
	make_image(top, 1 << 20, "in.raw", "raw");
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);
	unlink(top);
	/* No format in the header: raw. */
	make_image(top, 1 << 20, "base.raw", NULL);
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);
	/* backing_dir itself may be a symlink. */
	snprintf(p, sizeof(p), "%s/dlink", dir);
	ck_assert_int_eq(symlink(d, p), 0);
	o.backing_dir = p;
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);
	o.backing_dir = d;
	unlink(top);

	/* A symlink out of the directory, "..", an absolute path elsewhere: refused. */
	snprintf(p, sizeof(p), "%s/esc.raw", d);
	ck_assert_int_eq(symlink("/etc/passwd", p), 0);
	make_image(top, 1 << 20, "esc.raw", "raw");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "resolves outside backing_dir"));
	ck_assert_ptr_nonnull(strstr(err, "; HINT"));
	unlink(top);
	snprintf(p, sizeof(p), "%s/sub/up.raw", d);
	ck_assert_int_eq(symlink("../../outside.raw", p), 0);
	make_image(top, 1 << 20, "sub/up.raw", "raw");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	unlink(top);
	make_image(top, 1 << 20, "sub/../../outside.raw", "raw");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "outside backing_dir"));
	unlink(top);
	make_image(top, 1 << 20, "/etc/passwd", NULL);
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	unlink(top);
	/* A FIFO is not a disk, and must not block the open. */
	snprintf(p, sizeof(p), "%s/fifo", d);
	ck_assert_int_eq(mkfifo(p, 0600), 0);
	make_image(top, 1 << 20, "fifo", "raw");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	unlink(top);

	/* The whole chain: a qcow2 inside naming a file outside. */
	snprintf(p, sizeof(p), "%s/mid.qcow2", d);
	make_image(p, 1 << 20, "../outside.raw", "raw");
	make_image(top, 1 << 20, "mid.qcow2", "qcow2");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "outside backing_dir"));
	/* ... and allowed once the directory holds the whole chain. */
	o.backing_dir = dir;
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Frozen snapshot images: opened by exact name whatever the policy; nothing else is. */
START_TEST(t_backing_trusted)
{
	char dir[] = "/tmp/qcow2-tr-XXXXXX", fz[600], top[600], base[600], link[600], cmd[700];
	const char *trusted[] = { fz, NULL }, *tlink[] = { link, NULL };
	struct qcow2_opts o = { .trusted = trusted };
	uint8_t raw[4096];
	char err[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	memset(raw, 0x3e, sizeof(raw));
	snprintf(base, sizeof(base), "%s/base.raw", dir);
	write_file(base, raw, sizeof(raw));
	snprintf(fz, sizeof(fz), "%s/disk.qcow2.snap-1", dir);
	snprintf(top, sizeof(top), "%s/overlay.qcow2", dir);
	snprintf(link, sizeof(link), "%s/link.qcow2", dir);
	make_image(fz, 1 << 20, NULL, NULL);
	make_image(top, 1 << 20, fz, "qcow2");
	ck_assert_msg(!open_read(top, &o, NULL, err, sizeof(err)), "%s", err);
	/* Without the list, the policy (deny) decides. */
	o.trusted = NULL;
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	unlink(top);
	/* Only with format qcow2 in the header. */
	o.trusted = trusted;
	make_image(top, 1 << 20, fz, "raw");
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	unlink(top);
	/* Never through a symlink, even one the list names. */
	ck_assert_int_eq(symlink(fz, link), 0);
	make_image(top, 1 << 20, link, "qcow2");
	o.trusted = tlink;
	ck_assert_int_lt(open_read(top, &o, NULL, err, sizeof(err)), 0);
	unlink(top);
	/* Below the frozen image the user's backing files obey the policy. */
	unlink(fz);
	make_image(fz, 1 << 20, "base.raw", "raw");
	make_image(top, 1 << 20, fz, "qcow2");
	o.trusted = trusted;
	ck_assert_int_eq(open_read(top, &o, NULL, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "not allowed"));
	o.backing = QCOW2_BACKING_DIR;
	o.backing_dir = dir;
	ck_assert_msg(!open_read(top, &o, raw, err, sizeof(err)), "%s", err);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* A lazy_refcounts image left dirty with wrong refcounts is repaired on open. */
START_TEST(t_lazy_dirty_repair)
{
	struct qcow2_create_opts co = { .size = 8 << 20,
					.cluster_bits = 16,
					.lazy_refcounts = true };
	struct fio *f = crashsim_new(NULL, 0, QT_MAX_FILE);
	uint8_t *buf = malloc(65536);
	struct qcow2 *q;
	char err[128];

	ck_assert_int_eq(qcow2_create_fio(f, &co, err, sizeof(err)), 0);
	q = open_keep(f, false);
	memset(buf, 9, 65536);
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(qcow2_pwrite(q, buf, 65536, (uint64_t)i << 16), 0);
	ck_assert_int_eq(qcow2_close(q), 0);
	/* Zero the refcount block beyond the metadata, set the dirty bit. */
	uint8_t z[64] = { 0 }, hdr[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };

	ck_assert_int_eq(fio_pwrite(f, z, 64, 2 * 65536 + 8), 0);
	ck_assert_int_eq(fio_pwrite(f, hdr, 8, 72), 0);
	struct qcow2_opts ro = { .readonly = true, .no_repair = true, .file = keep(f) };
	struct qcow2_check_result cr;

	ck_assert_int_eq(qcow2_open(&q, NULL, &ro, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_NONE, &cr, NULL, NULL), 0);
	ck_assert_uint_gt(cr.corruptions, 0);
	qcow2_close(q);
	q = open_keep(f, false); /* repairs */
	struct qcow2_info in;

	qcow2_get_info(q, &in);
	ck_assert(!in.dirty);
	check_clean(q, false);
	ck_assert_int_eq(qcow2_pread(q, buf, 65536, 7 << 16), 0);
	ck_assert_int_eq(buf[0], 9);
	ck_assert_int_eq(qcow2_close(q), 0);
	fio_close(f);
	free(buf);
}
END_TEST

START_TEST(t_check_repairs_leaks)
{
	for (int v = 2; v <= 3; v++) {
		struct fio *f = qt_new_image(8 << 20, 16, v, 16);
		struct qcow2 *q = open_keep(f, false), *q2;
		struct qcow2_check_result cr;
		static uint8_t buf[65536];

		ck_assert_int_eq(qcow2_pwrite(q, buf, sizeof(buf), 0), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
		/* Simulate the crash: the bytes as they are now, without a close. */
		struct fio *copy = qt_clone(f);

		q2 = open_keep(copy, true);
		ck_assert_int_eq(qcow2_check(q2, QCOW2_REPAIR_NONE, &cr, NULL, NULL), 0);
		ck_assert_uint_gt(cr.leaks, 0); /* the reservation pool */
		ck_assert_uint_eq(cr.corruptions, 0);
		qcow2_close(q2);
		q2 = open_keep(copy, false);
		if (v == 3) {
			/* The header hint makes the read-write open reclaim them. */
			check_clean(q2, false);
		} else {
			ck_assert_int_eq(qcow2_check(q2, QCOW2_REPAIR_LEAKS, &cr, NULL, NULL), 0);
			ck_assert_uint_gt(cr.leaks_fixed, 0);
			ck_assert_uint_eq(cr.leaks, cr.leaks_fixed);
			check_clean(q2, false);
		}
		qcow2_close(q2);
		fio_close(copy);
		qcow2_close(q);
		fio_close(f);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qcow2");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_roundtrip_formats);
	tcase_add_test(tc, t_reopen_and_check);
	tcase_add_test(tc, t_persist_close_reopen);
	tcase_add_test(tc, t_sync_accounting);
	tcase_add_test(tc, t_discard_and_zeroes);
	tcase_add_test(tc, t_refcount_growth);
	tcase_add_test(tc, t_malicious_headers);
	tcase_add_test(tc, t_backing_policy);
	tcase_add_test(tc, t_backing_beneath);
	tcase_add_test(tc, t_backing_trusted);
	tcase_add_test(tc, t_lazy_dirty_repair);
	tcase_add_test(tc, t_check_repairs_leaks);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
