// SPDX-License-Identifier: GPL-2.0-or-later
/* Compressed clusters (read side): raw deflate as QEMU writes it, and zstd. */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>
#include <zstd.h>

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

/* One or more frames, followed by padding up to the sector end, filling @out exactly. */
static int unzstd(const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen)
{
	size_t done = 0;

	while (done < outlen) {
		size_t fs = ZSTD_findFrameCompressedSize(in, inlen), n;

		if (ZSTD_isError(fs) || fs > inlen)
			return -EIO;
		n = ZSTD_decompress(out + done, outlen - done, in, fs);
		if (ZSTD_isError(n) || n == 0)
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
	r = q->zstd ? unzstd(q->zbuf, csize, out, q->cluster_size)
		    : inflate_raw(q->zbuf, csize, out, q->cluster_size);
	if (r == -EIO)
		qcow2_seterr(q, "compressed cluster at 0x%llx does not decompress",
			     (unsigned long long)off);
	return r;
}
