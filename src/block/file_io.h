/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A tiny file-I/O abstraction for disk image engines.
 *
 * Every byte an image engine reads or writes goes through one ops table, so a
 * test can substitute a recording, fault-injecting implementation (see
 * tests/lib/crashsim.h) for the POSIX one. The two ordering primitives are
 * kept apart on purpose:
 *   sync    - everything written before is durable (fdatasync);
 *   barrier - everything written before reaches the media before anything
 *             written after; durability not required. On a kernel with
 *             BarrierFS this is fdatabarrier(); on stock Linux it falls back
 *             to fdatasync, so engines should design it off the hot path.
 * Counters in struct fio_stats see every call, including those issued through
 * io_uring.
 */
#ifndef MINIVMM_BLOCK_FILE_IO_H
#define MINIVMM_BLOCK_FILE_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct fio;

/* One write of a batch: @len bytes from @buf at @off. */
struct fio_req {
	const void *buf;
	uint64_t off;
	uint32_t len;
};

struct fio_stats {
	uint64_t reads, read_bytes;
	uint64_t writes, write_bytes;
	uint64_t syncs;	   /* fdatasync-equivalents (including fallback barriers) */
	uint64_t barriers; /* barrier() calls, whatever they cost */
	uint64_t batches;  /* submit() calls */
	uint64_t punches, truncates;
};

struct fio_ops {
	/* Whole-buffer I/O: short transfers are retried; reads past EOF give zeros. */
	int (*preadv)(struct fio *f, const struct iovec *iov, int cnt, uint64_t off);
	int (*pwritev)(struct fio *f, const struct iovec *iov, int cnt, uint64_t off);
	int (*sync)(struct fio *f);
	int (*barrier)(struct fio *f);
	int (*truncate)(struct fio *f, uint64_t size);
	int (*size)(struct fio *f, uint64_t *size);
	/* Make [off, off+len) read as zeros without changing the size. */
	int (*punch)(struct fio *f, uint64_t off, uint64_t len);
	/* Write @n requests as one group (io_uring when available), then sync if asked. */
	int (*submit)(struct fio *f, const struct fio_req *reqs, int n, bool sync_after);
	void (*close)(struct fio *f);
};

struct fio {
	const struct fio_ops *ops;
	struct fio_stats st;
	bool has_barrier; /* true when barrier() is ordering-only (cheaper than sync) */
};

enum { FIO_RDONLY = 1, FIO_CREATE = 2, FIO_NO_URING = 4, FIO_EXCL = 8 };

/* Open a POSIX file. Returns a negative errno on failure. */
int fio_open_posix(struct fio **out, const char *path, int flags);
/* The same over a descriptor opened by the caller (FIO_RDONLY, FIO_NO_URING count);
 * on success the fio owns @fd and closes it. */
int fio_from_fd(struct fio **out, int fd, int flags);

/* The descriptor under a POSIX fio, -1 for any other kind. */
int fio_posix_fd(const struct fio *f);

/* Wrappers that count. */
int fio_pread(struct fio *f, void *buf, size_t len, uint64_t off);
int fio_pwrite(struct fio *f, const void *buf, size_t len, uint64_t off);
int fio_preadv(struct fio *f, const struct iovec *iov, int cnt, uint64_t off);
int fio_pwritev(struct fio *f, const struct iovec *iov, int cnt, uint64_t off);
int fio_sync(struct fio *f);
int fio_barrier(struct fio *f);
int fio_truncate(struct fio *f, uint64_t size);
int fio_size(struct fio *f, uint64_t *size);
int fio_punch(struct fio *f, uint64_t off, uint64_t len);
int fio_submit(struct fio *f, const struct fio_req *reqs, int n, bool sync_after);
void fio_close(struct fio *f);

#endif
