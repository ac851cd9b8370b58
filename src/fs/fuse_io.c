// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * FUSE opcodes on open files: OPEN/RELEASE, READ/WRITE straight between the
 * host file and the guest's buffers, directories, FALLOCATE/LSEEK/
 * COPY_FILE_RANGE, xattrs and the DAX window (SETUPMAPPING/REMOVEMAPPING).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <linux/limits.h>

#include "fs/fuse_priv.h"
#include "iov.h"
#include "util.h"

#define IOV_STACK   64
#define IOV_LIMIT   1024	  /* IOV_MAX */
#define READDIR_MAX (128u * 1024) /* Linux asks for one page */
#define XATTR_MAX   (64u * 1024)
#define COPY_MAX    (1u << 30)

ssize_t fuse_op_open(struct fuse_req *r)
{
	struct fuse_open_in in;
	struct fuse_open_out o;
	struct fuse_iref n;
	uint64_t fh;
	ssize_t ret;
	int flags, fd;

	memcpy(&in, r->arg, sizeof(in));
	flags = fuse_open_flags(in.flags, r->s->o.readonly);
	if (flags < 0)
		return flags;
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	fd = n.type == S_IFDIR ? -EISDIR : fuse_reopen(r->s, &n, flags);
	fuse_ino_put(r->s, &n);
	if (fd < 0)
		return fd;
	/* Writes through this handle must not keep a set-id bit (fuse_kill_setid). */
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
		ret = fuse_kill_setid(r->s, fd);
		if (ret) {
			close(fd);
			return ret;
		}
	}
	ret = fuse_fh_new(r->s, fd, false, &fh);
	if (ret) {
		close(fd);
		return ret;
	}
	memset(&o, 0, sizeof(o));
	o.fh = fh;
	if (r->s->o.cache == FS_CACHE_NONE)
		o.open_flags |= FOPEN_DIRECT_IO;
	else if (r->s->o.cache == FS_CACHE_ALWAYS)
		o.open_flags |= FOPEN_KEEP_CACHE;
	return fuse_reply(r, &o, sizeof(o));
}

ssize_t fuse_op_opendir(struct fuse_req *r)
{
	struct fuse_open_out o;
	struct fuse_iref n;
	uint64_t fh;
	ssize_t ret;
	int fd;

	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	fd = n.type != S_IFDIR ? -ENOTDIR : fuse_reopen(r->s, &n, O_RDONLY);
	fuse_ino_put(r->s, &n);
	if (fd < 0)
		return fd;
	ret = fuse_fh_new(r->s, fd, true, &fh);
	if (ret) {
		close(fd);
		return ret;
	}
	memset(&o, 0, sizeof(o));
	o.fh = fh;
	if (r->s->o.cache == FS_CACHE_ALWAYS)
		o.open_flags |= FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE;
	return fuse_reply(r, &o, sizeof(o));
}

static ssize_t do_release(struct fuse_req *r, bool dir)
{
	struct fuse_release_in in;
	int ret;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_fh_release(r->s, in.fh, dir);
	return ret ? ret : fuse_reply(r, NULL, 0);
}

ssize_t fuse_op_release(struct fuse_req *r)
{
	return do_release(r, false);
}

ssize_t fuse_op_releasedir(struct fuse_req *r)
{
	return do_release(r, true);
}

ssize_t fuse_op_fsync(struct fuse_req *r)
{
	struct fuse_fsync_in in;
	struct fuse_href h;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_fh_get(r->s, in.fh, r->hdr.opcode == FUSE_FSYNCDIR, &h);
	if (ret)
		return ret;
	if (in.fsync_flags & FUSE_FSYNC_FDATASYNC)
		ret = fdatasync(h.fd);
	else
		ret = fsync(h.fd);
	ret = ret < 0 ? -errno : fuse_reply(r, NULL, 0);
	fuse_fh_put(r->s, &h);
	return ret;
}

ssize_t fuse_op_flush(struct fuse_req *r)
{
	struct fuse_flush_in in;
	struct fuse_href h;
	ssize_t ret;
	int fd;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_fh_get(r->s, in.fh, false, &h);
	if (ret)
		return ret;
	/* close() of a duplicate runs the file system's flush (NFS-backed shares). */
	fd = dup(h.fd);
	ret = fd < 0 ? -errno : (close(fd) < 0 ? -errno : 0);
	fuse_fh_put(r->s, &h);
	return ret ? ret : fuse_reply(r, NULL, 0);
}

ssize_t fuse_op_read(struct fuse_req *r)
{
	struct iovec stackv[IOV_STACK], *v = stackv;
	struct fuse_out_header oh;
	struct fuse_read_in in;
	struct fuse_href h;
	unsigned int cnt, max = r->nout < IOV_LIMIT ? r->nout : IOV_LIMIT;
	size_t size;
	ssize_t ret, n;

	memcpy(&in, r->arg, sizeof(in));
	if (in.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	size = r->room - sizeof(oh);
	if (in.size < size)
		size = in.size;
	ret = fuse_fh_get(r->s, in.fh, false, &h);
	if (ret)
		return ret;
	if (max > IOV_STACK) {
		v = malloc(max * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/*
	 * Straight into the guest's buffers, after the reply header. More than
	 * IOV_MAX segments fails (no queue is that long) instead of reading less.
	 */
	ret = iov_range(r->out, r->nout, sizeof(oh), size, v, max);
	if (ret < 0) {
		ret = -EINVAL;
		goto out;
	}
	cnt = (unsigned int)ret;
	n = cnt ? preadv(h.fd, v, (int)cnt, (off_t)in.offset) : 0;
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	oh.len = (uint32_t)(sizeof(oh) + (size_t)n);
	oh.error = 0;
	oh.unique = r->hdr.unique;
	iov_from_buf(r->out, r->nout, 0, &oh, sizeof(oh));
	ret = oh.len;
out:
	if (v != stackv)
		free(v);
	fuse_fh_put(r->s, &h);
	return ret;
}

ssize_t fuse_op_write(struct fuse_req *r)
{
	struct iovec stackv[IOV_STACK], *v = stackv;
	struct fuse_write_in in;
	struct fuse_write_out o;
	struct fuse_href h;
	size_t off = sizeof(struct fuse_in_header) + sizeof(in);
	unsigned int cnt, max = r->nin < IOV_LIMIT ? r->nin : IOV_LIMIT;
	ssize_t ret, n;

	memcpy(&in, r->arg, sizeof(in));
	if (in.size > r->arglen - sizeof(in))
		return -EINVAL; /* the data must really be in the chain */
	if (in.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	ret = fuse_fh_get(r->s, in.fh, false, &h);
	if (ret)
		return ret;
	if (max > IOV_STACK) {
		v = malloc(max * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			goto out;
		}
	}
	/* Straight from the guest's buffers: the data was never gathered. */
	ret = iov_range(r->in, r->nin, off, in.size, v, max);
	if (ret < 0) {
		ret = -EINVAL;
		goto out;
	}
	cnt = (unsigned int)ret;
	n = cnt ? pwritev(h.fd, v, (int)cnt, (off_t)in.offset) : 0;
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.size = (uint32_t)n;
	ret = fuse_reply(r, &o, sizeof(o));
out:
	if (v != stackv)
		free(v);
	fuse_fh_put(r->s, &h);
	return ret;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* One directory entry into @buf at @used; returns its size, 0 if it does not fit. */
static size_t put_dirent(struct fuse_req *r, uint8_t *buf, size_t used, size_t cap, int dirfd,
			 const struct linux_dirent64 *de, bool plus)
{
	size_t namelen = strnlen(de->d_name, NAME_MAX + 1);
	size_t sz = plus ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen)
			 : FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
	struct fuse_dirent d;
	uint8_t *p = buf + used;

	if (namelen > NAME_MAX || sz > cap - used)
		return 0;
	memset(p, 0, sz);
	if (plus) {
		struct fuse_entry_out e;
		bool dot = (namelen == 1 && de->d_name[0] == '.') ||
			   (namelen == 2 && de->d_name[0] == '.' && de->d_name[1] == '.');
		struct stat st;
		uint64_t id;
		uint32_t gen;

		/* A failed lookup (raced unlink, descriptor budget) is nodeid 0: no reference. */
		if (!dot && fuse_ino_lookup(r->s, dirfd, de->d_name, &id, &gen, &st) == 0) {
			fuse_fill_entry(r->s, &e, id, gen, &st);
		} else {
			memset(&e, 0, sizeof(e));
			e.attr.ino = de->d_ino;
			e.attr.mode = (uint32_t)de->d_type << 12;
		}
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	d.ino = de->d_ino;
	d.off = (uint64_t)de->d_off;
	d.namelen = (uint32_t)namelen;
	d.type = de->d_type;
	memcpy(p, &d, FUSE_NAME_OFFSET);
	memcpy(p + FUSE_NAME_OFFSET, de->d_name, namelen);
	return sz;
}

/*
 * The handle's buffer of entries read from the host, within the share's
 * budget of FUSE_SRV_MAX_DIRBUFS: held while a directory is being read,
 * freed as soon as nothing in it waits for the next READDIR.
 */
static int dbuf_get(struct fuse_server *s, struct fuse_handle *hd)
{
	bool over;

	if (hd->dbuf)
		return 0;
	pthread_mutex_lock(&s->lock);
	over = s->ndirbufs >= FUSE_SRV_MAX_DIRBUFS;
	if (!over)
		s->ndirbufs++;
	pthread_mutex_unlock(&s->lock);
	if (over) {
		fuse_over_budget(s, FUSE_BUDGET_DIRBUFS);
		return -ENOMEM;
	}
	hd->dbuf = malloc(FUSE_SRV_DENTS_BUF);
	if (hd->dbuf)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->ndirbufs--;
	pthread_mutex_unlock(&s->lock);
	return -ENOMEM;
}

static void dbuf_put(struct fuse_server *s, struct fuse_handle *hd)
{
	if (!hd->dbuf || hd->dpos < hd->dlen)
		return;
	free(hd->dbuf);
	hd->dbuf = NULL;
	hd->dlen = hd->dpos = 0;
	pthread_mutex_lock(&s->lock);
	s->ndirbufs--;
	pthread_mutex_unlock(&s->lock);
}

static ssize_t do_readdir(struct fuse_req *r, bool plus)
{
	struct fuse_read_in in;
	struct fuse_handle *hd;
	struct fuse_href h;
	pthread_mutex_t *lock;
	uint8_t *buf = NULL;
	size_t cap, used = 0;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	if (in.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	cap = r->room - sizeof(struct fuse_out_header);
	if (in.size < cap)
		cap = in.size;
	if (cap > READDIR_MAX)
		cap = READDIR_MAX;
	ret = fuse_fh_get(r->s, in.fh, true, &h);
	if (ret)
		return ret;
	buf = malloc(cap ? cap : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	lock = fuse_fh_lock(r->s, h.idx);
	hd = container_of(lock, struct fuse_handle, lock);
	pthread_mutex_lock(lock);
	ret = dbuf_get(r->s, hd);
	if (ret)
		goto unlock;
	/* d_off cookies from getdents64 are lseek positions: offsets survive across calls. */
	if (!hd->dvalid || in.offset != hd->dnext) {
		hd->dlen = hd->dpos = 0;
		hd->dvalid = false;
		if (lseek(h.fd, (off_t)in.offset, SEEK_SET) < 0) {
			ret = -errno;
			goto unlock;
		}
		hd->dnext = in.offset;
		hd->dvalid = true;
	}
	for (;;) {
		const struct linux_dirent64 *de;
		size_t sz;

		if (hd->dpos >= hd->dlen) {
			long n = syscall(SYS_getdents64, h.fd, hd->dbuf, FUSE_SRV_DENTS_BUF);

			if (n < 0) {
				ret = used ? 0 : -errno;
				hd->dvalid = false;
				break;
			}
			if (n == 0)
				break;
			hd->dlen = (size_t)n;
			hd->dpos = 0;
		}
		de = (const void *)(hd->dbuf + hd->dpos);
		sz = put_dirent(r, buf, used, cap, h.fd, de, plus);
		if (!sz)
			break; /* full: the rest waits in dbuf for the next call */
		used += sz;
		hd->dpos += de->d_reclen;
		hd->dnext = (uint64_t)de->d_off;
	}
unlock:
	dbuf_put(r->s, hd);
	pthread_mutex_unlock(lock);
	if (!ret)
		ret = fuse_reply(r, buf, used);
out:
	free(buf);
	fuse_fh_put(r->s, &h);
	return ret;
}

ssize_t fuse_op_readdir(struct fuse_req *r)
{
	return do_readdir(r, false);
}

ssize_t fuse_op_readdirplus(struct fuse_req *r)
{
	return do_readdir(r, true);
}

ssize_t fuse_op_fallocate(struct fuse_req *r)
{
	struct fuse_fallocate_in in;
	struct fuse_href h;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	if (in.offset > (uint64_t)INT64_MAX || in.length > (uint64_t)INT64_MAX)
		return -EINVAL;
	ret = fuse_fh_get(r->s, in.fh, false, &h);
	if (ret)
		return ret;
	ret = fallocate(h.fd, (int)in.mode, (off_t)in.offset, (off_t)in.length) < 0
		  ? -errno
		  : fuse_reply(r, NULL, 0);
	fuse_fh_put(r->s, &h);
	return ret;
}

ssize_t fuse_op_lseek(struct fuse_req *r)
{
	struct fuse_lseek_in in;
	struct fuse_lseek_out o;
	struct fuse_href h;
	ssize_t ret;
	off_t pos;

	memcpy(&in, r->arg, sizeof(in));
	if ((in.whence != SEEK_DATA && in.whence != SEEK_HOLE) || in.offset > (uint64_t)INT64_MAX)
		return -EINVAL;
	ret = fuse_fh_get(r->s, in.fh, false, &h);
	if (ret)
		return ret;
	pos = lseek(h.fd, (off_t)in.offset, (int)in.whence);
	if (pos < 0) {
		ret = -errno;
	} else {
		o.offset = (uint64_t)pos;
		ret = fuse_reply(r, &o, sizeof(o));
	}
	fuse_fh_put(r->s, &h);
	return ret;
}

ssize_t fuse_op_copy_file_range(struct fuse_req *r)
{
	struct fuse_copy_file_range_in in;
	struct fuse_write_out o;
	struct fuse_href hi, ho;
	loff_t oi, oo;
	size_t len;
	ssize_t ret, n;

	memcpy(&in, r->arg, sizeof(in));
	if (in.flags || in.off_in > (uint64_t)INT64_MAX || in.off_out > (uint64_t)INT64_MAX)
		return -EINVAL;
	ret = fuse_fh_get(r->s, in.fh_in, false, &hi);
	if (ret)
		return ret;
	ret = fuse_fh_get(r->s, in.fh_out, false, &ho);
	if (ret) {
		fuse_fh_put(r->s, &hi);
		return ret;
	}
	len = in.len < COPY_MAX ? (size_t)in.len : COPY_MAX; /* the reply counts in 32 bits */
	oi = (loff_t)in.off_in;
	oo = (loff_t)in.off_out;
	n = copy_file_range(hi.fd, &oi, ho.fd, &oo, len, 0);
	if (n < 0) {
		ret = -errno;
	} else {
		memset(&o, 0, sizeof(o));
		o.size = (uint32_t)n;
		ret = fuse_reply(r, &o, sizeof(o));
	}
	fuse_fh_put(r->s, &ho);
	fuse_fh_put(r->s, &hi);
	return ret;
}

/*
 * xattrs go through "/proc/self/fd/N" of the node's own O_PATH descriptor:
 * the f*xattr calls refuse O_PATH descriptors, and the magic link reaches
 * exactly that inode (symlinks and special files included, none opened).
 */
static void proc_path(char *buf, size_t n, int fd)
{
	snprintf(buf, n, "/proc/self/fd/%d", fd);
}

static int xattr_name(const uint8_t *p, size_t len, const char **name, size_t *used)
{
	const uint8_t *nul = memchr(p, 0, len);

	if (!nul || nul == p)
		return -EINVAL;
	if ((size_t)(nul - p) > XATTR_NAME_MAX)
		return -ERANGE;
	*name = (const char *)p;
	*used = (size_t)(nul - p) + 1;
	return 0;
}

static bool has_prefix(const char *name, const char *prefix)
{
	return !strncmp(name, prefix, strlen(prefix));
}

/*
 * The guest may set or remove "user." attributes. security.* (LSM labels
 * that host policy trusts, IMA/EVM) and trusted.* (overlayfs metadata on the
 * host) only with allow_priv_xattr; security.capability (file capabilities:
 * privileges for host users, like a set-uid bit) also needs allow_setid.
 * Never system.* (POSIX ACLs are not negotiated: the guest does not send them).
 */
static bool xattr_writable(const struct fuse_server *s, const char *name)
{
	if (has_prefix(name, "user."))
		return true;
	if (!s->o.allow_priv_xattr)
		return false;
	if (!strcmp(name, "security.capability"))
		return s->o.allow_setid;
	return has_prefix(name, "security.") || has_prefix(name, "trusted.");
}

/* trusted.* is for host root's eyes (CAP_SYS_ADMIN): hidden unless allow_priv_xattr. */
static bool xattr_hidden(const struct fuse_server *s, const char *name)
{
	return !s->o.allow_priv_xattr && has_prefix(name, "trusted.");
}

/* Drop the hidden names from a list of NUL-terminated names; returns the new length. */
static size_t xattr_filter(const struct fuse_server *s, char *buf, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		size_t n = MIN(strnlen(buf + in, len - in) + 1, len - in);

		if (!xattr_hidden(s, buf + in)) {
			memmove(buf + out, buf + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

static ssize_t do_getxattr(struct fuse_req *r, bool list)
{
	struct fuse_getxattr_in in;
	struct fuse_getxattr_out o;
	struct fuse_iref n;
	const char *name = NULL;
	char path[32];
	size_t used, bufsz;
	char *buf = NULL;
	ssize_t ret, len;

	memcpy(&in, r->arg, sizeof(in));
	if (!list) {
		ret = xattr_name(r->arg + sizeof(in), r->arglen - sizeof(in), &name, &used);
		if (ret)
			return ret;
		if (xattr_hidden(r->s, name))
			return -ENODATA;
	}
	if (in.size > XATTR_MAX)
		in.size = XATTR_MAX;
	if (in.size == 0 && r->room < sizeof(struct fuse_out_header) + sizeof(o))
		return -ERANGE;
	/* A list is read whole (at most XATTR_LIST_MAX) and filtered before it is sized. */
	bufsz = list ? XATTR_MAX : in.size;
	if (bufsz) {
		buf = malloc(bufsz);
		if (!buf)
			return -ENOMEM;
	}
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		goto out;
	proc_path(path, sizeof(path), n.fd);
	len = list ? listxattr(path, buf, bufsz) : getxattr(path, name, buf, bufsz);
	fuse_ino_put(r->s, &n);
	if (len >= 0 && list)
		len = (ssize_t)xattr_filter(r->s, buf, (size_t)len);
	if (len < 0) {
		ret = -errno;
	} else if (list && in.size && (size_t)len > in.size) {
		ret = -ERANGE;
	} else if (in.size == 0) {
		memset(&o, 0, sizeof(o));
		o.size = (uint32_t)len;
		ret = fuse_reply(r, &o, sizeof(o));
	} else {
		ret = fuse_reply(r, buf, (size_t)len);
	}
out:
	free(buf);
	return ret;
}

ssize_t fuse_op_getxattr(struct fuse_req *r)
{
	return do_getxattr(r, false);
}

ssize_t fuse_op_listxattr(struct fuse_req *r)
{
	return do_getxattr(r, true);
}

ssize_t fuse_op_setxattr(struct fuse_req *r)
{
	struct fuse_setxattr_in in;
	struct fuse_iref n;
	const char *name;
	size_t hdr = FUSE_COMPAT_SETXATTR_IN_SIZE, used;
	char path[32];
	ssize_t ret;

	pthread_mutex_lock(&r->s->lock);
	if (r->s->flags & FUSE_SETXATTR_EXT)
		hdr = sizeof(in);
	pthread_mutex_unlock(&r->s->lock);
	if (r->arglen < hdr)
		return -EINVAL;
	memset(&in, 0, sizeof(in));
	memcpy(&in, r->arg, hdr);
	ret = xattr_name(r->arg + hdr, r->arglen - hdr, &name, &used);
	if (ret)
		return ret;
	if (in.size > XATTR_MAX || in.size > r->arglen - hdr - used)
		return -EINVAL;
	if (in.flags & ~(uint32_t)(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (!xattr_writable(r->s, name))
		return -EPERM;
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	proc_path(path, sizeof(path), n.fd);
	ret = setxattr(path, name, r->arg + hdr + used, in.size, (int)in.flags) < 0
		  ? -errno
		  : fuse_reply(r, NULL, 0);
	fuse_ino_put(r->s, &n);
	return ret;
}

ssize_t fuse_op_removexattr(struct fuse_req *r)
{
	struct fuse_iref n;
	const char *name;
	char path[32];
	size_t used;
	ssize_t ret;

	ret = xattr_name(r->arg, r->arglen, &name, &used);
	if (ret)
		return ret;
	if (!xattr_writable(r->s, name))
		return -EPERM;
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	proc_path(path, sizeof(path), n.fd);
	ret = removexattr(path, name) < 0 ? -errno : fuse_reply(r, NULL, 0);
	fuse_ino_put(r->s, &n);
	return ret;
}

static bool dax_on(const struct fuse_server *s)
{
	return s->dax && s->o.dax_window && s->o.dax != FS_DAX_NEVER;
}

/* [moffset, moffset+len) page aligned, non-empty, inside the window, no overflow. */
static bool window_range_ok(const struct fuse_server *s, uint64_t moffset, uint64_t len)
{
	return len && !(moffset % FUSE_SRV_DAX_ALIGN) && !(len % FUSE_SRV_DAX_ALIGN) &&
	       moffset < s->o.dax_window && len <= s->o.dax_window - moffset;
}

ssize_t fuse_op_setupmapping(struct fuse_req *r)
{
	struct fuse_setupmapping_in in;
	struct fuse_server *s = r->s;
	struct fuse_iref n;
	bool writable;
	ssize_t ret;
	int fd;

	if (!dax_on(s))
		return -ENOSYS;
	memcpy(&in, r->arg, sizeof(in));
	writable = in.flags & FUSE_SETUPMAPPING_FLAG_WRITE;
	if (writable && s->o.readonly)
		return -EROFS;
	if (!window_range_ok(s, in.moffset, in.len) || in.foffset % FUSE_SRV_DAX_ALIGN ||
	    in.len > (uint64_t)INT64_MAX || in.foffset > (uint64_t)INT64_MAX - in.len)
		return -EINVAL;
	/* Linux always sends fh = -1: the mapping is by node id. */
	ret = fuse_ino_get(s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	fd = n.type == S_IFREG ? fuse_reopen(s, &n, writable ? O_RDWR : O_RDONLY) : -EINVAL;
	fuse_ino_put(s, &n);
	if (fd < 0)
		return fd;
	ret = writable ? fuse_kill_setid(s, fd) : 0;
	if (!ret)
		ret = s->dax->map(s->dax_ctx, fd, in.foffset, in.moffset, in.len, writable);
	close(fd);
	return ret < 0 ? ret : fuse_reply(r, NULL, 0);
}

ssize_t fuse_op_removemapping(struct fuse_req *r)
{
	struct fuse_removemapping_in in;
	struct fuse_removemapping_one one;
	struct fuse_server *s = r->s;
	const uint8_t *p = r->arg + sizeof(in);
	ssize_t ret = 0;

	if (!dax_on(s))
		return -ENOSYS;
	memcpy(&in, r->arg, sizeof(in));
	/* FUSE_REMOVEMAPPING_MAX_ENTRY: one 4 KiB page of entries. */
	if (in.count > 4096 / sizeof(one) ||
	    (size_t)in.count * sizeof(one) > r->arglen - sizeof(in))
		return -EINVAL;
	/* Entries start at byte 44 of the request: unaligned, copied one by one. */
	for (uint32_t i = 0; i < in.count; i++) {
		memcpy(&one, p + i * sizeof(one), sizeof(one));
		if (!window_range_ok(s, one.moffset, one.len))
			return -EINVAL;
	}
	for (uint32_t i = 0; i < in.count; i++) {
		int err;

		memcpy(&one, p + i * sizeof(one), sizeof(one));
		err = s->dax->unmap(s->dax_ctx, one.moffset, one.len);
		if (err < 0 && !ret)
			ret = err;
	}
	return ret < 0 ? ret : fuse_reply(r, NULL, 0);
}
