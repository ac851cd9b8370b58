// SPDX-License-Identifier: GPL-2.0-or-later
/* Exclusive creation of new files under unpredictable names (see excl_file.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

#include "excl_file.h"

#define TRIES 16

int excl_create(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	return fd < 0 ? -errno : fd;
}

int excl_random_name(const char *prefix, const char *suffix, char **name)
{
	unsigned char r[6];

	/* Unpredictable: nobody can plant the name ahead of us. */
	if (getrandom(r, sizeof(r), 0) != sizeof(r))
		return -EIO;
	if (asprintf(name, "%s%02x%02x%02x%02x%02x%02x%s", prefix, r[0], r[1], r[2], r[3], r[4],
		     r[5], suffix) < 0) {
		*name = NULL;
		return -ENOMEM;
	}
	return 0;
}

int excl_create_random(int dirfd, const char *prefix, const char *suffix, char **name)
{
	int i, fd = -EEXIST;

	*name = NULL;
	for (i = 0; i < TRIES && fd == -EEXIST; i++) {
		char *n;
		int r = excl_random_name(prefix, suffix, &n);

		if (r)
			return r;
		fd = excl_create(dirfd, n);
		if (fd >= 0)
			*name = n;
		else
			free(n);
	}
	return fd;
}
