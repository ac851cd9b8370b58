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

#include <linux/kvm.h>
#include <zlib.h>

#include "block/backend.h"
#include "config.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "qcow2/qcow2.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"
#include "vcpu/vcpu.h"
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
		ret = snapshot_restore_memory(s, out, SNAPSHOT_MEM_EAGER, false);
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
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, SNAPSHOT_MEM_EAGER, false), 0);
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
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, SNAPSHOT_MEM_LAZY, false), 0);
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
	snprintf(path, sizeof(path), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(snapshot_open(path, &s), -EINVAL); /* refused, not blocking */
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
	ck_assert_int_eq(snapshot_restore_memory(s, &m2, SNAPSHOT_MEM_EAGER, false), -EINVAL);
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
	snprintf(overlay, sizeof(overlay), "%s.snap-1", img);
	ck_assert_int_eq(qcow2_create(overlay, &co, err, sizeof(err)), 0);
	/* The record's CRC must be the real one: take it from a fresh save. */
	st = make_state(overlay, &slen);
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
}
END_TEST

/* --- hostile or raced files ------------------------------------------------------------- */

static void put_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/*
 * The snapshot's temporary file: another user of the directory plants a symlink
 * where it will be ("PATH.tmp-PID" was predictable and opened O_TRUNC, so the
 * snapshot overwrote the link's target and the link became PATH).
 */
START_TEST(test_write_tmp_excl)
{
	struct snapshot_save_opts o = { .compress = true };
	char link[200], victim[160];
	struct stat st;
	size_t slen;
	void *state = make_state(NULL, &slen);
	FILE *f;
	char buf[16] = "";

	snprintf(victim, sizeof(victim), "%s/precious", dir);
	put_file(victim, "precious");
	snprintf(link, sizeof(link), "%s.tmp-%d", snap, (int)getpid());
	ck_assert_int_eq(symlink(victim, link), 0);
	ck_assert_int_eq(
	    snapshot_write(snap, cfg_text, strlen(cfg_text), state, slen, &mem, 1, &o, NULL), 0);
	free(state);
	f = fopen(victim, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	ck_assert_str_eq(buf, "precious");
	ck_assert_int_eq(lstat(snap, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert(exists(link)); /* left alone */
	ck_assert_int_eq(open_restore(snap, &mem), 0);
}
END_TEST

/* A state tree whose disk@0 record names @image (CRC computed unless @crc_ok is false). */
static void *disk_state(const char *image, bool ro, uint64_t fmt, uint64_t size,
			const char *trusted, int tlen, size_t *len)
{
	void *fdt = malloc(8192);
	uint8_t *buf = malloc(1 << 20);
	uint64_t isize = 0;
	uint32_t crc = 0;
	int d, n, fd;

	ck_assert_int_eq(fdt_create_empty_tree(fdt, 8192), 0);
	ck_assert_int_eq(st_put_u64(fdt, 0, "version", SNAPSHOT_VERSION), 0);
	d = st_add_node(fdt, 0, "disks");
	n = st_add_node(fdt, d, "disk@0");
	ck_assert_int_ge(n, 0);
	fd = open(image, O_RDONLY | O_NONBLOCK);
	if (fd >= 0) {
		struct stat sb;
		ssize_t r = pread(fd, buf, 1 << 20, 0);

		ck_assert_int_eq(fstat(fd, &sb), 0);
		isize = (uint64_t)sb.st_size;
		crc = (uint32_t)crc32(0, buf, r > 0 ? (uInt)r : 0);
		close(fd);
	}
	ck_assert_int_eq(st_put_u64(fdt, n, "format", fmt), 0);
	ck_assert_int_eq(st_put_u64(fdt, n, "readonly", ro), 0);
	ck_assert_int_eq(st_put_u64(fdt, n, "size", size), 0);
	ck_assert_int_eq(st_put_u64(fdt, n, "image-size", isize), 0);
	ck_assert_int_eq(st_put_u64(fdt, n, "image-crc", crc), 0);
	ck_assert_int_eq(fdt_setprop_string(fdt, n, "image", image), 0);
	if (trusted)
		ck_assert_int_eq(fdt_setprop(fdt, n, "trusted", trusted, tlen), 0);
	fdt_pack(fdt);
	*len = fdt_totalsize(fdt);
	free(buf);
	return fdt;
}

static struct snapshot *snap_with(void *state)
{
	struct snapshot_save_opts o = { .compress = true };
	size_t slen = fdt_totalsize(state);
	struct snapshot *s;

	ck_assert_int_eq(
	    snapshot_write(snap, cfg_text, strlen(cfg_text), state, slen, &mem, 1, &o, NULL), 0);
	free(state);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	return s;
}

static void disk_cfg(struct vm_config *cfg, const char *path, bool ro)
{
	config_init(cfg);
	cfg->disks[0].path = strdup(path);
	cfg->disks[0].format = DISK_QCOW2;
	cfg->disks[0].readonly = ro;
}

/*
 * Restore overlays: created exclusively under unpredictable names (a symlink
 * planted at the old "SNAP.restore-PID-disk0.qcow2" or at a clone's
 * "disk0.qcow2" made the restore create and write the file it points to), mode
 * 0600, removed at close; their one link, to the frozen image, opens by name.
 */
START_TEST(test_overlays_excl)
{
	struct qcow2_create_opts co = { .size = 1 << 20 };
	char disk[160], frozen[200], link[200], victim[160], clone[160], err[256];
	struct blk_backend *be;
	struct blk_open_opts bo = { .format = BLK_FMT_QCOW2 };
	struct vm_config cfg;
	struct snapshot *s;
	struct stat st;
	size_t slen;

	snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir);
	snprintf(frozen, sizeof(frozen), "%s.snap-0123456789ab", disk);
	ck_assert_int_eq(qcow2_create(disk, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_create(frozen, &co, err, sizeof(err)), 0);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(link, sizeof(link), "%s.restore-%d-disk0.qcow2", snap, (int)getpid());
	ck_assert_int_eq(symlink(victim, link), 0);

	s = snap_with(disk_state(frozen, false, DISK_QCOW2, 1 << 20, NULL, 0, &slen));
	disk_cfg(&cfg, disk, false);
	ck_assert_int_eq(snapshot_prepare_disks(s, &cfg, NULL), 0);
	ck_assert(!exists(victim));
	ck_assert_str_ne(cfg.disks[0].path, link);
	ck_assert_int_eq(lstat(cfg.disks[0].path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(strncmp(cfg.disks[0].path, snap, strlen(snap)), 0);
	ck_assert_ptr_nonnull(strstr(cfg.disks[0].path, ".restore-"));
	/* The overlay opens with backing files off: its link is to a frozen image. */
	ck_assert_ptr_nonnull(cfg.disks[0].backing_trusted);
	ck_assert_str_eq(cfg.disks[0].backing_trusted[0], frozen);
	ck_assert_ptr_null(cfg.disks[0].backing_trusted[1]);
	bo.trusted_backing = (const char *const *)cfg.disks[0].backing_trusted;
	ck_assert_msg(!blk_open(&be, cfg.disks[0].path, &bo, err, sizeof(err)), "%s", err);
	blk_close(be);
	snprintf(clone, sizeof(clone), "%s", cfg.disks[0].path);
	snapshot_close(s);
	ck_assert(!exists(clone)); /* temporary: gone at close */
	config_free(&cfg);

	/* --clone: a symlink where the overlay goes is refused, its target untouched. */
	snprintf(clone, sizeof(clone), "%s/c1", dir);
	ck_assert_int_eq(mkdir(clone, 0700), 0);
	snprintf(link, sizeof(link), "%s/disk0.qcow2", clone);
	ck_assert_int_eq(symlink(victim, link), 0);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	disk_cfg(&cfg, disk, false);
	ck_assert_int_lt(snapshot_prepare_disks(s, &cfg, clone), 0);
	ck_assert(!exists(victim));
	snapshot_close(s);
	config_free(&cfg);
	/* ... and in an empty one it is made, 0600, and stays. */
	unlink(link);
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	disk_cfg(&cfg, disk, false);
	ck_assert_int_eq(snapshot_prepare_disks(s, &cfg, clone), 0);
	ck_assert_str_eq(cfg.disks[0].path, link);
	snapshot_close(s);
	ck_assert_int_eq(lstat(link, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	config_free(&cfg);
	/* A second clone into the same directory: refused. */
	ck_assert_int_eq(snapshot_open(snap, &s), 0);
	disk_cfg(&cfg, disk, false);
	ck_assert_int_lt(snapshot_prepare_disks(s, &cfg, clone), 0);
	snapshot_close(s);
	config_free(&cfg);
}
END_TEST

/* Disk records are input: each field within its bounds, each file what it should be. */
START_TEST(test_disk_record_bounds)
{
	struct qcow2_create_opts co = { .size = 1 << 20 };
	char disk[160], frozen[200], other[200], fifo[200], err[256];
	static const char bad_list[] = "relative/path";
	struct vm_config cfg;
	struct snapshot *s;
	size_t slen;

	snprintf(disk, sizeof(disk), "%s/disk.qcow2", dir);
	snprintf(frozen, sizeof(frozen), "%s.snap-1", disk);
	snprintf(other, sizeof(other), "%s/other.qcow2", dir);
	snprintf(fifo, sizeof(fifo), "%s.snap-fifo", disk);
	ck_assert_int_eq(qcow2_create(disk, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_create(frozen, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(qcow2_create(other, &co, err, sizeof(err)), 0);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);

	struct {
		void *state;
		bool ro;
		int want;
	} cases[] = {
		{ disk_state(frozen, false, 7, 1 << 20, NULL, 0, &slen), false, -EINVAL },
		{ disk_state(frozen, false, DISK_QCOW2, 1000, NULL, 0, &slen), false, -EINVAL },
		{ disk_state(frozen, false, DISK_QCOW2, 0, NULL, 0, &slen), false, -EINVAL },
		{ disk_state("disk.qcow2.snap-1", false, DISK_QCOW2, 1 << 20, NULL, 0, &slen),
		  false, -EINVAL },
		/* Not a frozen image of the configured disk, or not the disk itself. */
		{ disk_state(other, false, DISK_QCOW2, 1 << 20, NULL, 0, &slen), false, -ESTALE },
		{ disk_state(other, true, DISK_QCOW2, 1 << 20, NULL, 0, &slen), true, -ESTALE },
		/* A FIFO named like a frozen image: refused, and the open does not block. */
		{ disk_state(fifo, false, DISK_QCOW2, 1 << 20, NULL, 0, &slen), false, -ESTALE },
		{ disk_state(frozen, false, DISK_QCOW2, 1 << 20, bad_list, sizeof(bad_list), &slen),
		  false, -EINVAL },
		/* The good ones. */
		{ disk_state(frozen, false, DISK_QCOW2, 1 << 20, frozen, (int)strlen(frozen) + 1,
			     &slen),
		  false, 0 },
		{ disk_state(disk, true, DISK_QCOW2, 1 << 20, NULL, 0, &slen), true, 0 },
	};
	for (unsigned int i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = snap_with(cases[i].state);
		disk_cfg(&cfg, disk, cases[i].ro);
		ck_assert_msg(snapshot_prepare_disks(s, &cfg, NULL) == cases[i].want, "case %u", i);
		snapshot_close(s);
		config_free(&cfg);
	}
}
END_TEST

/* mp-state is stored by KVM as it comes: only the states an x86 vCPU can be in load. */
START_TEST(test_vcpu_mp_state)
{
	struct kvm_vcpu_events ev = { 0 };
	struct kvm_sregs sr = { 0 };
	struct vcpu v = { .fd = -1 };
	char fdt[8192];
	int n;

	ck_assert_int_eq(fdt_create_empty_tree(fdt, sizeof(fdt)), 0);
	n = st_add_node(fdt, 0, "vcpu@0");
	ck_assert_int_eq(st_put_blob(fdt, n, "events", &ev, sizeof(ev)), 0);
	ck_assert_int_eq(st_put_blob(fdt, n, "sregs", &sr, sizeof(sr)), 0);
	for (uint64_t m = 5; m <= 8; m++) { /* s390's states */
		ck_assert_int_eq(st_put_u64(fdt, n, "mp-state", m), 0);
		ck_assert_int_eq(vcpu_state_load(&v, fdt, n), -EINVAL);
	}
	ck_assert_int_eq(st_put_u64(fdt, n, "mp-state", 1ULL << 32), 0);
	ck_assert_int_eq(vcpu_state_load(&v, fdt, n), -EINVAL);
	/* A valid one gets as far as KVM (no vCPU here: EBADF). */
	ck_assert_int_eq(st_put_u64(fdt, n, "mp-state", KVM_MP_STATE_HALTED), 0);
	ck_assert_int_eq(vcpu_state_load(&v, fdt, n), -EBADF);
}
END_TEST

/*
 * A snapshot's configuration goes through the same checks as `run`'s: a serial
 * file whose directory is missing, a kernel that is not there, a backing policy
 * without its directory are refused before anything is opened.
 */
START_TEST(test_restore_config_checked)
{
	static const char *const bad[] = {
		"[boot]\nkernel = /nonexistent/bzImage\n",
		"[boot]\nkernel = %s\n[console]\nserial = file:/nonexistent/dir/log\n",
		"[boot]\nkernel = %s\n[disk.0]\npath = %s\nbacking = on\n",
	};
	char kernel[160], text[512];
	struct vm_config cfg;
	FILE *devnull = fopen("/dev/null", "w");

	snprintf(kernel, sizeof(kernel), "%s/bzImage", dir);
	put_file(kernel, "k");
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), bad[i], kernel, kernel);
		ck_assert_msg(
		    config_load_string(&cfg, snap, text, strlen(text), NULL, 0, devnull) == -EINVAL,
		    "%s", text);
	}
	fclose(devnull);
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
	tcase_add_test(tc, test_write_tmp_excl);
	tcase_add_test(tc, test_overlays_excl);
	tcase_add_test(tc, test_disk_record_bounds);
	tcase_add_test(tc, test_vcpu_mp_state);
	tcase_add_test(tc, test_restore_config_checked);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
