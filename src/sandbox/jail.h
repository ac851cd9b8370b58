/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The jail ([sandbox] jail, minivmm run --jail DIR; docs/sandbox.md): the VMM
 * runs as PID 1 of new PID, mount, network, IPC, UTS and cgroup namespaces,
 * its root a fresh tmpfs on DIR holding only what the VM uses (bind mounts of
 * the kernel, initrd, disks, shares, console file and API socket directory,
 * /dev/kvm, a /proc of its own), as an unprivileged uid/gid with no
 * capabilities, optionally in a cgroup v2 with memory/cpu/pids limits. The
 * process that set it up stays outside, forwards signals, waits, and removes
 * the cgroup.
 */
#ifndef MINIVMM_SANDBOX_JAIL_H
#define MINIVMM_SANDBOX_JAIL_H

#include <stdbool.h>

struct vm_config;

/* What goes into the jail: one bind mount. */
struct jail_mount {
	char *path;    /* absolute, symlinks resolved: the same path inside */
	bool dir;      /* a directory (else a file or a block device) */
	bool writable; /* else read-only */
	bool device;   /* a block device: nodev is not set */
};

struct jail_mounts {
	struct jail_mount *m;
	unsigned int n, cap;
};

/*
 * What @cfg's VM uses, its paths in @cfg made absolute (and symlink-free) so
 * that they hold inside the jail too. The console file is created if missing
 * (owned by @uid/@gid). 0, or -errno with a message on stderr.
 */
int jail_collect(struct vm_config *cfg, unsigned int uid, unsigned int gid,
		 struct jail_mounts *out);
void jail_mounts_free(struct jail_mounts *jm);

/*
 * Enter the jail (cfg->sandbox.jail set). In the jailed child returns 0: go
 * on and run the VM there. In the process that made it, returns 1 once the
 * child ended, with its exit status (128 + N if a signal N ended it) in
 * *status. A negative errno when the jail cannot be made (explained on stderr;
 * nothing ran).
 */
int jail_run(struct vm_config *cfg, int *status);

/* The cgroup of a jail (cgroup.c). */
struct jail_cgroup {
	char *path; /* /sys/fs/cgroup/.../minivmm-PID, NULL: no limits */
};
bool jail_cgroup_wanted(const struct vm_config *cfg);
/* Make the cgroup and write its limits (in the parent, before the child exists). */
int jail_cgroup_create(const struct vm_config *cfg, struct jail_cgroup *cg);
/* Move process @pid into it. */
int jail_cgroup_add(const struct jail_cgroup *cg, int pid);
/* Remove it (its processes have ended). */
void jail_cgroup_remove(struct jail_cgroup *cg);

#endif
