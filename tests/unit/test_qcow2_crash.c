// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Crash consistency: run random guest I/O on an in-memory image whose file
 * layer records every write since the last durable point, and after every
 * operation simulate power losses (any subset of unsynced sectors the barriers
 * allow). Each crashed image must check with no corruption (leaks allowed),
 * every sector acknowledged by a completed flush must read back, and every
 * other sector must hold its acknowledged value or one written since.
 *
 * QCOW2_CRASH_DUMP=DIR writes every QCOW2_CRASH_DUMP_EVERY-th crashed image
 * there, so tests/scripts/qcow2_crash.sh can run qemu-img check on them.
 */
#include <check.h>
#include <malloc.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../qcow2/qtest.h"

#define SECTORS		 4096 /* 2 MiB guest */
#define MAX_PEND	 12
#define BACK_TAG	 0xbacc
#define CRASHES_PER_OP	 2
#define CRASHES_PER_SYNC 10

struct model {
	uint32_t acked[SECTORS], cur[SECTORS];
	uint32_t pend[SECTORS][MAX_PEND];
	uint8_t npend[SECTORS];
};

struct cfg {
	unsigned int cb, rbits;
	int version;
	bool ordering_barrier, backing;
	int ops;
};

static uint64_t total_crashes, dumped;
static const char *dump_dir;
static unsigned long dump_every = 50;
static char backing_path[256];

static void set_sector(struct model *m, uint64_t s, uint32_t tag)
{
	if (m->npend[s] < MAX_PEND)
		m->pend[s][m->npend[s]++] = tag;
	m->cur[s] = tag;
}

static bool pend_full(struct model *m)
{
	for (int s = 0; s < SECTORS; s++)
		if (m->npend[s] >= MAX_PEND - 2)
			return true;
	return false;
}

static void acked_now(struct model *m)
{
	memcpy(m->acked, m->cur, sizeof(m->acked));
	memset(m->npend, 0, sizeof(m->npend));
}

static struct qcow2 *open_image(struct fio *f, bool ro, const struct cfg *c, char *err, size_t n)
{
	struct qcow2_opts o = { .readonly = ro, .file = f, .backing = QCOW2_BACKING_ANY };
	struct qcow2 *q;
	int r;

	(void)c;
	r = qcow2_open(&q, "/nonexistent/crash.qcow2", &o, err, n);
	return r ? NULL : q;
}

static void verify_crash(struct fio *live, const struct model *m, const struct cfg *c,
			 uint64_t seed)
{
	struct qcow2_check_result cr;
	uint8_t *img, *buf = malloc(SECTORS * 512), exp[512];
	uint64_t size;
	char err[256] = "";

	ck_assert_int_eq(crashsim_crash(live, seed, &img, &size), 0);
	total_crashes++;

	if (dump_dir && total_crashes % dump_every == 0) {
		char path[512];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/crash-%06llu.qcow2", dump_dir,
			 (unsigned long long)dumped++);
		fp = fopen(path, "wb");
		ck_assert_ptr_nonnull(fp);
		ck_assert_uint_eq(fwrite(img, 1, size, fp), size);
		fclose(fp);
	}
	struct fio *f = crashsim_adopt(img, size, QT_MAX_FILE);
	bool rw = seed % 5 == 0;
	struct qcow2 *q = open_image(f, !rw, c, err, sizeof(err));

	ck_assert_msg(q != NULL, "crashed image does not open: %s", err);
	ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_NONE, &cr, NULL, NULL), 0);
	ck_assert_msg(cr.corruptions == 0, "crash seed %llu: %llu corruptions",
		      (unsigned long long)seed, (unsigned long long)cr.corruptions);
	ck_assert_int_eq(qcow2_pread(q, buf, SECTORS * 512, 0), 0);
	for (int s = 0; s < SECTORS; s++) {
		bool ok = false;

		qt_fill(exp, s, m->acked[s]);
		ok = !memcmp(buf + s * 512, exp, 512);
		for (int i = 0; !ok && i < m->npend[s]; i++) {
			qt_fill(exp, s, m->pend[s][i]);
			ok = !memcmp(buf + s * 512, exp, 512);
		}
		/* Not ck_assert: each call leaves a checkpoint message behind. */
		if (!ok)
			ck_abort_msg("crash seed %llu: sector %d lost (acked tag %u, %d pending)",
				     (unsigned long long)seed, s, m->acked[s], m->npend[s]);
	}
	if (rw) {
		/* v3: the read-write open already reclaimed what the crash leaked. */
		if (c->version >= 3)
			ck_assert_uint_eq(cr.leaks, 0);
		/* A crashed image stays usable: repair the leaks, write, check clean. */
		ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_LEAKS, &cr, NULL, NULL), 0);
		memset(buf, 0x3c, 65536);
		ck_assert_int_eq(qcow2_pwrite(q, buf, 65536, 0), 0);
		ck_assert_int_eq(qcow2_flush(q), 0);
		ck_assert_int_eq(qcow2_check(q, QCOW2_REPAIR_NONE, &cr, NULL, NULL), 0);
		ck_assert_uint_eq(cr.corruptions, 0);
	}
	qcow2_close(q);
	free(buf);
}

struct hook_ctx {
	struct fio *f;
	struct model *m;
	const struct cfg *c;
	uint64_t *seed;
};

static void on_sync(void *p)
{
	struct hook_ctx *h = p;

	for (int i = 0; i < CRASHES_PER_SYNC; i++)
		verify_crash(h->f, h->m, h->c, qt_rand(h->seed));
}

static void run(const struct cfg *c, uint64_t seed)
{
	struct qcow2_create_opts co = { .size = SECTORS * 512,
					.cluster_bits = c->cb,
					.version = c->version,
					.refcount_bits = c->rbits };
	struct model *m = calloc(1, sizeof(*m));
	struct fio *f = crashsim_new(NULL, 0, QT_MAX_FILE);
	uint8_t *buf = malloc(128 * 512);
	uint64_t cs = 1ULL << c->cb;
	struct qcow2 *q;
	char err[256];

	if (c->backing) {
		co.backing_file = backing_path;
		co.backing_fmt = "raw";
		for (int s = 0; s < SECTORS; s++)
			m->acked[s] = m->cur[s] = BACK_TAG;
	}
	ck_assert_int_eq(qcow2_create_fio(f, &co, err, sizeof(err)), 0);
	crashsim_ordering_barrier(f, c->ordering_barrier);
	q = open_image(f, false, c, err, sizeof(err));
	ck_assert_msg(q != NULL, "%s", err);
	struct hook_ctx hc = { f, m, c, &seed };

	crashsim_on_sync(f, on_sync, &hc);
	for (int op = 0; op < c->ops; op++) {
		uint64_t k = qt_rand(&seed) % 100, maxs = cs / 512 * 2 + 4;
		uint64_t n = qt_rand(&seed) % (maxs < 128 ? maxs : 128) + 1;
		uint64_t s0 = qt_rand(&seed) % (SECTORS - n + 1);
		uint32_t tag = op + 2;

		if (pend_full(m))
			k = 99;
		if (k < 60) {
			for (uint64_t i = 0; i < n; i++) {
				qt_fill(buf + i * 512, s0 + i, tag);
				set_sector(m, s0 + i, tag);
			}
			ck_assert_int_eq(qcow2_pwrite(q, buf, n * 512, s0 * 512), 0);
		} else if (k < 70) {
			uint64_t a = (s0 * 512 + cs - 1) / cs * cs, b = (s0 + n) * 512 / cs * cs;
			uint32_t z = c->backing && c->version == 2 ? BACK_TAG : 0;

			for (uint64_t x = a; x < b; x += 512)
				set_sector(m, x / 512, z);
			ck_assert_int_eq(qcow2_discard(q, s0 * 512, n * 512), 0);
		} else if (k < 80) {
			for (uint64_t i = 0; i < n; i++)
				set_sector(m, s0 + i, 0);
			ck_assert_int_eq(qcow2_write_zeroes(q, s0 * 512, n * 512), 0);
		} else {
			ck_assert_int_eq(qcow2_flush(q), 0);
			acked_now(m);
		}
		for (int i = 0; i < CRASHES_PER_OP; i++)
			verify_crash(f, m, c, qt_rand(&seed));
	}
	ck_assert_int_eq(qcow2_flush(q), 0);
	acked_now(m);
	verify_crash(f, m, c, qt_rand(&seed));
	crashsim_on_sync(f, NULL, NULL);
	ck_assert_int_eq(qcow2_close(q), 0);
	free(buf);
	free(m);
}

static const struct cfg cfgs[] = {
	{ 9, 16, 3, false, false, 160 },  { 12, 16, 2, false, false, 160 },
	{ 16, 16, 3, false, false, 120 }, { 12, 64, 3, false, false, 120 },
	{ 9, 1, 3, false, false, 120 },	  { 12, 8, 3, true, false, 160 },
	{ 9, 16, 3, true, false, 120 },	  { 12, 16, 3, false, true, 140 },
	{ 12, 16, 2, false, true, 140 },  { 16, 16, 3, true, true, 100 },
};

START_TEST(t_crash)
{
	run(&cfgs[_i], 0x1234567ULL + _i * 7919);
}
END_TEST

static void make_backing(void)
{
	uint8_t sec[512];
	FILE *fp;

	/* Dumped images keep needing it: then it lives (and stays) next to them. */
	if (dump_dir)
		snprintf(backing_path, sizeof(backing_path), "%s/back.raw", dump_dir);
	else
		snprintf(backing_path, sizeof(backing_path), "/tmp/qcow2-crash-back-%d.raw",
			 getpid());
	fp = fopen(backing_path, "wb");
	for (int s = 0; s < SECTORS; s++) {
		qt_fill(sec, s, BACK_TAG);
		fwrite(sec, 1, 512, fp);
	}
	fclose(fp);
}

int main(void)
{
	Suite *s = suite_create("qcow2_crash");
	TCase *tc = tcase_create("crash");
	SRunner *sr;
	int failed;

	/* Keep freed image buffers in the heap: each crash would otherwise fault in fresh pages. */
	mallopt(M_MMAP_THRESHOLD, 256 << 20);
	mallopt(M_TRIM_THRESHOLD, 512 << 20);
	dump_dir = getenv("QCOW2_CRASH_DUMP");
	if (getenv("QCOW2_CRASH_DUMP_EVERY"))
		dump_every = strtoul(getenv("QCOW2_CRASH_DUMP_EVERY"), NULL, 10);
	make_backing();
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, t_crash, 0, sizeof(cfgs) / sizeof(cfgs[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	/* In-process so the crash count adds up; each config is one loop iteration. */
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (!dump_dir)
		unlink(backing_path);
	printf("qcow2 crash points verified: %llu\n", (unsigned long long)total_crashes);
	return failed ? 1 : 0;
}
