// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * FUSE opcodes on names and attributes. Every name is one validated component
 * resolved below its parent's O_PATH descriptor (fuse_check_name,
 * fuse_open_beneath); nothing here builds a host path or follows a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <linux/limits.h>

#include "fs/fuse_priv.h"

/* Open flags a guest may pass through to the host (no O_DIRECT, O_NONBLOCK, ...). */
#define OPEN_FLAGS_OK (O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC | O_NOATIME)

int fuse_open_flags(uint32_t f, bool readonly)
{
	if ((f & O_ACCMODE) == O_ACCMODE)
		return -EINVAL;
	if (readonly && ((f & O_ACCMODE) != O_RDONLY || (f & O_TRUNC)))
		return -EROFS;
	return (int)(f & OPEN_FLAGS_OK);
}

/* The parent of a name: must be a directory node. */
static int get_dir(struct fuse_req *r, uint64_t nodeid, struct fuse_iref *d)
{
	int ret = fuse_ino_get(r->s, nodeid, d);

	if (ret)
		return ret;
	if (d->type != S_IFDIR) {
		fuse_ino_put(r->s, d);
		return -ENOTDIR;
	}
	return 0;
}

static ssize_t reply_entry(struct fuse_req *r, uint64_t id, uint32_t gen, const struct stat *st)
{
	struct fuse_entry_out e;

	fuse_fill_entry(r->s, &e, id, gen, st);
	return fuse_reply(r, &e, sizeof(e));
}

ssize_t fuse_op_lookup(struct fuse_req *r)
{
	struct fuse_iref d;
	const char *name;
	struct stat st;
	uint64_t id;
	uint32_t gen;
	size_t used;
	int ret;

	ret = fuse_check_name(r->arg, r->arglen, &name, &used);
	if (ret)
		return ret;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	ret = fuse_ino_lookup(r->s, d.fd, name, &id, &gen, &st);
	fuse_ino_put(r->s, &d);
	if (ret)
		return ret;
	return reply_entry(r, id, gen, &st);
}

ssize_t fuse_op_forget(struct fuse_req *r)
{
	struct fuse_forget_in in;

	memcpy(&in, r->arg, sizeof(in));
	fuse_ino_forget(r->s, r->hdr.nodeid, in.nlookup);
	return 0;
}

ssize_t fuse_op_batch_forget(struct fuse_req *r)
{
	struct fuse_batch_forget_in in;
	struct fuse_forget_one one;
	size_t n, avail;

	memcpy(&in, r->arg, sizeof(in));
	avail = (r->arglen - sizeof(in)) / sizeof(one);
	n = in.count < avail ? in.count : avail;
	for (size_t i = 0; i < n; i++) {
		memcpy(&one, r->arg + sizeof(in) + i * sizeof(one), sizeof(one));
		fuse_ino_forget(r->s, one.nodeid, one.nlookup);
	}
	return 0;
}

static ssize_t reply_attr(struct fuse_req *r, int fd)
{
	struct fuse_attr_out o;
	struct stat st;
	int ret = fuse_stat_fd(fd, &st);

	if (ret)
		return ret;
	memset(&o, 0, sizeof(o));
	o.attr_valid = r->s->tmo;
	fuse_fill_attr(r->s, &o.attr, &st);
	return fuse_reply(r, &o, sizeof(o));
}

ssize_t fuse_op_getattr(struct fuse_req *r)
{
	struct fuse_iref n;
	ssize_t ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);

	if (ret)
		return ret;
	ret = reply_attr(r, n.fd);
	fuse_ino_put(r->s, &n);
	return ret;
}

static bool is_device(mode_t type)
{
	return type == S_IFCHR || type == S_IFBLK;
}

/*
 * Without allow_devices the guest may neither make a device node nor open up
 * one that is there (chmod, chown): host users would reach the host's device
 * through it. The 0:0 character device is a whiteout (overlayfs), which any
 * user may make and which opens nothing.
 */
static bool device_allowed(const struct fuse_server *s, mode_t type, dev_t rdev)
{
	return s->o.allow_devices || !is_device(type) || (type == S_IFCHR && rdev == 0);
}

/* chmod through the magic link of our own O_PATH fd: reaches exactly that inode. */
static int chmod_node(struct fuse_server *s, const struct fuse_iref *n, mode_t mode)
{
	char name[16];

	if (n->type == S_IFLNK)
		return -EOPNOTSUPP;
	snprintf(name, sizeof(name), "%d", n->fd);
	return fchmodat(s->proc_fd, name, mode & 07777, 0) < 0 ? -errno : 0;
}

/*
 * After a chown of a regular file: Linux clears S_ISUID (and S_ISGID with
 * S_IXGRP) itself, root's chown included, but not every filesystem under a
 * share need do so, and the server runs as root: make sure.
 */
static int drop_setid(struct fuse_server *s, const struct fuse_iref *n)
{
	struct stat st;
	int ret;

	if (s->o.allow_setid || !s->as_root || n->type != S_IFREG)
		return 0;
	ret = fuse_stat_fd(n->fd, &st);
	if (ret || !(st.st_mode & (S_ISUID | S_ISGID)))
		return ret;
	return chmod_node(s, n, fuse_allowed_mode(s, S_IFREG, st.st_mode));
}

static int set_times(const struct fuse_iref *n, const struct fuse_setattr_in *in)
{
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };

	if (in->valid & FATTR_ATIME_NOW) {
		ts[0].tv_nsec = UTIME_NOW;
	} else if (in->valid & FATTR_ATIME) {
		if (in->atimensec >= 1000000000u)
			return -EINVAL;
		ts[0].tv_sec = (time_t)in->atime;
		ts[0].tv_nsec = in->atimensec;
	}
	if (in->valid & FATTR_MTIME_NOW) {
		ts[1].tv_nsec = UTIME_NOW;
	} else if (in->valid & FATTR_MTIME) {
		if (in->mtimensec >= 1000000000u)
			return -EINVAL;
		ts[1].tv_sec = (time_t)in->mtime;
		ts[1].tv_nsec = in->mtimensec;
	}
	return utimensat(n->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int set_size(struct fuse_req *r, const struct fuse_iref *n, const struct fuse_setattr_in *in)
{
	struct fuse_href h;
	int fd, ret;

	if (in->size > (uint64_t)INT64_MAX)
		return -EFBIG;
	if (in->valid & FATTR_FH) {
		ret = fuse_fh_get(r->s, in->fh, false, &h);
		if (ret)
			return ret;
		ret = ftruncate(h.fd, (off_t)in->size) < 0 ? -errno : 0;
		fuse_fh_put(r->s, &h);
		return ret;
	}
	if (n->type == S_IFDIR)
		return -EISDIR;
	if (n->type != S_IFREG)
		return -EINVAL;
	fd = fuse_reopen(r->s, n, O_WRONLY);
	if (fd < 0)
		return fd;
	ret = fuse_kill_setid(r->s, fd);
	if (!ret)
		ret = ftruncate(fd, (off_t)in->size) < 0 ? -errno : 0;
	close(fd);
	return ret;
}

ssize_t fuse_op_setattr(struct fuse_req *r)
{
	struct fuse_setattr_in in;
	struct fuse_iref n;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	if (is_device(n.type) && (in.valid & (FATTR_MODE | FATTR_UID | FATTR_GID))) {
		struct stat st;

		ret = fuse_stat_fd(n.fd, &st);
		if (!ret && !device_allowed(r->s, n.type, st.st_rdev))
			ret = -EPERM;
		if (ret)
			goto out;
	}
	/* Owner first: a chown clears set-id bits a mode in the same call may set. */
	if (in.valid & (FATTR_UID | FATTR_GID)) {
		uid_t u =
		    (in.valid & FATTR_UID) ? fuse_uid_to_host(&r->s->o.uid_map, in.uid) : (uid_t)-1;
		gid_t g =
		    (in.valid & FATTR_GID) ? fuse_uid_to_host(&r->s->o.gid_map, in.gid) : (gid_t)-1;

		if (fchownat(n.fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			goto out;
		}
		if (!(in.valid & FATTR_MODE)) {
			ret = drop_setid(r->s, &n);
			if (ret)
				goto out;
		}
	}
	if (in.valid & FATTR_MODE) {
		ret = chmod_node(r->s, &n, fuse_allowed_mode(r->s, n.type, in.mode));
		if (ret)
			goto out;
	}
	if (in.valid & FATTR_SIZE) {
		ret = set_size(r, &n, &in);
		if (ret)
			goto out;
	}
	if (in.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
		ret = set_times(&n, &in);
		if (ret)
			goto out;
	}
	ret = reply_attr(r, n.fd);
out:
	fuse_ino_put(r->s, &n);
	return ret;
}

ssize_t fuse_op_readlink(struct fuse_req *r)
{
	char buf[PATH_MAX];
	struct fuse_iref n;
	ssize_t ret, len;

	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	if (n.type != S_IFLNK) {
		ret = -EINVAL;
		goto out;
	}
	/* The target is returned, never followed: the guest resolves it in its namespace. */
	len = readlinkat(n.fd, "", buf, sizeof(buf));
	ret = len < 0 ? -errno : fuse_reply(r, buf, (size_t)len);
out:
	fuse_ino_put(r->s, &n);
	return ret;
}

/*
 * Give a new object its owner and mode (see the ownership rule at the top
 * of fuse_server.c), then reply with its entry. @fd: the object opened for
 * I/O (CREATE) or -1. On failure the object is removed again.
 */
static ssize_t finish_new(struct fuse_req *r, const struct fuse_iref *dir, const char *name,
			  mode_t mode, int fd, uint64_t *idp)
{
	struct fuse_server *s = r->s;
	struct fuse_iref n = { 0 };
	struct stat pst, st, fst;
	mode_t perm = mode & 07777;
	uid_t uid = fuse_uid_to_host(&s->o.uid_map, r->hdr.uid);
	gid_t gid = fuse_uid_to_host(&s->o.gid_map, r->hdr.gid), caller_gid = gid;
	uint64_t id = 0;
	uint32_t gen;
	int ret;
	bool got = false;

	ret = fuse_stat_fd(dir->fd, &pst);
	if (ret)
		goto undo;
	if (pst.st_mode & S_ISGID) {
		gid = pst.st_gid;
		if (S_ISDIR(mode))
			perm |= S_ISGID;
	}
	if (!S_ISDIR(mode) && (perm & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
	    r->hdr.uid != 0 && caller_gid != gid)
		perm &= ~S_ISGID;
	perm = fuse_allowed_mode(s, mode & S_IFMT, perm);

	ret = fuse_ino_lookup(s, dir->fd, name, &id, &gen, &st);
	if (ret)
		goto undo;
	ret = fuse_ino_get(s, id, &n);
	if (ret)
		goto undo;
	got = true;
	if (fd >= 0 &&
	    (fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino)) {
		ret = -EIO; /* the name was swapped under us: do not touch it */
		goto undo;
	}
	if (s->as_root && fchownat(n.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		ret = -errno;
		goto undo;
	}
	if (!S_ISLNK(mode)) {
		ret = fd >= 0 ? (fchmod(fd, perm) < 0 ? -errno : 0) : chmod_node(s, &n, perm);
		if (ret)
			goto undo;
	}
	ret = fuse_stat_fd(n.fd, &st);
	if (ret)
		goto undo;
	fuse_ino_put(s, &n);
	if (idp) {
		*idp = id;
		return 0;
	}
	return reply_entry(r, id, gen, &st);
undo:
	if (got)
		fuse_ino_put(s, &n);
	if (id)
		fuse_ino_forget(s, id, 1);
	unlinkat(dir->fd, name, S_ISDIR(mode) ? AT_REMOVEDIR : 0);
	return ret;
}

ssize_t fuse_op_symlink(struct fuse_req *r)
{
	const char *name, *target;
	struct fuse_iref d;
	size_t used;
	const uint8_t *t, *nul;
	ssize_t ret;

	ret = fuse_check_name(r->arg, r->arglen, &name, &used);
	if (ret)
		return ret;
	t = r->arg + used;
	nul = memchr(t, 0, r->arglen - used);
	if (!nul || nul == t)
		return -EINVAL;
	if ((size_t)(nul - t) >= PATH_MAX)
		return -ENAMETOOLONG;
	target = (const char *)t;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	if (symlinkat(target, d.fd, name) < 0)
		ret = -errno;
	else
		ret = finish_new(r, &d, name, S_IFLNK | 0777, -1, NULL);
	fuse_ino_put(r->s, &d);
	return ret;
}

static dev_t decode_dev(uint32_t d)
{
	return makedev((d & 0xfff00) >> 8, (d & 0xff) | ((d >> 12) & 0xfff00));
}

ssize_t fuse_op_mknod(struct fuse_req *r)
{
	struct fuse_mknod_in in;
	struct fuse_iref d;
	const char *name;
	size_t used;
	ssize_t ret;
	mode_t type;
	dev_t rdev;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_check_name(r->arg + sizeof(in), r->arglen - sizeof(in), &name, &used);
	if (ret)
		return ret;
	type = in.mode & S_IFMT;
	if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR &&
	    type != S_IFBLK)
		return -EINVAL;
	rdev = is_device(type) ? decode_dev(in.rdev) : 0;
	/* FIFOs and sockets: any host user may make them, and the server never opens one. */
	if (!device_allowed(r->s, type, rdev))
		return -EPERM;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	/* Created with no access at all; finish_new sets the mode once owned. */
	if (mknodat(d.fd, name, type, rdev) < 0)
		ret = -errno;
	else
		ret = finish_new(r, &d, name, in.mode, -1, NULL);
	fuse_ino_put(r->s, &d);
	return ret;
}

ssize_t fuse_op_mkdir(struct fuse_req *r)
{
	struct fuse_mkdir_in in;
	struct fuse_iref d;
	const char *name;
	size_t used;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_check_name(r->arg + sizeof(in), r->arglen - sizeof(in), &name, &used);
	if (ret)
		return ret;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	if (mkdirat(d.fd, name, 0700) < 0)
		ret = -errno;
	else
		ret = finish_new(r, &d, name, S_IFDIR | (in.mode & 07777), -1, NULL);
	fuse_ino_put(r->s, &d);
	return ret;
}

static ssize_t do_unlink(struct fuse_req *r, int flags)
{
	struct fuse_iref d;
	const char *name;
	size_t used;
	ssize_t ret;

	ret = fuse_check_name(r->arg, r->arglen, &name, &used);
	if (ret)
		return ret;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	ret = unlinkat(d.fd, name, flags) < 0 ? -errno : fuse_reply(r, NULL, 0);
	fuse_ino_put(r->s, &d);
	return ret;
}

ssize_t fuse_op_unlink(struct fuse_req *r)
{
	return do_unlink(r, 0);
}

ssize_t fuse_op_rmdir(struct fuse_req *r)
{
	return do_unlink(r, AT_REMOVEDIR);
}

static ssize_t do_rename(struct fuse_req *r, uint64_t newdir, uint32_t flags, size_t hdr)
{
	const char *oldname, *newname;
	struct fuse_iref od, nd;
	size_t used, used2;
	ssize_t ret;

	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	ret = fuse_check_name(r->arg + hdr, r->arglen - hdr, &oldname, &used);
	if (ret)
		return ret;
	ret = fuse_check_name(r->arg + hdr + used, r->arglen - hdr - used, &newname, &used2);
	if (ret)
		return ret;
	ret = get_dir(r, r->hdr.nodeid, &od);
	if (ret)
		return ret;
	ret = get_dir(r, newdir, &nd);
	if (ret) {
		fuse_ino_put(r->s, &od);
		return ret;
	}
	ret =
	    renameat2(od.fd, oldname, nd.fd, newname, flags) < 0 ? -errno : fuse_reply(r, NULL, 0);
	fuse_ino_put(r->s, &nd);
	fuse_ino_put(r->s, &od);
	return ret;
}

ssize_t fuse_op_rename(struct fuse_req *r)
{
	struct fuse_rename_in in;

	memcpy(&in, r->arg, sizeof(in));
	return do_rename(r, in.newdir, 0, sizeof(in));
}

ssize_t fuse_op_rename2(struct fuse_req *r)
{
	struct fuse_rename2_in in;

	memcpy(&in, r->arg, sizeof(in));
	return do_rename(r, in.newdir, in.flags, sizeof(in));
}

ssize_t fuse_op_link(struct fuse_req *r)
{
	struct fuse_link_in in;
	struct fuse_iref d, src;
	const char *name;
	struct stat st;
	char proc[16];
	uint64_t id;
	uint32_t gen;
	size_t used;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_check_name(r->arg + sizeof(in), r->arglen - sizeof(in), &name, &used);
	if (ret)
		return ret;
	ret = fuse_ino_get(r->s, in.oldnodeid, &src);
	if (ret)
		return ret;
	if (src.type == S_IFDIR) {
		fuse_ino_put(r->s, &src);
		return -EPERM;
	}
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret) {
		fuse_ino_put(r->s, &src);
		return ret;
	}
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; else our fd's magic link, as virtiofsd. */
	if (linkat(src.fd, "", d.fd, name, AT_EMPTY_PATH) < 0) {
		ret = -errno;
		if (ret == -ENOENT || ret == -EPERM) {
			snprintf(proc, sizeof(proc), "%d", src.fd);
			ret = linkat(r->s->proc_fd, proc, d.fd, name, AT_SYMLINK_FOLLOW) < 0
				  ? -errno
				  : 0;
		}
	}
	if (!ret) {
		ret = fuse_ino_lookup(r->s, d.fd, name, &id, &gen, &st);
		if (!ret)
			ret = reply_entry(r, id, gen, &st);
	}
	fuse_ino_put(r->s, &d);
	fuse_ino_put(r->s, &src);
	return ret;
}

ssize_t fuse_op_statfs(struct fuse_req *r)
{
	struct fuse_statfs_out o;
	struct fuse_iref n;
	struct statfs sf;
	ssize_t ret;

	ret = fuse_ino_get(r->s, r->hdr.nodeid ? r->hdr.nodeid : FUSE_ROOT_ID, &n);
	if (ret)
		return ret;
	ret = fstatfs(n.fd, &sf) < 0 ? -errno : 0;
	fuse_ino_put(r->s, &n);
	if (ret)
		return ret;
	memset(&o, 0, sizeof(o));
	o.st.blocks = sf.f_blocks;
	o.st.bfree = sf.f_bfree;
	o.st.bavail = sf.f_bavail;
	o.st.files = sf.f_files;
	o.st.ffree = sf.f_ffree;
	o.st.bsize = (uint32_t)sf.f_bsize;
	o.st.namelen = (uint32_t)sf.f_namelen;
	o.st.frsize = (uint32_t)sf.f_frsize;
	return fuse_reply(r, &o, sizeof(o));
}

/*
 * The guest mounts virtiofs with default_permissions and checks access
 * itself; this answers the odd ACCESS from the mode bits as the kernel would
 * for the requesting (mapped) ids, guest root passing all but exec checks.
 */
ssize_t fuse_op_access(struct fuse_req *r)
{
	struct fuse_access_in in;
	struct fuse_iref n;
	struct stat st;
	uint32_t mask, bits;
	uid_t uid;
	ssize_t ret;

	memcpy(&in, r->arg, sizeof(in));
	mask = in.mask & 7;
	ret = fuse_ino_get(r->s, r->hdr.nodeid, &n);
	if (ret)
		return ret;
	ret = fuse_stat_fd(n.fd, &st);
	fuse_ino_put(r->s, &n);
	if (ret)
		return ret;
	if ((mask & W_OK) && r->s->o.readonly &&
	    (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode)))
		return -EROFS;
	if (r->hdr.uid == 0) {
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111))
			return -EACCES;
		return fuse_reply(r, NULL, 0);
	}
	uid = fuse_uid_to_host(&r->s->o.uid_map, r->hdr.uid);
	if (st.st_uid == uid)
		bits = (st.st_mode >> 6) & 7;
	else if (st.st_gid == fuse_uid_to_host(&r->s->o.gid_map, r->hdr.gid))
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	if ((bits & mask) != mask)
		return -EACCES;
	return fuse_reply(r, NULL, 0);
}

ssize_t fuse_op_create(struct fuse_req *r)
{
	struct fuse_create_in in;
	struct fuse_open_out oo;
	struct fuse_entry_out e;
	struct fuse_iref d, n;
	const char *name;
	struct stat st;
	uint64_t id = 0, fh;
	uint32_t gen;
	size_t used;
	ssize_t ret;
	int flags, fd;

	memcpy(&in, r->arg, sizeof(in));
	ret = fuse_check_name(r->arg + sizeof(in), r->arglen - sizeof(in), &name, &used);
	if (ret)
		return ret;
	flags = fuse_open_flags(in.flags, r->s->o.readonly);
	if (flags < 0)
		return flags;
	if ((in.mode & S_IFMT) && (in.mode & S_IFMT) != S_IFREG)
		return -EINVAL;
	ret = get_dir(r, r->hdr.nodeid, &d);
	if (ret)
		return ret;
	fd = fuse_open_beneath(d.fd, name, flags | O_CREAT | O_EXCL, 0600);
	if (fd >= 0) {
		ret = finish_new(r, &d, name, S_IFREG | (in.mode & 07777), fd, &id);
		if (ret) {
			close(fd);
			goto out;
		}
	} else if (fd == -EEXIST && !(in.flags & O_EXCL)) {
		/* Exists: open it like OPEN would, never a FIFO or device. */
		ret = fuse_ino_lookup(r->s, d.fd, name, &id, &gen, &st);
		if (ret)
			goto out;
		ret = fuse_ino_get(r->s, id, &n);
		if (ret)
			goto forget;
		fd = fuse_reopen(r->s, &n, flags);
		fuse_ino_put(r->s, &n);
		if (fd < 0) {
			ret = fd;
			goto forget;
		}
		if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
			ret = fuse_kill_setid(r->s, fd);
			if (ret) {
				close(fd);
				goto forget;
			}
		}
	} else {
		ret = fd;
		goto out;
	}
	ret = fuse_fh_new(r->s, fd, false, &fh);
	if (ret) {
		close(fd);
		goto forget;
	}
	ret = fuse_ino_get(r->s, id, &n);
	if (!ret) {
		ret = fuse_stat_fd(n.fd, &st);
		gen = (uint32_t)(id >> 32);
		fuse_ino_put(r->s, &n);
	}
	if (ret) {
		fuse_fh_release(r->s, fh, false);
		goto forget;
	}
	fuse_fill_entry(r->s, &e, id, gen, &st);
	memset(&oo, 0, sizeof(oo));
	oo.fh = fh;
	if (r->s->o.cache == FS_CACHE_NONE)
		oo.open_flags |= FOPEN_DIRECT_IO;
	else if (r->s->o.cache == FS_CACHE_ALWAYS)
		oo.open_flags |= FOPEN_KEEP_CACHE;
	ret = fuse_reply2(r, &e, sizeof(e), &oo, sizeof(oo));
	goto out;
forget:
	fuse_ino_forget(r->s, id, 1);
out:
	fuse_ino_put(r->s, &d);
	return ret;
}
