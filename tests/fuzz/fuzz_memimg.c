// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the input is a memory image section for a fixed guest
 * layout (1 MiB + 64 KiB at 0, 512 KiB at 4 GiB). Open it; if it opens,
 * restore it eagerly and lazily into guest RAM fenced by PROT_NONE guard pages
 * and require both to agree. Nothing may crash, hang, leak or write outside.
 *
 * MEMIMG_GEN_SEEDS=DIR build/fuzz/fuzz_memimg writes the seed corpus
 * (tests/fuzz/corpus/fuzz_memimg/) for this layout and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "snapshot/memimg.h"

#define GUARD	 (64u << 10)
#define MAX_FILE (4u << 20)

static const uint64_t sizes[2] = { (1u << 20) + (64u << 10), 512u << 10 };
static struct guest_mem eager, lazy;
static int fd = -1;

static void map(struct guest_mem *m)
{
	m->nr = 2;
	for (int i = 0; i < 2; i++) {
		uint8_t *p = mmap(NULL, sizes[i] + 2 * GUARD, PROT_NONE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED || mprotect(p + GUARD, sizes[i], PROT_READ | PROT_WRITE))
			abort();
		m->r[i] = (struct mem_region){ .gpa = i ? 1ULL << 32 : 0,
					       .size = sizes[i],
					       .hva = p + GUARD };
		m->total += sizes[i];
	}
}

/* Fresh, untouched memory again for the next input. */
static void reset(struct guest_mem *m)
{
	for (int i = 0; i < 2; i++)
		if (madvise(m->r[i].hva, sizes[i], MADV_DONTNEED))
			abort();
}

static void gen_seeds(const char *dir)
{
	static const char text[] = "snapshot memory image: zero pages, text pages, ";
	struct memimg_save_opts o = { .threads = 1 };
	char path[4096];

	for (int n = 0; n < 3; n++) {
		uint64_t len;
		int out;

		reset(&eager);
		for (uint64_t off = 0; n < 2 && off < sizes[0]; off += 4096) {
			uint8_t *p = (uint8_t *)eager.r[0].hva + off;

			/* Zero pages; few data pages when raw: small seeds. */
			if (n == 1 ? off / 4096 % 32 != 1 : off / 4096 % 3 == 0)
				continue;
			for (size_t j = 0; j < 4096; j++)
				p[j] = off / 4096 % 5 == 1 ? text[j % (sizeof(text) - 1)]
							   : (uint8_t)(j * 2654435761u >> 13);
		}
		((uint8_t *)eager.r[1].hva)[sizes[1] - 1] = 0x42;
		o.compress = n != 1;
		snprintf(path, sizeof(path), "%s/seed%d.memimg", dir, n + 1);
		out = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (out < 0 || memimg_save(out, 0, &eager, &o, &len, NULL) || ftruncate(out, len))
			abort();
		close(out);
	}
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	map(&eager);
	map(&lazy);
	if (getenv("MEMIMG_GEN_SEEDS"))
		gen_seeds(getenv("MEMIMG_GEN_SEEDS"));
	log_verbosity = -2; /* every rejected input would print its reason */
	fd = memfd_create("fuzz_memimg", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct memimg_lazy *l;
	struct memimg *mi;
	int e, z;

	if (n > MAX_FILE || ftruncate(fd, 0) || pwrite(fd, data, n, 0) != (ssize_t)n)
		return 0;
	if (memimg_open(fd, 0, n, &eager, &mi))
		return 0;
	e = memimg_restore(mi, &eager, 1, NULL);
	if (!memimg_lazy_start(mi, &lazy, &l)) {
		/* Touch every page, as vCPUs would, while the prefetcher runs. */
		volatile uint8_t sum = 0;

		for (int i = 1; i >= 0; i--)
			for (uint64_t o = 0; o < sizes[i]; o += 4096)
				sum += ((uint8_t *)lazy.r[i].hva)[o];
		(void)sum;
		z = memimg_lazy_finish(l);
		/* Both read the same chunks: they must agree. */
		if ((e == 0) != (z == 0))
			abort();
		for (int i = 0; i < 2 && !e; i++)
			if (memcmp(eager.r[i].hva, lazy.r[i].hva, sizes[i]))
				abort();
	}
	memimg_close(mi);
	reset(&eager);
	reset(&lazy);
	return 0;
}
