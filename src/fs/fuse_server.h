/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * In-process FUSE server for virtio-fs: one per [share.N].
 *
 * The device (virtio/fs.c) hands each request chain over as it came: the
 * device-readable segments (struct fuse_in_header, the opcode's arguments,
 * WRITE data) and the device-writable ones (struct fuse_out_header and the
 * reply). The server never trusts a length, count, offset or name it did not
 * check against those segments; every host object is reached through
 * O_PATH|O_NOFOLLOW handles below the share root (openat2 RESOLVE_BENEATH /
 * RESOLVE_NO_SYMLINKS / RESOLVE_NO_MAGICLINKS), never through a path string.
 * Safe to call from several queue threads at once.
 */
#ifndef MINIVMM_FS_FUSE_SERVER_H
#define MINIVMM_FS_FUSE_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum fs_dax_mode { FS_DAX_INODE = 0, FS_DAX_ALWAYS, FS_DAX_NEVER };
enum fs_cache_mode { FS_CACHE_AUTO = 0, FS_CACHE_ALWAYS, FS_CACHE_NONE };

/* One id range: guest ids [guest, guest+count) are host ids [host, host+count). */
struct fs_idmap {
	uint32_t guest, host, count; /* count 0: identity */
};

struct fs_share_opts {
	const char *path; /* host directory, the root the guest sees */
	bool readonly;	  /* enforced here: every modifying opcode gets EROFS */
	enum fs_dax_mode dax;
	enum fs_cache_mode cache;
	bool xattr; /* *XATTR opcodes served (else ENOSYS) */
	/*
	 * What the guest may leave in the share for host users (all off by default;
	 * docs/virtiofs.md, "What the guest may leave for host users"). allow_devices:
	 * MKNOD of device nodes and chmod/chown of existing ones (else EPERM; 0:0
	 * whiteouts always). allow_setid: S_ISUID and S_ISGID as the guest asks (else
	 * S_ISUID is dropped everywhere, S_ISGID off non-directories, and opening a file
	 * for writing clears them as the kernel does for unprivileged writers).
	 * allow_priv_xattr: security.* and trusted.* xattrs may be set and trusted.*
	 * read (security.capability also needs allow_setid).
	 */
	bool allow_devices, allow_setid, allow_priv_xattr;
	unsigned int max_fds; /* open host descriptors per share; 0: default */
	uint64_t dax_window;  /* bytes; 0: no DAX window (SETUPMAPPING -> ENOSYS) */
	struct fs_idmap uid_map, gid_map;
};

/*
 * The DAX window (fs/dax.c implements it on the device side). The server
 * checks moffset/len against the window size and the file against the share
 * before calling; the window clamps to the file's size itself.
 */
struct fuse_dax_ops {
	/* Map @len bytes of @fd at @foffset to window offset @moffset (replacing
	 * whatever was there). @fd is the server's and stays open only for the call. */
	int (*map)(void *ctx, int fd, uint64_t foffset, uint64_t moffset, uint64_t len,
		   bool writable);
	/* Drop [moffset, moffset+len) back to an empty (zero, anonymous) range. */
	int (*unmap)(void *ctx, uint64_t moffset, uint64_t len);
};

struct fuse_server;

/* Open the share; negative errno (and a message on stderr) when @o->path is unusable. */
int fuse_server_new(const struct fs_share_opts *o, const struct fuse_dax_ops *dax, void *dax_ctx,
		    struct fuse_server **out);
/*
 * Serve one request. @in/@nin: device-readable segments; @out/@nout:
 * device-writable ones. Returns the number of reply bytes written into @out
 * (0: the opcode has no reply, FORGET/BATCH_FORGET), or a negative errno when
 * the chain cannot even carry an error reply (no room for fuse_out_header, no
 * fuse_in_header): the device then completes it with length 0.
 */
ssize_t fuse_server_handle(struct fuse_server *s, const struct iovec *in, unsigned int nin,
			   const struct iovec *out, unsigned int nout);
/* Forget every inode and handle the guest held (device reset / DESTROY). */
void fuse_server_reset(struct fuse_server *s);
void fuse_server_free(struct fuse_server *s);

struct fuse_server_stats {
	uint64_t forgets;     /* nodes the guest forgot (FORGET, BATCH_FORGET entries) */
	unsigned int fds;     /* host descriptors held now (nodes and open handles) */
	unsigned int dirbufs; /* directory buffers held now (READDIR in progress) */
	uint64_t over_budget; /* requests refused by a budget (ENFILE, EMFILE, ENOMEM) */
};
void fuse_server_get_stats(struct fuse_server *s, struct fuse_server_stats *st);

#endif
