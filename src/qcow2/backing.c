// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Backing files, which a hostile image names: opened read-only, only as the
 * policy allows, with the format the image's header states (never probed), a
 * bounded chain depth and loop detection by (device, inode).
 *
 * QCOW2_BACKING_DIR opens the file relative to a descriptor of backing_dir with
 * openat2(RESOLVE_BENEATH): symlinks and ".." are followed only while they stay
 * inside, and nothing can be swapped in between a check and the open. Every
 * image of the chain obeys the same rule. A link whose name is exactly one of
 * opts->trusted (files minivmm made itself: frozen snapshot images) and whose
 * format is qcow2 opens that file, not a symlink, whatever the policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qcow2/qcow2_int.h"

struct chain_id {
	dev_t dev;
	ino_t ino;
};

/* A refusal by policy, with the caller's advice on how its user allows it. */
static void __attribute__((format(printf, 3, 4)))
refuse(struct qcow2 *q, const struct qcow2_opts *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (o->policy_hint)
		qcow2_seterr(q, "%s; %s", msg, o->policy_hint);
	else
		qcow2_seterr(q, "%s", msg);
}

static bool is_trusted(const struct qcow2 *q, const struct qcow2_opts *o)
{
	if (!o->trusted || strcmp(q->backing_fmt, "qcow2") || q->backing_name[0] != '/')
		return false;
	for (const char *const *t = o->trusted; *t; t++)
		if (!strcmp(*t, q->backing_name))
			return true;
	return false;
}

/* The referring image's directory joined with a relative name (QEMU's rule). */
static int candidate(const struct qcow2 *q, char *out, size_t n)
{
	const char *name = q->backing_name, *slash = q->path ? strrchr(q->path, '/') : NULL;
	int len;

	if (name[0] == '/' || !q->path)
		len = snprintf(out, n, "%s", name);
	else if (slash)
		len = snprintf(out, n, "%.*s/%s", (int)(slash - q->path), q->path, name);
	else
		len = snprintf(out, n, "%s", name);
	return len < 0 || (size_t)len >= n ? -ENAMETOOLONG : 0;
}

static int sys_openat2(int dfd, const char *path, struct open_how *how)
{
	return (int)syscall(SYS_openat2, dfd, path, how, sizeof(*how));
}

/*
 * QCOW2_BACKING_DIR: the candidate's directory part is resolved (realpath) only to
 * find the name relative to backing_dir; the open itself is confined by the kernel.
 * @child gets the path the next image of the chain resolves its own names against.
 */
static int open_beneath(struct qcow2 *q, const struct qcow2_opts *o, const char *cand, char *child,
			size_t clen)
{
	char rdir[PATH_MAX], rcand[PATH_MAX], *dup, *base, *slash;
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	const char *rel, *dir;
	size_t dl;
	int dfd, fd, e;

	if (!o->backing_dir || !realpath(o->backing_dir, rdir)) {
		refuse(q, o, "backing_dir %s: %s", o->backing_dir ? o->backing_dir : "(not set)",
		       o->backing_dir ? strerror(errno) : "backing files need one");
		return -EPERM;
	}
	dup = strdup(cand);
	if (!dup)
		return -ENOMEM;
	slash = strrchr(dup, '/');
	if (!slash) {
		base = dup;
		dir = ".";
	} else if (slash == dup) {
		base = dup + 1;
		dir = "/";
	} else {
		*slash = 0;
		base = slash + 1;
		dir = dup;
	}
	if (!realpath(dir, rcand)) {
		e = -errno;
		qcow2_seterr(q, "backing file %s: %s", q->backing_name, strerror(-e));
		free(dup);
		return e;
	}
	dl = strlen(rdir);
	if (dl == 1)
		dl = 0; /* backing_dir = / */
	if (strncmp(rcand, rdir, dl) || (rcand[dl] && rcand[dl] != '/') ||
	    (size_t)snprintf(child, clen, "%s/%s", strcmp(rcand, "/") ? rcand : "", base) >= clen) {
		refuse(q, o, "backing file %s is outside backing_dir %s", q->backing_name, rdir);
		free(dup);
		return -EPERM;
	}
	rel = child + dl + 1;
	dfd = open(rdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	fd = dfd < 0 ? -1 : sys_openat2(dfd, rel, &how);
	e = fd < 0 ? errno : 0;
	if (dfd >= 0)
		close(dfd);
	free(dup);
	if (fd >= 0)
		return fd;
	if (e == EXDEV) {
		refuse(q, o, "backing file %s resolves outside backing_dir %s", q->backing_name,
		       rdir);
		return -EPERM;
	}
	if (e == ENOSYS)
		qcow2_seterr(q, "backing files need openat2 (Linux 5.6 or later)");
	else
		qcow2_seterr(q, "backing file %s: %s", q->backing_name, strerror(e));
	return -e;
}

/* Open the backing file as the policy says; -errno with the reason set. */
static int open_backing_fd(struct qcow2 *q, const struct qcow2_opts *o, bool trusted, char *child,
			   size_t clen)
{
	char cand[PATH_MAX];
	int fd, r;

	if (!trusted && o->backing == QCOW2_BACKING_DENY) {
		refuse(q, o, "image has a backing file (%s) but backing files are not allowed",
		       q->backing_name);
		return -EPERM;
	}
	r = candidate(q, cand, sizeof(cand));
	if (r) {
		qcow2_seterr(q, "backing file name too long");
		return r;
	}
	if (!trusted && o->backing == QCOW2_BACKING_DIR)
		return open_beneath(q, o, cand, child, clen);
	/* Trusted names are the very file minivmm made; ANY is for trusted images only. */
	fd = open(cand, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (trusted ? O_NOFOLLOW : 0));
	if (fd < 0) {
		r = -errno;
		qcow2_seterr(q, "backing file %s: %s", cand, strerror(-r));
		return r;
	}
	snprintf(child, clen, "%s", cand);
	return fd;
}

int qcow2_open_backing(struct qcow2 *q, const struct qcow2_opts *o, unsigned int depth,
		       const void *chain, int chain_n)
{
	unsigned int max = o->backing_depth ? o->backing_depth : QCOW2_DEFAULT_BACKING_DEPTH;
	const struct chain_id *ch = chain;
	struct chain_id *nch = NULL;
	const char *fmt = q->backing_fmt[0] ? q->backing_fmt : "raw";
	char child[PATH_MAX];
	struct qcow2_opts bo;
	struct fio *f = NULL;
	uint8_t m[4] = { 0 };
	struct stat st;
	char sub[512];
	int fd, r;

	if (max > QCOW2_MAX_BACKING_DEPTH)
		max = QCOW2_MAX_BACKING_DEPTH;
	if (depth >= max) {
		qcow2_seterr(q, "backing chain longer than %u images", max);
		return -ELOOP;
	}
	fd = open_backing_fd(q, o, is_trusted(q, o), child, sizeof(child));
	if (fd < 0)
		return fd;
	/* O_NONBLOCK only kept a FIFO from blocking the open. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || fcntl(fd, F_SETFL, 0)) {
		qcow2_seterr(q, "backing file %s is not a regular file", q->backing_name);
		r = -EINVAL;
		goto fail;
	}
	for (int i = 0; i < chain_n; i++) {
		if (ch[i].dev == st.st_dev && ch[i].ino == st.st_ino) {
			qcow2_seterr(q, "backing file loop at %s", q->backing_name);
			r = -ELOOP;
			goto fail;
		}
	}
	/*
	 * No format in the header means raw (never probed), as for libvirt. A raw file
	 * that starts like a qcow2 image is refused: either a guest wrote that header
	 * into a raw disk, or the image lacks its format extension; neither may decide.
	 */
	if (!q->backing_fmt[0] && pread(fd, m, sizeof(m), 0) == sizeof(m) &&
	    be32_at(m) == QCOW2_MAGIC) {
		qcow2_seterr(q,
			     "backing file %s looks like qcow2 but the image does not name its "
			     "format: set it (qemu-img rebase -u -F qcow2 -b NAME IMAGE)",
			     q->backing_name);
		r = -EINVAL;
		goto fail;
	}
	if (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")) {
		qcow2_seterr(q, "backing format '%s' is not supported", fmt);
		r = -ENOTSUP;
		goto fail;
	}
	r = fio_from_fd(&f, fd, FIO_RDONLY);
	if (r)
		goto fail;
	fd = -1;
	if (!strcmp(fmt, "raw")) {
		q->braw = f;
		r = fio_size(q->braw, &q->bsize);
		if (r)
			qcow2_seterr(q, "backing file %s: %s", q->backing_name, strerror(-r));
		return r;
	}
	nch = malloc(sizeof(*nch) * (chain_n + 1));
	if (!nch) {
		fio_close(f);
		return -ENOMEM;
	}
	if (chain_n)
		memcpy(nch, ch, sizeof(*nch) * chain_n);
	nch[chain_n] = (struct chain_id){ st.st_dev, st.st_ino };
	bo = *o;
	bo.readonly = true;
	bo.file = f;
	bo.ignore_backing = false;
	sub[0] = 0;
	r = qcow2_open_internal(&q->bq, child, &bo, depth + 1, nch, chain_n + 1, sub, sizeof(sub));
	free(nch);
	if (r) {
		fio_close(f); /* the engine leaves a given file to its caller on failure */
		qcow2_seterr(q, "backing file %s: %s", q->backing_name,
			     sub[0] ? sub : strerror(-r));
		return r;
	}
	q->bsize = qcow2_size(q->bq);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return r;
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

int qcow2_backing_reopen_rw(struct qcow2 *q, int *fd, const char **path, bool *raw)
{
	struct fio *f = q->braw ? q->braw : q->bq ? q->bq->f : NULL;
	int old = fio_posix_fd(f);
	char proc[64];

	if (!f)
		return -ENOENT;
	if (old < 0)
		return -EOPNOTSUPP;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", old);
	*fd = open(proc, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*path = q->braw ? q->backing_name : q->bq->path;
	*raw = q->braw != NULL;
	return 0;
}
