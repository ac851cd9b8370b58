// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * In-process FUSE server for virtio-fs: message parsing, replies, dispatch
 * and INIT. The opcodes live in fuse_ops.c (names and attributes) and
 * fuse_io.c (handles, data, directories, DAX, xattrs); node ids and handles
 * in fuse_table.c. docs/virtiofs.md has the rules ("What the guest may leave
 * for host users", "Budgets").
 *
 * Parsing: the in-header is gathered from the readable segments; its len
 * must be >= 40 and <= the bytes the chain really carries. The arguments
 * (everything after the header, up to len) are gathered into one bounded
 * buffer, except WRITE whose data stays in the guest's segments (pwritev from
 * there). Replies are written into the writable segments, never past them: a
 * reply that does not fit becomes an error reply (the header always fits or
 * the chain is refused with a negative return).
 *
 * Ownership of new files (SYMLINK, MKNOD, MKDIR, CREATE): when minivmm runs
 * as root, a new object is chowned to the requesting guest uid/gid mapped
 * through uid_map/gid_map (ids outside a map become 65534), except that in a
 * setgid directory the group is the directory's (as the kernel does) and a
 * new subdirectory inherits S_ISGID. Like the kernel's mode_strip_sgid()
 * (CVE-2022-0358), a new non-directory keeps S_ISGID|S_IXGRP only if the
 * caller is guest root or the caller's gid is the file's group. The mode is
 * set as the guest asked (it applied its umask already), not through the
 * VMM's umask, except that without allow_setid no set-uid bit and no set-gid
 * bit on a non-directory is ever set (fuse_allowed_mode). Not running as
 * root, new objects belong to the VMM's user.
 *
 * Budgets: every host descriptor, table slot and buffer a guest can make the
 * server hold is bounded (max_fds, FUSE_SRV_MAX_DIRBUFS); running into one is
 * an error for that request (ENFILE, EMFILE, ENOMEM) and one warning on the
 * host per kind (fuse_over_budget). Per-request scratch (arguments, READDIR
 * and xattr buffers, iovec arrays) is bounded and freed with the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/limits.h>

#include "fs/fuse_priv.h"
#include "iov.h"
#include "log.h"

enum {
	OP_RO = 1 << 0,	   /* modifies the share: EROFS when readonly */
	OP_XATTR = 1 << 1, /* ENOSYS unless xattr = on */
	OP_NOREPLY = 1 << 2,
};

struct fuse_opdesc {
	ssize_t (*fn)(struct fuse_req *r);
	uint16_t in;  /* fixed argument bytes */
	uint16_t out; /* fixed reply payload: checked before the opcode runs */
	uint8_t flags;
};

static ssize_t op_init(struct fuse_req *r);
static ssize_t op_destroy(struct fuse_req *r);
static ssize_t op_interrupt(struct fuse_req *r);

#define ENTRY_SZ sizeof(struct fuse_entry_out)
static const struct fuse_opdesc ops[] = {
	[FUSE_LOOKUP] = { fuse_op_lookup, 0, ENTRY_SZ, 0 },
	[FUSE_FORGET] = { fuse_op_forget, sizeof(struct fuse_forget_in), 0, OP_NOREPLY },
	[FUSE_BATCH_FORGET] = { fuse_op_batch_forget, sizeof(struct fuse_batch_forget_in), 0,
				OP_NOREPLY },
	[FUSE_INTERRUPT] = { op_interrupt, 0, 0, OP_NOREPLY },
	[FUSE_GETATTR] = { fuse_op_getattr, sizeof(struct fuse_getattr_in),
			   sizeof(struct fuse_attr_out), 0 },
	[FUSE_SETATTR] = { fuse_op_setattr, sizeof(struct fuse_setattr_in),
			   sizeof(struct fuse_attr_out), OP_RO },
	[FUSE_READLINK] = { fuse_op_readlink, 0, 0, 0 },
	[FUSE_SYMLINK] = { fuse_op_symlink, 0, ENTRY_SZ, OP_RO },
	[FUSE_MKNOD] = { fuse_op_mknod, sizeof(struct fuse_mknod_in), ENTRY_SZ, OP_RO },
	[FUSE_MKDIR] = { fuse_op_mkdir, sizeof(struct fuse_mkdir_in), ENTRY_SZ, OP_RO },
	[FUSE_UNLINK] = { fuse_op_unlink, 0, 0, OP_RO },
	[FUSE_RMDIR] = { fuse_op_rmdir, 0, 0, OP_RO },
	[FUSE_RENAME] = { fuse_op_rename, sizeof(struct fuse_rename_in), 0, OP_RO },
	[FUSE_RENAME2] = { fuse_op_rename2, sizeof(struct fuse_rename2_in), 0, OP_RO },
	[FUSE_LINK] = { fuse_op_link, sizeof(struct fuse_link_in), ENTRY_SZ, OP_RO },
	[FUSE_OPEN] = { fuse_op_open, sizeof(struct fuse_open_in), sizeof(struct fuse_open_out),
			0 },
	[FUSE_READ] = { fuse_op_read, sizeof(struct fuse_read_in), 0, 0 },
	[FUSE_WRITE] = { fuse_op_write, sizeof(struct fuse_write_in), sizeof(struct fuse_write_out),
			 OP_RO },
	[FUSE_STATFS] = { fuse_op_statfs, 0, sizeof(struct fuse_statfs_out), 0 },
	[FUSE_RELEASE] = { fuse_op_release, sizeof(struct fuse_release_in), 0, 0 },
	[FUSE_FSYNC] = { fuse_op_fsync, sizeof(struct fuse_fsync_in), 0, 0 },
	[FUSE_SETXATTR] = { fuse_op_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE, 0, OP_RO | OP_XATTR },
	[FUSE_GETXATTR] = { fuse_op_getxattr, sizeof(struct fuse_getxattr_in), 0, OP_XATTR },
	[FUSE_LISTXATTR] = { fuse_op_listxattr, sizeof(struct fuse_getxattr_in), 0, OP_XATTR },
	[FUSE_REMOVEXATTR] = { fuse_op_removexattr, 0, 0, OP_RO | OP_XATTR },
	[FUSE_FLUSH] = { fuse_op_flush, sizeof(struct fuse_flush_in), 0, 0 },
	[FUSE_INIT] = { op_init, 16, 0, 0 },
	[FUSE_OPENDIR] = { fuse_op_opendir, sizeof(struct fuse_open_in),
			   sizeof(struct fuse_open_out), 0 },
	[FUSE_READDIR] = { fuse_op_readdir, sizeof(struct fuse_read_in), 0, 0 },
	[FUSE_RELEASEDIR] = { fuse_op_releasedir, sizeof(struct fuse_release_in), 0, 0 },
	[FUSE_FSYNCDIR] = { fuse_op_fsync, sizeof(struct fuse_fsync_in), 0, 0 },
	[FUSE_ACCESS] = { fuse_op_access, sizeof(struct fuse_access_in), 0, 0 },
	[FUSE_CREATE] = { fuse_op_create, sizeof(struct fuse_create_in),
			  ENTRY_SZ + sizeof(struct fuse_open_out), OP_RO },
	[FUSE_DESTROY] = { op_destroy, 0, 0, 0 },
	[FUSE_FALLOCATE] = { fuse_op_fallocate, sizeof(struct fuse_fallocate_in), 0, OP_RO },
	[FUSE_READDIRPLUS] = { fuse_op_readdirplus, sizeof(struct fuse_read_in), 0, 0 },
	[FUSE_LSEEK] = { fuse_op_lseek, sizeof(struct fuse_lseek_in), sizeof(struct fuse_lseek_out),
			 0 },
	[FUSE_COPY_FILE_RANGE] = { fuse_op_copy_file_range, sizeof(struct fuse_copy_file_range_in),
				   sizeof(struct fuse_write_out), OP_RO },
	[FUSE_SETUPMAPPING] = { fuse_op_setupmapping, sizeof(struct fuse_setupmapping_in), 0, 0 },
	[FUSE_REMOVEMAPPING] = { fuse_op_removemapping, sizeof(struct fuse_removemapping_in), 0,
				 0 },
};

static ssize_t reply_raw(struct fuse_req *r, int err, const void *p1, size_t n1, const void *p2,
			 size_t n2)
{
	struct fuse_out_header oh;

	if (sizeof(oh) + n1 + n2 > r->room) {
		if (err == 0)
			return -ERANGE;
		n1 = n2 = 0;
	}
	oh.len = (uint32_t)(sizeof(oh) + n1 + n2);
	oh.error = err;
	oh.unique = r->hdr.unique;
	iov_from_buf(r->out, r->nout, 0, &oh, sizeof(oh));
	if (n1)
		iov_from_buf(r->out, r->nout, sizeof(oh), p1, n1);
	if (n2)
		iov_from_buf(r->out, r->nout, sizeof(oh) + n1, p2, n2);
	return oh.len;
}

ssize_t fuse_reply(struct fuse_req *r, const void *p, size_t n)
{
	return reply_raw(r, 0, p, n, NULL, 0);
}

ssize_t fuse_reply2(struct fuse_req *r, const void *p1, size_t n1, const void *p2, size_t n2)
{
	return reply_raw(r, 0, p1, n1, p2, n2);
}

static ssize_t reply_err(struct fuse_req *r, int err)
{
	return reply_raw(r, err, NULL, 0, NULL, 0);
}

static ssize_t op_init(struct fuse_req *r)
{
	struct fuse_server *s = r->s;
	struct fuse_init_in in;
	struct fuse_init_out o;
	uint64_t want, ours;

	memset(&in, 0, sizeof(in));
	memcpy(&in, r->arg, r->arglen < sizeof(in) ? r->arglen : sizeof(in));
	if (in.major != FUSE_KERNEL_VERSION || in.minor < FUSE_SRV_MIN_MINOR)
		return -EPROTO;
	want = in.flags;
	if ((in.flags & FUSE_INIT_EXT) && r->arglen >= offsetof(struct fuse_init_in, unused))
		want |= (uint64_t)in.flags2 << 32;

	ours = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_DO_READDIRPLUS |
	       FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_INIT_EXT;
	if (s->o.cache == FS_CACHE_AUTO)
		ours |= FUSE_AUTO_INVAL_DATA;
	if (s->o.xattr)
		ours |= FUSE_SETXATTR_EXT;
	if (s->dax && s->o.dax_window && s->o.dax != FS_DAX_NEVER) {
		ours |= FUSE_MAP_ALIGNMENT;
		if (s->o.dax == FS_DAX_INODE)
			ours |= FUSE_HAS_INODE_DAX;
	}
	want &= ours;

	memset(&o, 0, sizeof(o));
	o.major = FUSE_KERNEL_VERSION;
	o.minor = in.minor < FUSE_SRV_MINOR ? in.minor : FUSE_SRV_MINOR;
	o.max_readahead =
	    in.max_readahead < FUSE_SRV_MAX_WRITE ? in.max_readahead : FUSE_SRV_MAX_WRITE;
	o.flags = (uint32_t)want;
	o.flags2 = (uint32_t)(want >> 32);
	o.max_background = 64;
	o.congestion_threshold = 48;
	o.max_write = FUSE_SRV_MAX_WRITE;
	o.time_gran = 1;
	o.max_pages = FUSE_SRV_MAX_PAGES;
	if (want & FUSE_MAP_ALIGNMENT)
		o.map_alignment = FUSE_SRV_DAX_MAP_BITS;

	pthread_mutex_lock(&s->lock);
	s->got_init = true;
	s->minor = o.minor;
	s->flags = want;
	pthread_mutex_unlock(&s->lock);
	return fuse_reply(r, &o, sizeof(o));
}

static ssize_t op_destroy(struct fuse_req *r)
{
	fuse_server_reset(r->s);
	return fuse_reply(r, NULL, 0);
}

static ssize_t op_interrupt(struct fuse_req *r)
{
	(void)r; /* every request completes synchronously: nothing to interrupt */
	return 0;
}

#define ARG_STACK 4096

ssize_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned int nin,
			   const struct iovec *out, unsigned int nout)
{
	uint8_t stackbuf[ARG_STACK], *buf = stackbuf;
	const struct fuse_opdesc *d = NULL;
	struct fuse_req r = { .s = s, .in = in, .nin = nin, .out = out, .nout = nout };
	size_t total = iov_total(in, nin), want;
	bool got_init;
	ssize_t ret;

	if (iov_to_buf(in, nin, 0, &r.hdr, sizeof(r.hdr)) < sizeof(r.hdr))
		return -EINVAL;
	r.room = iov_total(out, nout);
	if (r.hdr.opcode < sizeof(ops) / sizeof(ops[0]) && ops[r.hdr.opcode].fn)
		d = &ops[r.hdr.opcode];
	if (!(d && (d->flags & OP_NOREPLY)) && r.room < sizeof(struct fuse_out_header))
		return -EINVAL;

	if (r.hdr.len < sizeof(r.hdr) || r.hdr.len > total) {
		ret = -EINVAL;
		goto err;
	}
	r.arglen = r.hdr.len - sizeof(r.hdr);
	if (!d) {
		ret = -ENOSYS;
		goto err;
	}
	if (r.arglen < d->in) {
		ret = -EINVAL;
		goto err;
	}
	/* WRITE data stays in the guest's buffers: gather only fuse_write_in. */
	want = r.hdr.opcode == FUSE_WRITE ? sizeof(struct fuse_write_in) : r.arglen;
	if (want > FUSE_SRV_ARG_MAX) {
		ret = -E2BIG;
		goto err;
	}
	if (want > sizeof(stackbuf)) {
		buf = malloc(want);
		if (!buf) {
			ret = -ENOMEM;
			goto err;
		}
	}
	iov_to_buf(in, nin, sizeof(r.hdr), buf, want);
	r.arg = buf;

	pthread_mutex_lock(&s->lock);
	got_init = s->got_init;
	pthread_mutex_unlock(&s->lock);
	if (!got_init && r.hdr.opcode != FUSE_INIT) {
		ret = -EIO;
	} else if ((d->flags & OP_XATTR) && !s->o.xattr) {
		ret = -ENOSYS;
	} else if ((d->flags & OP_RO) && s->o.readonly) {
		ret = -EROFS;
	} else if (!(d->flags & OP_NOREPLY) && sizeof(struct fuse_out_header) + d->out > r.room) {
		ret = -ERANGE; /* checked first: a LOOKUP must not count a reference it cannot
				  return */
	} else {
		ret = d->fn(&r);
	}
	if (buf != stackbuf)
		free(buf);
	if (ret >= 0)
		return ret;
err:
	if (d && (d->flags & OP_NOREPLY))
		return 0;
	return reply_err(&r, (int)ret);
}

void fuse_server_reset(struct fuse_server *s)
{
	fuse_table_reset(s, false);
	pthread_mutex_lock(&s->lock);
	s->got_init = false;
	s->flags = 0;
	pthread_mutex_unlock(&s->lock);
}

int fuse_server_new(const struct fs_share_opts *o, const struct fuse_dax_ops *dax, void *dax_ctx,
		    struct fuse_server **out)
{
	struct fuse_server *s;
	struct stat st;
	int fd, ret;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->proc_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	s->path = strdup(o->path ? o->path : "");
	if (!s->path) {
		ret = -ENOMEM;
		goto fail;
	}
	s->o.path = s->path;
	s->dax = dax;
	s->dax_ctx = dax_ctx;
	s->as_root = geteuid() == 0;
	s->max_fds = o->max_fds ? o->max_fds : FUSE_SRV_DEF_MAX_FDS;
	if (s->max_fds > FUSE_SRV_MAX_MAX_FDS)
		s->max_fds = FUSE_SRV_MAX_MAX_FDS;
	if (s->max_fds < 2)
		s->max_fds = 2;
	s->tmo = o->cache == FS_CACHE_ALWAYS ? 86400 : o->cache == FS_CACHE_NONE ? 0 : 1;
	ret = fuse_table_init(s);
	if (ret)
		goto fail;
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0) {
		ret = -errno;
		fprintf(stderr, "virtio-fs: /proc/self/fd: %s\n", strerror(-ret));
		goto fail;
	}
	fd = open(s->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "virtio-fs: share %s: %s\n", s->path, strerror(-ret));
		goto fail;
	}
	/* openat2 (Linux 5.6) is the confinement: refuse to run without it. */
	ret = fuse_open_beneath(fd, ".", O_PATH, 0);
	if (ret < 0) {
		close(fd);
		fprintf(stderr, "virtio-fs: openat2 on %s: %s\n", s->path, strerror(-ret));
		goto fail;
	}
	close(ret);
	fuse_table_set_root(s, fd, &st);
	*out = s;
	return 0;
fail:
	fuse_server_free(s);
	return ret;
}

void fuse_server_free(struct fuse_server *s)
{
	if (!s)
		return;
	fuse_table_free(s);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

void fuse_server_get_stats(struct fuse_server *s, struct fuse_server_stats *st)
{
	pthread_mutex_lock(&s->lock);
	st->forgets = s->forgets;
	st->fds = s->nfds;
	st->dirbufs = s->ndirbufs;
	pthread_mutex_unlock(&s->lock);
	st->over_budget = atomic_load(&s->over_budget);
}
