// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What each thread role may call. Derived by tracing every e2e case (strace
 * -f, thread by thread) and by reading the code paths of each thread; the
 * table in docs/sandbox.md says why each group is there. Groups are shared
 * between roles; a role's filter is the union of its groups, the baseline
 * (SANDBOX_BASE, the spawner) the union of every role's.
 */
#include <asm/ioctls.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

/* What glibc's pthread_create() passes to clone() (clone3 answers ENOSYS, see below). */
#define THREAD_CLONE_FLAGS                                                                         \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |        \
	 CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)
/* Opening for reading only: none of these bits (O_TMPFILE needs write access too). */
#define OPEN_WRITE_BITS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)

/* Every thread: memory (never executable), time, signals, futexes, its own end. */
static const struct sb_rule core[] = {
	SB_ANY(read),
	SB_ANY(write),
	SB_ANY(close),
	SB_ARG(mmap, 2, PROT_EXEC, 0),
	SB_ARG(mprotect, 2, PROT_EXEC, 0),
	SB_ANY(munmap),
	SB_ANY(mremap),
	SB_ANY(madvise),
	SB_ANY(brk),
	SB_ANY(futex),
	SB_ANY(clock_gettime), /* the vDSO falls back to it on some clocksources */
	SB_ANY(clock_getres),
	SB_ANY(gettimeofday),
	SB_ANY(time),
	SB_ANY(clock_nanosleep),
	SB_ANY(nanosleep),
	SB_ANY(sched_yield),
	SB_ANY(getpid),
	SB_ANY(gettid),
	SB_ANY(rt_sigreturn),
	SB_ANY(rt_sigprocmask),
	SB_ANY(restart_syscall),
	SB_ANY(exit),
	SB_ANY(exit_group),
};

/* Signals to our own threads only: the tgid is filled in at build time (tgkill_rule). */
static uint32_t own_tgid[1];
static const struct sb_rule tgkill_rule[] = {
	{ .nr = __NR_tgkill, .arg = 0, .mask = 0xffffffffu, .nvals = 1, .vals = own_tgid },
};

/* Thread creation and start-up (the spawner, and new threads before their role). */
static const struct sb_rule spawn[] = {
	SB_ARG(clone, 0, 0xffffffffu, THREAD_CLONE_FLAGS),
	/* Its flags are in memory a filter cannot read: glibc falls back to clone(). */
	{ .nr = __NR_clone3, .arg = -1, .ret = SECCOMP_RET_ERRNO | ENOSYS },
	SB_ANY(set_robust_list),
	SB_ANY(rseq),
	SB_ARG(prctl, 0, 0xffffffffu, PR_SET_NAME, PR_GET_NAME, PR_SET_NO_NEW_PRIVS),
	SB_ARG(seccomp, 0, 0xffffffffu, SECCOMP_SET_MODE_FILTER),
	SB_ANY(capget),
	SB_ANY(sched_setaffinity),
	SB_ANY(sched_getaffinity),
};

/* Threads without a role of their own: snapshot save and restore workers. */
static const struct sb_rule workers[] = {
	SB_ANY(pread64),   SB_ANY(pwrite64), SB_ANY(preadv),	 SB_ANY(pwritev),
	SB_ANY(fadvise64), SB_ANY(fstat),    SB_ANY(newfstatat), SB_ANY(lseek),
};

/* Waiting on descriptors (eventfds, sockets, the signalfd, inotify, userfaultfd). */
static const struct sb_rule wait_fds[] = {
	SB_ANY(poll),
	SB_ANY(ppoll),
};

/* vCPU threads: KVM_RUN, and what the device models do on a guest's register write. */
static const struct sb_rule vcpu[] = {
	SB_IOCTLS(KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS,
		  KVM_SIGNAL_MSI, KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD,
		  KVM_SET_USER_MEMORY_REGION),
};

/*
 * Starting and stopping device queues (DRIVER_OK and resets from a vCPU, a
 * pause from the API thread): eventfds and the I/O threads' rings; the
 * threads themselves come from the spawner. A DAX window repair or reset
 * re-maps its files (mmap is in core).
 */
static const struct sb_rule dev_queues[] = {
	SB_ANY(eventfd2),
	/* An I/O thread's rate-limit timer. */
	SB_ANY(timerfd_create),
	SB_ANY(io_uring_setup),
	SB_ANY(io_uring_register),
	SB_ANY(io_uring_enter),
	SB_ANY(fstat),
	SB_ANY(newfstatat),
	SB_ANY(inotify_add_watch),
	SB_ANY(inotify_rm_watch),
};

/* Block I/O threads: the ring, qcow2 metadata I/O done in the thread, the rate-limit timer. */
static const struct sb_rule blk_io[] = {
	SB_ANY(io_uring_enter), SB_ANY(io_uring_register),
	SB_ANY(pread64),	SB_ANY(pwrite64),
	SB_ANY(preadv),		SB_ANY(pwritev),
	SB_ANY(preadv2),	SB_ANY(pwritev2),
	SB_ANY(fdatasync),	SB_ANY(fsync),
	SB_ANY(fallocate),	SB_ANY(ftruncate),
	SB_ANY(fstat),		SB_ANY(newfstatat),
	SB_ANY(lseek),		SB_ANY(timerfd_settime),
};

/*
 * The FUSE server: everything a file system does, but always relative to a
 * descriptor inside the share (openat2 RESOLVE_BENEATH, O_PATH nodes,
 * reopening through /proc/self/fd); no path-based calls other than those.
 */
static const struct sb_rule fuse[] = {
	SB_ANY(io_uring_enter),
	/* Waiting for a rate limit. */
	SB_ANY(timerfd_settime),
	SB_ANY(openat),
	SB_ANY(openat2),
	SB_ANY(dup),
	SB_ANY(fcntl),
	SB_ANY(fstat),
	SB_ANY(newfstatat),
	SB_ANY(statx),
	SB_ANY(fstatfs),
	SB_ANY(getdents64),
	SB_ANY(lseek),
	SB_ANY(readlinkat),
	SB_ANY(mkdirat),
	SB_ANY(mknodat),
	SB_ANY(unlinkat),
	SB_ANY(renameat),
	SB_ANY(renameat2),
	SB_ANY(linkat),
	SB_ANY(symlinkat),
	SB_ANY(fchmod),
	SB_ANY(fchmodat),
	SB_ANY(fchown),
	SB_ANY(fchownat),
	SB_ANY(utimensat),
	SB_ANY(fallocate),
	SB_ANY(ftruncate),
	SB_ANY(fsync),
	SB_ANY(fdatasync),
	SB_ANY(pread64),
	SB_ANY(pwrite64),
	SB_ANY(preadv),
	SB_ANY(pwritev),
	SB_ANY(copy_file_range),
	SB_ANY(getxattr),
	SB_ANY(setxattr),
	SB_ANY(listxattr),
	SB_ANY(removexattr),
	SB_ANY(lgetxattr),
	SB_ANY(lsetxattr),
	SB_ANY(llistxattr),
	SB_ANY(lremovexattr),
	SB_ANY(fgetxattr),
	SB_ANY(fsetxattr),
	SB_ANY(flistxattr),
	SB_ANY(fremovexattr),
	SB_ANY(inotify_add_watch),
	SB_ANY(inotify_rm_watch),
	SB_ANY(getrlimit),
	SB_ANY(prlimit64),
};

/* The DAX watcher: inotify events, then re-clamping mappings to file sizes. */
static const struct sb_rule dax_watch[] = {
	SB_ANY(fstat),
	SB_ANY(newfstatat),
	SB_ANY(inotify_rm_watch),
};

/* The control socket. */
static const struct sb_rule api_socket[] = {
	SB_ANY(accept4), SB_ANY(recvfrom), SB_ANY(sendto),     SB_ANY(recvmsg),
	SB_ANY(sendmsg), SB_ANY(shutdown), SB_ANY(getsockopt),
};

/* Its console request, with [console] serial = api: a socket pair for the client. */
static const struct sb_rule api_console[] = {
	SB_ARG(socketpair, 0, 0xffffffffu, AF_UNIX),
};

/* Its vsock request, with a vsock device: a connection to the VM's own vsock socket. */
static const struct sb_rule api_vsock[] = {
	SB_ANY(connect),
	SB_ARG(socket, 0, 0xffffffffu, AF_UNIX),
	SB_ANY(setsockopt),
};

/*
 * The vsock I/O thread: accepts on the VM's Unix socket, connects to PATH_<port>
 * (AF_UNIX only), moves stream data both ways, its ring.
 */
static const struct sb_rule vsock_io[] = {
	SB_ANY(io_uring_enter), SB_ANY(accept4),  SB_ANY(recvfrom), SB_ANY(sendto),
	SB_ANY(readv),		SB_ANY(sendmsg),  SB_ANY(shutdown), SB_ANY(connect),
	SB_ARG(socket, 0, 0xffffffffu, AF_UNIX), SB_IOCTLS(FIONREAD),
};

/* The virtio-rng thread: the guest's entropy comes from getrandom(). */
static const struct sb_rule rng_io[] = {
	SB_ANY(getrandom),
};

/* Reading a VM's state for a snapshot (the API thread while the vCPUs are parked). */
static const struct sb_rule kvm_state[] = {
	SB_IOCTLS(KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_MSRS, KVM_GET_MSR_INDEX_LIST, KVM_GET_FPU,
		  KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_GET_XCRS, KVM_GET_LAPIC, KVM_GET_VCPU_EVENTS,
		  KVM_GET_MP_STATE, KVM_GET_DEBUGREGS, KVM_GET_NESTED_STATE, KVM_GET_IRQCHIP,
		  KVM_GET_PIT2, KVM_GET_CLOCK, KVM_GET_TSC_KHZ, KVM_CHECK_EXTENSION, KVM_GET_CPUID2,
		  KVM_KVMCLOCK_CTRL),
};

/* Writing snapshot files, freezing and overlaying disks (the API thread's `save`). */
static const struct sb_rule files_rw[] = {
	SB_ANY(openat),	    SB_ANY(open),	SB_ANY(fcntl),	   SB_ANY(flock),
	SB_ANY(fstat),	    SB_ANY(newfstatat), SB_ANY(stat),	   SB_ANY(lstat),
	SB_ANY(statx),	    SB_ANY(access),	SB_ANY(faccessat), SB_ANY(faccessat2),
	SB_ANY(readlink),   SB_ANY(readlinkat), SB_ANY(getcwd),	   SB_ANY(lseek),
	SB_ANY(pread64),    SB_ANY(pwrite64),	SB_ANY(preadv),	   SB_ANY(pwritev),
	SB_ANY(fsync),	    SB_ANY(fdatasync),	SB_ANY(fallocate), SB_ANY(ftruncate),
	SB_ANY(rename),	    SB_ANY(renameat),	SB_ANY(renameat2), SB_ANY(link),
	SB_ANY(linkat),	    SB_ANY(unlink),	SB_ANY(unlinkat),  SB_ANY(chmod),
	SB_ANY(fchmod),	    SB_ANY(fchmodat),	SB_ANY(mkdir),	   SB_ANY(mkdirat),
	SB_ANY(getdents64), SB_ANY(fadvise64),	SB_ANY(getrandom),
};

/* The console thread: stdin into the UART, whose interrupt line it may raise. */
static const struct sb_rule console[] = {
	SB_IOCTLS(KVM_IRQ_LINE, KVM_IRQ_LINE_STATUS),
};

/* Lazy restore: userfaultfd answers and reads of the snapshot. */
static const struct sb_rule lazy[] = {
	SB_IOCTLS(UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE, UFFDIO_UNREGISTER),
	SB_ANY(pread64),
	SB_ANY(preadv),
	SB_ANY(fadvise64),
	SB_ANY(fstat),
	SB_ANY(newfstatat),
	SB_ANY(lseek),
	SB_ANY(eventfd2),
};

/*
 * The main thread while the VM runs and at its end: the signalfd and stop
 * eventfd, kicks, /proc/self/smaps for the
 * memory summary (read-only), vCPU registers after a timeout (-vv) or SIGUSR2, and
 * tearing down: KVM routes, flushes of disks and the console file, the API
 * socket.
 */
static const struct sb_rule main_run[] = {
	/* Teardown detaches irqfds, ioeventfds and shared-memory slots. */
	SB_IOCTLS(KVM_GET_REGS, KVM_GET_SREGS, KVM_IRQFD, KVM_IOEVENTFD, KVM_SET_USER_MEMORY_REGION,
		  KVM_SET_GSI_ROUTING),
	SB_ARG(openat, 2, OPEN_WRITE_BITS, 0),
	SB_ANY(fstat),
	SB_ANY(newfstatat),
	SB_ANY(lstat),
	SB_ANY(lseek),
	SB_ANY(fsync),
	SB_ANY(fdatasync),
	SB_ANY(pread64),
	SB_ANY(pwrite64),
	SB_ANY(preadv),
	SB_ANY(pwritev),
	SB_ANY(ftruncate),
	SB_ANY(fallocate),
	SB_ANY(io_uring_enter),
	SB_ANY(io_uring_register),
	SB_ANY(inotify_rm_watch),
	SB_ANY(unlink),
	SB_ANY(unlinkat),
};

/*
 * The console is this terminal, in raw mode: it is put back at the end, or by
 * whichever thread takes a fatal signal (term.c), so every role may.
 */
static const struct sb_rule tty[] = {
	SB_IOCTLS(TCGETS, TCSETS, TCSETSW, TCSETSF),
};

/*
 * [vm] on_reboot = restart: the main thread builds the next VM, so it keeps
 * what building one takes (files opened for writing, the host kernel cache,
 * every KVM set-up ioctl).
 */
static const struct sb_rule main_rebuild[] = {
	SB_IOCTLS(KVM_CREATE_VM, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VCPU,
		  KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR,
		  KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_CPUID2, KVM_SET_MSRS, KVM_SET_REGS,
		  KVM_SET_SREGS, KVM_SET_FPU, KVM_SET_LAPIC, KVM_SET_GSI_ROUTING, KVM_IRQFD,
		  KVM_IOEVENTFD, KVM_GET_SUPPORTED_CPUID, BLKGETSIZE64, BLKSSZGET),
	SB_ANY(openat),
	SB_ANY(openat2),
	SB_ANY(eventfd2),
	SB_ANY(io_uring_setup),
	SB_ANY(inotify_init1),
	SB_ANY(inotify_add_watch),
	SB_ANY(prlimit64),
	SB_ANY(getrlimit),
	SB_ANY(setrlimit),
	SB_ANY(sched_getaffinity),
	SB_ANY(geteuid),
	SB_ANY(getuid),
	SB_ANY(fstatfs),
	SB_ANY(statfs),
	SB_ANY(dup),
	SB_ANY(fcntl),
	SB_ANY(readlink),
	/* The kernel cache, when the first boot could not store its entry. */
	SB_ANY(mkdir),
	SB_ANY(fchmod),
	SB_ANY(getrandom),
	SB_ANY(renameat),
	SB_ANY(unlinkat),
};

#if defined(__SANITIZE_ADDRESS__)
/*
 * ASan, UBSan and LeakSanitizer builds (make SAN=1) only: the runtime reads
 * /proc/self/maps, makes its own mappings, and at exit stops the world to
 * look for leaks (a clone()d tracer that ptrace()s every thread).
 */
static const struct sb_rule san[] = {
	SB_ARG(openat, 2, OPEN_WRITE_BITS, 0),
	SB_ARG(open, 1, OPEN_WRITE_BITS, 0), /* the runtime's internal_open on x86-64 */
	SB_ANY(getdents), SB_ANY(readlink), SB_ANY(readlinkat), SB_ANY(getdents64), SB_ANY(fstat),
	SB_ANY(newfstatat), SB_ANY(stat), SB_ANY(lseek), SB_ANY(mmap), SB_ANY(mprotect),
	/* LeakSanitizer's tracer: a process sharing our memory (sanitizer_stoptheworld). */
	SB_ARG(clone, 0, 0xffffffffu, CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_UNTRACED),
	SB_ANY(wait4), SB_ANY(ptrace), SB_ANY(prctl), SB_ANY(sigaltstack), SB_ANY(rt_sigaction),
	SB_ANY(getppid), SB_ANY(kill), SB_ANY(prlimit64), SB_ANY(getrlimit),
	SB_ANY(sched_getaffinity), SB_ANY(getrandom), SB_ANY(pipe2), SB_ANY(dup), SB_ANY(dup2),
	SB_ANY(dup3), SB_ANY(uname), SB_ANY(sysinfo), SB_ANY(mincore), SB_ANY(munmap),
	SB_ANY(exit_group), SB_ANY(fcntl), SB_IOCTLS(TCGETS), /* isatty() of stderr, for colours */
};
static const struct sb_group g_san = SB_GROUP("sanitizers", san);
#endif

static const struct sb_group g_core = SB_GROUP("core", core);
static const struct sb_group g_tgkill = SB_GROUP("tgkill", tgkill_rule);
static const struct sb_group g_spawn = SB_GROUP("spawn", spawn);
static const struct sb_group g_workers = SB_GROUP("workers", workers);
static const struct sb_group g_wait = SB_GROUP("wait", wait_fds);
static const struct sb_group g_vcpu = SB_GROUP("vcpu", vcpu);
static const struct sb_group g_dev_queues = SB_GROUP("dev-queues", dev_queues);
static const struct sb_group g_blk_io = SB_GROUP("blk-io", blk_io);
static const struct sb_group g_fuse = SB_GROUP("fuse", fuse);
static const struct sb_group g_dax_watch = SB_GROUP("dax-watch", dax_watch);
static const struct sb_group g_api_socket = SB_GROUP("api-socket", api_socket);
static const struct sb_group g_api_vsock = SB_GROUP("api-vsock", api_vsock);
static const struct sb_group g_api_console = SB_GROUP("api-console", api_console);
static const struct sb_group g_kvm_state = SB_GROUP("kvm-state", kvm_state);
static const struct sb_group g_files_rw = SB_GROUP("files-rw", files_rw);
static const struct sb_group g_console = SB_GROUP("console", console);
static const struct sb_group g_lazy = SB_GROUP("lazy", lazy);
static const struct sb_group g_main_run = SB_GROUP("main-run", main_run);
static const struct sb_group g_main_rebuild = SB_GROUP("main-rebuild", main_rebuild);
static const struct sb_group g_tty = SB_GROUP("tty", tty);
static const struct sb_group g_vsock_io = SB_GROUP("vsock-io", vsock_io);
static const struct sb_group g_rng_io = SB_GROUP("rng-io", rng_io);

static const char *const role_names[SANDBOX_NR_ROLES] = {
	[SANDBOX_BASE] = "base",
	[SANDBOX_MAIN] = "main",
	[SANDBOX_VCPU] = "vcpu",
	[SANDBOX_BLK_IO] = "blk-io",
	[SANDBOX_FS_IO] = "fs-io",
	[SANDBOX_DAX_WATCH] = "dax-watch",
	[SANDBOX_API] = "api",
	[SANDBOX_CONSOLE] = "console",
	[SANDBOX_LAZY] = "lazy",
	[SANDBOX_VSOCK_IO] = "vsock-io",
	[SANDBOX_BALLOON_IO] = "balloon-io",
	[SANDBOX_RNG_IO] = "rng-io",
};

const char *sb_role_name(unsigned int role)
{
	return role < SANDBOX_NR_ROLES ? role_names[role] : "?";
}

static void add(const struct sb_group **out, unsigned int *n, const struct sb_group *g)
{
	for (unsigned int i = 0; i < *n; i++)
		if (out[i] == g)
			return;
	if (*n < SB_MAX_GROUPS)
		out[(*n)++] = g;
}

/* The role's own groups, without the common ones. */
static void role_own(enum sandbox_role role, const struct sandbox_plan *p,
		     const struct sb_group **out, unsigned int *n)
{
	switch (role) {
	case SANDBOX_BASE:
		add(out, n, &g_spawn);
		add(out, n, &g_workers);
		break;
	case SANDBOX_MAIN:
		add(out, n, &g_wait);
		add(out, n, &g_main_run);
		/* A pause or save may be running when the VM stops: its devices restart. */
		add(out, n, &g_dev_queues);
		if (p->rebuild)
			add(out, n, &g_main_rebuild);
		break;
	case SANDBOX_VCPU:
		add(out, n, &g_vcpu);
		add(out, n, &g_dev_queues);
		break;
	case SANDBOX_BLK_IO:
		add(out, n, &g_blk_io);
		break;
	case SANDBOX_FS_IO:
		add(out, n, &g_fuse);
		add(out, n, &g_dev_queues);
		break;
	case SANDBOX_DAX_WATCH:
		add(out, n, &g_wait);
		add(out, n, &g_dax_watch);
		break;
	case SANDBOX_API:
		add(out, n, &g_wait);
		add(out, n, &g_api_socket);
		if (p->vsock)
			add(out, n, &g_api_vsock);
		if (p->console_api)
			add(out, n, &g_api_console);
		add(out, n, &g_kvm_state);
		add(out, n, &g_files_rw);
		add(out, n, &g_dev_queues);
		break;
	case SANDBOX_CONSOLE:
		add(out, n, &g_wait);
		add(out, n, &g_console);
		break;
	case SANDBOX_LAZY:
		add(out, n, &g_wait);
		add(out, n, &g_lazy);
		break;
	case SANDBOX_VSOCK_IO:
		add(out, n, &g_vsock_io);
		add(out, n, &g_dev_queues);
		break;
	case SANDBOX_BALLOON_IO:
		/* Its queues; the pages it gives back go with madvise (core). */
		add(out, n, &g_dev_queues);
		break;
	case SANDBOX_RNG_IO:
		add(out, n, &g_dev_queues);
		add(out, n, &g_rng_io);
		break;
	case SANDBOX_NR_ROLES:
		break;
	}
}

void sb_role_groups(enum sandbox_role role, const struct sandbox_plan *plan,
		    const struct sb_group **out)
{
	unsigned int n = 0;

	own_tgid[0] = (uint32_t)getpid();
	add(out, &n, &g_core);
	add(out, &n, &g_tgkill);
	if (plan->console_tty)
		add(out, &n, &g_tty);
#if defined(__SANITIZE_ADDRESS__)
	add(out, &n, &g_san);
#endif
	if (role == SANDBOX_BASE) {
		/* The baseline: every role this VM can have, and thread start-up. */
		for (unsigned int r = SANDBOX_BASE; r < SANDBOX_NR_ROLES; r++) {
			if ((r == SANDBOX_FS_IO || r == SANDBOX_DAX_WATCH) && !plan->shares)
				continue;
			if (r == SANDBOX_LAZY && !plan->lazy)
				continue;
			if (r == SANDBOX_API && !plan->api)
				continue;
			if (r == SANDBOX_VSOCK_IO && !plan->vsock)
				continue;
			if (r == SANDBOX_BALLOON_IO && !plan->balloon)
				continue;
			if (r == SANDBOX_RNG_IO && !plan->rng)
				continue;
			role_own(r, plan, out, &n);
		}
	} else {
		role_own(role, plan, out, &n);
	}
	out[n] = NULL;
}
