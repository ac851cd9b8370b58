// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The jail's cgroup v2: minivmm-PID below [sandbox] cgroup_parent (default:
 * the cgroup minivmm runs in), with the controllers the limits need enabled
 * in the parent's cgroup.subtree_control. Anything missing (no cgroup v2, no
 * such controller, no right to write there) is an error that says so; a
 * limit is never skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sandbox/jail.h"
#include "util.h"

#define CGROUP_ROOT	    "/sys/fs/cgroup"
#define CGROUP2_MAGIC	    0x63677270
#define CGROUP_REMOVE_TRIES 50

bool jail_cgroup_wanted(const struct vm_config *cfg)
{
	const struct sandbox_config *s = &cfg->sandbox;

	return s->memory_max || s->cpu_max || s->pids_max;
}

static int write_file(const char *dir, const char *name, const char *val)
{
	char path[PATH_MAX];
	int fd, ret = 0;
	size_t len = strlen(val);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, len) != (ssize_t)len)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		pr_err("jail: cgroup: writing '%s' to %s: %s", val, path, strerror(-ret));
	return ret;
}

/* The cgroup this process is in: "0::/path" of /proc/self/cgroup. */
static int own_cgroup(char *out, size_t size)
{
	char buf[4096], *line;

	if (read_text("/proc/self/cgroup", buf, sizeof(buf)) < 0)
		return -ENOENT;
	for (line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (!strncmp(line, "0::", 3)) {
			snprintf(out, size, CGROUP_ROOT "%s",
				 strcmp(line + 3, "/") ? line + 3 : "");
			return 0;
		}
	return -ENOENT;
}

/* Is @ctl in the word list @list ("cpu memory pids")? */
static bool has_word(const char *list, const char *ctl)
{
	size_t n = strlen(ctl);

	for (const char *p = list; (p = strstr(p, ctl)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

static int enable_controller(const char *parent, const char *ctl)
{
	char path[PATH_MAX], buf[512] = "", plus[32];
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.controllers", parent);
	if (read_text(path, buf, sizeof(buf)) < 0 || !has_word(buf, ctl)) {
		pr_err(
		    "jail: cgroup: the %s controller is not available in %s (cgroup.controllers: "
		    "%s)",
		    ctl, parent, buf);
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", parent);
	if (read_text(path, buf, sizeof(buf)) >= 0 && has_word(buf, ctl))
		return 0;
	snprintf(plus, sizeof(plus), "+%s", ctl);
	ret = write_file(parent, "cgroup.subtree_control", plus);
	if (ret) {
		if (ret == -EBUSY)
			pr_err(
			    "jail: cgroup: %s holds processes of its own, so its children cannot "
			    "have controllers (cgroup v2): point [sandbox] cgroup_parent at a "
			    "cgroup without processes",
			    parent);
		return -EPERM;
	}
	return 0;
}

int jail_cgroup_create(const struct vm_config *cfg, struct jail_cgroup *cg)
{
	const struct sandbox_config *s = &cfg->sandbox;
	char parent[PATH_MAX], val[64];
	struct statfs fs;
	int ret;

	cg->path = NULL;
	if (!jail_cgroup_wanted(cfg))
		return 0;
	if (s->cgroup_parent)
		snprintf(parent, sizeof(parent), "%s", s->cgroup_parent);
	else if (own_cgroup(parent, sizeof(parent))) {
		pr_err("jail: cgroup limits need cgroup v2, and this process is in no v2 cgroup "
		       "(/proc/self/cgroup has no 0:: line)");
		return -ENOTSUP;
	}
	if (statfs(parent, &fs) || fs.f_type != CGROUP2_MAGIC) {
		pr_err("jail: cgroup limits need cgroup v2: %s is not on a cgroup2 file system%s",
		       parent, s->cgroup_parent ? "" : " (mount -t cgroup2 none " CGROUP_ROOT ")");
		return -ENOTSUP;
	}
	if ((s->memory_max && enable_controller(parent, "memory")) ||
	    (s->cpu_max && enable_controller(parent, "cpu")) ||
	    (s->pids_max && enable_controller(parent, "pids")))
		return -ENOTSUP;
	if (asprintf(&cg->path, "%s/minivmm-%d", parent, (int)getpid()) < 0) {
		cg->path = NULL;
		return -ENOMEM;
	}
	if (mkdir(cg->path, 0755)) {
		ret = -errno;
		pr_err("jail: cgroup: cannot make %s: %s", cg->path, strerror(errno));
		free(cg->path);
		cg->path = NULL;
		return ret;
	}
	ret = 0;
	if (s->memory_max) {
		snprintf(val, sizeof(val), "%llu", (unsigned long long)s->memory_max);
		ret = write_file(cg->path, "memory.max", val);
		/* Not around the limit through swap (where swap is accounted at all). */
		snprintf(parent, sizeof(parent), "%s/memory.swap.max", cg->path);
		if (!ret && !access(parent, F_OK))
			ret = write_file(cg->path, "memory.swap.max", "0");
	}
	if (!ret && s->cpu_max)
		ret = write_file(cg->path, "cpu.max", s->cpu_max);
	if (!ret && s->pids_max) {
		snprintf(val, sizeof(val), "%u", s->pids_max);
		ret = write_file(cg->path, "pids.max", val);
	}
	if (ret) {
		jail_cgroup_remove(cg);
		return ret;
	}
	pr_info("jail: cgroup %s", cg->path);
	return 0;
}

int jail_cgroup_add(const struct jail_cgroup *cg, int pid)
{
	char val[32];

	if (!cg->path)
		return 0;
	snprintf(val, sizeof(val), "%d", pid);
	return write_file(cg->path, "cgroup.procs", val);
}

void jail_cgroup_remove(struct jail_cgroup *cg)
{
	if (!cg->path)
		return;
	/* The last process may still be on its way out of the cgroup. */
	for (int i = 0; rmdir(cg->path) && errno == EBUSY && i < CGROUP_REMOVE_TRIES; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000000 }, NULL);
	free(cg->path);
	cg->path = NULL;
}
