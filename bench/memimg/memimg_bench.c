// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Memory image speeds without a VM (docs/snapshot.md, "Memory image"):
 *   memimg_bench speed FILE [MiB]   save and eager restore of semi-realistic
 *                                   guest memory: LZO and raw, 1 and 2 threads
 *   memimg_bench lazy FILE MiB...   lazy restore: time to memimg_lazy_start()
 *                                   returning, and until every chunk is in
 *   memimg_bench idle FILE MiB      save of a guest that touched 16 MiB
 * FILE is a scratch file (overwritten).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mm/guest_mem.h"
#include "snapshot/memimg_int.h"
#include "util.h"

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * 40% zero pages (half never touched, at the end of memory as in a guest
 * that never used it, half touched but zero), 35% text-like, 25% random.
 */
static void fill(struct guest_mem *m, uint64_t seed)
{
	static const char *const words[] = { "the ",	  "kernel ",  "memory ", "page ",
					     "0000 ",	  "0x1f3a ",  "=",	 "\n",
					     "struct ",	  "return ",  "int ",	 "libc.so.6 ",
					     "ffff8880 ", "usr/bin ", "\t",	 "GNU " };
	uint64_t s = seed, pages = m->total / 4096;

	for (uint64_t i = 0; i < pages * 8 / 10; i++) {
		uint8_t *p = gpa_to_hva(
		    m, i * 4096 < m->r[0].size ? i * 4096 : m->r[1].gpa + i * 4096 - m->r[0].size,
		    4096);
		unsigned int k = rnd(&s) % 80;

		if (k < 20) {
			memset(p, 0, 4096);
		} else if (k < 55) {
			size_t n = 0;

			while (n < 4096) {
				const char *w = words[rnd(&s) % 16];
				size_t l = MIN(strlen(w), 4096 - n);

				memcpy(p + n, w, l);
				n += l;
			}
		} else {
			for (int j = 0; j < 512; j++)
				((uint64_t *)p)[j] = rnd(&s);
		}
	}
}

static double secs(uint64_t ns)
{
	return ns / 1e9;
}

static int speed(const char *path, uint64_t mib)
{
	struct guest_mem src;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || guest_mem_init(&src, mib * MiB))
		return 1;
	fill(&src, 42);
	printf("%llu MiB, chunk %u KiB\n", (unsigned long long)mib, MEMIMG_CHUNK_PAGES * 4);
	printf("%-5s %-3s %9s %8s %10s %10s %12s %12s\n", "mode", "thr", "size MB", "ratio",
	       "save MB/s", "+sync MB/s", "restore MB/s", "cold MB/s");
	for (int compress = 1; compress >= 0; compress--) {
		for (unsigned int t = 1; t <= 2; t++) {
			struct memimg_save_opts o = { .compress = compress, .threads = t };
			struct memimg_stats st;
			struct guest_mem dst;
			struct memimg *mi;
			uint64_t len, t0, tsync, tr, tc;

			if (ftruncate(fd, 0) || memimg_save(fd, 0, &src, &o, &len, &st))
				return 1;
			t0 = now_ns();
			fdatasync(fd);
			tsync = now_ns() - t0 + st.ns;
			if (guest_mem_init(&dst, mib * MiB) || memimg_open(fd, 0, len, &dst, &mi))
				return 1;
			t0 = now_ns();
			if (memimg_restore(mi, &dst, t, NULL))
				return 1;
			tr = now_ns() - t0;
			memimg_close(mi);
			guest_mem_free(&dst);
			/* Cold: the file not in the page cache. */
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			if (guest_mem_init(&dst, mib * MiB) || memimg_open(fd, 0, len, &dst, &mi))
				return 1;
			t0 = now_ns();
			if (memimg_restore(mi, &dst, t, NULL))
				return 1;
			tc = now_ns() - t0;
			if (memcmp(src.r[0].hva, dst.r[0].hva, src.r[0].size))
				return 1;
			memimg_close(mi);
			guest_mem_free(&dst);
			printf(
			    "%-5s %-3u %9.1f %7.1f%% %10.0f %10.0f %12.0f %12.0f   (zero %.1f%%)\n",
			    compress ? "lzo" : "raw", t, len / 1e6, 100.0 * len / src.total,
			    src.total / 1e6 / secs(st.ns), src.total / 1e6 / secs(tsync),
			    src.total / 1e6 / secs(tr), src.total / 1e6 / secs(tc),
			    100.0 * st.zero_pages / st.pages);
		}
	}
	guest_mem_free(&src);
	close(fd);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

#define ROUNDS 9

/* Times in ns of @n rounds as "min/median/max ms". */
static const char *dist(uint64_t *t, int n, char *buf)
{
	qsort(t, n, sizeof(*t), cmp_u64);
	sprintf(buf, "%.3f/%.3f/%.3f", t[0] / 1e6, t[n / 2] / 1e6, t[n - 1] / 1e6);
	return buf;
}

static int lazy(const char *path, uint64_t mib)
{
	uint64_t len, t0, t1, t2, topen[ROUNDS], tstart[ROUNDS], ttouch[ROUNDS], tall[ROUNDS];
	struct guest_mem src, dst;
	struct memimg_stats st;
	struct memimg_lazy *l;
	struct memimg *mi;
	char b[4][64];
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || guest_mem_init(&src, mib * MiB))
		return 1;
	fill(&src, 7);
	if (memimg_save(fd, 0, &src, NULL, &len, &st))
		return 1;
	fdatasync(fd); /* no writeback in the measurement */
	for (int r = 0; r < ROUNDS; r++) {
		if (guest_mem_init(&dst, mib * MiB))
			return 1;
		t0 = now_ns();
		if (memimg_open(fd, 0, len, &dst, &mi))
			return 1;
		t1 = now_ns();
		if (memimg_lazy_start(mi, &dst, &l))
			return 1;
		t2 = now_ns();
		/* The first instruction's write: somewhere in the middle of RAM. */
		*(volatile uint8_t *)((uint8_t *)dst.r[0].hva + dst.r[0].size / 2 + 123) ^= 0;
		ttouch[r] = now_ns() - t2;
		if (memimg_lazy_finish(l))
			return 1;
		tall[r] = now_ns() - t1;
		topen[r] = t1 - t0;
		tstart[r] = t2 - t1;
		if (!r && memcmp(src.r[0].hva, dst.r[0].hva, src.r[0].size))
			return 1;
		memimg_close(mi);
		guest_mem_free(&dst);
	}
	printf("%5llu MiB (image %.1f MB), min/median/max ms of %d: open %s, lazy_start %s, "
	       "first touch %s, all in %s\n",
	       (unsigned long long)mib, len / 1e6, ROUNDS, dist(topen, ROUNDS, b[0]),
	       dist(tstart, ROUNDS, b[1]), dist(ttouch, ROUNDS, b[2]), dist(tall, ROUNDS, b[3]));
	guest_mem_free(&src);
	close(fd);
	return 0;
}

/* A mostly idle guest: @mib of RAM of which 16 MiB was ever touched. */
static int idle(const char *path, uint64_t mib)
{
	struct memimg_stats st;
	struct guest_mem src;
	uint64_t len;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || guest_mem_init(&src, mib * MiB))
		return 1;
	memset(src.r[0].hva, 0x5a, 16 * MiB);
	if (memimg_save(fd, 0, &src, NULL, &len, &st))
		return 1;
	printf("%llu MiB, 16 MiB touched: save %.1f ms, image %.1f KB, %llu of %llu pages "
	       "skipped unread\n",
	       (unsigned long long)mib, st.ns / 1e6, len / 1e3, (unsigned long long)st.unread_pages,
	       (unsigned long long)st.pages);
	guest_mem_free(&src);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "idle"))
		return idle(argv[2], strtoull(argv[3], NULL, 0));
	if (argc >= 3 && !strcmp(argv[1], "speed"))
		return speed(argv[2], argc > 3 ? strtoull(argv[3], NULL, 0) : 512);
	if (argc >= 4 && !strcmp(argv[1], "lazy")) {
		for (int i = 3; i < argc; i++)
			if (lazy(argv[2], strtoull(argv[i], NULL, 0)))
				return 1;
		return 0;
	}
	fprintf(stderr, "usage: %s speed FILE [MiB] | lazy FILE MiB... | idle FILE MiB\n", argv[0]);
	return 2;
}
