// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Capabilities are per thread: each thread cuts its own sets as it enters its
 * role (threads made by the spawner inherit the spawner's, already cut). Raw
 * capget/capset, version 3 (64 capability bits in two words).
 */
#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return syscall(SYS_capget, &h, d) ? -errno : 0;
}

uint64_t sb_caps_effective(void)
{
	struct __user_cap_data_struct d[2];

	if (caps_get(d))
		return 0;
	return d[0].effective | (uint64_t)d[1].effective << 32;
}

int sb_caps_limit(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	uint64_t perm;
	int ret, c;

	ret = caps_get(d);
	if (ret)
		return ret;
	perm = d[0].permitted | (uint64_t)d[1].permitted << 32;
	if (!(perm & ~keep) && !d[0].inheritable && !d[1].inheritable)
		return 0; /* nothing to give up (not root, or done before) */
	/* The bounding set first: dropping from it needs CAP_SETPCAP, still held. */
	if (perm & (1ULL << CAP_SETPCAP)) {
		for (c = 0; c <= CAP_LAST_CAP; c++)
			if (!(keep & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) &&
			    errno != EINVAL)
				return -errno;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return -errno;
	perm &= keep;
	d[0].permitted = d[0].effective = (uint32_t)perm;
	d[1].permitted = d[1].effective = (uint32_t)(perm >> 32);
	d[0].inheritable = d[1].inheritable = 0;
	return syscall(SYS_capset, &h, d) ? -errno : 0;
}
