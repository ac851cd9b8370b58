// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Compressed clusters (read side): raw deflate as QEMU writes it, and zstd
 * through the system's libzstd loaded at run time (no build dependency).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <zlib.h>

#include "qcow2/qcow2_int.h"

static int inflate_raw(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	z_stream z;
	int r;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = inlen;
	z.next_out = out;
	z.avail_out = outlen;
	r = inflate(&z, Z_FINISH);
	/* QEMU accepts a full output buffer even when the stream does not end there. */
	if (!(r == Z_STREAM_END || (r == Z_BUF_ERROR && z.avail_out == 0)) || z.avail_out) {
		inflateEnd(&z);
		return -EIO;
	}
	inflateEnd(&z);
	return 0;
}

struct zstd_api {
	size_t (*decompress)(void *, size_t, const void *, size_t);
	size_t (*frame_size)(const void *, size_t);
	unsigned (*is_error)(size_t);
};

static struct zstd_api zapi;
static bool zapi_ok;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;

static void zstd_load(void)
{
	void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
	zapi.decompress =
	    (size_t(*)(void *, size_t, const void *, size_t))dlsym(h, "ZSTD_decompress");
	zapi.frame_size = (size_t(*)(const void *, size_t))dlsym(h, "ZSTD_findFrameCompressedSize");
	zapi.is_error = (unsigned (*)(size_t))dlsym(h, "ZSTD_isError");
	zapi_ok = zapi.decompress && zapi.frame_size && zapi.is_error;
}

/* One or more frames, followed by padding up to the sector end, filling @out exactly. */
static int unzstd(struct qcow2 *q, const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	size_t done = 0;

	pthread_once(&zonce, zstd_load);
	if (!zapi_ok) {
		qcow2_seterr(q, "zstd-compressed cluster but libzstd.so.1 is not available");
		return -ENOTSUP;
	}
	while (done < outlen) {
		size_t fs = zapi.frame_size(in, inlen), n;

		if (zapi.is_error(fs) || fs > inlen)
			return -EIO;
		n = zapi.decompress(out + done, outlen - done, in, fs);
		if (zapi.is_error(n) || n == 0)
			return -EIO;
		done += n;
		in += fs;
		inlen -= fs;
	}
	return 0;
}

int qcow2_decompress(struct qcow2 *q, uint64_t entry, uint8_t *out)
{
	unsigned int x = 62 - (q->cluster_bits - 8);
	uint64_t off = entry & ((1ULL << x) - 1);
	uint64_t nsec = ((entry >> x) & ((1ULL << (q->cluster_bits - 8)) - 1)) + 1;
	size_t csize = nsec * 512 - (off & 511);
	int r;

	if (!q->zbuf) {
		q->zbuf = malloc(2 * q->cluster_size + 512);
		if (!q->zbuf)
			return -ENOMEM;
	}
	r = fio_pread(q->f, q->zbuf, csize, off);
	if (r)
		return r;
	r = q->zstd ? unzstd(q, q->zbuf, csize, out, q->cluster_size)
		    : inflate_raw(q->zbuf, csize, out, q->cluster_size);
	if (r == -EIO)
		qcow2_seterr(q, "compressed cluster at 0x%llx does not decompress",
			     (unsigned long long)off);
	return r;
}
