// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A denied system call: the filter answers SECCOMP_RET_TRAP, the kernel sends
 * SIGSYS to the thread, and this handler writes one line
 *   minivmm: seccomp: thread vcpu0 (role vcpu) made denied system call 41 (socket); stopping
 * with async-signal-safe calls only, then ends the process by SIGSYS: the
 * handler runs with SIGSYS blocked, and a trap while it is blocked makes the
 * kernel reset it to the default action (terminate with a core, which holds
 * no guest memory: MADV_DONTDUMP). Nothing of the VMM runs after a denial.
 *
 * seccomp = log (debugging): the same filters, but the handler writes the line
 * once per role, call and argument ("...; allowed") and makes the call itself
 * through escape_syscall, whose one syscall instruction every filter allows
 * (they check the instruction pointer first). The kernel's own SECCOMP_RET_LOG
 * would need the audit subsystem running, which most hosts do not have.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1 /* si_code of a seccomp SIGSYS (not in every libc's headers) */
#endif

/* Denied by every role (a unit test checks): the handler's way out. */
#define SB_DIE_NR __NR_afs_syscall

#define LOG_SEEN_SLOTS 4096 /* distinct (role, call, argument) lines in log mode */

/* escape_syscall(nr, a0..a5): the one syscall instruction log mode lets through. */
long escape_syscall(long nr, long a0, long a1, long a2, long a3, long a4, long a5);
extern const char escape_syscall_ret[];
__asm__(".text\n"
	".type escape_syscall, @function\n"
	"escape_syscall:\n"
	"	movq %rdi, %rax\n"
	"	movq %rsi, %rdi\n"
	"	movq %rdx, %rsi\n"
	"	movq %rcx, %rdx\n"
	"	movq %r8, %r10\n"
	"	movq %r9, %r8\n"
	"	movq 8(%rsp), %r9\n"
	"	syscall\n"
	"escape_syscall_ret:\n"
	"	ret\n"
	".size escape_syscall, . - escape_syscall\n");

static __thread char thread_name[16];
static bool log_mode;
static _Atomic uint64_t log_seen[LOG_SEEN_SLOTS];

uint64_t sb_escape_ip(void)
{
	return (uint64_t)(uintptr_t)escape_syscall_ret;
}

void sb_identity_set(enum sandbox_role role)
{
	(void)role; /* the filter reports the role in the trap data */
	if (prctl(PR_GET_NAME, thread_name, 0, 0, 0))
		thread_name[0] = '\0';
	thread_name[15] = '\0';
}

const char *sb_identity_name(void)
{
	return thread_name;
}

static size_t put(char *buf, size_t size, size_t at, const char *s)
{
	while (*s && at + 1 < size)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t size, size_t at, unsigned long v, unsigned int base)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		at = put(buf, size, at, "0x");
	while (n && at + 1 < size)
		buf[at++] = tmp[--n];
	return at;
}

/* The argument a filter checks for @nr (-1: none). */
int sb_checked_arg(long nr)
{
	switch (nr) {
	case __NR_ioctl:
		return 1;
	case __NR_mmap:
	case __NR_mprotect:
	case __NR_openat:
		return 2;
	case __NR_clone:
	case __NR_socket:
	case __NR_prctl:
	case __NR_tgkill:
	case __NR_seccomp:
		return 0;
	default:
		return -1;
	}
}

size_t sb_format_denial(char *buf, size_t size, const char *thread, unsigned int data, long nr,
			const uint64_t *arg, bool allowed)
{
	const char *name = sb_syscall_name(nr);
	size_t at = 0;

	if (!size)
		return 0;
	at = put(buf, size, at,
		 allowed ? "minivmm: seccomp (log): thread " : "minivmm: seccomp: thread ");
	at = put(buf, size, at, thread && *thread ? thread : "(unnamed)");
	at = put(buf, size, at, " (role ");
	at = put(buf, size, at, sb_role_name(data & 0xff));
	at = put(buf, size, at, ") made denied system call ");
	at = put_num(buf, size, at, (unsigned long)nr, 10);
	if (data & SB_DENY_ARCH) {
		at = put(buf, size, at, " (not an x86-64 call)");
	} else {
		at = put(buf, size, at, " (");
		at = put(buf, size, at, name ? name : "unknown");
		if (arg) {
			at = put(buf, size, at, ", argument ");
			at = put_num(buf, size, at, (unsigned long)(uint32_t)*arg, 16);
		}
		at = put(buf, size, at, ")");
	}
	at = put(buf, size, at, allowed ? "; allowed\n" : "; stopping\n");
	buf[at] = '\0';
	return at;
}

/* Log mode: the first time for this role, call and checked argument? */
static bool first_time(unsigned int data, long nr, uint64_t arg)
{
	uint64_t key =
	    ((uint64_t)(data & 0x1ff) << 48 | (uint64_t)(nr & 0xffff) << 32 | (uint32_t)arg) + 1;
	size_t i = (size_t)(key * 0x9e3779b97f4a7c15ULL >> 52) % LOG_SEEN_SLOTS;

	for (size_t n = 0; n < LOG_SEEN_SLOTS; n++, i = (i + 1) % LOG_SEEN_SLOTS) {
		uint64_t cur = 0;

		if (atomic_compare_exchange_strong(&log_seen[i], &cur, key))
			return true;
		if (cur == key)
			return false;
	}
	return true; /* full: say it again rather than never */
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	greg_t *g = ((ucontext_t *)uc)->uc_mcontext.gregs;
	const greg_t args[6] = { g[REG_RDI], g[REG_RSI], g[REG_RDX],
				 g[REG_R10], g[REG_R8],	 g[REG_R9] };
	unsigned int data = (unsigned int)si->si_errno;
	long nr = si->si_syscall;
	int saved = errno, ai = sb_checked_arg(nr);
	uint64_t a = ai >= 0 ? (uint64_t)args[ai] : 0;
	char line[256];
	size_t len;

	(void)sig;
	if (si->si_code != SYS_SECCOMP) {
		len = put(line, sizeof(line), 0, "minivmm: SIGSYS not from seccomp; stopping\n");
	} else if (log_mode && !(data & SB_DENY_ARCH) && nr != __NR_clone && nr != __NR_clone3 &&
		   nr != __NR_fork && nr != __NR_vfork && nr != __NR_rt_sigreturn) {
		if (first_time(data, nr, a)) {
			len = sb_format_denial(line, sizeof(line), thread_name, data, nr,
					       ai >= 0 ? &a : NULL, true);
			if (write(STDERR_FILENO, line, len) < 0)
				(void)0;
		}
		g[REG_RAX] =
		    escape_syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]);
		errno = saved;
		return;
	} else {
		/* The ioctl request says which one; the others' arguments are in the tables. */
		len = sb_format_denial(line, sizeof(line), thread_name, data, nr,
				       nr == __NR_ioctl ? &a : NULL, false);
	}
	/* A raw terminal stays raw: the guest's output may have left anything on it. */
	if (write(STDERR_FILENO, line, len) < 0)
		(void)0;
	syscall(SB_DIE_NR);
	_exit(128 + SIGSYS); /* not reached: the denied call above ended the process */
}

int sb_sigsys_install(bool log)
{
	struct sigaction sa;

	log_mode = log;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) ? -errno : 0;
}
