// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The DAX window against a page-level model: arbitrary sequences of map,
 * unmap, host truncate/extend of three files, repair and refresh. After every
 * repair each window page must be readable (a page past EOF would be SIGBUS
 * here, KVM_RUN -EFAULT for a guest) and hold what the model says: the file's
 * page while it is inside the file, zeros otherwise. Input: records of 4
 * bytes {op, a, b, c}:
 *
 *   op % 5 == 0  map file a % 3, file page b % 64, at window page c, length
 *                (op >> 3) + 1 pages, writable when op & 4
 *   op % 5 == 1  unmap window page b, (c % 64) + 1 pages
 *   op % 5 == 2  truncate file a % 3 to b % 80 pages (new pages get the pattern)
 *   op % 5 == 3  repair, then check every page
 *   op % 5 == 4  refresh
 *
 * The window has a budget of 24 mappings: a map or unmap over it must fail
 * with ENOMEM and change nothing (the model stays as it was).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/dax.h"

#define PAGE   4096u
#define WSIZE  (2ULL << 20)
#define NFILES 3
#define FPAGES 80u

struct slot {
	int file; /* -1: zero pages */
	unsigned int page;
};

static int fds[NFILES];
static unsigned int npages[NFILES];
static bool filled[NFILES][FPAGES];
static struct slot model[WSIZE / PAGE];
static struct dax_window *w; /* one for all runs: cleared at the start of each */

static uint8_t pattern(int f, unsigned int p)
{
	return (uint8_t)((f * 67 + p) | 1);
}

static void die(const char *what)
{
	perror(what);
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/minivmm-fuzz-dax.XXXXXX", path[64];

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		die("mkdtemp");
	for (int f = 0; f < NFILES; f++) {
		snprintf(path, sizeof(path), "%s/f%d", dir, f);
		fds[f] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fds[f] < 0)
			die("open");
		unlink(path); /* gone with the process */
	}
	rmdir(dir);
	if (dax_window_new(WSIZE, 0, &w))
		die("dax_window_new");
	dax_window_limit_maps(w, 24); /* reachable with a few records */
	return 0;
}

static void set_size(int f, unsigned int n)
{
	uint8_t buf[PAGE];

	if (ftruncate(fds[f], (off_t)n * PAGE))
		die("ftruncate");
	for (unsigned int p = n; p < FPAGES; p++)
		filled[f][p] = false;
	for (unsigned int p = npages[f]; p < n; p++) {
		memset(buf, pattern(f, p), sizeof(buf));
		if (pwrite(fds[f], buf, PAGE, (off_t)p * PAGE) != PAGE)
			die("pwrite");
		filled[f][p] = true;
	}
	npages[f] = n;
}

/* ENOMEM only with the mapping budget (nearly) used up, and never over it. */
static bool over_budget(void)
{
	struct dax_window_stats st;

	dax_window_get_stats(w, &st);
	return st.mappings + 1 >= st.max_maps;
}

static void check(void)
{
	struct dax_window_stats st;

	dax_window_get_stats(w, &st);
	if (st.mappings > st.max_maps || st.files > st.max_files || st.watches > st.files)
		abort();
	const uint8_t *base = dax_window_hva(w);

	for (unsigned int i = 0; i < WSIZE / PAGE; i++) {
		const struct slot *s = &model[i];
		uint8_t want = 0;

		if (s->file >= 0 && s->page < npages[s->file] && filled[s->file][s->page])
			want = pattern(s->file, s->page);
		if (base[(size_t)i * PAGE] != want || base[(size_t)i * PAGE + PAGE - 1] != want) {
			fprintf(stderr, "window page %u: %#x, model %#x (file %d page %u)\n", i,
				base[(size_t)i * PAGE], want, s->file, s->page);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	dax_window_clear(w);
	for (int f = 0; f < NFILES; f++) {
		npages[f] = 0;
		set_size(f, 0);
		set_size(f, 16);
	}
	for (i = 0; i < WSIZE / PAGE; i++)
		model[i] = (struct slot){ .file = -1 };
	for (i = 0; i + 4 <= size; i += 4) {
		uint8_t op = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
		uint64_t moff = (uint64_t)c * PAGE, len = ((uint64_t)(op >> 3) + 1) * PAGE;
		int f = a % NFILES, ret;

		switch (op % 5) {
		case 0:
			ret =
			    dax_window_map(w, fds[f], (uint64_t)(b % 64) * PAGE, moff, len, op & 4);
			if (ret == -EINVAL) {
				if (moff + len <= WSIZE)
					abort(); /* a good request refused */
				break;
			}
			if (ret == -ENOMEM) { /* over the mapping budget: nothing changed */
				if (!over_budget())
					abort();
				break;
			}
			if (ret)
				abort();
			for (uint64_t p = 0; p < len / PAGE; p++)
				model[c + p] = (struct slot){ .file = f, .page = b % 64 + p };
			break;
		case 1:
			moff = (uint64_t)b * PAGE;
			len = ((uint64_t)(c % 64) + 1) * PAGE;
			ret = dax_window_unmap(w, moff, len);
			if (ret == -EINVAL)
				break;
			if (ret == -ENOMEM) { /* it would split a mapping over the budget */
				if (!over_budget())
					abort();
				break;
			}
			if (ret)
				abort();
			for (uint64_t p = 0; p < len / PAGE; p++)
				model[b + p] = (struct slot){ .file = -1 };
			break;
		case 2:
			set_size(f, b % FPAGES);
			break;
		case 3:
			dax_window_repair(w);
			check();
			break;
		case 4:
			dax_window_refresh(w);
			break;
		}
	}
	dax_window_repair(w);
	check();
	return 0;
}
