/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The VMM's own sandbox (docs/sandbox.md): a seccomp-bpf allowlist per thread
 * role, installed once the VM is built and by every thread as it starts,
 * capabilities cut to what the roles need, and the jail (jail.h).
 *
 * Filters stack and are inherited, so a thread created by a vCPU would keep
 * the vCPU's filter under its own. Once the sandbox is on, every
 * pthread_create() therefore goes to one spawner thread whose filter is the
 * union of all roles (the baseline); the new thread then narrows it to its
 * role. Threads without a role of their own (snapshot workers) keep the
 * baseline.
 */
#ifndef MINIVMM_SANDBOX_H
#define MINIVMM_SANDBOX_H

#include <stdbool.h>

enum sandbox_role {
	SANDBOX_BASE,	    /* the spawner; threads without a role of their own */
	SANDBOX_MAIN,	    /* the main thread once the VM is built */
	SANDBOX_VCPU,	    /* vCPU threads: KVM_RUN and the devices they emulate */
	SANDBOX_BLK_IO,	    /* virtio-blk I/O threads */
	SANDBOX_FS_IO,	    /* virtio-fs I/O threads: the FUSE server */
	SANDBOX_DAX_WATCH,  /* the DAX window's inotify watcher */
	SANDBOX_API,	    /* the control socket: pause, resume, save */
	SANDBOX_CONSOLE,    /* stdin to the serial port */
	SANDBOX_LAZY,	    /* lazy restore: userfaultfd and prefetch */
	SANDBOX_VSOCK_IO,   /* the virtio-vsock I/O thread: its Unix sockets */
	SANDBOX_BALLOON_IO, /* the virtio-balloon I/O thread: its queues, madvise */
	SANDBOX_RNG_IO,	    /* the virtio-rng I/O thread: its queue, getrandom */
	SANDBOX_NR_ROLES,
};

/* [sandbox] seccomp */
enum { SANDBOX_SECCOMP_OFF, SANDBOX_SECCOMP_ON, SANDBOX_SECCOMP_LOG };

/* What the VM needs, which decides what each role may do. */
struct sandbox_plan {
	bool log_only;	    /* seccomp = log: allow what would be denied, the kernel logs it */
	bool rebuild;	    /* [vm] on_reboot = restart: main builds VMs again */
	bool shares;	    /* virtio-fs shares exist */
	bool lazy;	    /* a lazy restore */
	bool api;	    /* a control socket */
	bool vsock;	    /* a virtio-vsock device */
	bool balloon;	    /* a virtio-balloon device */
	bool rng;	    /* a virtio-rng device */
	bool console_api;   /* [console] serial = api: the API thread makes socket pairs */
	bool console_tty;   /* the console is a terminal in raw mode */
	bool keep_fs_caps;  /* root with shares: keep the file capabilities */
	bool fs_priv_xattr; /* a share with allow_priv_xattr: trusted.* and security.* */
};

/*
 * Turn the sandbox on for this process (seccomp = on): build every role's
 * filter, install the SIGSYS handler, start the spawner. Call before any
 * thread but the main one exists. 0 or a negative errno (logged).
 */
int sandbox_start(const struct sandbox_plan *plan);
/* The main thread, once the VM is built and before it runs: its capabilities
 * and filter (once; later calls do nothing). 0 or a negative errno. */
int sandbox_main_ready(void);
/* Stop the spawner (at the end of the session; filters stay). */
void sandbox_stop(void);
bool sandbox_active(void);

/*
 * At the start of a thread function: limit this thread to @role. Does
 * nothing while the sandbox is off; a thread that cannot be confined ends
 * the process (it would otherwise serve the guest unconfined).
 */
void sandbox_thread_enter(enum sandbox_role role);

#endif
