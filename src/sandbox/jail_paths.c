// SPDX-License-Identifier: GPL-2.0-or-later
/* What a VM uses from the host file system, for the jail's bind mounts. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sandbox/jail.h"

static int add(struct jail_mounts *jm, const char *path, bool dir, bool writable, bool device)
{
	unsigned int i;

	for (i = 0; i < jm->n; i++) {
		if (!strcmp(jm->m[i].path, path)) {
			jm->m[i].writable |= writable; /* the same file twice: the wider access */
			return 0;
		}
	}
	if (jm->n == jm->cap) {
		unsigned int cap = jm->cap ? jm->cap * 2 : 16;
		struct jail_mount *m = realloc(jm->m, cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		jm->m = m;
		jm->cap = cap;
	}
	jm->m[jm->n].path = strdup(path);
	if (!jm->m[jm->n].path)
		return -ENOMEM;
	jm->m[jm->n].dir = dir;
	jm->m[jm->n].writable = writable;
	jm->m[jm->n].device = device;
	jm->n++;
	return 0;
}

/* *@field becomes its real path (the one bound into the jail), added to @jm. */
static int add_path(struct jail_mounts *jm, const char *what, char **field, bool writable)
{
	char *real;
	struct stat st;
	int ret;

	if (!*field)
		return 0;
	real = realpath(*field, NULL);
	if (!real || stat(real, &st)) {
		ret = -errno;
		pr_err("jail: %s %s: %s", what, *field, strerror(errno));
		free(real);
		return ret;
	}
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		pr_err("jail: %s %s: not a file, directory or block device", what, *field);
		free(real);
		return -EINVAL;
	}
	ret = add(jm, real, S_ISDIR(st.st_mode), writable, S_ISBLK(st.st_mode));
	if (ret) {
		free(real);
		return ret;
	}
	free(*field);
	*field = real;
	return 0;
}

/* The console file exists before the jail (bind mounts need a target) and is the jail's. */
static int make_serial_file(const char *path, unsigned int uid, unsigned int gid)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);

	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	if (fchown(fd, uid, gid)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	close(fd);
	return 0;
}

/* The socket is made inside the jail: its directory is bound, the name kept. */
static int add_socket_dir(struct jail_mounts *jm, char **sock)
{
	const char *slash = strrchr(*sock, '/');
	char *dir =
	    slash ? strndup(*sock, slash == *sock ? 1 : (size_t)(slash - *sock)) : strdup(".");
	char *joined = NULL;
	int ret;

	if (!dir)
		return -ENOMEM;
	ret = add_path(jm, "[api] socket directory", &dir, true);
	if (!ret &&
	    asprintf(&joined, "%s/%s", strcmp(dir, "/") ? dir : "", slash ? slash + 1 : *sock) < 0)
		ret = -ENOMEM;
	if (!ret) {
		free(*sock);
		*sock = joined;
	}
	free(dir);
	return ret;
}

int jail_collect(struct vm_config *cfg, unsigned int uid, unsigned int gid, struct jail_mounts *out)
{
	unsigned int i, j;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = add_path(out, "[boot] kernel", &cfg->kernel, false)
		  ?: add_path(out, "[boot] initrd", &cfg->initrd, false);
	for (i = 0; !ret && i < CONFIG_MAX_DISKS; i++) {
		struct disk_config *d = &cfg->disks[i];

		if (!d->path)
			continue;
		ret = add_path(out, "disk", &d->path, !d->readonly)
			  ?: add_path(out, "disk backing_dir", &d->backing_dir, false);
		for (j = 0; !ret && d->backing_trusted && d->backing_trusted[j]; j++)
			ret = add_path(out, "disk backing file", &d->backing_trusted[j], false);
	}
	for (i = 0; !ret && i < CONFIG_MAX_SHARES; i++)
		ret = add_path(out, "share", &cfg->shares[i].path, !cfg->shares[i].readonly);
	if (!ret && cfg->serial == SERIAL_FILE) {
		ret = make_serial_file(cfg->serial_path, uid, gid);
		if (ret)
			pr_err("jail: console file %s: %s", cfg->serial_path, strerror(-ret));
		else
			ret = add_path(out, "console file", &cfg->serial_path, true);
	}
	if (!ret && cfg->api_socket)
		ret = add_socket_dir(out, &cfg->api_socket);
	if (ret)
		jail_mounts_free(out);
	return ret;
}

void jail_mounts_free(struct jail_mounts *jm)
{
	for (unsigned int i = 0; i < jm->n; i++)
		free(jm->m[i].path);
	free(jm->m);
	memset(jm, 0, sizeof(*jm));
}
