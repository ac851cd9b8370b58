/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Inside the sandbox: allowlist rules, the BPF builder, identities, capabilities. */
#ifndef MINIVMM_SANDBOX_INT_H
#define MINIVMM_SANDBOX_INT_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sandbox/sandbox.h"

/*
 * One allowlist entry: system call @nr is allowed (or answered with @ret)
 * when @arg < 0, else only when the low 32 bits of argument @arg, masked
 * with @mask, equal one of @vals. Only low words are compared: every argument
 * checked here (ioctl request, clone flags, socket family, mmap protection,
 * prctl option, open flags) is an int or has all its bits there.
 */
struct sb_rule {
	int nr;
	int arg;
	uint32_t mask;
	uint32_t ret; /* 0: SECCOMP_RET_ALLOW */
	unsigned int nvals;
	const uint32_t *vals;
};

struct sb_group {
	const char *name;
	const struct sb_rule *rules;
	size_t n;
};

#define SB_NVALS(...) (sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
/* Any arguments. */
#define SB_ANY(name)                                                                               \
	{                                                                                          \
		.nr = __NR_##name, .arg = -1                                                       \
	}
/* Argument @a (masked with @m) is one of the values. */
#define SB_ARG(name, a, m, ...)                                                                    \
	{                                                                                          \
		.nr = __NR_##name, .arg = (a), .mask = (m), .nvals = SB_NVALS(__VA_ARGS__),        \
		.vals = (const uint32_t[])                                                         \
		{                                                                                  \
			__VA_ARGS__                                                                \
		}                                                                                  \
	}
/* The ioctl requests in the list, on any descriptor. */
#define SB_IOCTLS(...) SB_ARG(ioctl, 1, 0xffffffffu, __VA_ARGS__)
#define SB_GROUP(gname, arr)                                                                       \
	{                                                                                          \
		.name = (gname), .rules = (arr), .n = sizeof(arr) / sizeof((arr)[0])               \
	}

/* What a filter answers for a denied call: SIGSYS with the role (and why) in si_errno. */
#define SB_DENY_ARCH 0x100 /* a call through another ABI (i386, x32) */

/* A role's filter program, built from @groups (NULL-terminated). */
struct sb_prog {
	struct sock_filter *insns;
	unsigned short len;
};
/* Deny is SECCOMP_RET_TRAP with the role in its data; @log (seccomp = log) also lets the
 * SIGSYS handler's own system call through (sb_escape_ip()). */
int sb_build(const struct sb_group *const *groups, unsigned int role, bool log,
	     struct sb_prog *out);
uint64_t sb_escape_ip(void);
void sb_prog_free(struct sb_prog *p);
/* Run the program on a made-up call (@args may be NULL: all zero): its answer. For tests. */
uint32_t sb_prog_eval(const struct sb_prog *p, uint32_t arch, int nr, const uint64_t args[6]);
bool sb_prog_allows(const struct sb_prog *p, int nr, const uint64_t args[6]);
/* PR_SET_NO_NEW_PRIVS, then the filter for the calling thread. */
int sb_install(const struct sb_prog *p);

/* The groups of @role under @plan (NULL-terminated, at most SB_MAX_GROUPS). */
#define SB_MAX_GROUPS 32
void sb_role_groups(enum sandbox_role role, const struct sandbox_plan *plan,
		    const struct sb_group **out);
const char *sb_role_name(unsigned int role);

/* x86-64 system call names (NULL when unknown). */
const char *sb_syscall_name(long nr);

/* The SIGSYS handler, and the thread name and role it reports. */
int sb_sigsys_install(bool log);
void sb_identity_set(enum sandbox_role role);
/* The calling thread's name as of sb_identity_set() ("" before). */
const char *sb_identity_name(void);
/* Format the log line into @buf (async-signal-safe); returns its length. @arg: the
 * checked argument to show (NULL: none); @allowed: log mode. */
size_t sb_format_denial(char *buf, size_t size, const char *thread, unsigned int data, long nr,
			const uint64_t *arg, bool allowed);
/* Which argument the filters check for @nr (-1: none). */
int sb_checked_arg(long nr);

/* Capabilities: keep only @keep (CAP_* bits) in every set of the calling thread. */
int sb_caps_limit(uint64_t keep);
uint64_t sb_caps_effective(void);

/* Confine the calling thread to @role (capabilities, then its filter). */
int sb_enter(enum sandbox_role role);

/* The spawner thread that creates every thread once the sandbox is on. */
int sb_spawner_start(void);
void sb_spawner_stop(void);

#endif
