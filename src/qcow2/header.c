// SPDX-License-Identifier: GPL-2.0-or-later
/* qcow2 header parsing and validation; every bound a hostile image could abuse is checked. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "qcow2/qcow2_int.h"

/* Describe unknown incompatible bits using the image's own feature-name table. */
static void unsupported_features(struct qcow2 *q, uint64_t bits, const uint8_t *tbl, uint32_t len)
{
	char names[256] = "";
	size_t used = 0;

	for (int b = 0; b < 64; b++) {
		const char *name = NULL;
		char nb[48];

		if (!(bits >> b & 1))
			continue;
		for (uint32_t i = 0; tbl && i + 48 <= len; i += 48) {
			if (tbl[i] == 0 && tbl[i + 1] == b) {
				snprintf(nb, sizeof(nb), "%.46s", (const char *)tbl + i + 2);
				name = nb;
				break;
			}
		}
		if (b == 2)
			name = "external data file";
		else if (b == 4)
			name = "extended L2 entries";
		used += snprintf(names + used, sizeof(names) - used, "%s%s (bit %d)",
				 used ? ", " : "", name ? name : "unknown", b);
		if (used >= sizeof(names))
			break;
	}
	qcow2_seterr(q, "unsupported incompatible qcow2 feature(s): %s", names);
}

int qcow2_parse_header(struct qcow2 *q)
{
	uint8_t h[QCOW2_V3_HDR_LEN + 8];
	uint64_t fsize;
	int r;

	r = fio_size(q->f, &fsize);
	if (r)
		return r;
	if (fsize < QCOW2_V2_HDR_LEN) {
		qcow2_seterr(q, "file too small for a qcow2 header (%llu bytes)",
			     (unsigned long long)fsize);
		return -EINVAL;
	}
	memset(h, 0, sizeof(h));
	r = fio_pread(q->f, h, sizeof(h), 0);
	if (r)
		return r;
	if (be32_at(h) != QCOW2_MAGIC) {
		qcow2_seterr(q, "not a qcow2 image (bad magic)");
		return -EINVAL;
	}
	q->version = be32_at(h + 4);
	if (q->version != 2 && q->version != 3) {
		qcow2_seterr(q, "unsupported qcow2 version %d", q->version);
		return -ENOTSUP;
	}
	q->cluster_bits = be32_at(h + 20);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		qcow2_seterr(q, "cluster_bits %u out of range 9..21", q->cluster_bits);
		return -EINVAL;
	}
	q->cluster_size = 1ULL << q->cluster_bits;
	q->l2_bits = q->cluster_bits - 3;
	q->file_end = (fsize + q->cluster_size - 1) >> q->cluster_bits;
	q->size = be64_at(h + 24);
	if (q->size > QCOW2_MAX_SIZE || q->size % 512) {
		qcow2_seterr(q, "virtual size %llu unsupported", (unsigned long long)q->size);
		return -EINVAL;
	}
	if (be32_at(h + 32)) {
		qcow2_seterr(q, "encrypted images are not supported");
		return -ENOTSUP;
	}
	q->l1_size = be32_at(h + 36);
	q->l1_offset = be64_at(h + 40);
	q->rt_offset = be64_at(h + 48);
	q->rt_clusters = be32_at(h + 56);
	q->nb_snapshots = be32_at(h + 60);
	q->snapshots_offset = be64_at(h + 64);
	if (q->version == 3) {
		q->incompat = be64_at(h + 72);
		q->compat = be64_at(h + 80);
		q->autoclear = be64_at(h + 88);
		q->refcount_order = be32_at(h + 96);
		q->header_length = be32_at(h + 100);
		if (q->header_length < QCOW2_V3_HDR_LEN || q->header_length % 8 ||
		    q->header_length > q->cluster_size) {
			qcow2_seterr(q, "bad header_length %u", q->header_length);
			return -EINVAL;
		}
	} else {
		q->refcount_order = 4;
		q->header_length = QCOW2_V2_HDR_LEN;
	}
	if (q->refcount_order > 6) {
		qcow2_seterr(q, "refcount_order %u out of range 0..6", q->refcount_order);
		return -EINVAL;
	}
	q->rb_bits = q->cluster_bits + 3 - q->refcount_order;

	/* Cluster 0 holds the header, its extensions and the backing name. */
	q->hdr_len = q->cluster_size < fsize ? q->cluster_size : fsize;
	q->hdr = calloc(1, q->cluster_size);
	if (!q->hdr)
		return -ENOMEM;
	r = fio_pread(q->f, q->hdr, q->hdr_len, 0);
	if (r)
		return r;
	if (q->header_length > QCOW2_V3_HDR_LEN && q->hdr[104] > 1) {
		qcow2_seterr(q, "unknown compression type %u", q->hdr[104]);
		return -ENOTSUP;
	}
	q->zstd = q->header_length > QCOW2_V3_HDR_LEN && q->hdr[104] == 1;
	if (q->zstd != !!(q->incompat & INCOMPAT_COMPRESSION)) {
		qcow2_seterr(q, "compression type and incompatible bit 3 disagree");
		return -EINVAL;
	}

	/* Header extensions: bounded by cluster 0, each length checked. */
	const uint8_t *ftbl = NULL;
	uint32_t ftbl_len = 0;
	uint64_t p = q->header_length;

	for (int n = 0;; n++) {
		uint32_t type, len;

		if (p + 8 > q->cluster_size || n > 1024) {
			qcow2_seterr(q, "header extensions run past the first cluster");
			return -EINVAL;
		}
		type = be32_at(q->hdr + p);
		len = be32_at(q->hdr + p + 4);
		if (type == EXT_END)
			break;
		if (len > q->cluster_size - p - 8) {
			qcow2_seterr(
			    q, "header extension 0x%08x (%u bytes) runs past the first cluster",
			    type, len);
			return -EINVAL;
		}
		const uint8_t *d = q->hdr + p + 8;

		switch (type) {
		case EXT_BACKING_FMT:
			if (len >= sizeof(q->backing_fmt)) {
				qcow2_seterr(q, "backing format name too long");
				return -EINVAL;
			}
			memcpy(q->backing_fmt, d, len);
			q->backing_fmt[len] = 0;
			break;
		case EXT_FEATURE_TABLE:
			ftbl = d;
			ftbl_len = len;
			break;
		case EXT_CRYPTO:
			qcow2_seterr(q, "encryption header extension present: not supported");
			return -ENOTSUP;
		default:
			break; /* kept intact: cluster 0 is never rewritten wholesale */
		}
		p += 8 + (((uint64_t)len + 7) & ~7ULL);
	}
	if (q->incompat & ~INCOMPAT_SUPPORTED) {
		unsupported_features(q, q->incompat & ~INCOMPAT_SUPPORTED, ftbl, ftbl_len);
		return -ENOTSUP;
	}

	/* Backing file name. */
	uint64_t boff = be64_at(h + HDR_BACKING_OFF);
	uint32_t blen = be32_at(h + HDR_BACKING_SIZE);

	if (boff) {
		if (blen == 0 || blen > QCOW2_MAX_BACKING_NAME || boff > q->cluster_size ||
		    blen > q->cluster_size - boff) {
			qcow2_seterr(q, "bad backing file name (offset %llu, length %u)",
				     (unsigned long long)boff, blen);
			return -EINVAL;
		}
		q->backing_name = malloc(blen + 1);
		if (!q->backing_name)
			return -ENOMEM;
		memcpy(q->backing_name, q->hdr + boff, blen);
		q->backing_name[blen] = 0;
		if (strlen(q->backing_name) != blen) {
			qcow2_seterr(q, "backing file name contains a NUL byte");
			return -EINVAL;
		}
	}

	/* Table geometry. */
	uint64_t l1_need =
	    (q->size + (q->cluster_size << q->l2_bits) - 1) >> (q->cluster_bits + q->l2_bits);

	if ((uint64_t)q->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		qcow2_seterr(q, "l1_size %u exceeds the limit (%u bytes)", q->l1_size,
			     QCOW2_MAX_L1_BYTES);
		return -EFBIG;
	}
	if (q->l1_size < l1_need) {
		qcow2_seterr(q, "L1 table too small (%u entries) for the virtual size", q->l1_size);
		return -EINVAL;
	}
	if ((uint64_t)q->rt_clusters << q->cluster_bits > QCOW2_MAX_RT_BYTES ||
	    q->rt_clusters == 0) {
		qcow2_seterr(q, "refcount table size (%u clusters) out of range", q->rt_clusters);
		return -EFBIG;
	}
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		qcow2_seterr(q, "too many snapshots (%u)", q->nb_snapshots);
		return -EFBIG;
	}
	r = qcow2_check_meta_off(q, q->rt_offset, (uint64_t)q->rt_clusters << q->cluster_bits,
				 "refcount table");
	if (r)
		return r;
	if (q->l1_size) {
		r = qcow2_check_meta_off(q, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
		if (r)
			return r;
		uint64_t a0 = q->l1_offset, a1 = a0 + (uint64_t)q->l1_size * 8;
		uint64_t b0 = q->rt_offset, b1 = b0 + ((uint64_t)q->rt_clusters << q->cluster_bits);

		if (a0 < b1 && b0 < a1) {
			qcow2_seterr(q, "L1 table overlaps the refcount table");
			return -EINVAL;
		}
	}
	if (q->nb_snapshots && (q->snapshots_offset % q->cluster_size || !q->snapshots_offset)) {
		qcow2_seterr(q, "snapshot table offset unaligned");
		return -EINVAL;
	}
	return 0;
}

int qcow2_load_tables(struct qcow2 *q)
{
	size_t l1_bytes = (size_t)q->l1_size * 8;
	size_t l1_alloc = (l1_bytes + QCOW2_SECTOR - 1) / QCOW2_SECTOR * QCOW2_SECTOR;
	size_t rt_bytes = (size_t)q->rt_clusters << q->cluster_bits;
	int r;

	q->l1 = calloc(1, l1_alloc ? l1_alloc : QCOW2_SECTOR);
	q->l1_dirty = calloc(1, (l1_alloc / QCOW2_SECTOR + 64) / 8 + 8);
	q->rt_entries = rt_bytes / 8;
	q->rt = calloc(1, rt_bytes);
	q->rt_dirty = calloc(1, (rt_bytes / QCOW2_SECTOR + 64) / 8 + 8);
	if (!q->l1 || !q->rt || !q->l1_dirty || !q->rt_dirty)
		return -ENOMEM;
	if (l1_bytes) {
		r = fio_pread(q->f, q->l1, l1_bytes, q->l1_offset);
		if (r)
			return r;
	}
	r = fio_pread(q->f, q->rt, rt_bytes, q->rt_offset);
	if (r)
		return r;
	return 0;
}

/* Rewrite one fixed header field from q's state (never the extension area). */
int qcow2_write_header_field(struct qcow2 *q, unsigned int off, unsigned int len)
{
	uint8_t b[12];
	struct fio_req req = { b, off, len };

	switch (off) {
	case HDR_RT_OFFSET: /* with the cluster count when len is 12: one sector, one write */
		put_be64(b, q->rt_offset);
		put_be32(b + 8, q->rt_clusters);
		break;
	case HDR_RT_CLUSTERS:
		put_be32(b, q->rt_clusters);
		break;
	case HDR_INCOMPAT:
		put_be64(b, q->incompat);
		break;
	case HDR_AUTOCLEAR:
		put_be64(b, q->autoclear);
		break;
	default:
		return -EINVAL;
	}
	memcpy(q->hdr + off, b, len);
	return qcow2_meta_submit(q, &req, 1, false);
}

int qcow2_set_backing(struct qcow2 *q, const char *name, const char *fmt)
{
	size_t blen = name ? strlen(name) : 0, flen = fmt ? strlen(fmt) : 0, p, src;
	uint8_t *h;
	char *nb = NULL;
	int r;

	if (blen > QCOW2_MAX_BACKING_NAME || flen >= sizeof(q->backing_fmt) || (name && !blen) ||
	    (fmt && !name))
		return -EINVAL;
	if (name && !(nb = strdup(name)))
		return -ENOMEM;
	h = calloc(1, q->cluster_size);
	if (!h) {
		free(nb);
		return -ENOMEM;
	}
	pthread_mutex_lock(&q->lock);
	r = q->ro ? -EROFS : 0;
	memcpy(h, q->hdr, q->header_length);
	/* Every extension but the backing format, as it was (checked at open). */
	for (p = src = q->header_length; !r;) {
		uint32_t type = be32_at(q->hdr + src), len = be32_at(q->hdr + src + 4);
		size_t n = 8 + (((size_t)len + 7) & ~(size_t)7);

		if (type == EXT_END)
			break;
		if (type != EXT_BACKING_FMT) {
			memcpy(h + p, q->hdr + src, n);
			p += n;
		}
		src += n;
	}
	if (!r && flen && p + 8 + ((flen + 7) & ~(size_t)7) + 8 + blen > q->cluster_size)
		r = -ENOSPC;
	if (!r && flen) {
		put_be32(h + p, EXT_BACKING_FMT);
		put_be32(h + p + 4, (uint32_t)flen);
		memcpy(h + p + 8, fmt, flen);
		p += 8 + ((flen + 7) & ~(size_t)7);
	}
	p += 8; /* the end marker: zeros */
	if (!r && p + blen > q->cluster_size)
		r = -ENOSPC;
	if (!r) {
		put_be64(h + HDR_BACKING_OFF, blen ? p : 0);
		put_be32(h + HDR_BACKING_SIZE, (uint32_t)blen);
		memcpy(h + p, name ? name : "", blen);
		p += blen;
	}
	if (!r) {
		/* One write of what changed (the file may end inside cluster 0). */
		struct fio_req req = { h, 0, (uint32_t)(p > q->hdr_len ? p : q->hdr_len) };

		r = qcow2_meta_submit(q, &req, 1, true);
	}
	if (!r) {
		/* q->hdr has room for the whole cluster. */
		if (p > q->hdr_len)
			q->hdr_len = p;
		memcpy(q->hdr, h, q->cluster_size);
		free(q->backing_name);
		q->backing_name = nb;
		nb = NULL;
		snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s", fmt ? fmt : "");
	}
	pthread_mutex_unlock(&q->lock);
	free(h);
	free(nb);
	return r;
}
