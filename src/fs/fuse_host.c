// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The FUSE server's side on the host: how names are checked and resolved (one
 * component beneath a directory, never a link), how nodes are reopened, modes
 * and set-id bits the guest may not have, id mapping, attributes as the guest
 * sees them, and the budget warnings. Shared by the inode table (fuse_table.c)
 * and the operations (fuse_ops.c, fuse_io.c, fuse_server.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/limits.h>
#include <linux/openat2.h>

#include "fs/fuse_priv.h"
#include "log.h"

void fuse_over_budget(struct fuse_server *s, enum fuse_budget b)
{
	atomic_fetch_add(&s->over_budget, 1);
	if (atomic_fetch_or(&s->warned, 1u << b) & (1u << b))
		return;
	switch (b) {
	case FUSE_BUDGET_NODES:
		pr_warn("virtio-fs %s: the guest holds max_fds = %u host descriptors: lookups "
			"get ENFILE until it forgets nodes",
			s->path, s->max_fds);
		break;
	case FUSE_BUDGET_HANDLES:
		pr_warn("virtio-fs %s: the guest holds max_fds = %u host descriptors: opens get "
			"EMFILE until it closes files",
			s->path, s->max_fds);
		break;
	case FUSE_BUDGET_DIRBUFS:
		pr_warn("virtio-fs %s: the guest reads %u directories at once: further READDIRs "
			"get ENOMEM until it closes some",
			s->path, FUSE_SRV_MAX_DIRBUFS);
		break;
	}
}

mode_t fuse_allowed_mode(const struct fuse_server *s, mode_t type, mode_t mode)
{
	mode &= 07777;
	if (s->o.allow_setid)
		return mode;
	/* A directory's S_ISGID is group inheritance, no privilege: it stays. */
	return mode & ~(S_ISUID | (type == S_IFDIR ? 0 : S_ISGID));
}

int fuse_kill_setid(const struct fuse_server *s, int fd)
{
	struct stat st;
	mode_t m;

	/* Not root: no CAP_FSETID, the host kernel clears them itself on write. */
	if (s->o.allow_setid || !s->as_root)
		return 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	m = st.st_mode & 07777;
	if (!S_ISREG(st.st_mode) ||
	    !((m & S_ISUID) || (m & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)))
		return 0;
	return fchmod(fd, m & ~(S_ISUID | S_ISGID)) < 0 ? -errno : 0;
}

/*
 * A name argument: NUL-terminated inside @len, 1..NAME_MAX bytes, no '/',
 * not "." or "..". @used gets the bytes consumed including the NUL.
 */
int fuse_check_name(const uint8_t *p, size_t len, const char **name, size_t *used)
{
	const uint8_t *nul = memchr(p, 0, len);
	size_t n;

	if (!nul)
		return -EINVAL;
	n = (size_t)(nul - p);
	if (n == 0 || memchr(p, '/', n))
		return -EINVAL;
	if (n > NAME_MAX)
		return -ENAMETOOLONG;
	if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
		return -EINVAL;
	*name = (const char *)p;
	*used = n + 1;
	return 0;
}

/* The only way a name is resolved on the host: one component, never a link. */
int fuse_open_beneath(int dirfd, const char *name, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = (flags & O_CREAT) ? (mode & 07777) : 0,
		.resolve =
		    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

int fuse_stat_fd(int fd, struct stat *st)
{
	return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/*
 * Open a node for I/O. The node is an O_PATH descriptor of exactly one inode
 * inside the share; opening "/proc/self/fd/N" (as virtiofsd does) follows
 * that magic link to the very same inode, with no name lookup a guest could
 * race. Only regular files and directories get here: device nodes, FIFOs and
 * sockets are never opened (CVE-2020-35517), and symlinks are never followed.
 * The type is the one recorded at lookup (an inode's type cannot change) and
 * the opened file is checked to be that inode again.
 */
int fuse_reopen(struct fuse_server *s, const struct fuse_iref *n, int flags)
{
	struct stat a, b;
	char name[16];
	int fd;

	if (n->type != S_IFREG && n->type != S_IFDIR)
		return n->type == S_IFLNK ? -ELOOP : -EPERM;
	flags &= ~(O_CREAT | O_EXCL | O_NOFOLLOW | O_TMPFILE | O_PATH);
	if (n->type == S_IFDIR)
		flags |= O_DIRECTORY;
	snprintf(name, sizeof(name), "%d", n->fd);
	fd = openat(s->proc_fd, name, flags | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &a) < 0 || fuse_stat_fd(n->fd, &b) < 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino || (a.st_mode & S_IFMT) != n->type) {
		close(fd);
		return -EIO;
	}
	return fd;
}

uint32_t fuse_uid_to_host(const struct fs_idmap *m, uint32_t id)
{
	if (m->count == 0)
		return id;
	if (id >= m->guest && id - m->guest < m->count)
		return m->host + (id - m->guest);
	return 65534;
}

uint32_t fuse_uid_to_guest(const struct fs_idmap *m, uint32_t id)
{
	if (m->count == 0)
		return id;
	if (id >= m->host && id - m->host < m->count)
		return m->guest + (id - m->host);
	return 65534;
}

static uint32_t encode_dev(dev_t d)
{
	unsigned int ma = major(d), mi = minor(d);

	return (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
}

void fuse_fill_attr(struct fuse_server *s, struct fuse_attr *a, const struct stat *st)
{
	uint64_t flags;

	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = fuse_uid_to_guest(&s->o.uid_map, st->st_uid);
	a->gid = fuse_uid_to_guest(&s->o.gid_map, st->st_gid);
	a->rdev = encode_dev(st->st_rdev);
	a->blksize = (uint32_t)st->st_blksize;
	pthread_mutex_lock(&s->lock);
	flags = s->flags;
	pthread_mutex_unlock(&s->lock);
	/*
	 * A guest that may map files (it asked for FUSE_MAP_ALIGNMENT) takes blksize for
	 * the inode's i_blkbits, and Linux's DAX writeback (dax_writeback_mapping_range(),
	 * run by every close() of a DAX file) warns and fails with EIO unless that is the
	 * page size. Hosts whose st_blksize differs (9p: 256 KiB, NFS, ZFS) would have
	 * every close() of a mapped file fail, ld.so's of each shared library included.
	 */
	if (flags & FUSE_MAP_ALIGNMENT)
		a->blksize = FUSE_SRV_DAX_ALIGN;
	/*
	 * dax=inode: the guest maps a file through the DAX window only when we
	 * say so. Rule: regular files of 32 KiB and more; smaller ones are
	 * cheaper through the guest page cache than a 2 MiB window slot.
	 */
	if ((flags & FUSE_HAS_INODE_DAX) && S_ISREG(st->st_mode) &&
	    st->st_size >= FUSE_SRV_DAX_MIN_FILE)
		a->flags |= FUSE_ATTR_DAX;
}

void fuse_fill_entry(struct fuse_server *s, struct fuse_entry_out *e, uint64_t nodeid, uint32_t gen,
		     const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nodeid;
	e->generation = gen;
	e->entry_valid = s->tmo;
	e->attr_valid = s->tmo;
	fuse_fill_attr(s, &e->attr, st);
}
