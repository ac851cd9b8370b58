// SPDX-License-Identifier: GPL-2.0-or-later
/* libminivmm: requests to a VM's control socket, and its events (docs/api.md). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "lib/lib.h"
#include "util.h"

#define CALL_TIMEOUT_MS 30000

/* One request; the reply's body (JSON or message) into @json when given. */
static int call(struct minivmm_vm *vm, const char *req, int timeout_ms, char *json, size_t len)
{
	char reply[API_MSG_MAX + 256];
	const char *body;
	int ret;

	ret = api_call(vm->api, req, reply, sizeof(reply), timeout_ms);
	if (ret)
		return lib_fail(ret, "%s: %s", vm->api,
				ret == -EPROTO ? "closed without a reply" : strerror(-ret));
	ret = api_reply_parse(reply, &body);
	if (ret)
		return lib_fail(ret, "%s: %s", req, body);
	if (json && len)
		snprintf(json, len, "%s", body);
	return 0;
}

int minivmm_pause(struct minivmm_vm *vm)
{
	return call(vm, "pause", CALL_TIMEOUT_MS, NULL, 0);
}

int minivmm_resume(struct minivmm_vm *vm)
{
	return call(vm, "resume", CALL_TIMEOUT_MS, NULL, 0);
}

int minivmm_stop(struct minivmm_vm *vm)
{
	return call(vm, "stop", CALL_TIMEOUT_MS, NULL, 0);
}

int minivmm_status(struct minivmm_vm *vm, char *json, size_t len)
{
	return call(vm, "status", CALL_TIMEOUT_MS, json, len);
}

int minivmm_balloon(struct minivmm_vm *vm, uint64_t size, char *json, size_t len)
{
	char req[40];

	if (size)
		snprintf(req, sizeof(req), "balloon %llu", (unsigned long long)size);
	else
		snprintf(req, sizeof(req), "balloon");
	return call(vm, req, CALL_TIMEOUT_MS, json, len);
}

int minivmm_save(struct minivmm_vm *vm, const char *path, unsigned int flags, char *json,
		 size_t len)
{
	char *abs, *req;
	int ret;

	if (flags & ~(MINIVMM_SAVE_STOP | MINIVMM_SAVE_RAW))
		return lib_fail(-EINVAL, "unknown save flags %#x", flags);
	ret = path_absolute(path, &abs);
	if (ret)
		return lib_fail(ret, "%s: %s", path, strerror(-ret));
	if (strchr(abs, '\n') ||
	    asprintf(&req, "save %s%s%s", flags & MINIVMM_SAVE_STOP ? "--stop " : "",
		     flags & MINIVMM_SAVE_RAW ? "--raw " : "", abs) < 0) {
		free(abs);
		return lib_fail(-EINVAL, "%s: a newline in the path", path);
	}
	/* A big VM takes as long as it takes. */
	ret = call(vm, req, 0, json, len);
	free(req);
	free(abs);
	return ret;
}

/* The event connection: subscribed, the reply read (events may precede nothing else). */
static int subscribe(struct minivmm_vm *vm)
{
	int fd, ret;

	fd = unix_connect(vm->api, SOCK_NONBLOCK, 5000);
	if (fd < 0)
		return lib_fail(fd, "%s: %s", vm->api, strerror(-fd));
	if (send(fd, "subscribe\n", 10, MSG_NOSIGNAL) != 10) {
		ret = -errno;
		close(fd);
		return lib_fail(ret, "%s: %s", vm->api, strerror(-ret));
	}
	vm->ev_fd = fd;
	vm->ev_len = 0;
	return 0;
}

/* A complete line from the buffer into @buf, if there is one: 1; else 0. */
static int take_line(struct minivmm_vm *vm, char *buf, size_t len)
{
	char *nl = memchr(vm->ev_buf, '\n', vm->ev_len);
	size_t n;

	if (!nl)
		return 0;
	n = nl - vm->ev_buf;
	*nl = '\0';
	snprintf(buf, len, "%s", vm->ev_buf);
	memmove(vm->ev_buf, nl + 1, vm->ev_len - n - 1);
	vm->ev_len -= n + 1;
	return 1;
}

int minivmm_next_event(struct minivmm_vm *vm, char *buf, size_t len, int timeout_ms)
{
	uint64_t end = timeout_ms > 0 ? now_ns() + timeout_ms * 1000000ULL : 0;
	int ret = 0;

	pthread_mutex_lock(&vm->ev_lock);
	if (vm->ev_fd < 0)
		ret = subscribe(vm);
	while (!ret) {
		struct pollfd p = { .fd = vm->ev_fd, .events = POLLIN };
		ssize_t n;
		int w;

		if (take_line(vm, buf, len)) {
			const char *body;
			int r;

			if (!strncmp(buf, "{\"event\":", 9))
				break;
			if (!strncmp(buf, "{\"minivmm\":", 11))
				continue; /* the greeting */
			/* The reply to subscribe: a refusal ends the wait. */
			r = api_reply_parse(buf, &body);
			if (r) {
				ret = lib_fail(r, "%s: subscribe: %s", vm->api, body);
				break;
			}
			continue;
		}
		if (vm->ev_len == sizeof(vm->ev_buf)) { /* no line ends: not our server */
			ret = lib_fail(-EPROTO, "%s: a line longer than %zu bytes", vm->api,
				       sizeof(vm->ev_buf));
			break;
		}
		w = poll(&p, 1,
			 timeout_ms < 0	   ? -1
			 : !timeout_ms	   ? 0
			 : now_ns() >= end ? 0
					   : (int)((end - now_ns() + 999999) / 1000000));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = w ? lib_fail(-errno, "poll: %s", strerror(errno))
				: lib_fail(-ETIMEDOUT, "no event yet");
			break;
		}
		n = recv(vm->ev_fd, vm->ev_buf + vm->ev_len, sizeof(vm->ev_buf) - vm->ev_len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			ret = lib_fail(-EPIPE, "the VM stopped");
			break;
		}
		vm->ev_len += n;
	}
	pthread_mutex_unlock(&vm->ev_lock);
	return ret;
}
