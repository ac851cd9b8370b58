/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qcow2 image engine (versions 2 and 3) whose ordering points are barriers.
 *
 * Crash-consistency design (details in docs/qcow2.md):
 *  - On-disk refcounts are always >= the references that can be durable.
 *    Clusters are taken from a pool of *reserved* clusters whose refcount (1)
 *    and zeroed content were made durable by an earlier sync, usually the
 *    previous flush's. A crash can therefore only leak reserved clusters.
 *  - A flush writes the dirty 512-byte sectors of L2/L1/refcount tables as one
 *    io_uring group followed by a single fdatasync; a flush with nothing written
 *    since the last one costs nothing. A barrier is issued only when an L2/L1
 *    update depends on something not yet durable (pool ran dry between
 *    flushes, a new refcount block or table, copy-on-write from a backing file).
 *
 * Thread safety: every call takes one mutex per image (struct qcow2); calls
 * from several I/O threads are serialised. Backing images have their own lock.
 * All offsets and lengths of I/O calls must be multiples of 512.
 */
#ifndef MINIVMM_QCOW2_H
#define MINIVMM_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct fio;
struct qcow2;

enum qcow2_backing_policy {
	QCOW2_BACKING_DENY = 0, /* an image with a backing file does not open */
	QCOW2_BACKING_DIR,	/* backing files must resolve inside backing_dir */
	QCOW2_BACKING_ANY,	/* any path (trusted images only) */
};

#define QCOW2_DEFAULT_BACKING_DEPTH 8
#define QCOW2_MAX_BACKING_DEPTH	    64

/*
 * Backing files: the format is the one the image's header names (qcow2 or raw);
 * an image that names none has a raw backing file. Never probed.
 */
struct qcow2_opts {
	bool readonly;
	enum qcow2_backing_policy backing;
	const char *backing_dir;    /* QCOW2_BACKING_DIR: the allowed directory */
	unsigned int backing_depth; /* max chain length below this image; 0: default */
	/*
	 * NULL-terminated absolute paths of backing files the caller made itself
	 * (frozen snapshot images): a link whose name is exactly one of them and
	 * whose format is qcow2 opens that file (O_NOFOLLOW) whatever the policy.
	 * The rest of the chain obeys the policy.
	 */
	const char *const *trusted;
	const char *policy_hint; /* appended to refusals: how the caller's user allows it */
	size_t l2_cache_bytes;	 /* 0: default (4 MiB) */
	size_t rc_cache_bytes;	 /* 0: default (1 MiB) */
	bool no_uring;
	bool no_repair;	     /* do not repair a dirty lazy_refcounts image on open */
	bool ignore_backing; /* never open the backing file (info, check) */
	bool sparse_reserve; /* reserve clusters as holes, not written zeros */
	struct fio *file;    /* use this file instead of opening path (owned on success) */
};

struct qcow2_stats {
	uint64_t flushes;	/* qcow2_flush calls */
	uint64_t noop_flushes;	/* flushes that had nothing to do */
	uint64_t syncs;		/* fdatasync-equivalents issued by this image */
	uint64_t barriers;	/* ordering points needed (each a sync on stock Linux) */
	uint64_t data_bytes;	/* guest data written */
	uint64_t meta_bytes;	/* metadata bytes written (L1/L2/refcount/header) */
	uint64_t meta_writes;	/* metadata write requests */
	uint64_t allocs;	/* data clusters allocated */
	uint64_t reserved;	/* clusters reserved in advance */
	uint64_t cow_bytes;	/* bytes copied for partial-cluster allocation */
	uint64_t prefill_bytes; /* zeros written ahead over reserved clusters */
};

struct qcow2_info {
	int version;
	unsigned int cluster_bits;
	unsigned int refcount_bits;
	uint64_t size;
	uint64_t file_size;
	bool lazy_refcounts, dirty, corrupt, zstd, has_backing;
	char backing_file[1024];
	char backing_fmt[32];
	uint32_t nb_snapshots;
	uint64_t incompatible, compatible, autoclear;
};

/*
 * Open @path. On failure returns a negative errno and, when @err is given,
 * a one-line reason such as "l1_size 4294967295 exceeds the limit".
 */
int qcow2_open(struct qcow2 **out, const char *path, const struct qcow2_opts *opts, char *err,
	       size_t errlen);
/* Flush (when writable), release reserved clusters, close. */
int qcow2_close(struct qcow2 *q);

uint64_t qcow2_size(struct qcow2 *q);
int qcow2_preadv(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off);
int qcow2_pwritev(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t off);
int qcow2_pread(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_pwrite(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
int qcow2_flush(struct qcow2 *q);
/* Discard: whole clusters are deallocated; partial clusters are left as is. */
int qcow2_discard(struct qcow2 *q, uint64_t off, uint64_t len);
/* After this the range reads as zeros. */
int qcow2_write_zeroes(struct qcow2 *q, uint64_t off, uint64_t len);

void qcow2_get_stats(struct qcow2 *q, struct qcow2_stats *st);
void qcow2_get_info(struct qcow2 *q, struct qcow2_info *info);

/* Image creation. */
struct qcow2_create_opts {
	uint64_t size;
	unsigned int cluster_bits;  /* 0: 16 (64 KiB) */
	int version;		    /* 0: 3 */
	unsigned int refcount_bits; /* 0: 16 */
	bool lazy_refcounts;
	const char *backing_file;
	const char *backing_fmt; /* "qcow2", "raw" or NULL */
};
int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen);
int qcow2_create_fio(struct fio *f, const struct qcow2_create_opts *o, char *err, size_t errlen);

/* Consistency check, as qemu-img check. */
enum qcow2_repair { QCOW2_REPAIR_NONE = 0, QCOW2_REPAIR_LEAKS = 1, QCOW2_REPAIR_ALL = 3 };
struct qcow2_check_result {
	uint64_t corruptions, leaks;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters, image_end;
	uint64_t compressed_clusters, fragmented_clusters; /* as qemu-img check counts them */
	int check_errors; /* internal errors (I/O, unsupported) */
};
/* @log receives one line per finding (qemu-img style); may be NULL. */
int qcow2_check(struct qcow2 *q, enum qcow2_repair repair, struct qcow2_check_result *res,
		void (*log)(void *ctx, const char *line), void *ctx);

/* One run of guest bytes and the layer of the chain that answers reads of it
 * (qemu-img map's fields). */
struct qcow2_map_ent {
	uint64_t start, length;
	unsigned int depth; /* 0: this image, 1: its backing file, ... */
	bool present;	    /* allocated (data or zeros) in the layer at depth */
	bool zero;	    /* reads as zeros */
	bool data;	    /* reads as data (maybe compressed) */
	bool compressed;
	bool has_offset; /* data stored plainly at offset of file */
	uint64_t offset;
	const char *file; /* the layer's file name, valid while the image is open */
};

/* The longest run of one kind starting at guest offset @off (< the virtual size). */
int qcow2_map(struct qcow2 *q, uint64_t off, struct qcow2_map_ent *m);

/*
 * The backing file @q opened (read-only, under the backing policy), opened again for
 * writing through its descriptor (no path lookup: the same file, whatever its name
 * leads to now): a new descriptor in *@fd, its name in *@path (valid while @q is open),
 * *@raw whether it is a raw file. -ENOENT: no backing file.
 */
int qcow2_backing_reopen_rw(struct qcow2 *q, int *fd, const char **path, bool *raw);
/*
 * Name another backing file (@name, of format @fmt, NULL: none named, i.e. raw) or none
 * (@name NULL) in the header, without touching any data (qemu-img rebase -u). The open
 * image keeps reading from the backing file it opened. -ENOSPC: no room in cluster 0.
 */
int qcow2_set_backing(struct qcow2 *q, const char *name, const char *fmt);
/* Unallocate every cluster: reads show the backing file again (qemu-img commit's
 * emptying of the committed image). */
int qcow2_make_empty(struct qcow2 *q);

/* The file layer the image runs on (for tests and counters). */
struct fio *qcow2_file(struct qcow2 *q);

#endif
