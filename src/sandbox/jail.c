// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Building and entering the jail. The parent (root, single-threaded, before
 * any VM exists) checks everything it can, makes the cgroup, then forks the
 * child into a new PID namespace; the child, once the parent has put it in
 * the cgroup, makes its other namespaces, the tmpfs root with its bind
 * mounts, pivots into it, drops every capability and becomes the jail's
 * uid/gid. The parent forwards SIGINT/SIGTERM/SIGHUP/SIGUSR2, waits, restores the
 * terminal and removes the cgroup.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "sandbox/jail.h"

#define JAIL_TMPFS_OPTS "mode=0755,size=1m,nr_inodes=4096"

/* mkdir -p of @path's directories below the jail root @root (all ours: no symlinks). */
static int make_parents(const char *root, const char *path, bool last_too)
{
	char buf[PATH_MAX];
	size_t rl = strlen(root);
	char *p;

	if (snprintf(buf, sizeof(buf), "%s%s", root, path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + rl + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (last_too && mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int bind_one(const char *root, const struct jail_mount *m)
{
	unsigned long flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC;
	char dst[PATH_MAX];
	struct stat st;
	int ret, fd;

	snprintf(dst, sizeof(dst), "%s%s", root, m->path);
	ret = make_parents(root, m->path, m->dir);
	if (ret)
		return ret;
	if (!m->dir && lstat(dst, &st)) {
		/* A file to mount on (unless a directory bound before already shows it). */
		fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	if (mount(m->path, dst, NULL, MS_BIND, NULL))
		return -errno;
	if (!m->writable)
		flags |= MS_RDONLY;
	if (!m->device)
		flags |= MS_NODEV;
	return mount(NULL, dst, NULL, flags, NULL) ? -errno : 0;
}

/* /dev/kvm (and /dev/userfaultfd, for a lazy restore as non-root), the jail's own. */
static int make_node(const char *root, const char *name, unsigned int uid, unsigned int gid,
		     bool needed)
{
	char dst[PATH_MAX];
	struct stat st;

	if (stat(name, &st) || !S_ISCHR(st.st_mode))
		return needed ? -errno ?: -ENODEV : 0;
	snprintf(dst, sizeof(dst), "%s%s", root, name);
	if (make_parents(root, name, false) || mknod(dst, S_IFCHR | 0600, st.st_rdev) ||
	    chown(dst, uid, gid))
		return -errno;
	return 0;
}

static int cmp_mount(const void *a, const void *b)
{
	return strcmp(((const struct jail_mount *)a)->path, ((const struct jail_mount *)b)->path);
}

static int fail(const char *what, const char *path)
{
	int ret = -errno;

	pr_err("jail: %s %s: %s", what, path, strerror(errno));
	return ret;
}

/* Every failure is reported here, naming the step. */
static int build_root(const char *root, struct jail_mounts *jm, unsigned int uid, unsigned int gid)
{
	char proc[PATH_MAX];
	unsigned int i;
	int ret;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return fail("making mounts private under", "/");
	if (mount("minivmm-jail", root, "tmpfs", MS_NOSUID, JAIL_TMPFS_OPTS))
		return fail("mounting a tmpfs on", root);
	/* Parents before what is inside them. */
	qsort(jm->m, jm->n, sizeof(*jm->m), cmp_mount);
	for (i = 0; i < jm->n; i++) {
		ret = bind_one(root, &jm->m[i]);
		if (ret) {
			pr_err("jail: bind mount of %s: %s", jm->m[i].path, strerror(-ret));
			return ret;
		}
	}
	ret = make_node(root, "/dev/kvm", uid, gid, true);
	if (ret) {
		pr_err("jail: /dev/kvm: %s", strerror(-ret));
		return ret;
	}
	ret = make_node(root, "/dev/userfaultfd", uid, gid, false);
	if (ret) {
		pr_err("jail: /dev/userfaultfd: %s", strerror(-ret));
		return ret;
	}
	/* The FUSE server and the DAX window reach files through /proc/self/fd; this
	 * /proc shows the jail's PID namespace only. */
	snprintf(proc, sizeof(proc), "%s/proc", root);
	if (mkdir(proc, 0555) ||
	    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		return fail("mounting", proc);
	return 0;
}

static int enter_root(const char *root)
{
	char old[PATH_MAX];

	snprintf(old, sizeof(old), "%s/.old-root", root);
	if (mkdir(old, 0700) || syscall(SYS_pivot_root, root, old) || chdir("/"))
		return -errno;
	if (umount2("/.old-root", MNT_DETACH) || rmdir("/.old-root"))
		return -errno;
	/* Nothing new under the root: it only holds mount points. */
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID, JAIL_TMPFS_OPTS))
		return -errno;
	return 0;
}

/* No capability survives, none can come back: bounding and ambient sets emptied, then
 * the uid change clears the rest. */
static int drop_privileges(unsigned int uid, unsigned int gid)
{
	for (int c = 0; c <= CAP_LAST_CAP; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) && errno != EINVAL)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		return -errno;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}

static int child(struct vm_config *cfg, struct jail_mounts *jm, unsigned int uid, unsigned int gid,
		 int go_fd)
{
	char go;
	int ret;

	/* The parent puts us in the cgroup first: limits hold from the start. */
	if (read(go_fd, &go, 1) != 1)
		return -EPIPE;
	close(go_fd);
	if (unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP)) {
		ret = -errno;
		pr_err("jail: new namespaces: %s", strerror(errno));
		return ret;
	}
	if (sethostname("minivmm", 7))
		pr_debug("jail: hostname: %s", strerror(errno));
	ret = build_root(cfg->sandbox.jail, jm, uid, gid);
	if (!ret) {
		ret = enter_root(cfg->sandbox.jail);
		if (ret)
			pr_err("jail: pivot_root into %s: %s", cfg->sandbox.jail, strerror(-ret));
	}
	if (!ret) {
		ret = drop_privileges(uid, gid);
		if (ret)
			pr_err("jail: becoming uid %u gid %u: %s", uid, gid, strerror(-ret));
	}
	if (!ret)
		pr_info("jail: running in %s as uid %u gid %u (PID 1 of a new PID namespace)",
			cfg->sandbox.jail, uid, gid);
	return ret;
}

/* Forward the stop signals to the child until it ends; its status, as a shell reports it. */
static int supervise(pid_t pid, const sigset_t *sigs)
{
	int status, sig;

	for (;;) {
		sig = sigwaitinfo(sigs, NULL);
		if (sig == SIGCHLD) {
			pid_t r = waitpid(pid, &status, WNOHANG);

			if (r == pid)
				break;
			continue;
		}
		if (sig > 0)
			kill(pid, sig);
	}
	if (WIFSIGNALED(status)) {
		pr_err("jail: the VMM was killed by signal %d (%s)", WTERMSIG(status),
		       strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}

/* uid/gid: the keys, else the owner of the jail directory; never root. */
static int jail_ids(const struct vm_config *cfg, unsigned int *uid, unsigned int *gid)
{
	struct stat st;

	if (stat(cfg->sandbox.jail, &st)) {
		pr_err("jail: %s: %s", cfg->sandbox.jail, strerror(errno));
		return -ENOENT;
	}
	if (!S_ISDIR(st.st_mode)) {
		pr_err("jail: %s: %s", cfg->sandbox.jail, strerror(ENOTDIR));
		return -ENOTDIR;
	}
	*uid = cfg->sandbox.uid ? cfg->sandbox.uid : st.st_uid;
	*gid = cfg->sandbox.gid ? cfg->sandbox.gid : st.st_gid;
	if (!*uid || !*gid) {
		pr_err("jail: the VMM would run as uid %u gid %u: set [sandbox] uid and gid (or "
		       "give %s to the user it should run as)",
		       *uid, *gid, cfg->sandbox.jail);
		return -EPERM;
	}
	return 0;
}

int jail_run(struct vm_config *cfg, int *status)
{
	struct jail_cgroup cg = { 0 };
	struct jail_mounts jm;
	struct termios tio;
	bool tty = isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &tio);
	unsigned int uid, gid;
	sigset_t sigs, old;
	int go[2], ret;
	char *real;
	pid_t pid;

	if (geteuid() != 0) {
		pr_err(
		    "jail: needs root (new namespaces, mounts, the switch to [sandbox] uid/gid); "
		    "run minivmm as root, or without a jail");
		return -EPERM;
	}
	real = realpath(cfg->sandbox.jail, NULL);
	if (!real || !strcmp(real, "/")) {
		pr_err("jail: %s: %s", cfg->sandbox.jail, real ? "cannot be /" : strerror(errno));
		free(real);
		return -EINVAL;
	}
	free(cfg->sandbox.jail);
	cfg->sandbox.jail = real;
	ret = jail_ids(cfg, &uid, &gid);
	if (ret)
		return ret;
	ret = jail_collect(cfg, uid, gid, &jm);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < jm.n; i++) {
		if (!strcmp(jm.m[i].path, "/")) {
			pr_err("jail: / itself cannot be bound into the jail (a share of /?)");
			jail_mounts_free(&jm);
			return -EINVAL;
		}
	}
	ret = jail_cgroup_create(cfg, &cg);
	if (ret) {
		jail_mounts_free(&jm);
		return ret;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR2);
	sigaddset(&sigs, SIGCHLD);
	if (pipe2(go, O_CLOEXEC) || unshare(CLONE_NEWPID)) {
		ret = -errno;
		pr_err("jail: new PID namespace: %s", strerror(errno));
		goto out;
	}
	sigprocmask(SIG_BLOCK, &sigs, &old);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		pr_err("jail: fork: %s", strerror(errno));
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	if (!pid) {
		sigset_t chld;

		/* As PID 1 a stop signal that is not blocked is ignored: keep them blocked
		 * for the session's signalfd, just take SIGCHLD back. */
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		sigprocmask(SIG_UNBLOCK, &chld, NULL);
		close(go[1]);
		ret = child(cfg, &jm, uid, gid, go[0]);
		jail_mounts_free(&jm);
		free(cg.path);
		if (ret)
			_exit(EXIT_VM_ERROR);
		return 0;
	}
	close(go[0]);
	ret = jail_cgroup_add(&cg, pid);
	if (ret) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(go[1]);
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	if (write(go[1], "g", 1) != 1)
		pr_debug("jail: go: %s", strerror(errno));
	close(go[1]);
	*status = supervise(pid, &sigs);
	sigprocmask(SIG_SETMASK, &old, NULL);
	/* A VMM that died with the terminal raw must not leave it so. */
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
	ret = 1;
out:
	jail_cgroup_remove(&cg);
	jail_mounts_free(&jm);
	return ret;
}
