/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internals of the in-process FUSE server, shared by fuse_server.c (message
 * parsing, dispatch, INIT), fuse_table.c (node ids and file handles) and
 * fuse_ops.c / fuse_io.c (the opcodes).
 */
#ifndef MINIVMM_FS_FUSE_PRIV_H
#define MINIVMM_FS_FUSE_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/fuse.h>

#include "fs/fuse_server.h"

#define FUSE_SRV_MINOR	      38 /* what we speak (Linux 6.1's client speaks 37) */
#define FUSE_SRV_MIN_MINOR    23 /* full-size fuse_init_out / fuse_entry_out */
#define FUSE_SRV_MAX_WRITE    (1u << 20)
#define FUSE_SRV_MAX_PAGES    256
#define FUSE_SRV_DEF_MAX_FDS  4096
#define FUSE_SRV_MAX_MAX_FDS  (1u << 20)
#define FUSE_SRV_DAX_ALIGN    4096ULL		 /* moffset/len/foffset granularity accepted */
#define FUSE_SRV_DAX_MAP_BITS 21		 /* map_alignment: 2 MiB */
#define FUSE_SRV_DAX_MIN_FILE (32 * 1024)	 /* dax=inode: FUSE_ATTR_DAX from this size */
#define FUSE_SRV_ARG_MAX      (64 * 1024 + 8192) /* biggest gathered args (SETXATTR) */
#define FUSE_SRV_DENTS_BUF    32768		 /* one getdents64 read */
/* Directories read at once (each keeps a FUSE_SRV_DENTS_BUF buffer): 8 MiB per share. */
#define FUSE_SRV_MAX_DIRBUFS 256

/* The budgets a guest can run into: each warns once on the host (fuse_over_budget). */
enum fuse_budget {
	FUSE_BUDGET_NODES,   /* max_fds: LOOKUP and friends get ENFILE */
	FUSE_BUDGET_HANDLES, /* max_fds: OPEN, OPENDIR, CREATE get EMFILE */
	FUSE_BUDGET_DIRBUFS, /* FUSE_SRV_MAX_DIRBUFS: READDIR gets ENOMEM */
};

struct fuse_inode {
	int fd;	      /* O_PATH|O_NOFOLLOW; -1: free slot */
	uint32_t gen; /* bumped every time the slot is freed */
	dev_t dev;
	ino_t ino;
	mode_t type;	   /* S_IFMT bits: an inode's type never changes */
	uint64_t nlookup;  /* the guest's references */
	unsigned int refs; /* requests using fd right now */
	int32_t next;	   /* hash chain, or free list */
};

struct fuse_handle {
	int fd; /* -1: free slot */
	uint32_t gen;
	unsigned int refs;
	bool dir;
	bool released;	      /* RELEASE came while a request still used it */
	int32_t next;	      /* free list */
	pthread_mutex_t lock; /* directories: lseek+getdents pairs, and the below */
	/*
	 * Directories: entries read from the host but not yet returned, and the
	 * offset the last reply ended at. A READDIR that continues there goes on
	 * from this buffer without seeking: on filesystems whose offsets are
	 * positions (tmpfs), a seek after the guest deleted entries would skip
	 * live ones (rm -rf then finds the directory not empty).
	 */
	uint8_t *dbuf;
	size_t dlen, dpos;
	uint64_t dnext;
	bool dvalid;
};

struct fuse_server {
	struct fs_share_opts o;
	char *path;
	const struct fuse_dax_ops *dax;
	void *dax_ctx;
	int proc_fd; /* /proc/self/fd, O_PATH */
	bool as_root;
	uint64_t tmo; /* entry/attr timeout, seconds */

	pthread_mutex_t lock; /* everything below */
	bool got_init;
	uint32_t minor;
	uint64_t flags; /* negotiated FUSE_* init flags (flags2 << 32 included) */
	struct fuse_inode *ino;
	uint32_t nino; /* slots in use of ino[] (grows up to max_fds + 2) */
	uint32_t ino_cap;
	int32_t ino_free;
	int32_t *hash;
	uint32_t hash_mask;
	struct fuse_handle **h; /* pointers: a handle's lock must not move */
	uint32_t h_cap, nh;
	int32_t h_free;
	unsigned int nfds, max_fds;
	unsigned int ndirbufs; /* fuse_handle.dbuf allocated */
	uint64_t forgets;

	atomic_uint warned; /* 1 << enum fuse_budget: warned once */
	atomic_uint_fast64_t over_budget;
};

/* One request as the dispatcher hands it to an opcode. */
struct fuse_req {
	struct fuse_server *s;
	struct fuse_in_header hdr;
	const uint8_t *arg; /* gathered arguments (never WRITE data) */
	size_t arglen;
	const struct iovec *in; /* the raw segments, for WRITE data */
	unsigned int nin;
	const struct iovec *out;
	unsigned int nout;
	size_t room; /* device-writable bytes */
};

/* A node in use by one request: the fd stays open until fuse_ino_put. */
struct fuse_iref {
	uint32_t idx;
	int fd;
	mode_t type;
};

struct fuse_href {
	uint32_t idx;
	int fd;
	bool dir;
};

/* fuse_table.c */
int fuse_table_init(struct fuse_server *s);
void fuse_table_reset(struct fuse_server *s, bool all);
int fuse_table_set_root(struct fuse_server *s, int fd, const struct stat *st);
void fuse_table_free(struct fuse_server *s);
int fuse_ino_get(struct fuse_server *s, uint64_t nodeid, struct fuse_iref *r);
void fuse_ino_put(struct fuse_server *s, const struct fuse_iref *r);
/* Resolve one validated name below @dirfd and take a lookup reference. */
int fuse_ino_lookup(struct fuse_server *s, int dirfd, const char *name, uint64_t *nodeid,
		    uint32_t *gen, struct stat *st);
void fuse_ino_forget(struct fuse_server *s, uint64_t nodeid, uint64_t n);
int fuse_fh_new(struct fuse_server *s, int fd, bool dir, uint64_t *fh);
int fuse_fh_get(struct fuse_server *s, uint64_t fh, bool dir, struct fuse_href *r);
void fuse_fh_put(struct fuse_server *s, const struct fuse_href *r);
int fuse_fh_release(struct fuse_server *s, uint64_t fh, bool dir);
pthread_mutex_t *fuse_fh_lock(struct fuse_server *s, uint32_t idx);

/* fuse_server.c: replies and helpers */
/* Count a request a budget refused; the first of each kind warns on the host. */
void fuse_over_budget(struct fuse_server *s, enum fuse_budget b);
/* The permission bits a guest may set on an object of type @type (allow_setid). */
mode_t fuse_allowed_mode(const struct fuse_server *s, mode_t type, mode_t mode);
/* A file opened for writing through @fd loses S_ISUID (and S_ISGID with S_IXGRP) unless
 * allow_setid: the kernel does it for writers without CAP_FSETID, which the server has. */
int fuse_kill_setid(const struct fuse_server *s, int fd);
ssize_t fuse_reply(struct fuse_req *r, const void *p, size_t n);
ssize_t fuse_reply2(struct fuse_req *r, const void *p1, size_t n1, const void *p2, size_t n2);
int fuse_check_name(const uint8_t *p, size_t len, const char **name, size_t *used);
int fuse_open_beneath(int dirfd, const char *name, int flags, mode_t mode);
int fuse_reopen(struct fuse_server *s, const struct fuse_iref *n, int flags);
void fuse_fill_attr(struct fuse_server *s, struct fuse_attr *a, const struct stat *st);
void fuse_fill_entry(struct fuse_server *s, struct fuse_entry_out *e, uint64_t nodeid, uint32_t gen,
		     const struct stat *st);
uint32_t fuse_uid_to_host(const struct fs_idmap *m, uint32_t id);
uint32_t fuse_uid_to_guest(const struct fs_idmap *m, uint32_t id);
int fuse_stat_fd(int fd, struct stat *st);
/* Guest open flags -> host flags, or -EINVAL / -EROFS. */
int fuse_open_flags(uint32_t f, bool readonly);

/* fuse_ops.c: node operations; fuse_io.c: handles, data, DAX, xattrs */
ssize_t fuse_op_lookup(struct fuse_req *r);
ssize_t fuse_op_forget(struct fuse_req *r);
ssize_t fuse_op_batch_forget(struct fuse_req *r);
ssize_t fuse_op_getattr(struct fuse_req *r);
ssize_t fuse_op_setattr(struct fuse_req *r);
ssize_t fuse_op_readlink(struct fuse_req *r);
ssize_t fuse_op_symlink(struct fuse_req *r);
ssize_t fuse_op_mknod(struct fuse_req *r);
ssize_t fuse_op_mkdir(struct fuse_req *r);
ssize_t fuse_op_unlink(struct fuse_req *r);
ssize_t fuse_op_rmdir(struct fuse_req *r);
ssize_t fuse_op_rename(struct fuse_req *r);
ssize_t fuse_op_rename2(struct fuse_req *r);
ssize_t fuse_op_link(struct fuse_req *r);
ssize_t fuse_op_statfs(struct fuse_req *r);
ssize_t fuse_op_access(struct fuse_req *r);
ssize_t fuse_op_create(struct fuse_req *r);
ssize_t fuse_op_open(struct fuse_req *r);
ssize_t fuse_op_opendir(struct fuse_req *r);
ssize_t fuse_op_read(struct fuse_req *r);
ssize_t fuse_op_write(struct fuse_req *r);
ssize_t fuse_op_release(struct fuse_req *r);
ssize_t fuse_op_releasedir(struct fuse_req *r);
ssize_t fuse_op_fsync(struct fuse_req *r);
ssize_t fuse_op_flush(struct fuse_req *r);
ssize_t fuse_op_readdir(struct fuse_req *r);
ssize_t fuse_op_readdirplus(struct fuse_req *r);
ssize_t fuse_op_fallocate(struct fuse_req *r);
ssize_t fuse_op_lseek(struct fuse_req *r);
ssize_t fuse_op_copy_file_range(struct fuse_req *r);
ssize_t fuse_op_getxattr(struct fuse_req *r);
ssize_t fuse_op_listxattr(struct fuse_req *r);
ssize_t fuse_op_setxattr(struct fuse_req *r);
ssize_t fuse_op_removexattr(struct fuse_req *r);
ssize_t fuse_op_setupmapping(struct fuse_req *r);
ssize_t fuse_op_removemapping(struct fuse_req *r);

#endif
