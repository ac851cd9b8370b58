// SPDX-License-Identifier: GPL-2.0-or-later
/* Scatter-gather list walkers (see iov.h for the rules they share). */
#include "iov.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

size_t iov_total(const struct iovec *iov, unsigned int cnt)
{
	size_t t = 0;

	for (unsigned int i = 0; i < cnt; i++) {
		if (iov[i].iov_len > SIZE_MAX - t)
			return SIZE_MAX;
		t += iov[i].iov_len;
	}
	return t;
}

enum iov_dir { TO_BUF, FROM_BUF, FILL };

/* The one walk behind the three copies: @len bytes from byte @off of the list. */
static size_t walk(const struct iovec *iov, unsigned int cnt, size_t off, uint8_t *buf, int c,
		   size_t len, enum iov_dir dir)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		uint8_t *base = iov[i].iov_base;
		size_t n = iov[i].iov_len;

		if (off >= n) {
			off -= n;
			continue;
		}
		n -= off;
		if (n > len - done)
			n = len - done;
		if (dir == TO_BUF)
			memcpy(buf + done, base + off, n);
		else if (dir == FROM_BUF)
			memcpy(base + off, buf + done, n);
		else
			memset(base + off, c, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t off, void *buf, size_t len)
{
	return walk(iov, cnt, off, buf, 0, len, TO_BUF);
}

size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t off, const void *buf,
		    size_t len)
{
	return walk(iov, cnt, off, (uint8_t *)buf, 0, len, FROM_BUF);
}

size_t iov_memset(const struct iovec *iov, unsigned int cnt, size_t off, int c, size_t len)
{
	return walk(iov, cnt, off, NULL, c, len, FILL);
}

int iov_range(const struct iovec *iov, unsigned int cnt, size_t off, size_t len,
	      struct iovec *dst, unsigned int max)
{
	unsigned int k = 0;

	for (unsigned int i = 0; i < cnt && len; i++) {
		size_t n = iov[i].iov_len;

		if (off >= n) {
			off -= n;
			continue;
		}
		n -= off;
		if (n > len)
			n = len;
		if (k == max)
			return -ENOBUFS;
		dst[k].iov_base = (uint8_t *)iov[i].iov_base + off;
		dst[k].iov_len = n;
		k++;
		len -= n;
		off = 0;
	}
	return len ? -EINVAL : (int)k;
}

size_t iov_pos_advance(const struct iovec *iov, unsigned int cnt, struct iov_pos *p, size_t n)
{
	size_t done = 0;

	while (p->idx < cnt) {
		size_t left = iov[p->idx].iov_len - p->off;

		if (n - done < left) {
			p->off += n - done;
			return n;
		}
		/* Whole segment (or an empty one): on to the next. */
		done += left;
		p->idx++;
		p->off = 0;
	}
	return done;
}

size_t iov_discard_front(struct iovec **iov, unsigned int *cnt, size_t n)
{
	size_t done = 0;

	while (*cnt && n - done >= (*iov)->iov_len) {
		done += (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt && done < n) {
		(*iov)->iov_base = (uint8_t *)(*iov)->iov_base + (n - done);
		(*iov)->iov_len -= n - done;
		done = n;
	}
	return done;
}
