// SPDX-License-Identifier: GPL-2.0-or-later
/* Creating an empty qcow2 image: header, refcount table and blocks, L1 table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

static int fail(char *err, size_t n, int r, const char *msg)
{
	if (err && n)
		snprintf(err, n, "%s", msg);
	return r;
}

int qcow2_create_fio(struct fio *f, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
	unsigned int cb = o->cluster_bits ? o->cluster_bits : 16;
	int version = o->version ? o->version : 3;
	unsigned int rbits = o->refcount_bits ? o->refcount_bits : 16, order = 0;
	uint64_t cs, l1_entries, l1_cl, rt_cl, rb_cl, total, rb_cover;
	size_t blen = o->backing_file ? strlen(o->backing_file) : 0;
	size_t flen = o->backing_fmt ? strlen(o->backing_fmt) : 0;
	uint8_t *buf = NULL;
	int r;

	if (cb < QCOW2_MIN_CLUSTER_BITS || cb > QCOW2_MAX_CLUSTER_BITS)
		return fail(err, errlen, -EINVAL,
			    "cluster size must be a power of two, 512 B to 2 MiB");
	if (version != 2 && version != 3)
		return fail(err, errlen, -EINVAL,
			    "version must be 2 (compat=0.10) or 3 (compat=1.1)");
	while ((1u << order) < rbits)
		order++;
	if ((1u << order) != rbits || order > 6)
		return fail(err, errlen, -EINVAL, "refcount_bits must be a power of two up to 64");
	if (version == 2 && (order != 4 || o->lazy_refcounts))
		return fail(err, errlen, -EINVAL,
			    "compat=0.10 supports only refcount_bits=16 and no lazy_refcounts");
	if (o->size % 512 || o->size > QCOW2_MAX_SIZE)
		return fail(err, errlen, -EINVAL,
			    "size must be a multiple of 512 and at most 64 PiB");
	if (blen > QCOW2_MAX_BACKING_NAME || flen >= 32)
		return fail(err, errlen, -EINVAL, "backing file name too long");
	if (o->backing_fmt && strcmp(o->backing_fmt, "qcow2") && strcmp(o->backing_fmt, "raw"))
		return fail(err, errlen, -EINVAL, "backing_fmt must be qcow2 or raw");

	cs = 1ULL << cb;
	l1_entries = (o->size + (cs << (cb - 3)) - 1) >> (cb + cb - 3);
	if (l1_entries * 8 > QCOW2_MAX_L1_BYTES)
		return fail(err, errlen, -EFBIG, "image too large for this cluster size");
	l1_cl = (l1_entries * 8 + cs - 1) / cs;
	if (!l1_cl)
		l1_cl = 1;
	rb_cover = 1ULL << (cb + 3 - order);
	/* Fixpoint: the refcount structures must also count themselves. */
	rt_cl = 1;
	rb_cl = 1;
	for (;;) {
		total = 1 + rt_cl + rb_cl + l1_cl;
		uint64_t nrb = (total + rb_cover - 1) / rb_cover;
		uint64_t nrt = (nrb * 8 + cs - 1) / cs;

		if (nrb == rb_cl && nrt == rt_cl)
			break;
		rb_cl = nrb > rb_cl ? nrb : rb_cl;
		rt_cl = nrt > rt_cl ? nrt : rt_cl;
	}
	if (rt_cl * cs > QCOW2_MAX_RT_BYTES)
		return fail(err, errlen, -EFBIG, "refcount table too large");

	size_t hlen = version == 3 ? QCOW2_V3_HDR_LEN : QCOW2_V2_HDR_LEN;
	size_t ext = flen ? 8 + ((flen + 7) & ~7ULL) : 0;

	if (hlen + ext + 8 + blen > cs)
		return fail(err, errlen, -EINVAL,
			    "header and backing name do not fit in one cluster");
	buf = calloc(total, cs);
	if (!buf)
		return -ENOMEM;
	uint8_t *h = buf;

	put_be32(h, QCOW2_MAGIC);
	put_be32(h + 4, version);
	put_be32(h + 20, cb);
	put_be64(h + 24, o->size);
	put_be32(h + 36, l1_entries);
	put_be64(h + 40, (1 + rt_cl + rb_cl) * cs);
	put_be64(h + 48, cs);
	put_be32(h + 56, rt_cl);
	if (version == 3) {
		put_be64(h + 80, o->lazy_refcounts ? COMPAT_LAZY_REFCOUNTS : 0);
		put_be32(h + 96, order);
		put_be32(h + 100, hlen);
	}
	size_t p = hlen;

	if (flen) {
		put_be32(h + p, EXT_BACKING_FMT);
		put_be32(h + p + 4, flen);
		memcpy(h + p + 8, o->backing_fmt, flen);
		p += ext;
	}
	p += 8; /* end-of-extensions marker: zeros */
	if (blen) {
		put_be64(h + HDR_BACKING_OFF, p);
		put_be32(h + HDR_BACKING_SIZE, blen);
		memcpy(h + p, o->backing_file, blen);
	}
	for (uint64_t i = 0; i < rb_cl; i++)
		put_be64(buf + cs + i * 8, (1 + rt_cl + i) * cs);
	for (uint64_t c = 0; c < total; c++) {
		uint8_t *b = buf + (1 + rt_cl + c / rb_cover) * cs;
		uint64_t i = c % rb_cover;

		switch (order) {
		case 0:
		case 1:
		case 2:
			b[(i << order) / 8] |= 1u << ((i << order) % 8);
			break;
		case 3:
			b[i] = 1;
			break;
		case 4:
			b[2 * i + 1] = 1;
			break;
		case 5:
			b[4 * i + 3] = 1;
			break;
		default:
			b[8 * i + 7] = 1;
			break;
		}
	}
	r = fio_truncate(f, 0);
	if (!r)
		r = fio_pwrite(f, buf, total * cs, 0);
	if (!r)
		r = fio_sync(f);
	free(buf);
	if (r)
		return fail(err, errlen, r, "write failed");
	return 0;
}

int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
	struct fio *f;
	int r = fio_open_posix(&f, path, FIO_CREATE | FIO_NO_URING);

	if (r) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	r = qcow2_create_fio(f, o, err, errlen);
	fio_close(f);
	return r;
}
