// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Backing files: opened read-only, only when the policy allows the resolved
 * path, with a bounded chain depth and loop detection by (device, inode).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "qcow2/qcow2_int.h"

struct chain_id {
	dev_t dev;
	ino_t ino;
};

static int resolve(struct qcow2 *q, char *out)
{
	char joined[PATH_MAX * 2];
	const char *name = q->backing_name;

	if (name[0] != '/' && q->path) {
		const char *slash = strrchr(q->path, '/');

		if (slash)
			snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - q->path), q->path,
				 name);
		else
			snprintf(joined, sizeof(joined), "%s", name);
		name = joined;
	}
	if (!realpath(name, out)) {
		int e = -errno;

		qcow2_seterr(q, "backing file %s: %s", q->backing_name, strerror(-e));
		return e;
	}
	return 0;
}

int qcow2_open_backing(struct qcow2 *q, const struct qcow2_opts *o, unsigned int depth,
		       const void *chain, int chain_n)
{
	unsigned int max = o->backing_depth ? o->backing_depth : QCOW2_DEFAULT_BACKING_DEPTH;
	const struct chain_id *ch = chain;
	struct chain_id *nch = NULL;
	char rp[PATH_MAX], dir[PATH_MAX];
	const char *fmt = q->backing_fmt;
	bool probed = false;
	struct stat st;
	int r;

	if (o->backing == QCOW2_BACKING_DENY) {
		qcow2_seterr(q, "image has a backing file (%s) but backing files are not allowed",
			     q->backing_name);
		return -EPERM;
	}
	if (max > QCOW2_MAX_BACKING_DEPTH)
		max = QCOW2_MAX_BACKING_DEPTH;
	if (depth >= max) {
		qcow2_seterr(q, "backing chain longer than %u images", max);
		return -ELOOP;
	}
	r = resolve(q, rp);
	if (r)
		return r;
	if (o->backing == QCOW2_BACKING_DIR) {
		size_t dl;

		if (!o->backing_dir || !realpath(o->backing_dir, dir)) {
			qcow2_seterr(q, "allowed backing directory is not set or does not exist");
			return -EPERM;
		}
		dl = strlen(dir);
		if (strncmp(rp, dir, dl) || (rp[dl] != '/' && !(dl == 1 && dir[0] == '/'))) {
			qcow2_seterr(q, "backing file %s is outside the allowed directory %s", rp,
				     dir);
			return -EPERM;
		}
	}
	if (stat(rp, &st) || !S_ISREG(st.st_mode)) {
		qcow2_seterr(q, "backing file %s is not a regular file", rp);
		return -EINVAL;
	}
	for (int i = 0; i < chain_n; i++) {
		if (ch[i].dev == st.st_dev && ch[i].ino == st.st_ino) {
			qcow2_seterr(q, "backing file loop at %s", rp);
			return -ELOOP;
		}
	}
	if (!fmt[0]) {
		uint8_t m[4] = { 0 };
		FILE *fp;

		if (o->backing_no_probe) {
			qcow2_seterr(q, "backing file %s has no format and probing is disabled",
				     rp);
			return -EINVAL;
		}
		fp = fopen(rp, "rb");
		if (!fp || fread(m, 1, 4, fp) != 4) {
			/* Short files are raw. */
		}
		if (fp)
			fclose(fp);
		fmt = be32_at(m) == QCOW2_MAGIC ? "qcow2" : "raw";
		probed = true;
	}
	if (!strcmp(fmt, "raw")) {
		r = fio_open_posix(&q->braw, rp, FIO_RDONLY);
		if (!r)
			r = fio_size(q->braw, &q->bsize);
		if (r)
			qcow2_seterr(q, "backing file %s: %s", rp, strerror(-r));
		return r;
	}
	if (strcmp(fmt, "qcow2")) {
		qcow2_seterr(q, "backing format '%s' is not supported", fmt);
		return -ENOTSUP;
	}
	nch = malloc(sizeof(*nch) * (chain_n + 1));
	if (!nch)
		return -ENOMEM;
	if (chain_n)
		memcpy(nch, ch, sizeof(*nch) * chain_n);
	nch[chain_n] = (struct chain_id){ st.st_dev, st.st_ino };

	struct qcow2_opts bo = *o;
	char sub[256];

	bo.readonly = true;
	bo.file = NULL;
	bo.ignore_backing = false;
	/*
	 * A probed qcow2 may be a raw disk whose guest wrote a qcow2 header:
	 * it must not reach further files. Name the format to allow chains.
	 */
	if (probed)
		bo.backing = QCOW2_BACKING_DENY;
	sub[0] = 0;
	r = qcow2_open_internal(&q->bq, rp, &bo, depth + 1, nch, chain_n + 1, sub, sizeof(sub));
	free(nch);
	if (r) {
		qcow2_seterr(q, "backing file %s: %s", rp, sub[0] ? sub : strerror(-r));
		return r;
	}
	q->bsize = qcow2_size(q->bq);
	return 0;
}

int qcow2_backing_read(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
	size_t n = 0;

	if (off < q->bsize)
		n = q->bsize - off < len ? q->bsize - off : len;
	memset((char *)buf + n, 0, len - n);
	if (!n)
		return 0;
	if (q->braw)
		return fio_pread(q->braw, buf, n, off);
	return qcow2_pread(q->bq, buf, n, off);
}

int qcow2_chain_self(const char *path, void *out)
{
	struct chain_id *c = out;
	struct stat st;

	if (!path || stat(path, &st))
		return -1;
	*c = (struct chain_id){ st.st_dev, st.st_ino };
	return 0;
}

size_t qcow2_chain_id_size(void)
{
	return sizeof(struct chain_id);
}
