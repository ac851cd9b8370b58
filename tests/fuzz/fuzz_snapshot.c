// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target: the input is a whole snapshot file for a guest of 1 MiB.
 * Open it (header, checksums, fdt_check_full), read its disk records against
 * an empty configuration, and restore its memory eagerly. Nothing may crash,
 * hang, leak or write outside guest memory. (The vCPU and device loaders need
 * KVM; their input is the same state tree, checked here by fdt_check_full.)
 *
 * SNAPSHOT_GEN_SEEDS=DIR build/fuzz/fuzz_snapshot writes the seed corpus
 * (tests/fuzz/corpus/fuzz_snapshot/) and exits.
 */
#include <fcntl.h>
#include <libfdt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mm/guest_mem.h"
#include "snapshot/snapshot.h"
#include "snapshot/state.h"

#define MEM (1u << 20)

static struct guest_mem mem;
static char path[64];

static void map(void)
{
	void *p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		abort();
	mem.nr = 1;
	mem.r[0] = (struct mem_region){ .gpa = 0, .size = MEM, .hva = p };
	mem.total = MEM;
}

static void gen_seeds(const char *dir)
{
	static const char cfg[] = "[vm]\nmemory = 1M\nvcpus = 1\n";
	char buf[1024], out[4096];
	int d;

	fdt_create_empty_tree(buf, sizeof(buf));
	st_put_u64(buf, 0, "version", SNAPSHOT_VERSION);
	d = st_add_node(buf, 0, "disks");
	d = st_add_node(buf, d, "disk@0");
	st_put_u64(buf, d, "format", DISK_RAW);
	fdt_setprop_string(buf, d, "image", "/dev/null");
	fdt_pack(buf);
	for (int i = 0; i < 16384; i += 32)
		snprintf((char *)mem.r[0].hva + i, 32, "seed page text %d\n", i);
	for (int n = 0; n < 2; n++) {
		struct snapshot_save_opts o = { .compress = n == 0, .threads = 1 };

		snprintf(out, sizeof(out), "%s/seed-%s", dir, n ? "raw" : "lzo");
		if (snapshot_write(out, cfg, sizeof(cfg) - 1, buf, fdt_totalsize(buf), &mem, 1, &o,
				   NULL))
			exit(1);
	}
	exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("SNAPSHOT_GEN_SEEDS");

	(void)argc;
	(void)argv;
	log_verbosity = -1;
	map();
	if (seeds)
		gen_seeds(seeds);
	snprintf(path, sizeof(path), "/tmp/fuzz_snapshot.%d", (int)getpid());
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot *s = NULL;
	struct vm_config cfg;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (!snapshot_open(path, &s)) {
		config_init(&cfg);
		snapshot_prepare_disks(s, &cfg, NULL);
		config_free(&cfg);
		if (madvise(mem.r[0].hva, MEM, MADV_DONTNEED))
			abort();
		snapshot_restore_memory(s, &mem, false, false);
		snapshot_close(s);
	}
	unlink(path);
	return 0;
}
