// SPDX-License-Identifier: GPL-2.0-or-later
/* POSIX implementation of struct fio, with io_uring for grouped writes. */
#include "block/file_io.h"
#include "iov.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define URING_DEPTH 64

struct posix_fio {
	struct fio f;
	int fd;
	bool uring_ok;
	struct io_uring ring;
};

static struct posix_fio *to_p(struct fio *f)
{
	return (struct posix_fio *)f;
}

static int p_rw(struct fio *f, const struct iovec *iov0, int cnt0, uint64_t off, bool wr)
{
	struct iovec stack[16], *heap = NULL, *iov = stack;
	unsigned int cnt = cnt0 > 0 ? (unsigned int)cnt0 : 0;
	int fd = to_p(f)->fd;

	if (cnt > 16) {
		heap = malloc(sizeof(*iov) * cnt);
		if (!heap)
			return -ENOMEM;
		iov = heap;
	}
	memcpy(iov, iov0, sizeof(*iov) * cnt);
	while (cnt > 0) {
		int n = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
		ssize_t r = wr ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			free(heap);
			return -errno;
		}
		if (r == 0) {
			if (wr) {
				free(heap);
				return -EIO;
			}
			/* Past EOF: the rest reads as zeros. */
			iov_memset(iov, cnt, 0, 0, iov_total(iov, cnt));
			break;
		}
		off += r;
		iov_discard_front(&iov, &cnt, (size_t)r);
	}
	free(heap);
	return 0;
}

static int p_preadv(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	return p_rw(f, iov, cnt, off, false);
}

static int p_pwritev(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	return p_rw(f, iov, cnt, off, true);
}

static int p_sync(struct fio *f)
{
	return fdatasync(to_p(f)->fd) ? -errno : 0;
}

static int p_barrier(struct fio *f)
{
#ifdef __NR_fdatabarrier
	/* BarrierFS: ordering without waiting for durability. */
	if (!syscall(__NR_fdatabarrier, to_p(f)->fd))
		return 0;
#endif
	return p_sync(f);
}

static int p_truncate(struct fio *f, uint64_t size)
{
	return ftruncate(to_p(f)->fd, size) ? -errno : 0;
}

static int p_size(struct fio *f, uint64_t *size)
{
	struct stat st;

	if (fstat(to_p(f)->fd, &st))
		return -errno;
	*size = st.st_size;
	return 0;
}

static int p_punch(struct fio *f, uint64_t off, uint64_t len)
{
	static const char zero[4096];
	int fd = to_p(f)->fd;

	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	if (!fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len))
		return 0;
	/* No hole support: write the zeros. */
	while (len) {
		size_t n = len > sizeof(zero) ? sizeof(zero) : len;
		struct iovec iov = { (void *)zero, n };
		int r = p_rw(f, &iov, 1, off, true);

		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int p_submit_seq(struct fio *f, const struct fio_req *reqs, int n, bool sync_after)
{
	for (int i = 0; i < n; i++) {
		struct iovec iov = { (void *)reqs[i].buf, reqs[i].len };
		int r = p_rw(f, &iov, 1, reqs[i].off, true);

		if (r)
			return r;
	}
	return sync_after ? p_sync(f) : 0;
}

/*
 * Queue the writes, then (when asked) an fdatasync drained behind them, and
 * wait for all. Short writes are finished synchronously afterwards.
 */
static int p_submit(struct fio *f, const struct fio_req *reqs, int n, bool sync_after)
{
	struct posix_fio *p = to_p(f);
	bool fixed = false;
	int err = 0;

	if (!p->uring_ok)
		return p_submit_seq(f, reqs, n, sync_after);
	for (int base = 0; base < n || (sync_after && base == n); base += URING_DEPTH - 1) {
		int chunk = n - base > URING_DEPTH - 1 ? URING_DEPTH - 1 : n - base;
		bool last = base + chunk >= n;
		int queued = 0;

		for (int i = 0; i < chunk; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

			io_uring_prep_write(sqe, p->fd, reqs[base + i].buf, reqs[base + i].len,
					    reqs[base + i].off);
			io_uring_sqe_set_data64(sqe, base + i);
			queued++;
		}
		if (last && sync_after) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

			io_uring_prep_fsync(sqe, p->fd, IORING_FSYNC_DATASYNC);
			sqe->flags |= IOSQE_IO_DRAIN;
			io_uring_sqe_set_data64(sqe, UINT64_MAX);
			queued++;
		}
		int r = io_uring_submit_and_wait(&p->ring, queued);

		if (r < 0)
			return r;
		for (int i = 0; i < queued; i++) {
			struct io_uring_cqe *cqe;
			uint64_t tag;

			r = io_uring_wait_cqe(&p->ring, &cqe);
			if (r < 0)
				return r;
			tag = io_uring_cqe_get_data64(cqe);
			r = cqe->res;
			io_uring_cqe_seen(&p->ring, cqe);
			if (tag == UINT64_MAX) {
				if (r < 0 && !err)
					err = r;
				continue;
			}
			if (r < 0) {
				if (!err)
					err = r;
			} else if ((uint32_t)r < reqs[tag].len) {
				struct iovec iov = { (char *)reqs[tag].buf + r, reqs[tag].len - r };
				int e = p_rw(f, &iov, 1, reqs[tag].off + r, true);

				fixed = true;
				if (e && !err)
					err = e;
			}
		}
		if (last)
			break;
	}
	/* A short write finished after the drained fsync is not yet durable. */
	if (!err && sync_after && fixed)
		return p_sync(f);
	return err;
}

static void p_close(struct fio *f)
{
	struct posix_fio *p = to_p(f);

	if (p->uring_ok)
		io_uring_queue_exit(&p->ring);
	close(p->fd);
	free(p);
}

static const struct fio_ops posix_ops = {
	.preadv = p_preadv,
	.pwritev = p_pwritev,
	.sync = p_sync,
	.barrier = p_barrier,
	.truncate = p_truncate,
	.size = p_size,
	.punch = p_punch,
	.submit = p_submit,
	.close = p_close,
};

int fio_open_posix(struct fio **out, const char *path, int flags)
{
	int oflags = O_CLOEXEC, fd, r;

	oflags |= (flags & FIO_RDONLY) ? O_RDONLY : O_RDWR;
	if (flags & FIO_CREATE)
		oflags |= O_CREAT | ((flags & FIO_EXCL) ? O_EXCL : O_TRUNC);
	fd = open(path, oflags, 0644);
	if (fd < 0)
		return -errno;
	r = fio_from_fd(out, fd, flags);
	if (r)
		close(fd);
	return r;
}

int fio_posix_fd(const struct fio *f)
{
	return f && f->ops == &posix_ops ? ((const struct posix_fio *)f)->fd : -1;
}

int fio_from_fd(struct fio **out, int fd, int flags)
{
	struct posix_fio *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->fd = fd;
	p->f.ops = &posix_ops;
#ifdef __NR_fdatabarrier
	p->f.has_barrier = true;
#endif
	if (!(flags & (FIO_RDONLY | FIO_NO_URING)) && !getenv("MINIVMM_NO_URING"))
		p->uring_ok = io_uring_queue_init(URING_DEPTH, &p->ring, 0) == 0;
	*out = &p->f;
	return 0;
}

int fio_preadv(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	f->st.reads++;
	f->st.read_bytes += iov_total(iov, (unsigned int)cnt);
	return f->ops->preadv(f, iov, cnt, off);
}

int fio_pwritev(struct fio *f, const struct iovec *iov, int cnt, uint64_t off)
{
	f->st.writes++;
	f->st.write_bytes += iov_total(iov, (unsigned int)cnt);
	return f->ops->pwritev(f, iov, cnt, off);
}

int fio_pread(struct fio *f, void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { buf, len };

	return fio_preadv(f, &iov, 1, off);
}

int fio_pwrite(struct fio *f, const void *buf, size_t len, uint64_t off)
{
	struct iovec iov = { (void *)buf, len };

	return fio_pwritev(f, &iov, 1, off);
}

int fio_sync(struct fio *f)
{
	f->st.syncs++;
	return f->ops->sync(f);
}

int fio_barrier(struct fio *f)
{
	f->st.barriers++;
	if (!f->has_barrier)
		f->st.syncs++;
	return f->ops->barrier(f);
}

int fio_truncate(struct fio *f, uint64_t size)
{
	f->st.truncates++;
	return f->ops->truncate(f, size);
}

int fio_size(struct fio *f, uint64_t *size)
{
	return f->ops->size(f, size);
}

int fio_punch(struct fio *f, uint64_t off, uint64_t len)
{
	f->st.punches++;
	return f->ops->punch(f, off, len);
}

int fio_submit(struct fio *f, const struct fio_req *reqs, int n, bool sync_after)
{
	f->st.batches++;
	for (int i = 0; i < n; i++) {
		f->st.writes++;
		f->st.write_bytes += reqs[i].len;
	}
	if (sync_after)
		f->st.syncs++;
	return f->ops->submit(f, reqs, n, sync_after);
}

void fio_close(struct fio *f)
{
	if (f)
		f->ops->close(f);
}
