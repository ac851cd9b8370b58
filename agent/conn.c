// SPDX-License-Identifier: GPL-2.0-or-later
/* One connection: HELLO, then requests one after another until the host hangs up. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

int conn_send(struct conn *c, uint16_t type, const void *payload, uint32_t len)
{
	/* No timeout: a host that stops reading only holds up its own connection. */
	return agent_send_frame(c->fd, type, payload, len, c->stop_fd, -1);
}

static int verror(struct conn *c, int err, const char *fmt, va_list ap)
{
	uint8_t p[4 + AGENT_MSG_MAX];
	char msg[AGENT_MSG_MAX + 1];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (c->verbose)
		alog("conn %u: error %d: %s", c->id, err, msg);
	return conn_send(c, AGENT_ERROR, p, agent_error_encode(p, err, msg));
}

int conn_error(struct conn *c, int err, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = verror(c, err, fmt, ap);
	va_end(ap);
	return ret;
}

int conn_proto_error(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	alog("conn %u: protocol error, closing", c->id);
	verror(c, EPROTO, fmt, ap);
	va_end(ap);
	return -EPROTO;
}

static int hello(struct conn *c)
{
	uint8_t p[AGENT_HELLO_SIZE];
	struct agent_hello h;
	int ret;

	ret = agent_rd_frame(&c->rd, c->fd, c->stop_fd, HELLO_TIMEOUT_MS);
	if (ret == -EPROTO)
		return conn_proto_error(c, "bad frame header");
	if (ret < 0)
		return ret;
	if (c->rd.h.type != AGENT_HELLO)
		return conn_proto_error(c, "expected HELLO, got %s", agent_type_name(c->rd.h.type));
	if (agent_hello_decode(c->rd.buf, c->rd.h.len, &h))
		return conn_proto_error(c, "bad HELLO");
	if (h.version != AGENT_VERSION) {
		conn_error(c, EPROTONOSUPPORT, "protocol version %u not supported (this agent: %u)",
			   h.version, AGENT_VERSION);
		return -EPROTONOSUPPORT;
	}
	agent_hello_encode(p, AGENT_VERSION, AGENT_CAPS_ALL);
	return conn_send(c, AGENT_HELLO, p, sizeof(p));
}

static int fs_stat(struct conn *c)
{
	uint8_t p[AGENT_STATINFO_SIZE];
	struct agent_path_req r;
	struct agent_statinfo si;
	struct stat st;
	int ret;

	if (agent_path_decode(AGENT_STAT, c->rd.buf, c->rd.h.len, &r))
		return conn_proto_error(c, "bad STAT");
	ret = r.arg & AGENT_STAT_NOFOLLOW ? lstat(r.path, &st) : stat(r.path, &st);
	if (ret)
		return conn_error(c, errno, "stat %s: %s", r.path, strerror(errno));
	si = (struct agent_statinfo){
		.mode = st.st_mode & 0177777,
		.uid = st.st_uid,
		.gid = st.st_gid,
		.nlink = st.st_nlink,
		.size = st.st_size,
		.mtime_sec = st.st_mtim.tv_sec,
		.mtime_nsec = st.st_mtim.tv_nsec,
	};
	agent_statinfo_encode(p, &si);
	return conn_send(c, AGENT_STATINFO, p, sizeof(p));
}

static int fs_mkdir(struct conn *c)
{
	struct agent_path_req r;

	if (agent_path_decode(AGENT_MKDIR, c->rd.buf, c->rd.h.len, &r))
		return conn_proto_error(c, "bad MKDIR");
	if (mkdir(r.path, r.arg))
		return conn_error(c, errno, "mkdir %s: %s", r.path, strerror(errno));
	/* The mode as asked, not less the agent's umask (WRITE does the same). */
	if (chmod(r.path, r.arg))
		return conn_error(c, errno, "chmod %s: %s", r.path, strerror(errno));
	return conn_send(c, AGENT_OK, NULL, 0);
}

static int serve(struct conn *c)
{
	int ret = hello(c);

	while (!ret) {
		ret = agent_rd_frame(&c->rd, c->fd, c->stop_fd, -1);
		if (ret == -ESHUTDOWN)
			return 0; /* the host hung up between requests */
		if (ret == -EPROTO)
			return conn_proto_error(c, "bad frame header");
		if (ret < 0)
			return ret;
		if (c->verbose)
			alog("conn %u: %s", c->id, agent_type_name(c->rd.h.type));
		switch (c->rd.h.type) {
		case AGENT_EXEC:
			ret = exec_run(c);
			break;
		case AGENT_READ:
			ret = file_read(c);
			break;
		case AGENT_WRITE:
			ret = file_write(c);
			break;
		case AGENT_STAT:
			ret = fs_stat(c);
			break;
		case AGENT_MKDIR:
			ret = fs_mkdir(c);
			break;
		case AGENT_STDIN:
		case AGENT_STDIN_EOF:
		case AGENT_SIGNAL:
			/* Sent before the host saw the EXIT of the command they were for. */
			ret = 0;
			break;
		default:
			ret = conn_proto_error(c, "unexpected %s frame",
					       agent_type_name(c->rd.h.type));
		}
	}
	return ret;
}

/* signalfd for @signo (blocked since the main process started). */
static int sigfd(int signo, int signo2)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, signo);
	if (signo2)
		sigaddset(&set, signo2);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int conn_serve(int fd, unsigned int id, bool verbose)
{
	struct conn c = { .fd = fd, .id = id, .verbose = verbose };
	int ret;

	c.stop_fd = sigfd(SIGTERM, SIGINT);
	c.chld_fd = sigfd(SIGCHLD, 0);
	if (c.stop_fd < 0 || c.chld_fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = agent_rd_init(&c.rd);
	if (!ret)
		ret = agent_wr_init(&c.wr);
	if (!ret)
		ret = serve(&c);
out:
	if (ret == -ESHUTDOWN)
		ret = 0; /* gone before HELLO: a probe, not an error */
	if (ret && ret != -EPIPE && ret != -ECANCELED && verbose)
		alog("conn %u: closed: %s", id, strerror(-ret));
	agent_rd_free(&c.rd);
	agent_wr_free(&c.wr);
	if (c.stop_fd >= 0)
		close(c.stop_fd);
	if (c.chld_fd >= 0)
		close(c.chld_fd);
	close(fd);
	return ret && ret != -EPIPE && ret != -ECANCELED ? 1 : 0;
}
