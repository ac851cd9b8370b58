// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * READ streams a regular file in DATA frames; WRITE fills a temp file beside the target
 * from DATA frames and renames it into place at END. One frame is in memory at a time:
 * a slow reader on the other side holds the sender back through the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int file_read(struct conn *c)
{
	uint8_t *buf = agent_wr_payload(&c->wr), info[AGENT_FILE_SIZE], end[AGENT_END_SIZE];
	struct agent_path_req r;
	uint64_t total = 0;
	struct stat st;
	int fd, ret;

	if (agent_path_decode(AGENT_READ, c->rd.buf, c->rd.h.len, &r))
		return conn_proto_error(c, "bad READ");
	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below anyway. */
	fd = open(r.path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return conn_error(c, errno, "open %s: %s", r.path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = conn_error(c, errno, "stat %s: %s", r.path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		int err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;

		ret = conn_error(c, err, "%s: not a regular file", r.path);
		goto out;
	}
	agent_file_encode(info, st.st_size, st.st_mode & 07777);
	ret = conn_send(c, AGENT_FILE, info, sizeof(info));
	while (!ret) {
		ssize_t n = read(fd, buf, AGENT_DATA_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = conn_error(c, errno, "read %s: %s", r.path, strerror(errno));
			break;
		}
		if (!n) {
			agent_end_encode(end, total, 0);
			ret = conn_send(c, AGENT_END, end, sizeof(end));
			break;
		}
		total += n;
		ret = conn_send(c, AGENT_DATA, buf, n);
	}
out:
	close(fd);
	return ret;
}

/* The temp file for @path: ".NAME.agent-XXXXXX" in the same directory. */
static int temp_name(const char *path, char *tmp, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	int n;

	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EISDIR;
	n = snprintf(tmp, len, "%.*s.%s.agent-XXXXXX", dirlen, path, base);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Close @fd and put @tmp in place of @path with @mode, durably. */
static int commit(int fd, const char *tmp, const char *path, uint32_t mode, const char **what)
{
	int ret = 0;

	*what = "chmod";
	if (fchmod(fd, mode))
		ret = -errno;
	if (!ret) {
		*what = "fsync";
		if (fsync(fd))
			ret = -errno;
	}
	if (close(fd) && !ret) {
		*what = "close";
		ret = -errno;
	}
	if (!ret) {
		*what = "rename";
		if (rename(tmp, path))
			ret = -errno;
	}
	return ret;
}

/* Remove the temp file of a WRITE that failed, before the host hears of it. */
static void drop(int *fd, const char *tmp)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
		unlink(tmp);
	}
}

int file_write(struct conn *c)
{
	char tmp[PATH_MAX], path[AGENT_PATH_MAX];
	uint64_t got = 0, total;
	struct agent_path_req r;
	const char *what;
	uint8_t end[AGENT_END_SIZE];
	uint32_t flags, mode;
	int fd, ret;

	if (agent_path_decode(AGENT_WRITE, c->rd.buf, c->rd.h.len, &r))
		return conn_proto_error(c, "bad WRITE");
	/* rd.buf is about to hold DATA frames. */
	snprintf(path, sizeof(path), "%s", r.path);
	mode = r.arg;
	ret = temp_name(path, tmp, sizeof(tmp));
	if (ret)
		return conn_error(c, -ret, "%s: %s", path, strerror(-ret));
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return conn_error(c, errno, "create %s: %s", tmp, strerror(errno));
	ret = conn_send(c, AGENT_READY, NULL, 0);
	/* fd < 0 from here on: failed, ERROR sent, DATA dropped until END. */
	while (!ret) {
		ret = agent_rd_frame(&c->rd, c->fd, c->stop_fd, -1);
		if (ret == -EPROTO) {
			drop(&fd, tmp);
			ret = conn_proto_error(c, "bad frame header");
		}
		if (ret < 0)
			break; /* the host is gone: no file */
		ret = 0;
		if (c->rd.h.type == AGENT_DATA) {
			got += c->rd.h.len;
			if (fd < 0)
				continue; /* the host has the ERROR and will END soon */
			ret = write_full(fd, c->rd.buf, c->rd.h.len);
			if (ret) {
				drop(&fd, tmp);
				ret = conn_error(c, -ret, "write %s: %s", path, strerror(-ret));
			}
			continue;
		}
		if (c->rd.h.type != AGENT_END ||
		    agent_end_decode(c->rd.buf, c->rd.h.len, &total, &flags)) {
			drop(&fd, tmp);
			ret = conn_proto_error(c, "expected DATA or END, got %s",
					       agent_type_name(c->rd.h.type));
			break;
		}
		if (fd < 0)
			break; /* ERROR already sent: nothing more for this WRITE */
		if (flags & AGENT_END_ABORT) {
			drop(&fd, tmp);
			ret = conn_error(c, ECANCELED, "write %s: aborted by the host", path);
			break;
		}
		if (total != got) {
			drop(&fd, tmp);
			ret = conn_error(c, EIO, "write %s: END says %llu bytes, %llu came", path,
					 (unsigned long long)total, (unsigned long long)got);
			break;
		}
		ret = commit(fd, tmp, path, mode, &what);
		fd = -1;
		if (ret) {
			unlink(tmp);
			ret = conn_error(c, -ret, "%s %s: %s", what, path, strerror(-ret));
			break;
		}
		agent_end_encode(end, got, 0);
		return conn_send(c, AGENT_END, end, sizeof(end));
	}
	drop(&fd, tmp);
	return ret;
}
