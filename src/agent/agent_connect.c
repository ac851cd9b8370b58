// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A stream to the guest agent of a running VM, through the VM's control socket: its
 * "vsock PORT" request hands us a socket on which the vsock device answers "OK <port>"
 * once the guest accepted (docs/api.md, docs/vsock.md).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent_connect.h"
#include "api.h"
#include "util.h"

static int __attribute__((format(printf, 4, 5)))
fail(int ret, char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return ret;
}

/* The device's "OK <n>\n", byte by byte: what follows it is the agent's. */
static int read_ok(int fd, int timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000;
	char line[32];
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ns();
		ssize_t r;
		int w;

		if (now >= end)
			return -ETIMEDOUT;
		w = poll(&p, 1, (int)((end - now + 999999) / 1000000));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (!w)
			return -ETIMEDOUT;
		r = read(fd, line + n, 1);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0)
			return errno == ECONNRESET ? -ECONNREFUSED : -errno;
		if (!r)
			return -ECONNREFUSED; /* nothing listens on the port: the device hung up */
		if (line[n] == '\n') {
			line[n] = '\0';
			return strncmp(line, "OK ", 3) ? -EPROTO : 0;
		}
		if (++n == sizeof(line))
			return -EPROTO;
	}
}

int agent_connect_api(const char *api_socket, uint32_t port, int timeout_ms, int wait_ms, int *out,
		      char *err, size_t errlen)
{
	uint64_t until = now_ns() + (uint64_t)wait_ms * 1000000;
	bool answered;
	char req[32];
	int fd, ret;

	*out = -1;
	snprintf(req, sizeof(req), "vsock %u", port);
	for (;;) {
		ret = api_request_fd(api_socket, req, timeout_ms, &fd, &answered, err, errlen);
		/* No VM there yet (the socket is made as the VM starts), or not its VM yet. */
		if ((answered ? ret == -ESRCH : ret == -ENOENT || ret == -ECONNREFUSED) &&
		    now_ns() < until) {
			sleep_ms(100);
			continue;
		}
		if (ret)
			return ret;
		ret = read_ok(fd, timeout_ms);
		if (!ret) {
			*out = fd;
			return 0;
		}
		close(fd);
		/* Refused, or not answered: the guest's vsock driver or agent may not be up
		 * yet (booting). */
		if ((ret != -ECONNREFUSED && ret != -ETIMEDOUT) || now_ns() >= until)
			break;
		sleep_ms(100);
	}
	if (ret == -ECONNREFUSED)
		return fail(ret, err, errlen,
			    "nothing listens on vsock port %u in the guest (is minivmm-agent "
			    "running? docs/agent.md)",
			    port);
	if (ret == -ETIMEDOUT)
		return fail(ret, err, errlen,
			    "the guest did not accept vsock port %u within %.3g s", port,
			    timeout_ms / 1000.0);
	return fail(ret, err, errlen, "vsock port %u: %s", port,
		    ret == -EPROTO ? "bad answer from the vsock device" : strerror(-ret));
}
