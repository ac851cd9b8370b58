// SPDX-License-Identifier: GPL-2.0-or-later
/* The control socket's client side and the protocol helpers both sides share. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "util.h"

#define REPLY_MAX (1 << 20) /* a server that never ends its line */

const char *api_errno_name(int err, char buf[16])
{
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, 16, "E%d", err);
	return buf;
}

static int errno_from_name(const char *name, size_t len)
{
	char buf[16];
	int e;

	for (e = 1; e < 4096; e++) {
		const char *n = api_errno_name(e, buf);

		if (strlen(n) == len && !memcmp(n, name, len))
			return e;
	}
	return EIO;
}

int api_reply_parse(const char *reply, const char **body)
{
	const char *colon;

	*body = "";
	if (!strcmp(reply, "ok"))
		return 0;
	if (!strncmp(reply, "ok ", 3)) {
		*body = reply + 3;
		return 0;
	}
	colon = strncmp(reply, "error ", 6) ? NULL : strstr(reply + 6, ": ");
	if (!colon || colon == reply + 6) {
		*body = reply;
		return -EPROTO;
	}
	*body = colon + 2;
	return -errno_from_name(reply + 6, colon - (reply + 6));
}

int api_json_append_string(char *buf, size_t size, const char *s)
{
	size_t start = strlen(buf), n = start;
	const unsigned char *p;

#define PUT(c)                                                                                     \
	do {                                                                                       \
		if (n + 1 >= size)                                                                 \
			goto full;                                                                 \
		buf[n++] = (c);                                                                    \
	} while (0)
	PUT('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			PUT('\\');
			PUT(*p);
		} else if (*p < 0x20) {
			if (n + 6 >= size)
				goto full;
			n += snprintf(buf + n, size - n, "\\u%04x", *p);
		} else {
			PUT(*p); /* bytes >= 0x80 as they are: paths are bytes */
		}
	}
	PUT('"');
#undef PUT
	buf[n] = '\0';
	return 0;
full:
	if (size)
		buf[start] = '\0';
	return -ENOSPC;
}

/* ms left until @deadline (0: none), for poll(): -1 forever, 0 expired. */
static int left_ms(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, left_ms(deadline));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int send_all(int fd, const char *buf, size_t len, uint64_t deadline)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int ret;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ret = wait_fd(fd, POLLOUT, deadline);
			if (ret)
				return ret;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

/* recv() that keeps the first fd passed with the data in *@got_fd (when wanted: else, and
 * past the first, received fds are closed). */
static ssize_t recv_fds(int fd, char *buf, size_t len, int *got_fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b)
	};
	struct cmsghdr *h;
	ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		size_t i, nfd;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int f;

			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (got_fd && *got_fd < 0)
				*got_fd = f;
			else
				close(f);
		}
	}
	return n;
}

static bool is_notice(const char *line)
{
	return !strncmp(line, "{\"minivmm\":", 11) || !strncmp(line, "{\"event\":", 9);
}

static int read_line(int fd, char *reply, size_t len, uint64_t deadline, int *got_fd)
{
	size_t got = 0, total = 0;
	char chunk[512];
	ssize_t n, i;
	int ret;

	for (;;) {
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret)
			return ret;
		/* Byte by byte when an fd may come: nothing past the reply's line is taken. */
		n = recv_fds(fd, chunk, got_fd ? 1 : sizeof(chunk), got_fd);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPROTO; /* closed before the end of a reply */
		for (i = 0; i < n; i++) {
			if (chunk[i] == '\n') {
				reply[got] = '\0';
				/* The greeting and events are not the reply (docs/api.md). */
				if (is_notice(reply)) {
					got = total = 0;
					continue;
				}
				return got == total ? 0 : -EMSGSIZE;
			}
			if (got + 1 < len)
				reply[got++] = chunk[i];
			if (++total > REPLY_MAX) {
				reply[got] = '\0';
				return -EMSGSIZE;
			}
		}
		reply[got] = '\0';
	}
}

int api_call_fd(const char *path, const char *request, char *reply, size_t len, int timeout_ms,
		int *got_fd)
{
	uint64_t deadline = timeout_ms > 0 ? now_ns() + timeout_ms * 1000000ULL : 0;
	int fd, ret;

	if (got_fd)
		*got_fd = -1;
	if (!len || timeout_ms < 0 || strchr(request, '\n'))
		return -EINVAL;
	reply[0] = '\0';
	/* connect() to a full backlog waits at most the timeout. */
	fd = unix_connect(path, 0, timeout_ms);
	if (fd < 0)
		return fd;
	if (fcntl(fd, F_SETFL, O_NONBLOCK)) {
		ret = -errno;
		goto out;
	}
	ret = send_all(fd, request, strlen(request), deadline);
	if (!ret)
		ret = send_all(fd, "\n", 1, deadline);
	/* A server that refuses a request early may close before reading it all. */
	if (!ret || ret == -EPIPE || ret == -ECONNRESET) {
		int err = read_line(fd, reply, len, deadline, got_fd);

		ret = ret && err == -EPROTO ? ret : err;
	}
out:
	close(fd);
	if (ret && got_fd && *got_fd >= 0) {
		close(*got_fd);
		*got_fd = -1;
	}
	return ret;
}

int api_call(const char *path, const char *request, char *reply, size_t len, int timeout_ms)
{
	return api_call_fd(path, request, reply, len, timeout_ms, NULL);
}

int api_request_fd(const char *path, const char *request, int timeout_ms, int *fd, bool *answered,
		   char *err, size_t errlen)
{
	char reply[512];
	const char *body;
	int ret;

	*answered = false;
	ret = api_call_fd(path, request, reply, sizeof(reply), timeout_ms, fd);
	if (ret == -ETIMEDOUT)
		snprintf(err, errlen, "no reply from %s within %.3g s", path, timeout_ms / 1000.0);
	else if (ret == -EPROTO)
		snprintf(err, errlen, "%s closed the connection without a reply", path);
	else if (ret)
		snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(-ret));
	if (ret)
		return ret;
	*answered = true;
	ret = api_reply_parse(reply, &body);
	if (ret == -EPROTO)
		snprintf(err, errlen, "unexpected reply from %s: '%.200s'", path, reply);
	else if (ret)
		snprintf(err, errlen, "%s: %s", path, body);
	else if (*fd < 0)
		snprintf(err, errlen, "%s answered without a descriptor", path), ret = -EPROTO;
	if (ret && *fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	return ret;
}
