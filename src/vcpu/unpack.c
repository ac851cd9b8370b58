// SPDX-License-Identifier: GPL-2.0-or-later
/* Decompressing the kernel on the host runs at native speed and, with the
 * cache, only once per kernel: the guest then starts in the kernel proper. */
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "blake2b.h"
#include "cache_dir.h"
#include "excl_file.h"
#include "log.h"
#include "util.h"
#include "vcpu/boot.h"
#include "vcpu/unpack.h"

#define UNPACK_MAX	   (512ULL << 20) /* no kernel is larger; bounds a malicious payload */
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c

/* Grow @buf to hold at least @need bytes (doubling); false past UNPACK_MAX. */
static bool grow(uint8_t **buf, size_t *cap, size_t need)
{
	size_t n = *cap ? *cap : 64ULL << 20;
	uint8_t *p;

	while (n < need)
		n *= 2;
	if (n > UNPACK_MAX)
		return false;
	if (n == *cap)
		return true;
	p = realloc(*buf, n);
	if (!p)
		return false;
	*buf = p;
	*cap = n;
	return true;
}

static int unxz(const uint8_t *in, size_t len, uint8_t **out, size_t *olen)
{
	lzma_stream s = LZMA_STREAM_INIT;
	size_t cap = 0;
	lzma_ret r;

	*out = NULL;
	/* One stream only: Linux appends the decompressed size after it. */
	if (lzma_stream_decoder(&s, UINT64_MAX, 0) != LZMA_OK)
		return -ENOMEM;
	s.next_in = in;
	s.avail_in = len;
	do {
		if (!grow(out, &cap, s.total_out + 1)) {
			lzma_end(&s);
			return -EFBIG;
		}
		s.next_out = *out + s.total_out;
		s.avail_out = cap - s.total_out;
		r = lzma_code(&s, LZMA_FINISH);
	} while (r == LZMA_OK || (r == LZMA_BUF_ERROR && s.avail_out == 0));
	*olen = s.total_out;
	lzma_end(&s);
	return r == LZMA_STREAM_END ? 0 : -EINVAL;
}

static int ungzip(const uint8_t *in, size_t len, uint8_t **out, size_t *olen)
{
	z_stream s;
	size_t cap = 0;
	int r;

	memset(&s, 0, sizeof(s));
	*out = NULL;
	if (len > UINT32_MAX || inflateInit2(&s, 16 + MAX_WBITS) != Z_OK)
		return -EINVAL;
	s.next_in = (Bytef *)in;
	s.avail_in = len;
	do {
		if (!grow(out, &cap, s.total_out + 1) || cap - s.total_out > UINT32_MAX) {
			inflateEnd(&s);
			return -EFBIG;
		}
		s.next_out = *out + s.total_out;
		s.avail_out = cap - s.total_out;
		r = inflate(&s, Z_FINISH);
	} while (r == Z_OK || (r == Z_BUF_ERROR && s.avail_out == 0));
	*olen = s.total_out;
	inflateEnd(&s);
	return r == Z_STREAM_END ? 0 : -EINVAL;
}

static int unzstd(const uint8_t *in, size_t len, uint8_t **out, size_t *olen)
{
	ZSTD_DStream *d = ZSTD_createDStream();
	ZSTD_inBuffer ib = { in, len, 0 };
	size_t cap = 0, done = 0, r = 1;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	while (r != 0) {
		ZSTD_outBuffer ob;

		if (!grow(out, &cap, done + 1)) {
			ZSTD_freeDStream(d);
			return -EFBIG;
		}
		ob = (ZSTD_outBuffer){ *out + done, cap - done, 0 };
		r = ZSTD_decompressStream(d, &ob, &ib);
		done += ob.pos;
		if (ZSTD_isError(r) || (r && ib.pos == ib.size && ob.pos < ob.size)) {
			ZSTD_freeDStream(d);
			return -EINVAL;
		}
	}
	ZSTD_freeDStream(d);
	*olen = done;
	return 0;
}

int bzimage_unpack(const void *img, size_t len, const struct bzimage *bz, void **out,
		   size_t *out_len)
{
	const uint8_t *k = img, *p;
	uint32_t off, plen;
	uint8_t *buf = NULL;
	size_t blen = 0;
	int ret;

	memcpy(&off, k + HDR_PAYLOAD_OFFSET, 4);
	memcpy(&plen, k + HDR_PAYLOAD_LENGTH, 4);
	if (bz->version < 0x0208 || off > len - bz->setup_size ||
	    plen > len - bz->setup_size - off || plen < 6)
		return -EINVAL;
	p = k + bz->setup_size + off;
	if (!memcmp(p,
		    "\xfd"
		    "7zXZ\0",
		    6))
		ret = unxz(p, plen, &buf, &blen);
	else if (p[0] == 0x1f && p[1] == 0x8b)
		ret = ungzip(p, plen, &buf, &blen);
	else if (!memcmp(p, "\x28\xb5\x2f\xfd", 4))
		ret = unzstd(p, plen, &buf, &blen);
	else
		ret = -ENOTSUP;
	if (!ret && (blen < 4 || memcmp(buf, "\177ELF", 4)))
		ret = -EINVAL;
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*out_len = blen;
	return 0;
}

/* "vmlinux-<BLAKE2b-256 of the bzImage>.elf": a forged kernel cannot take another's name. */
static void cache_name(const void *img, size_t len, char *name, size_t size)
{
	uint8_t h[32];
	char hex[2 * sizeof(h) + 1];

	blake2b(h, sizeof(h), img, len);
	cache_hex(h, sizeof(h), hex);
	snprintf(name, size, "vmlinux-%s.elf", hex);
}

static void cache_store(int dfd, const char *dir, const char *name, const void *data, size_t len)
{
	char prefix[128], *tmp = NULL;
	int fd;

	/* Best effort: a cache that cannot be written only costs speed. */
	snprintf(prefix, sizeof(prefix), "%s.tmp-", name);
	fd = excl_create_random(dfd, prefix, "", &tmp);
	if (fd < 0)
		return;
	if (write_all(fd, data, len) || close(fd) || renameat(dfd, tmp, dfd, name)) {
		unlinkat(dfd, tmp, 0);
		free(tmp);
		return;
	}
	free(tmp);
	pr_info("kernel cache: stored %s/%s", dir, name);
}

void kimage_release(struct kimage *ki)
{
	if (ki->fd >= 0) {
		munmap(ki->data, ki->len);
		close(ki->fd);
	} else {
		free(ki->data);
	}
	ki->data = NULL;
	ki->fd = -1;
}

/*
 * Map a cache entry: headers are parsed in place, segments read from the fd. Only
 * a regular file of ours that nobody else can write, not through a symlink.
 */
static int cache_map(int dfd, const char *name, struct kimage *ki)
{
	struct stat st;
	void *p;
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) || st.st_size < 4 || (uint64_t)st.st_size > UNPACK_MAX)
		goto fail;
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	if (memcmp(p, "\177ELF", 4)) {
		munmap(p, st.st_size);
		goto fail;
	}
	*ki = (struct kimage){ p, st.st_size, fd };
	return 0;
fail:
	close(fd);
	return -EINVAL;
}

int bzimage_unpack_cached(const void *img, size_t len, const struct bzimage *bz, struct kimage *out,
			  int *cached)
{
	char dirbuf[4096], name[96];
	const char *dir = cache_dir_path(dirbuf, sizeof(dirbuf));
	int ret, dfd = dir ? cache_dir_open(dir, "kernel cache") : -ENOENT;

	*cached = 0;
	out->fd = -1;
	/* Content-addressed, so the key holds on any file system (the harness reads
	 * kernels over 9p) and a replaced kernel never meets a stale entry. */
	if (dfd >= 0) {
		cache_name(img, len, name, sizeof(name));
		if (!cache_map(dfd, name, out)) {
			close(dfd);
			*cached = 1;
			return 0;
		}
	}
	ret = bzimage_unpack(img, len, bz, &out->data, &out->len);
	if (!ret && dfd >= 0)
		cache_store(dfd, dir, name, out->data, out->len);
	if (dfd >= 0)
		close(dfd);
	return ret;
}
