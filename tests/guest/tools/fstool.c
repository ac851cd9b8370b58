// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fstool - what busybox cannot do for the virtio-fs guest checks
 * (tests/guest/scenarios/fs.sh): shared mmap reads and writes, xattrs,
 * SEEK_DATA/SEEK_HOLE. Built static into the test initramfs as /bin/fstool
 * (tests/guest/build-guest.sh); the e2e host side runs the same binary
 * (build/guest/fstool) to compute what the guest should print.
 *
 *   fstool hash FILE                  FNV-1a 64 of FILE through read()
 *   fstool mmap-hash FILE             the same through a MAP_SHARED mapping
 *   fstool mmap-write FILE OFF STR    STR at OFF through MAP_SHARED + msync
 *                                     (FILE must already reach OFF + len(STR))
 *   fstool xattr-set FILE NAME VALUE
 *   fstool xattr-get FILE NAME        prints the value
 *   fstool xattr-list FILE            prints the names, sorted, space-separated
 *   fstool xattr-rm FILE NAME
 *   fstool seek FILE                  the data/hole map: "data 0-4096 hole 4096-8192"
 *   fstool setgid-check DIR [UID:GID] as UID:GID (default: as is) and with umask 0,
 *                                     creates DIR/sgf-UID (open O_CREAT mode 02775)
 *                                     and DIR/sgd-UID (mkdir 02775); prints
 *                                     "file GID MODE dir GID MODE" (MODE in octal)
 *
 * Each prints one line on stdout; on failure "error <op>: errno=<n> <text>"
 * and exit status 1 (2 for bad usage).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static int fail(const char *op)
{
	int e = errno;

	printf("error %s: errno=%d %s\n", op, e, strerror(e));
	return 1;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	while (n--) {
		h ^= *p++;
		h *= FNV_PRIME;
	}
	return h;
}

static int cmd_hash(const char *file)
{
	static unsigned char buf[1 << 16];
	uint64_t h = FNV_OFFSET, total = 0;
	ssize_t n;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return fail("open");
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		h = fnv(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	if (n < 0)
		return fail("read");
	close(fd);
	printf("%016" PRIx64 " %" PRIu64 "\n", h, total);
	return 0;
}

static int cmd_mmap_hash(const char *file)
{
	uint64_t h = FNV_OFFSET;
	struct stat st;
	void *p;
	int fd = open(file, O_RDONLY);

	if (fd < 0)
		return fail("open");
	if (fstat(fd, &st) < 0)
		return fail("fstat");
	if (st.st_size > 0) {
		p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			return fail("mmap");
		h = fnv(h, p, (size_t)st.st_size);
		munmap(p, (size_t)st.st_size);
	}
	close(fd);
	printf("%016" PRIx64 " %" PRIu64 "\n", h, (uint64_t)st.st_size);
	return 0;
}

static int cmd_mmap_write(const char *file, const char *offs, const char *str)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = strlen(str), delta;
	struct stat st;
	char *end;
	off_t off, base;
	char *p;
	int fd;

	errno = 0;
	off = (off_t)strtoll(offs, &end, 0);
	if (errno || *end || off < 0 || !len) {
		fprintf(stderr, "fstool: bad offset or empty string\n");
		return 2;
	}
	fd = open(file, O_RDWR);
	if (fd < 0)
		return fail("open");
	if (fstat(fd, &st) < 0)
		return fail("fstat");
	if (off + (off_t)len > st.st_size) {
		errno = EINVAL;
		return fail("size");
	}
	base = off & ~(off_t)(pg - 1);
	delta = (size_t)(off - base);
	p = mmap(NULL, delta + len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, base);
	if (p == MAP_FAILED)
		return fail("mmap");
	memcpy(p + delta, str, len);
	if (msync(p, delta + len, MS_SYNC) < 0)
		return fail("msync");
	munmap(p, delta + len);
	if (close(fd) < 0)
		return fail("close");
	printf("wrote %zu at %lld\n", len, (long long)off);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_xattr(const char *op, char **argv, int argc)
{
	static char buf[65536];
	char *names[1024];
	ssize_t n;
	size_t i, k = 0;

	if (!strcmp(op, "xattr-set") && argc == 3) {
		if (setxattr(argv[0], argv[1], argv[2], strlen(argv[2]), 0) < 0)
			return fail(op);
		printf("set %s\n", argv[1]);
	} else if (!strcmp(op, "xattr-get") && argc == 2) {
		n = getxattr(argv[0], argv[1], buf, sizeof(buf) - 1);
		if (n < 0)
			return fail(op);
		buf[n] = 0;
		printf("%s\n", buf);
	} else if (!strcmp(op, "xattr-rm") && argc == 2) {
		if (removexattr(argv[0], argv[1]) < 0)
			return fail(op);
		printf("removed %s\n", argv[1]);
	} else if (!strcmp(op, "xattr-list") && argc == 1) {
		n = listxattr(argv[0], buf, sizeof(buf));
		if (n < 0)
			return fail(op);
		for (i = 0; i < (size_t)n && k < 1024; i += strlen(buf + i) + 1)
			names[k++] = buf + i;
		qsort(names, k, sizeof(names[0]), cmp_str);
		for (i = 0; i < k; i++)
			printf("%s%s", i ? " " : "", names[i]);
		printf("\n");
	} else {
		return -1;
	}
	return 0;
}

static int cmd_seek(const char *file)
{
	off_t pos = 0, data, hole;
	struct stat st;
	int fd = open(file, O_RDONLY), first = 1;

	if (fd < 0)
		return fail("open");
	if (fstat(fd, &st) < 0)
		return fail("fstat");
	while (pos < st.st_size) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno != ENXIO)
			return fail("SEEK_DATA");
		if (data < 0)
			data = st.st_size;
		if (data > pos) {
			printf("%shole %lld-%lld", first ? "" : " ", (long long)pos,
			       (long long)data);
			first = 0;
		}
		if (data >= st.st_size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return fail("SEEK_HOLE");
		printf("%sdata %lld-%lld", first ? "" : " ", (long long)data, (long long)hole);
		first = 0;
		pos = hole;
	}
	printf("%s\n", first ? "empty" : "");
	close(fd);
	return 0;
}

static int cmd_setgid_check(const char *dir, const char *ids)
{
	char f[4096], d[4096];
	unsigned int uid, gid;
	struct stat sf, sd;
	int fd;

	if (ids) {
		if (sscanf(ids, "%u:%u", &uid, &gid) != 2) {
			fprintf(stderr, "fstool: bad UID:GID\n");
			return 2;
		}
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			return fail("setuid");
	}
	umask(0);
	snprintf(f, sizeof(f), "%s/sgf-%u", dir, (unsigned int)getuid());
	snprintf(d, sizeof(d), "%s/sgd-%u", dir, (unsigned int)getuid());
	fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 02775);
	if (fd < 0)
		return fail("create");
	if (fstat(fd, &sf) < 0)
		return fail("fstat");
	close(fd);
	if (mkdir(d, 02775) < 0)
		return fail("mkdir");
	if (stat(d, &sd) < 0)
		return fail("stat");
	printf("file %u %o dir %u %o\n", (unsigned int)sf.st_gid,
	       (unsigned int)(sf.st_mode & 07777), (unsigned int)sd.st_gid,
	       (unsigned int)(sd.st_mode & 07777));
	return 0;
}

int main(int argc, char **argv)
{
	const char *op = argc > 1 ? argv[1] : "";
	int ret = -1;

	if (!strcmp(op, "hash") && argc == 3)
		ret = cmd_hash(argv[2]);
	else if (!strcmp(op, "mmap-hash") && argc == 3)
		ret = cmd_mmap_hash(argv[2]);
	else if (!strcmp(op, "mmap-write") && argc == 5)
		ret = cmd_mmap_write(argv[2], argv[3], argv[4]);
	else if (!strcmp(op, "seek") && argc == 3)
		ret = cmd_seek(argv[2]);
	else if (!strcmp(op, "setgid-check") && (argc == 3 || argc == 4))
		ret = cmd_setgid_check(argv[2], argc == 4 ? argv[3] : NULL);
	else if (!strncmp(op, "xattr-", 6))
		ret = cmd_xattr(op, argv + 2, argc - 2);
	if (ret < 0) {
		fprintf(stderr, "usage: fstool hash|mmap-hash|seek FILE\n"
				"       fstool mmap-write FILE OFFSET STRING\n"
				"       fstool setgid-check DIR [UID:GID]\n"
				"       fstool xattr-set FILE NAME VALUE | xattr-get FILE NAME |"
				" xattr-list FILE | xattr-rm FILE NAME\n");
		return 2;
	}
	return ret;
}
