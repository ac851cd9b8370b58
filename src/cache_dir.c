// SPDX-License-Identifier: GPL-2.0-or-later
/* The cache directory shared by the kernel cache and the snapshot memory cache. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_dir.h"
#include "log.h"

const char *cache_dir_path(char *buf, size_t size)
{
	const char *d = getenv("MINIVMM_CACHE_DIR"), *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (d && *d)
		snprintf(buf, size, "%s", d);
	else if (x && *x)
		snprintf(buf, size, "%s/minivmm", x);
	else if (home && *home)
		snprintf(buf, size, "%s/.cache/minivmm", home);
	else
		return NULL;
	return buf;
}

int cache_dir_open(const char *dir, const char *what)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_uid != geteuid() ||
	    ((st.st_mode & 077) && fchmod(fd, 0700) && (st.st_mode & 022))) {
		pr_warn("%s %s: not used: it must be a directory of ours that others cannot "
			"write to (mode 0700)",
			what, dir);
		close(fd);
		return -EPERM;
	}
	return fd;
}

void cache_hex(const uint8_t *p, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * len] = 0;
}
