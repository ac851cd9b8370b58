// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The virtio-fs DAX window on real files in a temporary directory: mapping,
 * replacing, splitting, unmapping, bounds, the per-inode descriptor budget,
 * and what happens past end of file: the window never holds a page that
 * cannot be faulted in (we probe with write(2), which reports EFAULT where a
 * load would be SIGBUS or KVM_RUN -EFAULT): ranges are clamped at setup,
 * follow their files when they grow or the host truncates them (inotify),
 * and dax_window_repair() re-clamps on demand.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/dax.h"
#include "unit.h"

#define MIB   (1ULL << 20)
#define PAGE  4096ULL
#define WSIZE (8 * MIB)

static char dir[64];
static struct dax_window *w;
static uint8_t *base;
static int probe[2]; /* a pipe: write() from a page tells whether it can be faulted in */

static void setup(void)
{
	strcpy(dir, "/tmp/minivmm-dax.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(dax_window_new(WSIZE, 0, &w), 0);
	base = dax_window_hva(w);
	ck_assert_int_eq(pipe(probe), 0);
	fcntl(probe[1], F_SETFL, O_NONBLOCK);
	fcntl(probe[0], F_SETFL, O_NONBLOCK);
}

static void teardown(void)
{
	char cmd[128];

	dax_window_free(w);
	close(probe[0]);
	close(probe[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Can the page at @p be faulted in? (false: it is past EOF of a mapped file) */
static bool touchable(const void *p)
{
	char c;
	ssize_t n = write(probe[1], p, 1);

	if (n == 1) {
		ck_assert_int_eq(read(probe[0], &c, 1), 1);
		return true;
	}
	ck_assert_int_eq(errno, EFAULT);
	return false;
}

/* A file of @size bytes where byte i is (i / PAGE + seed) & 0xff; returns an open fd. */
static int mkfile(const char *name, uint64_t size, int seed, int flags)
{
	char path[128];
	uint8_t buf[PAGE];
	uint64_t off;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	for (off = 0; off < size; off += PAGE) {
		size_t n = size - off < PAGE ? size - off : PAGE;

		memset(buf, (int)((off / PAGE + seed) & 0xff), sizeof(buf));
		ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	}
	if (flags != O_RDWR) {
		close(fd);
		fd = open(path, flags | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
	}
	return fd;
}

static bool all(const uint8_t *p, uint64_t len, uint8_t v)
{
	for (uint64_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static struct dax_window_stats stats(void)
{
	struct dax_window_stats st;

	dax_window_get_stats(w, &st);
	return st;
}

START_TEST(test_new_bounds)
{
	struct dax_window *x;

	ck_assert_int_eq(dax_window_new(0, 0, &x), -EINVAL);
	ck_assert_int_eq(dax_window_new(MIB, 0, &x), -EINVAL);
	ck_assert_int_eq(dax_window_new(3 * MIB, 0, &x), -EINVAL);
	ck_assert_uint_eq((uintptr_t)base % (2 * MIB), 0);
	ck_assert_uint_eq(dax_window_size(w), WSIZE);
	/* Empty: zero pages, readable and writable (no access would kill the vCPU). */
	ck_assert(all(base, PAGE, 0));
	ck_assert(all(base + WSIZE - PAGE, PAGE, 0));
	base[123] = 7;
	ck_assert_uint_eq(base[123], 7);
}
END_TEST

START_TEST(test_map_shares_page_cache)
{
	int fd = mkfile("a", 2 * MIB, 1, O_RDWR);
	uint8_t b;

	ck_assert_int_eq(dax_window_map(w, fd, 0, 2 * MIB, 2 * MIB, true), 0);
	ck_assert_uint_eq(base[2 * MIB], 1);
	ck_assert_uint_eq(base[2 * MIB + PAGE], 2);
	ck_assert_uint_eq(base[4 * MIB - 1], (511 + 1) & 0xff);
	/* The descriptor was dup'd: the caller may close its own. */
	close(fd);
	base[2 * MIB + 10] = 0x5a;
	fd = open("/dev/null", O_RDONLY); /* reuse the number: the window must not care */
	close(fd);
	{
		char path[128];

		snprintf(path, sizeof(path), "%s/a", dir);
		fd = open(path, O_RDONLY);
		ck_assert_int_eq(pread(fd, &b, 1, 10), 1);
		ck_assert_uint_eq(b, 0x5a); /* the guest's store is the host file's byte */
		/* And the host's write is what the guest sees. */
		close(fd);
		fd = open(path, O_WRONLY);
		b = 0xa5;
		ck_assert_int_eq(pwrite(fd, &b, 1, PAGE + 3), 1);
		close(fd);
	}
	ck_assert_uint_eq(base[2 * MIB + PAGE + 3], 0xa5);
	ck_assert_uint_eq(stats().mappings, 1);
	ck_assert_uint_eq(stats().files, 1);
}
END_TEST

START_TEST(test_readonly)
{
	int ro = mkfile("ro", 2 * MIB, 3, O_RDONLY);

	/* A writable mapping needs a descriptor open for writing. */
	ck_assert_int_eq(dax_window_map(w, ro, 0, 0, 2 * MIB, true), -EACCES);
	ck_assert_int_eq(dax_window_map(w, ro, 0, 0, 2 * MIB, false), 0);
	ck_assert_uint_eq(base[PAGE], 4);
	/* Not a regular file. */
	ck_assert_int_eq(dax_window_map(w, probe[0], 0, 2 * MIB, 2 * MIB, false), -EINVAL);
	close(ro);
	ck_assert_uint_eq(stats().mappings, 1);
}
END_TEST

START_TEST(test_bounds)
{
	int fd = mkfile("b", 2 * MIB, 0, O_RDWR);

	ck_assert_int_eq(dax_window_map(w, fd, 0, WSIZE, 2 * MIB, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, 0, WSIZE - 2 * MIB, 4 * MIB, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, 0, UINT64_MAX - PAGE + 1, 2 * PAGE, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, 0, 100, 2 * MIB, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, 100, 0, 2 * MIB, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, 0, 0, 0, true), -EINVAL);
	ck_assert_int_eq(dax_window_map(w, fd, UINT64_MAX - PAGE + 1, 0, 2 * MIB, true), -EINVAL);
	ck_assert_int_eq(dax_window_unmap(w, WSIZE, PAGE), -EINVAL);
	ck_assert_int_eq(dax_window_unmap(w, PAGE, UINT64_MAX - PAGE + 1), -EINVAL);
	ck_assert_uint_eq(stats().mappings, 0);
	ck_assert_uint_eq(stats().files, 0);
	close(fd);
}
END_TEST

START_TEST(test_replace_and_split)
{
	int a = mkfile("a", 2 * MIB, 10, O_RDWR), b = mkfile("b", 2 * MIB, 100, O_RDWR);

	ck_assert_int_eq(dax_window_map(w, a, 0, 0, 2 * MIB, false), 0);
	/* Same moffset again: replaced (here by another file, read-write). */
	ck_assert_int_eq(dax_window_map(w, b, 0, 0, 2 * MIB, true), 0);
	ck_assert_uint_eq(base[0], 100);
	ck_assert_uint_eq(stats().mappings, 1);
	ck_assert_uint_eq(stats().files, 1); /* a's descriptor is closed again */
	/* A page of a in the middle of b's range: b is split in two around it. */
	ck_assert_int_eq(dax_window_map(w, a, 4 * PAGE, MIB, PAGE, true), 0);
	ck_assert_uint_eq(stats().mappings, 3);
	ck_assert_uint_eq(stats().files, 2);
	ck_assert_uint_eq(base[MIB - 1], (MIB / PAGE - 1 + 100) & 0xff);
	ck_assert_uint_eq(base[MIB], 14);
	ck_assert_uint_eq(base[MIB + PAGE], (MIB / PAGE + 1 + 100) & 0xff);
	/* Overlap the tail of one piece and the head of the next. */
	ck_assert_int_eq(dax_window_map(w, a, 0, MIB - PAGE, 3 * PAGE, true), 0);
	ck_assert_uint_eq(stats().mappings, 3);
	ck_assert_uint_eq(base[MIB - PAGE], 10);
	ck_assert_uint_eq(base[MIB + PAGE], 12);
	ck_assert_uint_eq(base[MIB + 2 * PAGE], (MIB / PAGE + 2 + 100) & 0xff);
	/* Unmap across everything but the edges. */
	ck_assert_int_eq(dax_window_unmap(w, PAGE, 2 * MIB - 2 * PAGE), 0);
	ck_assert_uint_eq(stats().mappings, 2);
	ck_assert(all(base + PAGE, 2 * MIB - 2 * PAGE, 0));
	ck_assert_uint_eq(base[0], 100);
	ck_assert_uint_eq(base[2 * MIB - PAGE], (511 + 100) & 0xff);
	dax_window_clear(w);
	ck_assert_uint_eq(stats().mappings, 0);
	ck_assert_uint_eq(stats().files, 0);
	ck_assert(all(base, 2 * MIB, 0));
	close(a);
	close(b);
}
END_TEST

START_TEST(test_file_budget)
{
	struct dax_window *x;
	int a = mkfile("a", PAGE, 1, O_RDWR), b = mkfile("b", PAGE, 2, O_RDWR),
	    c = mkfile("c", PAGE, 3, O_RDWR);

	ck_assert_int_eq(dax_window_new(4 * MIB, 2, &x), 0);
	ck_assert_int_eq(dax_window_map(x, a, 0, 0, PAGE, true), 0);
	ck_assert_int_eq(dax_window_map(x, a, 0, PAGE, PAGE, false), 0); /* same inode */
	ck_assert_int_eq(dax_window_map(x, b, 0, 2 * PAGE, PAGE, true), 0);
	ck_assert_int_eq(dax_window_map(x, c, 0, 3 * PAGE, PAGE, true), -EMFILE);
	/* A failed map leaves zeros, not the old contents. */
	ck_assert(all((uint8_t *)dax_window_hva(x) + 3 * PAGE, PAGE, 0));
	ck_assert_int_eq(dax_window_unmap(x, 0, 2 * PAGE), 0);
	ck_assert_int_eq(dax_window_map(x, c, 0, 3 * PAGE, PAGE, true), 0);
	ck_assert_uint_eq(((uint8_t *)dax_window_hva(x))[3 * PAGE], 3);
	dax_window_free(x);
	close(a);
	close(b);
	close(c);
}
END_TEST

/* Host VMAs inside the window (from /proc/self/maps). */
static unsigned int window_vmas(void)
{
	uintptr_t lo, hi, b = (uintptr_t)base;
	unsigned int n = 0;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo >= b && hi <= b + WSIZE)
			n++;
	fclose(f);
	return n;
}

/*
 * A guest mapping single pages all over the window: each is a list entry and
 * up to three host VMAs. The budget (one mapping per 2 MiB of window, at least
 * 256) is enforced: ENOMEM, and nothing changes, for a map or a splitting unmap.
 */
START_TEST(test_map_budget)
{
	int fd = mkfile("m", WSIZE, 0, O_RDWR);
	unsigned int i, ok = 0, refused = 0;
	struct dax_window_stats st;

	ck_assert_uint_eq(stats().max_maps, 256);
	for (i = 0; i < WSIZE / PAGE; i += 2) {
		int ret = dax_window_map(w, fd, i * PAGE, i * PAGE, PAGE, i % 4 == 0);

		if (ret == 0) {
			ok++;
		} else {
			ck_assert_int_eq(ret, -ENOMEM);
			refused++;
			ck_assert_uint_eq(base[i * PAGE], 0); /* still zero pages */
		}
	}
	st = stats();
	ck_assert_uint_eq(ok, 256);
	ck_assert_uint_eq(refused, WSIZE / PAGE / 2 - 256);
	ck_assert_uint_eq(st.mappings, 256);
	ck_assert_uint_eq(st.over_budget, refused);
	ck_assert_uint_eq(st.files, 1);
	ck_assert_uint_le(window_vmas(), 256 * DAX_VMAS_PER_MAP + 1);
	ck_assert_uint_eq(base[2 * PAGE], 2);
	/* Replacing a mapping at the budget is fine: the count stays. */
	ck_assert_int_eq(dax_window_map(w, fd, 7 * PAGE, 2 * PAGE, PAGE, false), 0);
	ck_assert_uint_eq(base[2 * PAGE], 7);
	/* One range over three pages where one mapping was: still 256. */
	ck_assert_int_eq(dax_window_map(w, fd, 100 * PAGE, PAGE, 3 * PAGE, true), 0);
	ck_assert_uint_eq(stats().mappings, 256);
	/* Unmapping its middle page would split it: 257, refused, nothing changed. */
	ck_assert_int_eq(dax_window_unmap(w, 2 * PAGE, PAGE), -ENOMEM);
	ck_assert_uint_eq(base[2 * PAGE], 101);
	ck_assert_uint_eq(stats().mappings, 256);
	/* Unmapping whole mappings always works, and makes room again. */
	ck_assert_int_eq(dax_window_unmap(w, PAGE, 3 * PAGE), 0);
	ck_assert_uint_eq(stats().mappings, 255);
	ck_assert(all(base + PAGE, 3 * PAGE, 0));
	ck_assert_int_eq(dax_window_map(w, fd, 3 * PAGE, 3 * PAGE, PAGE, false), 0);
	ck_assert_uint_eq(base[3 * PAGE], 3);
	/* A lower budget (vm.max_map_count): no new mappings until under it. */
	dax_window_limit_maps(w, 8);
	st = stats();
	ck_assert_uint_eq(st.max_maps, 8);
	ck_assert_uint_le(st.max_files, 8);
	ck_assert_int_eq(dax_window_map(w, fd, 0, 5 * PAGE, PAGE, false), -ENOMEM);
	ck_assert_int_eq(dax_window_unmap(w, 0, WSIZE / 2), 0);
	ck_assert_uint_le(stats().mappings, 128);
	dax_window_clear(w);
	ck_assert_uint_eq(stats().mappings, 0);
	ck_assert_int_eq(dax_window_map(w, fd, 0, 0, 2 * MIB, true), 0);
	close(fd);
}
END_TEST

/* Each mapped file holds one inotify watch, no more files than mappings, and both go
 * when its mappings do. */
START_TEST(test_watch_budget)
{
	struct dax_window *x;
	struct dax_window_stats st;
	int fds[4];
	char name[8];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "w%d", i);
		fds[i] = mkfile(name, PAGE, i, O_RDWR);
	}
	ck_assert_int_eq(dax_window_new(4 * MIB, 0, &x), 0);
	dax_window_limit_maps(x, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(dax_window_map(x, fds[i], 0, i * 2 * PAGE, PAGE, true), 0);
	ck_assert_int_eq(dax_window_map(x, fds[3], 0, 6 * 2 * PAGE, PAGE, true), -ENOMEM);
	dax_window_get_stats(x, &st);
	ck_assert_uint_eq(st.files, 3);
	if (st.watches == 0) {
		dax_window_free(x);
		UNIT_SKIP("no inotify here");
	}
	ck_assert_uint_eq(st.watches, 3);
	ck_assert_int_eq(dax_window_unmap(x, 0, 4 * PAGE), 0);
	dax_window_get_stats(x, &st);
	ck_assert_uint_eq(st.files, 1);
	ck_assert_uint_eq(st.watches, 1);
	ck_assert_int_eq(dax_window_map(x, fds[3], 0, 6 * 2 * PAGE, PAGE, true), 0);
	dax_window_get_stats(x, &st);
	ck_assert_uint_eq(st.watches, 2);
	dax_window_free(x);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}
END_TEST

/* A small file in a 2 MiB range, as the Linux client maps it. */
START_TEST(test_past_eof)
{
	int fd = mkfile("small", PAGE + 10, 7, O_RDWR);

	ck_assert_int_eq(dax_window_map(w, fd, 0, 0, 2 * MIB, true), 0);
	/* Clamped at setup: past EOF are zero pages, never a page that cannot be faulted. */
	ck_assert_uint_eq(stats().clamped, 1);
	ck_assert(touchable(base + 2 * PAGE));
	ck_assert(touchable(base + 2 * MIB - 1));
	ck_assert(all(base + 2 * PAGE, 2 * MIB - 2 * PAGE, 0));
	ck_assert_uint_eq(base[PAGE + 9], 8);
	ck_assert_uint_eq(base[PAGE + 10], 0); /* the EOF page is the file's */
	ck_assert_int_eq(dax_window_repair(w), 0);
	ck_assert_int_eq(dax_window_refresh(w), 0);
	/* The file grows (the client appends with WRITE, then reads through this mapping):
	 * by the time refresh returns the new bytes are in the window. */
	ck_assert_int_eq(ftruncate(fd, 5 * PAGE), 0);
	ck_assert_int_eq(pwrite(fd, "grown", 5, 4 * PAGE), 5);
	dax_window_refresh(w);
	ck_assert(!memcmp(base + 4 * PAGE, "grown", 5));
	/* Still clamped at the new EOF. */
	ck_assert(touchable(base + 5 * PAGE));
	ck_assert_uint_eq(base[5 * PAGE], 0);
	ck_assert_uint_eq(stats().clamped, 1);
	ck_assert_int_eq(ftruncate(fd, 2 * MIB), 0);
	dax_window_refresh(w);
	ck_assert_uint_eq(stats().clamped, 0);
	ck_assert(touchable(base + 2 * MIB - 1));
	/* A range that starts past EOF is all zero pages, and follows the file too. */
	ck_assert_int_eq(dax_window_map(w, fd, 4 * MIB, 2 * MIB, 2 * MIB, false), 0);
	ck_assert(all(base + 2 * MIB, 2 * MIB, 0));
	ck_assert_uint_eq(stats().clamped, 1);
	ck_assert_int_eq(pwrite(fd, "far", 3, 4 * MIB + 2 * PAGE), 3);
	dax_window_refresh(w);
	ck_assert(!memcmp(base + 2 * MIB + 2 * PAGE, "far", 3));
	ck_assert(touchable(base + 2 * MIB + 3 * PAGE));
	close(fd);
}
END_TEST

/* Without a watch (or before it fired), repair does the same: the EFAULT path. */
START_TEST(test_repair)
{
	int fd = mkfile("r", 2 * MIB, 9, O_RDWR);
	struct dax_window_stats st;

	ck_assert_int_eq(dax_window_map(w, fd, 0, 0, 2 * MIB, true), 0);
	ck_assert_int_eq(ftruncate(fd, PAGE), 0);
	/* Whoever comes first (the watcher, refresh or repair) clamps; once. */
	ck_assert_int_le(dax_window_repair(w) + dax_window_refresh(w), 1);
	ck_assert(touchable(base + MIB));
	ck_assert_uint_eq(base[MIB], 0);
	ck_assert_uint_eq(base[0], 9);
	ck_assert_int_eq(dax_window_repair(w), 0);
	dax_window_get_stats(w, &st);
	ck_assert_uint_eq(st.repairs, 1);
	close(fd);
}
END_TEST

/* The host truncates a file the guest has mapped: the watcher thread clamps it. */
START_TEST(test_host_truncate)
{
	int fd = mkfile("t", 2 * MIB, 40, O_RDWR), other = mkfile("o", 2 * MIB, 50, O_RDWR);
	char path[128];
	int i;

	ck_assert_int_eq(dax_window_map(w, fd, 0, 0, 2 * MIB, true), 0);
	ck_assert_int_eq(dax_window_map(w, other, 0, 4 * MIB, 2 * MIB, false), 0);
	close(fd);
	close(other);
	ck_assert_uint_eq(base[MIB], (256 + 40) & 0xff);
	snprintf(path, sizeof(path), "%s/t", dir);
	ck_assert_int_eq(truncate(path, 3 * PAGE), 0);
	/* No call of ours: the watcher notices (a vCPU stuck retrying would wait for it). */
	for (i = 0; i < 2000 && !touchable(base + MIB); i++)
		usleep(1000);
	ck_assert(touchable(base + MIB));
	ck_assert_uint_eq(base[MIB], 0);
	ck_assert_uint_eq(base[2 * PAGE], 42);
	ck_assert_uint_eq(base[4 * MIB + MIB], (256 + 50) & 0xff);
	ck_assert_int_eq(dax_window_repair(w), 0);
	/* To zero. */
	ck_assert_int_eq(truncate(path, 0), 0);
	dax_window_refresh(w);
	ck_assert(all(base, 2 * MIB, 0));
	/* Splitting a clamped mapping keeps each piece's file part right. */
	ck_assert_int_eq(truncate(path, 2 * MIB), 0);
	ck_assert_int_eq(dax_window_unmap(w, MIB, PAGE), 0);
	dax_window_refresh(w);
	ck_assert(touchable(base + 2 * MIB - 1));
	ck_assert_uint_eq(base[0], 0); /* truncate() up reads back zeros */
	ck_assert_uint_eq(stats().mappings, 3);
	ck_assert_uint_eq(stats().clamped, 0);
	ck_assert_uint_ge(stats().repairs,
			  3); /* 3 or 4: did the watcher see the growth before the split? */
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dax");
	TCase *tc = tcase_create("window");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_new_bounds);
	tcase_add_test(tc, test_map_shares_page_cache);
	tcase_add_test(tc, test_readonly);
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_replace_and_split);
	tcase_add_test(tc, test_file_budget);
	tcase_add_test(tc, test_map_budget);
	tcase_add_test(tc, test_watch_budget);
	tcase_add_test(tc, test_past_eof);
	tcase_add_test(tc, test_repair);
	tcase_add_test(tc, test_host_truncate);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
