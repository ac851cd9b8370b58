// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The VMM sandbox: the seccomp programs of every role (run through a BPF
 * interpreter, and for real in forked children that must die of SIGSYS with
 * the log line), the spawner, capabilities, the [sandbox] and [console]
 * max_size keys, and the console file cap.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "devices/iobus.h"
#include "devices/legacy.h"
#include "layout.h"
#include "mm/guest_mem.h"
#include "devices/serial.h"
#include "sandbox/jail.h"
#include "sandbox/sandbox_int.h"
#include "unit.h"
#include "vm.h"

#define THREAD_FLAGS                                                                               \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |        \
	 CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)

#if defined(__SANITIZE_ADDRESS__)
#define SAN_BUILD 1
#else
#define SAN_BUILD 0
#endif

static struct sb_prog progs[SANDBOX_NR_ROLES];

static void build_all(const struct sandbox_plan *plan)
{
	const struct sb_group *groups[SB_MAX_GROUPS + 1];

	for (unsigned int r = 0; r < SANDBOX_NR_ROLES; r++) {
		sb_prog_free(&progs[r]);
		sb_role_groups(r, plan, groups);
		ck_assert_int_eq(sb_build(groups, r, false, &progs[r]), 0);
		ck_assert_uint_gt(progs[r].len, 8);
	}
}

static void free_all(void)
{
	for (unsigned int r = 0; r < SANDBOX_NR_ROLES; r++)
		sb_prog_free(&progs[r]);
}

static uint32_t eval(unsigned int role, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	const uint64_t args[6] = { a0, a1, a2, 0, 0, 0 };

	return sb_prog_eval(&progs[role], AUDIT_ARCH_X86_64, nr, args);
}

static bool allows(unsigned int role, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return eval(role, nr, a0, a1, a2) == SECCOMP_RET_ALLOW;
}

static const struct sandbox_plan plans[] = {
	{ 0 },
	{ .rebuild = true,
	  .shares = true,
	  .lazy = true,
	  .api = true,
	  .console_tty = true,
	  .vsock = true,
	  .rng = true },
	{ .shares = true, .api = true },
};

/* Every role: the ABI check, and calls no thread of minivmm makes. */
START_TEST(test_filters_deny)
{
	for (unsigned int p = 0; p < sizeof(plans) / sizeof(plans[0]); p++) {
		build_all(&plans[p]);
		for (unsigned int r = 0; r < SANDBOX_NR_ROLES; r++) {
			uint32_t trap = SECCOMP_RET_TRAP | r;

			ck_assert_uint_eq(
			    sb_prog_eval(&progs[r], AUDIT_ARCH_I386, __NR_getpid, NULL),
			    trap | SB_DENY_ARCH);
			ck_assert_uint_eq(eval(r, 0x40000000 | __NR_getpid, 0, 0, 0),
					  trap | SB_DENY_ARCH);
			ck_assert_uint_eq(eval(r, __NR_execve, 0, 0, 0), trap);
			ck_assert_uint_eq(eval(r, __NR_execveat, 0, 0, 0), trap);
			ck_assert_uint_eq(eval(r, __NR_socket, AF_INET, SOCK_STREAM, 0), trap);
			/*
			 * The vsock thread's host side is Unix sockets, and only those; the API
			 * thread connects to the VM's own vsock socket (the baseline, the union
			 * of the VM's roles, has them when the VM has vsock).
			 */
			if (r != SANDBOX_VSOCK_IO &&
			    !((r == SANDBOX_BASE || r == SANDBOX_API) && plans[p].vsock)) {
				ck_assert_uint_eq(eval(r, __NR_socket, AF_UNIX, SOCK_STREAM, 0), trap);
				ck_assert_uint_eq(eval(r, __NR_connect, 3, 0, 0), trap);
			}
			ck_assert_uint_eq(eval(r, __NR_mount, 0, 0, 0), trap);
			ck_assert_uint_eq(eval(r, __NR_bpf, 0, 0, 0), trap);
			ck_assert_uint_eq(eval(r, __NR_kexec_load, 0, 0, 0), trap);
			ck_assert_uint_eq(eval(r, __NR_setuid, 0, 0, 0), trap);
			/* The SIGSYS handler's way out must be denied everywhere, SAN too. */
			ck_assert_uint_eq(eval(r, __NR_afs_syscall, 0, 0, 0), trap);
			/* Signals only to our own threads. */
			ck_assert(allows(r, __NR_tgkill, getpid(), 1, SIGUSR1));
			ck_assert(!allows(r, __NR_tgkill, getpid() + 1, 1, SIGUSR1));
			ck_assert(allows(r, __NR_mmap, 0, 4096, PROT_READ | PROT_WRITE));
			if (!SAN_BUILD) {
				ck_assert_uint_eq(eval(r, __NR_ptrace, 0, 0, 0), trap);
				ck_assert_uint_eq(eval(r, __NR_fork, 0, 0, 0), trap);
				ck_assert_uint_eq(eval(r, __NR_clone, SIGCHLD, 0, 0), trap);
				ck_assert_uint_eq(
				    eval(r, __NR_mmap, 0, 4096, PROT_READ | PROT_EXEC), trap);
				ck_assert_uint_eq(eval(r, __NR_mprotect, 0, 4096,
						       PROT_READ | PROT_WRITE | PROT_EXEC),
						  trap);
			}
		}
		free_all();
	}
}
END_TEST

START_TEST(test_filters_roles)
{
	build_all(&plans[0]);
	/* vCPUs: KVM_RUN and device ioctls; no VM creation, no files, no threads. */
	ck_assert(allows(SANDBOX_VCPU, __NR_ioctl, 5, KVM_RUN, 0));
	ck_assert(allows(SANDBOX_VCPU, __NR_ioctl, 5, KVM_IRQFD, 0));
	ck_assert(allows(SANDBOX_VCPU, __NR_ioctl, 5, 0xffffffff00000000ULL | KVM_RUN, 0));
	ck_assert(!allows(SANDBOX_VCPU, __NR_ioctl, 5, KVM_CREATE_VM, 0));
	ck_assert(!allows(SANDBOX_VCPU, __NR_ioctl, 5, KVM_SET_CPUID2, 0));
	ck_assert(!allows(SANDBOX_VCPU, __NR_openat, AT_FDCWD, 0, O_RDWR));
	if (!SAN_BUILD) /* the sanitizers read /proc/self/maps from any thread */
		ck_assert(!allows(SANDBOX_VCPU, __NR_openat, AT_FDCWD, 0, O_RDONLY));
	ck_assert(!allows(SANDBOX_VCPU, __NR_clone, THREAD_FLAGS, 0, 0));
	/* Block I/O: no ioctl at all, no open. */
	ck_assert(allows(SANDBOX_BLK_IO, __NR_io_uring_enter, 3, 1, 0));
	ck_assert(allows(SANDBOX_BLK_IO, __NR_pwritev, 3, 0, 1));
	ck_assert(!allows(SANDBOX_BLK_IO, __NR_ioctl, 5, KVM_RUN, 0));
	ck_assert(!allows(SANDBOX_BLK_IO, __NR_openat, AT_FDCWD, 0, O_WRONLY | O_CREAT));
	/* The console raises its IRQ line, nothing else of KVM. */
	ck_assert(allows(SANDBOX_CONSOLE, __NR_ioctl, 5, KVM_IRQ_LINE, 0));
	ck_assert(!allows(SANDBOX_CONSOLE, __NR_ioctl, 5, KVM_RUN, 0));
	/* The main thread reads files only, unless it rebuilds the VM. */
	ck_assert(allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_RDONLY | O_CLOEXEC));
	ck_assert(allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_RDONLY | O_DIRECTORY));
	ck_assert(!allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_TMPFILE | O_RDWR));
	ck_assert(!allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_WRONLY | O_CREAT));
	ck_assert(!allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_RDWR));
	ck_assert(!allows(SANDBOX_MAIN, __NR_ioctl, 5, KVM_CREATE_VM, 0));
	ck_assert(allows(SANDBOX_MAIN, __NR_ioctl, 5, KVM_GET_REGS, 0));
	/* The baseline creates threads through clone() only, with thread flags. */
	ck_assert(allows(SANDBOX_BASE, __NR_clone, THREAD_FLAGS, 0, 0));
	ck_assert(!allows(SANDBOX_BASE, __NR_clone, THREAD_FLAGS | CLONE_NEWUSER, 0, 0));
	ck_assert_uint_eq(eval(SANDBOX_BASE, __NR_clone3, 0, 0, 0), SECCOMP_RET_ERRNO | ENOSYS);
	if (!SAN_BUILD) /* LeakSanitizer's tracer sets it */
		ck_assert(!allows(SANDBOX_BASE, __NR_prctl, PR_SET_DUMPABLE, 1, 0));
	ck_assert(allows(SANDBOX_BASE, __NR_prctl, PR_SET_NAME, 0, 0));
	/* Without shares, lazy restore or an API socket the baseline has none of theirs. */
	ck_assert(!allows(SANDBOX_BASE, __NR_openat2, 3, 0, 0));
	ck_assert(!allows(SANDBOX_BASE, __NR_accept4, 3, 0, 0));
	ck_assert(!allows(SANDBOX_BASE, __NR_ioctl, 5, UFFDIO_COPY, 0));
	free_all();

	build_all(&plans[1]);
	ck_assert(allows(SANDBOX_MAIN, __NR_openat, AT_FDCWD, 0, O_WRONLY | O_CREAT | O_TRUNC));
	ck_assert(allows(SANDBOX_MAIN, __NR_ioctl, 5, KVM_CREATE_VM, 0));
	ck_assert(allows(SANDBOX_FS_IO, __NR_openat2, 3, 0, 0));
	ck_assert(!allows(SANDBOX_FS_IO, __NR_ioctl, 5, KVM_RUN, 0));
	ck_assert(allows(SANDBOX_API, __NR_accept4, 3, 0, 0));
	ck_assert(!allows(SANDBOX_API, __NR_ioctl, 5, KVM_RUN, 0));
	ck_assert(allows(SANDBOX_LAZY, __NR_ioctl, 5, UFFDIO_COPY, 0));
	ck_assert(!allows(SANDBOX_LAZY, __NR_ioctl, 5, KVM_RUN, 0));
	free_all();
}
END_TEST

/*
 * A thread's filter is the baseline's (inherited from the spawner) and its
 * role's: the baseline must allow everything a role allows, or the role's
 * threads would die of calls their own table permits.
 */
START_TEST(test_baseline_covers_roles)
{
	const struct sb_group *groups[SB_MAX_GROUPS + 1];
	unsigned int g;

	for (unsigned int p = 0; p < sizeof(plans) / sizeof(plans[0]); p++) {
		const struct sandbox_plan *plan = &plans[p];

		build_all(plan);
		/* Room to spare: a group that did not fit would be left out silently. */
		sb_role_groups(SANDBOX_BASE, plan, groups);
		for (g = 0; groups[g]; g++)
			;
		ck_assert_uint_lt(g, SB_MAX_GROUPS);
		for (unsigned int r = 1; r < SANDBOX_NR_ROLES; r++) {
			if ((r == SANDBOX_FS_IO || r == SANDBOX_DAX_WATCH) && !plan->shares)
				continue;
			if ((r == SANDBOX_LAZY && !plan->lazy) ||
			    (r == SANDBOX_API && !plan->api) ||
			    (r == SANDBOX_VSOCK_IO && !plan->vsock) ||
			    (r == SANDBOX_RNG_IO && !plan->rng))
				continue;
			sb_role_groups(r, plan, groups);
			for (g = 0; groups[g]; g++) {
				for (size_t i = 0; i < groups[g]->n; i++) {
					const struct sb_rule *rule = &groups[g]->rules[i];
					uint64_t args[6] = { 0 };
					unsigned int v;

					for (v = 0; v < (rule->arg < 0 ? 1 : rule->nvals); v++) {
						if (rule->arg >= 0)
							args[rule->arg] = rule->vals[v];
						ck_assert_msg(
						    sb_prog_eval(&progs[SANDBOX_BASE],
								 AUDIT_ARCH_X86_64, rule->nr,
								 args) ==
							sb_prog_eval(&progs[r], AUDIT_ARCH_X86_64,
								     rule->nr, args),
						    "role %s, group %s: call %d (%s) value %u",
						    sb_role_name(r), groups[g]->name, rule->nr,
						    sb_syscall_name(rule->nr), v);
					}
				}
			}
		}
		free_all();
	}
}
END_TEST

START_TEST(test_format_line)
{
	char buf[256];
	size_t n;

	n = sb_format_denial(buf, sizeof(buf), "vcpu0", SANDBOX_VCPU, __NR_socket, NULL, false);
	ck_assert_str_eq(buf, "minivmm: seccomp: thread vcpu0 (role vcpu) made denied system call "
			      "41 (socket); stopping\n");
	ck_assert_uint_eq(n, strlen(buf));
	sb_format_denial(buf, sizeof(buf), "", SANDBOX_BASE | SB_DENY_ARCH, 11, NULL, false);
	ck_assert_str_eq(buf, "minivmm: seccomp: thread (unnamed) (role base) made denied system "
			      "call 11 (not an x86-64 call); stopping\n");
	sb_format_denial(buf, sizeof(buf), "api", SANDBOX_API, 100000, NULL, false);
	ck_assert_ptr_nonnull(strstr(buf, "call 100000 (unknown)"));
	/* Cut, never overrun. */
	n = sb_format_denial(buf, 20, "api", SANDBOX_API, 1, NULL, false);
	ck_assert_uint_eq(n, 19);
	ck_assert_uint_eq(strlen(buf), 19);
}
END_TEST

/* --- real filters in forked children ---------------------------------------------------- */

struct child_result {
	int status;
	char out[512], err[1024];
};

static void read_all(int fd, char *buf, size_t size)
{
	size_t have = 0;
	ssize_t n;

	while (have + 1 < size && (n = read(fd, buf + have, size - 1 - have)) > 0)
		have += n;
	buf[have] = '\0';
}

/* Run @fn in a child named @name with stdout and stderr captured. */
static void run_child(const char *name, void (*fn)(void *), void *arg, struct child_result *res)
{
	int out[2], err[2];
	pid_t pid;

	ck_assert_int_eq(pipe(out), 0);
	ck_assert_int_eq(pipe(err), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		close(out[0]);
		close(err[0]);
		prctl(PR_SET_NAME, name, 0, 0, 0);
		fn(arg);
		_exit(0);
	}
	close(out[1]);
	close(err[1]);
	read_all(out[0], res->out, sizeof(res->out));
	read_all(err[0], res->err, sizeof(res->err));
	close(out[0]);
	close(err[0]);
	ck_assert_int_eq(waitpid(pid, &res->status, 0), pid);
}

static void say(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0)
		_exit(99);
}

static void start_sandbox(void)
{
	struct sandbox_plan plan = { 0 };

	if (sandbox_start(&plan))
		_exit(98);
}

/* A role's thread: an allowed call works, a denied one ends the process by SIGSYS. */
static void child_vcpu_denied(void *arg)
{
	int efd;
	uint64_t one = 1;

	(void)arg;
	start_sandbox();
	efd = eventfd(0, EFD_CLOEXEC); /* before: vCPUs may make eventfds anyway */
	sandbox_thread_enter(SANDBOX_VCPU);
	if (efd < 0 || write(efd, &one, sizeof(one)) != sizeof(one) || getpid() <= 0)
		_exit(97);
	say("allowed-ok\n");
	syscall(__NR_socket, AF_INET, SOCK_STREAM, 0);
	say("survived\n");
}

START_TEST(test_denied_call_kills)
{
	struct child_result res;

	run_child("tvcpu", child_vcpu_denied, NULL, &res);
	ck_assert_msg(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSYS,
		      "status %#x, stderr: %s", res.status, res.err);
	ck_assert_str_eq(res.out, "allowed-ok\n");
	ck_assert_str_eq(res.err, "minivmm: seccomp: thread tvcpu (role vcpu) made denied system "
				  "call 41 (socket); stopping\n");
}
END_TEST

/* Each role, its thread named after it, dies of a call no role makes. */
static void child_role_execve(void *arg)
{
	enum sandbox_role role = (enum sandbox_role)(uintptr_t)arg;
	char *const argv[] = { "/bin/true", NULL };

	start_sandbox();
	sandbox_thread_enter(role);
	say("entered\n");
	execve("/bin/true", argv, argv + 1);
}

START_TEST(test_each_role_denies)
{
	for (unsigned int r = 0; r < SANDBOX_NR_ROLES; r++) {
		struct child_result res;
		char want[160];

		run_child(sb_role_name(r), child_role_execve, (void *)(uintptr_t)r, &res);
		ck_assert_msg(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSYS,
			      "role %s: status %#x, stderr: %s", sb_role_name(r), res.status,
			      res.err);
		ck_assert_str_eq(res.out, "entered\n");
		snprintf(want, sizeof(want),
			 "minivmm: seccomp: thread %.15s (role %s) made denied system call %d "
			 "(execve); stopping\n",
			 sb_role_name(r), sb_role_name(r), __NR_execve);
		ck_assert_str_eq(res.err, want);
	}
}
END_TEST

/* With the sandbox off (seccomp = off) entering a role does nothing. */
static void child_off(void *arg)
{
	int fd;

	(void)arg;
	sandbox_thread_enter(SANDBOX_VCPU);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	say(fd >= 0 ? "socket-ok\n" : "socket-failed\n");
}

START_TEST(test_off_does_nothing)
{
	struct child_result res;

	run_child("toff", child_off, NULL, &res);
	ck_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
	ck_assert_str_eq(res.out, "socket-ok\n");
	ck_assert_str_eq(res.err, "");
}
END_TEST

/*
 * A vCPU (which may not clone) creates a thread: the spawner makes it, and it
 * gets the block I/O role, not the vCPU's: pread works there, openat does not.
 */
static int spawn_fd = -1;

static void *blk_like(void *arg)
{
	char c;

	(void)arg;
	sandbox_thread_enter(SANDBOX_BLK_IO);
	if (pread(spawn_fd, &c, 1, 0) != 1)
		_exit(96);
	say("pread-ok\n");
	syscall(__NR_openat, AT_FDCWD, "/nonexistent/x", O_RDWR | O_CREAT, 0600);
	return NULL;
}

static void child_spawn(void *arg)
{
	pthread_t t;

	(void)arg;
	spawn_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (spawn_fd < 0)
		_exit(95);
	start_sandbox();
	sandbox_thread_enter(SANDBOX_VCPU);
	if (pthread_create(&t, NULL, blk_like, NULL))
		_exit(94);
	pthread_join(t, NULL);
	say("joined\n");
}

START_TEST(test_spawner)
{
	struct child_result res;

	run_child("tspawn", child_spawn, NULL, &res);
	ck_assert_msg(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSYS,
		      "status %#x, stdout %s, stderr: %s", res.status, res.out, res.err);
	ck_assert_str_eq(res.out, "pread-ok\n");
	ck_assert_str_eq(res.err, "minivmm: seccomp: thread tspawn+ (role blk-io) made denied "
				  "system call 257 (openat); stopping\n");
}
END_TEST

/* seccomp = log: a denied call is logged (once per role, call and argument) and made. */
static void child_log_mode(void *arg)
{
	struct sandbox_plan plan = { .log_only = true };
	int fd1, fd2;

	(void)arg;
	if (sandbox_start(&plan))
		_exit(98);
	sandbox_thread_enter(SANDBOX_VCPU);
	fd1 = (int)syscall(__NR_socket, AF_UNIX, SOCK_STREAM, 0);
	fd2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	/* A different checked argument is a new line; an ioctl's failure comes back. */
	if (ioctl(fd1, FIONREAD, &(int){ 0 }) || ioctl(fd1, KVM_RUN, 0) != -1 || errno != ENOTTY)
		_exit(97);
	say(fd1 >= 0 && fd2 > fd1 ? "sockets-ok\n" : "socket-failed\n");
}

START_TEST(test_log_mode)
{
	struct child_result res;

	run_child("tlog", child_log_mode, NULL, &res);
	ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0, "status %#x: %s",
		      res.status, res.err);
	ck_assert_str_eq(res.out, "sockets-ok\n");
	ck_assert_ptr_nonnull(strstr(res.err, "seccomp = log"));
	ck_assert_ptr_nonnull(strstr(res.err,
				     "minivmm: seccomp (log): thread tlog (role vcpu) made "
				     "denied system call 41 (socket, argument 0x1); allowed\n"));
	/* Once: the second socket() has the same family. */
	ck_assert_msg(!strstr(strstr(res.err, "(socket, argument 0x1)") + 22, "(socket, "), "%s",
		      res.err);
	ck_assert_ptr_nonnull(strstr(res.err, "(ioctl, argument 0x541b); allowed\n"));
	ck_assert_ptr_null(strstr(res.err, "(ioctl, argument 0xae80)")); /* KVM_RUN: allowed */
	ck_assert_ptr_null(strstr(res.err, "stopping"));
}
END_TEST

/* MINIVMM_SANDBOX_TEST_DENY=ROLE: the role's first thread makes a denied call at once. */
static void child_test_deny(void *arg)
{
	(void)arg;
	setenv("MINIVMM_SANDBOX_TEST_DENY", "console", 1);
	start_sandbox();
	sandbox_thread_enter(SANDBOX_CONSOLE);
	say("survived\n");
}

START_TEST(test_test_deny_hook)
{
	struct child_result res;

	run_child("console", child_test_deny, NULL, &res);
	ck_assert(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSYS);
	ck_assert_str_eq(res.out, "");
	ck_assert_str_eq(res.err, "minivmm: seccomp: thread console (role console) made denied "
				  "system call 41 (socket); stopping\n");
}
END_TEST

/*
 * The main thread's filter holds to the end of the process: exit() runs the atexit
 * handlers and, in a sanitizer build, LeakSanitizer, whose tracer process inherits the
 * filter. It must end normally, not die of SIGSYS or hang (a tracer killed by a denied
 * call leaves the main thread spinning).
 */
START_TEST(test_main_role_exit)
{
	int out[2], status = 0;
	pid_t pid, r = 0;

	ck_assert_int_eq(pipe(out), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		dup2(out[1], STDERR_FILENO);
		start_sandbox();
		if (sandbox_main_ready())
			_exit(97);
		exit(0);
	}
	close(out[1]);
	for (int i = 0; i < 300 && (r = waitpid(pid, &status, WNOHANG)) == 0; i++)
		usleep(100 * 1000);
	if (!r) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	close(out[0]);
	ck_assert_msg(r == pid, "the sandboxed main thread's exit hung");
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}
END_TEST

/* --- capabilities --------------------------------------------------------------------------- */

static void child_caps(void *arg)
{
	uint64_t keep = 1ULL << CAP_CHOWN;

	(void)arg;
	if (sb_caps_limit(keep))
		_exit(10);
	if (sb_caps_effective() != keep)
		_exit(11);
	if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0 ||
	    prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0) != 1)
		_exit(12);
	/* Gone for good: a capability dropped from the permitted set cannot come back. */
	if (sb_caps_limit(~0ULL) || sb_caps_effective() != keep)
		_exit(13);
	_exit(0);
}

START_TEST(test_caps)
{
	struct child_result res;

	if (!(sb_caps_effective() & (1ULL << CAP_SETPCAP)))
		UNIT_SKIP("needs CAP_SETPCAP (root) to drop capabilities");
	run_child("tcaps", child_caps, NULL, &res);
	ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0, "status %#x",
		      res.status);
}
END_TEST

/* --- configuration ---------------------------------------------------------------------------- */

#define BOOT "[boot]\nkernel = /proc/self/exe\n"

static struct vm_config cfg;
static char errs[2048];

static int load_text(const char *text)
{
	FILE *f = fmemopen(errs, sizeof(errs), "w");
	int ret;

	ck_assert_ptr_nonnull(f);
	memset(errs, 0, sizeof(errs));
	ret = config_load_string(&cfg, "guest.cfg", text, strlen(text), NULL, 0, f);
	fclose(f);
	return ret;
}

static char *dump(void)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	config_dump(&cfg, f);
	fclose(f);
	return text;
}

START_TEST(test_config_keys)
{
	struct vm_config again;
	char *text;

	ck_assert_int_eq(load_text(BOOT), 0);
	/* on by default; log in sanitizer builds (config.h) */
	ck_assert_uint_eq(cfg.sandbox.seccomp, SANDBOX_SECCOMP_DEFAULT);
	ck_assert_ptr_null(cfg.sandbox.jail);
	ck_assert_uint_eq(cfg.serial_max, 64ULL << 20);
	text = dump();
	ck_assert_ptr_null(strstr(text, "[sandbox]"));
	ck_assert_ptr_null(strstr(text, "max_size"));
	free(text);
	config_free(&cfg);

	ck_assert_int_eq(load_text(BOOT "[console]\nserial = none\nmax_size = 1M\n"
					"[sandbox]\nseccomp = off\njail = /tmp\nuid = 1000\n"
					"gid = auto\nmemory_max = 2G\ncpu_max = 50000\n"
					"pids_max = 64\ncgroup_parent = /\n"),
			 0);
	ck_assert_uint_eq(cfg.serial_max, 1ULL << 20);
	ck_assert_uint_eq(cfg.sandbox.seccomp, 0);
	ck_assert_str_eq(cfg.sandbox.jail, "/tmp");
	ck_assert_uint_eq(cfg.sandbox.uid, 1000);
	ck_assert_uint_eq(cfg.sandbox.gid, 0);
	ck_assert_uint_eq(cfg.sandbox.memory_max, 2ULL << 30);
	ck_assert_str_eq(cfg.sandbox.cpu_max, "50000 100000");
	ck_assert_uint_eq(cfg.sandbox.pids_max, 64);
	ck_assert_str_eq(cfg.sandbox.cgroup_parent, "/");
	text = dump();
	ck_assert_ptr_nonnull(strstr(text, "serial = none\nmax_size = 1M\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n[sandbox]\nseccomp = off\njail = /tmp\nuid = 1000\n"
					   "cgroup_parent = /\nmemory_max = 2G\n"
					   "cpu_max = 50000 100000\npids_max = 64\n"));
	/* What dumps loads back the same. */
	again = cfg;
	memset(&cfg, 0, sizeof(cfg));
	ck_assert_int_eq(load_text(text), 0);
	free(text);
	ck_assert_uint_eq(cfg.serial_max, again.serial_max);
	ck_assert_uint_eq(cfg.sandbox.seccomp, again.sandbox.seccomp);
	ck_assert_str_eq(cfg.sandbox.cpu_max, again.sandbox.cpu_max);
	ck_assert_uint_eq(cfg.sandbox.memory_max, again.sandbox.memory_max);
	config_free(&again);
	config_free(&cfg);

	ck_assert_int_eq(load_text(BOOT "[sandbox]\ncpu_max = max 20000\n"), 0);
	ck_assert_str_eq(cfg.sandbox.cpu_max, "max 20000");
	config_free(&cfg);
	ck_assert_int_eq(load_text(BOOT "[console]\nmax_size = 0\n"), 0);
	ck_assert_uint_eq(cfg.serial_max, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_config_errors)
{
	ck_assert_int_eq(load_text(BOOT "[sandbox]\nseccomp = maybe\n"), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [sandbox] seccomp: bad value 'maybe' (expected "
			       "off|on|log)\n");
	ck_assert_int_eq(load_text(BOOT "[sandbox]\ncpu_max = 10\n"), -EINVAL);
	ck_assert_ptr_nonnull(strstr(errs, "guest.cfg:4: [sandbox] cpu_max: bad value '10'"));
	ck_assert_int_eq(load_text(BOOT "[sandbox]\ncpu_max = 50000 10\n"), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[sandbox]\ncpu_max = 50000 100000 x\n"), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[sandbox]\nuid = 0\n"), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [sandbox] uid: 0 out of range (1..4294967294)\n");
	ck_assert_int_eq(load_text(BOOT "[sandbox]\njail = /nonexistent-jail\n"), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [sandbox] jail: /nonexistent-jail: No such file or "
			       "directory\n");
	ck_assert_int_eq(load_text(BOOT "[sandbox]\npids_max = 2\n"), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[sandbox]\nmemory_max = 1K\n"), -EINVAL);
	ck_assert_int_eq(load_text(BOOT "[console]\nmax_size = lots\n"), -EINVAL);
	ck_assert_str_eq(errs, "guest.cfg:4: [console] max_size: bad size 'lots' (use e.g. 64M "
			       "or 1G)\n");
}
END_TEST

/* --- the jail ------------------------------------------------------------------------------------
 */

static char jdir[64];

static void write_small(const char *path)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs("x", f);
	fclose(f);
}

static const struct jail_mount *find_mount(const struct jail_mounts *jm, const char *path)
{
	for (unsigned int i = 0; i < jm->n; i++)
		if (!strcmp(jm->m[i].path, path))
			return &jm->m[i];
	return NULL;
}

/* What goes into the jail: every path the VM uses, resolved, with the right access. */
START_TEST(test_jail_collect)
{
	char real[PATH_MAX], p[PATH_MAX + 64];
	const struct jail_mount *m;
	struct jail_mounts jm;
	struct stat st;

	snprintf(jdir, sizeof(jdir), "/tmp/minivmm-sbtest.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(jdir));
	ck_assert_ptr_nonnull(realpath(jdir, real));
	snprintf(p, sizeof(p), "%s/share", jdir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/sock", jdir);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/kernel", jdir);
	write_small(p);
	snprintf(p, sizeof(p), "%s/disk.img", jdir);
	write_small(p);
	snprintf(p, sizeof(p), "%s/ro.img", jdir);
	write_small(p);
	ck_assert_int_eq(chdir(jdir), 0);
	/* Relative paths, a symlink, a console file that does not exist yet. */
	ck_assert_int_eq(symlink("kernel", "klink"), 0);
	ck_assert_int_eq(load_text("[boot]\nkernel = klink\n[console]\nserial = file:con.log\n"
				   "[api]\nsocket = sock/api.sock\n[disk.0]\npath = disk.img\n"
				   "[disk.1]\npath = ro.img\nreadonly = on\n"
				   "[share.0]\npath = share\nreadonly = on\n"),
			 0);
	ck_assert_int_eq(jail_collect(&cfg, 4242, 4343, &jm), 0);
	ck_assert_uint_eq(jm.n, 6);
	snprintf(p, sizeof(p), "%s/kernel", real);
	ck_assert_str_eq(cfg.kernel, p);
	m = find_mount(&jm, p);
	ck_assert(m && !m->dir && !m->writable && !m->device);
	snprintf(p, sizeof(p), "%s/disk.img", real);
	ck_assert_str_eq(cfg.disks[0].path, p);
	m = find_mount(&jm, p);
	ck_assert(m && !m->dir && m->writable);
	snprintf(p, sizeof(p), "%s/ro.img", real);
	m = find_mount(&jm, p);
	ck_assert(m && !m->writable);
	snprintf(p, sizeof(p), "%s/share", real);
	ck_assert_str_eq(cfg.shares[0].path, p);
	m = find_mount(&jm, p);
	ck_assert(m && m->dir && !m->writable);
	/* The socket's directory goes in, writable; the socket keeps its name. */
	snprintf(p, sizeof(p), "%s/sock", real);
	m = find_mount(&jm, p);
	ck_assert(m && m->dir && m->writable);
	snprintf(p, sizeof(p), "%s/sock/api.sock", real);
	ck_assert_str_eq(cfg.api_socket, p);
	/* The console file exists now, the jail user's. */
	snprintf(p, sizeof(p), "%s/con.log", real);
	ck_assert_str_eq(cfg.serial_path, p);
	m = find_mount(&jm, p);
	ck_assert(m && !m->dir && m->writable);
	ck_assert_int_eq(stat(p, &st), 0);
	if (geteuid() == 0)
		ck_assert(st.st_uid == 4242 && st.st_gid == 4343);
	jail_mounts_free(&jm);
	ck_assert_uint_eq(jm.n, 0);
	config_free(&cfg);

	/* A path that vanished is an error naming it. */
	ck_assert_int_eq(load_text("[boot]\nkernel = kernel\n[disk.0]\npath = disk.img\n"), 0);
	ck_assert_int_eq(unlink("disk.img"), 0);
	ck_assert_int_eq(jail_collect(&cfg, 4242, 4343, &jm), -ENOENT);
	config_free(&cfg);
	snprintf(p, sizeof(p), "rm -rf '%s'", real);
	ck_assert_int_eq(system(p), 0);
}
END_TEST

/* Without root there is no jail: a clear refusal, nothing made. */
static void child_jail_nonroot(void *arg)
{
	char *dir = arg;
	int status = -1;

	if (setresgid(4242, 4242, 4242) || setresuid(4242, 4242, 4242))
		_exit(90);
	config_init(&cfg);
	cfg.kernel = strdup("/proc/self/exe");
	cfg.sandbox.jail = strdup(dir);
	if (jail_run(&cfg, &status) != -EPERM)
		_exit(91);
	_exit(0);
}

START_TEST(test_jail_needs_root)
{
	struct child_result res;
	char dir[] = "/tmp/minivmm-jail.XXXXXX";

	if (geteuid() != 0)
		UNIT_SKIP("needs root to become another user");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	run_child("tjail", child_jail_nonroot, dir, &res);
	rmdir(dir);
	ck_assert_msg(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0, "status %#x: %s",
		      res.status, res.err);
	ck_assert_ptr_nonnull(strstr(res.err, "minivmm: jail: needs root"));
}
END_TEST

/* Limits need a jail (their cgroup is the jail's). */
START_TEST(test_jail_cgroup_keys)
{
	ck_assert_int_eq(load_text(BOOT), 0);
	ck_assert(!jail_cgroup_wanted(&cfg));
	config_free(&cfg);
	ck_assert_int_eq(load_text(BOOT "[sandbox]\npids_max = 16\n"), 0);
	ck_assert(jail_cgroup_wanted(&cfg));
	config_free(&cfg);
	/* "" clears a limit (a restore can drop the saved ones). */
	ck_assert_int_eq(load_text(BOOT "[sandbox]\npids_max =\nmemory_max =\ncpu_max =\n"), 0);
	ck_assert(!jail_cgroup_wanted(&cfg));
	config_free(&cfg);
}
END_TEST

/* --- the console file cap -------------------------------------------------------------------- */

static struct vm vm;

START_TEST(test_serial_cap)
{
	static const char note[] = "\r\n[minivmm: console output stopped here: [console] "
				   "max_size reached]\r\n";
	struct serial *s;
	char buf[256];
	ssize_t n;
	int p[2];

	memset(&vm, 0, sizeof(vm));
	io_bus_init(&vm.pio);
	vm.fd = -1;
	ck_assert_int_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
	s = serial_create(&vm, PORT_COM1, IRQ_COM1, p[1]);
	ck_assert_ptr_nonnull(s);
	serial_set_limit(s, 10);
	for (int i = 0; i < 30; i++) {
		uint8_t c = (uint8_t)('a' + i % 26);

		ck_assert(io_bus_access(&vm.pio, PORT_COM1, &c, 1, true));
	}
	n = read(p[0], buf, sizeof(buf) - 1);
	ck_assert_int_eq(n, 10 + (ssize_t)sizeof(note) - 1);
	buf[n] = '\0';
	ck_assert(!memcmp(buf, "abcdefghij", 10));
	ck_assert_str_eq(buf + 10, note);
	/* Nothing more, however much the guest writes. */
	for (int i = 0; i < 1000; i++) {
		uint8_t c = 'x';

		io_bus_access(&vm.pio, PORT_COM1, &c, 1, true);
	}
	ck_assert_int_lt(read(p[0], buf, sizeof(buf)), 0);
	ck_assert_int_eq(errno, EAGAIN);
	serial_destroy(s);

	/* 0: no cap. */
	s = serial_create(&vm, PORT_COM1, IRQ_COM1, p[1]);
	ck_assert_ptr_nonnull(s);
	serial_set_limit(s, 0);
	for (int i = 0; i < 200; i++) {
		uint8_t c = 'y';

		io_bus_access(&vm.pio, PORT_COM1, &c, 1, true);
	}
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 200);
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
	io_bus_destroy(&vm.pio);
}
END_TEST

/* --- guest memory stays out of core dumps ------------------------------------------------- */

/* The VmFlags of the mapping at @addr in /proc/self/smaps ("" if none). */
static void vmflags(const void *addr, char *out, size_t size)
{
	FILE *f = fopen("/proc/self/smaps", "re");
	char line[512];
	bool in = false;
	uintptr_t a = (uintptr_t)addr, s, e;

	ck_assert_ptr_nonnull(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, ' '))
			in = a >= s && a < e;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, size, "%.*s", (int)(size - 1), line + 8);
			break;
		}
	}
	fclose(f);
}

START_TEST(test_guest_mem_dontdump)
{
	struct guest_mem m;
	char flags[512];

	ck_assert_int_eq(guest_mem_init(&m, 64ULL << 20), 0);
	vmflags(m.r[0].hva, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " dd"), "VmFlags of guest RAM: %s", flags);
	vmflags((char *)m.r[0].hva + m.r[0].size - 4096, flags, sizeof(flags));
	ck_assert_msg(strstr(flags, " dd"), "VmFlags at the end of guest RAM: %s", flags);
	guest_mem_free(&m);
}
END_TEST

static Suite *sandbox_suite(void)
{
	Suite *s = suite_create("sandbox");
	TCase *tc = tcase_create("filters");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_filters_deny);
	tcase_add_test(tc, test_filters_roles);
	tcase_add_test(tc, test_baseline_covers_roles);
	tcase_add_test(tc, test_format_line);
	tcase_add_test(tc, test_denied_call_kills);
	tcase_add_test(tc, test_each_role_denies);
	tcase_add_test(tc, test_off_does_nothing);
	tcase_add_test(tc, test_log_mode);
	tcase_add_test(tc, test_spawner);
	tcase_add_test(tc, test_test_deny_hook);
	tcase_add_test(tc, test_main_role_exit);
	tcase_add_test(tc, test_caps);
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tcase_add_test(tc, test_config_keys);
	tcase_add_test(tc, test_config_errors);
	tcase_add_test(tc, test_serial_cap);
	tcase_add_test(tc, test_guest_mem_dontdump);
	tcase_add_test(tc, test_jail_collect);
	tcase_add_test(tc, test_jail_needs_root);
	tcase_add_test(tc, test_jail_cgroup_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(sandbox_suite());
}
