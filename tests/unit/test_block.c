// SPDX-License-Identifier: GPL-2.0-or-later
/* Block backends (raw, null, qcow2) driven through a real io_uring event loop. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/aio.h"
#include "block/backend.h"
#include "qcow2/qcow2.h"
#include "unit.h"

#define MIB (1ULL << 20)

/* A request and what became of it. */
struct treq {
	struct blk_req req;
	struct iovec iov[4];
	int res;
	int ndone;
	unsigned int *counter;
};

static void treq_done(struct blk_req *req, int res)
{
	struct treq *t = req->opaque;

	t->res = res;
	t->ndone++;
	if (t->counter)
		(*t->counter)++;
}

static void treq_init(struct treq *t, enum blk_op op, uint64_t off, uint64_t len,
		      unsigned int *counter)
{
	memset(t, 0, sizeof(*t));
	t->req.op = op;
	t->req.offset = off;
	t->req.len = len;
	t->req.iov = t->iov;
	t->req.done = treq_done;
	t->req.opaque = t;
	t->counter = counter;
	t->res = 1; /* not yet */
}

/* Run the loop until *@counter reaches @target. */
static void run_until(struct aio_ctx *ctx, unsigned int *counter, unsigned int target)
{
	for (int idle = 0; *counter < target;) {
		int n = aio_run_once(ctx, 1000);

		ck_assert_int_ge(n, 0);
		idle = n ? 0 : idle + 1;
		ck_assert_msg(idle < 10, "no completion for 10 s (%u of %u)", *counter, target);
	}
}

/* Submit one request and wait for it; returns its result. */
static int do_req(struct blk_backend *be, struct aio_ctx *ctx, struct treq *t)
{
	unsigned int count = 0;
	int r;

	t->counter = &count;
	r = blk_submit(be, ctx, &t->req);
	if (r)
		return r;
	run_until(ctx, &count, 1);
	ck_assert_int_eq(t->ndone, 1);
	return t->res;
}

static int do_rw(struct blk_backend *be, struct aio_ctx *ctx, enum blk_op op, void *buf,
		 uint64_t len, uint64_t off)
{
	struct treq t;

	treq_init(&t, op, off, len, NULL);
	t.iov[0] = (struct iovec){ buf, len };
	t.req.iovcnt = 1;
	return do_req(be, ctx, &t);
}

static int do_range(struct blk_backend *be, struct aio_ctx *ctx, enum blk_op op, uint64_t off,
		    uint64_t len, bool unmap)
{
	struct treq t;

	treq_init(&t, op, off, len, NULL);
	t.req.unmap = unmap;
	return do_req(be, ctx, &t);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 9));
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* A temporary file of @size bytes in @dir; its path goes to @path. */
static int make_file(char *path, size_t pathlen, const char *dir, uint64_t size)
{
	int fd;

	snprintf(path, pathlen, "%s/minivmm-test-block-XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, size), 0);
	return fd;
}

static const char *tmp_dir(void)
{
	const char *d = getenv("TMPDIR");

	return d && *d ? d : "/tmp";
}

/* A directory on a real filesystem (O_DIRECT): the build tree, else the cwd. */
static const char *disk_dir(void)
{
	const char *d = getenv("MINIVMM_BUILD");

	return d && *d ? d : ".";
}

static struct blk_backend *open_raw(const char *path, bool ro, enum blk_cache cache)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW, .readonly = ro, .cache = cache };
	struct blk_backend *be = NULL;
	char err[256];
	int r = blk_open(&be, path, &o, err, sizeof(err));

	ck_assert_msg(!r, "blk_open %s: %s", path, err);
	ck_assert_ptr_nonnull(be);
	return be;
}

/* Multi-iovec write, read back through other iovecs and the file, then flush. */
START_TEST(t_raw_rw)
{
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	uint8_t *src = malloc(64 * 1024), *dst = malloc(64 * 1024), *chk = malloc(64 * 1024);
	struct treq t;
	int fd = make_file(path, sizeof(path), tmp_dir(), 4 * MIB);

	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	ck_assert_uint_eq(be->size, 4 * MIB);
	ck_assert_uint_eq(be->block_size, 512);
	ck_assert(be->can_discard && be->can_write_zeroes && !be->readonly);
	if (be->ops->attach)
		ck_assert_int_eq(be->ops->attach(be, &ctx), 0);

	/* Odd iovec sizes, a 512-multiple total. */
	fill(src, 64 * 1024, 1);
	treq_init(&t, BLK_WRITE, MIB + 4096, 1000 + 3096 + 61440, NULL);
	t.iov[0] = (struct iovec){ src, 1000 };
	t.iov[1] = (struct iovec){ src + 1000, 0 };
	t.iov[2] = (struct iovec){ src + 1000, 3096 };
	t.iov[3] = (struct iovec){ src + 4096, 61440 };
	t.req.iovcnt = 4;
	ck_assert_int_eq(do_req(be, &ctx, &t), 0);

	memset(dst, 0xee, 64 * 1024);
	treq_init(&t, BLK_READ, MIB + 4096, 64 * 1024, NULL);
	t.iov[0] = (struct iovec){ dst, 512 };
	t.iov[1] = (struct iovec){ dst + 512, 64 * 1024 - 512 };
	t.req.iovcnt = 2;
	ck_assert_int_eq(do_req(be, &ctx, &t), 0);
	ck_assert(!memcmp(src, dst, 64 * 1024));
	ck_assert_int_eq(pread(fd, chk, 64 * 1024, MIB + 4096), 64 * 1024);
	ck_assert(!memcmp(src, chk, 64 * 1024));

	/* Single buffer: READ/WRITE rather than the vectored ops. */
	fill(src, 8192, 2);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_WRITE, src, 8192, 0), 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, 8192, 0), 0);
	ck_assert(!memcmp(src, dst, 8192));
	/* The last sector, and a zero-length request. */
	ck_assert_int_eq(do_rw(be, &ctx, BLK_WRITE, src, 512, 4 * MIB - 512), 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, 0, 4 * MIB), 0);

	ck_assert_uint_eq(be->flushes, 0);
	ck_assert_int_eq(do_range(be, &ctx, BLK_FLUSH, 0, 0, false), 0);
	ck_assert_int_eq(do_range(be, &ctx, BLK_FLUSH, 0, 0, false), 0);
	ck_assert_uint_eq(be->flushes, 2);
	ck_assert_uint_eq(ctx.inflight, 0);

	if (be->ops->detach)
		be->ops->detach(be, &ctx);
	blk_close(be);
	aio_exit(&ctx);
	close(fd);
	unlink(path);
	free(src);
	free(dst);
	free(chk);
}
END_TEST

/* DISCARD punches a hole; WRITE_ZEROES (with or without unmap) reads zeros. */
START_TEST(t_raw_discard_zeroes)
{
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	uint8_t *buf = malloc(MIB), *dst = malloc(MIB);
	struct stat st0, st1;
	int fd = make_file(path, sizeof(path), tmp_dir(), 8 * MIB);
	off_t hole;

	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	fill(buf, MIB, 3);
	for (int i = 1; i < 7; i++)
		ck_assert_int_eq(do_rw(be, &ctx, BLK_WRITE, buf, MIB, i * MIB), 0);
	ck_assert_int_eq(do_range(be, &ctx, BLK_FLUSH, 0, 0, false), 0);
	ck_assert_int_eq(fstat(fd, &st0), 0);

	ck_assert_int_eq(do_range(be, &ctx, BLK_DISCARD, 2 * MIB, MIB, false), 0);
	ck_assert_int_eq(fstat(fd, &st1), 0);
	hole = lseek(fd, 2 * MIB, SEEK_HOLE);
	if (st1.st_blocks == st0.st_blocks) {
		fprintf(stderr, "test_block: %s has no hole punching, hole checks skipped\n",
			tmp_dir());
	} else {
		ck_assert_int_lt(st1.st_blocks, st0.st_blocks);
		ck_assert_int_eq(hole, 2 * MIB);
		ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, MIB, 2 * MIB), 0);
		ck_assert(all_zero(dst, MIB));
	}
	ck_assert_uint_eq(st1.st_size, 8 * MIB); /* KEEP_SIZE */

	/* ZERO_RANGE, sub-MiB and unaligned to pages. */
	ck_assert_int_eq(do_range(be, &ctx, BLK_WRITE_ZEROES, 3 * MIB + 512, 65536 + 1024, false),
			 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, MIB, 3 * MIB), 0);
	ck_assert(!memcmp(dst, buf, 512));
	ck_assert(all_zero(dst + 512, 65536 + 1024));
	ck_assert(!memcmp(dst + 512 + 66560, buf + 512 + 66560, MIB - 512 - 66560));

	/* With unmap: a punched hole that reads zeros. */
	ck_assert_int_eq(do_range(be, &ctx, BLK_WRITE_ZEROES, 4 * MIB, MIB, true), 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, MIB, 4 * MIB), 0);
	ck_assert(all_zero(dst, MIB));
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, MIB, 5 * MIB), 0);
	ck_assert(!memcmp(dst, buf, MIB));

	blk_close(be); /* without detach: the ring still holds the file, which is fine */
	aio_exit(&ctx);
	close(fd);
	unlink(path);
	free(buf);
	free(dst);
}
END_TEST

/* cache = none: O_DIRECT, with aligned buffers and with ones that need a bounce. */
START_TEST(t_raw_direct)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW, .cache = BLK_CACHE_NONE };
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX], err[256];
	uint8_t *a, *b, *u = malloc(16384 + 1);
	struct treq t;
	int fd = make_file(path, sizeof(path), disk_dir(), 2 * MIB), r;

	ck_assert_int_eq(posix_memalign((void **)&a, 4096, 65536), 0);
	ck_assert_int_eq(posix_memalign((void **)&b, 4096, 65536), 0);
	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	r = blk_open(&be, path, &o, err, sizeof(err));
	if (r == -EINVAL) {
		/* The message must say what to do. */
		ck_assert_ptr_nonnull(strstr(err, "cache = writeback"));
		fprintf(stderr, "test_block: SKIP O_DIRECT checks: %s\n", err);
		goto out;
	}
	ck_assert_msg(!r, "%s", err);
	fill(a, 65536, 4);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_WRITE, a, 65536, 4096), 0);
	treq_init(&t, BLK_READ, 4096, 65536, NULL);
	t.iov[0] = (struct iovec){ b, 4096 };
	t.iov[1] = (struct iovec){ b + 4096, 65536 - 4096 };
	t.req.iovcnt = 2;
	ck_assert_int_eq(do_req(be, &ctx, &t), 0);
	ck_assert(!memcmp(a, b, 65536));

	/* A buffer O_DIRECT refuses (odd address): through the bounce buffer. */
	fill(u + 1, 16384, 5);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_WRITE, u + 1, 16384, MIB), 0);
	memset(b, 0, 16384);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, b, 16384, MIB), 0);
	ck_assert(!memcmp(u + 1, b, 16384));
	memset(u, 0, 16385);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, u + 1, 16384, MIB), 0);
	ck_assert(!memcmp(u + 1, b, 16384));

	ck_assert_int_eq(do_range(be, &ctx, BLK_WRITE_ZEROES, MIB, 4096, false), 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, b, 4096, MIB), 0);
	ck_assert(all_zero(b, 4096));
	ck_assert_int_eq(do_range(be, &ctx, BLK_FLUSH, 0, 0, false), 0);
	ck_assert_uint_eq(be->flushes, 1);
	blk_close(be);
out:
	aio_exit(&ctx);
	close(fd);
	unlink(path);
	free(a);
	free(b);
	free(u);
}
END_TEST

/* The file shrank under the backend: short reads resume, then zeros past EOF. */
START_TEST(t_raw_short_read)
{
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	uint8_t *src = malloc(16384), *dst = malloc(16384);
	struct treq t;
	int fd = make_file(path, sizeof(path), tmp_dir(), MIB);

	fill(src, 16384, 8);
	ck_assert_int_eq(pwrite(fd, src, 16384, MIB - 16384), 16384);
	ck_assert_int_eq(aio_init(&ctx, 8), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	/* EOF 1000 bytes into the second iovec. */
	ck_assert_int_eq(ftruncate(fd, MIB - 16384 + 4096 + 1000), 0);
	memset(dst, 0xee, 16384);
	treq_init(&t, BLK_READ, MIB - 16384, 16384, NULL);
	t.iov[0] = (struct iovec){ dst, 4096 };
	t.iov[1] = (struct iovec){ dst + 4096, 8192 };
	t.iov[2] = (struct iovec){ dst + 12288, 4096 };
	t.req.iovcnt = 3;
	ck_assert_int_eq(do_req(be, &ctx, &t), 0);
	ck_assert(!memcmp(dst, src, 5096));
	ck_assert(all_zero(dst + 5096, 16384 - 5096));
	blk_close(be);
	aio_exit(&ctx);
	close(fd);
	unlink(path);
	free(src);
	free(dst);
}
END_TEST

/* tmpfs has hole punching but no FALLOC_FL_ZERO_RANGE: zeros are written instead. */
START_TEST(t_raw_zero_fallback)
{
	const char *dir = "/dev/shm";
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	uint8_t *buf = malloc(4 * MIB), *dst = malloc(4 * MIB);
	struct stat st;
	int fd;

	if (stat(dir, &st) || !S_ISDIR(st.st_mode) || access(dir, W_OK)) {
		fprintf(stderr, "test_block: SKIP zero-write fallback: no writable %s\n", dir);
		goto out;
	}
	fd = make_file(path, sizeof(path), dir, 8 * MIB);
	fill(buf, 4 * MIB, 9);
	ck_assert_int_eq(pwrite(fd, buf, 4 * MIB, 2 * MIB), 4 * MIB);
	ck_assert_int_eq(aio_init(&ctx, 8), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	/* > 1 MiB, so several 16 x 64 KiB writes, and a sub-64 KiB tail. */
	ck_assert_int_eq(do_range(be, &ctx, BLK_WRITE_ZEROES, 2 * MIB + 512, 3 * MIB + 1024, false),
			 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, 4 * MIB, 2 * MIB), 0);
	ck_assert(!memcmp(dst, buf, 512));
	ck_assert(all_zero(dst + 512, 3 * MIB + 1024));
	ck_assert(!memcmp(dst + 3 * MIB + 1536, buf + 3 * MIB + 1536, MIB - 1536));
	/* Again, now that the backend knows: straight to the writes. */
	ck_assert_int_eq(do_range(be, &ctx, BLK_WRITE_ZEROES, 6 * MIB, 4096, false), 0);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, dst, 4096, 6 * MIB), 0);
	ck_assert(all_zero(dst, 4096));
	blk_close(be);
	aio_exit(&ctx);
	close(fd);
	unlink(path);
out:
	free(buf);
	free(dst);
}
END_TEST

/* Refused up front: done() is not called. */
static void expect_refused(struct blk_backend *be, struct aio_ctx *ctx, enum blk_op op,
			   uint64_t off, uint64_t len, int err)
{
	static uint8_t buf[4096];
	struct treq t;

	treq_init(&t, op, off, len, NULL);
	t.iov[0] = (struct iovec){ buf, len > sizeof(buf) ? sizeof(buf) : len };
	t.req.iovcnt = op == BLK_READ || op == BLK_WRITE ? 1 : 0;
	ck_assert_int_eq(blk_submit(be, ctx, &t.req), err);
	ck_assert_int_eq(t.ndone, 0);
}

static void check_ranges(struct blk_backend *be, struct aio_ctx *ctx)
{
	uint64_t size = be->size;
	static const enum blk_op ops[] = { BLK_READ, BLK_WRITE, BLK_DISCARD, BLK_WRITE_ZEROES };

	for (unsigned int i = 0; i < 4; i++) {
		expect_refused(be, ctx, ops[i], size, 512, -EINVAL);
		expect_refused(be, ctx, ops[i], size - 512, 1024, -EINVAL);
		expect_refused(be, ctx, ops[i], UINT64_MAX - 511, 1024, -EINVAL);
		expect_refused(be, ctx, ops[i], 512, UINT64_MAX - 511, -EINVAL);
		expect_refused(be, ctx, ops[i], 100, 512, -EINVAL);
	}
	/* The iovecs do not add up to len. */
	expect_refused(be, ctx, BLK_READ, 0, 8192, -EINVAL);
	expect_refused(be, ctx, (enum blk_op)42, 0, 512, -EINVAL);
}

START_TEST(t_raw_readonly_and_ranges)
{
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	uint8_t buf[4096];
	int fd = make_file(path, sizeof(path), tmp_dir(), MIB);

	ck_assert_int_eq(pwrite(fd, "hello", 5, 8192), 5);
	ck_assert_int_eq(aio_init(&ctx, 8), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	check_ranges(be, &ctx);
	blk_close(be);

	ck_assert_int_eq(chmod(path, 0400), 0);
	be = open_raw(path, true, BLK_CACHE_WRITEBACK);
	ck_assert(be->readonly && !be->can_discard);
	expect_refused(be, &ctx, BLK_WRITE, 0, 512, -EROFS);
	expect_refused(be, &ctx, BLK_DISCARD, 0, 512, -EROFS);
	expect_refused(be, &ctx, BLK_WRITE_ZEROES, 0, 512, -EROFS);
	ck_assert_int_eq(do_rw(be, &ctx, BLK_READ, buf, 4096, 8192), 0);
	ck_assert(!memcmp(buf, "hello", 5));
	ck_assert_int_eq(do_range(be, &ctx, BLK_FLUSH, 0, 0, false), 0);
	blk_close(be);
	aio_exit(&ctx);
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(t_open_errors)
{
	struct blk_open_opts o = { .format = BLK_FMT_RAW };
	struct blk_backend *be = (void *)1;
	char path[PATH_MAX], err[256];
	int fd;

	ck_assert_int_eq(blk_open(&be, "/nonexistent/minivmm.img", &o, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(be);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/minivmm.img"));
	ck_assert_int_eq(blk_open(&be, tmp_dir(), &o, err, sizeof(err)), -EISDIR);

	fd = make_file(path, sizeof(path), tmp_dir(), 1000);
	ck_assert_int_eq(blk_open(&be, path, &o, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "multiple of 512"));
	o.format = BLK_FMT_QCOW2;
	ck_assert_int_lt(blk_open(&be, path, &o, err, sizeof(err)), 0);
	ck_assert(err[0]);
	o.format = (enum blk_format)99;
	ck_assert_int_eq(blk_open(&be, path, &o, err, sizeof(err)), -EINVAL);
	o.format = BLK_FMT_NULL;
	o.null_size = 1000;
	ck_assert_int_eq(blk_open(&be, NULL, &o, err, sizeof(err)), -EINVAL);
	close(fd);
	unlink(path);
}
END_TEST

/* 512 requests on a 64-entry ring: the SQ is flushed as it fills, the pool grows. */
START_TEST(t_raw_many_inflight)
{
	enum { N = 512, SZ = 4096 };
	struct aio_ctx ctx;
	struct blk_backend *be;
	char path[PATH_MAX];
	struct treq *t = calloc(N, sizeof(*t));
	uint8_t *data = malloc(N * SZ), *back = malloc(N * SZ);
	unsigned int count = 0;
	int fd = make_file(path, sizeof(path), tmp_dir(), N * SZ);

	ck_assert_int_eq(aio_init(&ctx, 64), 0);
	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	ck_assert_int_eq(be->ops->attach(be, &ctx), 0);
	fill(data, N * SZ, 6);
	for (int i = 0; i < N; i++) {
		/* Reverse order, so that neighbours in the ring are not neighbours on disk. */
		uint64_t blk = N - 1 - i;

		treq_init(&t[i], BLK_WRITE, blk * SZ, SZ, &count);
		t[i].iov[0] = (struct iovec){ data + blk * SZ, SZ / 2 };
		t[i].iov[1] = (struct iovec){ data + blk * SZ + SZ / 2, SZ / 2 };
		t[i].req.iovcnt = 2;
		ck_assert_int_eq(blk_submit(be, &ctx, &t[i].req), 0);
	}
	ck_assert_uint_eq(ctx.inflight, N);
	run_until(&ctx, &count, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(t[i].res, 0);

	count = 0;
	for (int i = 0; i < N; i++) {
		treq_init(&t[i], BLK_READ, (uint64_t)i * SZ, SZ, &count);
		t[i].iov[0] = (struct iovec){ back + i * SZ, SZ };
		t[i].req.iovcnt = 1;
		ck_assert_int_eq(blk_submit(be, &ctx, &t[i].req), 0);
	}
	run_until(&ctx, &count, N);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(t[i].res, 0);
	ck_assert(!memcmp(data, back, N * SZ));
	ck_assert_uint_eq(ctx.inflight, 0);

	be->ops->detach(be, &ctx);
	blk_close(be);
	aio_exit(&ctx);
	close(fd);
	unlink(path);
	free(t);
	free(data);
	free(back);
}
END_TEST

/* Two I/O threads, each with its own ring, share one backend. */
struct worker {
	struct blk_backend *be;
	int id;
	int fails;
};

static void *worker_fn(void *arg)
{
	struct worker *w = arg;
	struct aio_ctx ctx;
	uint8_t buf[4096], back[4096];

	if (aio_init(&ctx, 16)) {
		w->fails++;
		return NULL;
	}
	w->be->ops->attach(w->be, &ctx);
	for (int i = 0; i < 50; i++) {
		uint64_t off = ((uint64_t)w->id * 64 + i) * sizeof(buf);

		fill(buf, sizeof(buf), w->id * 100 + i);
		if (do_rw(w->be, &ctx, BLK_WRITE, buf, sizeof(buf), off) ||
		    do_range(w->be, &ctx, BLK_FLUSH, 0, 0, false) ||
		    do_rw(w->be, &ctx, BLK_READ, back, sizeof(back), off) ||
		    memcmp(buf, back, sizeof(buf)))
			w->fails++;
	}
	w->be->ops->detach(w->be, &ctx);
	aio_exit(&ctx);
	return NULL;
}

START_TEST(t_raw_threads)
{
	struct worker w[2];
	pthread_t th[2];
	char path[PATH_MAX];
	struct blk_backend *be;
	int fd = make_file(path, sizeof(path), tmp_dir(), MIB);

	be = open_raw(path, false, BLK_CACHE_WRITEBACK);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ .be = be, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, worker_fn, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].fails, 0);
	}
	ck_assert_uint_eq(be->flushes, 100);
	blk_close(be);
	close(fd);
	unlink(path);
}
END_TEST

struct counted {
	struct aio_handler h;
	unsigned int calls;
	uint64_t total;
};

static void counted_fn(struct aio_ctx *ctx, struct aio_handler *h)
{
	struct counted *c = (struct counted *)h;
	uint64_t v;

	(void)ctx;
	c->calls++;
	if (read(h->fd, &v, sizeof(v)) == sizeof(v))
		c->total += v;
}

/*
 * Every write of the eventfd runs the handler: the poll stays (or is re-)armed.
 * _i == 1 forces the single-shot polls used on kernels without multishot.
 */
START_TEST(t_watch_eventfd)
{
	struct aio_ctx ctx;
	struct counted c = { .h = { .fn = counted_fn } };
	uint64_t one = 1;

	c.h.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(c.h.fd, 0);
	ck_assert_int_eq(aio_init(&ctx, 8), 0);
	ctx.no_multishot = _i == 1;
	ck_assert_int_eq(aio_watch(&ctx, &c.h), 0);
	ck_assert(c.h.armed);
	/* Nothing written yet: a timeout, no call. */
	ck_assert_int_eq(aio_run_once(&ctx, 50), 0);
	ck_assert_uint_eq(c.calls, 0);
	for (unsigned int i = 1; i <= 20; i++) {
		unsigned int calls = c.calls;

		ck_assert_int_eq(write(c.h.fd, &one, sizeof(one)), sizeof(one));
		while (c.total < i)
			ck_assert_int_gt(aio_run_once(&ctx, 2000), 0);
		ck_assert_uint_gt(c.calls, calls);
		ck_assert(c.h.armed);
	}
	ck_assert_uint_eq(c.total, 20);

	ck_assert_int_eq(aio_unwatch(&ctx, &c.h), 0);
	for (int i = 0; i < 20 && c.h.armed; i++)
		aio_run_once(&ctx, 100);
	ck_assert(!c.h.armed);
	ck_assert_int_eq(write(c.h.fd, &one, sizeof(one)), sizeof(one));
	ck_assert_int_eq(aio_run_once(&ctx, 50), 0);
	ck_assert_uint_eq(c.total, 20);
	aio_exit(&ctx);
	close(c.h.fd);
}
END_TEST

/* Fixed-file slots: taken in order, refused when full, reusable once freed. */
START_TEST(t_register_files)
{
	struct aio_ctx ctx;
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC), idx[9];
	unsigned int n = sizeof(ctx.files) / sizeof(ctx.files[0]);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(aio_init(&ctx, 8), 0);
	for (unsigned int i = 0; i < n; i++) {
		idx[i] = aio_register_file(&ctx, fd);
		ck_assert_int_eq(idx[i], i);
	}
	ck_assert_int_eq(aio_register_file(&ctx, fd), -ENOSPC);
	aio_unregister_file(&ctx, 3);
	ck_assert_int_eq(ctx.files[3], -1);
	ck_assert_int_eq(aio_register_file(&ctx, fd), 3);
	aio_exit(&ctx);
	close(fd);
}
END_TEST

struct inline_req {
	struct treq t;
	bool in_submit;
	bool done_in_submit;
};

static void inline_done(struct blk_req *req, int res)
{
	struct inline_req *ir = req->opaque;

	ir->t.res = res;
	ir->t.ndone++;
	ir->done_in_submit = ir->in_submit;
}

/* Submit, asserting that done() ran inside submit(). */
static int submit_inline(struct blk_backend *be, struct aio_ctx *ctx, struct inline_req *ir)
{
	int r;

	ir->t.req.done = inline_done;
	ir->t.req.opaque = ir;
	ir->in_submit = true;
	r = blk_submit(be, ctx, &ir->t.req);
	ir->in_submit = false;
	if (!r) {
		ck_assert_int_eq(ir->t.ndone, 1);
		ck_assert(ir->done_in_submit);
		r = ir->t.res;
	}
	return r;
}

START_TEST(t_null)
{
	struct blk_open_opts o = { .format = BLK_FMT_NULL, .null_size = 1ULL << 40 };
	struct blk_backend *be;
	struct inline_req ir;
	uint8_t buf[8192];
	char err[128];

	ck_assert_int_eq(blk_open(&be, NULL, &o, err, sizeof(err)), 0);
	ck_assert_uint_eq(be->size, 1ULL << 40);
	ck_assert_ptr_eq(be->ops, &blk_null_ops);

	memset(buf, 0xaa, sizeof(buf));
	treq_init(&ir.t, BLK_READ, (1ULL << 40) - 8192, 8192, NULL);
	ir.t.iov[0] = (struct iovec){ buf, 4096 };
	ir.t.iov[1] = (struct iovec){ buf + 4096, 4096 };
	ir.t.req.iovcnt = 2;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert(all_zero(buf, sizeof(buf)));

	memset(buf, 0xaa, sizeof(buf));
	treq_init(&ir.t, BLK_WRITE, 0, 8192, NULL);
	ir.t.iov[0] = (struct iovec){ buf, 8192 };
	ir.t.req.iovcnt = 1;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	treq_init(&ir.t, BLK_FLUSH, 0, 0, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert_uint_eq(be->flushes, 1);
	treq_init(&ir.t, BLK_DISCARD, 0, 1 << 20, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	check_ranges(be, NULL);

	/* Many small requests: nothing accumulates. */
	for (int i = 0; i < 200000; i++) {
		treq_init(&ir.t, BLK_READ, (uint64_t)i * 512, 512, NULL);
		ir.t.iov[0] = (struct iovec){ buf, 512 };
		ir.t.req.iovcnt = 1;
		ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	}
	blk_close(be);

	o.readonly = true;
	ck_assert_int_eq(blk_open(&be, NULL, &o, err, sizeof(err)), 0);
	expect_refused(be, NULL, BLK_WRITE, 0, 512, -EROFS);
	blk_close(be);
}
END_TEST

static void qcow2_image(char *path, size_t len, uint64_t size, const char *backing)
{
	struct qcow2_create_opts co = { .size = size, .backing_file = backing };
	char err[256];
	int fd;

	snprintf(path, len, "%s/minivmm-test-block-XXXXXX", tmp_dir());
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	if (backing)
		co.backing_fmt = "qcow2";
	ck_assert_msg(!qcow2_create(path, &co, err, sizeof(err)), "qcow2_create: %s", err);
}

START_TEST(t_qcow2)
{
	struct blk_open_opts o = { .format = BLK_FMT_QCOW2 };
	struct qcow2_check_result cr;
	struct blk_backend *be;
	struct inline_req ir;
	struct qcow2 *q;
	char path[PATH_MAX], over[PATH_MAX], err[256];
	uint8_t *src = malloc(256 * 1024), *dst = malloc(256 * 1024);

	qcow2_image(path, sizeof(path), 16 * MIB, NULL);
	ck_assert_msg(!blk_open(&be, path, &o, err, sizeof(err)), "%s", err);
	ck_assert_uint_eq(be->size, 16 * MIB);
	ck_assert_ptr_eq(be->ops, &blk_qcow2_ops);
	ck_assert(be->can_discard && be->can_write_zeroes);

	fill(src, 256 * 1024, 7);
	treq_init(&ir.t, BLK_WRITE, MIB - 512, 256 * 1024, NULL);
	ir.t.iov[0] = (struct iovec){ src, 512 };
	ir.t.iov[1] = (struct iovec){ src + 512, 256 * 1024 - 512 };
	ir.t.req.iovcnt = 2;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	treq_init(&ir.t, BLK_READ, MIB - 512, 256 * 1024, NULL);
	ir.t.iov[0] = (struct iovec){ dst, 256 * 1024 };
	ir.t.req.iovcnt = 1;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert(!memcmp(src, dst, 256 * 1024));
	treq_init(&ir.t, BLK_FLUSH, 0, 0, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert_uint_eq(be->flushes, 1);

	/* Discard the first whole 64 KiB cluster of the data; zero the next one. */
	treq_init(&ir.t, BLK_DISCARD, MIB, 65536, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	treq_init(&ir.t, BLK_WRITE_ZEROES, MIB + 65536, 65536, NULL);
	ir.t.req.unmap = true;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	treq_init(&ir.t, BLK_WRITE_ZEROES, MIB + 131072 + 512, 1024, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	treq_init(&ir.t, BLK_FLUSH, 0, 0, NULL);
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert_uint_eq(be->flushes, 2);
	check_ranges(be, NULL);
	blk_close(be);

	/* The engine sees the same, and a clean image. */
	ck_assert_int_eq(qcow2_open(&q, path, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_pread(q, dst, 256 * 1024, MIB - 512), 0);
	/* dst[0] is MIB - 512: data, 128 KiB of zeros, data, 1 KiB of zeros, data. */
	ck_assert(!memcmp(dst, src, 512));
	ck_assert(all_zero(dst + 512, 131072));
	ck_assert(!memcmp(dst + 131584, src + 131584, 512));
	ck_assert(all_zero(dst + 132096, 1024));
	ck_assert(!memcmp(dst + 133120, src + 133120, 256 * 1024 - 133120));
	ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_NONE, &cr, NULL, NULL), 0);
	ck_assert_uint_eq(cr.corruptions, 0);
	ck_assert_int_eq(qcow2_close(q), 0);

	/* Read-only. */
	o.readonly = true;
	ck_assert_msg(!blk_open(&be, path, &o, err, sizeof(err)), "%s", err);
	expect_refused(be, NULL, BLK_WRITE, 0, 512, -EROFS);
	treq_init(&ir.t, BLK_READ, MIB - 512, 512, NULL);
	ir.t.iov[0] = (struct iovec){ dst, 512 };
	ir.t.req.iovcnt = 1;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert(!memcmp(dst, src, 512));
	blk_close(be);

	/* Backing files: refused unless allowed, the message naming the keys to set. */
	qcow2_image(over, sizeof(over), 16 * MIB, path);
	o.readonly = false;
	ck_assert_int_eq(blk_open(&be, over, &o, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "backing = on and backing_dir"));
	ck_assert_ptr_null(blk_trusted_backing(NULL));
	/* Allowed means inside backing_dir: there is no "anywhere" (it used to be the default). */
	o.allow_backing = true;
	ck_assert_int_eq(blk_open(&be, over, &o, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "backing_dir"));
	o.backing_dir = tmp_dir();
	ck_assert_msg(!blk_open(&be, over, &o, err, sizeof(err)), "%s", err);
	treq_init(&ir.t, BLK_READ, MIB - 512, 512, NULL);
	ir.t.iov[0] = (struct iovec){ dst, 512 };
	ir.t.req.iovcnt = 1;
	ck_assert_int_eq(submit_inline(be, NULL, &ir), 0);
	ck_assert(!memcmp(dst, src, 512));
	ck_assert_ptr_null(blk_trusted_backing(be));
	blk_close(be);
	o.backing_dir = "/proc";
	ck_assert_int_eq(blk_open(&be, over, &o, err, sizeof(err)), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "outside backing_dir"));
	/* A frozen image minivmm made opens by name, whatever the policy; the list is kept. */
	{
		const char *trusted[] = { path, NULL };

		o.allow_backing = false;
		o.backing_dir = NULL;
		o.trusted_backing = trusted;
		ck_assert_msg(!blk_open(&be, over, &o, err, sizeof(err)), "%s", err);
		ck_assert_ptr_nonnull(blk_trusted_backing(be));
		ck_assert_str_eq(blk_trusted_backing(be)[0], path);
		ck_assert_ptr_ne(blk_trusted_backing(be)[0], path); /* a copy */
		ck_assert_ptr_null(blk_trusted_backing(be)[1]);
		blk_close(be);
	}

	unlink(over);
	unlink(path);
	free(src);
	free(dst);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_raw_rw);
	tcase_add_test(tc, t_raw_discard_zeroes);
	tcase_add_test(tc, t_raw_direct);
	tcase_add_test(tc, t_raw_short_read);
	tcase_add_test(tc, t_raw_zero_fallback);
	tcase_add_test(tc, t_raw_readonly_and_ranges);
	tcase_add_test(tc, t_open_errors);
	tcase_add_test(tc, t_raw_many_inflight);
	tcase_add_test(tc, t_raw_threads);
	tcase_add_loop_test(tc, t_watch_eventfd, 0, 2);
	tcase_add_test(tc, t_register_files);
	tcase_add_test(tc, t_null);
	tcase_add_test(tc, t_qcow2);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
