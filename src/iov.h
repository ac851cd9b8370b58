/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Scatter-gather lists (struct iovec arrays): the one set of walkers the
 * virtio devices, the FUSE server and the block backends share (QEMU's
 * util/iov.c is the model).
 *
 * Offsets and lengths are in bytes from the start of the list; empty
 * segments are skipped wherever they are. One rule for running out of room:
 * nothing is ever cut silently. Copies return how much they moved (less than
 * asked only when the list ends first: the caller compares), and iov_range()
 * fails when its destination has too few entries or the list is too short.
 */
#ifndef MINIVMM_IOV_H
#define MINIVMM_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Sum of the segment lengths, SIZE_MAX if it does not fit. */
size_t iov_total(const struct iovec *iov, unsigned int cnt);

/* Copy @len bytes at byte @off of the list into @buf; returns the bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t off, void *buf, size_t len);
/* Copy @len bytes of @buf to byte @off of the list; returns the bytes copied. */
size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t off, const void *buf,
		    size_t len);
/* Set @len bytes from byte @off of the list to @c; returns the bytes set. */
size_t iov_memset(const struct iovec *iov, unsigned int cnt, size_t off, int c, size_t len);

/*
 * The bytes [@off, @off + @len) of the list as a new list in @dst (at most @max
 * entries, pointing into the same buffers, no empty ones). Returns the entry
 * count, -ENOBUFS when @dst is too small, -EINVAL when the list ends first.
 */
int iov_range(const struct iovec *iov, unsigned int cnt, size_t off, size_t len,
	      struct iovec *dst, unsigned int max);

/* A position in a list that stays constant: segment @idx, byte @off inside it. */
struct iov_pos {
	unsigned int idx;
	size_t off;
};

/*
 * Move @p @n bytes on, and past any empty segments after that (so @p->idx
 * names the segment the next byte is in, or @cnt at the end). Returns the
 * bytes moved: less than @n only at the end of the list.
 */
size_t iov_pos_advance(const struct iovec *iov, unsigned int cnt, struct iov_pos *p, size_t n);

/*
 * Drop the first @n bytes of a list the caller owns (a private copy): whole
 * segments go (*@iov and *@cnt move on), a partial one is cut at the front.
 * Returns the bytes dropped.
 */
size_t iov_discard_front(struct iovec **iov, unsigned int *cnt, size_t n);

#endif
