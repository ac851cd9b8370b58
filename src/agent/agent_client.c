// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host side of the guest agent protocol (agent_client.h). Each call sends one request
 * and reads its answer; the agent's frames are checked by type, size and content before
 * anything is done with them.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_client.h"
#include "agent/agent_io.h"
#include "util.h"

#define SIGQ_MAX 8 /* signals waiting to be sent; more are dropped */

struct agent_conn {
	int fd, cancel_fd, timeout_ms;
	int broken; /* < 0: the stream is out of step; every call returns it */
	bool hello;
	uint64_t caps;
	struct agent_rd rd;
	struct agent_wr wr;
	char msg[AGENT_MSG_MAX + 128];
};

struct agent_conn *agent_conn_new(int fd)
{
	struct agent_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->cancel_fd = -1;
	c->timeout_ms = AGENT_CLIENT_TIMEOUT_MS;
	if (agent_rd_init(&c->rd) || agent_wr_init(&c->wr)) {
		agent_conn_free(c);
		return NULL;
	}
	return c;
}

void agent_conn_free(struct agent_conn *c)
{
	if (!c)
		return;
	agent_rd_free(&c->rd);
	agent_wr_free(&c->wr);
	free(c);
}

uint64_t agent_conn_caps(const struct agent_conn *c)
{
	return c->caps;
}

void agent_conn_set_timeout(struct agent_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : -1;
}

void agent_conn_set_cancel_fd(struct agent_conn *c, int fd)
{
	c->cancel_fd = fd;
}

const char *agent_conn_error(const struct agent_conn *c)
{
	return c->msg;
}

bool agent_conn_usable(const struct agent_conn *c)
{
	return c->hello && !c->broken;
}

static int vfail(struct agent_conn *c, int err, const char *fmt, va_list ap)
{
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	return err;
}

/* A failure that leaves the connection usable. */
static int __attribute__((format(printf, 3, 4)))
fail(struct agent_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, err, fmt, ap);
	va_end(ap);
	return err;
}

/* A failure after which the stream is out of step. */
static int __attribute__((format(printf, 3, 4)))
broken(struct agent_conn *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, err, fmt, ap);
	va_end(ap);
	c->broken = err;
	return err;
}

static int io_error(struct agent_conn *c, int err, const char *during)
{
	switch (err) {
	case -EPROTO:
		return broken(c, err, "%s: the agent sent a bad frame header", during);
	case -ESHUTDOWN:
	case -ECONNRESET:
	case -EPIPE:
		return broken(c, -EPIPE, "%s: the agent closed the connection", during);
	case -ETIMEDOUT:
		return broken(c, err, "%s: no answer from the agent in %d ms", during,
			      c->timeout_ms);
	case -ECANCELED:
		return broken(c, err, "%s: cancelled", during);
	default:
		return broken(c, err, "%s: %s", during, strerror(-err));
	}
}

static int send_frame(struct agent_conn *c, uint16_t type, const void *p, uint32_t len,
		      const char *during)
{
	int ret = agent_send_frame(c->fd, type, p, len, c->cancel_fd, c->timeout_ms);

	return ret ? io_error(c, ret, during) : 0;
}

/* The next frame into c->rd. */
static int recv_frame(struct agent_conn *c, const char *during)
{
	int ret = agent_rd_frame(&c->rd, c->fd, c->cancel_fd, c->timeout_ms);

	return ret < 0 ? io_error(c, ret, during) : 0;
}

static int unexpected(struct agent_conn *c, const char *during)
{
	return broken(c, -EPROTO, "%s: the agent sent an unexpected %s frame", during,
		      agent_type_name(c->rd.h.type));
}

/* The ERROR frame in c->rd as -errno, its message kept; the stream stays in step. */
static int agent_error(struct agent_conn *c, const char *during)
{
	char msg[AGENT_MSG_MAX + 1];
	int err;

	if (agent_error_decode(c->rd.buf, c->rd.h.len, &err, msg, sizeof(msg)))
		return broken(c, -EPROTO, "%s: the agent sent a bad ERROR", during);
	return fail(c, -err, "%s: %s", during, msg);
}

/* Ready for a request needing @cap? */
static int check(struct agent_conn *c, uint64_t cap, const char *during)
{
	if (c->broken)
		return c->broken;
	if (!c->hello)
		return fail(c, -ENOTCONN, "%s: no HELLO exchanged yet", during);
	if ((c->caps & cap) != cap)
		return fail(c, -EOPNOTSUPP, "%s: the agent does not serve it", during);
	c->msg[0] = '\0';
	return 0;
}

int agent_hello(struct agent_conn *c)
{
	uint8_t p[AGENT_HELLO_SIZE];
	struct agent_hello h;
	int ret;

	if (c->broken)
		return c->broken;
	if (c->hello)
		return fail(c, -EALREADY, "hello: already done");
	agent_hello_encode(p, AGENT_VERSION, AGENT_CAPS_ALL);
	ret = send_frame(c, AGENT_HELLO, p, sizeof(p), "hello");
	if (!ret)
		ret = recv_frame(c, "hello");
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR) {
		ret = agent_error(c, "hello");
		c->broken = ret; /* the agent closes after refusing a HELLO */
		return ret;
	}
	if (c->rd.h.type != AGENT_HELLO)
		return unexpected(c, "hello");
	if (agent_hello_decode(c->rd.buf, c->rd.h.len, &h))
		return broken(c, -EPROTO, "hello: the agent sent a bad HELLO");
	if (h.version != AGENT_VERSION)
		return broken(c, -EPROTONOSUPPORT, "hello: the agent speaks version %u, not %u",
			      h.version, AGENT_VERSION);
	c->caps = h.caps;
	c->hello = true;
	return 0;
}

/* An exec in progress. */
struct cx {
	struct agent_conn *c;
	const struct agent_exec_spec *spec;
	const struct agent_exec_ops *ops;
	void *opaque;
	struct agent_exec_result *res;
	int stdin_fd;  /* -1 once at EOF (or not forwarded) */
	bool send_eof; /* STDIN_EOF is due */
	int signal_fd; /* -1 once at EOF (or none) */
	int sigq[SIGQ_MAX], nsig;
	bool exited;
	int64_t deadline; /* -1: none */
};

/* Queue the next control frame, if the sender is free: signals first, then EOF. */
static void queue_control(struct cx *x)
{
	struct agent_wr *wr = &x->c->wr;

	if (agent_wr_busy(wr) || x->exited)
		return;
	if (x->nsig) {
		agent_u32_encode(agent_wr_payload(wr), x->sigq[0]);
		agent_wr_queue(wr, AGENT_SIGNAL, AGENT_U32_SIZE);
		memmove(x->sigq, x->sigq + 1, --x->nsig * sizeof(x->sigq[0]));
	} else if (x->send_eof) {
		agent_wr_queue(wr, AGENT_STDIN_EOF, 0);
		x->send_eof = false;
	}
}

static int on_frame(struct cx *x)
{
	struct agent_conn *c = x->c;
	struct agent_rd *rd = &c->rd;
	struct agent_exit e;
	int ret;

	switch (rd->h.type) {
	case AGENT_STDOUT:
	case AGENT_STDERR:
		if (!x->ops || !x->ops->output)
			return 0;
		ret = x->ops->output(x->opaque, rd->h.type == AGENT_STDOUT ? AGENT_OUT : AGENT_ERR,
				     rd->buf, rd->h.len);
		return ret < 0 ? broken(c, ret, "exec: output: %s", strerror(-ret)) : 0;
	case AGENT_EXIT:
		if (agent_exit_decode(rd->buf, rd->h.len, &e))
			return broken(c, -EPROTO, "exec: the agent sent a bad EXIT");
		x->res->signaled = e.flags & AGENT_EXIT_SIGNALED;
		x->res->timed_out = e.flags & AGENT_EXIT_TIMEDOUT;
		x->res->core = e.flags & AGENT_EXIT_CORE;
		x->res->status = e.status;
		x->exited = true;
		return 0;
	default:
		return unexpected(c, "exec");
	}
}

static int read_stdin(struct cx *x)
{
	struct agent_wr *wr = &x->c->wr;
	ssize_t n;

	do
		n = read(x->stdin_fd, agent_wr_payload(wr), AGENT_DATA_MAX);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0)
		return broken(x->c, -errno, "exec: reading stdin: %s", strerror(errno));
	if (!n) {
		x->stdin_fd = -1;
		x->send_eof = true;
		return 0;
	}
	agent_wr_queue(wr, AGENT_STDIN, n);
	return 0;
}

static void read_signals(struct cx *x)
{
	int sigs[SIGQ_MAX];
	ssize_t n;

	do
		n = read(x->signal_fd, sigs, sizeof(sigs));
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		x->signal_fd = -1;
		return;
	}
	for (size_t i = 0; i < (size_t)n / sizeof(int); i++)
		if (sigs[i] > 0 && sigs[i] <= AGENT_SIG_MAX && x->nsig < SIGQ_MAX)
			x->sigq[x->nsig++] = sigs[i];
}

/* Relay stdin and signals out, output in, until EXIT (and what we were sending is out). */
static int exec_loop(struct cx *x)
{
	struct agent_conn *c = x->c;
	int ret;

	for (;;) {
		struct pollfd pfd[4];
		int n = 0, i_in = -1, i_sig = -1, i_cancel = -1, timeout = -1;

		queue_control(x);
		ret = agent_wr_flush(&c->wr, c->fd);
		if (ret < 0)
			return io_error(c, ret, "exec");
		/* A frame begun must be finished, EXIT or not: the agent reads it whole. */
		if (x->exited && !agent_wr_busy(&c->wr))
			return 0;
		pfd[n++] = (struct pollfd){ .fd = c->fd,
					    .events = (x->exited ? 0 : POLLIN) |
						      (agent_wr_busy(&c->wr) ? POLLOUT : 0) };
		if (!x->exited && x->stdin_fd >= 0 && !agent_wr_busy(&c->wr) && !x->nsig) {
			i_in = n;
			pfd[n++] = (struct pollfd){ .fd = x->stdin_fd, .events = POLLIN };
		}
		if (!x->exited && x->signal_fd >= 0) {
			i_sig = n;
			pfd[n++] = (struct pollfd){ .fd = x->signal_fd, .events = POLLIN };
		}
		if (c->cancel_fd >= 0) {
			i_cancel = n;
			pfd[n++] = (struct pollfd){ .fd = c->cancel_fd, .events = POLLIN };
		}
		if (x->exited) {
			timeout = c->timeout_ms;
		} else if (x->deadline >= 0) {
			int64_t left = x->deadline - agent_now_ms();

			if (left <= 0)
				return broken(
				    c, -ETIMEDOUT,
				    "exec: the agent did not end the command at its timeout");
			timeout = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		ret = poll(pfd, n, timeout);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return broken(c, -errno, "exec: poll: %s", strerror(errno));
		if (!ret && x->exited)
			return io_error(c, -ETIMEDOUT, "exec");
		if (i_cancel >= 0 && pfd[i_cancel].revents)
			return io_error(c, -ECANCELED, "exec");
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			while (!x->exited) {
				ret = agent_rd_step(&c->rd, c->fd);
				if (!ret)
					break;
				if (ret < 0)
					return io_error(c, ret, "exec");
				ret = on_frame(x);
				if (ret)
					return ret;
			}
		}
		if (i_sig >= 0 && pfd[i_sig].revents)
			read_signals(x);
		if (i_in >= 0 && pfd[i_in].revents && !x->exited) {
			ret = read_stdin(x);
			if (ret)
				return ret;
		}
	}
}

/* Encode the EXEC request for @spec into @buf (AGENT_EXEC_MAX bytes). */
static int encode_exec(struct agent_conn *c, const struct agent_exec_spec *spec, uint8_t *buf)
{
	struct agent_exec_req r = {
		.timeout_ms = spec->timeout_ms,
		.grace_ms = spec->grace_ms,
		.uid = spec->uid,
		.gid = spec->gid,
		.cwd = spec->cwd,
		.argv = spec->argv,
		.env = spec->env,
	};
	int ret;

	r.flags = (spec->forward_stdin ? AGENT_EXEC_STDIN : 0) |
		  (spec->env_clear ? AGENT_EXEC_ENV_CLEAR : 0) |
		  (spec->set_uid ? AGENT_EXEC_UID : 0) | (spec->set_gid ? AGENT_EXEC_GID : 0);
	while (spec->argv && spec->argv[r.argc] && r.argc <= AGENT_ARGS_MAX)
		r.argc++;
	while (spec->env && spec->env[r.envc] && r.envc <= AGENT_ARGS_MAX)
		r.envc++;
	ret = agent_exec_encode(buf, AGENT_EXEC_MAX, &r);
	if (ret == -E2BIG)
		return fail(c, ret, "exec: argv, env and cwd take more than %d bytes",
			    AGENT_EXEC_MAX);
	if (ret < 0)
		return fail(c, ret,
			    "exec: bad request (empty argv, more than %d entries, an env entry "
			    "without '=', or a cwd too long)",
			    AGENT_ARGS_MAX);
	return ret;
}

int agent_exec(struct agent_conn *c, const struct agent_exec_spec *spec,
	       const struct agent_exec_ops *ops, void *opaque, struct agent_exec_result *res)
{
	struct cx x = { .c = c,
			.spec = spec,
			.ops = ops,
			.opaque = opaque,
			.res = res,
			.stdin_fd = -1,
			.signal_fd = -1,
			.deadline = -1 };
	uint64_t need = AGENT_CAP_EXEC;
	uint8_t *buf;
	int ret, len;

	if (spec->set_uid || spec->set_gid)
		need |= AGENT_CAP_CREDS;
	if (spec->forward_signals)
		need |= AGENT_CAP_SIGNAL;
	memset(res, 0, sizeof(*res));
	ret = check(c, need, "exec");
	if (ret)
		return ret;
	buf = malloc(AGENT_EXEC_MAX);
	if (!buf)
		return fail(c, -ENOMEM, "exec: out of memory");
	len = encode_exec(c, spec, buf);
	ret = len < 0 ? len : send_frame(c, AGENT_EXEC, buf, len, "exec");
	free(buf);
	if (!ret)
		ret = recv_frame(c, "exec");
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, "exec");
	if (c->rd.h.type != AGENT_STARTED)
		return unexpected(c, "exec");
	if (agent_started_decode(c->rd.buf, c->rd.h.len, &res->pid))
		return broken(c, -EPROTO, "exec: the agent sent a bad STARTED");
	if (ops && ops->started) {
		ret = ops->started(opaque, res->pid);
		if (ret < 0)
			return broken(c, ret, "exec: started: %s", strerror(-ret));
	}
	if (spec->forward_stdin)
		x.stdin_fd = spec->stdin_fd;
	if (spec->forward_signals)
		x.signal_fd = spec->signal_fd;
	/* The agent ends the command at its timeout; one that does not is given up on. */
	if (spec->timeout_ms && c->timeout_ms > 0)
		x.deadline = agent_now_ms() + spec->timeout_ms +
			     (spec->grace_ms ? spec->grace_ms : AGENT_GRACE_MS) + c->timeout_ms;
	return exec_loop(&x);
}

static int capture_output(void *opaque, enum agent_stream stream, const void *buf, size_t len)
{
	struct agent_capture *cap = opaque;
	char **p = stream == AGENT_OUT ? &cap->out : &cap->err;
	size_t *n = stream == AGENT_OUT ? &cap->out_len : &cap->err_len;
	bool *trunc = stream == AGENT_OUT ? &cap->out_truncated : &cap->err_truncated;
	size_t room = cap->max - *n, take = MIN(len, room);
	char *q;

	if (take < len)
		*trunc = true;
	if (!take)
		return 0;
	/* Grow by doubling (never past max) so a long stream costs O(n) copies. */
	q = realloc(*p, MIN(cap->max, MAX(2 * (*n + take), (size_t)4096)) + 1);
	if (!q)
		return -ENOMEM;
	memcpy(q + *n, buf, take);
	*n += take;
	q[*n] = '\0';
	*p = q;
	return 0;
}

int agent_exec_capture(struct agent_conn *c, const struct agent_exec_spec *spec, size_t max,
		       struct agent_capture *cap, struct agent_exec_result *res)
{
	static const struct agent_exec_ops ops = { .output = capture_output };

	*cap = (struct agent_capture){ .max = max };
	return agent_exec(c, spec, &ops, cap, res);
}

void agent_capture_free(struct agent_capture *cap)
{
	free(cap->out);
	free(cap->err);
	cap->out = cap->err = NULL;
}

/* The agent's answer to END (or an ERROR that came before it). */
static int write_reply(struct agent_conn *c, uint64_t sent)
{
	uint64_t total;
	uint32_t flags;

	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, "copy to guest");
	if (c->rd.h.type != AGENT_END)
		return unexpected(c, "copy to guest");
	if (agent_end_decode(c->rd.buf, c->rd.h.len, &total, &flags) || flags || total != sent)
		return broken(c, -EPROTO, "copy to guest: the agent sent a bad END");
	return 0;
}

int agent_copy_to_guest(struct agent_conn *c, int src_fd, const char *path, uint32_t mode,
			uint64_t *copied)
{
	uint8_t *buf = agent_wr_payload(&c->wr), end[AGENT_END_SIZE];
	const char *during = "copy to guest";
	bool replied = false;
	uint64_t sent = 0;
	int ret, len, err = 0;

	if (copied)
		*copied = 0;
	ret = check(c, AGENT_CAP_FILES, during);
	if (ret)
		return ret;
	len = agent_path_encode(buf, AGENT_DATA_MAX, AGENT_WRITE, mode, path);
	if (len < 0)
		return fail(c, -EINVAL, "%s: bad path or mode", during);
	ret = send_frame(c, AGENT_WRITE, buf, len, during);
	if (!ret)
		ret = recv_frame(c, during);
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, during);
	if (c->rd.h.type != AGENT_READY)
		return unexpected(c, during);
	for (;;) {
		ssize_t n;

		/* An early ERROR (a full disk) stops the sending. */
		ret = agent_rd_step(&c->rd, c->fd);
		if (ret < 0)
			return io_error(c, ret, during);
		if (ret) {
			replied = true;
			break;
		}
		n = read(src_fd, buf, AGENT_DATA_MAX);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (!n)
			break;
		ret = send_frame(c, AGENT_DATA, buf, n, during);
		if (ret)
			return ret;
		sent += n;
	}
	if (!replied) {
		agent_end_encode(end, sent, err ? AGENT_END_ABORT : 0);
		ret = send_frame(c, AGENT_END, end, sizeof(end), during);
		if (!ret)
			ret = recv_frame(c, during);
		if (ret)
			return ret;
	} else if (c->rd.h.type == AGENT_ERROR) {
		/* Finish the WRITE: the agent drops DATA until this END. */
		agent_end_encode(end, sent, AGENT_END_ABORT);
		ret = send_frame(c, AGENT_END, end, sizeof(end), during);
		if (ret)
			return ret;
	} else {
		return unexpected(c, during); /* only ERROR may come before END */
	}
	ret = write_reply(c, sent);
	if (err) {
		/* The agent confirms the abort with ECANCELED; ours is the error that counts. */
		if (ret != -ECANCELED && c->broken)
			return ret;
		return fail(c, err, "%s: reading the source: %s", during, strerror(-err));
	}
	if (!ret && copied)
		*copied = sent;
	return ret;
}

int agent_copy_from_guest(struct agent_conn *c, const char *path, int dst_fd, uint64_t max,
			  uint32_t *mode, uint64_t *copied)
{
	const char *during = "copy from guest";
	uint8_t req[AGENT_PATH_MAX];
	uint64_t got = 0, size, total;
	uint32_t m, flags;
	int ret, len;

	if (copied)
		*copied = 0;
	ret = check(c, AGENT_CAP_FILES, during);
	if (ret)
		return ret;
	len = agent_path_encode(req, sizeof(req), AGENT_READ, 0, path);
	if (len < 0)
		return fail(c, -EINVAL, "%s: bad path", during);
	ret = send_frame(c, AGENT_READ, req, len, during);
	if (!ret)
		ret = recv_frame(c, during);
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, during);
	if (c->rd.h.type != AGENT_FILE)
		return unexpected(c, during);
	if (agent_file_decode(c->rd.buf, c->rd.h.len, &size, &m))
		return broken(c, -EPROTO, "%s: the agent sent a bad FILE", during);
	if (mode)
		*mode = m;
	for (;;) {
		ret = recv_frame(c, during);
		if (ret)
			return ret;
		switch (c->rd.h.type) {
		case AGENT_DATA:
			if (c->rd.h.len > max - got)
				return broken(c, -EFBIG, "%s: %s is larger than %llu bytes", during,
					      path, (unsigned long long)max);
			ret = write_all(dst_fd, c->rd.buf, c->rd.h.len);
			if (ret)
				return broken(c, ret, "%s: writing: %s", during, strerror(-ret));
			got += c->rd.h.len;
			if (copied)
				*copied = got;
			break;
		case AGENT_END:
			if (agent_end_decode(c->rd.buf, c->rd.h.len, &total, &flags) || flags ||
			    total != got)
				return broken(c, -EPROTO, "%s: the agent sent a bad END", during);
			return 0;
		case AGENT_ERROR:
			return agent_error(c, during);
		default:
			return unexpected(c, during);
		}
	}
}

int agent_stat(struct agent_conn *c, const char *path, bool nofollow, struct agent_statinfo *st)
{
	uint8_t req[4 + AGENT_PATH_MAX];
	int ret, len;

	ret = check(c, AGENT_CAP_FSOPS, "stat");
	if (ret)
		return ret;
	len = agent_path_encode(req, sizeof(req), AGENT_STAT, nofollow ? AGENT_STAT_NOFOLLOW : 0,
				path);
	if (len < 0)
		return fail(c, -EINVAL, "stat: bad path");
	ret = send_frame(c, AGENT_STAT, req, len, "stat");
	if (!ret)
		ret = recv_frame(c, "stat");
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, "stat");
	if (c->rd.h.type != AGENT_STATINFO)
		return unexpected(c, "stat");
	if (agent_statinfo_decode(c->rd.buf, c->rd.h.len, st))
		return broken(c, -EPROTO, "stat: the agent sent a bad STATINFO");
	return 0;
}

int agent_mkdir(struct agent_conn *c, const char *path, uint32_t mode)
{
	uint8_t req[4 + AGENT_PATH_MAX];
	int ret, len;

	ret = check(c, AGENT_CAP_FSOPS, "mkdir");
	if (ret)
		return ret;
	len = agent_path_encode(req, sizeof(req), AGENT_MKDIR, mode, path);
	if (len < 0)
		return fail(c, -EINVAL, "mkdir: bad path or mode");
	ret = send_frame(c, AGENT_MKDIR, req, len, "mkdir");
	if (!ret)
		ret = recv_frame(c, "mkdir");
	if (ret)
		return ret;
	if (c->rd.h.type == AGENT_ERROR)
		return agent_error(c, "mkdir");
	if (c->rd.h.type != AGENT_OK)
		return unexpected(c, "mkdir");
	return 0;
}
