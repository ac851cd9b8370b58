/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the shares of one VM may hold, decided once at start from the process's
 * limits: each FUSE server's descriptors (max_fds), each DAX window's files
 * (one descriptor and one inotify watch each) and mappings (up to
 * DAX_VMAS_PER_MAP host VMAs each). Never more than the process can hold:
 * explicit max_fds that do not fit RLIMIT_NOFILE are an error, and
 * max_fds = auto takes its part of what is left.
 */
#ifndef MINIVMM_FS_BUDGET_H
#define MINIVMM_FS_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_BUDGET_MIN_FDS 16 /* fewer than this for a server: refuse to start */

struct fs_budget_in {
	bool present;
	unsigned int max_fds; /* [share.N] max_fds; 0: auto */
	uint64_t window;      /* DAX window bytes; 0: none */
};

struct fs_budget_out {
	unsigned int max_fds;	/* the server's descriptors */
	unsigned int win_files; /* the window's files (descriptors, inotify watches) */
	unsigned int win_maps;	/* the window's mappings */
};

struct fs_budget_limits {
	uint64_t nofile;       /* RLIMIT_NOFILE, soft (already raised as far as it goes) */
	uint64_t reserve;      /* descriptors the rest of minivmm needs */
	uint64_t vmas;	       /* host VMAs the windows may take (of vm.max_map_count) */
	uint64_t watches;      /* inotify watches the windows may take */
	unsigned int auto_max; /* max_fds = auto takes at most this many */
};

/*
 * Fill @out[i] for each present @in[i]. 0, or -EMFILE with a message in @why
 * ("[share.N] max_fds = ...: ...") when the explicit budgets do not fit
 * @l->nofile or an automatic one would get fewer than FS_BUDGET_MIN_FDS.
 */
int fs_budget_plan(const struct fs_budget_limits *l, const struct fs_budget_in *in, unsigned int n,
		   struct fs_budget_out *out, char *why, size_t whylen);

/* The RLIMIT_NOFILE under which every share gets all it may want. */
uint64_t fs_budget_want(const struct fs_budget_limits *l, const struct fs_budget_in *in,
			unsigned int n);

#endif
