// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

ssize_t read_text(const char *path, char *buf, size_t len)
{
	size_t done = 0;
	ssize_t ret = 0;
	int fd;

	if (!len)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Read until EOF, one byte past the room left: that one says it is longer. */
	for (;;) {
		char extra;
		ssize_t n =
		    done < len - 1 ? read(fd, buf + done, len - 1 - done) : read(fd, &extra, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (!n)
			break;
		if (done == len - 1) {
			ret = -EFBIG;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	if (ret)
		return ret;
	buf[done] = '\0';
	return (ssize_t)done;
}

int read_file(const char *path, size_t max, void **buf, size_t *len)
{
	struct stat st;
	size_t done = 0;
	char *p = NULL;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	p = malloc(st.st_size ? st.st_size : 1);
	if (!p) {
		ret = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, p + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
		done += n;
	}
	*buf = p;
	*len = done;
	p = NULL;
	ret = 0;
out:
	free(p);
	close(fd);
	return ret;
}

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

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

int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EIO;
		p += n;
		len -= n;
		off += n;
	}
	return 0;
}

uint64_t minivmm_start_ns;

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int unix_addr(const char *path, struct sockaddr_un *addr)
{
	size_t len = strlen(path);

	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (len >= sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	memcpy(addr->sun_path, path, len + 1);
	return 0;
}

int unix_connect(const char *path, int flags, int timeout_ms)
{
	struct sockaddr_un addr;
	int fd, ret = unix_addr(path, &addr);

	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	if (timeout_ms > 0) {
		struct timeval tv = { .tv_sec = timeout_ms / 1000,
				      .tv_usec = timeout_ms % 1000 * 1000 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ret = errno == EAGAIN && timeout_ms > 0 ? -ETIMEDOUT : -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int unix_clear_stale(const char *path, bool *replaced)
{
	struct stat st;
	int fd;

	*replaced = false;
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = unix_connect(path, SOCK_NONBLOCK, 0);
	if (fd >= 0 || fd == -EAGAIN) { /* EAGAIN: alive, its backlog is full */
		if (fd >= 0)
			close(fd);
		return -EADDRINUSE;
	}
	if (fd != -ECONNREFUSED)
		return fd;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	*replaced = true;
	return 0;
}

int path_absolute(const char *p, char **out)
{
	const char *slash = strrchr(p, '/'), *base = slash ? slash + 1 : p;
	char *dir, *real;
	int ret = 0;

	*out = NULL;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	dir = slash ? strndup(p, slash == p ? 1 : (size_t)(slash - p)) : strdup(".");
	if (!dir)
		return -ENOMEM;
	real = realpath(dir, NULL);
	if (!real)
		ret = -errno;
	else if (asprintf(out, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base) < 0)
		ret = -ENOMEM;
	free(real);
	free(dir);
	if (ret)
		*out = NULL;
	return ret;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}
