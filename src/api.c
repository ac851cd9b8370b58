// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket's server: one thread polls the listening socket, every
 * open connection and a stop eventfd, and runs requests one at a time as
 * their lines complete. Connections are served side by side, so one that
 * sends nothing only holds its own slot until its idle timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "api_int.h"
#include "log.h"
#include "sandbox/sandbox.h"
#include "util.h"
#include "version.h"

#define API_BACKLOG 16
#define STR_(x)	    #x
#define STR(x)	    STR_(x)

const char api_greeting[] =
    "{\"minivmm\":{\"version\":\"" MINIVMM_VERSION
    "\",\"protocol\":" STR(MINIVMM_API_PROTOCOL) "},\"capabilities\":[\"json\",\"ids\","
						 "\"events\",\"vsock\",\"console\",\"balloon\"]}\n";

static bool stop_requested(struct api_server *s)
{
	struct pollfd p = { .fd = s->wake_fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/* Send all of @len, waiting at most the idle timeout for a slow reader. */
int api_send_line(struct api_server *s, int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			n = poll(&p, 1, s->timeout_ms);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return n ? -errno : -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return -errno;
		buf += n;
		len -= n;
	}
	return 0;
}

/* The reply line's first byte carries @fd (SCM_RIGHTS); the rest goes as usual. */
static int send_fd(int sock, const char *buf, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = 1 };
	struct msghdr m = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.b,
		.msg_controllen = sizeof(u.b),
	};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	ssize_t n;

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : n < 0 ? -errno : -EIO;
}

/* The JSON form's reply: {"id":..,"ok":true,"result":{..}} or {..,"ok":false,"error":{..}}. */
static int json_reply(char *line, size_t size, const struct api_conn *c, int err, const char *msg)
{
	char name[16], text[API_MSG_MAX + 64] = "";
	int n;

	n = snprintf(line, size, "{%s%s%s\"ok\":%s", *c->id ? "\"id\":" : "", c->id,
		     *c->id ? "," : "", err >= 0 ? "true" : "false");
	if (n < 0 || (size_t)n >= size)
		return -EINVAL;
	if (err >= 0)
		return n +
		       snprintf(line + n, size - n, ",\"result\":%s}", *msg == '{' ? msg : "{}");
	if (api_json_append_string(text, sizeof(text), *msg ? msg : strerror(-err)))
		strcpy(text, "\"(message too long)\"");
	return n + snprintf(line + n, size - n,
			    ",\"error\":{\"errno\":\"%s\",\"code\":%d,\"message\":%s}}",
			    api_errno_name(-err, name), -err, text);
}

/* A reply is one line: control characters from an op's message become spaces. With
 * @fd >= 0 (on success only) the fd travels with it. Events queued before it go first. */
static int reply_fd(struct api_server *s, struct api_conn *c, int err, const char *msg, int fd)
{
	char line[2 * API_MSG_MAX + 256], name[16];
	char *p;
	int n;

	if (api_conn_flush(s, c, true))
		return -EIO;
	if (c->json)
		n = json_reply(line, sizeof(line), c, err, msg);
	else if (err >= 0)
		n = snprintf(line, sizeof(line), *msg ? "ok %s" : "ok", msg);
	else
		n = snprintf(line, sizeof(line), "error %s: %s", api_errno_name(-err, name),
			     *msg ? msg : strerror(-err));
	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(line) - 1) /* truncated: the '\n' replaces the NUL */
		n = sizeof(line) - 1;
	for (p = line; p < line + n; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	line[n++] = '\n';
	if (fd >= 0 && err >= 0) {
		int ret = send_fd(c->fd, line, fd);

		if (ret)
			return ret;
		return api_send_line(s, c->fd, line + 1, n - 1);
	}
	return api_send_line(s, c->fd, line, n);
}

static int reply(struct api_server *s, struct api_conn *c, int err, const char *msg)
{
	return reply_fd(s, c, err, msg, -1);
}

static int __attribute__((format(printf, 4, 5)))
reply_err(struct api_server *s, struct api_conn *c, int err, const char *fmt, ...)
{
	char msg[API_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return reply(s, c, err, msg);
}

static int do_simple(struct api_server *s, struct api_conn *c, int (*op)(void *), const char *name)
{
	if (!op)
		return reply_err(s, c, -ENOTSUP, "'%s' is not supported", name);
	pr_info("api: %s", name);
	return reply(s, c, op(s->ctx), "");
}

static int do_status(struct api_server *s, struct api_conn *c)
{
	char json[API_MSG_MAX] = "";
	int ret;

	if (!s->ops->status)
		return reply_err(s, c, -ENOTSUP, "'status' is not supported");
	ret = s->ops->status(s->ctx, json, sizeof(json));
	json[sizeof(json) - 1] = '\0';
	return reply(s, c, ret, json);
}

static int do_balloon(struct api_server *s, struct api_conn *c, const struct api_request *req)
{
	char json[API_MSG_MAX] = "";
	int ret;

	if (!s->ops->balloon)
		return reply_err(s, c, -ENOTSUP, "'balloon' is not supported");
	if (req->has_size)
		pr_info("api: balloon %llu", (unsigned long long)req->size);
	ret = s->ops->balloon(s->ctx, req->has_size, req->size, json, sizeof(json));
	json[sizeof(json) - 1] = '\0';
	return reply(s, c, ret, json);
}

static int do_save(struct api_server *s, struct api_conn *c, const struct api_request *req)
{
	char msg[API_MSG_MAX] = "";
	int ret;

	if (!s->ops->save)
		return reply_err(s, c, -ENOTSUP, "'save' is not supported");
	pr_info("api: save%s%s %s", req->stop ? " --stop" : "", req->raw ? " --raw" : "",
		req->path);
	ret = s->ops->save(s->ctx, req->path, req->stop, req->raw, msg, sizeof(msg));
	msg[sizeof(msg) - 1] = '\0';
	return reply(s, c, ret, msg);
}

/* vsock and console: the reply carries a descriptor. */
static int do_fd(struct api_server *s, struct api_conn *c, const struct api_request *req)
{
	char msg[API_MSG_MAX] = "";
	int ret, fd = -1;

	if (req->cmd == API_VSOCK ? !s->ops->vsock : !s->ops->console)
		return reply_err(s, c, -ENOTSUP, "'%s' is not supported",
				 req->cmd == API_VSOCK ? "vsock" : "console");
	if (req->cmd == API_VSOCK) {
		pr_info("api: vsock %u", req->port);
		ret = s->ops->vsock(s->ctx, req->port, &fd, msg, sizeof(msg));
	} else {
		pr_info("api: console");
		ret = s->ops->console(s->ctx, &fd, msg, sizeof(msg));
	}
	msg[sizeof(msg) - 1] = '\0';
	if (!ret && !*msg && req->cmd == API_VSOCK)
		snprintf(msg, sizeof(msg), "{\"port\":%u}", req->port);
	ret = reply_fd(s, c, ret, msg, ret ? -1 : fd);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* One request line (NUL-terminated, without '\n'). */
static int handle_line(struct api_server *s, struct api_conn *c, char *line, size_t len)
{
	const struct api_ops *ops = s->ops;
	struct api_request req;
	char err[API_MSG_MAX];
	int ret;

	if (len && line[len - 1] == '\r') /* nc -C, telnet */
		line[--len] = '\0';
	if (strlen(line) != len)
		return reply_err(s, c, -EINVAL, "NUL byte in request");
	pr_debug("api: request '%s'", line);
	ret = api_parse_request(line, &req, err, sizeof(err));
	c->json = req.json;
	memcpy(c->id, req.id, sizeof(c->id));
	if (ret)
		return reply(s, c, -EINVAL, err);
	switch (req.cmd) {
	case API_PAUSE:
		return do_simple(s, c, ops->pause, "pause");
	case API_RESUME:
		return do_simple(s, c, ops->resume, "resume");
	case API_STATUS:
		return do_status(s, c);
	case API_SAVE:
		return do_save(s, c, &req);
	case API_STOP:
		return do_simple(s, c, ops->stop, "stop");
	case API_VSOCK:
	case API_CONSOLE:
		return do_fd(s, c, &req);
	case API_BALLOON:
		return do_balloon(s, c, &req);
	case API_SUBSCRIBE:
		/* From now on events come here, and the connection never times out. */
		if (!c->out && !(c->out = malloc(API_OUT_MAX)))
			return reply_err(s, c, -ENOMEM, "no memory for the events");
		c->subscribed = true;
		c->deadline_ns = UINT64_MAX;
		return reply(s, c, 0, "");
	}
	return reply_err(s, c, -EINVAL, "unknown command");
}

void api_conn_close(struct api_conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	free(c->out);
	c->out = NULL;
	c->out_len = 0;
	c->subscribed = false;
}

/* Read what @c sent and run its complete lines; false: close it. */
static bool conn_input(struct api_server *s, struct api_conn *c)
{
	ssize_t n;
	char *nl;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false; /* an unterminated last line is not a request */
	c->len += n;
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = nl - c->buf + 1;

		*nl = '\0';
		if (handle_line(s, c, c->buf, used - 1))
			return false;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
		if (!c->subscribed)
			c->deadline_ns = now_ns() + s->timeout_ms * 1000000ULL;
		if (stop_requested(s))
			return false;
	}
	if (c->len == sizeof(c->buf)) {
		reply_err(s, c, -EMSGSIZE, "request longer than %d bytes", API_LINE_MAX);
		return false;
	}
	return true;
}

static void accept_conns(struct api_server *s)
{
	for (int i = 0; i < API_MAX_CONNS; i++) {
		struct api_conn *c = &s->conns[i];

		if (c->fd >= 0)
			continue;
		c->fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c->fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pr_warn("api socket %s: accept: %s", s->path, strerror(errno));
			return;
		}
		c->len = 0;
		c->out_len = 0;
		c->subscribed = false;
		c->deadline_ns = now_ns() + s->timeout_ms * 1000000ULL;
		/* The greeting: what this server speaks, before any request. (A client
		 * already gone still has its requests run, as ever: the replies fail.) */
		if (api_send_line(s, c->fd, api_greeting, strlen(api_greeting)))
			pr_debug("api: greeting: the client is gone");
	}
}

static void *server_thread(void *arg)
{
	struct pollfd p[3 + API_MAX_CONNS];
	struct api_server *s = arg;
	uint64_t now, next;
	int i, n;

	pthread_setname_np(pthread_self(), "api");
	sandbox_thread_enter(SANDBOX_API);
	for (;;) {
		p[0] = (struct pollfd){ .fd = s->wake_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = -1, .events = POLLIN };
		p[2 + API_MAX_CONNS] = (struct pollfd){ .fd = s->ev_fd, .events = POLLIN };
		next = UINT64_MAX;
		for (i = 0; i < API_MAX_CONNS; i++) {
			struct api_conn *c = &s->conns[i];

			if (c->fd < 0)
				p[1].fd = s->listen_fd; /* a free slot */
			else if (c->deadline_ns < next)
				next = c->deadline_ns;
			p[2 + i] = (struct pollfd){ .fd = c->fd,
						    .events = POLLIN | (c->out_len ? POLLOUT : 0) };
		}
		now = now_ns();
		n = poll(p, ARRAY_SIZE(p),
			 next == UINT64_MAX ? -1
			 : next <= now	    ? 0
					    : (int)((next - now + 999999) / 1000000));
		if (n < 0 && errno != EINTR) {
			pr_err("api socket %s: poll: %s", s->path, strerror(errno));
			break;
		}
		if (n < 0)
			continue;
		if (p[0].revents)
			break;
		if (p[2 + API_MAX_CONNS].revents)
			api_events_deliver(s);
		for (i = 0; i < API_MAX_CONNS; i++) {
			struct api_conn *c = &s->conns[i];

			if (c->fd >= 0 && (p[2 + i].revents & POLLOUT) &&
			    api_conn_flush(s, c, false))
				api_conn_close(c);
			else if ((p[2 + i].revents & ~POLLOUT) && c->fd >= 0 && !conn_input(s, c))
				api_conn_close(c);
		}
		if (stop_requested(s))
			break;
		/*
		 * Only connections that sent nothing in this round time out: one
		 * whose request arrived while a long save ran is still served.
		 */
		now = now_ns();
		for (i = 0; i < API_MAX_CONNS; i++) {
			struct api_conn *c = &s->conns[i];

			if (c->fd >= 0 && !(p[2 + i].revents & ~POLLOUT) && c->deadline_ns <= now) {
				pr_debug("api: closing a connection idle for %d ms", s->timeout_ms);
				reply_err(s, c, -ETIMEDOUT, "no request within %d ms",
					  s->timeout_ms);
				api_conn_close(c);
			}
		}
		if (p[1].revents)
			accept_conns(s);
	}
	/* The last events (stopped) still reach the subscribers that read them. */
	api_events_deliver(s);
	for (i = 0; i < API_MAX_CONNS; i++) {
		if (s->conns[i].fd < 0)
			continue;
		api_conn_flush(s, &s->conns[i], true);
		api_conn_close(&s->conns[i]);
	}
	return NULL;
}

/* A socket nobody listens on (a minivmm that died) is removed; anything else stays. */
static int clear_stale(const char *path)
{
	bool replaced;
	int ret = unix_clear_stale(path, &replaced);

	if (replaced)
		pr_info("api socket %s: replacing a stale socket", path);
	else if (ret == -EEXIST)
		pr_err("api socket %s: exists and is not a socket", path);
	else if (ret == -EADDRINUSE)
		pr_err("api socket %s: in use (another process listens on it)", path);
	return ret;
}

static int start_thread(struct api_server *s)
{
	sigset_t all, old;
	int ret;

	/* Signals go to the threads that wait for them, never to this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	ret = -pthread_create(&s->thread, NULL, server_thread, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int api_server_start_timeout(const char *path, const struct api_ops *ops, void *ctx,
			     int client_timeout_ms, struct api_server **out)
{
	struct api_server *s;
	struct sockaddr_un addr;
	bool bound = false;
	struct stat st;
	int i, ret;

	*out = NULL;
	if (client_timeout_ms <= 0)
		return -EINVAL;
	ret = unix_addr(path, &addr);
	if (ret) {
		pr_err("api socket %s: path too long (at most %zu bytes)", path,
		       sizeof(addr.sun_path) - 1);
		return ret;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->ops = ops;
	s->ctx = ctx;
	s->timeout_ms = client_timeout_ms;
	s->wake_fd = -1;
	s->ev_fd = -1;
	pthread_mutex_init(&s->ev_lock, NULL);
	for (i = 0; i < API_MAX_CONNS; i++)
		s->conns[i].fd = -1;
	s->path = strdup(path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!s->path || s->listen_fd < 0) {
		ret = s->path ? -errno : -ENOMEM;
		goto fail;
	}
	ret = clear_stale(path);
	if (ret == -EEXIST || ret == -EADDRINUSE)
		goto fail_quiet;
	if (ret)
		goto fail;
	/*
	 * bind() gives the new inode the socket's own mode minus the umask, so
	 * this makes it owner-only from the start, without touching the
	 * process-wide umask under other threads.
	 */
	if (fchmod(s->listen_fd, 0600)) {
		ret = -errno;
		goto fail;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = -errno;
		if (ret == -EADDRINUSE) { /* created since clear_stale() */
			pr_err("api socket %s: in use", path);
			goto fail_quiet;
		}
		goto fail;
	}
	bound = true;
	if (lstat(path, &st)) {
		ret = -errno;
		goto fail;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	/* An odd umask (0277) may have taken the owner's bits too. */
	if ((st.st_mode & 0600) != 0600 && !chmod(path, 0600))
		st.st_mode |= 0600;
	if (st.st_mode & 077) { /* a kernel that ignored the fchmod */
		ret = -EPERM;
		pr_err("api socket %s: mode %03o is not owner-only", path, st.st_mode & 0777);
		goto fail_quiet;
	}
	if (listen(s->listen_fd, API_BACKLOG)) {
		ret = -errno;
		goto fail;
	}
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0 || s->ev_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = start_thread(s);
	if (ret)
		goto fail;
	pr_info("api socket %s: listening", path);
	*out = s;
	return 0;
fail:
	pr_err("api socket %s: %s", path, strerror(-ret));
fail_quiet:
	if (bound)
		unlink(path);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->ev_fd >= 0)
		close(s->ev_fd);
	pthread_mutex_destroy(&s->ev_lock);
	free(s->path);
	free(s);
	return ret;
}

int api_server_start(const char *path, const struct api_ops *ops, void *ctx,
		     struct api_server **out)
{
	return api_server_start_timeout(path, ops, ctx, API_CLIENT_TIMEOUT_MS, out);
}

void api_server_stop(struct api_server *s)
{
	uint64_t one = 1;
	struct stat st;

	if (!s)
		return;
	if (write(s->wake_fd, &one, sizeof(one)) < 0)
		pr_debug("api stop: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	/* Someone may have replaced it since (a new minivmm on the same path). */
	if (!lstat(s->path, &st) && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	close(s->listen_fd);
	close(s->wake_fd);
	close(s->ev_fd);
	api_events_free(s);
	pthread_mutex_destroy(&s->ev_lock);
	free(s->path);
	free(s);
}
