// SPDX-License-Identifier: GPL-2.0-or-later
/* The snapshot file around the memory image: header, configuration, state tree,
 * disk records, and what a truncated, corrupted, foreign or other-version file
 * or a changed disk gives. (The vCPU and device state needs KVM: tests/e2e.) */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "qcow2/qcow2.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"
#include "unit.h"

#define MEM_SIZE (4u << 20)

static char dir[64];
static char snap[128];
static struct guest_mem mem;
static const char cfg_text[] = "[vm]\nmemory = 4M\nvcpus = 1\n";

static void mem_setup(struct guest_mem *m)
{
	memset(m, 0, sizeof(*m));
	m->r[0].size = MEM_SIZE;
	m->r[0].hva = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(m->r[0].hva, MAP_FAILED);
	m->nr = 1;
	m->total = MEM_SIZE;
}

static void mem_free(struct guest_mem *m)
{
	munmap(m->r[0].hva, m->r[0].size);
	memset(m, 0, sizeof(*m));
}

/* A state tree with a disk record for a qcow2 image (or none). */
static void *make_state(const char *image, size_t *len)
{
	void *fdt = malloc(4096);
	int d, n;

	ck_assert_int_eq(fdt_create_empty_tree(fdt, 4096), 0);
	ck_assert_int_eq(st_put_u64(fdt, 0, "version", SNAPSHOT_VERSION), 0);
	d = st_add_node(fdt, 0, "disks");
	ck_assert_int_ge(d, 0);
	if (image) {
		struct stat sb;

		ck_assert_int_eq(stat(image, &sb), 0);
		n = st_add_node(fdt, d, "disk@0");
		ck_assert_int_ge(n, 0);
		ck_assert_int_eq(st_put_u64(fdt, n, "format", DISK_QCOW2), 0);
		ck_assert_int_eq(st_put_u64(fdt, n, "readonly", 0), 0);
		ck_assert_int_eq(st_put_u64(fdt, n, "size", 1 << 20), 0);
		ck_assert_int_eq(st_put_u64(fdt, n, "image-size", (uint64_t)sb.st_size), 0);
		ck_assert_int_eq(st_put_u64(fdt, n, "image-crc", 0), 0);
		ck_assert_int_eq(fdt_setprop_string(fdt, n, "image", image), 0);
	}
	fdt_pack(fdt);
	*len = fdt_totalsize(fdt);
	return fdt;
}

static void write_snap(const char *path, bool compress)
{
	struct snapshot_save_opts o = { .compress = compress, .threads = 2 };
	struct snapshot_result r = { 0 };
	size_t slen;
	void *st = make_state(NULL, &slen);

	ck_assert_int_eq(
	    snapshot_write(path, cfg_text, strlen(cfg_text), st, slen, &mem, 1, &o, &r), 0);
	ck_assert_uint_gt(r.bytes, 4096);
	ck_assert_uint_eq(r.mem_pages, MEM_SIZE / 4096);
	free(st);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/minivmm-snap.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(snap, sizeof(snap), "%s/s.snap", dir);
	mem_setup(&mem);
	/* Some text, some zeros, one odd page. */
	for (unsigned int i = 0; i < MEM_SIZE / 2; i += 64)
		snprintf((char *)mem.r[0].hva + i, 64, "line %u of the test memory\n", i);
	memset((char *)mem.r[0].hva + MEM_SIZE - 4096, 0xa5, 4096);
	log_verbosity = -1;
}

static void teardown(void)
{
	char cmd[128];

	mem_free(&mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static int open_restore(const char *path, struct guest_mem *out)
{
	struct snapshot *s = NULL;
	int ret = snapshot_open(path, &s);

	if (!ret)
		ret = snapshot_restore_memory(s, out, false, false);
	snapshot_close(s);
	return ret;
}

START_TEST(test_roundtrip)
{
	struct guest_mem m2;
	struct snapshot *s;
	const char *c;
	size_t len;

	write_snap(snap, _i == 0);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	c = snapshot_config(s, &len);
	ck_assert_uint_eq(len, strlen(cfg_text));
	ck_assert_str_eq(c, cfg_text);
	mem_setup(&m2);
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, false, false), 0);
	ck_assert_int_eq(memcmp(m2.r[0].hva, mem.r[0].hva, MEM_SIZE), 0);
	snapshot_close(s);
	mem_free(&m2);
	/* No temporary file left behind. */
	ck_assert_int_eq(system("ls /tmp/minivmm-snap.*/*.tmp-* >/dev/null 2>&1"), 512);
}
END_TEST

START_TEST(test_lazy)
{
	struct guest_mem m2;
	struct snapshot *s;

	write_snap(snap, true);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	mem_setup(&m2);
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, true, false), 0);
	/* First touches fault the chunks in. */
	ck_assert_int_eq(memcmp(m2.r[0].hva, mem.r[0].hva, MEM_SIZE), 0);
	ck_assert_int_eq(snapshot_lazy_finish(s), 0);
	snapshot_close(s);
	mem_free(&m2);
}
END_TEST

/* Every truncation gives an error, never a crash or a restore. */
START_TEST(test_truncated)
{
	struct guest_mem m2;
	struct stat sb;
	char cut[160];

	write_snap(snap, true);
	ck_assert_int_eq(stat(snap, &sb), 0);
	snprintf(cut, sizeof(cut), "%s/cut", dir);
	mem_setup(&m2);
	for (off_t n = 0; n < sb.st_size; n += n < 8192 ? 61 : 4093) {
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "head -c %lld %s >%s", (long long)n, snap, cut);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_ne(open_restore(cut, &m2), 0);
	}
	mem_free(&m2);
}
END_TEST

static void flip(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

START_TEST(test_corrupt)
{
	struct snapshot *s = NULL;
	struct guest_mem m2;
	struct stat sb;

	write_snap(snap, true);
	ck_assert_int_eq(stat(snap, &sb), 0);
	/* Header bytes: magic -> foreign; version -> version error; others -> checksum. */
	flip(snap, 0);
	ck_assert_int_eq(snapshot_open(snap, &s), -EINVAL);
	flip(snap, 0);
	flip(snap, 8);
	ck_assert_int_eq(snapshot_open(snap, &s), -EPROTO);
	flip(snap, 8);
	for (off_t o = 12; o < 128; o++) {
		flip(snap, o);
		ck_assert_int_ne(snapshot_open(snap, &s), 0);
		flip(snap, o);
	}
	/* Configuration and state: their checksums. */
	flip(snap, 4096 + 3);
	ck_assert_int_eq(snapshot_open(snap, &s), -EBADMSG);
	flip(snap, 4096 + 3);
	flip(snap, 4096 + strlen(cfg_text) + 20);
	ck_assert_int_eq(snapshot_open(snap, &s), -EBADMSG);
	flip(snap, 4096 + strlen(cfg_text) + 20);
	/* Memory: opens, but the restore finds it. */
	mem_setup(&m2);
	ck_assert_int_eq(open_restore(snap, &m2), 0);
	flip(snap, sb.st_size / 2);
	ck_assert_int_ne(open_restore(snap, &m2), 0);
	mem_free(&m2);
}
END_TEST

START_TEST(test_foreign)
{
	char path[160];
	struct snapshot *s = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	{
		char junk[256];

		memset(junk, '.', sizeof(junk));
		memcpy(junk, "QFI\xfb", 4);
		ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	}
	close(fd);
	ck_assert_int_eq(snapshot_open(path, &s), -EINVAL);
	ck_assert_int_eq(snapshot_open(dir, &s), -EINVAL); /* a directory */
	snprintf(path, sizeof(path), "%s/none", dir);
	ck_assert_int_eq(snapshot_open(path, &s), -ENOENT);
}
END_TEST

/* The memory of another size: refused before anything is written. */
START_TEST(test_layout_mismatch)
{
	struct guest_mem m2;
	struct snapshot *s;

	write_snap(snap, true);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	mem_setup(&m2);
	m2.total = m2.r[0].size = MEM_SIZE / 2;
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, false, false), -EINVAL);
	m2.total = m2.r[0].size = MEM_SIZE;
	snapshot_close(s);
	mem_free(&m2);
}
END_TEST

/* Disk records: a changed frozen image is refused; clones get their own overlay. */
START_TEST(test_disks)
{
	struct qcow2_create_opts co = { .size = 1 << 20 };
	struct snapshot_save_opts o = { .compress = true };
	char img[160], clone[160], err[128], overlay[200];
	struct vm_config cfg;
	struct snapshot *s;
	size_t slen;
	void *st;
	FILE *f;

	snprintf(img, sizeof(img), "%s/base.qcow2", dir);
	ck_assert_int_eq(qcow2_create(img, &co, err, sizeof(err)), 0);
	/* The record's CRC must be the real one: take it from a fresh save. */
	st = make_state(img, &slen);
	ck_assert_int_eq(
	    snapshot_write(snap, cfg_text, strlen(cfg_text), st, slen, &mem, 1, &o, NULL), 0);
	free(st);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	config_init(&cfg);
	cfg.disks[0].path = strdup(img);
	cfg.disks[0].format = DISK_QCOW2;
	/* CRC 0 in the record: "not the one saved". */
	ck_assert_int_eq(snapshot_prepare_disks(s, &cfg, NULL), -ESTALE);
	snapshot_close(s);
	/* A disk the configuration has and the snapshot does not. */
	st = make_state(NULL, &slen);
	ck_assert_int_eq(
	    snapshot_write(snap, cfg_text, strlen(cfg_text), st, slen, &mem, 1, &o, NULL), 0);
	free(st);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	ck_assert_int_eq(snapshot_prepare_disks(s, &cfg, NULL), -ESTALE);
	snapshot_close(s);
	config_free(&cfg);

	/* --clone into a directory that is not one. */
	snprintf(clone, sizeof(clone), "%s/nodir", dir);
	f = fopen(clone, "w");
	fclose(f);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	config_init(&cfg);
	ck_assert_int_eq(snapshot_prepare_disks(s, &cfg, clone), -ENOTDIR);
	snapshot_close(s);
	config_free(&cfg);
	(void)overlay;
}
END_TEST

START_TEST(test_state_helpers)
{
	char buf[512];
	uint64_t v;
	uint8_t b[8];
	int n;

	ck_assert_int_eq(fdt_create_empty_tree(buf, sizeof(buf)), 0);
	n = st_add_node(buf, 0, "x");
	ck_assert_int_ge(n, 0);
	ck_assert_int_eq(st_put_u64(buf, n, "v", 0x1122334455667788ULL), 0);
	ck_assert_int_eq(st_get_u64(buf, n, "v", &v), 0);
	ck_assert_uint_eq(v, 0x1122334455667788ULL);
	ck_assert_int_eq(st_get_blob(buf, n, "v", b, 8), 0);
	ck_assert_int_eq(st_get_blob(buf, n, "v", b, 4), -EINVAL); /* size must match */
	ck_assert_int_eq(st_get_u64(buf, n, "missing", &v), -EINVAL);
	ck_assert_int_eq(st_node(buf, 0, "y"), -ENOENT);
	/* Out of room: -ENOSPC, which the writer answers with a bigger buffer. */
	ck_assert_int_eq(st_put_blob(buf, n, "big", buf, 400), -ENOSPC);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("file");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_roundtrip, 0, 2);
	tcase_add_test(tc, test_lazy);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_foreign);
	tcase_add_test(tc, test_layout_mismatch);
	tcase_add_test(tc, test_disks);
	tcase_add_test(tc, test_state_helpers);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
