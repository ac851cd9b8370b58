// SPDX-License-Identifier: GPL-2.0-or-later
/* Agent frames over a stream socket (agent_io.h). Linked into the agent too: libc only. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "agent/agent_io.h"

#define IO_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

int64_t agent_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_rd_init(struct agent_rd *rd)
{
	*rd = (struct agent_rd){ 0 };
	rd->buf = malloc(AGENT_PAYLOAD_MAX + 1);
	return rd->buf ? 0 : -ENOMEM;
}

void agent_rd_free(struct agent_rd *rd)
{
	free(rd->buf);
	rd->buf = NULL;
}

bool agent_rd_partial(const struct agent_rd *rd)
{
	return rd->got && !rd->done;
}

/* A socket error that means the peer is gone. */
static int peer_err(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ENOTCONN ? -EPIPE : -err;
}

/* recv() what is missing of @want bytes at @dst: the count, 0 for nothing yet, or < 0. */
static int rd_some(struct agent_rd *rd, int fd, uint8_t *dst, size_t want)
{
	for (;;) {
		ssize_t n = recv(fd, dst, want, IO_FLAGS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : peer_err(errno);
		if (!n)
			return rd->got ? -ECONNRESET : -ESHUTDOWN;
		rd->got += n;
		return n;
	}
}

int agent_rd_step(struct agent_rd *rd, int fd)
{
	int n;

	if (rd->done) {
		rd->done = false;
		rd->got = 0;
	}
	while (rd->got < AGENT_HDR_SIZE) {
		n = rd_some(rd, fd, rd->hdr + rd->got, AGENT_HDR_SIZE - rd->got);
		if (n <= 0)
			return n;
		if (rd->got < AGENT_HDR_SIZE)
			continue;
		/* Checked before a byte of the payload is read; no way on from here. */
		if (agent_hdr_decode(rd->hdr, &rd->h) < 0) {
			rd->got = 0;
			return -EPROTO;
		}
	}
	while (rd->got < AGENT_HDR_SIZE + rd->h.len) {
		n = rd_some(rd, fd, rd->buf + (rd->got - AGENT_HDR_SIZE),
			    AGENT_HDR_SIZE + rd->h.len - rd->got);
		if (n <= 0)
			return n;
	}
	rd->buf[rd->h.len] = '\0';
	rd->done = true;
	return 1;
}

int agent_wait(int fd, short events, int cancel_fd, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : agent_now_ms() + timeout_ms;
	struct pollfd pfd[2] = { { .fd = fd, .events = events },
				 { .fd = cancel_fd, .events = POLLIN } };

	for (;;) {
		int left = -1, n;

		if (deadline >= 0) {
			int64_t d = deadline - agent_now_ms();

			left = d < 0 ? 0 : d > 0x7fffffff ? 0x7fffffff : (int)d;
		}
		n = poll(pfd, cancel_fd >= 0 ? 2 : 1, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (cancel_fd >= 0 && pfd[1].revents)
			return -ECANCELED;
		if (pfd[0].revents)
			return pfd[0].revents;
		if (!n && !left)
			return -ETIMEDOUT;
	}
}

int agent_rd_frame(struct agent_rd *rd, int fd, int cancel_fd, int timeout_ms)
{
	for (;;) {
		int ret = agent_rd_step(rd, fd);

		if (ret)
			return ret;
		ret = agent_wait(fd, POLLIN, cancel_fd, timeout_ms);
		if (ret < 0)
			return ret;
	}
}

int agent_send_frame(int fd, uint16_t type, const void *payload, uint32_t len, int cancel_fd,
		     int timeout_ms)
{
	uint8_t hdr[AGENT_HDR_SIZE];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)payload, len } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };

	agent_hdr_encode(hdr, type, len);
	while (msg.msg_iovlen) {
		ssize_t n = sendmsg(fd, &msg, IO_FLAGS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int ret = agent_wait(fd, POLLOUT, cancel_fd, timeout_ms);

			if (ret < 0)
				return ret;
			continue;
		}
		if (n < 0)
			return peer_err(errno);
		/* Step past what went out. */
		while (msg.msg_iovlen && (size_t)n >= msg.msg_iov->iov_len) {
			n -= msg.msg_iov->iov_len;
			msg.msg_iov++;
			msg.msg_iovlen--;
		}
		if (msg.msg_iovlen) {
			msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
			msg.msg_iov->iov_len -= n;
		}
	}
	return 0;
}

int agent_wr_init(struct agent_wr *w)
{
	*w = (struct agent_wr){ 0 };
	w->buf = malloc(AGENT_HDR_SIZE + AGENT_DATA_MAX);
	return w->buf ? 0 : -ENOMEM;
}

void agent_wr_free(struct agent_wr *w)
{
	free(w->buf);
	w->buf = NULL;
}

void agent_wr_queue(struct agent_wr *w, uint16_t type, uint32_t len)
{
	agent_hdr_encode(w->buf, type, len);
	w->len = AGENT_HDR_SIZE + len;
	w->off = 0;
}

int agent_wr_flush(struct agent_wr *w, int fd)
{
	while (w->off < w->len) {
		ssize_t n = send(fd, w->buf + w->off, w->len - w->off, IO_FLAGS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : peer_err(errno);
		w->off += n;
	}
	return 1;
}
