// SPDX-License-Identifier: GPL-2.0-or-later
/* Turning the sandbox on for a session, and each thread entering its role. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "sandbox/sandbox_int.h"

/* What the FUSE server needs as root: owners, modes and names of any file in the share. */
#define FS_CAPS                                                                                    \
	((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_DAC_READ_SEARCH) |        \
	 (1ULL << CAP_FOWNER) | (1ULL << CAP_FSETID) | (1ULL << CAP_MKNOD))

static struct sb_prog progs[SANDBOX_NR_ROLES];
static atomic_bool active;
static bool main_done;
static uint64_t keep_caps;
static int test_deny_role = -1;

bool sandbox_active(void)
{
	return atomic_load(&active);
}

int sb_enter(enum sandbox_role role)
{
	int ret;

	sb_identity_set(role);
	ret = sb_caps_limit(keep_caps);
	if (ret)
		return ret;
	ret = sb_install(&progs[role]);
	if (ret)
		return ret;
	/* MINIVMM_SANDBOX_TEST_DENY=ROLE (tests): prove that a denied call is caught. */
	if ((int)role == test_deny_role)
		syscall(__NR_socket, AF_INET, SOCK_STREAM, 0);
	return 0;
}

void sandbox_thread_enter(enum sandbox_role role)
{
	int ret;

	if (!atomic_load(&active))
		return;
	ret = sb_enter(role);
	if (ret) {
		pr_err("sandbox: cannot confine a %s thread: %s; stopping", sb_role_name(role),
		       strerror(-ret));
		_exit(EXIT_VM_ERROR);
	}
}

static void free_progs(void)
{
	for (unsigned int r = 0; r < SANDBOX_NR_ROLES; r++)
		sb_prog_free(&progs[r]);
}

int sandbox_start(const struct sandbox_plan *plan)
{
	const struct sb_group *groups[SB_MAX_GROUPS + 1];
	const char *deny = getenv("MINIVMM_SANDBOX_TEST_DENY");
	unsigned int r;
	int ret;

	for (r = 0; r < SANDBOX_NR_ROLES; r++) {
		sb_role_groups(r, plan, groups);
		ret = sb_build(groups, r, plan->log_only, &progs[r]);
		if (ret) {
			pr_err("sandbox: cannot build the %s filter: %s", sb_role_name(r),
			       strerror(-ret));
			free_progs();
			return ret;
		}
		if (deny && !strcmp(deny, sb_role_name(r)))
			test_deny_role = (int)r;
	}
	/* Loaded now, not by a confined thread's first gmtime_r (the RTC). */
	tzset();
	keep_caps = plan->keep_fs_caps ? FS_CAPS : 0;
	if (plan->fs_priv_xattr)
		keep_caps |= (1ULL << CAP_SYS_ADMIN) | (1ULL << CAP_SETFCAP);
	ret = sb_sigsys_install(plan->log_only);
	if (!ret) {
		atomic_store(&active, true);
		ret = sb_spawner_start();
	}
	if (ret) {
		atomic_store(&active, false);
		pr_err("sandbox: cannot install the seccomp filters: %s (a kernel without "
		       "CONFIG_SECCOMP_FILTER? [sandbox] seccomp = off runs without them)",
		       strerror(-ret));
		free_progs();
		return ret;
	}
	pr_debug("sandbox: seccomp filters ready (%u instructions for vCPUs, %u baseline)",
		 progs[SANDBOX_VCPU].len, progs[SANDBOX_BASE].len);
	if (plan->log_only)
		pr_warn("seccomp = log: system calls the filters deny are logged and made anyway: "
			"no protection");
	return 0;
}

int sandbox_main_ready(void)
{
	int ret;

	if (!atomic_load(&active) || main_done)
		return 0;
	ret = sb_enter(SANDBOX_MAIN);
	if (ret) {
		pr_err("sandbox: cannot confine the main thread: %s", strerror(-ret));
		return ret;
	}
	main_done = true;
	return 0;
}

void sandbox_stop(void)
{
	sb_spawner_stop();
}
