// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memchase: a memory-bound workload in the manner of SPEC's mcf (pointer chasing over a
 * large working set, one cache miss and often one TLB miss per step), for the overcommit
 * benchmark (bench/overcommit).
 *
 *   memchase MIB MSTEPS   chase MSTEPS million steps through MIB MiB of 64-byte nodes
 *                         linked in one random cycle
 *
 * Prints "MEMCHASE mib=M steps=S setup_ms=A run_ms=B ns_per_step=C check=X" and exits 0;
 * 1 with a message when it cannot (no memory: the guest was too small).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct node {
	uint32_t next;
	uint32_t pad[15]; /* one cache line per node */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* xorshift64*: the same cycle every run. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

int main(int argc, char **argv)
{
	unsigned long mib, msteps, steps, i;
	uint64_t seed = 0x9e3779b97f4a7c15ull, t0, t1, t2;
	struct node *n;
	uint32_t count, p = 0;

	if (argc != 3 || !(mib = strtoul(argv[1], NULL, 10)) || mib > 65536 ||
	    !(msteps = strtoul(argv[2], NULL, 10)) || msteps > 100000) {
		fprintf(stderr, "usage: memchase MIB MSTEPS\n");
		return 2;
	}
	count = (uint32_t)(mib * (1024 * 1024 / sizeof(struct node)));
	t0 = now_ms();
	n = malloc((size_t)count * sizeof(*n));
	if (!n) {
		fprintf(stderr, "memchase: no memory for %lu MiB\n", mib);
		return 1;
	}
	/* Sattolo's shuffle: one cycle through every node. */
	for (i = 0; i < count; i++)
		n[i].next = (uint32_t)i;
	for (i = count - 1; i > 0; i--) {
		uint32_t j = (uint32_t)(rnd(&seed) % i), t = n[i].next;

		n[i].next = n[j].next;
		n[j].next = t;
	}
	t1 = now_ms();
	steps = msteps * 1000000;
	for (i = 0; i < steps; i++)
		p = n[p].next;
	t2 = now_ms();
	printf("MEMCHASE mib=%lu steps=%lu setup_ms=%llu run_ms=%llu ns_per_step=%.1f check=%u\n",
	       mib, steps, (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1),
	       (double)(t2 - t1) * 1e6 / (double)steps, p);
	free(n);
	return 0;
}
