// SPDX-License-Identifier: GPL-2.0-or-later
/* The shares' descriptor, inotify watch and mapping budgets (budget.h). */
#include <errno.h>
#include <stdio.h>

#include "fs/budget.h"
#include "fs/dax.h"
#include "util.h"

#define MAX_SHARES 64

static uint64_t want_maps(const struct fs_budget_in *in)
{
	return in->present && in->window ? MAX(in->window / DAX_ALIGN, DAX_MIN_MAX_MAPS) : 0;
}

/* Scale @v down so that it sums to at most @cap, keeping every non-zero entry >= 1. */
static void fit(uint64_t *v, unsigned int n, uint64_t cap)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < n; i++)
		sum += v[i];
	if (sum <= cap)
		return;
	for (i = 0; i < n; i++)
		if (v[i])
			v[i] = MAX(v[i] * cap / sum, 1);
}

uint64_t fs_budget_want(const struct fs_budget_limits *l, const struct fs_budget_in *in,
			unsigned int n)
{
	uint64_t want = l->reserve;

	for (unsigned int i = 0; i < n; i++)
		if (in[i].present)
			want += (in[i].max_fds ? in[i].max_fds : l->auto_max) + want_maps(&in[i]);
	return want;
}

int fs_budget_plan(const struct fs_budget_limits *l, const struct fs_budget_in *in, unsigned int n,
		   struct fs_budget_out *out, char *why, size_t whylen)
{
	uint64_t maps[MAX_SHARES], files[MAX_SHARES], win[MAX_SHARES], avail, fixed = 0, per = 0;
	unsigned int i, n_auto = 0, big = 0;

	if (n > MAX_SHARES)
		return -EINVAL;
	avail = l->nofile > l->reserve ? l->nofile - l->reserve : 0;
	for (i = 0; i < n; i++)
		maps[i] = want_maps(&in[i]);
	fit(maps, n, l->vmas / DAX_VMAS_PER_MAP);
	for (i = 0; i < n; i++)
		files[i] = maps[i]; /* a file is mapped at least once */
	fit(files, n, l->watches);

	for (i = 0; i < n; i++) {
		if (!in[i].present)
			continue;
		if (!in[i].max_fds) {
			n_auto++;
			continue;
		}
		fixed += in[i].max_fds;
		if (in[i].max_fds > in[big].max_fds || !in[big].present || !in[big].max_fds)
			big = i;
	}
	/*
	 * The windows of shares with a fixed max_fds hold no more files than their
	 * servers may, and share what those leave (half of it when automatic
	 * shares need the rest too).
	 */
	for (i = 0; i < n; i++) {
		win[i] = 0;
		if (in[i].present && in[i].max_fds)
			win[i] = MIN(files[i], in[i].max_fds);
	}
	if (fixed < avail)
		fit(win, n, n_auto ? (avail - fixed) / 2 : avail - fixed);
	for (i = 0; i < n; i++) {
		if (in[i].present && in[i].max_fds) {
			files[i] = win[i];
			fixed += win[i];
		}
	}
	if (fixed > avail) {
		snprintf(why, whylen,
			 "[share.%u] max_fds = %u: the shares' max_fds and DAX windows need %llu "
			 "open files and the rest of minivmm %llu, but RLIMIT_NOFILE is %llu: "
			 "lower max_fds or raise ulimit -n",
			 big, in[big].max_fds, (unsigned long long)fixed,
			 (unsigned long long)l->reserve, (unsigned long long)l->nofile);
		return -EMFILE;
	}
	if (n_auto)
		per = (avail - fixed) / n_auto;
	for (i = 0; i < n; i++) {
		if (!in[i].present)
			continue;
		if (!in[i].max_fds) {
			/* The window gets at most a quarter of the share's part. */
			uint64_t w = in[i].window ? MIN(files[i], per / 4) : 0;
			uint64_t fds = MIN(per - w, l->auto_max);

			if (fds < FS_BUDGET_MIN_FDS || (in[i].window && !w)) {
				snprintf(
				    why, whylen,
				    "[share.%u] max_fds = auto: only %llu open files are left "
				    "for it (RLIMIT_NOFILE %llu, %llu for the rest of minivmm): "
				    "raise ulimit -n or lower the other shares' max_fds",
				    i, (unsigned long long)per, (unsigned long long)l->nofile,
				    (unsigned long long)l->reserve);
				return -EMFILE;
			}
			files[i] = w;
			out[i].max_fds = (unsigned int)fds;
		} else {
			out[i].max_fds = in[i].max_fds;
		}
		out[i].win_files = (unsigned int)files[i];
		out[i].win_maps = (unsigned int)maps[i];
	}
	return 0;
}
