// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory image: restore through the memory cache. The first restore of a
 * snapshot decompresses its memory once into a flat file in the cache
 * directory (zero pages are holes); every restore then maps that file
 * copy-on-write, like memimg_map() maps an uncompressed snapshot, so clones
 * share the pages they never write and start without reading anything.
 *
 * An entry is named after the snapshot file's identity (device, inode, size,
 * change and modification times: a rewritten or replaced snapshot never meets
 * its old entry, and none of it can be set by a user to forge another file's)
 * and a BLAKE2b digest of the parsed index. It is built under a temporary name
 * and renamed into place when complete; eviction only ever unlinks, so a VM
 * mapping an entry never sees it shrink.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blake2b.h"
#include "cache_dir.h"
#include "excl_file.h"
#include "log.h"
#include "snapshot/memimg_int.h"

#define KEY_BYTES 20
#define PREFIX	  "mem-"
#define SUFFIX	  ".img"
#define NAME_MAX_ (sizeof(PREFIX SUFFIX) + 2 * KEY_BYTES)
/* Temporary files of a build that died are removed after this long. */
#define STALE_TMP_S 3600

static void put_u64(struct blake2b *b, uint64_t v)
{
	blake2b_update(b, &v, sizeof(v));
}

static int entry_name(const struct memimg *mi, char *name, size_t size)
{
	struct blake2b b;
	uint8_t key[KEY_BYTES];
	char hex[2 * KEY_BYTES + 1];
	struct stat st;

	if (fstat(mi->fd, &st) < 0)
		return -errno;
	blake2b_init(&b, sizeof(key));
	put_u64(&b, st.st_dev);
	put_u64(&b, st.st_ino);
	put_u64(&b, st.st_size);
	put_u64(&b, st.st_mtim.tv_sec);
	put_u64(&b, st.st_mtim.tv_nsec);
	put_u64(&b, st.st_ctim.tv_sec);
	put_u64(&b, st.st_ctim.tv_nsec);
	put_u64(&b, mi->off);
	put_u64(&b, mi->len);
	put_u64(&b, mi->flags);
	put_u64(&b, mi->chunk_pages);
	for (unsigned int i = 0; i < mi->nr_regions; i++) {
		put_u64(&b, mi->gpa[i]);
		put_u64(&b, mi->size[i]);
	}
	for (uint64_t c = 0; c < mi->nr_chunks; c++) {
		const struct memimg_chunk *ch = &mi->c[c];

		put_u64(&b, ch->file_off);
		put_u64(&b, (uint64_t)ch->len << 32 | ch->crc);
		put_u64(&b, (uint64_t)ch->npages << 32 | ch->flags);
	}
	blake2b_update(&b, mi->zmap, mi->nr_chunks * mi->bmwords * sizeof(uint64_t));
	blake2b_final(&b, key);
	cache_hex(key, sizeof(key), hex);
	snprintf(name, size, PREFIX "%s" SUFFIX, hex);
	return 0;
}

/* An entry we may map: a regular file of ours, not writable by others, of the right size. */
static int entry_open(int dfd, const char *name, uint64_t size)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || (uint64_t)st.st_size != size) {
		pr_warn("memory cache: %s: not ours, writable by others or of the wrong size: "
			"rebuilt",
			name);
		close(fd);
		unlinkat(dfd, name, 0);
		return -EINVAL;
	}
	return fd;
}

struct build {
	const struct memimg *mi;
	int fd;
	uint64_t region_off[GUEST_MEM_MAX_REGIONS];
	_Atomic uint64_t next;
	_Atomic int err;
};

/* Chunk @c's non-zero pages into their places in the entry; zero pages stay holes. */
static int build_chunk(struct build *b, uint64_t c, uint8_t *buf, uint8_t *tmp)
{
	const struct memimg_chunk *ch = &b->mi->c[c];
	const uint64_t *zm = memimg_zmap(b->mi, c);
	uint64_t at = b->region_off[ch->region] + ch->page * MEMIMG_PAGE;
	const uint8_t *src = buf;
	int ret;

	if (!ch->nz)
		return 0;
	ret = memimg_read_chunk(b->mi, c, buf, tmp);
	for (uint32_t i = 0, j; !ret && memimg_next_run(ch, zm, &i, &j); i = j) {
		/* pwrite, not a shared mapping: a full file system is ENOSPC, not SIGBUS. */
		ret = pwrite_all(b->fd, src, (j - i) * (size_t)MEMIMG_PAGE,
				 at + i * (uint64_t)MEMIMG_PAGE);
		src += (j - i) * (size_t)MEMIMG_PAGE;
	}
	return ret;
}

static void *build_worker(void *arg)
{
	struct build *b = arg;
	size_t cb = (size_t)b->mi->chunk_pages * MEMIMG_PAGE;
	uint8_t *buf = malloc(cb), *tmp = malloc(cb);
	uint64_t c;
	int ret = buf && tmp ? 0 : -ENOMEM, zero = 0;

	while (!ret && !atomic_load(&b->err) &&
	       (c = atomic_fetch_add(&b->next, 1)) < b->mi->nr_chunks)
		ret = build_chunk(b, c, buf, tmp);
	if (ret)
		atomic_compare_exchange_strong(&b->err, &zero, ret);
	free(buf);
	free(tmp);
	return NULL;
}

/* Decompress every chunk into a new entry, with as many threads as CPUs. */
static int entry_fill(const struct memimg *mi, const struct guest_mem *m, int fd)
{
	struct build b = { .mi = mi, .fd = fd };
	unsigned int nt = memimg_threads(0, mi->nr_chunks), started = 0;
	pthread_t tids[16];
	uint64_t at = 0;

	for (unsigned int i = 0; i < m->nr; i++) {
		b.region_off[i] = at;
		at += m->r[i].size;
	}
	if (ftruncate(fd, (off_t)m->total) < 0)
		return -errno;
	posix_fadvise(mi->fd, (off_t)mi->off, (off_t)mi->len, POSIX_FADV_WILLNEED);
	for (unsigned int i = 1; i < nt && started < ARRAY_SIZE(tids); i++)
		if (!pthread_create(&tids[started], NULL, build_worker, &b))
			started++;
	build_worker(&b);
	for (unsigned int i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return atomic_load(&b.err);
}

/* A new entry, built under a temporary name and renamed into place once complete. */
static int entry_build(const struct memimg *mi, const struct guest_mem *m, int dfd,
		       const char *name, int *out)
{
	char prefix[NAME_MAX_ + 8], *tmp = NULL;
	int fd, ret;

	snprintf(prefix, sizeof(prefix), "%s.tmp-", name);
	fd = excl_create_random(dfd, prefix, "", &tmp);
	if (fd < 0)
		return fd;
	ret = entry_fill(mi, m, fd);
	if (ret)
		goto fail;
	/* Nobody writes it again (nobody else can reach it: the directory is 0700). */
	if (fchmod(fd, 0400) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
		ret = -errno;
		goto fail;
	}
	free(tmp);
	*out = fd;
	return 0;
fail:
	unlinkat(dfd, tmp, 0);
	free(tmp);
	close(fd);
	return ret;
}

struct entry {
	char name[NAME_MAX_ + 32];
	uint64_t bytes;
	struct timespec mtime;
};

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : x->mtime.tv_nsec > y->mtime.tv_nsec;
}

/*
 * Keep the entries within @max bytes (their disk or RAM use), least recently used
 * out first, never @keep; remove temporary files older than STALE_TMP_S.
 */
static void cache_prune(int dfd, const char *keep, uint64_t max)
{
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	uint64_t sum = 0;
	struct dirent *d;
	int fd = dup(dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dir))) {
		struct stat st;
		size_t len = strlen(d->d_name);

		if (strncmp(d->d_name, PREFIX, strlen(PREFIX)) || len >= sizeof(e->name) ||
		    fstatat(dfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (strstr(d->d_name, SUFFIX ".tmp-")) {
			if (time(NULL) - st.st_mtim.tv_sec > STALE_TMP_S)
				unlinkat(dfd, d->d_name, 0);
			continue;
		}
		if (len < strlen(SUFFIX) || strcmp(d->d_name + len - strlen(SUFFIX), SUFFIX))
			continue;
		sum += (uint64_t)st.st_blocks * 512;
		if (!strcmp(d->d_name, keep))
			continue;
		if (n == cap) {
			struct entry *ne = realloc(e, (cap = cap ? 2 * cap : 16) * sizeof(*e));

			if (!ne)
				break;
			e = ne;
		}
		memcpy(e[n].name, d->d_name, len + 1);
		e[n].bytes = (uint64_t)st.st_blocks * 512;
		e[n++].mtime = st.st_mtim;
	}
	closedir(dir);
	if (n)
		qsort(e, n, sizeof(*e), by_age);
	for (size_t i = 0; i < n && sum > max; i++) {
		if (unlinkat(dfd, e[i].name, 0))
			continue;
		pr_info("memory cache: removed %s (least recently used; MINIVMM_MEM_CACHE_MAX)",
			e[i].name);
		sum -= e[i].bytes;
	}
	free(e);
}

/* MINIVMM_MEM_CACHE_MAX in MiB, default 4096. */
static uint64_t cache_max(void)
{
	const char *s = getenv("MINIVMM_MEM_CACHE_MAX");
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 4096ULL * MiB;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > (1ULL << 40)) {
		pr_warn("MINIVMM_MEM_CACHE_MAX=%s: expected MiB; 4096 used", s);
		return 4096ULL * MiB;
	}
	return v * MiB;
}

int memimg_map_cached(struct memimg *mi, const struct guest_mem *m, bool *built)
{
	char dirbuf[4096], name[NAME_MAX_ + 1];
	const char *dir = cache_dir_path(dirbuf, sizeof(dirbuf));
	int dfd, fd, ret;
	uint64_t at = 0;

	*built = false;
	if (mi->flags & MEMIMG_F_FLAT)
		return memimg_map(mi, m); /* already a flat file: nothing to decompress */
	ret = memimg_check_layout(mi, m);
	if (ret)
		return ret;
	if (!dir) {
		pr_warn("memory cache: no cache directory (set MINIVMM_CACHE_DIR)");
		return -EAGAIN;
	}
	dfd = cache_dir_open(dir, "memory cache");
	if (dfd < 0) {
		if (dfd != -EPERM) /* that one has its own warning */
			pr_warn("memory cache %s: %s", dir, strerror(-dfd));
		return -EAGAIN;
	}
	ret = entry_name(mi, name, sizeof(name));
	if (ret)
		goto out;
	fd = entry_open(dfd, name, m->total);
	if (fd >= 0) {
		futimens(fd, NULL); /* recently used: evicted last */
	} else {
		ret = entry_build(mi, m, dfd, name, &fd);
		if (ret == -EBADMSG)
			goto out; /* the snapshot is corrupt: said where */
		if (ret) {
			pr_warn("memory cache %s/%s: %s", dir, name, strerror(-ret));
			ret = -EAGAIN;
			goto out;
		}
		*built = true;
		pr_info("memory cache: stored %s/%s", dir, name);
		cache_prune(dfd, name, cache_max());
	}
	pr_debug("memory cache: mapping %s/%s", dir, name);
	for (unsigned int i = 0; i < m->nr && !ret; i++) {
		ret = guest_mem_map_file(m, i, fd, at);
		at += m->r[i].size;
	}
	if (ret)
		pr_err("memory cache: mapping guest memory: %s", strerror(-ret));
	close(fd);
out:
	close(dfd);
	return ret;
}
